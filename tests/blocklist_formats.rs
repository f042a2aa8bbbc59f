//! The shared data holds the same lists in several formats: loading each
//! file on its own must give the same domain set (or a documented relation),
//! and the counts must agree with the lists' own headers and with
//! `blocklists-summary.tsv`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use dnsmonitor::blocklist::{BlocklistSet, ListInfo};

mod common;

fn path(rel: &str) -> PathBuf {
    let p = common::shared(rel);
    assert!(p.exists(), "shared data file missing: {}", p.display());
    p
}

struct Loaded {
    set: BlocklistSet,
    info: ListInfo,
    domains: BTreeSet<String>,
}

fn load(rel: &str) -> Loaded {
    let set = BlocklistSet::load(&[path(rel)], &[]).unwrap_or_else(|e| panic!("{e}"));
    let info = set.lists()[0].clone();
    let domains: BTreeSet<String> = set.domains().map(str::to_string).collect();
    assert_eq!(domains.len(), set.len(), "{rel}");
    assert_eq!(info.entries, set.len(), "{rel}: no allow entries expected");
    assert_eq!(set.allow_len(), 0, "{rel}");
    Loaded { set, info, domains }
}

/// `# Entries: 1,904` / `! Entries: 1,904` header value, if the file has one.
fn header_entries(rel: &str) -> Option<usize> {
    let text = std::fs::read_to_string(path(rel)).unwrap();
    text.lines()
        .take_while(|l| l.starts_with('#') || l.starts_with('!') || l.is_empty())
        .find_map(|l| l.get(1..)?.trim().strip_prefix("Entries:"))
        .map(|n| n.trim().replace(',', "").parse().unwrap())
}

fn lines_matching(rel: &str, pred: impl Fn(&str) -> bool) -> usize {
    std::fs::read_to_string(path(rel))
        .unwrap()
        .lines()
        .filter(|l| pred(l))
        .count()
}

fn is_ipv4(s: &str) -> bool {
    s.parse::<std::net::Ipv4Addr>().is_ok()
}

const URLHAUS: &str = "blocklists/urlhaus-filter/urlhaus-filter";

#[test]
fn urlhaus_filter_formats_agree() {
    let reference = load(&format!("{URLHAUS}-hosts.txt"));
    assert_eq!(reference.domains.len(), 2689);
    assert_eq!(reference.info.skipped, 0);

    // Same domain set, nothing skipped: the resolver formats.
    for suffix in ["-rpz.conf", "-dnsmasq.conf", "-unbound.conf", "-bind.conf"] {
        let l = load(&format!("{URLHAUS}{suffix}"));
        assert_eq!(l.domains, reference.domains, "{suffix}");
        assert_eq!(l.info.skipped, 0, "{suffix}: {:?}", l.set.warnings());
    }

    // -domains.txt, -agh.txt and -wildcard.txt also list the 23,079 bare IPv4
    // addresses of URLhaus URLs (`1.0.209.238`, `||1.0.209.238^`,
    // `*.1.0.209.238`). Those are not domain names and are skipped; the hosts
    // and resolver formats leave them out for the same reason. The domain
    // sets are then equal.
    for suffix in ["-domains.txt", "-agh.txt", "-wildcard.txt"] {
        let rel = format!("{URLHAUS}{suffix}");
        let l = load(&rel);
        assert_eq!(l.domains, reference.domains, "{suffix}");
        let ips = lines_matching(&rel, |line| {
            is_ipv4(
                line.trim_start_matches("||")
                    .trim_start_matches("*.")
                    .trim_end_matches('^'),
            )
        });
        assert_eq!(ips, 23079, "{suffix}");
        assert_eq!(l.info.skipped, ips, "{suffix}");
        assert!(
            l.set
                .warnings()
                .iter()
                .take(5)
                .all(|w| w.contains("ip address")),
            "{:?}",
            l.set.warnings()
        );
    }

    // -ag.txt is the browser (uBlock/AdGuard) list: the same domain rules
    // (`||d^$all`) plus 6,051 URL rules (`||host/path^$all`), which are not
    // whole-domain blocks and are skipped. Three URLs had an empty path, so
    // their rules in the URL section are plain `||host^$all` domain rules
    // that are not in the domain section: ag = reference + exactly those.
    let rel = format!("{URLHAUS}-ag.txt");
    let ag = load(&rel);
    let text = std::fs::read_to_string(path(&rel)).unwrap();
    let url_section_start = text
        .lines()
        .position(|l| l.starts_with("||") && l.contains('/'))
        .unwrap();
    let from_url_section: BTreeSet<String> = text
        .lines()
        .skip(url_section_start)
        .filter_map(|l| l.strip_prefix("||")?.strip_suffix("^$all"))
        .filter(|d| !d.contains('/'))
        .map(str::to_string)
        .collect();
    assert_eq!(from_url_section.len(), 3, "{from_url_section:?}");
    assert!(ag.domains.is_superset(&reference.domains));
    let extra: BTreeSet<String> = ag.domains.difference(&reference.domains).cloned().collect();
    assert_eq!(extra, from_url_section);
    let url_rules = lines_matching(&rel, |l| l.starts_with("||") && l.contains('/'));
    let ip_rules = lines_matching(&rel, |l| {
        is_ipv4(l.trim_start_matches("||").trim_end_matches("^$all"))
    });
    assert_eq!((url_rules, ip_rules), (6051, 23079));
    assert_eq!(ag.info.skipped, url_rules + ip_rules);
}

