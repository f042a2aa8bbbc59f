//! End-to-end throughput through RabbitMQ (broker on 127.0.0.1:5672, or
//! `DNSMONITOR_AMQP_URI`).
//!
//! `cargo bench --bench amqp` takes the hostile 100 s of the bad-day
//! capture (benches/common `bad_day_slice`: the spoofed flood and water
//! torture at once; or BENCH_AMQP_CAPTURE) and measures, as packets/s on
//! this machine:
//!   1. `sensor` alone: file → batches → queue, every batch confirmed;
//!   2. `consume` alone from that full queue (client_flood + blocklist_hit
//!      only; the default pipeline at 1 and 2 workers), acking as windows
//!      close;
//!   3. `replay` of the same file at 1 and 2 workers, and the ratio
//!      consume / replay;
//!   4. one sensor and one consumer at the same time (the real deployment),
//!      wall clock from the first packet read to the consumer's exit.
//!
//! Batch size: BENCH_BATCH (default 1000 packets).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use dnsmonitor::amqp::sensor::{SensorOptions, Target};
use dnsmonitor::amqp::source::{AmqpIngest, AmqpSourceOptions};
use dnsmonitor::config::Plan;
use dnsmonitor::dataflow::{self, Input, Outputs, RunOptions, Speed};
use dnsmonitor::sources::PcapFiles;
use dnsmonitor::time::Clock;

mod common;
use common::{Sink, TWO_DETECTORS, bad_day_slice, env_u64, peak_rss_kib, reset_peak_rss};

fn uri() -> String {
    std::env::var("DNSMONITOR_AMQP_URI")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_string())
}

fn plan(pipeline: Option<&str>) -> Arc<Plan> {
    Arc::new(match pipeline {
        Some(t) => Plan::from_str(t, "bench", Path::new("."), &[]).unwrap(),
        None => Plan::default_plan(&[]).unwrap(),
    })
}

fn outputs() -> Outputs {
    Outputs::json_lines(Box::new(Sink), None, None)
}

fn sensor(path: &Path, queue: &str, batch: usize) -> u64 {
    let opts = SensorOptions {
        uri: uri(),
        target: Target::Queue(queue.to_string()),
        sensor_id: "bench".into(),
        batch_packets: batch,
        batch_ms: 200,
        max_in_flight: 64,
        metrics: None,
    };
    let input = Box::new(PcapFiles::open(&[path.to_path_buf()]).unwrap());
    let s = dnsmonitor::amqp::sensor::run(opts, input, Arc::new(AtomicBool::new(false))).unwrap();
    s.packets
}

fn consume(queue: &str, pipeline: Option<&str>, workers: usize) -> u64 {
    let plan = plan(pipeline);
    let opts = AmqpSourceOptions {
        uri: uri(),
        queue: queue.to_string(),
        prefetch: 4000,
        idle_timeout: Duration::from_secs(10),
        dead_letter_exchange: None,
        bind: vec![],
        exit_on_eos: true,
        metrics: None,
    };
    let (ingest, source) = AmqpIngest::connect(opts, plan.window).unwrap();
    let s = dataflow::run(
        plan,
        Input::Single(Box::new(source)),
        RunOptions {
            workers,
            ..RunOptions::default()
        },
        outputs(),
    )
    .unwrap();
    let c = ingest.finish();
    assert_eq!(c.packets, s.frames);
    s.frames
}

fn delete(queue: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _ = rt.block_on(async {
        let c = lapin::Connection::connect(&uri(), Default::default()).await?;
        let ch = c.create_channel().await?;
        ch.queue_delete(queue.into(), Default::default()).await?;
        c.close(200, "bye".into()).await
    });
}

fn report(name: &str, n: u64, secs: f64) {
    println!(
        "{name:<58} {n:>9} packets {secs:>7.2} s {:>10.0} packets/s  peak RSS {:>7} KiB",
        n as f64 / secs,
        peak_rss_kib()
    );
}

fn timed(f: impl FnOnce() -> u64) -> (u64, f64) {
    reset_peak_rss();
    let t = Clock.now();
    let n = f();
    (n, t.elapsed().as_secs_f64())
}

fn replay(path: &Path, workers: usize) -> u64 {
    dataflow::replay(
        plan(None),
        vec![path.to_path_buf()],
        RunOptions {
            speed: Speed::Max,
            workers,
            ..RunOptions::default()
        },
        outputs(),
    )
    .unwrap()
    .frames
}

fn main() {
    let broker = std::net::TcpStream::connect_timeout(
        &"127.0.0.1:5672".parse().unwrap(),
        Duration::from_secs(1),
    )
    .is_ok();
    if !std::env::args().any(|a| a == "--bench") || !broker {
        println!("amqp bench: needs `cargo bench --bench amqp` and a broker on 127.0.0.1:5672");
        return;
    }
    let path = match std::env::var_os("BENCH_AMQP_CAPTURE") {
        Some(p) => p.into(),
        None => bad_day_slice(),
    };
    let batch = env_u64("BENCH_BATCH", 1000) as usize;
    println!(
        "capture: {} ({} MB), batches of {batch} packets",
        path.display(),
        std::fs::metadata(&path).unwrap().len() / 1_000_000
    );
    let q = format!("bench.dnsmonitor.{}", std::process::id());
    let (n, s) = timed(|| sensor(&path, &q, batch));
    report("sensor alone (file -> queue, confirmed)", n, s);
    let (n, s) = timed(|| consume(&q, Some(TWO_DETECTORS), 1));
    report("consume alone, client_flood + blocklist_hit", n, s);
    // consume from a full queue against replay of the same file, per
    // worker count: the reader forwards frames to the workers of their
    // shard (the target: consume at 80 % of replay or more).
    let mut rates = Vec::new();
    for workers in [1, 2] {
        timed(|| sensor(&path, &q, batch));
        let (n, s) = timed(|| consume(&q, None, workers));
        report(
            &format!("consume alone, default pipeline, {workers} worker(s)"),
            n,
            s,
        );
        let c = n as f64 / s;
        let (n, s) = timed(|| replay(&path, workers));
        report(
            &format!("replay of the file, default pipeline, {workers} worker(s)"),
            n,
            s,
        );
        rates.push((workers, c, n as f64 / s));
    }
    for (workers, c, r) in &rates {
        println!(
            "consume / replay, {workers} worker(s): {:.2} ({:.0} / {:.0} packets/s)",
            c / r,
            c,
            r
        );
    }
    if let [(_, c1, _), (_, c2, _)] = rates[..] {
        println!("consume, 2 workers / 1 worker: {:.2}x", c2 / c1);
    }
    let (n, s) = timed(|| {
        let qq = q.clone();
        let p = path.clone();
        let t = std::thread::spawn(move || sensor(&p, &qq, batch));
        let n = consume(&q, None, 2);
        assert_eq!(t.join().unwrap(), n);
        n
    });
    report(
        "sensor + consume together, default pipeline, 2 workers",
        n,
        s,
    );
    delete(&q);
}
