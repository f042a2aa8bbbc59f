//! Agreement test: `dns::decode` against tshark 4.0 on every real capture
//! under shared/data/captures that has a `NAME.tshark-dns.tsv` beside it
//! (see shared/data/SOURCES.md for how those files were made).
//!
//! For each frame, and each DNS message in it, we compare: id, qr, opcode,
//! rcode (responses only: tshark prints no rcode for queries), TC, the first
//! question's name and type, and ancount/nscount/arcount.
//!
//! Scope:
//! - only tshark rows with proto `dns/udp` or `dns/tcp` and port 53 on one
//!   side; mDNS/LLMNR rows and the captures that tshark decoded on other
//!   ports through `-d` decode-as (8053, 1053) or found inside HTTP/2 (DoH)
//!   are skipped: the packet layer runs with its default config (port 53).
//! - payloads come from the crate's `PacketDecoder` (link layer, IP
//!   reassembly, TCP reassembly); frames it does not turn into a payload
//!   (tunnels, DNS quoted in ICMP errors...) are counted per capture and
//!   allowed only for the captures in `NOT_EXTRACTED`, with the reason.
//! - every decoded message is also written with `write_event` and the line
//!   parsed back with serde_json.
//!
//! Name normalisation: tshark prints a name as its raw label bytes joined by
//! `.` (a `.` or `\` inside a label is not escaped), control bytes as C
//! escapes (`\a \b \t \n \v \f \r`, otherwise `\ooo` octal, DEL as `\177`),
//! valid UTF-8 sequences as is and every other byte >= 0x80 as U+FFFD, and
//! the root as `<Root>`. We render our `QName`'s raw labels the same way
//! (`tshark_name`) and compare the strings exactly (case preserved on both
//! sides). A name tshark could not parse shows up as `<Name ...>` and must
//! be a decode error on our side.
//!
//! Deliberate differences are listed per capture and frame in `DEVIATIONS`
//! with the reason; every entry must still be hit, so the list cannot go
//! stale. Bugs on our side are fixed, not listed.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use dnsmonitor::dns::event::write_event;
use dnsmonitor::dns::{DecodeError, DnsMessage, QName, decode};
use dnsmonitor::packet::{PacketConfig, PacketDecoder, Payload, Transport};

mod common;

/// Below this the test would be close to vacuous.
const MIN_COMPARED: usize = 10_000;

/// Frames where tshark's view differs from ours on purpose.
/// Frames where tshark's view differs from ours on purpose: capture, frame,
/// the fields that differ (comma-separated; `rejected` = we refuse the
/// message tshark shows), and why. Only the named fields are excused.
const DEVIATIONS: &[(&str, u64, &str, &str)] = &[
    // Extended RCODE (RFC 6891): our rcode is the 12-bit value (header 4
    // bits + the OPT record's upper 8); tshark's dns.flags.rcode is only the
    // header's 4 bits.
    (
        "tcpdump/dns-badcookie.pcap",
        2,
        "rcode",
        "BADCOOKIE 23 = OPT ext 1 + header 7; tshark shows 7",
    ),
    (
        "tcpdump/dns-badvers.pcap",
        2,
        "rcode",
        "BADVERS 16 = OPT ext 1 + header 0; tshark shows 0",
    ),
    (
        "zeek/dns_extended_rcode.pcap",
        2,
        "rcode",
        "BADVERS 16 = OPT ext 1 + header 0; tshark shows 0",
    ),
    // UPDATE (opcode 5, RFC 2136): tshark files the answer/authority counts
    // as dns.count.prereq / dns.count.updates, so its ancount/nscount
    // columns are empty; ours are the raw header counts.
    (
        "suricata-verify/dns-answer-emptydata.pcap",
        4,
        "ancount,nscount",
        "UPDATE: counts under other tshark fields",
    ),
    (
        "suricata-verify/dns-answer-emptydata.pcap",
        6,
        "ancount,nscount",
        "UPDATE: counts under other tshark fields",
    ),
    (
        "zeek/dns-dynamic-update.pcap",
        1,
        "ancount,nscount",
        "UPDATE: counts under other tshark fields",
    ),
    (
        "zeek/dns-dynamic-update.pcap",
        2,
        "ancount,nscount",
        "UPDATE: counts under other tshark fields",
    ),
    (
        "zeek/dns-dynamic-update.pcap",
        3,
        "ancount,nscount",
        "UPDATE: counts under other tshark fields",
    ),
    (
        "zeek/dns-dynamic-update.pcap",
        4,
        "ancount,nscount",
        "UPDATE: counts under other tshark fields",
    ),
    // Compression pointers must point backwards (a named bound of the
    // decoder, as in domain and RFC 1035 4.1.4's "prior occurrence");
    // tshark follows forward pointers.
    (
        "suricata-verify/dns-forward-pointer.pcap",
        1,
        "rejected",
        "question name uses a forward pointer",
    ),
];

