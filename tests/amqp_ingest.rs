//! `dnsmonitor consume` against a real RabbitMQ on 127.0.0.1:5672: packet
//! batches in a queue → the pipeline → alerts, with acks only after the
//! windows closed. Batches are published here the way `dnsmonitor sensor`
//! publishes them (tests/amqp_sensor.rs covers the sensor itself).
//! Without a broker they fail, unless DNSMONITOR_SKIP_SERVICES=1 is set: then
//! they print SKIPPED, are counted, and return (`common::cannot_run`).

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::amqp::*;
use dnsmonitor::time::Clock;

const BIN: &str = env!("CARGO_BIN_EXE_dnsmonitor");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn flood() -> PathBuf {
    Path::new(ROOT).join("captures/loopback-flood.pcap")
}

fn consume(queue: &str, extra: &[&str], dir: &Path, tag: &str) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(ROOT)
        .args(["consume", "--queue", queue, "--no-alert-exchange"])
        .arg("--alerts")
        .arg(dir.join(format!("alerts-{tag}.jsonl")))
        .arg("--events")
        .arg(dir.join(format!("events-{tag}.jsonl")))
        .args(extra)
        .env("DNSMONITOR_AMQP_URI", URI)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

fn replay_outputs(dir: &Path) -> (String, String) {
    let a = dir.join("alerts-replay.jsonl");
    let e = dir.join("events-replay.jsonl");
    let out = Command::new(BIN)
        .current_dir(ROOT)
        .arg("replay")
        .arg(flood())
        .arg("--alerts")
        .arg(&a)
        .arg("--events")
        .arg(&e)
        .arg("--quiet")
        .output()
        .unwrap();
    assert!(out.status.success());
    (
        std::fs::read_to_string(a).unwrap(),
        std::fs::read_to_string(e).unwrap(),
    )
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

/// Event lines without the frame number (which counts per process) and
/// the source (the sensor's id, or pcap in a replay).
fn event_set(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("frame");
            v.as_object_mut().unwrap().remove("source");
            v.to_string()
        })
        .collect()
}

/// (kind, key) of every raised alert.
fn raised(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["state"] == "raised").then(|| format!("{} {}", v["kind"], v["key"]))
        })
        .collect()
}

/// The whole flood capture through the queue gives exactly replay's
/// alerts and event log, every packet once, and leaves the queue empty
/// (everything acked).
#[test]
fn consume_equals_replay_and_acks_everything() {
    if !broker_up() {
        return;
    }
    let q = unique("ingest");
    let _c = Cleanup {
        queues: vec![q.clone()],
        exchanges: vec![],
    };
    let fr = frames(&flood());
    let bs = batches(&fr, 300, "sensor-a", true);
    let rt = rt();
    rt.block_on(async {
        let (_conn, ch) = channel().await;
        declare_queue(&ch, &q, None).await;
        publish(&ch, &q, &bs).await;
    });
    let dir = tempdir("ingest");
    let child = consume(&q, &["--exit-on-eos"], &dir, "q").spawn().unwrap();
    let out = wait_output(child, 120);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!("packets: {} read", fr.len())),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "queue: {} batches ({} packets) from 1 sensor(s); {} acked, 0 rejected, 0 duplicates, 0 missing",
            bs.len(),
            fr.len(),
            bs.len()
        )),
        "{err}"
    );
    assert!(!err.contains("guest:guest"), "password printed: {err}");
    let (alerts, events) = replay_outputs(&dir);
    assert!(alerts.contains("client_flood"));
    assert_eq!(read(&dir, "alerts-q.jsonl"), alerts);
    // consume names the sensor in `source` where replay says pcap.
    let consumed = read(&dir, "events-q.jsonl");
    let (by_sensor, by_replay) = (r#","source":"sensor-a"}"#, r#","source":"pcap"}"#);
    assert!(consumed.lines().all(|l| l.ends_with(by_sensor)));
    assert_eq!(consumed.replace(by_sensor, by_replay), events);
    let left = rt.block_on(async {
        let (_conn, ch) = channel().await;
        ready_count(&ch, &q).await
    });
    assert_eq!(left, 0, "unacked batches went back to the queue");
    let _ = std::fs::remove_dir_all(dir);
}

