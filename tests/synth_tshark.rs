//! The generator's frames against tshark: tshark decodes what `synth`
//! builds (names, types, rcodes, addresses, TTLs over UDP/IPv4, UDP/IPv6
//! and TCP) and finds every IP, UDP and TCP checksum good. Needs tshark
//! (`scripts/install-deps.sh`); without it the test fails unless
//! `DNSMONITOR_SKIP_SERVICES=1` (then SKIPPED and counted).

use std::net::{IpAddr, SocketAddr};

use dnsmonitor::packet::Transport;
use dnsmonitor::synth::{FrameBuilder, PcapWriter, qtype};

mod common;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// tshark decodes what we build (and validates our IP/UDP/TCP checksums).
#[test]
fn tshark_decodes_built_frames() {
    if std::process::Command::new("tshark")
        .arg("-v")
        .output()
        .is_err()
    {
        common::cannot_run("tshark not installed (scripts/install-deps.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.pcap");
    let mut fb = FrameBuilder::new();
    let (c, s) = (sa("192.0.2.10:40001"), sa("192.0.2.1:53"));
    let (c6, s6) = (sa("[2001:db8::10]:40002"), sa("[2001:db8::1]:53"));
    let mut w = PcapWriter::create(&path).unwrap();
    let t0 = 1_700_000_000_000_000;
    w.write_frame(
        t0,
        fb.query(c, s, 0x1111, "www.example.com", qtype::A, false),
    )
    .unwrap();
    let a = [ip("192.0.2.99"), ip("192.0.2.98")];
    w.write_frame(
        t0 + 1,
        fb.response(s, c, 0x1111, "www.example.com", 1, 0, &a, 0),
    )
    .unwrap();
    w.write_frame(
        t0 + 2,
        fb.query(c6, s6, 0x2222, "v6.example.org", qtype::AAAA, true),
    )
    .unwrap();
    let a6 = [ip("2001:db8::99")];
    w.write_frame(
        t0 + 3,
        fb.response(s6, c6, 0x2222, "v6.example.org", 28, 0, &a6, 0),
    )
    .unwrap();
    w.write_frame(
        t0 + 4,
        fb.response(s, c, 0x3333, "nx.test", 16, 3, &[], 1200),
    )
    .unwrap();
    fb.set_transport(Transport::Tcp);
    w.write_frame(
        t0 + 5,
        fb.query(c, s, 0x4444, "tcp.example", qtype::MX, false),
    )
    .unwrap();
    w.into_inner().unwrap();

    let out = std::process::Command::new("tshark")
        .args(["-n", "-r"])
        .arg(&path)
        .args(["-o", "ip.check_checksum:TRUE"])
        .args(["-o", "udp.check_checksum:TRUE"])
        .args(["-o", "tcp.check_checksum:TRUE"])
        .args(["-T", "fields", "-E", "separator=|"])
        .args([
            "-e",
            "dns.id",
            "-e",
            "dns.flags.response",
            "-e",
            "dns.qry.name",
        ])
        .args(["-e", "dns.qry.type", "-e", "dns.flags.rcode", "-e", "dns.a"])
        .args([
            "-e",
            "dns.aaaa",
            "-e",
            "dns.resp.ttl",
            "-e",
            "ip.checksum.status",
        ])
        .args(["-e", "udp.checksum.status", "-e", "tcp.checksum.status"])
        .args(["-e", "_ws.expert.severity", "-e", "frame.len"])
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('|').collect()).collect();
    assert_eq!(rows.len(), 6, "{text}");
    let expect = [
        ["0x1111", "0", "www.example.com", "1", "", "", ""],
        [
            "0x1111",
            "1",
            "www.example.com",
            "1",
            "0",
            "192.0.2.99,192.0.2.98",
            "",
        ],
        ["0x2222", "0", "v6.example.org", "28", "", "", ""],
        [
            "0x2222",
            "1",
            "v6.example.org",
            "28",
            "0",
            "",
            "2001:db8::99",
        ],
        ["0x3333", "1", "nx.test", "16", "3", "", ""],
        ["0x4444", "0", "tcp.example", "15", "", "", ""],
    ];
    for (i, (row, want)) in rows.iter().zip(expect).enumerate() {
        assert_eq!(&row[..7], &want[..], "row {i}: {text}");
        // checksum status 1 = good (0 bad, 2 unverified); empty where absent
        for (col, name) in [(8, "ip"), (9, "udp"), (10, "tcp")] {
            assert!(
                row[col].is_empty() || row[col] == "1",
                "row {i} {name} checksum status {:?}: {text}",
                row[col]
            );
        }
        assert!(
            row[11].is_empty(),
            "row {i} has expert info {:?}: {text}",
            row[11]
        );
    }
    assert_eq!(rows[1][7], "300,300");
    assert_eq!(rows[2][8], "", "ipv6 has no header checksum");
    assert_eq!(rows[5][10], "1");
    assert_eq!(rows[3][9], "1", "udp/ipv6 checksum verified");
    assert!(rows[4][12].parse::<usize>().unwrap() >= 14 + 20 + 8 + 1200);
}
