//! `dnsmonitor sensor` against a real RabbitMQ on 127.0.0.1:5672: what it
//! puts on the wire. (tests/amqp_ingest.rs runs it end to end with
//! `consume`, tests/amqp_restart.rs through a broker restart.)
//! Without a broker they fail, unless DNSMONITOR_SKIP_SERVICES=1 is set: then
//! they print SKIPPED, are counted, and return (`common::cannot_run`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::amqp::*;
use dnsmonitor::amqp::batch::{CONTENT_TYPE, H_EOS, H_PACKETS, H_RUN, H_SENSOR, H_SEQ, PcapBatch};
use lapin::types::AMQPValue;

const BIN: &str = env!("CARGO_BIN_EXE_dnsmonitor");

fn capture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures")
        .join(name)
}

fn sensor(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("sensor")
        .args(args)
        .env("DNSMONITOR_AMQP_URI", URI)
        .output()
        .unwrap()
}

/// Every message is a complete pcap with the documented properties and
/// headers; sequence numbers run 1..n; the records, in order, are the
/// file's frames byte for byte; the last message is the empty end-of-stream.
#[test]
fn batches_are_complete_pcaps_in_file_order() {
    if !broker_up() {
        return;
    }
    let q = unique("sensor");
    let _c = Cleanup {
        queues: vec![q.clone()],
        exchanges: vec![],
    };
    let cap = capture("loopback-flood.pcap");
    let out = sensor(&[
        "--file",
        cap.to_str().unwrap(),
        "--queue",
        &q,
        "--batch-packets",
        "1000",
        "--sensor-id",
        "tap\u{7}-7",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // The id is escaped where printed.
    assert!(err.contains("sensor tap\\u{7}-7:"), "{err}");
    let msgs = rt().block_on(async {
        let (_conn, ch) = channel().await;
        drain(&ch, &q).await
    });
    let want = frames(&cap);
    let n = want.len().div_ceil(1000);
    assert_eq!(msgs.len(), n + 1, "data batches and the end-of-stream one");
    let run = text(header(&msgs[0], H_RUN));
    let mut got = vec![];
    for (i, m) in msgs.iter().enumerate() {
        let p = &m.delivery.properties;
        assert_eq!(p.content_type().as_ref().unwrap().as_str(), CONTENT_TYPE);
        assert_eq!(*p.delivery_mode(), Some(2));
        assert_eq!(text(header(m, H_SENSOR)), "tap\u{7}-7");
        assert_eq!(text(header(m, H_RUN)), run);
        assert_eq!(int(header(m, H_SEQ)), i as i64 + 1);
        let b = PcapBatch::parse(&m.delivery.data).unwrap();
        assert_eq!(int(header(m, H_PACKETS)), b.packets as i64);
        assert_eq!(b.linktype, want[0].0);
        let last = i == msgs.len() - 1;
        assert_eq!(header(m, H_EOS), last.then_some(&AMQPValue::Boolean(true)));
        if last {
            assert_eq!(b.packets, 0);
        } else if i < n - 1 {
            assert_eq!(b.packets, 1000);
        }
        assert_eq!(
            p.message_id().as_ref().unwrap().as_str(),
            format!("tap\u{7}-7:{run}:{}", i + 1)
        );
        for r in b.records() {
            got.push((want[0].0, r.ts_us, r.data.to_vec(), r.orig_len));
        }
    }
    assert_eq!(got, want);
}

/// To an exchange with a routing key: a queue bound to it gets every batch.
/// With nothing bound the broker returns the batches: counted as
/// unroutable, and the run still ends.
#[test]
fn exchange_target_and_unroutable_batches() {
    if !broker_up() {
        return;
    }
    let ex = unique("sensor-ex");
    let q = unique("sensor-bound");
    let _c = Cleanup {
        queues: vec![q.clone()],
        exchanges: vec![ex.clone()],
    };
    let rt = rt();
    rt.block_on(async {
        let (_conn, ch) = channel().await;
        bind_queue(&ch, &ex, &q, "sensors.#", true).await;
    });
    let cap = capture("loopback-dig.pcap");
    let file = cap.to_str().unwrap();
    let out = sensor(&[
        "--file",
        file,
        "--exchange",
        &ex,
        "--routing-key",
        "sensors.dc1",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains(", 0 unroutable"), "{err}");
    let msgs = rt.block_on(async {
        let (_conn, ch) = channel().await;
        drain(&ch, &q).await
    });
    let packets: u64 = msgs
        .iter()
        .map(|m| PcapBatch::parse(&m.delivery.data).unwrap().packets)
        .sum();
    assert_eq!(packets as usize, frames(&cap).len());
    assert!(
        msgs.iter()
            .all(|m| m.delivery.routing_key.as_str() == "sensors.dc1")
    );

    let out = sensor(&[
        "--file",
        file,
        "--exchange",
        &ex,
        "--routing-key",
        "nobody.home",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("the broker drops these batches"), "{err}");
    assert!(!err.contains(", 0 unroutable"), "{err}");
}

/// No broker: a prompt error naming the address, never the password.
#[test]
fn unreachable_broker_fails_fast_without_the_password() {
    let cap = capture("loopback-dig.pcap");
    let out = Command::new(BIN)
        .args(["sensor", "--file", cap.to_str().unwrap(), "--queue", "x"])
        .args(["--amqp", "amqp://probe:s3cret@127.0.0.1:1/%2f"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot connect to AMQP broker amqp://probe:***@127.0.0.1:1"),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "{err}");
    // Neither flag: a usage error.
    let out = Command::new(BIN)
        .args(["sensor", "--file", cap.to_str().unwrap(), "--amqp", URI])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// `--amqp-file` (first line) wins over DNSMONITOR_AMQP_URI, e.g. a unit
/// file's environment; its password is not printed either.
#[test]
fn uri_from_a_file_wins_over_the_environment() {
    if !broker_up() {
        return;
    }
    let q = unique("sensor-file");
    let _c = Cleanup {
        queues: vec![q.clone()],
        exchanges: vec![],
    };
    let dir = tempdir("sensor-file");
    let file = dir.join("amqp.uri");
    std::fs::write(&file, format!("{URI}\n# comment\n")).unwrap();
    let cap = capture("loopback-dig.pcap");
    let out = Command::new(BIN)
        .args(["sensor", "--file", cap.to_str().unwrap(), "--queue", &q])
        .arg("--amqp-file")
        .arg(&file)
        .env("DNSMONITOR_AMQP_URI", "amqp://other:pw@127.0.0.1:1/%2f")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("publishing to amqp://guest:***@127.0.0.1:5672/%2f"),
        "{err}"
    );
    assert!(!err.contains("guest:guest"), "{err}");
    let out = Command::new(BIN)
        .args(["sensor", "--file", cap.to_str().unwrap(), "--queue", &q])
        .arg("--amqp-file")
        .arg(dir.join("missing"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot read") && err.contains("missing"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