/// Every DNS frame tshark marks malformed (`_ws.malformed`, found with
/// `tshark -Y '_ws.malformed and dns'` on each capture), with what we do
/// with it: `rejected:<reason>` (decode error), `kept` (header and question
/// agree with tshark, which threw later, in a record's RDATA or options we
/// do not parse), or `kept:bad_record` (same, and the OPT walk hit the
/// broken record, so `record_error` is set and `edns` unknown).
const MALFORMED: &[(&str, u64, &str, &str)] = &[
    (
        "suricata-verify/dns-corrupt-additionals.pcap",
        2,
        "kept:bad_record",
        "additional record cut short",
    ),
    (
        "suricata-verify/dns-udp-junkrequest-first.pcap",
        1,
        "rejected:bad_name",
        "SNMP bytes on port 53: reserved label type",
    ),
    (
        "tcpdump/dns-badlabel.pcap",
        1,
        "rejected:bad_name",
        "question name over 255 octets",
    ),
    (
        "tcpdump/dns_fwdptr.pcap",
        1,
        "rejected:bad_name",
        "question names built from forward pointers",
    ),
    (
        "zeek/dns-edns-bad-length.pcap",
        1,
        "kept",
        "EDNS option length past the OPT RDATA",
    ),
    (
        "zeek/dns-edns-ecs-weirds.pcap",
        5,
        "kept",
        "ECS option with an address too long",
    ),
    (
        "zeek/dns-invalid-names.pcap",
        1,
        "rejected:bad_question",
        "question cut short",
    ),
    (
        "zeek/dns-invalid-names.pcap",
        3,
        "rejected:bad_question",
        "question cut short",
    ),
    (
        "zeek/dns-loc-invalid-length.pcap",
        1,
        "kept",
        "LOC RDATA of a wrong length",
    ),
    (
        "zeek/dns-svcb-alpn-malformed-len-too-long.pcap",
        2,
        "kept",
        "SVCB alpn length past its value",
    ),
    (
        "zeek/dns-svcb-alpn-malformed-len-too-short.pcap",
        2,
        "kept",
        "SVCB alpn length short of its value",
    ),
    (
        "zeek/dns-svcb-port-malformed.pcap",
        2,
        "kept",
        "SVCB port value of a wrong length",
    ),
    // suricata-verify/dns-over-http2-limit.pcap frame 39 is DoH (HTTP/2 on
    // port 443): out of scope.
];

