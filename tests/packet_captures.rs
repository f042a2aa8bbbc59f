//! Real captures through `PacketDecoder`, cross-checked against tshark.
//!
//! Ground truth: `../shared/data/captures-summary.tsv` (per capture:
//! `udp_msgs`/`tcp_msgs`, DNS + mDNS + LLMNR messages as tshark counts them)
//! and `<capture>.tshark-dns.tsv` (per frame: DNS id, QR flag, time).
//! For every capture not in [`KNOWN_DIFFERENCES`] the per-transport counts
//! must equal tshark's and the messages must be the same (id, QR, time).

use std::collections::HashMap;

use dnsmonitor::packet::{PacketConfig, PacketDecoder, PacketError, PacketStats, Transport};

mod common;

/// The shared test data folder (fails naming it when missing).
fn data() -> String {
    common::shared_data().display().to_string()
}

const DNS_PORT: u16 = 53;
const MDNS_PORT: u16 = 5353;
const LLMNR_PORT: u16 = 5355;

/// Ports tshark decodes as DNS beyond what the summary says. tshark
/// dissects TCP port 5353 as plain DNS (it reports `dns/tcp`, not mDNS, so
/// the summary's `mdns` column is 0 for this file).
const EXTRA_PORTS: &[(&str, &[u16])] = &[("suricata-verify/dns-incomplete.pcap", &[MDNS_PORT])];

/// Captures where our counts differ from tshark on purpose:
/// (capture, our udp, our tcp, why). None of these is a decoding bug.
const KNOWN_DIFFERENCES: &[(&str, u64, u64, &str)] = &[
    (
        "attacks/nrdelegation-attack-figure1.pcap",
        126,
        0,
        "28 ICMP errors quote a DNS datagram; tshark dissects the quoted copy, \
         we count ICMP as not_dns (the quoted message is not traffic)",
    ),
    (
        "attacks/nscacheflush-e1-ns.pcap",
        22,
        0,
        "20 ICMP errors quoting DNS (as above)",
    ),
    (
        "attacks/nscacheflush-e2-cname.pcap",
        135,
        2,
        "13 ICMP errors quoting DNS (as above)",
    ),
    (
        "suricata-verify/dns-over-http2.pcap",
        0,
        0,
        "DNS over HTTP/2 (DoH, TCP port 80): not the DNS wire transport",
    ),
    (
        "suricata-verify/dns-over-http2-post.pcap",
        0,
        0,
        "DNS over HTTP/2 (DoH, TCP port 80)",
    ),
    (
        "suricata-verify/dns-over-http2-limit.pcap",
        0,
        0,
        "DNS over HTTP/2 (DoH, TCP port 8080)",
    ),
    (
        "suricata-verify/vxlan-decoder-03.pcap",
        0,
        0,
        "DNS inside VXLAN (UDP 4789): tunnels are not decapsulated",
    ),
    (
        "zeek/tunnels-geneve-vxlan-dns-truncated.pcap",
        0,
        0,
        "DNS inside Geneve/VXLAN: tunnels are not decapsulated",
    ),
    (
        "zeek/tunnels-gre-over-udp-4754.pcap",
        0,
        0,
        "DNS inside GRE-over-UDP: tunnels are not decapsulated",
    ),
    (
        "zeek/tunnels-gre-pptp.pcap",
        0,
        0,
        "DNS inside GRE/PPP (PPTP): tunnels are not decapsulated",
    ),
    (
        "zeek/tunnels-gre-sample.pcap",
        0,
        0,
        "DNS inside GRE: tunnels are not decapsulated",
    ),
    (
        "zeek/tunnels-vxlan-triple-v2.pcap",
        0,
        0,
        "DNS inside nested VXLAN: tunnels are not decapsulated",
    ),
    (
        "tcpdump/dns-zlip-1.pcap",
        1,
        0,
        "empty UDP datagram to port 53 (UDP length 8): delivered as an empty \
         payload so the DNS layer counts it malformed; tshark shows no DNS",
    ),
    (
        "tcpdump/dns-zlip-2.pcap",
        1,
        0,
        "empty UDP datagram to port 53 (as above)",
    ),
    (
        "tcpdump/dns-zlip-3.pcap",
        1,
        0,
        "empty UDP datagram to port 53 (as above)",
    ),
    (
        "zeek/dns-inverse-query.pcap",
        0,
        0,
        "link type 10 (FDDI) is not supported: counted as unsupported_linktype",
    ),
];

