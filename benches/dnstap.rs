//! dnstap input cost per message, beside the pcap path on the same DNS
//! messages: the committed flood capture's payloads (cut out by the
//! crate's own `PacketDecoder`) as the CLIENT_QUERY/CLIENT_RESPONSE frames a
//! resolver logs. Measures Frame Streams parsing, the protobuf decode and
//! mapping, and the whole ingest (decode, detectors' map side) for dnstap
//! frames and for the original pcap frames.

use std::hint::black_box;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dnsmonitor::config::Plan;
use dnsmonitor::dnstap::message::{self, Dnstap, Message};
use dnsmonitor::dnstap::{LINKTYPE_DNSTAP, frames};
use dnsmonitor::engine::ingest::Ingest;
use dnsmonitor::packet::{PacketConfig, PacketDecoder, Transport};
use prost::Message as _;

const FLOOD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/captures/loopback-flood.pcap");

fn addr(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// (pcap frames with linktype and time, dnstap frames) of the capture.
#[allow(clippy::type_complexity)]
fn load() -> (i32, Vec<(i64, Vec<u8>)>, Vec<(i64, Vec<u8>)>) {
    let mut cap = pcap::Capture::from_file(Path::new(FLOOD)).expect("flood capture");
    let lt = cap.get_datalink().0;
    let mut dec = PacketDecoder::new(PacketConfig::default());
    let (mut raw, mut tap) = (Vec::new(), Vec::new());
    while let Ok(p) = cap.next_packet() {
        let ts = p.header.ts.tv_sec * 1_000_000 + p.header.ts.tv_usec;
        raw.push((ts, p.data.to_vec()));
        dec.decode(lt, ts, p.data, |p| {
            let resp = p.data.get(2).is_some_and(|b| b & 0x80 != 0);
            let (c, cp, s, sp) = if resp {
                (p.dst, p.dport, p.src, p.sport)
            } else {
                (p.src, p.sport, p.dst, p.dport)
            };
            let (sec, nsec) = (
                (p.ts_us / 1_000_000) as u64,
                (p.ts_us % 1_000_000 * 1000) as u32,
            );
            let m = Message {
                r#type: if resp { 6 } else { 5 },
                socket_family: Some(1),
                socket_protocol: Some(if p.transport == Transport::Udp { 1 } else { 2 }),
                query_address: Some(addr(c)),
                response_address: Some(addr(s)),
                query_port: Some(cp.into()),
                response_port: Some(sp.into()),
                query_time_sec: (!resp).then_some(sec),
                query_time_nsec: (!resp).then_some(nsec),
                query_message: (!resp).then(|| p.data.to_vec()),
                response_time_sec: resp.then_some(sec),
                response_time_nsec: resp.then_some(nsec),
                response_message: resp.then(|| p.data.to_vec()),
            };
            let d = Dnstap {
                identity: Some(b"resolver-1".to_vec()),
                version: Some(b"unbound 1.17.1".to_vec()),
                extra: None,
                message: Some(m),
                r#type: 1,
            };
            tap.push((p.ts_us, d.encode_to_vec()));
        });
    }
    (lt, raw, tap)
}

fn benches(c: &mut Criterion) {
    let (lt, raw, tap) = load();
    let n = tap.len() as u64;
    let stream: Vec<u8> = tap.iter().flat_map(|(_, f)| frames::data(f)).collect();
    let mut g = c.benchmark_group("dnstap");
    g.throughput(Throughput::Elements(n));
    g.bench_function("frame_streams_parse", |b| {
        b.iter(|| {
            let mut at = 0;
            let mut k = 0u64;
            while let Ok(Some((f, used))) = frames::parse(&stream[at..]) {
                black_box(f);
                at += used;
                k += 1;
            }
            k
        })
    });
    g.bench_function("protobuf_decode_and_map", |b| {
        b.iter(|| {
            let mut k = 0u64;
            for (_, f) in &tap {
                let d = message::decode(f).unwrap();
                let (m, t) = message::inner(&d).unwrap();
                k += message::to_payload(m, t).unwrap().payload.data.len() as u64;
            }
            k
        })
    });
    let plan = Arc::new(Plan::default_plan(&[]).unwrap());
    g.bench_function("ingest_dnstap_frames", |b| {
        b.iter(|| {
            let mut ing = Ingest::new(plan.clone(), false);
            for (i, (ts, f)) in tap.iter().enumerate() {
                ing.process(0, i as u64, LINKTYPE_DNSTAP, *ts, f, 0);
            }
            ing.counters.dns_messages
        })
    });
    g.bench_function("ingest_pcap_frames_same_messages", |b| {
        b.iter(|| {
            let mut ing = Ingest::new(plan.clone(), false);
            for (i, (ts, f)) in raw.iter().enumerate() {
                ing.process(0, i as u64, lt, *ts, f, 0);
            }
            ing.counters.dns_messages
        })
    });
    g.finish();
}

criterion_group! {
    name = group;
    config = Criterion::default().sample_size(10);
    targets = benches
}
criterion_main!(group);
