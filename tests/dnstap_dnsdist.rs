//! dnsdist (Debian's 1.7) in front of dnsmasq feeds `dnsmonitor dnstap`:
//! `newFrameStreamUnixLogger` with `DnstapLogAction` (queries) and
//! `DnstapLogResponseAction` (responses). dig's lookups through dnsdist
//! reach the event log with dnsdist's client address and the rcode.
//! Loopback only; without dnsdist, dnsmasq or dig the test fails under the
//! test command (DNSMONITOR_REQUIRE_SERVICES).

use std::process::{Command, Stdio};
use std::time::Duration;

use dnsmonitor::time::Clock;

mod common;
mod dnstap_support;
use dnstap_support::*;

#[test]
fn dnsdist_in_front_of_dnsmasq_feeds_dnstap() {
    if let Some(why) = missing_tool(&["dnsdist", "dnsmasq", "dig"]) {
        common::cannot_run(&why);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("dnsdist.sock");
    let events = dir.path().join("events.jsonl");
    let pipeline = write_pipeline(dir.path());
    let mut mon = start_dnstap(&[
        "--listen",
        &format!("unix:{}", sock.display()),
        "--pipeline",
        pipeline.to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
        "--alerts",
        "/dev/null",
        "--idle-timeout",
        "1",
    ]);
    // The backend: dnsmasq with local data only.
    let backend_port = free_port("127.0.0.1");
    let mut dnsmasq = Command::new("dnsmasq");
    dnsmasq
        .args([
            "-k",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            &format!("--port={backend_port}"),
            &format!("--pid-file={}", dir.path().join("dnsmasq.pid").display()),
            "--user=root",
            "--group=root",
            "--local=/corp.test/",
            "--host-record=www.corp.test,10.1.0.10",
        ])
        .stdout(Stdio::null());
    let _dnsmasq = Proc::spawn("dnsmasq", &mut dnsmasq);
    // dnsdist on 127.0.0.2, logging to our socket; no security polling.
    let port = free_port("127.0.0.2");
    let conf = dir.path().join("dnsdist.conf");
    std::fs::write(
        &conf,
        format!(
            "setSecurityPollSuffix(\"\")\n\
             setLocal(\"127.0.0.2:{port}\")\n\
             newServer({{address=\"127.0.0.1:{backend_port}\"}})\n\
             fsul = newFrameStreamUnixLogger(\"{}\")\n\
             addAction(AllRule(), DnstapLogAction(\"dnsdist-test\", fsul))\n\
             addResponseAction(AllRule(), DnstapLogResponseAction(\"dnsdist-test\", fsul))\n",
            sock.display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new("dnsdist");
    cmd.arg("-C")
        .arg(&conf)
        .args(["--supervised", "--disable-syslog"])
        .stdout(Stdio::null());
    let mut dnsdist = Proc::spawn("dnsdist", &mut cmd);
    // Ready once a lookup through dnsdist is answered from dnsmasq.
    let t0 = Clock.now();
    while dig("127.0.0.2", port, "127.0.0.1", "www.corp.test")
        .is_none_or(|(st, a)| st != "NOERROR" || a != "10.1.0.10")
    {
        if let Ok(Some(st)) = dnsdist.child.try_wait() {
            panic!("dnsdist exited ({st}): {}", dnsdist.stderr());
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "dnsdist does not answer: {}",
            dnsdist.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        dig("127.0.0.2", port, "127.0.0.8", "www.corp.test"),
        Some(("NOERROR".into(), "10.1.0.10".into()))
    );
    assert_eq!(
        dig("127.0.0.2", port, "127.0.0.8", "nx.corp.test").map(|x| x.0),
        Some("NXDOMAIN".into())
    );
    // dnsdist's logger flushes about once a second; the events are written
    // once their windows close.
    let t0 = Clock.now();
    let found = |e: &serde_json::Value, name: &str, rcode: u64| {
        e["qr"] == true && e["dst"] == "127.0.0.8" && e["qname"] == name && e["rcode"] == rcode
    };
    loop {
        let ev = read_lines(&events);
        if ev.iter().any(|e| found(e, "www.corp.test", 0))
            && ev.iter().any(|e| found(e, "nx.corp.test", 3))
        {
            assert!(
                ev.iter()
                    .any(|e| e["qr"] == false && e["src"] == "127.0.0.8" && e["dport"] == port)
            );
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "dnsdist's lookups not in the event log:\n{}\nmonitor:\n{}",
            std::fs::read_to_string(&events).unwrap_or_default(),
            mon.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let st = mon.interrupt(Duration::from_secs(20));
    assert_eq!(st.code(), Some(0), "{}", mon.stderr());
    let err = mon.stderr();
    assert!(
        err.contains("client_query=") && err.contains("client_response="),
        "{err}"
    );
}
