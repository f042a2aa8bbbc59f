//! `dnsmonitor live` against real traffic on loopback: dnsmasq answers on a
//! free port P of 127.0.0.1, dig and dnsperf send the queries, the monitor
//! captures `lo` with a filter for P. Nothing leaves 127.0.0.0/8.
//!
//! Every test is bounded in time and kills what it started, also when it
//! fails (`Proc` kills its child on drop). The tests run one at a time
//! (`serial()`): they share two cores and the flood test has timing
//! expectations. They need root (capture on `lo`, run as `nobody`) and
//! dnsmasq, dig, dnsperf, tcpdump, setpriv; without them a test says why
//! and returns.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread::{self};
use std::time::Duration;

use dnsmonitor::time::Clock;
use serde_json::Value;

mod common;
use common::proc::Proc;

const BIN: &str = env!("CARGO_BIN_EXE_dnsmonitor");

/// The readiness line `dnsmonitor live` prints once the capture is open
/// and filtered.
const READY: &str = "live: capturing on lo";

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Why the tests cannot run here, if they cannot.
fn missing_prerequisite() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root: capturing on lo needs CAP_NET_RAW".into());
    }
    for tool in ["dnsmasq", "dig", "dnsperf", "tcpdump", "setpriv"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Some(format!("{tool} missing (scripts/install-deps.sh)"));
        }
    }
    None
}

macro_rules! require_prerequisites {
    () => {
        if let Some(why) = missing_prerequisite() {
            common::cannot_run(&why);
            return;
        }
    };
}

// ------------------------------------------------------------ processes ----

// ------------------------------------------------------------- dnsmasq ----

/// The local names dnsmasq answers (no upstream, `--local` gives NXDOMAIN
/// for other names in these zones).
const NAMES: &[(&str, &str)] = &[
    ("www.corp.test", "10.1.0.10"),
    ("mail.corp.test", "10.1.0.25"),
    ("vpn.corp.test", "10.1.0.44"),
    ("api.shop.test", "10.2.0.5"),
    ("news.example", "10.3.0.1"),
];