/// One row of the summary.
#[derive(Clone, Debug)]
struct Row {
    capture: String,
    link: String,
    packets: u64,
    udp_msgs: u64,
    tcp_msgs: u64,
    mdns: u64,
    llmnr: u64,
    decode_as_ports: Vec<u16>,
}

fn summary() -> Vec<Row> {
    let path = format!("{}/captures-summary.tsv", data());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    };
    let (c_cap, c_link, c_packets, c_udp, c_tcp, c_mdns, c_llmnr, c_as) = (
        col("capture"),
        col("link"),
        col("packets"),
        col("udp_msgs"),
        col("tcp_msgs"),
        col("mdns"),
        col("llmnr"),
        col("tshark_decode_as"),
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let field = |i: usize| f.get(i).copied().unwrap_or("");
            let num = |i: usize| {
                field(i)
                    .parse::<u64>()
                    .unwrap_or_else(|e| panic!("{l}: {e}"))
            };
            // e.g. "udp.port==8053,dns tcp.port==8053,dns"
            let decode_as_ports = field(c_as)
                .split_whitespace()
                .filter_map(|d| d.split("==").nth(1)?.split(',').next()?.parse().ok())
                .collect();
            Row {
                capture: field(c_cap).to_string(),
                link: field(c_link).to_string(),
                packets: num(c_packets),
                udp_msgs: num(c_udp),
                tcp_msgs: num(c_tcp),
                mdns: num(c_mdns),
                llmnr: num(c_llmnr),
                decode_as_ports,
            }
        })
        .collect()
}

fn row(capture: &str) -> Row {
    summary()
        .into_iter()
        .find(|r| r.capture == capture)
        .unwrap_or_else(|| panic!("{capture} not in the summary"))
}

