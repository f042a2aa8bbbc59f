//! Event time in `consume` against hostile timestamps, with a real RabbitMQ
//! on 127.0.0.1:5672 (issue 15): one batch dated 2037 must neither make a
//! sensor's later traffic late nor drag the other sensors' time with it.
//! Without a broker these fail, unless DNSMONITOR_SKIP_SERVICES=1 is set: then
//! they print SKIPPED, are counted, and return (`common::cannot_run`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::amqp::*;
use dnsmonitor::time::Clock;

const BIN: &str = env!("CARGO_BIN_EXE_dnsmonitor");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// March 2037, far ahead of the clock.
const Y2037_US: i64 = 2_120_000_000_000_000;

fn flood() -> PathBuf {
    Path::new(ROOT).join("captures/loopback-flood.pcap")
}

fn consume(queue: &str, extra: &[&str], dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(ROOT)
        .args(["consume", "--queue", queue, "--no-alert-exchange"])
        .arg("--alerts")
        .arg(dir.join("alerts.jsonl"))
        .args(extra)
        .env("DNSMONITOR_AMQP_URI", URI)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// `replay`'s alerts for the flood capture (what consume must match).
fn replay_alerts(dir: &Path) -> String {
    let a = dir.join("alerts-replay.jsonl");
    let out = Command::new(BIN)
        .current_dir(ROOT)
        .arg("replay")
        .arg(flood())
        .arg("--alerts")
        .arg(&a)
        .arg("--quiet")
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::read_to_string(a).unwrap()
}

/// A batch of `sensor` holding the first 50 frames of `fr`, dated 2037.
fn bogus_batch(fr: &[(i32, i64, Vec<u8>, u32)], sensor: &str) -> Batch {
    let t0 = fr[0].1;
    let future: Vec<_> = fr[..50]
        .iter()
        .map(|(lt, ts, d, l)| (*lt, Y2037_US + ts - t0, d.clone(), *l))
        .collect();
    batches(&future, 50, sensor, false).remove(0)
}

/// Declare `q` with dead-letter exchange `dlx`, and `dq` bound to `dlx`.
async fn declare_with_dead_letters(ch: &lapin::Channel, q: &str, dlx: &str, dq: &str) {
    declare_queue(ch, q, Some(dlx)).await;
    declare_queue(ch, dq, None).await;
    ch.queue_bind(
        dq.into(),
        dlx.into(),
        "".into(),
        Default::default(),
        Default::default(),
    )
    .await
    .unwrap();
}

/// A sensor sends the flood capture with one batch dated 2037 in the
/// middle (its own clock jumped, once). The batch is held, refuted by the
/// next one and dead-lettered; every other packet is on time, and the
/// alerts are replay's. Before: the sensor's time became 2037 and every
/// later packet counted late, so the flood went unseen.
#[test]
fn one_batch_dated_2037_does_not_make_later_traffic_late() {
    if !broker_up() {
        return;
    }
    let (q, dlx, dq) = (unique("time-one"), unique("time-dlx"), unique("time-dead"));
    let _c = Cleanup {
        queues: vec![q.clone(), dq.clone()],
        exchanges: vec![dlx.clone()],
    };
    let fr = frames(&flood());
    let mut bs = batches(&fr, 300, "sensor-t", true);
    let mut bogus = bogus_batch(&fr, "sensor-t");
    bogus.run = bs[0].run.clone();
    bs.insert(3, bogus);
    for (i, b) in bs.iter_mut().enumerate() {
        b.seq = i as u64 + 1;
    }
    let rt = rt();
    rt.block_on(async {
        let (_conn, ch) = channel().await;
        declare_with_dead_letters(&ch, &q, &dlx, &dq).await;
        publish(&ch, &q, &bs).await;
    });
    let dir = tempdir("time-one");
    let child = consume(&q, &["--exit-on-eos", "--dead-letter-exchange", &dlx], &dir)
        .spawn()
        .unwrap();
    let out = wait_output(child, 120);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("late messages"), "{err}");
    assert!(
        err.contains(&format!("packets: {} read", fr.len())),
        "{err}"
    );
    assert!(err.contains("rejecting batch dated 2037-"), "{err}");
    assert!(err.contains("sensor \"sensor-t\" (seq 4)"), "{err}");
    assert!(err.contains("1 rejected"), "{err}");
    assert!(
        err.contains("1 of the rejected batches were dated far ahead"),
        "{err}"
    );
    let alerts = replay_alerts(&dir);
    assert!(alerts.contains("client_flood"));
    let got = std::fs::read_to_string(dir.join("alerts.jsonl")).unwrap_or_default();
    assert_eq!(got, alerts);
    let (dead, left) = rt.block_on(async {
        let (_conn, ch) = channel().await;
        (drain(&ch, &dq).await, ready_count(&ch, &q).await)
    });
    assert_eq!(dead.len(), 1, "the 2037 batch is dead-lettered");
    assert_eq!(int(header(&dead[0], "dnsmonitor-seq")), 4);
    assert_eq!(left, 0);
    let _ = std::fs::remove_dir_all(dir);
}