/// The reader of a queue forwards each frame to the worker of its shard:
/// with 1, 2 and 4 workers, a mixed capture (every attack kind, TCP too)
/// gives replay's alerts exactly, and the same event log each time.
#[test]
fn consume_spreads_decoding_over_workers() {
    if !broker_up() {
        return;
    }
    let cap = Path::new(ROOT).join("captures/synth/mixed-seed1.pcap");
    let dir = tempdir("spread");
    let replayed = dir.join("alerts-replay.jsonl");
    let out = Command::new(BIN)
        .current_dir(ROOT)
        .arg("replay")
        .arg(&cap)
        .arg("--alerts")
        .arg(&replayed)
        .arg("--events")
        .arg(dir.join("events-replay.jsonl"))
        .arg("--quiet")
        .output()
        .unwrap();
    assert!(out.status.success());
    let alerts = std::fs::read_to_string(&replayed).unwrap();
    let replay_events = event_set(&read(&dir, "events-replay.jsonl"));
    let kinds: BTreeSet<String> = alerts
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"].to_string())
        .collect();
    assert!(kinds.len() >= 5, "the capture raises many kinds: {kinds:?}");
    let fr = frames(&cap);
    let bs = batches(&fr, 400, "sensor-a", true);
    let mut first_events: Option<String> = None;
    for workers in ["1", "2", "4"] {
        let q = unique("spread");
        let _c = Cleanup {
            queues: vec![q.clone()],
            exchanges: vec![],
        };
        let rt = rt();
        rt.block_on(async {
            let (_conn, ch) = channel().await;
            declare_queue(&ch, &q, None).await;
            publish(&ch, &q, &bs).await;
        });
        let tag = format!("w{workers}");
        let child = consume(&q, &["--exit-on-eos", "--workers", workers], &dir, &tag)
            .spawn()
            .unwrap();
        let out = wait_output(child, 180);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{workers} workers: {err}");
        assert!(
            err.contains(&format!("packets: {} read", fr.len())),
            "{workers} workers: {err}"
        );
        assert_eq!(
            read(&dir, &format!("alerts-{tag}.jsonl")),
            alerts,
            "{workers} workers"
        );
        let events = read(&dir, &format!("events-{tag}.jsonl"));
        assert!(event_set(&events) == replay_events, "{workers} workers");
        match &first_events {
            None => first_events = Some(events),
            Some(e) => assert!(*e == events, "{workers} workers: the event log differs"),
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A body that is not a pcap is rejected to the dead-letter exchange,
/// counted and logged; every good batch is still processed.
#[test]
fn malformed_batch_is_dead_lettered_and_the_run_goes_on() {
    if !broker_up() {
        return;
    }
    let q = unique("ingest-bad");
    let dlx = unique("dlx");
    let dq = unique("dead");
    let _c = Cleanup {
        queues: vec![q.clone(), dq.clone()],
        exchanges: vec![dlx.clone()],
    };
    let fr = frames(&flood());
    let mut bs = batches(&fr, 1000, "sensor-b", true);
    let half = bs.len() / 2;
    let bad = Batch {
        sensor: "sensor-b\u{1b}[31m".into(),
        run: "other".into(),
        seq: 7,
        eos: false,
        body: b"GET / HTTP/1.1\r\n\r\n not a capture at all".to_vec(),
        packets: 0,
    };
    bs.insert(half, bad);
    let rt = rt();
    rt.block_on(async {
        let (_conn, ch) = channel().await;
        declare_queue(&ch, &q, Some(&dlx)).await;
        declare_queue(&ch, &dq, None).await;
        ch.queue_bind(
            dq.as_str().into(),
            dlx.as_str().into(),
            "".into(),
            Default::default(),
            Default::default(),
        )
        .await
        .unwrap();
        publish(&ch, &q, &bs).await;
    });
    let dir = tempdir("ingest-bad");
    let child = consume(
        &q,
        &["--exit-on-eos", "--dead-letter-exchange", &dlx],
        &dir,
        "bad",
    )
    .spawn()
    .unwrap();
    let out = wait_output(child, 120);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("rejecting malformed batch"), "{err}");
    assert!(
        err.contains("not a pcap file: magic number 0x47455420"),
        "{err}"
    );
    // The hostile sensor name is escaped in the log.
    assert!(!err.contains('\u{1b}'), "{err}");
    assert!(
        err.contains(&format!("packets: {} read", fr.len())),
        "{err}"
    );
    assert!(err.contains("1 rejected"), "{err}");
    let (dead, left) = rt.block_on(async {
        let (_conn, ch) = channel().await;
        (drain(&ch, &dq).await, ready_count(&ch, &q).await)
    });
    assert_eq!(dead.len(), 1);
    assert!(dead[0].delivery.data.starts_with(b"GET / HTTP"));
    assert_eq!(left, 0);
    let (alerts, _) = replay_outputs(&dir);
    assert_eq!(read(&dir, "alerts-bad.jsonl"), alerts);
    let _ = std::fs::remove_dir_all(dir);
}

/// SIGKILL the consumer once it holds unacked batches: a new consumer gets
/// them again, so every DNS message is processed, and the alerts raised
/// match a run without the kill.
#[test]
fn sigkill_mid_run_redelivers_and_alerts_match() {
    if !broker_up() {
        return;
    }
    let q = unique("ingest-kill");
    let _c = Cleanup {
        queues: vec![q.clone()],
        exchanges: vec![],
    };
    let fr = frames(&flood());
    let mut bs = batches(&fr, 200, "sensor-k", true);
    let eos = bs.pop().unwrap();
    let rt = rt();
    rt.block_on(async {
        let (_conn, ch) = channel().await;
        declare_queue(&ch, &q, None).await;
        publish(&ch, &q, &bs).await;
    });
    let dir = tempdir("ingest-kill");
    // (A long idle timeout: the held batches must stay held until the kill.)
    let mut first = consume(
        &q,
        &["--metrics-listen", "127.0.0.1:0", "--idle-timeout", "3600"],
        &dir,
        "1",
    )
    .spawn()
    .unwrap();
    let (addr, _) = metrics_addr(&mut first);
    // Readiness: every batch delivered, some acked, some still held.
    let clock = Clock;
    let deadline = clock.now() + Duration::from_secs(60);
    let (received, acked) = loop {
        let m = scrape(&addr);
        let r = metric(&m, "dnsmonitor_amqp_deliveries_total{outcome=\"received\"}");
        let a = metric(&m, "dnsmonitor_amqp_deliveries_total{outcome=\"acked\"}");
        if r == bs.len() as u64 && a > 0 {
            break (r, a);
        }
        assert!(clock.now() < deadline, "consumer did not get going: {m}");
        clock.sleep(Duration::from_millis(100));
    };
    assert!(acked < received, "the last windows are still open");
    unsafe {
        libc::kill(first.id() as i32, libc::SIGKILL);
    }
    first.wait().unwrap();
    // What the broker gives back: the batches not acked when the process
    // died (it may have acked more between the scrape above and the kill).
    let requeued = rt.block_on(async {
        let (_conn, ch) = channel().await;
        let n = ready_after_consumers_left(&ch, &q).await;
        publish(&ch, &q, std::slice::from_ref(&eos)).await;
        n
    });
    assert!(
        requeued > 0 && u64::from(requeued) <= received - acked,
        "{requeued} requeued; {received} received, {acked} acked before the kill"
    );
    let second = consume(&q, &["--exit-on-eos"], &dir, "2").spawn().unwrap();
    let out = wait_output(second, 120);
    let err2 = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err2}");
    let redelivered = u64::from(requeued) + 1;
    assert!(
        err2.contains(&format!("queue: {redelivered} batches")),
        "expected {redelivered} batches again: {err2}"
    );
    let (alerts, events) = replay_outputs(&dir);
    let got_events: BTreeSet<String> = event_set(&read(&dir, "events-1.jsonl"))
        .union(&event_set(&read(&dir, "events-2.jsonl")))
        .cloned()
        .collect();
    assert_eq!(
        got_events,
        event_set(&events),
        "every DNS message processed"
    );
    let got_raised: BTreeSet<String> = raised(&read(&dir, "alerts-1.jsonl"))
        .union(&raised(&read(&dir, "alerts-2.jsonl")))
        .cloned()
        .collect();
    assert!(!got_raised.is_empty());
    assert_eq!(got_raised, raised(&alerts));
    let left = rt.block_on(async {
        let (_conn, ch) = channel().await;
        ready_count(&ch, &q).await
    });
    assert_eq!(left, 0);
    let _ = std::fs::remove_dir_all(dir);
}

/// A sensor that goes silent must not hold the windows open: with
/// `--idle-timeout 1` its event time follows the clock, so the flood alert
/// whose window is not yet complete in the data comes out while nothing
/// arrives. SIGINT then ends the run cleanly and everything is acked.
#[test]
fn silent_sensor_lets_windows_close() {
    if !broker_up() {
        return;
    }
    let q = unique("ingest-idle");
    let _c = Cleanup {
        queues: vec![q.clone()],
        exchanges: vec![],
    };
    let fr = frames(&flood());
    // Up to 18:01:12.5Z: the window ending 18:01:12Z (the raise) needs the
    // watermark at 18:01:14Z (2 s lateness), which the data never reaches.
    let cut = 1_795_629_672_500_000;
    let part: Vec<_> = fr.iter().filter(|f| f.1 < cut).cloned().collect();
    assert!(part.len() < fr.len() && part.len() > 1000);
    let bs = batches(&part, 500, "sensor-idle", false);
    let rt = rt();
    rt.block_on(async {
        let (_conn, ch) = channel().await;
        declare_queue(&ch, &q, None).await;
        publish(&ch, &q, &bs).await;
    });
    let dir = tempdir("ingest-idle");
    let mut child = consume(&q, &["--idle-timeout", "1"], &dir, "idle")
        .spawn()
        .unwrap();
    let clock = Clock;
    let deadline = clock.now() + Duration::from_secs(30);
    loop {
        let a = read(&dir, "alerts-idle.jsonl");
        if a.contains("\"kind\":\"client_flood\"") && a.contains("\"state\":\"raised\"") {
            assert!(a.contains("\"event_time\":\"2026-11-25T18:01:12Z\""), "{a}");
            break;
        }
        if clock.now() > deadline {
            let _ = child.kill();
            panic!("no alert while the sensor is silent: {a}");
        }
        clock.sleep(Duration::from_millis(100));
    }
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = wait_output(child, 30);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!("packets: {} read", part.len())),
        "{err}"
    );
    let left = rt.block_on(async {
        let (_conn, ch) = channel().await;
        ready_count(&ch, &q).await
    });
    assert_eq!(left, 0, "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

/// The path users take: `dnsmonitor sensor` reads the flood capture into a
/// queue, `dnsmonitor consume` runs the pipeline and publishes alerts, and
/// `dnsmonitor alerts --bind 'client_flood.*'` prints them. Every packet is
/// processed once and the alerts are replay's.
#[test]
fn sensor_queue_consume_exchange_alerts() {
    if !broker_up() {
        return;
    }
    let q = unique("e2e");
    let ex = unique("e2e-alerts");
    let _c = Cleanup {
        queues: vec![q.clone()],
        exchanges: vec![ex.clone()],
    };
    let dir = tempdir("e2e");
    let mut watcher = start_alerts_watcher(&ex, "client_flood.*");
    let c = consume(&q, &["--exit-on-eos"], &dir, "e2e");
    // This one publishes its alerts.
    let args: Vec<String> = c
        .get_args()
        .filter(|a| *a != "--no-alert-exchange")
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut c = Command::new(BIN);
    c.current_dir(ROOT)
        .args(&args)
        .args(["--exchange", &ex])
        .env("DNSMONITOR_AMQP_URI", URI)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let consumer = c.spawn().unwrap();
    let sensor = Command::new(BIN)
        .current_dir(ROOT)
        .args(["sensor", "--file"])
        .arg(flood())
        .args([
            "--queue",
            &q,
            "--batch-packets",
            "400",
            "--sensor-id",
            "tap-1",
        ])
        .env("DNSMONITOR_AMQP_URI", URI)
        .output()
        .unwrap();
    let serr = String::from_utf8_lossy(&sensor.stderr);
    assert!(sensor.status.success(), "{serr}");
    let frames = frames(&flood()).len();
    assert!(
        serr.contains(&format!("sensor tap-1: {frames} packets in")),
        "{serr}"
    );
    assert!(!serr.contains("guest:guest"), "{serr}");
    let out = wait_output(consumer, 120);
    let cerr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cerr}");
    assert!(cerr.contains(&format!("packets: {frames} read")), "{cerr}");
    assert!(
        cerr.contains(&format!("({frames} packets) from 1 sensor(s)")),
        "{cerr}"
    );
    let (alerts, _) = replay_outputs(&dir);
    assert_eq!(read(&dir, "alerts-e2e.jsonl"), alerts);
    let expected: Vec<&str> = alerts
        .lines()
        .filter(|l| l.contains("client_flood"))
        .collect();
    assert!(expected.len() >= 3);
    let mut out = BufReader::new(watcher.stdout.take().unwrap());
    for want in &expected {
        let mut l = String::new();
        out.read_line(&mut l).unwrap();
        assert_eq!(l.trim_end(), *want);
    }
    unsafe {
        libc::kill(watcher.id() as i32, libc::SIGINT);
    }
    assert!(watcher.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(dir);
}

/// An output that fails (here: alerts to a full disk) must not let the
/// batches go: consume exits 1 and every batch is still in the queue for
/// the next run.
#[test]
fn failed_output_acks_nothing() {
    if !broker_up() {
        return;
    }
    let q = unique("ingest-full");
    let _c = Cleanup {
        queues: vec![q.clone()],
        exchanges: vec![],
    };
    let fr = frames(&flood());
    let bs = batches(&fr, 1000, "sensor-f", true);
    let rt = rt();
    rt.block_on(async {
        let (_conn, ch) = channel().await;
        declare_queue(&ch, &q, None).await;
        publish(&ch, &q, &bs).await;
    });
    let child = Command::new(BIN)
        .current_dir(ROOT)
        .args([
            "consume",
            "--queue",
            &q,
            "--no-alert-exchange",
            "--exit-on-eos",
        ])
        .args(["--alerts", "/dev/full"])
        .env("DNSMONITOR_AMQP_URI", URI)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(child, 120);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("stay in queue"), "{err}");
    let left = rt.block_on(async {
        let (_conn, ch) = channel().await;
        ready_count(&ch, &q).await
    });
    // The batches before the first alert's window may be acked; the rest,
    // including the end-of-stream batch, come again.
    assert!(left > 0, "{err}");
    assert!(left as usize <= bs.len());
}