fn start_dnsmasq(port: u16, dir: &Path) -> Proc {
    let mut cmd = Command::new("dnsmasq");
    cmd.args([
        "-k",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        &format!("--port={port}"),
        &format!("--pid-file={}", dir.join("dnsmasq.pid").display()),
        "--user=root",
        "--group=root",
        "--local-ttl=300",
        "--local=/corp.test/",
        "--local=/shop.test/",
        "--local=/example/",
        // dnsperf's 1500 q/s from one address are far below this.
        "--dns-forward-max=1000",
    ]);
    for (name, addr) in NAMES {
        cmd.arg(format!("--host-record={name},{addr}"));
    }
    cmd.stdout(Stdio::null());
    let mut p = Proc::spawn("dnsmasq", &mut cmd);
    let t0 = Clock.now();
    loop {
        if dig(port, "127.0.0.1", "www.corp.test").as_deref() == Some("10.1.0.10") {
            return p;
        }
        if let Ok(Some(st)) = p.child.try_wait() {
            panic!("dnsmasq exited ({st}): {}", p.stderr());
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "dnsmasq does not answer: {}",
            p.stderr()
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// One A lookup with dig from `client`; the first answer, if any.
fn dig(port: u16, client: &str, name: &str) -> Option<String> {
    let out = Command::new("dig")
        .args([
            "-p",
            &port.to_string(),
            "@127.0.0.1",
            "-b",
            client,
            "+tries=1",
            "+time=2",
            "+short",
            name,
            "A",
        ])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().map(|l| l.trim().to_string())
}

/// `count` lookups from 127.0.0.2..5 over the names; all must be answered.
fn normal_lookups(port: u16, count: usize) {
    for i in 0..count {
        let (name, addr) = NAMES[i % NAMES.len()];
        let client = format!("127.0.0.{}", 2 + i % 4);
        assert_eq!(
            dig(port, &client, name).as_deref(),
            Some(addr),
            "{client} {name}"
        );
    }
}

// ------------------------------------------------------------- monitor ----

fn write_pipeline(dir: &Path, port: u16) -> PathBuf {
    let path = dir.join("pipeline.toml");
    std::fs::write(
        &path,
        format!(
            "[capture]\ndns_ports = [{port}]\n\n\
             [window]\nsize_secs = 4\nslide_secs = 1\nallowed_lateness_secs = 1\n\n\
             [alerts]\nhold_secs = 3\n"
        ),
    )
    .unwrap();
    path
}

fn filter(port: u16) -> String {
    format!("udp port {port} or tcp port {port}")
}

/// Start `dnsmonitor live` on lo and wait for its readiness line.
fn start_monitor(port: u16, pipeline: &Path, extra: &[&str]) -> Proc {
    start_monitor_bin(BIN, port, pipeline, extra)
}

fn start_monitor_bin(bin: &str, port: u16, pipeline: &Path, extra: &[&str]) -> Proc {
    let mut cmd = Command::new(bin);
    cmd.args(["live", "--interface", "lo", "--filter", &filter(port)])
        .arg("--pipeline")
        .arg(pipeline)
        .args(extra)
        .stdout(Stdio::null());
    let mut p = Proc::spawn("dnsmonitor live", &mut cmd);
    p.wait_for_stderr(READY, Duration::from_secs(15));
    p
}

fn read_lines(path: &Path) -> Vec<Value> {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        f.read_to_string(&mut text).unwrap();
    }
    text.lines()
        .filter(|l| l.ends_with('}')) // a line still being written is left for later
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Poll `path` until an alert matches `pred`; its arrival time.
fn wait_for_alert(
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
            "no {what} within {limit:?}; alerts so far:\n{}\nmonitor stderr:\n{}",
            std::fs::read_to_string(path).unwrap_or_default(),
            monitor.stderr()
        );
        thread::sleep(Duration::from_millis(100));
    }
}

fn is_flood(a: &Value, state: &str) -> bool {
    a["kind"] == "client_flood" && a["key"]["client"] == "127.0.0.66" && a["state"] == state
}

fn write_queries(dir: &Path) -> PathBuf {
    let q = dir.join("queries.txt");
    let text: String = NAMES.iter().map(|(n, _)| format!("{n} A\n")).collect();
    std::fs::write(&q, text).unwrap();
    q
}

fn dnsperf(port: u16, queries: &Path, qps: u32, secs: u32) -> Proc {
    let mut cmd = Command::new("dnsperf");
    cmd.args([
        "-s",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-a",
        "127.0.0.66",
        "-d",
    ])
    .arg(queries)
    .args(["-Q", &qps.to_string(), "-l", &secs.to_string()])
    .stdout(Stdio::piped());
    Proc::spawn("dnsperf", &mut cmd)
}

/// The kernel drop count from the live summary line
/// `capture: R received by the filter, K dropped by the kernel, I dropped by
/// the interface`; `None` when there is no such line.
fn kernel_drops(summary: &str) -> Option<u64> {
    let line = summary.lines().find(|l| l.starts_with("capture: "))?;
    let part = line
        .split(", ")
        .find(|p| p.ends_with("dropped by the kernel"))?;
    part.split_whitespace().next()?.parse().ok()
}

fn assert_clean_exit(st: ExitStatus, monitor: &Proc) {
    assert_eq!(
        st.code(),
        Some(0),
        "monitor exit status {st}; stderr:\n{}",
        monitor.stderr()
    );
}

fn assert_summary(stderr: &str) {
    assert!(
        stderr.contains("summary") && stderr.contains("dns messages:"),
        "no summary on stderr:\n{stderr}"
    );
    assert!(
        stderr.to_ascii_lowercase().contains("drop"),
        "the summary does not report capture drops:\n{stderr}"
    );
}

// --------------------------------------------------------------- tests ----

/// a) A dnsperf flood from 127.0.0.66 raises a client_flood alert within
/// seconds of its start; once it stops and the wire is silent, the idle
/// watermark (driven by the clock) closes the windows and resolves it.
#[test]
fn flood_is_raised_live_and_resolved_on_a_silent_wire() {
    require_prerequisites!();
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let _dnsmasq = start_dnsmasq(port, dir.path());
    let pipeline = write_pipeline(dir.path(), port);
    let alerts = dir.path().join("alerts.jsonl");
    let mut monitor = start_monitor(port, &pipeline, &["--alerts", alerts.to_str().unwrap()]);
    normal_lookups(port, 8);

    let queries = write_queries(dir.path());
    let flood_start = Clock.now();
    let mut perf = dnsperf(port, &queries, 1500, 4);
    let raised = wait_for_alert(
        &alerts,
        Duration::from_secs(10),
        &monitor,
        "client_flood raised for 127.0.0.66",
        |a| is_flood(a, "raised"),
    );
    let raised_after = flood_start.elapsed();
    assert_eq!(raised["schema"], "dnsmonitor.alert/1");
    assert!(raised["observed"].as_f64().unwrap() >= 100.0, "{raised}");
    let st = perf.wait(Duration::from_secs(20));
    assert!(st.success(), "dnsperf: {st}\n{}", perf.stderr());
    let flood_end = Clock.now();

    // No traffic from here on: only the clock can close the windows.
    let resolved = wait_for_alert(
        &alerts,
        Duration::from_secs(25),
        &monitor,
        "client_flood resolved for 127.0.0.66 on a silent wire",
        |a| is_flood(a, "resolved"),
    );
    let resolved_after = flood_end.elapsed();
    assert_eq!(resolved["id"], raised["id"]);
    assert!(
        resolved["event_time"].as_str() > raised["event_time"].as_str(),
        "{raised}\n{resolved}"
    );
    // Nobody else flooded.
    for a in read_lines(&alerts) {
        assert!(
            a["kind"] != "client_flood" || a["key"]["client"] == "127.0.0.66",
            "{a}"
        );
    }

    let st = monitor.interrupt(Duration::from_secs(20));
    assert_clean_exit(st, &monitor);
    let stderr = monitor.stderr();
    assert_summary(&stderr);
    eprintln!(
        "raised {:.1} s after the flood started, resolved {:.1} s after it ended; drops: {:?}",
        raised_after.as_secs_f64(),
        resolved_after.as_secs_f64(),
        kernel_drops(&stderr)
    );
}

/// b) SIGINT right after the last answer: the event log still has a line
/// for every query and response, and the exit status is 0.
#[test]
fn sigint_flushes_the_event_log() {
    require_prerequisites!();
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let _dnsmasq = start_dnsmasq(port, dir.path());
    let pipeline = write_pipeline(dir.path(), port);
    let events = dir.path().join("events.jsonl");
    let mut monitor = start_monitor(port, &pipeline, &["--events", events.to_str().unwrap()]);
    let sent = 6;
    normal_lookups(port, sent);
    let st = monitor.interrupt(Duration::from_secs(20));
    assert_clean_exit(st, &monitor);
    assert_summary(&monitor.stderr());

    let lines = read_lines(&events);
    let text = std::fs::read_to_string(&events).unwrap();
    assert_eq!(lines.len(), 2 * sent, "event log:\n{text}");
    let queries: Vec<&Value> = lines.iter().filter(|e| e["qr"] == false).collect();
    let responses: Vec<&Value> = lines.iter().filter(|e| e["qr"] == true).collect();
    assert_eq!(queries.len(), sent, "{text}");
    assert_eq!(responses.len(), sent, "{text}");
    for (i, q) in queries.iter().enumerate() {
        let (name, addr) = NAMES[i % NAMES.len()];
        assert_eq!(q["qname"], name, "{q}");
        assert_eq!(q["src"], format!("127.0.0.{}", 2 + i % 4), "{q}");
        assert_eq!(q["dport"], port, "{q}");
        let r = responses
            .iter()
            .find(|r| r["id"] == q["id"] && r["dport"] == q["sport"] && r["dst"] == q["src"])
            .unwrap_or_else(|| panic!("no response for {q}"));
        assert_eq!(r["answers"][0]["data"], addr, "{r}");
    }
    assert!(std::fs::metadata(&events).unwrap().len() as usize == text.len());
    assert!(text.ends_with('\n'), "last line not terminated");
}

/// c) The event log written live equals the one from replaying a tcpdump
/// recording of the same traffic.
#[test]
fn live_event_log_equals_replay_of_a_tcpdump_recording() {
    require_prerequisites!();
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let _dnsmasq = start_dnsmasq(port, dir.path());
    let pipeline = write_pipeline(dir.path(), port);
    let rec = dir.path().join("rec.pcap");
    let live_events = dir.path().join("live.jsonl");
    let replay_events = dir.path().join("replay.jsonl");

    // -Z root: tcpdump would otherwise switch to user tcpdump before
    // creating the file, which cannot write into the private temp dir.
    let mut tcpdump = Proc::spawn(
        "tcpdump",
        Command::new("tcpdump")
            .args([
                "-i",
                "lo",
                "-n",
                "-U",
                "--immediate-mode",
                "-Z",
                "root",
                "-w",
            ])
            .arg(&rec)
            .arg(format!("udp port {port}"))
            .stdout(Stdio::null()),
    );
    tcpdump.wait_for_stderr("listening on", Duration::from_secs(10));
    // Two workers: the capture's reader forwards frames to the worker of
    // their shard; the event log must not change.
    let mut monitor = start_monitor(
        port,
        &pipeline,
        &["--events", live_events.to_str().unwrap(), "--workers", "2"],
    );
    normal_lookups(port, 10);
    // tcpdump writes each packet as it arrives (-U); a moment for the last.
    thread::sleep(Duration::from_millis(300));
    let st = monitor.interrupt(Duration::from_secs(20));
    assert_clean_exit(st, &monitor);
    let st = tcpdump.interrupt(Duration::from_secs(10));
    assert!(st.success(), "tcpdump: {st}\n{}", tcpdump.stderr());

    let out = Command::new(BIN)
        .arg("replay")
        .arg(&rec)
        .arg("--pipeline")
        .arg(&pipeline)
        .arg("--events")
        .arg(&replay_events)
        .args([
            "--alerts",
            dir.path().join("replay-alerts.jsonl").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "replay: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // `frame` is the packet number within the capture: live counts every
    // packet its own capture delivered since it opened, the recording
    // counts from tcpdump's start, which began earlier (and a recorder with
    // a wider filter would see other packets in between). So the numbers
    // may differ while the packets are the same, and `frame` is left out.
    //
    // `ts` is compared with a tolerance: each packet socket stamps a
    // packet itself when the kernel has not stamped it on receive (no
    // socket on the host asked for SO_TIMESTAMP, the usual case), so the
    // two captures read the clock apart: 2 µs measured on an idle machine,
    // but 1.1 ms once in a fresh-clone run with the 2 cores busy (one
    // socket's stamp waited for the scheduler). 20 ms is far below the gap
    // a wrong packet or a clock error would show and above that jitter.
    // The order and everything else must be equal.
    let strip = |v: Vec<Value>| -> Vec<(i64, Value)> {
        v.into_iter()
            .map(|mut e| {
                let o = e.as_object_mut().unwrap();
                o.remove("frame");
                let ts = o.remove("ts").expect("ts");
                (rfc3339_micros(ts.as_str().expect("ts string")), e)
            })
            .collect()
    };
    let live = strip(read_lines(&live_events));
    let replayed = strip(read_lines(&replay_events));
    assert_eq!(live.len(), 20, "10 queries and 10 answers live");
    let same = |(a, b): (&(i64, Value), &(i64, Value))| (a.0 - b.0).abs() <= 20_000 && a.1 == b.1;
    if live.len() != replayed.len() || !live.iter().zip(&replayed).all(same) {
        let first = live
            .iter()
            .zip(&replayed)
            .position(|p| !same(p))
            .unwrap_or(live.len().min(replayed.len()));
        panic!(
            "event logs differ: {} live, {} replayed; first difference at line {}:\n\
             live:   {}\nreplay: {}",
            live.len(),
            replayed.len(),
            first + 1,
            live.get(first)
                .map(|v| format!("{} {}", v.0, v.1))
                .unwrap_or_default(),
            replayed
                .get(first)
                .map(|v| format!("{} {}", v.0, v.1))
                .unwrap_or_default(),
        );
    }
}

/// d) Without privileges (user nobody, no capabilities) the monitor exits 1
/// and says how to grant them.
#[test]
fn unprivileged_run_explains_the_capabilities() {
    require_prerequisites!();
    let _serial = serial();
    // nobody may not be able to traverse the build directory: run a copy
    // from a world-readable temp dir.
    let dir = tempfile::tempdir().unwrap();
    set_mode(dir.path(), 0o755);
    let exe = dir.path().join("dnsmonitor");
    std::fs::copy(BIN, &exe).unwrap();
    set_mode(&exe, 0o755);
    let mut p = Proc::spawn(
        "dnsmonitor as nobody",
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
            ])
            .arg(&exe)
            .args(["live", "--interface", "lo"])
            .current_dir(dir.path())
            .stdout(Stdio::null()),
    );
    let st = p.wait(Duration::from_secs(20));
    let stderr = p.stderr();
    assert_eq!(st.code(), Some(1), "{st}; stderr:\n{stderr}");
    assert!(stderr.contains("CAP_NET_RAW"), "{stderr}");
    assert!(stderr.contains("setcap cap_net_raw"), "{stderr}");
    assert!(
        stderr.contains("`lo`") || stderr.contains(" lo"),
        "{stderr}"
    );
    assert!(!stderr.contains(READY), "{stderr}");
}

/// `2026-11-25T18:24:41.656507Z` as microseconds since the Unix epoch.
fn rfc3339_micros(s: &str) -> i64 {
    let bad = || panic!("not an RFC 3339 UTC time with microseconds: {s}");
    let n = |r: std::ops::Range<usize>| -> i64 {
        s.get(r).and_then(|t| t.parse().ok()).unwrap_or_else(bad)
    };
    if s.len() != 27 || !s.ends_with('Z') {
        bad();
    }
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from civil (H. Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19);
    secs * 1_000_000 + n(20..26)
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Not a test of behaviour: the measurement behind docs/live-capture.md.
/// Floods at increasing rates and prints, per rate, the kernel drops from
/// the summary and the monitor's CPU use. Run by hand:
/// `cargo test --test live_capture measure_rates -- --ignored --nocapture`
/// (rates from DNSMONITOR_MEASURE_QPS, comma-separated; extra monitor
/// arguments from DNSMONITOR_MEASURE_ARGS, e.g. `--snaplen 1500`; another
/// binary, such as a release build, from DNSMONITOR_BIN).
#[test]
#[ignore]
fn measure_rates() {
    require_prerequisites!();
    let _serial = serial();
    let rates: Vec<u32> = std::env::var("DNSMONITOR_MEASURE_QPS")
        .unwrap_or_else(|_| "5000,10000,20000,40000".into())
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let secs = 10;
    let bin = std::env::var("DNSMONITOR_BIN").unwrap_or_else(|_| BIN.to_string());
    for qps in rates {
        let dir = tempfile::tempdir().unwrap();
        let port = common::free_port();
        let _dnsmasq = start_dnsmasq(port, dir.path());
        let pipeline = write_pipeline(dir.path(), port);
        let alerts = dir.path().join("alerts.jsonl");
        let extra = std::env::var("DNSMONITOR_MEASURE_ARGS").unwrap_or_default();
        let mut args = vec!["--alerts", alerts.to_str().unwrap()];
        args.extend(extra.split_whitespace());
        let mut monitor = start_monitor_bin(&bin, port, &pipeline, &args);
        let cpu0 = monitor.cpu_secs().unwrap();
        let t0 = Clock.now();
        let queries = write_queries(dir.path());
        let mut perf = dnsperf(port, &queries, qps, secs);
        perf.wait(Duration::from_secs(u64::from(secs) + 30));
        let mut out = String::new();
        if let Some(mut so) = perf.child.stdout.take() {
            let _ = so.read_to_string(&mut out);
        }
        let cpu1 = monitor.cpu_secs().unwrap();
        let wall = t0.elapsed().as_secs_f64();
        let st = monitor.interrupt(Duration::from_secs(30));
        assert_clean_exit(st, &monitor);
        let stderr = monitor.stderr();
        let sent = out
            .lines()
            .find(|l| l.contains("Queries sent"))
            .unwrap_or("")
            .trim()
            .to_string();
        let achieved = out
            .lines()
            .find(|l| l.contains("Queries per second"))
            .unwrap_or("")
            .trim()
            .to_string();
        eprintln!(
            "qps {qps}: {sent}; {achieved}; kernel drops {:?}; monitor cpu {:.2} s over {wall:.1} s = {:.0} % of a core",
            kernel_drops(&stderr),
            cpu1 - cpu0,
            100.0 * (cpu1 - cpu0) / wall
        );
        eprintln!(
            "{}",
            stderr
                .lines()
                .filter(|l| l.contains("drop") || l.contains("packets"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[test]
fn rfc3339_helper_agrees_with_the_crate() {
    for ts in [0i64, 1_000_002, 1_795_638_281_656_507, 951_782_400_000_001] {
        let mut s = String::new();
        dnsmonitor::time::write_rfc3339(&mut s, ts, true);
        assert_eq!(rfc3339_micros(&s), ts, "{s}");
    }
}

#[test]
fn kernel_drops_are_read_from_the_summary() {
    let s = "--- dnsmonitor live summary ---\n\
             capture: 400000 received by the filter, 67 dropped by the kernel, 0 dropped by the interface\n\
             packets: 1 read";
    assert_eq!(kernel_drops(s), Some(67));
    assert_eq!(kernel_drops("packets: 1 read"), None);
}

/// `dnsmonitor sensor --interface lo`: dig lookups reach the queue as
/// complete pcaps within `--batch-ms` (batches go out half-empty when the
/// wire is quiet); SIGINT sends the end-of-stream batch and exits 0.
#[test]
fn sensor_publishes_live_lookups() {
    use common::amqp::*;
    use dnsmonitor::amqp::batch::{H_EOS, PcapBatch};
    let _serial = serial();
    require_prerequisites!();
    if !broker_up() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let _dnsmasq = start_dnsmasq(port, dir.path());
    let q = unique("live-sensor");
    let _cleanup = Cleanup {
        queues: vec![q.clone()],
        exchanges: vec![],
    };
    let mut cmd = Command::new(BIN);
    cmd.args(["sensor", "--interface", "lo", "--filter", &filter(port)])
        .args([
            "--queue",
            &q,
            "--batch-ms",
            "100",
            "--sensor-id",
            "live-test",
        ])
        .args(["--metrics-listen", "127.0.0.1:0"])
        .env("DNSMONITOR_AMQP_URI", URI)
        .stdout(Stdio::null());
    let mut sensor = Proc::spawn("dnsmonitor sensor", &mut cmd);
    sensor.wait_for_stderr("sensor live-test: capturing on lo", Duration::from_secs(15));
    normal_lookups(port, 10);
    let rt = rt();
    let (_conn, ch) = rt.block_on(channel());
    let mut packets = 0u64;
    let mut batches = vec![];
    let t0 = Clock.now();
    while packets < 20 {
        for m in rt.block_on(drain(&ch, &q)) {
            let b = PcapBatch::parse(&m.delivery.data).unwrap();
            assert_eq!(b.linktype, 1, "Ethernet on lo");
            packets += b.packets;
            batches.push(m);
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{packets} packets in the queue; sensor: {}",
            sensor.stderr()
        );
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(packets, 20, "10 queries and 10 answers");
    // The sensor's own metrics.
    let err = sensor.stderr();
    let addr = err
        .lines()
        .find_map(|l| l.strip_prefix("metrics: serving on http://"))
        .map(|a| a.trim_end_matches("/metrics").to_string())
        .expect("metrics address");
    // Confirms are counted as the sensor reaps them (every read, 50 ms).
    let confirmed = "dnsmonitor_amqp_publishes_total{outcome=\"confirmed\"}";
    let t1 = Clock.now();
    let m = loop {
        let m = scrape(&addr);
        if metric(&m, confirmed) >= 1 {
            break m;
        }
        assert!(
            t1.elapsed() < Duration::from_secs(10),
            "no confirm counted: {m}"
        );
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(metric(&m, "dnsmonitor_packets_total"), 20, "{m}");
    assert!(
        m.contains("dnsmonitor_capture_drops_total{where=\"kernel\"} 0"),
        "{m}"
    );
    assert!(
        sensor.interrupt(Duration::from_secs(15)).success(),
        "{}",
        sensor.stderr()
    );
    let rest = rt.block_on(drain(&ch, &q));
    let last = rest.last().expect("the end-of-stream batch");
    let eos = last
        .delivery
        .properties
        .headers()
        .as_ref()
        .unwrap()
        .inner()
        .get(H_EOS)
        .cloned();
    assert_eq!(eos, Some(lapin::types::AMQPValue::Boolean(true)));
    assert!(
        sensor.stderr().contains("sensor live-test: 20 packets in"),
        "{}",
        sensor.stderr()
    );
    // A live sensor reports what the kernel dropped.
    assert!(
        sensor.stderr().contains(" dropped by the kernel"),
        "{}",
        sensor.stderr()
    );
}
