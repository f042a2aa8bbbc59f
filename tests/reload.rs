//! A new pipeline version taking effect while a run goes on (issue 15,
//! "Signals"; `dataflow::reload`): at an event-time boundary, the same
//! output at any worker count; SIGHUP re-reads the pipeline file, a broken
//! one is refused and the run goes on with the version in force.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use common::SharedBuf;
use dnsmonitor::dataflow::reload::Reload;
use dnsmonitor::dataflow::{self, Input, Outputs, RunOptions};
use dnsmonitor::sources::PcapFiles;
use dnsmonitor::time::{MICROS, rfc3339};

const BIN: &str = env!("CARGO_BIN_EXE_dnsmonitor");

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn flood() -> PathBuf {
    repo().join("captures/loopback-flood.pcap")
}

/// A pipeline whose client_flood thresholds are `warning`/`critical` q/s.
fn pipeline(warning: f64, critical: f64) -> String {
    format!("[detectors.client_flood]\nwarning_qps = {warning:.1}\ncritical_qps = {critical:.1}\n")
}

/// Seconds since the epoch of 2026-11-25T18:01:SS (the demo capture's
/// flood from 127.0.0.66 runs 18:01:02 .. 18:01:24.4).
fn at(secs: i64) -> i64 {
    let base = 1_795_629_600; // 2026-11-25T18:00:00Z
    assert_eq!(rfc3339(base * MICROS), "2026-11-25T18:00:00Z");
    (base + 60 + secs) * MICROS
}

/// The capture read as a single input (one reader spreading frames over
/// the workers), with version 2 (`new`) scheduled from pane `at_pane`.
fn run_with_switch(
    workers: usize,
    old: &str,
    new: &str,
    at_pane: u64,
) -> (String, Vec<(u64, String, i64)>) {
    let old = Arc::new(common::plan(old, repo(), &[]));
    let new = common::plan(new, repo(), &[]);
    let reload = Arc::new(Reload::new(old.clone()));
    reload.schedule(Arc::new(new), at_pane).expect("compatible");
    let a = SharedBuf::default();
    let outputs = Outputs::json_lines(Box::new(a.clone()), None, None);
    let opts = RunOptions {
        workers,
        reload: Some(reload),
        ..RunOptions::default()
    };
    let input = Input::Single(Box::new(PcapFiles::open_single(&[flood()]).unwrap()));
    let s = dataflow::run(old, input, opts, outputs).expect("run");
    (a.text(), s.versions)
}

#[test]
fn a_lowered_threshold_takes_effect_at_its_pane_at_any_worker_count() {
    // The flood ended at 18:01:24.4; the window ending at the switch pane
    // (18:01:30, window 18:01:21 .. 18:01:31) still holds 2238 of its
    // queries (224 q/s). Under the old thresholds its panes were never
    // worth a slot: the switch must ask them again, or the alert is missed.
    let slide = MICROS as u64;
    let pane = at(30) as u64 / slide;
    let old = pipeline(100000.0, 200000.0);
    let new = pipeline(100.0, 300.0);
    let (one, versions) = run_with_switch(1, &old, &new, pane);
    assert_eq!(versions.len(), 1, "{versions:?}");
    assert_eq!(versions[0].0, 2);
    assert_eq!(
        versions[0].2,
        at(30),
        "version 2 from the switch pane's start"
    );
    let alerts = common::alerts_json(&one);
    assert!(!alerts.is_empty(), "no alert after the switch");
    let first = &alerts[0];
    assert_eq!(first["state"], "raised", "{first}");
    assert_eq!(first["key"]["client"], "127.0.0.66", "{first}");
    assert_eq!(first["event_time"], "2026-11-25T18:01:31Z", "{first}");
    for a in &alerts {
        assert!(
            a["event_time"].as_str().unwrap() >= "2026-11-25T18:01:31Z",
            "an alert before the switch: {a}"
        );
    }
    for workers in [2, 4] {
        let (out, _) = run_with_switch(workers, &old, &new, pane);
        assert_eq!(out, one, "{workers} workers differ from 1");
    }
    // The old version alone raises nothing; the new one alone raises the
    // flood at 18:01:12: the output above is the switch's.
    let (none, _) = run_with_switch(1, &old, &old, pane);
    assert_eq!(none, "");
}

#[test]
fn a_raised_threshold_stops_alerts_from_its_pane_on() {
    // Default thresholds raise the flood at 18:01:12 and update it up to
    // 18:01:33; from 18:01:15 on nothing can fire: the episode resolves
    // (no finding) and no update after the switch carries a finding.
    let slide = MICROS as u64;
    let pane = at(15) as u64 / slide;
    let old = pipeline(100.0, 300.0);
    let new = pipeline(100000.0, 200000.0);
    let (one, _) = run_with_switch(1, &old, &new, pane);
    let alerts = common::alerts_json(&one);
    let after: Vec<_> = alerts
        .iter()
        .filter(|a| a["event_time"].as_str().unwrap() > "2026-11-25T18:01:15Z")
        .collect();
    assert!(alerts.iter().any(|a| a["state"] == "raised"), "{one}");
    assert!(
        after.iter().all(|a| a["state"] == "resolved"),
        "only the resolution after the switch: {after:?}"
    );
    assert_eq!(after.len(), 1, "{one}");
    let (two, _) = run_with_switch(2, &old, &new, pane);
    assert_eq!(two, one);
}