/// Captures whose DNS frames (some or all) the packet layer does not
/// produce, with the reason.
const NOT_EXTRACTED: &[(&str, &str)] = &[
    // Not DNS messages on the wire: tshark dissects the datagram quoted in
    // an ICMP error (port unreachable etc.). Never to be extracted.
    (
        "attacks/nrdelegation-attack-figure1.pcap",
        "DNS quoted inside ICMP errors",
    ),
    (
        "attacks/nscacheflush-e1-ns.pcap",
        "DNS quoted inside ICMP errors",
    ),
    (
        "attacks/nscacheflush-e2-cname.pcap",
        "DNS quoted inside ICMP errors",
    ),
    // Encapsulations the packet layer does not decode (not in PRODUCT.md's
    // ingest list: Ethernet, 802.1Q/QinQ, SLL/SLL2, raw IP, BSD loopback;
    // PPPoE is decoded too).
    ("zeek/dns-inverse-query.pcap", "FDDI link type"),
    ("suricata-verify/vxlan-decoder-03.pcap", "VXLAN tunnel"),
    (
        "zeek/tunnels-geneve-vxlan-dns-truncated.pcap",
        "Geneve/VXLAN tunnel",
    ),
    ("zeek/tunnels-gre-over-udp-4754.pcap", "GRE over UDP tunnel"),
    ("zeek/tunnels-gre-pptp.pcap", "PPTP GRE tunnel"),
    ("zeek/tunnels-gre-sample.pcap", "GRE tunnel"),
    ("zeek/tunnels-vxlan-triple-v2.pcap", "nested VXLAN tunnel"),
];

#[derive(Debug)]
struct TsharkRow {
    ids: Vec<u16>,
    qr: Vec<u8>,
    opcode: Vec<u8>,
    rcode: Vec<u16>,
    tc: Vec<u8>,
    qname: Vec<String>,
    qtype: Vec<u16>,
    ancount: Vec<u16>,
    nscount: Vec<u16>,
    arcount: Vec<u16>,
    ports: Vec<u16>,
    proto: String,
}

impl TsharkRow {
    fn messages(&self) -> usize {
        self.qr.len()
    }
}

fn list<T: std::str::FromStr>(field: &str) -> Vec<T>
where
    T::Err: std::fmt::Debug,
{
    if field.is_empty() {
        return Vec::new();
    }
    field
        .split(';')
        .map(|v| {
            v.parse()
                .unwrap_or_else(|e| panic!("bad value {v:?}: {e:?}"))
        })
        .collect()
}

fn read_tsv(path: &Path) -> BTreeMap<u64, TsharkRow> {
    let bytes = std::fs::read(path).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    let mut lines = text.split('\n');
    let header = lines.next().unwrap();
    assert!(header.starts_with("frame\ttime_epoch\tip_src"), "{header}");
    let mut rows = BTreeMap::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let c: Vec<&str> = line.split('\t').collect();
        assert_eq!(c.len(), 21, "{}: {line}", path.display());
        let ids = c[10]
            .split(';')
            .filter(|v| !v.is_empty())
            .map(|v| u16::from_str_radix(v.trim_start_matches("0x"), 16).unwrap())
            .collect();
        let mut ports = Vec::new();
        for f in &c[6..10] {
            ports.extend(list::<u16>(f));
        }
        let row = TsharkRow {
            ids,
            qr: list(c[11]),
            opcode: list(c[12]),
            rcode: list(c[13]),
            tc: list(c[14]),
            qname: if c[15].is_empty() {
                Vec::new()
            } else {
                c[15].split(';').map(str::to_owned).collect()
            },
            qtype: list(c[16]),
            ancount: list(c[17]),
            nscount: list(c[18]),
            arcount: list(c[19]),
            ports,
            proto: c[20].to_owned(),
        };
        rows.insert(c[0].parse().unwrap(), row);
    }
    rows
}

/// Our name in tshark's display form (see the module comment).
fn tshark_name(name: &QName) -> String {
    if name.is_root() {
        return "<Root>".to_owned();
    }
    let mut raw = Vec::new();
    for (i, label) in name.labels().enumerate() {
        if i > 0 {
            raw.push(b'.');
        }
        raw.extend_from_slice(label);
    }
    wireshark_text(&raw)
}

