//! Shared helpers for integration tests: run a replay in-process with
//! in-memory outputs.
#![allow(dead_code)]

pub mod amqp;
pub mod proc;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use std::net::{IpAddr, SocketAddr};

use dnsmonitor::config::Plan;
use dnsmonitor::dataflow::{self, Outputs, RunOptions, RunSummary, Speed};
use dnsmonitor::detect::Detector;
use dnsmonitor::synth::{FrameBuilder, PcapWriter};

#[derive(Clone, Default)]
pub struct SharedBuf(pub Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl SharedBuf {
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

pub struct Run {
    pub alerts: String,
    pub events: String,
    /// Top-k report lines; empty unless asked for ([`replay_with_reports`]).
    pub reports: String,
    pub summary: RunSummary,
}

pub fn replay(files: &[PathBuf], plan: Plan, workers: usize, events: bool) -> Run {
    replay_outputs(files, plan, workers, events, false)
}

/// [`replay`] writing the report lines too (no event log).
pub fn replay_with_reports(files: &[PathBuf], plan: Plan, workers: usize) -> Run {
    replay_outputs(files, plan, workers, false, true)
}

fn replay_outputs(
    files: &[PathBuf],
    plan: Plan,
    workers: usize,
    events: bool,
    reports: bool,
) -> Run {
    let a = SharedBuf::default();
    let e = SharedBuf::default();
    let r = SharedBuf::default();
    let outputs = Outputs::json_lines(
        Box::new(a.clone()),
        events.then(|| Box::new(e.clone()) as Box<dyn Write + Send>),
        reports.then(|| Box::new(r.clone()) as Box<dyn Write + Send>),
    );
    let opts = RunOptions {
        workers,
        speed: Speed::Max,
        ..RunOptions::default()
    };
    let summary = dataflow::replay(Arc::new(plan), files.to_vec(), opts, outputs).expect("replay");
    Run {
        alerts: a.text(),
        events: e.text(),
        reports: r.text(),
        summary,
    }
}

/// The default pipeline (its windows, lifecycle and packet layer) with
/// exactly `detectors` and no blocklist.
pub fn plan_with(detectors: Vec<Arc<dyn Detector>>) -> Plan {
    let mut plan = Plan::default_plan(&[]).expect("default plan");
    plan.detectors = detectors;
    plan.blocklist = None;
    plan
}

/// Replay `files` through the real dataflow, one worker, with the default
/// pipeline and exactly `detectors` ([`plan_with`]); the alerts as JSON.
pub fn detector_alerts(
    files: &[PathBuf],
    detectors: Vec<Arc<dyn Detector>>,
) -> Vec<serde_json::Value> {
    alerts_json(&replay(files, plan_with(detectors), 1, false).alerts)
}

/// A plan from pipeline text (paths relative to `base`).
pub fn plan(text: &str, base: &Path, lists: &[PathBuf]) -> Plan {
    Plan::from_str(text, "test.toml", base, lists).unwrap_or_else(|e| panic!("{e}"))
}

pub fn alerts_json(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("alert line is JSON"))
        .collect()
}

/// A file of the shared test data (`../shared/data`, see [`shared_data`]).
pub fn shared(rel: &str) -> PathBuf {
    shared_data().join(rel)
}

/// Every capture (`.pcap`, `.pcapng`, `.cap`) under
/// `../shared/data/captures`, sorted.
pub fn all_captures() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![shared("captures")];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .extension()
                .is_some_and(|x| x == "pcap" || x == "pcapng" || x == "cap")
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The shared test data: real captures and public blocklists with their
/// summaries, kept out of the repository in `../shared/data` beside the
/// clone (README, "Test data"). A test that needs it fails naming the folder
/// when it is missing, instead of a bare "No such file".
pub fn shared_data() -> PathBuf {
    shared_data_at(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"))
}

/// [`shared_data`] looked for at `dir`.
pub fn shared_data_at(dir: &Path) -> PathBuf {
    assert!(
        dir.is_dir(),
        "test data missing: no folder {}: the tests and benches read real captures and blocklists \
         from ../shared/data beside the repository (see README.md, \"Test data\")",
        dir.display()
    );
    dir.to_path_buf()
}

/// Write a capture of queries to one server 198.51.100.53: `normal_secs`
/// seconds of 250 queries/s from 200 clients (10.1.0.0/24), then
/// `attack_secs` seconds adding `attack_qps` queries/s, each from a new
/// address (spoofed, from 100.64.0.0/10). Returns the file, in a temporary
/// folder removed when the `TempDir` is dropped.
pub fn server_scenario(
    normal_secs: i64,
    attack_secs: i64,
    attack_qps: i64,
) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scenario.pcap");
    let mut w = PcapWriter::create(&path).unwrap();
    let mut fb = FrameBuilder::new();
    let server: SocketAddr = "198.51.100.53:53".parse().unwrap();
    let t0 = 1_700_000_000_000_000i64;
    let mut id = 0u16;
    let mut spoofed = 0u32;
    for s in 0..normal_secs + attack_secs {
        let sec = t0 + s * 1_000_000;
        for i in 0..250i64 {
            let c = ((i * 7 + s) % 200) as u8;
            let src = SocketAddr::new(IpAddr::from([10, 1, 0, c]), 40_000 + u16::from(c));
            id = id.wrapping_add(1);
            let qname = format!("host{}.example.com", i % 50);
            w.write_frame(sec + i * 4_000, fb.query(src, server, id, &qname, 1, false))
                .unwrap();
        }
        if s < normal_secs {
            continue;
        }
        for j in 0..attack_qps {
            spoofed += 1;
            let a = 0x6440_0000u32 + spoofed.wrapping_mul(7919) % (1 << 22);
            let src = SocketAddr::new(
                IpAddr::from(a.to_be_bytes()),
                1024 + (spoofed % 60_000) as u16,
            );
            id = id.wrapping_add(1);
            let ts = sec + j * 1_000_000 / attack_qps + 1;
            w.write_frame(ts, fb.query(src, server, id, "www.example.com", 1, false))
                .unwrap();
        }
    }
    w.into_inner().unwrap();
    (dir, path)
}

/// The environment variable with which a developer lets tests that need a
/// service (RabbitMQ) or a privilege (root for live capture) skip when it
/// is missing. `scripts/test.sh` (and so CI) sets
/// [`REQUIRE_SERVICES`] unless it is given.
pub const SKIP_SERVICES: &str = "DNSMONITOR_SKIP_SERVICES";
/// Set by `scripts/test.sh`: a missing service or privilege fails the test.
pub const REQUIRE_SERVICES: &str = "DNSMONITOR_REQUIRE_SERVICES";

/// Where skipped tests are noted, one `test<TAB>reason` line each, for
/// `scripts/test.sh` to count.
pub fn skipped_log() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("skipped-tests.log")
}

