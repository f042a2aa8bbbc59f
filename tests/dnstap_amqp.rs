//! dnstap through RabbitMQ: `sensor --dnstap` receives dnstap from a real
//! libfstrm sender (`fstrm_replay`) and forwards it as dnstap batches
//! (content type `application/vnd.dnstap.fstrm`); `consume` turns them
//! into the same alerts and events as the direct `dnstap` run of the same
//! stream. The stream is the committed flood capture's DNS messages as a
//! resolver logs them (CLIENT_QUERY/RESPONSE). Needs the broker on
//! 127.0.0.1:5672 and fstrm-bin.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::amqp::{Cleanup, URI, broker_up, unique, wait_output};

mod common;
mod dnstap_support;
use dnstap_support::*;

fn fstrm_replay(sock: &Path, file: &Path) {
    let mut p = Proc::spawn(
        "fstrm_replay",
        Command::new("fstrm_replay")
            .args(["-t", "protobuf:dnstap.Dnstap", "-u"])
            .arg(sock)
            .arg("-r")
            .arg(file)
            .stdout(Stdio::null()),
    );
    assert!(p.wait(Duration::from_secs(60)).success(), "{}", p.stderr());
}

#[test]
fn sensor_dnstap_through_the_broker_gives_the_direct_runs_alerts() {
    if !broker_up() {
        return;
    }
    if let Some(why) = missing_tool(&["fstrm_replay"]) {
        common::cannot_run(&why);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let frames =
        frames_of_pcap(&Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/loopback-flood.pcap"));
    let n = frames.len();
    let file = dir.path().join("flood.dnstap");
    dnsmonitor::dnstap::file::write(&file, &frames).unwrap();

    // Direct: fstrm_replay -> dnsmonitor dnstap.
    let sock = dir.path().join("direct.sock");
    let (a1, e1) = (dir.path().join("a1.jsonl"), dir.path().join("e1.jsonl"));
    let mut mon = start_dnstap(&[
        "--listen",
        &format!("unix:{}", sock.display()),
        "--alerts",
        a1.to_str().unwrap(),
        "--events",
        e1.to_str().unwrap(),
    ]);
    fstrm_replay(&sock, &file);
    mon.wait_for_stderr(
        &format!("finished after {n} frames"),
        Duration::from_secs(60),
    );
    assert_eq!(
        mon.interrupt(Duration::from_secs(30)).code(),
        Some(0),
        "{}",
        mon.stderr()
    );
    let direct_alerts = std::fs::read_to_string(&a1).unwrap();
    assert!(
        direct_alerts.contains("\"client_flood\""),
        "{direct_alerts}"
    );

    // Through the broker: fstrm_replay -> sensor --dnstap -> queue -> consume.
    let q = unique("dnstap");
    let _c = Cleanup {
        queues: vec![q.clone()],
        exchanges: vec![],
    };
    let sock2 = dir.path().join("sensor.sock");
    let mut cmd = Command::new(BIN);
    cmd.args([
        "sensor",
        "--queue",
        &q,
        "--sensor-id",
        "dnstap-test",
        "--dnstap",
    ])
    .arg(format!("unix:{}", sock2.display()))
    .env("DNSMONITOR_AMQP_URI", URI)
    .env("DNSMONITOR_LOG", "info,lapin=off")
    .stdout(Stdio::null());
    let mut sensor = Proc::spawn("dnsmonitor sensor", &mut cmd);
    sensor.wait_for_stderr("dnstap: listening on", Duration::from_secs(20));
    fstrm_replay(&sock2, &file);
    sensor.wait_for_stderr(
        &format!("finished after {n} frames"),
        Duration::from_secs(60),
    );
    let st = sensor.interrupt(Duration::from_secs(60));
    assert_eq!(st.code(), Some(0), "{}", sensor.stderr());
    assert!(
        sensor.stderr().contains(&format!("{n} packets in")),
        "{}",
        sensor.stderr()
    );
    let (a2, e2) = (dir.path().join("a2.jsonl"), dir.path().join("e2.jsonl"));
    let consumer = Command::new(BIN)
        .args([
            "consume",
            "--queue",
            &q,
            "--no-alert-exchange",
            "--exit-on-eos",
        ])
        .arg("--alerts")
        .arg(&a2)
        .arg("--events")
        .arg(&e2)
        .env("DNSMONITOR_AMQP_URI", URI)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(consumer, 120);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains(&format!("dnstap: {n} frames")), "{err}");
    assert!(err.contains("0 rejected"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&a2).unwrap(),
        direct_alerts,
        "alerts differ; consume stderr:\n{err}"
    );
    // The same messages; `source` names the sensor instead of dnstap.
    let consumed = std::fs::read_to_string(&e2).unwrap();
    let (by_sensor, direct) = (r#","source":"dnstap-test"}"#, r#","source":"dnstap"}"#);
    assert!(consumed.lines().all(|l| l.ends_with(by_sensor)));
    assert_eq!(
        consumed.replace(by_sensor, direct),
        std::fs::read_to_string(&e1).unwrap(),
        "event logs differ"
    );
}
