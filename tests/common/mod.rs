//! Shared helpers for integration tests: run a replay in-process with
//! in-memory outputs.
#![allow(dead_code)]

pub mod amqp;
pub mod proc;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use dnsmonitor::config::Plan;
use dnsmonitor::dataflow::{self, Outputs, RunOptions, RunSummary, Speed};

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
    pub summary: RunSummary,
}

pub fn replay(files: &[PathBuf], plan: Plan, workers: usize, events: bool) -> Run {
    let a = SharedBuf::default();
    let e = SharedBuf::default();
    let outputs = Outputs::json_lines(
        Box::new(a.clone()),
        events.then(|| Box::new(e.clone()) as Box<dyn Write + Send>),
        None,
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
        summary,
    }
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