/// A test cannot run here (`reason`: no broker, not root). Fails it
/// unless the developer opted out with [`SKIP_SERVICES`]`=1` (and always
/// when [`REQUIRE_SERVICES`] is set, as `scripts/test.sh` does); with the
/// opt-out it prints `SKIPPED: reason` and notes it in [`skipped_log`].
/// The caller returns after this.
pub fn cannot_run(reason: &str) {
    let is_one = |var: &str| std::env::var_os(var).is_some_and(|v| v == "1");
    let required = is_one(REQUIRE_SERVICES) || !is_one(SKIP_SERVICES);
    cannot_run_with(reason, required, &skipped_log());
}

/// [`cannot_run`] with the policy and the log given.
pub fn cannot_run_with(reason: &str, required: bool, log: &Path) {
    assert!(
        !required,
        "{reason}: the test command runs every broker and live-capture test \
         ({SKIP_SERVICES}=1 lets them skip)"
    );
    let test = std::thread::current()
        .name()
        .unwrap_or("unknown test")
        .to_string();
    println!("SKIPPED: {reason}");
    eprintln!("SKIPPED: {reason}");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = writeln!(f, "{test}\t{reason}");
    }
}

/// `s` without terminal control sequences (`ESC [ ... final byte`: colours,
/// line erase).
pub fn strip_colour(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\u{1b}' && it.peek() == Some(&'[') {
            it.next();
            for d in it.by_ref() {
                if ('@'..='~').contains(&d) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A port free for both UDP and TCP on 127.0.0.1 (bound with port 0, then
/// released; a small race with other programs is accepted).
pub fn free_port() -> u16 {
    for _ in 0..50 {
        let t = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = t.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}
