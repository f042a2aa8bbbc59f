//! Shared helpers for integration tests: run a replay in-process with
//! in-memory outputs.
#![allow(dead_code)]

pub mod amqp;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use dnsmonitor::config::Plan;
use dnsmonitor::dataflow::{self, Outputs, RunOptions, RunSummary, Speed};
use dnsmonitor::sinks::JsonLinesAlerts;

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
    let outputs = Outputs {
        alerts: Box::new(JsonLinesAlerts::new(Box::new(a.clone()))),
        events: events.then(|| Box::new(e.clone()) as Box<dyn Write + Send>),
        reports: None,
    };
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

pub fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(rel)
}
