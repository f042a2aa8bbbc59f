use super::*;

fn q(s: &str) -> QName {
    QName::from_text(s).unwrap()
}

fn set(block: &str, allow: &str) -> BlocklistSet {
    let mut b = BlocklistBuilder::new();
    b.add_text("block", block, ListKind::Block).unwrap();
    b.add_text("allow", allow, ListKind::Allow).unwrap();
    b.build()
}

fn hit(s: &BlocklistSet, name: &str) -> Option<String> {
    s.lookup(&q(name)).map(|h| h.domain.to_string())
}

fn domains(text: &str) -> Vec<String> {
    let s = set(text, "");
    let mut v: Vec<String> = s.domains().map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn suffix_rule() {
    let s = set("evil.com\n", "");
    assert_eq!(hit(&s, "evil.com").as_deref(), Some("evil.com"));
    assert_eq!(hit(&s, "a.b.evil.com").as_deref(), Some("evil.com"));
    assert_eq!(hit(&s, "evil.com."), Some("evil.com".into()));
    assert_eq!(hit(&s, "notevil.com"), None);
    assert_eq!(hit(&s, "com"), None);
    assert_eq!(hit(&s, "evil.com.org"), None);
    assert_eq!(hit(&s, "."), None);
    let h = s.lookup(&q("x.evil.com")).unwrap();
    assert_eq!(
        h,
        Hit {
            domain: "evil.com",
            list: "block"
        }
    );
}

#[test]
fn most_specific_block_wins() {
    let mut b = BlocklistBuilder::new();
    b.add_text("broad", "example.com\n", ListKind::Block)
        .unwrap();
    b.add_text("narrow", "ads.example.com\n", ListKind::Block)
        .unwrap();
    let s = b.build();
    assert_eq!(
        s.lookup(&q("x.ads.example.com")).unwrap(),
        Hit {
            domain: "ads.example.com",
            list: "narrow"
        }
    );
    assert_eq!(
        s.lookup(&q("www.example.com")).unwrap(),
        Hit {
            domain: "example.com",
            list: "broad"
        }
    );
}

#[test]
fn allow_rule() {
    let s = set(
        "example.com\nads.good.example.com\nsame.org\n",
        "good.example.com\nsame.org\nunrelated.net\n",
    );
    assert_eq!(hit(&s, "good.example.com"), None);
    assert_eq!(hit(&s, "x.good.example.com"), None);
    assert_eq!(hit(&s, "bad.example.com").as_deref(), Some("example.com"));
    assert_eq!(hit(&s, "example.com").as_deref(), Some("example.com"));
    // A block entry more specific than the allow entry wins again.
    assert_eq!(
        hit(&s, "ads.good.example.com").as_deref(),
        Some("ads.good.example.com")
    );
    assert_eq!(
        hit(&s, "x.ads.good.example.com").as_deref(),
        Some("ads.good.example.com")
    );
    // Same name blocked and allowed: allowed.
    assert_eq!(hit(&s, "same.org"), None);
    assert_eq!(hit(&s, "www.same.org"), None);
    assert_eq!(hit(&s, "unrelated.net"), None);
    assert_eq!(s.len(), 3);
    assert_eq!(s.allow_len(), 3);
    // Allow entries are global and less specific allows do not clear more specific blocks.
    let s = set("ads.example.com\n", "example.com\n");
    assert_eq!(
        hit(&s, "ads.example.com").as_deref(),
        Some("ads.example.com")
    );
}

#[test]
fn case_insensitive() {
    let s = set("EVIL.Com\n", "Good.EVIL.com\n");
    assert_eq!(s.domains().collect::<Vec<_>>(), ["evil.com"]);
    assert_eq!(s.allowed_domains().collect::<Vec<_>>(), ["good.evil.com"]);
    assert_eq!(hit(&s, "WWW.eViL.cOm").as_deref(), Some("evil.com"));
    assert_eq!(hit(&s, "GOOD.evil.COM"), None);
    // The wire may carry any case; build one by labels.
    let mut n = QName::new();
    n.push_label(b"X").unwrap();
    n.push_label(b"EVIL").unwrap();
    n.push_label(b"COM").unwrap();
    assert_eq!(s.lookup(&n).unwrap().domain, "evil.com");
}

#[test]
fn labels_with_dots_do_not_match_split_entries() {
    // A wire label "evil.com" (one label containing a dot) is not the entry evil.com.
    let s = set("evil.com\n", "");
    let mut n = QName::new();
    n.push_label(b"evil.com").unwrap();
    assert_eq!(s.lookup(&n), None);
    let mut n = QName::new();
    n.push_label(b"a").unwrap();
    n.push_label(b"evil").unwrap();
    n.push_label(b"com").unwrap();
    assert!(s.lookup(&n).is_some());
}

#[test]
fn punycode_passes_through_and_utf8_is_rejected() {
    let s = set(
        "xn--80ak6aa92e.com\nXN--bcher-kva.example\nbücher.example\n",
        "",
    );
    let mut d: Vec<_> = s.domains().collect();
    d.sort();
    assert_eq!(d, ["xn--80ak6aa92e.com", "xn--bcher-kva.example"]);
    assert_eq!(
        hit(&s, "www.xn--80ak6aa92e.com").as_deref(),
        Some("xn--80ak6aa92e.com")
    );
    assert_eq!(s.lists()[0].skipped, 1);
    assert!(
        s.warnings()[0].contains("block:3: non-ascii"),
        "{:?}",
        s.warnings()
    );
}

#[test]
fn comments_and_headers() {
    let text = "# comment\n! adblock comment\n; zone comment\n// c\n[Adblock Plus 2.0]\n\n   \n\r\nevil.com # trailing\nbad.org\t# tab comment\r\n";
    assert_eq!(domains(text), ["bad.org", "evil.com"]);
    let s = set(text, "");
    assert_eq!(s.lists()[0].skipped, 0);
    assert!(s.warnings().is_empty());
}

#[test]
fn validation() {
    let text = "1.2.3.4\n::1\n2001:db8::1\nexample.123\nex ample.com x\n.lead.com\ntrail.com..\na..b.com\n*\n*.\n\
                a.*.com\nhttp://x.com/path\nunder_score.com\n-dash.com\n"
        .to_string()
        + &"a".repeat(64)
        + ".com\n"
        + &["abcdefghi"; 26].join(".")
        + "\n";
    let s = set(&text, "");
    let mut d: Vec<_> = s.domains().collect();
    d.sort();
    assert_eq!(d, ["-dash.com", "under_score.com"]);
    assert_eq!(s.lists()[0].skipped, 14);
    assert_eq!(s.warnings().len(), WARNINGS_PER_LIST + 1);
    assert!(
        s.warnings()[0].starts_with("block:1: ip address"),
        "{:?}",
        s.warnings()
    );
    assert!(
        s.warnings()[WARNINGS_PER_LIST].contains("9 more"),
        "{:?}",
        s.warnings()
    );
    // Exactly 253 characters is fine.
    let long = [
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(61),
    ]
    .join(".");
    assert_eq!(long.len(), 253);
    assert_eq!(domains(&long), std::slice::from_ref(&long));
}

#[test]
fn wildcard_means_domain_and_below() {
    let s = set("*.wild.example\n", "");
    assert_eq!(s.domains().collect::<Vec<_>>(), ["wild.example"]);
    assert!(s.lookup(&q("wild.example")).is_some());
    assert!(s.lookup(&q("a.wild.example")).is_some());
}

#[test]
fn hosts_format() {
    let text = "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n255.255.255.255 broadcasthost\n\
                0.0.0.0 0.0.0.0\n127.0.0.1 localhost.localdomain\n0.0.0.0 local\n\
                0.0.0.0 a.example b.example # two names\n127.0.0.1\tc.example\n:: d.example\n\
                fe80::1%lo0 e.example\n0.0.0.0 bad_char!.example f.example\n";
    assert_eq!(
        domains(text),
        [
            "a.example",
            "b.example",
            "c.example",
            "d.example",
            "e.example",
            "f.example"
        ]
    );
    let s = set(text, "");
    assert_eq!(s.lists()[0].skipped, 1);
}

#[test]
fn adblock_format() {
    let text = "[Adblock Plus 2.0]\n! Title: x\n||a.example^\n||B.example^$important\n||c.example^|\n\
                ||d.example^$all\n||e.example^$important,all\n||f.example/path^\n||g.example^$third-party\n\
                ||*.h.example^\n||i*.example^\n||j.example\n|http://k.example/\n/regex/\nl.example##.ad\n\
                ||m.example:8080^\n||n.example^$dnstype=AAAA\n@@||o.example^\n@@||p.example^$important\n";
    let s = set(text, "");
    let mut d: Vec<_> = s.domains().collect();
    d.sort();
    assert_eq!(
        d,
        [
            "a.example",
            "b.example",
            "c.example",
            "d.example",
            "e.example"
        ]
    );
    let mut a: Vec<_> = s.allowed_domains().collect();
    a.sort();
    assert_eq!(a, ["o.example", "p.example"]);
    let info = &s.lists()[0];
    assert_eq!((info.entries, info.allow_entries, info.skipped), (7, 2, 10));
}

#[test]
fn adblock_exception_in_block_list_allows() {
    let s = set("||example.com^\n@@||good.example.com^\n", "");
    assert_eq!(hit(&s, "good.example.com"), None);
    assert_eq!(hit(&s, "bad.example.com").as_deref(), Some("example.com"));
}

#[test]
fn dnsmasq_format() {
    let text = "address=/a.example/0.0.0.0\naddress=/b.example/\naddress=/c.example/d.example/::\n\
                server=/e.example/\nlocal=/f.example/\nserver=/g.example/1.1.1.1\nserver=/h.example/#\n\
                address=/#/0.0.0.0\nserver=8.8.8.8\naddress=/i.example\n";
    assert_eq!(
        domains(text),
        [
            "a.example",
            "b.example",
            "c.example",
            "d.example",
            "e.example",
            "f.example"
        ]
    );
    assert_eq!(set(text, "").lists()[0].skipped, 5);
}

#[test]
fn unbound_format() {
    let text = "server:\n  local-zone: \"a.example\" always_nxdomain\nlocal-zone: \"b.example.\" static\n\
                local-zone: c.example refuse\nlocal-data: \"c.example A 0.0.0.0\"\n\
                local-zone: \"ok.a.example\" always_transparent\nlocal-zone: \"d.example\" nodefault\n";
    let s = set(text, "");
    let mut d: Vec<_> = s.domains().collect();
    d.sort();
    assert_eq!(d, ["a.example", "b.example", "c.example"]);
    assert_eq!(s.allowed_domains().collect::<Vec<_>>(), ["ok.a.example"]);
    assert_eq!(s.lists()[0].skipped, 1);
    assert_eq!(hit(&s, "x.ok.a.example"), None);
}

#[test]
fn bind_format() {
    let text = "zone \"a.example\" { type master; notify no; file \"null.zone.file\"; };\n\
                zone \"b.example\" IN {\n  type master;\n  file \"db.empty\";\n  allow-query { none; };\n};\n\
                zone c.example { type master; file \"x\"; };\n";
    assert_eq!(domains(text), ["a.example", "b.example", "c.example"]);
    assert_eq!(set(text, "").lists()[0].skipped, 0);
}

#[test]
fn rpz_without_origin_takes_names_as_written() {
    // As urlhaus-filter-rpz.conf: no $ORIGIN, apex `@`.
    let text = "$TTL 30\n@ IN SOA localhost. root.localhost. 1752927088 86400 3600 604800 30\n NS localhost.\n\n\
                a.example CNAME .\n*.b.example CNAME .\nc.example. 300 IN CNAME .\nd.example IN 60 A 127.0.0.1\n\
                e.example CNAME rpz-passthru.\nf.example CNAME rpz-tcp-only.\ng.example CNAME walled.garden.\n\
                h.example CNAME rpz-drop.\n32.1.0.0.127.rpz-ip CNAME .\nns.evil.rpz-nsdname CNAME .\n";
    let s = set(text, "");
    let mut d: Vec<_> = s.domains().collect();
    d.sort();
    assert_eq!(
        d,
        [
            "a.example",
            "b.example",
            "c.example",
            "d.example",
            "g.example",
            "h.example"
        ]
    );
    assert_eq!(s.allowed_domains().collect::<Vec<_>>(), ["e.example"]);
    assert_eq!(s.lists()[0].skipped, 3);
}

#[test]
fn rpz_with_origin_strips_the_apex() {
    let text = "$TTL 1h\n$ORIGIN rpz.local.\n@ SOA ns.rpz.local. admin.rpz.local. (\n  1 ; serial\n  3600 600 86400\n  60 )\n\
                @ NS ns.rpz.local.\nbad.com CNAME .\n*.bad.org CNAME *.\nworse.net.rpz.local. CNAME .\n\
                outside.com. CNAME .\n$ORIGIN sub.example.rpz.local.\nwww CNAME .\n*.deep A 0.0.0.0\n";
    let s = set(text, "");
    let mut d: Vec<_> = s.domains().collect();
    d.sort();
    assert_eq!(
        d,
        [
            "bad.com",
            "bad.org",
            "deep.sub.example",
            "worse.net",
            "www.sub.example"
        ]
    );
    assert_eq!(s.lists()[0].skipped, 1);
    assert!(
        s.warnings()[0].contains("outside the zone"),
        "{:?}",
        s.warnings()
    );
}

#[test]
fn rpz_origin_without_soa_is_the_apex() {
    let text = "$ORIGIN rpz.example.\nbad.com CNAME .\nbad.net.rpz.example. CNAME .\n";
    assert_eq!(domains(text), ["bad.com", "bad.net"]);
}

#[test]
fn mixed_formats_in_one_file_and_duplicates() {
    let text = "a.example\n0.0.0.0 a.example\n||a.example^\naddress=/a.example/\nb.example\n";
    let s = set(text, "");
    assert_eq!(s.len(), 2);
    let i = &s.lists()[0];
    assert_eq!((i.entries, i.duplicates, i.skipped), (2, 3, 0));
}

#[test]
fn first_list_owns_shared_entries() {
    let mut b = BlocklistBuilder::new();
    b.add_text("one", "a.example\nb.example\n", ListKind::Block)
        .unwrap();
    b.add_text("two", "b.example\nb.example\nc.example\n", ListKind::Block)
        .unwrap();
    let s = b.build();
    assert_eq!(s.len(), 3);
    assert_eq!(s.lists()[1].entries, 2);
    assert_eq!(s.lists()[1].duplicates, 1);
    assert_eq!(s.lookup(&q("b.example")).unwrap().list, "one");
    assert_eq!(s.lookup(&q("c.example")).unwrap().list, "two");
}

#[test]
fn duplicate_list_names_are_errors() {
    let mut b = BlocklistBuilder::new();
    b.add_text("same", "a.example\n", ListKind::Block).unwrap();
    let e = b
        .add_text("same", "b.example\n", ListKind::Allow)
        .unwrap_err();
    assert!(
        e.to_string().starts_with("duplicate list name `same`"),
        "{e}"
    );
}

#[test]
fn io_error_names_the_file() {
    let p = PathBuf::from("/nonexistent/dir/list.txt");
    let e = BlocklistSet::load(&[p], &[]).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("cannot read list /nonexistent/dir/list.txt"),
        "{msg}"
    );
    assert!(matches!(e, BlocklistError::Io { .. }));
}