/// Event time per sensor: two sensors whose clocks (or queues) run 5 s
/// apart, batches interleaved. Against one global watermark (2 s lateness)
/// the lagging sensor's packets would all be late; per sensor none is.
#[test]
fn lagging_sensor_is_not_late() {
    if !broker_up() {
        return;
    }
    let q = unique("ingest-two");
    let _c = Cleanup {
        queues: vec![q.clone()],
        exchanges: vec![],
    };
    let fr = frames(&flood());
    let behind: Vec<_> = fr
        .iter()
        .map(|(lt, ts, d, l)| (*lt, ts - 5_000_000, d.clone(), *l))
        .collect();
    let a = batches(&fr, 500, "ahead", true);
    let b = batches(&behind, 500, "behind", true);
    let mut mixed = vec![];
    for (x, y) in a.into_iter().zip(b) {
        mixed.push(x);
        mixed.push(y);
    }
    let rt = rt();
    rt.block_on(async {
        let (_conn, ch) = channel().await;
        declare_queue(&ch, &q, None).await;
        publish(&ch, &q, &mixed).await;
    });
    let dir = tempdir("ingest-two");
    let child = consume(&q, &["--exit-on-eos"], &dir, "two")
        .spawn()
        .unwrap();
    let out = wait_output(child, 120);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!("dns messages: {} (", 2 * fr.len())),
        "{err}"
    );
    assert!(!err.contains("late messages"), "{err}");
    assert!(err.contains("from 2 sensor(s)"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}