#[test]
fn a_window_change_or_other_detectors_are_refused_live() {
    let old = common::plan(&pipeline(100.0, 300.0), repo(), &[]);
    let r = Reload::new(Arc::new(old));
    let window = common::plan("[window]\nsize_secs = 20\nslide_secs = 2\n", repo(), &[]);
    let why = r.offer(Arc::new(window)).unwrap_err();
    assert!(why.contains("[window]") && why.contains("restart"), "{why}");
    let fewer = common::plan("[detectors.client_flood]\nenabled = false\n", repo(), &[]);
    let why = r.offer(Arc::new(fewer)).unwrap_err();
    assert!(why.contains("detectors"), "{why}");
    assert_eq!(r.latest().number, 1, "the version in force stays");
}

#[test]
fn sighup_reloads_the_pipeline_file_and_refuses_a_broken_one() {
    use common::amqp::{metric, scrape};
    use std::time::Duration;
    const LIMIT: Duration = Duration::from_secs(60);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pipeline.toml");
    std::fs::write(&file, pipeline(100000.0, 200000.0)).unwrap();
    let alerts = dir.path().join("alerts.json");
    // A FIFO: one reader spreads the frames over 2 workers, paced (about
    // 9 s for the 70 s capture).
    let fifo = dir.path().join("capture.pcap");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) on a path in our own temporary directory.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    let feed = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut w = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            w.write_all(&std::fs::read(flood()).unwrap()).unwrap();
        })
    };
    let mut p = common::proc::Proc::spawn(
        "replay",
        Command::new(BIN)
            .arg("replay")
            .arg(&fifo)
            .args(["--speed", "8x", "--workers", "2", "--pipeline"])
            .arg(&file)
            .arg("--alerts")
            .arg(&alerts)
            .args(["--metrics-listen", "127.0.0.1:0"])
            .stdout(Stdio::null()),
    );
    // The handler is in place.
    p.wait_for_stderr("reload: SIGHUP re-reads", LIMIT);
    let addr = p
        .stderr()
        .lines()
        .find_map(|l| {
            l.strip_prefix("metrics: serving on http://")
                .map(|a| a.trim_end_matches("/metrics").to_string())
        })
        .expect("metrics address");
    // A broken version: refused with the check-style error; the run goes on.
    std::fs::write(&file, "[detectors.client_flood]\nwarning_qps = \"lots\"\n").unwrap();
    p.signal(libc::SIGHUP);
    p.wait_for_stderr("reload: refused", LIMIT);
    let err = p.stderr();
    assert!(err.contains("version 1 stays in force"), "{err}");
    assert!(
        err.contains("warning_qps"),
        "the error names the key: {err}"
    );
    // A good one with a lowered threshold.
    std::fs::write(&file, pipeline(100.0, 300.0)).unwrap();
    p.signal(libc::SIGHUP);
    p.wait_for_stderr("reload: pipeline version 2", LIMIT);
    let err = p.stderr();
    assert!(
        err.contains("takes effect at the next event-time boundary"),
        "{err}"
    );
    let applied = err
        .lines()
        .find(|l| l.starts_with("reload: pipeline version 2"))
        .unwrap();
    let from = applied
        .split("in force from event time ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap_or_else(|| panic!("{applied}"))
        .to_string();
    let text = scrape(&addr);
    assert_eq!(
        metric(
            &text,
            "dnsmonitor_pipeline_reloads_total{result=\"refused\"}"
        ),
        1,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "dnsmonitor_pipeline_reloads_total{result=\"applied\"}"
        ),
        1,
        "{text}"
    );
    let status = p.wait(LIMIT);
    feed.join().unwrap();
    let err = p.stderr();
    assert!(status.success(), "{status}: {err}");
    let summary = format!(
        "pipeline: version 2 ({}) in force from event time {from}",
        file.display()
    );
    assert!(
        err.contains(&summary),
        "the summary says which version from when: {err}"
    );
    // Alerts only from windows ending after the switch; the flood (to
    // 18:01:24.4) is raised when the switch came early enough.
    let out = std::fs::read_to_string(&alerts).unwrap();
    for a in common::alerts_json(&out) {
        let end = a["window"]["end"].as_str().unwrap();
        assert!(
            end > from.as_str(),
            "alert of a window ending at {end}, before the switch at {from}: {a}"
        );
    }
    if from.as_str() < "2026-11-25T18:01:30Z" {
        assert!(
            out.contains("\"raised\""),
            "no alert after the switch at {from}: {err}"
        );
    }
}