#[test]
fn load_files_names_lists_by_stem() {
    let dir = tempfile::tempdir().unwrap();
    let bp = dir.path().join("malware.txt");
    let ap = dir.path().join("allow.txt");
    std::fs::write(&bp, "0.0.0.0 evil.example\n1.2.3.4\n").unwrap();
    std::fs::write(&ap, "ok.evil.example\n").unwrap();
    let s = BlocklistSet::load(std::slice::from_ref(&bp), std::slice::from_ref(&ap)).unwrap();
    assert_eq!(
        s.lookup(&q("x.evil.example")).unwrap(),
        Hit {
            domain: "evil.example",
            list: "malware"
        }
    );
    assert_eq!(s.lookup(&q("ok.evil.example")), None);
    assert_eq!(s.lists().len(), 2);
    assert_eq!(s.lists()[0].path, bp);
    assert_eq!(s.lists()[1].kind, ListKind::Allow);
    assert_eq!(s.warnings().len(), 1);
    let w = &s.warnings()[0];
    assert!(
        w.starts_with(&format!("{}:2: ip address", bp.display())),
        "{w}"
    );
}

#[test]
fn empty_set() {
    let s = BlocklistSet::empty();
    assert!(s.is_empty());
    assert_eq!(s.len(), 0);
    assert_eq!(s.lookup(&q("anything.example")), None);
    let s = set("", "only.allow\n");
    assert!(s.is_empty());
    assert_eq!(s.allow_len(), 1);
}

