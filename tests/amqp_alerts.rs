//! AMQP alert sink and consumer against a real RabbitMQ on 127.0.0.1:5672.
//! Without a broker they fail, unless DNSMONITOR_SKIP_SERVICES=1 is set: then
//! they print SKIPPED, are counted, and return (`common::cannot_run`).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use common::amqp::*;
use dnsmonitor::alert::{Alert, State};
use dnsmonitor::amqp::error::redact;
use dnsmonitor::amqp::sink::AmqpAlertSink;
use dnsmonitor::amqp::subscriber::{consume_alerts_blocking, consume_alerts_blocking_ready};
use dnsmonitor::detect::{Kind, Severity};
use dnsmonitor::metrics::Metrics;
use dnsmonitor::sinks::Sink;
use dnsmonitor::sinks::human::human_line;

#[test]
fn sink_publishes_routed_persistent_alerts() {
    if !broker_up() {
        return;
    }
    let exchange = unique("ex");
    let queue = unique("q");
    let _cleanup = Cleanup {
        queues: vec![queue.clone()],
        exchanges: vec![exchange.clone()],
    };
    let rt = rt();
    let (conn, ch) = rt.block_on(async {
        let (conn, ch) = channel().await;
        bind_queue(&ch, &exchange, &queue, "client_flood.*", false).await;
        (conn, ch)
    });

    let metrics = Metrics::new();
    let mut sink = AmqpAlertSink::connect(URI, &exchange, Some(metrics.clone())).unwrap();
    let alerts = [
        test_alert(Kind::ClientFlood, Severity::Warning, State::Raised, 1, 0),
        test_alert(Kind::SubnetFlood, Severity::Critical, State::Raised, 2, 0),
        test_alert(Kind::ClientFlood, Severity::Critical, State::Updated, 1, 1),
        test_alert(Kind::NxdomainFlood, Severity::Warning, State::Raised, 3, 1),
    ];
    sink.emit(&alerts[..2]).unwrap();
    sink.emit(&alerts[2..]).unwrap();
    sink.finish().unwrap();
    let confirmed = metrics
        .amqp_publishes
        .with_label_values(&["confirmed"])
        .get();
    assert_eq!(confirmed, 4);

    let got = rt.block_on(drain(&ch, &queue));
    let want: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.kind == Kind::ClientFlood)
        .collect();
    assert_eq!(got.len(), want.len(), "only client_flood.* must arrive");
    for (m, a) in got.iter().zip(want) {
        let body = std::str::from_utf8(&m.delivery.data).unwrap();
        assert_eq!(body, a.to_json_line());
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["schema"], "dnsmonitor.alert/1");
        assert_eq!(v["kind"], "client_flood");
        assert_eq!(
            m.delivery.routing_key.as_str(),
            format!("client_flood.{}", a.severity.as_str())
        );
        let p = &m.delivery.properties;
        assert_eq!(*p.delivery_mode(), Some(2), "persistent");
        assert_eq!(
            p.content_type().as_ref().map(|s| s.as_str()),
            Some("application/json")
        );
        let mid = p.message_id().as_ref().unwrap().as_str().to_string();
        assert!(
            mid.starts_with(v["id"].as_str().unwrap()) && mid.contains(a.state.as_str()),
            "{mid}"
        );
    }
    rt.block_on(async { conn.close(200, "bye".into()).await.unwrap() });
}