/// Wireshark 4.0's rendering of packet text (epan/strutil.c `format_text`),
/// re-stated: printable ASCII as is; other ASCII as a C escape; a UTF-8 lead
/// byte (2- to 6-byte forms) takes as many continuation bytes as it needs,
/// stopping without consuming at the first byte that is not one; an
/// incomplete sequence, a 0xfe/0xff/stray continuation byte, a surrogate or
/// a value past U+10FFFF becomes one U+FFFD (overlong forms are accepted);
/// a decoded character that is not printable is written `\uxxxx`.
fn wireshark_text(s: &[u8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        i += 1;
        if (0x20..0x7f).contains(&c) {
            out.push(char::from(c));
            continue;
        }
        if c < 0x80 {
            push_c_escape(&mut out, c);
            continue;
        }
        let (need, mask) = match c {
            0xc0..=0xdf => (1, 0x1f),
            0xe0..=0xef => (2, 0x0f),
            0xf0..=0xf7 => (3, 0x07),
            0xf8..=0xfb => (4, 0x03),
            0xfc..=0xfd => (5, 0x01),
            _ => (0, 0),
        };
        let mut uc = 0xfffd;
        if need > 0 {
            uc = u32::from(c & mask);
            for _ in 0..need {
                match s.get(i) {
                    Some(&b) if b & 0xc0 == 0x80 => {
                        uc = (uc << 6) | u32::from(b & 0x3f);
                        i += 1;
                    }
                    _ => {
                        uc = 0xfffd;
                        break;
                    }
                }
            }
        }
        let ch = char::from_u32(uc).unwrap_or('\u{fffd}');
        if unicode_printable(ch) {
            out.push(ch);
        } else {
            out.push_str(&format!("\\u{:04x}", u32::from(ch)));
        }
    }
    out
}

fn push_c_escape(out: &mut String, c: u8) {
    match c {
        0x07 => out.push_str("\\a"),
        0x08 => out.push_str("\\b"),
        0x0c => out.push_str("\\f"),
        b'\n' => out.push_str("\\n"),
        b'\r' => out.push_str("\\r"),
        b'\t' => out.push_str("\\t"),
        0x0b => out.push_str("\\v"),
        _ => out.push_str(&format!("\\{c:03o}")),
    }
}

/// GLib's `g_unichar_isprint`: everything but control, format, unassigned
/// and surrogate code points. Control and the common format characters are
/// listed; unassigned code points are not (none occur in the captures).
fn unicode_printable(ch: char) -> bool {
    !matches!(u32::from(ch),
        0x00..=0x1f | 0x7f..=0x9f | 0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x180e
        | 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x2064 | 0x2066..=0x206f
        | 0xfeff | 0xfff9..=0xfffb)
}

/// One DNS payload the packet layer produced, copied out of the callback.
struct Extracted {
    ts_us: i64,
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    transport: Transport,
    data: Vec<u8>,
}

impl Extracted {
    fn payload(&self) -> Payload<'_> {
        Payload {
            ts_us: self.ts_us,
            src: self.src,
            dst: self.dst,
            sport: self.sport,
            dport: self.dport,
            transport: self.transport,
            data: &self.data,
        }
    }
}

// ---------------------------------------------------------------------------
// Comparison
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Tally {
    compared: usize,
    agreed_rejects: usize,
    listed: usize,
    not_extracted: BTreeMap<String, usize>,
    mismatches: Vec<String>,
    hit: Vec<(String, u64)>,
    malformed_seen: Vec<(String, u64)>,
    events: usize,
}