/// The DNS ports that make our view comparable with tshark's for `row`.
fn ports_for(row: &Row) -> Vec<u16> {
    let mut ports = vec![DNS_PORT];
    if row.mdns > 0 {
        ports.push(MDNS_PORT);
    }
    if row.llmnr > 0 {
        ports.push(LLMNR_PORT);
    }
    ports.extend(&row.decode_as_ports);
    for (name, extra) in EXTRA_PORTS {
        if *name == row.capture {
            ports.extend(*extra);
        }
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// A delivered message as compared with tshark: over TCP?, DNS id, QR bit,
/// capture time in µs.
type MsgKey = (bool, Option<u16>, Option<bool>, i64);

fn msg_key(transport: Transport, data: &[u8], ts_us: i64) -> MsgKey {
    let tcp = transport == Transport::Tcp;
    let id = match data {
        [a, b, ..] => Some(u16::from_be_bytes([*a, *b])),
        _ => None,
    };
    let qr = data.get(2).map(|f| f & 0x80 != 0);
    (tcp, id, qr, ts_us)
}

/// Capture time in µs (`time_t`/`suseconds_t` widths vary by platform).
#[allow(clippy::useless_conversion)]
fn ts_us(h: &pcap::PacketHeader) -> i64 {
    i64::from(h.ts.tv_sec) * 1_000_000 + i64::from(h.ts.tv_usec)
}

#[derive(Debug, Default)]
struct Decoded {
    linktype: i32,
    udp: u64,
    tcp: u64,
    stats: PacketStats,
    messages: Vec<MsgKey>,
}

/// Decodes a capture with `workers` decoders, frames routed by
/// `shard_key % workers` (1 = a single decoder).
fn decode_capture(capture: &str, ports: &[u16], workers: usize) -> Decoded {
    let path = format!("{}/captures/{capture}", data());
    let mut cap = pcap::Capture::from_file(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let linktype = cap.get_datalink().0;
    let cfg = PacketConfig {
        dns_ports: ports.to_vec(),
        ..PacketConfig::default()
    };
    let mut decoders: Vec<PacketDecoder> = (0..workers)
        .map(|_| PacketDecoder::new(cfg.clone()))
        .collect();
    let mut out = Decoded {
        linktype,
        ..Decoded::default()
    };
    loop {
        let packet = match cap.next_packet() {
            Ok(p) => p,
            Err(pcap::Error::NoMorePackets) => break,
            // A file cut inside a record header (misc/dpkt-truncated_dns_2):
            // tshark stops there too.
            Err(pcap::Error::PcapError(msg)) if msg.contains("truncated dump file") => break,
            Err(e) => panic!("{path}: {e}"),
        };
        let ts_us = ts_us(packet.header);
        let key = PacketDecoder::shard_key(linktype, packet.data);
        let worker = (key % workers as u64) as usize;
        decoders[worker].decode(linktype, ts_us, packet.data, |p| {
            match p.transport {
                Transport::Udp => out.udp += 1,
                Transport::Tcp => out.tcp += 1,
            }
            out.messages.push(msg_key(p.transport, p.data, p.ts_us));
        });
    }
    for d in &decoders {
        out.stats.merge(d.stats());
    }
    out.messages.sort();
    out
}

fn decode_row(row: &Row) -> Decoded {
    decode_capture(&row.capture, &ports_for(row), 1)
}

/// tshark's messages for a capture, from `<capture>.tshark-dns.tsv`.
fn tshark_messages(capture: &str) -> Vec<MsgKey> {
    let stem = capture.rsplit_once('.').map(|(s, _)| s).unwrap_or(capture);
    let path = format!("{}/captures/{stem}.tshark-dns.tsv", data());
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Vec::new();
    };
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (c_time, c_id, c_qr, c_proto) = (col("time_epoch"), col("dns_id"), col("qr"), col("proto"));
    let mut out = Vec::new();
    for l in lines.filter(|l| !l.is_empty()) {
        let f: Vec<&str> = l.split('\t').collect();
        let field = |i: usize| f.get(i).copied().unwrap_or("");
        let (secs, frac) = field(c_time)
            .split_once('.')
            .unwrap_or((field(c_time), "0"));
        let frac = format!("{frac:0<6}");
        let ts_us = secs.parse::<i64>().expect("secs") * 1_000_000
            + frac[..6].parse::<i64>().expect("micros");
        let tcp = field(c_proto).ends_with("/tcp");
        let qrs: Vec<&str> = field(c_qr).split(';').collect();
        for (i, id) in field(c_id).split(';').enumerate() {
            let id = u16::from_str_radix(id.trim_start_matches("0x"), 16).ok();
            let qr = qrs.get(i).and_then(|q| match *q {
                "0" => Some(false),
                "1" => Some(true),
                _ => None,
            });
            out.push((tcp, id, qr, ts_us));
        }
    }
    out.sort();
    out
}

fn assert_matches_tshark(row: &Row, d: &Decoded) {
    assert_eq!(
        (d.udp, d.tcp),
        (row.udp_msgs, row.tcp_msgs),
        "{}: (udp, tcp) messages vs tshark; stats {:?}",
        row.capture,
        d.stats
    );
    assert_eq!(
        d.messages,
        tshark_messages(&row.capture),
        "{}: messages (transport, id, qr, ts) vs tshark",
        row.capture
    );
}

fn check(capture: &str) -> Decoded {
    let row = row(capture);
    let d = decode_row(&row);
    assert_matches_tshark(&row, &d);
    d
}

#[test]
fn zeek_ipv6_fragmented_dns() {
    let d = check("zeek/ipv6-fragmented-dns.pcap");
    assert_eq!(d.linktype, 1);
    assert_eq!(d.udp, 5);
    assert_eq!(d.stats.fragments_reassembled, 1);
    assert_eq!(d.stats.errors_total(), 0);
}

#[test]
fn ndpi_dns_fragmented_ipv4_and_ipv6() {
    let d = check("ndpi/dns_fragmented.pcap");
    assert_eq!((d.udp, d.tcp), (39, 4));
    // 4 IPv4 and 3 IPv6 fragmented responses.
    assert_eq!(d.stats.fragments_reassembled, 7);
    assert_eq!(d.stats.errors_total(), 0);
}

#[test]
fn stopddos_rrsig_amplification_ipv4_fragments() {
    let d = check("attacks/stopddos-amp.dns.RRSIG.fragmented.pcap");
    assert_eq!(d.udp, 402);
    assert!(d.stats.fragments_reassembled > 0);
    assert_eq!(d.stats.errors_total(), 0);
}

#[test]
fn suricata_dns_tcp_multirequest_buffer() {
    let d = check("suricata-verify/dns-tcp-multirequest-buffer.pcap");
    assert_eq!((d.udp, d.tcp), (0, 40));
}

#[test]
fn suricata_dns_incomplete_dlt_null() {
    let d = check("suricata-verify/dns-incomplete.pcap");
    assert_eq!(d.linktype, 0);
    assert_eq!(d.tcp, 4);
}

#[test]
fn suricata_dns_tcp_ts_gap_capture_loss() {
    // One response segment is missing from the capture; the client's ACK
    // shows it was delivered, so the stream resumes after the gap.
    let d = check("suricata-verify/dns-tcp-ts-gap.pcap");
    assert_eq!(d.tcp, 5);
}

#[test]
fn raw_ip_capture() {
    let d = check("suricata-verify/dns-udp-eve-log-srv.pcap");
    assert_eq!(d.linktype, 12);
    assert_eq!(d.udp, 2);
    let d = check("zeek/dns_extended_rcode.pcap");
    assert_eq!(d.linktype, 228);
}

#[test]
fn linux_sll_capture() {
    // The only Linux cooked capture: DNS over HTTPS (TCP 443), no DNS wire
    // traffic; every frame must parse down to TCP as not_dns.
    let r = row("ndpi/dns2tcp_tunnel.pcap");
    assert_eq!(r.link, "linux-sll");
    let d = decode_row(&r);
    assert_matches_tshark(&r, &d);
    assert_eq!(d.linktype, 113);
    assert_eq!(d.stats.frames, 50);
    assert_eq!(d.stats.not_dns, 50);
    assert_eq!(d.stats.errors_total(), 0);
}

#[test]
fn every_capture_matches_tshark_or_is_listed() {
    let rows = summary();
    assert!(rows.len() > 100);
    let known: HashMap<&str, (u64, u64, &str)> = KNOWN_DIFFERENCES
        .iter()
        .map(|&(c, u, t, why)| (c, (u, t, why)))
        .collect();
    let mut compared = 0;
    for r in &rows {
        let d = decode_row(r);
        assert_eq!(d.stats.frames, r.packets, "{}: frames read", r.capture);
        match known.get(r.capture.as_str()) {
            Some(&(udp, tcp, why)) => {
                assert_eq!((d.udp, d.tcp), (udp, tcp), "{}: {why}", r.capture);
                assert_ne!(
                    (d.udp, d.tcp),
                    (r.udp_msgs, r.tcp_msgs),
                    "{} now agrees with tshark: drop it from KNOWN_DIFFERENCES",
                    r.capture
                );
            }
            None => {
                assert_matches_tshark(r, &d);
                compared += 1;
            }
        }
    }
    assert_eq!(compared + KNOWN_DIFFERENCES.len(), rows.len());
    let fddi = decode_row(&row("zeek/dns-inverse-query.pcap"));
    assert_eq!(
        fddi.stats.error(PacketError::UnsupportedLinktype),
        fddi.stats.frames
    );
}

#[test]
fn sharded_decoding_gives_the_same_messages() {
    // Frames routed to 4 decoders by shard_key: fragments and both
    // directions of TCP connections must meet, so nothing is lost.
    const WORKERS: usize = 4;
    for r in summary() {
        let ports = ports_for(&r);
        let one = decode_capture(&r.capture, &ports, 1);
        let many = decode_capture(&r.capture, &ports, WORKERS);
        assert_eq!(one.messages, many.messages, "{}", r.capture);
        assert_eq!(
            one.stats.fragments_reassembled, many.stats.fragments_reassembled,
            "{}",
            r.capture
        );
    }
}

#[test]
fn mutated_real_frames_never_panic() {
    // Every frame of every capture, with a few bytes changed in its first
    // 96 bytes (headers) or cut short, through one decoder per capture.
    let mut rng = dnsmonitor::synth::Rng::new(0x0123_4567_89ab_cdef);
    for r in summary() {
        let path = format!("{}/captures/{}", data(), r.capture);
        let mut cap = pcap::Capture::from_file(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let linktype = cap.get_datalink().0;
        let mut d = PacketDecoder::new(PacketConfig {
            dns_ports: ports_for(&r),
            max_fragment_datagrams: 16,
            max_tcp_flows: 16,
            ..PacketConfig::default()
        });
        let mut frames = 0u64;
        while let Ok(p) = cap.next_packet() {
            let mut frame = p.data.to_vec();
            for _ in 0..1 + rng.next_u64() % 4 {
                if !frame.is_empty() {
                    let at = (rng.next_u64() % frame.len().min(96) as u64) as usize;
                    frame[at] = rng.next_u64() as u8;
                }
            }
            if rng.next_u64().is_multiple_of(5) {
                let n = (rng.next_u64() % (frame.len() as u64 + 1)) as usize;
                frame.truncate(n);
            }
            let ts = ts_us(p.header);
            let _ = PacketDecoder::shard_key(linktype, &frame);
            d.decode(linktype, ts, &frame, |m| {
                assert!(m.data.len() <= usize::from(u16::MAX));
            });
            frames += 1;
        }
        assert_eq!(d.stats().frames, frames, "{}", r.capture);
    }
}

/// `PcapFiles` (our own reader for classic pcap files, libpcap for the
/// rest and from the first record it is not sure of) hands on exactly the
/// records libpcap reads, in order, on every shared capture: times, wire
/// lengths and bytes.
#[test]
fn pcap_files_hand_on_what_libpcap_reads() {
    use dnsmonitor::sources::pcap_file::{PcapFiles, record_time_us};
    let captures = common::all_captures();
    assert!(captures.len() > 100, "{} captures", captures.len());
    let mut records = 0u64;
    for path in captures {
        let mut cap = pcap::Capture::from_file(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        let mut ours = PcapFiles::open(std::slice::from_ref(&path)).expect("opens");
        let mut n = 0u64;
        // Past where libpcap stops, `PcapFiles` may go on (resync).
        while let Ok(theirs) = cap.next_packet() {
            n += 1;
            let mine = ours
                .next_packet()
                .unwrap_or_else(|| panic!("{path:?}: record {n} missing"));
            assert_eq!(mine.frame, n, "{path:?}");
            assert_eq!(
                mine.ts_us,
                record_time_us(theirs.header.ts.tv_sec, theirs.header.ts.tv_usec),
                "{path:?} record {n}"
            );
            assert_eq!(mine.orig_len, theirs.header.len, "{path:?} record {n}");
            assert_eq!(mine.data, theirs.data, "{path:?} record {n}");
        }
        records += n;
    }
    assert!(records > 10_000, "{records} records");
}
