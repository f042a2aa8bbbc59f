//! Broker restarts in the middle of a run (`rabbitmqctl stop_app` /
//! `start_app` on the broker at 127.0.0.1:5672). These tests stop the shared
//! broker, so they live in their own test binary (cargo runs test binaries
//! one after the other) and take a lock so they never overlap each other.
//! Without a broker they fail, unless DNSMONITOR_SKIP_SERVICES=1 is set: then
//! they print SKIPPED, are counted, and return (`common::cannot_run`).

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::amqp::*;
use dnsmonitor::alert::{Alert, State};
use dnsmonitor::amqp::sink::AmqpAlertSink;
use dnsmonitor::detect::{Kind, Severity};
use dnsmonitor::metrics::Metrics;
use dnsmonitor::sinks::Sink;
use dnsmonitor::time::Clock;

static RESTARTS: Mutex<()> = Mutex::new(());

/// Alerts emitted while the broker is down are kept and published after it
/// comes back; none is lost.
#[test]
fn alert_sink_loses_nothing_across_a_broker_restart() {
    let _one = RESTARTS.lock().unwrap_or_else(|p| p.into_inner());
    if !can_restart() {
        return;
    }
    let exchange = unique("ex");
    let queue = unique("durable");
    let _cleanup = Cleanup {
        queues: vec![queue.clone()],
        exchanges: vec![exchange.clone()],
    };
    let rt = rt();
    rt.block_on(async {
        let (_c, ch) = channel().await;
        bind_queue(&ch, &exchange, &queue, "#", true).await;
    });

    let metrics = Metrics::new();
    let mut sink = AmqpAlertSink::connect(URI, &exchange, Some(metrics.clone())).unwrap();
    let alerts: Vec<Alert> = (0..10)
        .map(|i| test_alert(Kind::ClientFlood, Severity::Critical, State::Updated, 7, i))
        .collect();
    sink.emit(&alerts[..5]).unwrap();
    let clock = Clock;
    let deadline = clock.now() + Duration::from_secs(10);
    while sink.pending() > 0 && clock.now() < deadline {
        clock.sleep(Duration::from_millis(20));
    }
    assert_eq!(sink.pending(), 0, "first alerts confirmed before the stop");

    let guard = StartAppGuard;
    assert!(rabbitmqctl(&["stop_app"]), "rabbitmqctl stop_app");
    sink.emit(&alerts[5..8]).unwrap();
    // The broker stays down a while (not a synchronisation).
    clock.sleep(Duration::from_millis(700));
    sink.emit(&alerts[8..]).unwrap();
    drop(guard); // start_app + await_startup
    sink.finish()
        .expect("every alert confirmed after the restart");

    let got: Vec<String> = rt.block_on(async {
        let (_c, ch) = channel().await;
        drain(&ch, &queue)
            .await
            .iter()
            .map(|m| String::from_utf8(m.delivery.data.clone()).unwrap())
            .collect()
    });
    for a in &alerts {
        assert!(
            got.contains(&a.to_json_line()),
            "missing after restart: {}",
            a.to_json_line()
        );
    }
    assert!(metrics.amqp_publishes.with_label_values(&["failed"]).get() > 0);
}

