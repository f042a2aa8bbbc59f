//! A dnstap file round trip: unbound logs to `fstrm_capture` (fstrm-bin),
//! which writes a Frame Streams file. Then
//! - the golang `dnstap` tool and `dnstap-ldns` count its messages, and
//!   `replay` of the file must find as many;
//! - `fstrm_replay` (libfstrm, a real bidirectional sender) streams the
//!   file into `dnsmonitor dnstap`, and that live run's event log and
//!   alerts must equal the replay's.
//!
//! Loopback only; tools missing fail the test under the test command.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use dnsmonitor::config::Plan;
use dnsmonitor::time::Clock;

mod common;
mod dnstap_support;
use dnstap_support::*;

/// Wait until `path` is a unix socket (a collector's readiness).
fn wait_for_socket(path: &Path, p: &mut Proc) {
    use std::os::unix::fs::FileTypeExt;
    let t0 = Clock.now();
    while !std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        if let Ok(Some(st)) = p.child.try_wait() {
            panic!("{} exited ({st}): {}", p.name, p.stderr());
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no socket {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn count_lines(cmd: &mut Command) -> usize {
    let out = cmd.stderr(Stdio::null()).output().expect("run decoder");
    assert!(out.status.success(), "{cmd:?} failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

#[test]
fn fstrm_capture_file_replays_like_the_live_run_and_tools_agree() {
    if let Some(why) = missing_tool(&[
        "unbound",
        "dig",
        "dnsperf",
        "fstrm_capture",
        "fstrm_replay",
        "dnstap",
        "dnstap-ldns",
    ]) {
        common::cannot_run(&why);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("capture.sock");
    let file = dir.path().join("unbound.dnstap");
    // 1. unbound -> fstrm_capture -> file
    let mut cap = Proc::spawn(
        "fstrm_capture",
        Command::new("fstrm_capture")
            .args(["-t", "protobuf:dnstap.Dnstap", "-u"])
            .arg(&sock)
            .arg("-w")
            .arg(&file)
            .stdout(Stdio::null()),
    );
    wait_for_socket(&sock, &mut cap);
    let port = free_port("127.0.0.2");
    let mut unbound = start_unbound(&unbound_conf(dir.path(), port, &sock), port);
    for (i, (name, addr)) in NAMES.iter().enumerate() {
        let client = format!("127.0.0.{}", 20 + i);
        assert_eq!(
            dig("127.0.0.2", port, &client, name),
            Some(("NOERROR".into(), addr.to_string()))
        );
    }
    let _ = dig("127.0.0.2", port, "127.0.0.30", "missing.corp.test");
    let queries = dir.path().join("q.txt");
    std::fs::write(&queries, "www.corp.test A\nnx.corp.test A\n").unwrap();
    let mut perf = Proc::spawn(
        "dnsperf",
        Command::new("dnsperf")
            .args([
                "-s",
                "127.0.0.2",
                "-p",
                &port.to_string(),
                "-a",
                "127.0.0.31",
                "-d",
            ])
            .arg(&queries)
            .args(["-Q", "300", "-l", "2"])
            .stdout(Stdio::null()),
    );
    assert!(
        perf.wait(Duration::from_secs(20)).success(),
        "dnsperf: {}",
        perf.stderr()
    );
    // unbound flushes its dnstap queue when it stops; then the capture
    // writes STOP and closes the file.
    unbound.signal(libc::SIGTERM);
    unbound.wait(Duration::from_secs(20));
    cap.signal(libc::SIGINT);
    cap.wait(Duration::from_secs(20));
    assert!(
        cap.stderr().contains("closed output file"),
        "{}",
        cap.stderr()
    );

    // 2. the decoders agree with replay on the message count
    let golang = count_lines(Command::new("dnstap").arg("-q").arg("-r").arg(&file));
    let ldns = count_lines(Command::new("dnstap-ldns").arg("-q").arg("-r").arg(&file));
    let plan = || Plan::default_plan(&[]).unwrap();
    let replay = common::replay(std::slice::from_ref(&file), plan(), 1, true);
    let n = replay.summary.dns_messages as usize;
    assert!(
        n >= 600,
        "only {n} messages: dig and dnsperf should give over 600"
    );
    assert_eq!(golang, n, "golang dnstap tool vs replay");
    assert_eq!(ldns, n, "dnstap-ldns vs replay");
    assert_eq!(replay.summary.dnstap.frames as usize, n);

    // 3. the same file, sent live by fstrm_replay, gives the same events
    let live_sock = dir.path().join("live.sock");
    let (events, alerts) = (dir.path().join("ev.jsonl"), dir.path().join("al.jsonl"));
    let mut mon = start_dnstap(&[
        "--listen",
        &format!("unix:{}", live_sock.display()),
        "--events",
        events.to_str().unwrap(),
        "--alerts",
        alerts.to_str().unwrap(),
    ]);
    let mut sender = Proc::spawn(
        "fstrm_replay",
        Command::new("fstrm_replay")
            .args(["-t", "protobuf:dnstap.Dnstap", "-u"])
            .arg(&live_sock)
            .arg("-r")
            .arg(&file)
            .stdout(Stdio::null()),
    );
    assert!(
        sender.wait(Duration::from_secs(30)).success(),
        "{}",
        sender.stderr()
    );
    // The connection's end reaches the listener's log once all is read.
    mon.wait_for_stderr(
        &format!("finished after {n} frames"),
        Duration::from_secs(20),
    );
    assert_eq!(
        mon.interrupt(Duration::from_secs(20)).code(),
        Some(0),
        "{}",
        mon.stderr()
    );
    let live_events = std::fs::read_to_string(&events).unwrap();
    assert_eq!(live_events.lines().count(), n);
    assert!(
        live_events == replay.events,
        "live and replay event logs differ"
    );
    let live_alerts = std::fs::read_to_string(&alerts).unwrap();
    assert_eq!(live_alerts, replay.alerts, "live and replay alerts differ");
}
