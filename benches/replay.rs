//! Replay throughput, beside the reference loops it is built on.
//!
//! `cargo bench --bench replay` generates a large capture with the scenario
//! generator (cached in target/bench-data), then measures, each as packets/s
//! on this machine:
//!   1. a plain libpcap read loop (the ceiling, ~20 M/s in SERVICES.md);
//!   2. read + packet layer + DNS decode + name hash (~9 M/s reference);
//!   3. `replay` with the default pipeline on 1 and 2 workers;
//!   4. the same with a 190 k-entry blocklist loaded (when ../shared is there).
//!
//! Peak RSS of each replay is read from /proc (VmHWM, reset between runs).
//! Environment: BENCH_QPS (default 16000 queries/s of generated traffic),
//! BENCH_SECS (default 60).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dnsmonitor::config::Plan;
use dnsmonitor::dataflow::{self, Outputs, RunOptions, Speed};
use dnsmonitor::packet::{PacketConfig, PacketDecoder};
use dnsmonitor::sinks::JsonLinesAlerts;
use dnsmonitor::synth::scenario::Scenario;

mod common;
use common::{Sink, TWO_DETECTORS, capture, peak_rss_kib, reset_peak_rss};

fn read_loop(path: &Path) -> u64 {
    let mut cap = pcap::Capture::from_file(path).unwrap();
    let mut n = 0u64;
    let mut bytes = 0u64;
    while let Ok(p) = cap.next_packet() {
        n += 1;
        bytes += p.data.len() as u64;
    }
    std::hint::black_box(bytes);
    n
}

fn decode_loop(path: &Path) -> u64 {
    let mut cap = pcap::Capture::from_file(path).unwrap();
    let lt = cap.get_datalink().0;
    let mut dec = PacketDecoder::new(PacketConfig::default());
    let mut n = 0u64;
    let mut acc = 0u64;
    while let Ok(p) = cap.next_packet() {
        n += 1;
        let ts = p.header.ts.tv_sec * 1_000_000 + p.header.ts.tv_usec;
        dec.decode(lt, ts, p.data, |payload| {
            if let Ok(m) = dnsmonitor::dns::decode(payload.data)
                && let Some(q) = &m.question
            {
                acc = acc.wrapping_add(q.qname.hash());
            }
        });
    }
    std::hint::black_box(acc);
    n
}

fn replay(path: &Path, workers: usize, lists: &[PathBuf]) -> (u64, usize) {
    replay_with(path, workers, lists, None)
}

fn replay_with(
    path: &Path,
    workers: usize,
    lists: &[PathBuf],
    pipeline: Option<&str>,
) -> (u64, usize) {
    let plan = match pipeline {
        Some(text) => Plan::from_str(text, "bench", Path::new("."), lists).unwrap(),
        None => Plan::default_plan(lists).unwrap(),
    };
    let outputs = Outputs {
        alerts: Box::new(JsonLinesAlerts::new(Box::new(Sink))),
        events: None,
        reports: None,
    };
    let opts = RunOptions {
        workers,
        speed: Speed::Max,
        ..RunOptions::default()
    };
    let s = dataflow::replay(Arc::new(plan), vec![path.to_path_buf()], opts, outputs).unwrap();
    (s.frames, s.alerts.values().sum::<u64>() as usize)
}

fn measure(name: &str, f: impl Fn() -> u64) {
    // Warm the page cache and the code once, then take the best of 3.
    let mut best = f64::MAX;
    let mut n = 0;
    for _ in 0..3 {
        reset_peak_rss();
        let t = dnsmonitor::time::Clock.now();
        n = f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "{name:<44} {n:>10} packets {best:>8.3} s {:>12.0} packets/s  peak RSS {:>7} KiB",
        n as f64 / best,
        peak_rss_kib()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` does not:
    // then only check that the pieces run, on a small capture.
    if !std::env::args().any(|a| a == "--bench") {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("smoke.pcap");
        Scenario {
            duration_s: 3,
            ..Scenario::default()
        }
        .write_file(&p)
        .unwrap();
        assert_eq!(read_loop(&p), decode_loop(&p));
        assert_eq!(replay(&p, 2, &[]).0, read_loop(&p));
        println!("replay bench: smoke run ok (use `cargo bench --bench replay` to measure)");
        return;
    }
    let path = capture();
    println!(
        "capture: {} ({} MB)",
        path.display(),
        std::fs::metadata(&path).unwrap().len() / 1_000_000
    );
    measure("pcap read loop", || read_loop(&path));
    measure("read + packet + dns decode + name hash", || {
        decode_loop(&path)
    });
    for w in [1, 2] {
        measure(
            &format!("replay, client_flood + blocklist_hit, {w} worker(s)"),
            || replay_with(&path, w, &[], Some(TWO_DETECTORS)).0,
        );
    }
    for w in [1, 2] {
        measure(
            &format!("replay, default pipeline (11 detectors), {w} worker(s)"),
            || replay(&path, w, &[]).0,
        );
    }
    let phishing = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/blocklists/blocklistproject/phishing.domains.txt");
    if phishing.exists() {
        for w in [1, 2] {
            measure(&format!("replay + 190k blocklist, {w} worker(s)"), || {
                replay(&path, w, std::slice::from_ref(&phishing)).0
            });
        }
    }
}
