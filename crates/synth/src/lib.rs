//! dnsmonitor-synth: synthetic traffic for `dnsmonitor synth`, tests,
//! benches and demos: labelled scenarios (one file per attack, named by
//! `detect::Kind`), DGA names, a classic pcap writer, and the library's
//! builder of Ethernet/IP/UDP-or-TCP frames carrying DNS messages
//! (`packet::frame`, re-exported). A crate above dnsmonitor-core, not part
//! of the production library; the binary reaches it as `dnsmonitor::synth`.
//!
//! ```
//! use dnsmonitor_synth::{FrameBuilder, PcapWriter, qtype, rcode};
//! let (c, s) = ("10.0.0.2:40000".parse().unwrap(), "10.0.0.1:53".parse().unwrap());
//! let mut fb = FrameBuilder::new();
//! let mut w = PcapWriter::new(Vec::new()).unwrap();
//! w.write_frame(1_700_000_000_000_000, fb.query(c, s, 7, "example.com", qtype::A, true)).unwrap();
//! let ans = ["192.0.2.1".parse().unwrap()];
//! let f = fb.response(s, c, 7, "example.com", qtype::A, rcode::NOERROR, &ans, 0);
//! w.write_frame(1_700_000_000_000_500, f).unwrap();
//! let bytes = w.into_inner().unwrap();
//! assert_eq!(bytes.len(), 24 + 2 * 16 + 14 + 20 + 8 + 40 + 14 + 20 + 8 + 45);
//! ```

pub mod dga;
pub mod labelled;
pub mod newly;
mod pcap_writer;
pub mod scenario;

// The frame builder and the PRNG live in the library (core's tests use
// them too); the generator's users reach them here as before.
pub use dnsmonitor_core::packet::frame::{
    ANSWER_TTL, DST_MAC, EDNS_UDP_SIZE, FrameBuilder, SRC_MAC, qtype, rcode, tcp_flags,
};
pub use dnsmonitor_core::sketch::Rng;
pub use pcap_writer::{LINKTYPE_ETHERNET, PCAP_MAGIC_US, PCAP_SNAPLEN, PcapWriter};

#[cfg(test)]
mod tests {
    use super::*;
    use dnsmonitor_core::packet::Transport;
    use domain::base::{Message, Rtype, iana::Rcode};
    use std::net::{IpAddr, SocketAddr};

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const ETH: usize = 14;

    /// The DNS message inside a UDP frame built by FrameBuilder.
    fn udp_dns(frame: &[u8]) -> &[u8] {
        let l3 = match u16::from_be_bytes([frame[12], frame[13]]) {
            0x0800 => 20,
            0x86dd => 40,
            t => panic!("ethertype {t:#x}"),
        };
        &frame[ETH + l3 + 8..]
    }

    fn checksum(data: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        for c in data.chunks(2) {
            acc += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
        }
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        !(acc as u16)
    }

    #[test]
    fn pcap_round_trip_with_pcap_crate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.pcap");
        let mut fb = FrameBuilder::new();
        let (c, s) = (sa("192.0.2.10:5353"), sa("192.0.2.1:53"));
        let (c6, s6) = (sa("[2001:db8::10]:5353"), sa("[2001:db8::1]:53"));
        let answers = [ip("198.51.100.7")];
        let big = "x".repeat(70_000); // longer than the snaplen: truncated
        let mut frames: Vec<(i64, Vec<u8>)> = vec![
            (
                1_700_000_000_123_456,
                fb.query(c, s, 1, "a.example", 1, false).to_vec(),
            ),
            (
                1_700_000_000_999_999,
                fb.response(s, c, 1, "a.example", 1, 0, &answers, 0)
                    .to_vec(),
            ),
            (
                1_700_000_001_000_000,
                fb.query(c6, s6, 2, "b.example", 28, true).to_vec(),
            ),
            (
                1_700_000_002_000_001,
                fb.response(s, c, 3, "c.example", 16, 3, &[], 3000).to_vec(),
            ),
            (0, fb.udp_frame(c, s, big.as_bytes()).to_vec()),
        ];
        fb.set_transport(Transport::Tcp);
        frames.push((
            1_700_000_003_000_000,
            fb.query(c, s, 4, "d.example", 15, false).to_vec(),
        ));
        let mut w = PcapWriter::create(&path).unwrap();
        for (ts, f) in &frames {
            w.write_frame(*ts, f).unwrap();
        }
        w.into_inner().unwrap();

