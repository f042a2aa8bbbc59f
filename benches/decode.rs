//! `dns::decode` and `dns::event::write_event` on real messages from the
//! shared captures (payloads cut out by the crate's own `PacketDecoder`).
//! Reported per message; compare with SERVICES.md's domain reference
//! (header 5 ns, header + first question 30 ns, + lower-cased name hash
//! 53 ns).

use std::hint::black_box;
use std::net::IpAddr;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dnsmonitor::dns::decode;
use dnsmonitor::dns::event::write_event;
use dnsmonitor::packet::{PacketConfig, PacketDecoder, Payload, Transport};

const CAPTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/captures");

struct Msg {
    ts_us: i64,
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    transport: Transport,
    data: Vec<u8>,
}

impl Msg {
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

/// Every DNS payload of a capture, in order.
fn load(rel: &str) -> Vec<Msg> {
    let path = Path::new(CAPTURES).join(rel);
    let mut cap =
        pcap::Capture::from_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let linktype = cap.get_datalink().0;
    let mut dec = PacketDecoder::new(PacketConfig::default());
    let mut out = Vec::new();
    while let Ok(p) = cap.next_packet() {
        let ts = p.header.ts.tv_sec * 1_000_000 + p.header.ts.tv_usec;
        dec.decode(linktype, ts, p.data, |p| {
            out.push(Msg {
                ts_us: p.ts_us,
                src: p.src,
                dst: p.dst,
                sport: p.sport,
                dport: p.dport,
                transport: p.transport,
                data: p.data.to_vec(),
            })
        });
    }
    out
}

fn pick(rel: &str, index: usize) -> Msg {
    load(rel)
        .into_iter()
        .nth(index)
        .unwrap_or_else(|| panic!("{rel}: no message {index}"))
}

fn benches(c: &mut Criterion) {
    let samples = [
        // Plain query, no EDNS: header + question only.
        ("query", pick("tcpdump/edns-opts.pcap", 0)),
        // Query with an OPT record (arcount 1): the OPT walk.
        ("query_edns", pick("tcpdump/dns_udp.pcap", 0)),
        // Response: 2 answers, 2 authority, 5 additional incl. OPT.
        ("response_edns", pick("tcpdump/dns_udp.pcap", 1)),
        // DNSSEC response: 3 answers, 6 authority, 13 additional.
        ("response_dnssec", pick("tcpdump/dnssec.pcap", 1)),
    ];
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    for (name, m) in &samples {
        assert!(decode(&m.data).is_ok(), "{name}");
        g.bench_function(*name, |b| b.iter(|| decode(black_box(&m.data))));
    }
    g.bench_function("query_edns+name_hash", |b| {
        let data = &samples[1].1.data;
        b.iter(|| {
            decode(black_box(data))
                .ok()
                .and_then(|m| m.question.map(|q| q.qname.hash()))
        })
    });
    // A whole real capture: DNS-tunnel traffic, long TXT queries/responses.
    let all = load("tunneling/netrack-dns2tcp-2018-03-23.pcap");
    g.throughput(Throughput::Elements(all.len() as u64));
    g.bench_function("capture_netrack_dns2tcp", |b| {
        b.iter(|| {
            let mut ok = 0u32;
            for m in &all {
                ok += u32::from(decode(black_box(&m.data)).is_ok());
            }
            ok
        })
    });
    g.finish();

    let mut g = c.benchmark_group("write_event");
    g.throughput(Throughput::Elements(1));
    let mut out = Vec::with_capacity(4096);
    for (name, m) in &samples {
        let msg = decode(&m.data).unwrap();
        let p = m.payload();
        g.bench_function(*name, |b| {
            b.iter(|| {
                out.clear();
                write_event(&mut out, 1, black_box(&p), black_box(&msg));
                out.len()
            })
        });
    }
    g.finish();
}

criterion_group!(decode_benches, benches);
criterion_main!(decode_benches);