#[test]
fn send_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<BlocklistSet>();
}

/// Insert `text` under a chosen hash, as if it collided.
fn insert_with_hash(b: &mut BlocklistBuilder, text: &str, hash: u64, allow: bool) {
    let start = b.set.arena.len() as u32;
    b.set.arena.push_str(text);
    let labels = text.split('.').count() as u8;
    let meta = labels | if allow { ALLOW_BIT } else { 0 };
    b.push_entry(
        hash,
        Entry {
            start,
            list: 0,
            len: text.len() as u8,
            meta,
        },
    );
    b.last_seen.push(0);
    if allow {
        b.set.allow_len += 1;
    } else {
        b.set.block_len += 1;
    }
    b.set.max_labels = b.set.max_labels.max(labels as usize);
}

#[test]
fn hash_collisions_never_hit() {
    let mut b = BlocklistBuilder::new();
    b.add_text("forced", "", ListKind::Block).unwrap();
    let h_good = q("good.example").hash();
    let h_www = q("www.good.example").hash();
    // "evil.example" and "other.example" stored under good.example's hash,
    // "x.y.example" (3 labels) under www.good.example's.
    insert_with_hash(&mut b, "evil.example", h_good, false);
    insert_with_hash(&mut b, "other.example", h_good, false);
    insert_with_hash(&mut b, "x.y.example", h_www, false);
    let s = b.build();
    assert_eq!(s.len(), 3);
    assert_eq!(s.lookup(&q("good.example")), None);
    assert_eq!(s.lookup(&q("www.good.example")), None);
    assert_eq!(s.lookup(&q("a.www.good.example")), None);

    // With the real entry behind colliding ones, the probe goes on to it.
    let mut b = BlocklistBuilder::new();
    b.add_text("forced", "", ListKind::Block).unwrap();
    insert_with_hash(&mut b, "evil.example", h_good, false);
    insert_with_hash(&mut b, "good.example", h_good, true);
    insert_with_hash(&mut b, "good.example", h_good, false);
    let s = b.build();
    // allow and block for the same name: allowed
    assert_eq!(s.lookup(&q("good.example")), None);
    let mut b = BlocklistBuilder::new();
    b.add_text("forced", "", ListKind::Block).unwrap();
    insert_with_hash(&mut b, "evil.example", h_good, false);
    insert_with_hash(&mut b, "good.example", h_good, false);
    let s = b.build();
    assert_eq!(
        s.lookup(&q("sub.good.example")).unwrap().domain,
        "good.example"
    );
}