/// Sensor → queue → consume with the broker stopped and started in the
/// middle: both reconnect by themselves, every packet is processed exactly
/// once (re-sent and redelivered batches are recognised), the alerts are the
/// same as a replay of the capture, every alert reaches the alert exchange,
/// and the run finishes on its own.
#[test]
fn sensor_and_consume_ride_through_a_broker_restart() {
    use std::process::{Command, Stdio};
    let _one = RESTARTS.lock().unwrap_or_else(|p| p.into_inner());
    if !can_restart() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_dnsmonitor");
    let dir = tempdir("restart");
    let cap = dir.join("flood.pcap");
    let synth = Command::new(bin)
        .args(["synth", "--scenario", "client_flood", "--seed", "3"])
        .args(["--duration", "40", "--rate-scale", "0.3", "--out"])
        .arg(&cap)
        .arg("--truth")
        .arg(dir.join("truth.json"))
        .output()
        .unwrap();
    assert!(synth.status.success());
    let replay = Command::new(bin)
        .arg("replay")
        .arg(&cap)
        .arg("--quiet")
        .output()
        .unwrap();
    let expected = String::from_utf8(replay.stdout).unwrap();
    assert!(expected.contains("\"client_flood\""), "{expected}");
    let total = frames(&cap).len();

    let q = unique("restart-packets");
    let ex = unique("restart-alerts");
    let aq = unique("restart-alerts-q");
    let _cleanup = Cleanup {
        queues: vec![q.clone(), aq.clone()],
        exchanges: vec![ex.clone()],
    };
    rt().block_on(async {
        let (_c, ch) = channel().await;
        bind_queue(&ch, &ex, &aq, "#", true).await;
    });
    let alerts_file = dir.join("alerts.jsonl");
    let mut consumer = Command::new(bin)
        .args(["consume", "--queue", &q, "--exit-on-eos", "--exchange", &ex])
        // However slow the sensor is to come back, it is not idle.
        .args(["--idle-timeout", "120"])
        .args(["--metrics-listen", "127.0.0.1:0", "--alerts"])
        .arg(&alerts_file)
        .env("DNSMONITOR_AMQP_URI", URI)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, consumer_err) = metrics_addr(&mut consumer);
    // Small batches, one in flight: the sensor takes several seconds.
    let sensor = Command::new(bin)
        .args(["sensor", "--file"])
        .arg(&cap)
        .args([
            "--queue",
            &q,
            "--batch-packets",
            "5",
            "--max-in-flight",
            "1",
        ])
        .env("DNSMONITOR_AMQP_URI", URI)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Readiness: batches are flowing through the consumer.
    let clock = Clock;
    let deadline = clock.now() + Duration::from_secs(60);
    while metric(
        &scrape(&addr),
        "dnsmonitor_amqp_deliveries_total{outcome=\"received\"}",
    ) < 20
    {
        assert!(clock.now() < deadline, "no batch reached the consumer");
        clock.sleep(Duration::from_millis(50));
    }
    let guard = StartAppGuard;
    assert!(rabbitmqctl(&["stop_app"]), "rabbitmqctl stop_app");
    // The broker stays down a while (not a synchronisation).
    clock.sleep(Duration::from_secs(2));
    drop(guard); // start_app + await_startup

    let s = wait_output(sensor, 180);
    let serr = String::from_utf8_lossy(&s.stderr);
    assert!(s.status.success(), "{serr}");
    assert!(serr.contains(&format!(": {total} packets in")), "{serr}");
    assert!(
        !serr.contains("after 0 reconnect(s)"),
        "the sensor saw the restart: {serr}"
    );
    let c = wait_output(consumer, 180);
    let cerr = consumer_err.join().unwrap();
    assert!(c.status.success(), "{cerr}");
    assert!(cerr.contains(&format!("packets: {total} read")), "{cerr}");
    assert!(
        !cerr.contains(" 0 reconnects"),
        "the consumer saw the restart: {cerr}"
    );
    assert!(!cerr.contains("guest:guest"), "{cerr}");
    let got = std::fs::read_to_string(&alerts_file).unwrap();
    assert_eq!(got, expected);
    let published: Vec<String> = rt().block_on(async {
        let (_c, ch) = channel().await;
        drain(&ch, &aq)
            .await
            .iter()
            .map(|m| String::from_utf8(m.delivery.data.clone()).unwrap())
            .collect()
    });
    for line in expected.lines() {
        assert!(
            published.iter().any(|p| p == line),
            "alert lost on the exchange: {line}"
        );
    }
    println!("sensor: {serr}\nconsume: {cerr}");
    let _ = std::fs::remove_dir_all(dir);
}
