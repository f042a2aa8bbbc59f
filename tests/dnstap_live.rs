//! `dnsmonitor dnstap` fed by a real unbound (Debian's, built with dnstap):
//! local zones only on 127.0.0.2, client queries and responses logged to
//! dnsmonitor's unix socket. dig and dnsperf send the queries; nothing
//! leaves 127.0.0.0/8. Every process is bounded in time and killed on drop.
//! Without unbound, dig or dnsperf a test fails under the test command
//! (DNSMONITOR_REQUIRE_SERVICES), as tests/common says.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use dnsmonitor::time::Clock;
use serde_json::Value;

mod common;
mod dnstap_support;
use dnstap_support::*;

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

macro_rules! require_tools {
    ($($t:expr),*) => {
        if let Some(why) = missing_tool(&[$($t),*]) {
            common::cannot_run(&why);
            return;
        }
    };
}

fn rfc3339_us(s: &str) -> i64 {
    // 2026-11-25T18:01:12Z or with .ffffff
    let (date, time) = s.trim_end_matches('Z').split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    // days from civil (Howard Hinnant)
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let frac_us: i64 = format!("{frac:0<6}")[..6].parse().unwrap();
    ((days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2]) * 1_000_000) + frac_us
}

fn wait_for(
    path: &Path,
    limit: Duration,
    monitor: &Proc,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let t0 = Clock.now();
    loop {
        if let Some(a) = read_lines(path).into_iter().find(|a| pred(a)) {
            return a;
        }
        assert!(
            t0.elapsed() < limit,
            "no {what} within {limit:?}; file so far:\n{}\nmonitor stderr:\n{}",
            std::fs::read_to_string(path).unwrap_or_default(),
            monitor.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn dnsperf(port: u16, queries: &Path, client: &str, qps: u32, secs: u32) -> Proc {
    let mut cmd = std::process::Command::new("dnsperf");
    cmd.args([
        "-s",
        "127.0.0.2",
        "-p",
        &port.to_string(),
        "-a",
        client,
        "-d",
    ])
    .arg(queries)
    .args(["-Q", &qps.to_string(), "-l", &secs.to_string()])
    .stdout(std::process::Stdio::piped());
    Proc::spawn("dnsperf", &mut cmd)
}

/// (qr, id, qname, qtype, rcode, client) of every message from these clients.
fn messages(events: &[Value], clients: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = events
        .iter()
        .filter_map(|e| {
            let client = if e["qr"] == true {
                &e["dst"]
            } else {
                &e["src"]
            };
            clients.contains(&client.as_str()?).then(|| {
                format!(
                    "{} {} {} {} {} {}",
                    e["qr"], e["id"], e["qname"], e["qtype"], e["rcode"], client
                )
            })
        })
        .collect();
    v.sort();
    v
}

/// dig's names reach the event log with the right client and rcode; a
/// dnsperf flood from 127.0.0.3 raises client_flood for 127.0.0.3 (and for
/// no one else); SIGINT flushes and exits 0. The same traffic captured by
/// tcpdump on lo and replayed gives the same messages (id, qname, qtype,
/// rcode, client) as the dnstap run.
#[test]
fn unbound_dnstap_gives_dig_events_and_a_flood_alert() {
    require_tools!("unbound", "dig", "dnsperf", "tcpdump");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        common::cannot_run("not root: tcpdump on lo needs CAP_NET_RAW");
        return;
    }
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("dnstap.sock");
    let (events, alerts) = (
        dir.path().join("events.jsonl"),
        dir.path().join("alerts.jsonl"),
    );
    let pipeline = write_pipeline(dir.path());
    let mut mon = start_dnstap(&[
        "--listen",
        &format!("unix:{}", sock.display()),
        "--pipeline",
        pipeline.to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
        "--alerts",
        alerts.to_str().unwrap(),
        "--idle-timeout",
        "2",
    ]);
    let port = free_port("127.0.0.2");
    let pcap = dir.path().join("lo.pcap");
    let mut tcpdump = Proc::spawn(
        "tcpdump",
        std::process::Command::new("tcpdump")
            .args(["-i", "lo", "-n", "-U", "--immediate-mode", "-w"])
            .arg(&pcap)
            .arg(format!("udp port {port}"))
            .stdout(std::process::Stdio::null()),
    );
    tcpdump.wait_for_stderr("listening on lo", Duration::from_secs(10));
    let mut unbound = start_unbound(&unbound_conf(dir.path(), port, &sock), port);
    // unbound's readiness lookup came from 127.0.0.1; these from .5 and .6.
    assert_eq!(
        dig("127.0.0.2", port, "127.0.0.5", "mail.corp.test"),
        Some(("NOERROR".into(), "10.1.0.25".into()))
    );
    assert_eq!(
        dig("127.0.0.2", port, "127.0.0.6", "nope.corp.test").map(|x| x.0),
        Some("NXDOMAIN".into())
    );
    let dig_event = |client: &str, name: &str, rcode: u64| {
        let (client, name) = (client.to_string(), name.to_string());
        move |e: &Value| {
            e["qr"] == true
                && e["dst"] == client.as_str()
                && e["qname"] == name.as_str()
                && e["rcode"] == rcode
        }
    };
    wait_for(
        &events,
        Duration::from_secs(20),
        &mon,
        "dig response event",
        dig_event("127.0.0.5", "mail.corp.test", 0),
    );
    wait_for(
        &events,
        Duration::from_secs(20),
        &mon,
        "NXDOMAIN event",
        dig_event("127.0.0.6", "nope.corp.test", 3),
    );
    let q = read_lines(&events);
    assert!(
        q.iter()
            .any(|e| e["qr"] == false && e["src"] == "127.0.0.5" && e["qname"] == "mail.corp.test"),
        "dig's query is logged from its client"
    );
    // The flood.
    let queries = dir.path().join("queries.txt");
    std::fs::write(
        &queries,
        NAMES
            .iter()
            .map(|(n, _)| format!("{n} A\n"))
            .collect::<String>(),
    )
    .unwrap();
    let started_us = Clock.unix_micros();
    let mut perf = dnsperf(port, &queries, "127.0.0.3", 500, 4);
    let alert = wait_for(
        &alerts,
        Duration::from_secs(30),
        &mon,
        "client_flood for 127.0.0.3",
        |a| {
            a["kind"] == "client_flood"
                && a["key"]["client"] == "127.0.0.3"
                && a["state"] == "raised"
        },
    );
    let seen_us = Clock.unix_micros();
    let window_end_us = rfc3339_us(alert["window"]["end"].as_str().unwrap());
    eprintln!(
        "MEASURE alert latency: {:.3} s after the window end (event time of the answers it counts), {:.3} s after dnsperf started",
        (seen_us - window_end_us) as f64 / 1e6,
        (seen_us - started_us) as f64 / 1e6
    );
    perf.wait(Duration::from_secs(20));
    // unbound sends what it still buffers and STOP when it stops.
    unbound.signal(libc::SIGTERM);
    unbound.wait(Duration::from_secs(20));
    mon.wait_for_stderr("finished after", Duration::from_secs(20));
    let st = mon.interrupt(Duration::from_secs(20));
    assert_eq!(st.code(), Some(0), "stderr:\n{}", mon.stderr());
    let err = mon.stderr();
    assert!(err.contains("--- dnsmonitor dnstap summary ---"), "{err}");
    assert!(
        err.contains("client_query=") && err.contains("client_response="),
        "{err}"
    );
    for a in read_lines(&alerts) {
        assert_eq!(
            a["key"]["client"], "127.0.0.3",
            "only the flooder is flagged: {a}"
        );
    }
    // The packets on lo, replayed, are the same messages (unbound's
    // readiness lookups from 127.0.0.1 are left out: some were sent before
    // unbound listened and have no dnstap twin).
    tcpdump.interrupt(Duration::from_secs(10));
    let plan = common::plan(
        &format!("[capture]\ndns_ports = [{port}]\n"),
        dir.path(),
        &[],
    );
    let replay = common::replay(&[pcap], plan, 1, true);
    let replayed: Vec<Value> = replay
        .events
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // dig's lookups: exactly the same messages.
    let digs = ["127.0.0.5", "127.0.0.6"];
    let dnstap_events = read_lines(&events);
    let (a, b) = (messages(&dnstap_events, &digs), messages(&replayed, &digs));
    assert_eq!(a.len(), 4, "dig's two queries and two responses: {a:?}");
    assert_eq!(a, b, "dig's messages: dnstap run vs tcpdump replay");
    // The flood: under 1000 packets/s unbound's dnstap queue and tcpdump's
    // buffer may each lose a few; every message both saw must agree and
    // the difference stays small (it is printed).
    let flood = ["127.0.0.3"];
    let (a, b) = (
        messages(&dnstap_events, &flood),
        messages(&replayed, &flood),
    );
    let (sa, sb): (std::collections::BTreeSet<_>, std::collections::BTreeSet<_>) =
        (a.iter().collect(), b.iter().collect());
    let both = sa.intersection(&sb).count();
    eprintln!(
        "MEASURE flood messages: dnstap {}, tcpdump {}, in both {both}; tcpdump: {}",
        a.len(),
        b.len(),
        tcpdump
            .stderr()
            .lines()
            .filter(|l| l.contains("dropped"))
            .collect::<Vec<_>>()
            .join("; ")
    );
    assert!(
        a.len() > 3000,
        "only {} flood messages in the dnstap run",
        a.len()
    );
    assert!(
        both * 100 >= a.len().max(b.len()) * 95,
        "dnstap run ({}) and tcpdump replay ({}) share only {both} flood messages",
        a.len(),
        b.len()
    );
}

/// A stale socket file is replaced, the mode is the one asked for, and a
/// path that is no socket is refused before the run.
#[test]
fn socket_file_mode_and_stale_socket() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("d.sock");
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap()); // stale
    let mut mon = start_dnstap(&[
        "--listen",
        &format!("unix:{}", sock.display()),
        "--socket-mode",
        "0600",
        "--alerts",
        "/dev/null",
    ]);
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // In use: a second listener on the same path is refused.
    let out = std::process::Command::new(BIN)
        .args(["dnstap", "--alerts", "/dev/null", "--listen"])
        .arg(format!("unix:{}", sock.display()))
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("another process is listening"));
    assert_eq!(
        mon.interrupt(Duration::from_secs(20)).code(),
        Some(0),
        "{}",
        mon.stderr()
    );
    assert!(!sock.exists(), "the socket file is removed at exit");
    // A regular file is never replaced.
    let file = dir.path().join("regular");
    std::fs::write(&file, "keep me").unwrap();
    let out = std::process::Command::new(BIN)
        .args(["dnstap", "--alerts", "/dev/null", "--listen"])
        .arg(format!("unix:{}", file.display()))
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a socket"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
}