/// What we did with a frame, in `MALFORMED`'s terms.
fn outcome(ours: &[(&Extracted, Result<DnsMessage<'_>, DecodeError>)]) -> String {
    let parts: Vec<String> = ours
        .iter()
        .map(|(_, r)| match r {
            Err(e) => format!("rejected:{}", e.as_str()),
            Ok(m) => match m.record_error {
                Some(e) => format!("kept:{}", e.as_str()),
                None => "kept".to_owned(),
            },
        })
        .collect();
    parts.join(";")
}

fn captures(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            captures(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("pcap" | "pcapng")
        ) {
            out.push(path);
        }
    }
}

fn is_port53_dns(row: &TsharkRow) -> bool {
    matches!(row.proto.as_str(), "dns/udp" | "dns/tcp") && row.ports.contains(&53)
}

/// Compare one frame; returns the differences as (field, description).
fn compare_frame(
    row: &TsharkRow,
    ours: &[(&Extracted, Result<DnsMessage<'_>, DecodeError>)],
    t: &mut Tally,
) -> Vec<(&'static str, String)> {
    let mut diffs = Vec::new();
    if row.messages() != ours.len() {
        diffs.push((
            "count",
            format!(
                "message count: tshark {} ours {}",
                row.messages(),
                ours.len()
            ),
        ));
        return diffs;
    }
    let (mut rcode_at, mut qname_at) = (0usize, 0usize);
    let single = ours.len() == 1;
    for (i, (ex, res)) in ours.iter().enumerate() {
        let m = match res {
            Ok(m) => m,
            Err(e) => {
                // tshark must have failed on the question too: either an
                // error marker in place of the name or no name at all.
                let marker = row
                    .qname
                    .get(qname_at)
                    .is_none_or(|n| n.starts_with("<Name") || n.starts_with("<Unknown"));
                if marker && single {
                    t.agreed_rejects += 1;
                    if std::env::var_os("TSHARK_VERBOSE").is_some() {
                        println!(
                            "  both reject: {} ({:?})",
                            e.as_str(),
                            row.qname.first().map(|n| &n[..n.len().min(60)])
                        );
                    }
                } else {
                    let text = format!(
                        "msg {i}: we reject ({}), tshark has {:?}",
                        e.as_str(),
                        row.qname.get(qname_at)
                    );
                    diffs.push(("rejected", text));
                }
                continue;
            }
        };
        t.compared += 1;
        let mut d = |what: &'static str, theirs: Option<String>, our: String| {
            if theirs.as_deref() != Some(our.as_str()) {
                diffs.push((
                    what,
                    format!("msg {i} {what}: tshark {theirs:?} ours {our:?}"),
                ));
            }
        };
        if !row.ports.contains(&ex.sport) || !row.ports.contains(&ex.dport) {
            d(
                "ports",
                Some(format!("{:?}", row.ports)),
                format!("{} {}", ex.sport, ex.dport),
            );
        }
        d(
            "id",
            row.ids.get(i).map(|v| v.to_string()),
            m.id.to_string(),
        );
        d(
            "qr",
            row.qr.get(i).map(|v| v.to_string()),
            u8::from(m.qr).to_string(),
        );
        d(
            "opcode",
            row.opcode.get(i).map(|v| v.to_string()),
            m.opcode.to_string(),
        );
        d(
            "tc",
            row.tc.get(i).map(|v| v.to_string()),
            u8::from(m.flags.tc).to_string(),
        );
        d(
            "ancount",
            row.ancount.get(i).map(|v| v.to_string()),
            m.ancount.to_string(),
        );
        d(
            "nscount",
            row.nscount.get(i).map(|v| v.to_string()),
            m.nscount.to_string(),
        );
        d(
            "arcount",
            row.arcount.get(i).map(|v| v.to_string()),
            m.arcount.to_string(),
        );
        if row.qr.get(i) == Some(&1) {
            d(
                "rcode",
                row.rcode.get(rcode_at).map(|v| v.to_string()),
                m.rcode.to_string(),
            );
            rcode_at += 1;
        }
        match &m.question {
            Some(q) => {
                d(
                    "qname",
                    row.qname.get(qname_at).cloned(),
                    tshark_name(&q.qname),
                );
                d(
                    "qtype",
                    row.qtype.get(qname_at).map(|v| v.to_string()),
                    q.qtype.to_string(),
                );
            }
            None => {
                if single && !row.qname.is_empty() {
                    diffs.push((
                        "qname",
                        format!("msg {i}: no question here, tshark has {:?}", row.qname),
                    ));
                }
            }
        }
        qname_at += usize::from(m.qdcount);
    }
    diffs
}

fn run_capture(path: &Path, rel: &str, t: &mut Tally) -> bool {
    let tsv = path.with_file_name(format!(
        "{}.tshark-dns.tsv",
        path.file_stem().unwrap().to_str().unwrap()
    ));
    if !tsv.exists() {
        return false;
    }
    let rows = read_tsv(&tsv);
    let mut cap = pcap::Capture::from_file(path).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let linktype = cap.get_datalink().0;
    let mut packets = PacketDecoder::new(PacketConfig::default());
    let mut frame = 0u64;
    let mut event = Vec::new();
    loop {
        let packet = match cap.next_packet() {
            Ok(p) => p,
            Err(pcap::Error::NoMorePackets) => break,
            // A capture cut off mid-record (misc/dpkt-truncated_dns_2):
            // tshark stops there too.
            Err(e) => {
                println!("  {rel}: stops after frame {frame}: {e}");
                break;
            }
        };
        frame += 1;
        let ts_us = packet.header.ts.tv_sec * 1_000_000 + packet.header.ts.tv_usec;
        let mut extracted = Vec::new();
        packets.decode(linktype, ts_us, packet.data, |p| {
            extracted.push(Extracted {
                ts_us: p.ts_us,
                src: p.src,
                dst: p.dst,
                sport: p.sport,
                dport: p.dport,
                transport: p.transport,
                data: p.data.to_vec(),
            })
        });
        let ours: Vec<_> = extracted.iter().map(|ex| (ex, decode(&ex.data))).collect();
        // Every decoded message also goes through the event writer: one line
        // of valid JSON each, on real data.
        for (ex, m) in &ours {
            if let Ok(m) = m {
                event.clear();
                write_event(&mut event, frame, &ex.payload(), m);
                let v: serde_json::Value = serde_json::from_slice(&event)
                    .unwrap_or_else(|e| panic!("{rel} frame {frame}: bad event line: {e}"));
                // The event log carries exactly the compared fields, so what
                // agrees with tshark below is what `--events` writes.
                let q = m.question.as_ref();
                let expect = serde_json::json!({
                    "frame": frame, "id": m.id, "qr": m.qr, "opcode": m.opcode, "rcode": m.rcode,
                    "qname": q.map(|q| q.qname.to_string()), "qtype": q.map(|q| q.qtype),
                    "ancount": m.ancount, "nscount": m.nscount, "arcount": m.arcount,
                });
                for (k, want) in expect.as_object().unwrap() {
                    assert_eq!(&v[k], want, "{rel} frame {frame}: event field {k}");
                }
                t.events += 1;
            }
        }
        let listed = DEVIATIONS
            .iter()
            .find(|(f, n, _, _)| *f == rel && *n == frame);
        if let Some((_, _, expected, why)) = MALFORMED
            .iter()
            .find(|(f, n, _, _)| *f == rel && *n == frame)
        {
            t.malformed_seen.push((rel.to_owned(), frame));
            let got = outcome(&ours);
            if got != *expected {
                t.mismatches.push(format!(
                    "{rel} frame {frame} (tshark: malformed, {why}): expected {expected}, got {got}"
                ));
            }
        }
        let row = rows.get(&frame).filter(|r| is_port53_dns(r));
        let diffs = match row {
            Some(row) => {
                if ours.is_empty() {
                    *t.not_extracted.entry(rel.to_owned()).or_default() += row.messages();
                    if std::env::var_os("TSHARK_VERBOSE").is_some() {
                        println!("  not extracted: {rel} frame {frame}");
                    }
                    continue;
                }
                compare_frame(row, &ours, t)
            }
            None => {
                if rows.contains_key(&frame) {
                    continue; // mDNS/LLMNR/decode-as row: out of scope
                }
                // tshark saw no DNS here: we must not have decoded any.
                ours.iter()
                    .filter(|(_, r)| r.is_ok())
                    .map(|_| {
                        (
                            "extra",
                            "we decoded a message tshark does not show".to_owned(),
                        )
                    })
                    .collect()
            }
        };
        if diffs.is_empty() {
            continue;
        }
        let excused = |field: &str| {
            listed.is_some_and(|(_, _, fields, _)| fields.split(',').any(|f| f == field))
        };
        let (excused, unexcused): (Vec<_>, Vec<_>) =
            diffs.into_iter().partition(|(field, _)| excused(field));
        if !excused.is_empty() {
            t.listed += 1;
            t.hit.push((rel.to_owned(), frame));
        }
        for (_, diff) in unexcused {
            t.mismatches.push(format!("{rel} frame {frame}: {diff}"));
        }
    }
    true
}

#[test]
fn decode_agrees_with_tshark() {
    let dir = common::shared("captures");
    let root = dir.as_path();
    assert!(root.is_dir(), "captures not found at {}", root.display());
    let mut files = Vec::new();
    captures(root, &mut files);
    files.sort();
    let mut t = Tally::default();
    let mut with_tsv = 0;
    for path in &files {
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        if run_capture(path, &rel, &mut t) {
            with_tsv += 1;
        }
    }
    println!(
        "tshark agreement: {with_tsv} captures, {} messages compared, {} rejected by both, {} frames in DEVIATIONS, {} event lines",
        t.compared, t.agreed_rejects, t.listed, t.events
    );
    for (file, n) in &t.not_extracted {
        println!("  not extracted: {file}: {n} messages");
    }
    let mut problems = t.mismatches.clone();
    for (file, n) in &t.not_extracted {
        if !NOT_EXTRACTED.iter().any(|(f, _)| f == file) {
            problems.push(format!(
                "{file}: {n} tshark DNS messages not extracted (not in NOT_EXTRACTED)"
            ));
        }
    }
    for (file, frame, _, reason) in DEVIATIONS {
        if !t.hit.iter().any(|(f, n)| f == file && n == frame) {
            problems.push(format!(
                "stale DEVIATIONS entry {file} frame {frame} ({reason})"
            ));
        }
    }
    for (file, frame, _, why) in MALFORMED {
        if !t
            .malformed_seen
            .iter()
            .any(|(f, n)| f == file && n == frame)
        {
            problems.push(format!(
                "MALFORMED entry {file} frame {frame} ({why}) not reached"
            ));
        }
    }
    for (file, reason) in NOT_EXTRACTED {
        if !t.not_extracted.contains_key(*file) {
            problems.push(format!("stale NOT_EXTRACTED entry {file} ({reason})"));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(
        t.compared >= MIN_COMPARED,
        "only {} messages compared",
        t.compared
    );
}

#[test]
fn tshark_name_rendering() {
    let mut n = QName::new();
    n.push_label(b"a.b\\c").unwrap();
    n.push_label(b"\x07\x08\t\n\x0b\x0c\r\x1b\x7f\x00").unwrap();
    n.push_label(b"caf\xc3\xa9\xff").unwrap();
    assert_eq!(
        tshark_name(&n),
        "a.b\\c.\\a\\b\\t\\n\\v\\f\\r\\033\\177\\000.caf\u{e9}\u{fffd}"
    );
    // One replacement for an incomplete sequence (ed bf then ASCII), one per
    // 0xff, a C1 control as \u0085.
    assert_eq!(
        wireshark_text(b"M\xed\xbfdn\xff\xff\xc2\x85"),
        "M\u{fffd}dn\u{fffd}\u{fffd}\\u0085"
    );
    assert_eq!(tshark_name(&QName::new()), "<Root>");
}