/// A run of the capture as a single input with blocklist `lists` added
/// to version 2 (in force from `at_pane`), or from the start.
fn run_lists(workers: usize, lists: &[PathBuf], at_pane: Option<u64>) -> String {
    let old = Arc::new(common::plan("", repo(), &[]));
    let new = Arc::new(common::plan("", repo(), lists));
    let (first, reload) = match at_pane {
        Some(p) => {
            let r = Arc::new(Reload::new(old.clone()));
            r.schedule(new, p).expect("compatible");
            (old, Some(r))
        }
        None => (new, None),
    };
    let a = SharedBuf::default();
    let outputs = Outputs::json_lines(Box::new(a.clone()), None, None);
    let opts = RunOptions {
        workers,
        reload,
        ..RunOptions::default()
    };
    let input = Input::Single(Box::new(PcapFiles::open_single(&[flood()]).unwrap()));
    dataflow::run(first, input, opts, outputs).expect("run");
    a.text()
}

#[test]
fn a_reloaded_blocklist_is_matched_from_its_pane_on() {
    // Blocklists are matched on the map side (where messages are decoded):
    // only queries in panes from the switch on are hits, so a window
    // straddling the switch counts fewer hits than with the list from the
    // start, and no alert comes from before it.
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.txt");
    std::fs::write(&list, "corp.test\n").unwrap();
    let slide = MICROS as u64;
    let pane = at(0) as u64 / slide;
    let switched = run_lists(1, std::slice::from_ref(&list), Some(pane));
    let full = run_lists(1, std::slice::from_ref(&list), None);
    let hits = |text: &str| -> std::collections::BTreeMap<(String, String), f64> {
        common::alerts_json(text)
            .into_iter()
            .filter(|a| a["kind"] == "blocklist_hit")
            .map(|a| {
                let k = (
                    a["key"].to_string(),
                    a["event_time"].as_str().unwrap().to_string(),
                );
                (k, a["observed"].as_f64().unwrap())
            })
            .collect()
    };
    let (s, f) = (hits(&switched), hits(&full));
    assert!(!s.is_empty(), "no blocklist hit after the switch");
    let end = rfc3339(at(1));
    assert!(
        f.keys().any(|(_, t)| *t < end),
        "the list from the start hits before the switch pane"
    );
    assert!(
        s.keys().all(|(_, t)| *t >= end),
        "a hit before the switch: {switched}"
    );
    // Windows ending before 18:01:10 straddle the switch (18:01:00).
    let straddling = rfc3339(at(10));
    let mut fewer = 0;
    for (k, n) in s.iter().filter(|((_, t), _)| *t < straddling) {
        if let Some(m) = f.get(k) {
            assert!(
                n <= m,
                "{k:?}: {n} hits with the switch, {m} from the start"
            );
            fewer += usize::from(n < m);
        }
    }
    assert!(
        fewer > 0,
        "no straddling window counted fewer hits:\n{switched}\n{full}"
    );
    for workers in [2, 4] {
        assert_eq!(
            run_lists(workers, std::slice::from_ref(&list), Some(pane)),
            switched
        );
    }
}

#[test]
fn a_multi_worker_file_replay_refuses_a_reload_and_goes_on() {
    use std::time::Duration;
    const LIMIT: Duration = Duration::from_secs(60);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pipeline.toml");
    std::fs::write(&file, pipeline(100.0, 300.0)).unwrap();
    let alerts = dir.path().join("alerts.json");
    let mut p = common::proc::Proc::spawn(
        "replay",
        Command::new(BIN)
            .arg("replay")
            .arg(flood())
            .args(["--speed", "10x", "--workers", "2", "--pipeline"])
            .arg(&file)
            .arg("--alerts")
            .arg(&alerts)
            .stdout(Stdio::null()),
    );
    p.wait_for_stderr("reload: SIGHUP re-reads", LIMIT);
    std::fs::write(&file, pipeline(1.0, 2.0)).unwrap();
    p.signal(libc::SIGHUP);
    p.wait_for_stderr("reload: refused", LIMIT);
    let status = p.wait(LIMIT);
    let err = p.stderr();
    assert!(status.success(), "{status}: {err}");
    assert!(
        err.contains("version 1 stays in force") && err.contains("--workers 2"),
        "{err}"
    );
    assert!(!err.contains("pipeline: version 2"), "{err}");
    // The run went on with version 1: the flood, as without a reload.
    let out = std::fs::read_to_string(&alerts).unwrap();
    let want = common::replay(
        &[flood()],
        common::plan(&pipeline(100.0, 300.0), repo(), &[]),
        1,
        false,
    );
    assert_eq!(out, want.alerts);
}
