//! Golden output: the alerts, reports and events `dnsmonitor replay` writes
//! for every capture in `captures/`, checked against expected files
//! committed in `tests/golden/`. A change in any output line is a failing
//! test and then a reviewed diff: re-record with
//!
//! ```text
//! BLESS=1 cargo test --test golden
//! ```
//!
//! and commit the changed files with the change that caused them.
//!
//! Alerts and reports are kept whole. Event logs are kept whole when small
//! (`EVENTS_WHOLE_MAX`); a larger one (megabytes: one line per DNS message)
//! is kept as a digest — line count, FNV-1a 64 of the whole output — plus
//! its first `EVENTS_HEAD` lines, so a change still fails and the start of
//! the diff is readable. On a mismatch the actual output is left in
//! `target/golden-actual/` to diff by hand.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The captures under `captures/`, by the name their golden files carry.
const CAPTURES: &[(&str, &str)] = &[
    ("loopback-dig", "captures/loopback-dig.pcap"),
    ("loopback-flood", "captures/loopback-flood.pcap"),
    ("benign-seed1", "captures/synth/benign-seed1.pcap"),
    ("mixed-seed1", "captures/synth/mixed-seed1.pcap"),
];

/// Event logs up to this size are committed whole.
const EVENTS_WHOLE_MAX: usize = 256 * 1024;
/// Lines of a larger event log kept beside its digest.
const EVENTS_HEAD: usize = 40;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn bless() -> bool {
    std::env::var_os("BLESS").is_some_and(|v| !v.is_empty() && v != "0")
}

struct Outputs {
    alerts: String,
    reports: String,
    events: String,
}

fn replay(capture: &str, dir: &Path) -> Outputs {
    let (a, r, e) = (
        dir.join("alerts.jsonl"),
        dir.join("reports.jsonl"),
        dir.join("events.jsonl"),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_dnsmonitor"))
        .current_dir(root())
        .arg("replay")
        .arg(capture)
        .arg("--alerts")
        .arg(&a)
        .arg("--reports")
        .arg(&r)
        .arg("--events")
        .arg(&e)
        .output()
        .expect("run dnsmonitor");
    assert!(
        out.status.success(),
        "replay {capture}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
    Outputs {
        alerts: read(&a),
        reports: read(&r),
        events: read(&e),
    }
}

/// What is committed for an event log: the log itself when small, else
/// its digest and first lines.
fn events_golden(events: &str) -> String {
    if events.len() <= EVENTS_WHOLE_MAX {
        return events.to_string();
    }
    let mut s = format!(
        "# digest of a {} byte event log (tests/golden.rs)\nlines {}\nfnv1a64 {:016x}\n# first {EVENTS_HEAD} lines\n",
        events.len(),
        events.lines().count(),
        dnsmonitor::sketch::fnv1a(events.as_bytes()),
    );
    for l in events.lines().take(EVENTS_HEAD) {
        s.push_str(l);
        s.push('\n');
    }
    s
}

/// Compare (or, with BLESS, record) one golden file; a mismatch is
/// returned as a message naming the first differing line.
fn check(name: &str, want_file: &Path, got: &str, actual_dir: &Path) -> Option<String> {
    if bless() {
        std::fs::create_dir_all(want_file.parent().unwrap()).unwrap();
        std::fs::write(want_file, got).unwrap();
        return None;
    }
    let want = match std::fs::read_to_string(want_file) {
        Ok(w) => w,
        Err(e) => {
            return Some(format!(
                "{name}: cannot read {want_file:?} ({e}): record it with BLESS=1"
            ));
        }
    };
    if want == got {
        return None;
    }
    std::fs::create_dir_all(actual_dir).unwrap();
    let actual = actual_dir.join(want_file.file_name().unwrap());
    std::fs::write(&actual, got).unwrap();
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    let i = w
        .iter()
        .zip(&g)
        .position(|(a, b)| a != b)
        .unwrap_or(w.len().min(g.len()));
    let (wl, gl) = (
        w.get(i).copied().unwrap_or(""),
        g.get(i).copied().unwrap_or(""),
    );
    // Show the lines around the first differing character.
    let col = wl
        .char_indices()
        .zip(gl.chars())
        .find(|((_, a), b)| a != b)
        .map_or(wl.len().min(gl.len()), |((at, _), _)| at);
    let around = |l: &str| {
        let from = l.floor_char_boundary(col.saturating_sub(60));
        let to = l.ceil_char_boundary((col + 60).min(l.len()));
        format!("…{}…", l[from..to].escape_debug())
    };
    Some(format!(
        "{name}: differs from {want_file:?} at line {}, byte {col} ({} lines expected, {} written; actual output in {actual:?})\n  expected: {}\n  written:  {}",
        i + 1,
        w.len(),
        g.len(),
        around(wl),
        around(gl),
    ))
}

#[test]
fn every_capture_writes_its_golden_alerts_reports_and_events() {
    let tmp = std::env::temp_dir().join(format!("dnsmonitor-golden-{}", std::process::id()));
    let golden = root().join("tests/golden");
    let actual_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("golden-actual");
    let mut failures = Vec::new();
    for (name, capture) in CAPTURES {
        let dir = tmp.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let out = replay(capture, &dir);
        for (suffix, got) in [
            ("alerts.jsonl", out.alerts.clone()),
            ("reports.jsonl", out.reports.clone()),
            ("events", events_golden(&out.events)),
        ] {
            let file = golden.join(format!("{name}.{suffix}"));
            failures.extend(check(&format!("{name} {suffix}"), &file, &got, &actual_dir));
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(
        failures.is_empty(),
        "{}\n\nIf the change is intended, re-record with BLESS=1 cargo test --test golden and commit tests/golden/.",
        failures.join("\n")
    );
}

/// The golden files are not vacuous: the flood capture's alerts are there,
/// and every capture has reports and events (an empty expected file would
/// let a run that writes nothing pass).
#[test]
fn the_golden_files_hold_real_output() {
    if bless() {
        return;
    }
    let golden = root().join("tests/golden");
    let flood = std::fs::read_to_string(golden.join("loopback-flood.alerts.jsonl")).unwrap();
    assert!(flood.lines().count() >= 3, "{flood}");
    assert!(flood.contains("\"kind\":\"client_flood\""), "{flood}");
    for (name, _) in CAPTURES {
        for suffix in ["reports.jsonl", "events"] {
            let t = std::fs::read_to_string(golden.join(format!("{name}.{suffix}"))).unwrap();
            assert!(t.lines().count() >= 5, "{name}.{suffix} is nearly empty");
        }
    }
}