#[test]
fn consumer_receives_in_order_for_a_binding() {
    if !broker_up() {
        return;
    }
    let exchange = unique("ex");
    let _cleanup = Cleanup {
        queues: vec![],
        exchanges: vec![exchange.clone()],
    };
    let stop = Arc::new(AtomicBool::new(false));
    let (line_tx, line_rx) = mpsc::channel::<String>();
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let consumer = {
        let exchange = exchange.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            consume_alerts_blocking_ready(
                URI,
                &exchange,
                &["*.critical".to_string()],
                stop,
                move || ready_tx.send(()).unwrap(),
                |line| line_tx.send(line.to_string()).unwrap(),
            )
        })
    };
    ready_rx
        .recv_timeout(Duration::from_secs(15))
        .expect("consumer ready");

    let mut sink = AmqpAlertSink::connect(URI, &exchange, None).unwrap();
    let alerts: Vec<Alert> = (0..20)
        .map(|i| {
            let sev = if i % 3 == 0 {
                Severity::Warning
            } else {
                Severity::Critical
            };
            test_alert(Kind::ClientFlood, sev, State::Updated, (i % 5) as u8, i)
        })
        .collect();
    for chunk in alerts.chunks(6) {
        sink.emit(chunk).unwrap();
    }
    sink.finish().unwrap();

    let want: Vec<String> = alerts
        .iter()
        .filter(|a| a.severity == Severity::Critical)
        .map(|a| a.to_json_line())
        .collect();
    let mut got = Vec::new();
    let deadline = dnsmonitor::time::Clock.now() + Duration::from_secs(15);
    while got.len() < want.len() && dnsmonitor::time::Clock.now() < deadline {
        if let Ok(l) = line_rx.recv_timeout(Duration::from_millis(200)) {
            got.push(l);
        }
    }
    // Nothing extra arrives.
    if let Ok(l) = line_rx.recv_timeout(Duration::from_millis(300)) {
        got.push(l);
    }
    stop.store(true, Ordering::Relaxed);
    consumer.join().unwrap().unwrap();
    assert_eq!(got, want);
    let v: serde_json::Value = serde_json::from_str(&got[0]).unwrap();
    let h = human_line(&v, false);
    assert!(
        h.contains("CRITICAL") && h.contains("client_flood") && h.contains("client=192.0.2.1"),
        "{h}"
    );
}