#[test]
fn dedup_survives_colliding_tags() {
    // Inserting through the normal path after a forced collision still dedups
    // by text, not by hash.
    let mut b = BlocklistBuilder::new();
    b.add_text("forced", "", ListKind::Block).unwrap();
    insert_with_hash(&mut b, "evil.example", q("good.example").hash(), false);
    b.add_text("real", "good.example\ngood.example\n", ListKind::Block)
        .unwrap();
    let s = b.build();
    assert_eq!(s.len(), 2);
    assert_eq!(s.lists()[1].entries, 1);
    assert_eq!(s.lists()[1].duplicates, 1);
    assert_eq!(s.lookup(&q("good.example")).unwrap().domain, "good.example");
}

#[test]
fn table_grows_and_finds_everything() {
    let text: String = (0..5000)
        .map(|i| format!("host{i}.d{}.example\n", i % 37))
        .collect();
    let s = set(&text, "");
    assert_eq!(s.len(), 5000);
    for i in (0..5000).step_by(7) {
        let name = format!("www.host{i}.d{}.example", i % 37);
        assert_eq!(s.lookup(&q(&name)).unwrap().domain, &name[4..]);
        assert_eq!(s.lookup(&q(&format!("nothost{i}.d0.example"))), None);
    }
    let slots = s.table.slots.len();
    assert!(slots * 5 >= 5000 * 8 && slots.is_power_of_two(), "{slots}");
}