const PROJECT: &str = "blocklists/blocklistproject";

#[test]
fn blocklistproject_formats_agree() {
    for list in ["crypto", "ransomware", "scam"] {
        let base = load(&format!("{PROJECT}/{list}.domains.txt"));
        assert_eq!(base.info.skipped, 0, "{list}: {:?}", base.set.warnings());
        for fmt in ["domains", "hosts", "adguard", "dnsmasq"] {
            let rel = format!("{PROJECT}/{list}.{fmt}.txt");
            let l = load(&rel);
            assert_eq!(l.info.skipped, 0, "{rel}: {:?}", l.set.warnings());
            assert_eq!(l.info.duplicates, 0, "{rel}");
            if let Some(n) = header_entries(&rel) {
                assert_eq!(l.domains.len(), n, "{rel}: `Entries:` header");
            }
            if list == "crypto" && fmt == "hosts" {
                // crypto.hosts.txt is a different build from the other three
                // crypto files: its header reads "Updated by upstream
                // monitoring / Date: 2026-07-20" with no `Entries:` line
                // (the others: "Last modified: 2026-07-06", "Entries: 1,272").
                // It holds the same names plus two.
                assert_eq!(header_entries(&rel), None);
                assert!(l.domains.is_superset(&base.domains));
                let extra: Vec<&str> = l
                    .domains
                    .difference(&base.domains)
                    .map(String::as_str)
                    .collect();
                assert_eq!(extra, ["adiri.tel", "tokenist.com"]);
            } else {
                assert_eq!(l.domains, base.domains, "{rel}");
            }
        }
    }
}

#[test]
fn counts_match_summary_tsv() {
    let tsv = std::fs::read_to_string(path("blocklists-summary.tsv")).unwrap();
    let mut rows = 0;
    let mut seen = BTreeMap::new();
    for line in tsv.lines().skip(1).filter(|l| !l.is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, format, entries, distinct) = (cols[0], cols[1], cols[2], cols[3]);
        let entries: usize = entries.parse().unwrap();
        let l = load(file);
        let i = &l.info;
        if format == "rpz" {
            // The summary counts the 3 zone-header records ($TTL, SOA, NS) as
            // entries; they are zone structure, neither entries nor skipped.
            assert_eq!(i.entries + 3, entries, "{file}");
            assert_eq!(i.skipped, 0, "{file}");
        } else {
            // Summary entries = rule lines. Each one is an entry, a repeat
            // or a skipped line (IP addresses, URL rules).
            assert_eq!(i.entries + i.duplicates + i.skipped, entries, "{file}");
        }
        if let Ok(distinct) = distinct.parse::<usize>() {
            // distinct_domains counts IPs too (same column for -domains.txt,
            // which lists them); there are no repeats in these files.
            assert_eq!(i.duplicates, 0, "{file}");
            assert_eq!(i.entries + i.skipped, distinct, "{file}");
        }
        if let Some(n) = header_entries(file) {
            assert_eq!(i.entries, n, "{file}: `Entries:` header");
        }
        seen.insert(file.to_string(), i.entries);
        rows += 1;
    }
    assert_eq!(rows, 22);
    assert_eq!(
        seen["blocklists/blocklistproject/phishing.domains.txt"],
        190215
    );
    assert_eq!(
        seen["blocklists/urlhaus-filter/urlhaus-filter-ag.txt"],
        2692
    );
}

#[test]
fn combined_lists_deduplicate() {
    let files: Vec<PathBuf> = ["-hosts.txt", "-rpz.conf", "-dnsmasq.conf"]
        .iter()
        .map(|s| path(&format!("{URLHAUS}{s}")))
        .collect();
    let set = BlocklistSet::load(&files, &[]).unwrap();
    assert_eq!(set.len(), 2689);
    assert!(
        set.lists()
            .iter()
            .all(|l| l.entries == 2689 && l.skipped == 0)
    );
    let names: Vec<&str> = set.lists().iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "urlhaus-filter-hosts",
            "urlhaus-filter-rpz",
            "urlhaus-filter-dnsmasq"
        ]
    );
    // Hits are attributed to the first list holding the name.
    let some = set.domains().nth(100).unwrap().to_string();
    let q = dnsmonitor::dns::QName::from_text(&format!("sub.{some}")).unwrap();
    let hit = set.lookup(&q).unwrap();
    assert_eq!(
        (hit.domain, hit.list),
        (some.as_str(), "urlhaus-filter-hosts")
    );
}

#[test]
fn repository_examples_load_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("blocklists");
    let set = BlocklistSet::load(&[dir.join("example.txt")], &[dir.join("allow.txt")]).unwrap();
    assert!(set.warnings().is_empty(), "{:?}", set.warnings());
    assert!(set.len() >= 12);
    let q = |s: &str| dnsmonitor::dns::QName::from_text(s).unwrap();
    let hit = set.lookup(&q("cdn.malware.example")).unwrap();
    assert_eq!((hit.domain, hit.list), ("malware.example", "example"));
    assert!(set.lookup(&q("notmalware.example")).is_none());
    assert!(
        set.lookup(&q("docs.phish.test")).is_none(),
        "allow.txt exempts docs.phish.test"
    );
    assert!(set.lookup(&q("login.phish.test")).is_some());
}