#[test]
fn consumer_returns_when_stopped() {
    if !broker_up() {
        return;
    }
    let exchange = unique("ex");
    let _cleanup = Cleanup {
        queues: vec![],
        exchanges: vec![exchange.clone()],
    };
    let stop = Arc::new(AtomicBool::new(true));
    let t = dnsmonitor::time::Clock.now();
    consume_alerts_blocking(URI, &exchange, &[], stop, |_| panic!("no alerts")).unwrap();
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[test]
fn redact_hides_password() {
    let r = redact("amqp://user:secret@host:5672/%2f");
    assert_eq!(r, "amqp://user:***@host:5672/%2f");
    assert!(!r.contains("secret"));
    assert_eq!(redact("amqp://host:5672/%2f"), "amqp://host:5672/%2f");
    assert_eq!(redact("amqp://user@host/%2f"), "amqp://user@host/%2f");
    assert_eq!(
        redact("amqps://u:p%40ss@h:5671/v?heartbeat=10"),
        "amqps://u:***@h:5671/v?heartbeat=10"
    );
}

#[test]
fn unreachable_broker_fails_fast_without_password() {
    // Port 1 on loopback: connection refused at once.
    let t = dnsmonitor::time::Clock.now();
    let err = match AmqpAlertSink::connect("amqp://user:topsecret@127.0.0.1:1/%2f", "", None) {
        Ok(_) => panic!("connected to port 1?"),
        Err(e) => e.to_string(),
    };
    assert!(t.elapsed() < Duration::from_secs(15));
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(!err.contains("topsecret"), "{err}");
}

#[test]
fn human_line_has_the_key_fields() {
    let a = test_alert(Kind::ClientFlood, Severity::Critical, State::Raised, 66, 0);
    let v: serde_json::Value = serde_json::from_str(&a.to_json_line()).unwrap();
    let h = human_line(&v, false);
    assert!(h.starts_with("2025-"), "{h}");
    for part in [
        "CRITICAL",
        "client_flood",
        "raised",
        "client=192.0.2.66",
        "316.2 queries/s (threshold 300)",
    ] {
        assert!(h.contains(part), "{part} missing in {h}");
    }
    let evil = serde_json::json!({"kind": "x\u{1b}[2J", "key": {"qname": "a\nb"}});
    let h = human_line(&evil, false);
    assert!(!h.contains('\u{1b}') && !h.contains('\n'), "{h}");
}

/// The binaries as users run them: `dnsmonitor alerts` bound to
/// `client_flood.*` prints exactly what `dnsmonitor replay --amqp` writes on
/// stdout for the loopback flood capture; the password never shows.
#[test]
fn replay_publishes_and_the_alerts_command_receives() {
    use std::io::{BufRead, BufReader};
    use std::process::Command;
    if !broker_up() {
        return;
    }
    let exchange = unique("cli");
    let _cleanup = Cleanup {
        queues: vec![],
        exchanges: vec![exchange.clone()],
    };
    let bin = env!("CARGO_BIN_EXE_dnsmonitor");
    let root = env!("CARGO_MANIFEST_DIR");
    // Returns once the consumer's queue is bound.
    let mut consumer = start_alerts_watcher(&exchange, "client_flood.*");
    let replay = Command::new(bin)
        .current_dir(root)
        .args([
            "replay",
            "captures/loopback-flood.pcap",
            "--exchange",
            &exchange,
        ])
        .env("DNSMONITOR_AMQP_URI", URI)
        .output()
        .unwrap();
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    let printed = String::from_utf8(replay.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&replay.stderr);
    assert!(
        !stderr.contains("guest:guest"),
        "password printed: {stderr}"
    );
    let expected: Vec<&str> = printed.lines().collect();
    assert!(expected.len() >= 3);
    let mut out = BufReader::new(consumer.stdout.take().unwrap());
    let mut got = vec![];
    for _ in 0..expected.len() {
        let mut l = String::new();
        out.read_line(&mut l).unwrap();
        got.push(l.trim_end().to_string());
    }
    assert_eq!(got, expected);
    unsafe {
        libc::kill(consumer.id() as i32, libc::SIGINT);
    }
    assert!(consumer.wait().unwrap().success());
}

/// Reports go out on the exchange too, routing key `report.<name>`, one
/// message per line, the same lines as `--reports`.
#[test]
fn replay_publishes_reports() {
    use std::process::Command;
    if !broker_up() {
        return;
    }
    let exchange = unique("reports");
    let queue = unique("reports-q");
    let _cleanup = Cleanup {
        queues: vec![queue.clone()],
        exchanges: vec![exchange.clone()],
    };
    let rt = rt();
    rt.block_on(async {
        let (_c, ch) = channel().await;
        bind_queue(&ch, &exchange, &queue, "report.#", false).await;
    });
    let file = std::env::temp_dir().join(unique("reports.jsonl"));
    let out = Command::new(env!("CARGO_BIN_EXE_dnsmonitor"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["replay", "captures/loopback-flood.pcap", "--quiet"])
        .args(["--exchange", &exchange, "--reports"])
        .arg(&file)
        .env("DNSMONITOR_AMQP_URI", URI)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = std::fs::read_to_string(&file).unwrap();
    let _ = std::fs::remove_file(&file);
    let got = rt.block_on(async {
        let (_c, ch) = channel().await;
        drain(&ch, &queue).await
    });
    let lines: Vec<&str> = expected.lines().collect();
    assert!(lines.len() >= 3, "{expected}");
    assert_eq!(got.len(), lines.len());
    for (m, line) in got.iter().zip(&lines) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let rk = format!("report.{}", v["report"].as_str().unwrap());
        assert_eq!(m.delivery.routing_key.as_str(), rk);
        assert_eq!(std::str::from_utf8(&m.delivery.data).unwrap(), *line);
    }
}

/// `[sink] type = "amqp"` in the pipeline: alerts go to the pipeline's
/// exchange; without a broker URI the run does not start.
#[test]
fn pipeline_sink_publishes_to_its_exchange() {
    use std::process::Command;
    let exchange = unique("pipeline-sink");
    let dir = std::env::temp_dir().join(unique("pipeline-sink-dir"));
    std::fs::create_dir_all(&dir).unwrap();
    let pipeline = dir.join("p.toml");
    std::fs::write(
        &pipeline,
        format!("[sink]\ntype = \"amqp\"\nexchange = \"{exchange}\"\n"),
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_dnsmonitor");
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(bin)
        .current_dir(root)
        .args(["replay", "captures/loopback-flood.pcap", "--pipeline"])
        .arg(&pipeline)
        .env_remove("DNSMONITOR_AMQP_URI")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("[sink] type = \"amqp\" needs a broker"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "nothing ran");
    if !broker_up() {
        return;
    }
    let queue = unique("pipeline-sink-q");
    let _cleanup = Cleanup {
        queues: vec![queue.clone()],
        exchanges: vec![exchange.clone()],
    };
    let rt = rt();
    rt.block_on(async {
        let (_c, ch) = channel().await;
        bind_queue(&ch, &exchange, &queue, "client_flood.*", false).await;
    });
    let out = Command::new(bin)
        .current_dir(root)
        .args([
            "replay",
            "captures/loopback-flood.pcap",
            "--quiet",
            "--pipeline",
        ])
        .arg(&pipeline)
        .env("DNSMONITOR_AMQP_URI", URI)
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    let got = rt.block_on(async {
        let (_c, ch) = channel().await;
        drain(&ch, &queue).await
    });
    let got: Vec<String> = got
        .iter()
        .map(|m| String::from_utf8(m.delivery.data.clone()).unwrap())
        .collect();
    assert_eq!(got, printed.lines().collect::<Vec<_>>());
    let _ = std::fs::remove_dir_all(dir);
}
