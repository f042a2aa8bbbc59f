//! `--speed` is real time (issue 17, item 5): a paced replay writes every
//! alert as its window closes in paced time (window end plus allowed
//! lateness plus one slide, divided by the speed), as `live` does, not when
//! the run ends; and it writes the same bytes as an unpaced replay, at any
//! worker count. The binary runs as users run it; lines are timed as they arrive
//! on its stdout pipe.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use dnsmonitor::time::{Clock, MICROS, rfc3339};

const BIN: &str = env!("CARGO_BIN_EXE_dnsmonitor");

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn flood() -> PathBuf {
    repo().join("captures/loopback-flood.pcap")
}

/// Runs `replay` of the demo capture with `args`; each stdout line with
/// the time it was read (since the start), and the time the run exited.
fn timed_replay(args: &[&str]) -> (Vec<(Duration, String)>, Duration) {
    let clock = Clock;
    let t0 = clock.now();
    let mut child = Command::new(BIN)
        .arg("replay")
        .arg(flood())
        .args(["-q", "--alerts", "-"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let lines: Vec<(Duration, String)> = out
        .lines()
        .map(|l| (clock.now().saturating_duration_since(t0), l.unwrap()))
        .collect();
    let status = child.wait().unwrap();
    let ended = clock.now().saturating_duration_since(t0);
    assert!(status.success(), "{args:?}: {status}");
    (lines, ended)
}

/// Seconds since midnight of an RFC 3339 time (`2026-11-25T18:01:15Z` or
/// with a fraction); its date.
fn day_secs(t: &str) -> (&str, f64) {
    let (date, clock) = t.split_once('T').unwrap();
    let clock = clock.trim_end_matches('Z');
    let mut parts = clock.split(':');
    let h: f64 = parts.next().unwrap().parse().unwrap();
    let m: f64 = parts.next().unwrap().parse().unwrap();
    let s: f64 = parts.next().unwrap().parse().unwrap();
    (date, h * 3600.0 + m * 60.0 + s)
}

#[test]
fn paced_replay_writes_each_alert_when_its_window_closes() {
    const SPEED: f64 = 10.0;
    // Start-up of a debug build and a shared machine's scheduling.
    const MARGIN: f64 = 1.5;
    let plan = common::plan(
        &std::fs::read_to_string(repo().join("pipelines/default.toml")).unwrap(),
        repo(),
        &[],
    );
    let close_after = (plan.window.lateness_us + plan.window.slide_us) as f64 / MICROS as f64;
    let first = dnsmonitor::sources::pcap_file::first_time_us(&flood()).unwrap();
    let (first_date, first_secs) = {
        let t = rfc3339(first);
        let (d, s) = day_secs(&t);
        (d.to_string(), s)
    };

    let (paced, ended) = timed_replay(&["--speed", "10x"]);
    assert!(paced.len() >= 3, "{paced:?}");
    for (at, line) in &paced {
        let alert: serde_json::Value = serde_json::from_str(line).unwrap();
        let (date, secs) = day_secs(alert["event_time"].as_str().unwrap());
        assert_eq!(date, first_date, "the capture stays within a day");
        let due = (secs - first_secs + close_after) / SPEED + MARGIN;
        assert!(
            at.as_secs_f64() <= due,
            "written {at:?} after the start, due by {due:.2} s: {line}"
        );
    }
    // The critical escalation (15 s into the capture) came out while the
    // replay still had most of its 7 s to run.
    let (critical_at, _) = paced
        .iter()
        .find(|(_, l)| l.contains("\"severity\":\"critical\""))
        .expect("a critical escalation");
    assert!(
        ended.saturating_sub(*critical_at) >= Duration::from_secs(3),
        "critical alert at {critical_at:?}, run ended at {ended:?}"
    );
    assert!(ended >= Duration::from_secs(6), "paced: {ended:?}");

    // The same bytes unpaced, and paced with two workers.
    let text = |lines: &[(Duration, String)]| -> Vec<String> {
        lines.iter().map(|(_, l)| l.clone()).collect()
    };
    let (max, _) = timed_replay(&[]);
    assert_eq!(text(&paced), text(&max));
    let (two, _) = timed_replay(&["--speed", "20x", "--workers", "2"]);
    assert_eq!(text(&two), text(&max));
}