/// A rogue sensor sends one batch dated 2037 as its first, then falls
/// silent. Once every sensor is idle, event time follows the newest idle
/// sensor: before, that made the rogue's 2037 everyone's time, so a real
/// sensor starting after it had every packet late. Now the rogue's batch
/// is never believed (ahead of the clock, unconfirmed), so it has no time.
#[test]
fn a_rogue_sensor_dated_2037_does_not_drag_the_others() {
    if !broker_up() {
        return;
    }
    let (q, dlx, dq) = (unique("time-two"), unique("time-dlx"), unique("time-dead"));
    let _c = Cleanup {
        queues: vec![q.clone(), dq.clone()],
        exchanges: vec![dlx.clone()],
    };
    let fr = frames(&flood());
    let rogue = bogus_batch(&fr, "rogue");
    let rt = rt();
    rt.block_on(async {
        let (_conn, ch) = channel().await;
        declare_with_dead_letters(&ch, &q, &dlx, &dq).await;
        publish(&ch, &q, std::slice::from_ref(&rogue)).await;
    });
    let dir = tempdir("time-two");
    let mut child = consume(
        &q,
        &[
            "--exit-on-eos",
            "--dead-letter-exchange",
            &dlx,
            "--idle-timeout",
            "1",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        &dir,
    )
    .spawn()
    .unwrap();
    let (addr, rest) = metrics_addr(&mut child);
    // Wait until the rogue batch was received, then past the idle timeout
    // (wall time: nothing to poll for), so every sensor is idle.
    let clock = Clock;
    let deadline = clock.now() + Duration::from_secs(60);
    while metric(
        &scrape(&addr),
        "dnsmonitor_amqp_deliveries_total{outcome=\"received\"}",
    ) < 1
    {
        assert!(clock.now() < deadline, "the rogue batch was never received");
        clock.sleep(Duration::from_millis(50));
    }
    clock.sleep(Duration::from_millis(2500));
    let mut rogue_eos = batches(&fr[..1], 1, "rogue", true).remove(1);
    rogue_eos.run = rogue.run.clone();
    rogue_eos.seq = 2;
    let real = batches(&fr, 300, "sensor-real", true);
    rt.block_on(async {
        let (_conn, ch) = channel().await;
        publish(&ch, &q, &real).await;
        publish(&ch, &q, std::slice::from_ref(&rogue_eos)).await;
    });
    let status = {
        let deadline = clock.now() + Duration::from_secs(120);
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if clock.now() > deadline {
                let _ = child.kill();
                panic!("consume did not exit");
            }
            clock.sleep(Duration::from_millis(50));
        }
    };
    let err = rest.join().unwrap();
    assert!(status.success(), "{err}");
    assert!(!err.contains("late messages"), "{err}");
    assert!(err.contains("from 2 sensor(s)"), "{err}");
    assert!(err.contains("sensor \"rogue\" (seq 1)"), "{err}");
    let alerts = replay_alerts(&dir);
    let got = std::fs::read_to_string(dir.join("alerts.jsonl")).unwrap_or_default();
    assert_eq!(got, alerts);
    let dead = rt.block_on(async {
        let (_conn, ch) = channel().await;
        drain(&ch, &dq).await
    });
    assert_eq!(dead.len(), 1, "the rogue's 2037 batch is dead-lettered");
    let _ = std::fs::remove_dir_all(dir);
}