        let mut cap = pcap::Capture::from_file(&path).unwrap();
        assert_eq!(cap.get_datalink(), pcap::Linktype::ETHERNET);
        let mut n = 0;
        while let Ok(p) = cap.next_packet() {
            let (ts, f) = &frames[n];
            assert_eq!(p.header.ts.tv_sec, ts / 1_000_000, "frame {n}");
            assert_eq!(p.header.ts.tv_usec, ts % 1_000_000, "frame {n}");
            assert_eq!(p.header.len as usize, f.len());
            let incl = f.len().min(65_535);
            assert_eq!(p.header.caplen as usize, incl);
            assert_eq!(p.data, &f[..incl]);
            n += 1;
        }
        assert_eq!(n, frames.len());
    }

    #[test]
    fn names_in_wire_format() {
        let mut fb = FrameBuilder::new();
        let q = fb
            .query_message(0x1234, "www.Example.com.", qtype::A, false)
            .to_vec();
        assert_eq!(&q[..12], &[0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&q[12..], b"\x03www\x07Example\x03com\x00\x00\x01\x00\x01");
        let q = fb.query_message(1, ".", qtype::NS, false).to_vec();
        assert_eq!(&q[12..], b"\x00\x00\x02\x00\x01");
        let q = fb
            .query_message(1, r"a\.b.c\\d.\065", qtype::A, false)
            .to_vec();
        assert_eq!(&q[12..q.len() - 4], b"\x03a.b\x03c\\d\x01A\x00");
        let label = "a".repeat(63);
        let q = fb.query_message(1, &label, qtype::A, false).to_vec();
        assert_eq!(q[12], 63);
    }

    #[test]
    #[should_panic(expected = "longer than 63")]
    fn long_label_panics() {
        FrameBuilder::new().query_message(1, &"a".repeat(64), 1, false);
    }

    #[test]
    #[should_panic(expected = "empty label")]
    fn empty_label_panics() {
        FrameBuilder::new().query_message(1, "a..b", 1, false);
    }

    #[test]
    fn messages_parse_with_domain() {
        let mut fb = FrameBuilder::new();
        let q = fb.query(
            sa("10.1.1.1:1000"),
            sa("10.1.1.2:53"),
            77,
            "Q.test",
            28,
            true,
        );
        let m = Message::from_slice(udp_dns(q)).unwrap();
        assert_eq!(m.header().id(), 77);
        assert!(m.header().rd() && !m.header().qr());
        let qq = m.first_question().unwrap();
        assert_eq!(qq.qname().to_string(), "Q.test");
        assert_eq!(qq.qtype(), Rtype::AAAA);
        assert_eq!(m.opt().unwrap().udp_payload_size(), EDNS_UDP_SIZE);

        let answers = [ip("192.0.2.5"), ip("2001:db8::5"), ip("192.0.2.6")];
        let r = fb.response(
            sa("10.1.1.2:53"),
            sa("10.1.1.1:1000"),
            77,
            "q.test",
            1,
            2,
            &answers,
            0,
        );
        let m = Message::from_slice(udp_dns(r)).unwrap();
        assert!(m.header().qr() && m.header().ra());
        assert_eq!(m.header().rcode(), Rcode::SERVFAIL);
        assert_eq!(m.header_counts().ancount(), 3);
        assert!(m.opt().is_none());
        let mut got = Vec::new();
        for rr in m.answer().unwrap() {
            let rr = rr.unwrap();
            assert_eq!(rr.owner().to_string(), "q.test");
            assert_eq!(rr.ttl().as_secs(), ANSWER_TTL);
            let rec = rr
                .to_record::<domain::rdata::AllRecordData<_, _>>()
                .unwrap()
                .unwrap();
            got.push(rec.data().to_string());
        }
        assert_eq!(got, ["192.0.2.5", "2001:db8::5", "192.0.2.6"]);

        // padding: at least pad_to bytes, still parses
        for pad_to in [100, 1000, 4096, 70_000] {
            let r = fb.response_message(9, "pad.test", 16, 0, &answers[..1], pad_to);
            assert!(r.len() >= pad_to.min(65_507), "{} < {pad_to}", r.len());
            assert!(
                r.len() <= pad_to.clamp(60, 65_507),
                "{} > {pad_to}",
                r.len()
            );
            let m = Message::from_slice(r).unwrap();
            assert!(m.opt().is_some());
            assert_eq!(m.answer().unwrap().count(), 1);
        }
    }

    #[test]
    fn headers_and_checksums() {
        let mut fb = FrameBuilder::new();
        // IPv4/UDP
        let f = fb
            .query(sa("10.0.0.1:1111"), sa("10.0.0.2:53"), 5, "x.y", 1, false)
            .to_vec();
        assert_eq!(&f[12..14], &[0x08, 0x00]);
        assert_eq!(checksum(&f[ETH..ETH + 20]), 0, "ipv4 header checksum");
        assert_eq!(
            u16::from_be_bytes([f[ETH + 2], f[ETH + 3]]) as usize,
            f.len() - ETH
        );
        let mut pseudo = f[ETH + 12..ETH + 20].to_vec();
        pseudo.extend_from_slice(&[0, 17]);
        pseudo.extend_from_slice(&((f.len() - ETH - 20) as u16).to_be_bytes());
        pseudo.extend_from_slice(&f[ETH + 20..]);
        assert_eq!(checksum(&pseudo), 0, "udp/ipv4 checksum");
        // IPv6/UDP
        let f = fb
            .response(
                sa("[::1]:53"),
                sa("[::2]:3333"),
                5,
                "x.y",
                28,
                0,
                &[ip("::5")],
                0,
            )
            .to_vec();
        assert_eq!(&f[12..14], &[0x86, 0xdd]);
        assert_eq!(f[ETH + 6], 17);
        let l4 = &f[ETH + 40..];
        assert_eq!(
            u16::from_be_bytes([f[ETH + 4], f[ETH + 5]]) as usize,
            l4.len()
        );
        assert_eq!(&l4[..4], &[0, 53, 0x0d, 0x05]);
        let mut pseudo = f[ETH + 8..ETH + 40].to_vec();
        pseudo.extend_from_slice(&(l4.len() as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, 17]);
        pseudo.extend_from_slice(l4);
        assert_ne!(u16::from_be_bytes([l4[6], l4[7]]), 0);
        assert_eq!(checksum(&pseudo), 0, "udp/ipv6 checksum");
        // IPv4/TCP with the 2-byte length prefix
        fb.set_transport(Transport::Tcp);
        let msg = fb.query_message(6, "t.y", 1, false).to_vec();
        let f = fb
            .query(sa("10.0.0.1:1111"), sa("10.0.0.2:53"), 6, "t.y", 1, false)
            .to_vec();
        assert_eq!(f[ETH + 9], 6);
        let tcp = &f[ETH + 20..];
        assert_eq!(tcp[13], tcp_flags::PSH | tcp_flags::ACK);
        assert_eq!(&tcp[20..22], &(msg.len() as u16).to_be_bytes());
        assert_eq!(&tcp[22..], &msg[..]);
        let mut pseudo = f[ETH + 12..ETH + 20].to_vec();
        pseudo.extend_from_slice(&[0, 6]);
        pseudo.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
        pseudo.extend_from_slice(tcp);
        assert_eq!(checksum(&pseudo), 0, "tcp checksum");
    }

    #[test]
    fn buffers_are_reused() {
        let mut fb = FrameBuilder::new();
        let (c, s) = (sa("10.0.0.1:1111"), sa("10.0.0.2:53"));
        let p1 = fb.query(c, s, 1, "warm.up", 1, true).as_ptr();
        for i in 0..1000u16 {
            let f = fb.query(c, s, i, "some.name.example", 1, i % 2 == 0);
            assert_eq!(f.as_ptr(), p1);
        }
    }

    #[test]
    #[should_panic(expected = "address family")]
    fn family_mismatch_panics() {
        FrameBuilder::new().query(sa("10.0.0.1:1"), sa("[::1]:53"), 1, "a", 1, false);
    }
}
