//! `newly_observed` as users run it: `dnsmonitor replay` with a filter file,
//! stopped and started again. The first run reports the newly observed
//! domains; a restart with the saved filter reports none of them and leaves
//! the file byte for byte as it was; a capture cut in two and replayed as two
//! runs (the second loading what the first saved, learning carried over)
//! reports exactly what one run over the whole capture reports; a corrupt
//! filter file stops the start with the file and the problem named.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use dnsmonitor::synth::newly;

fn replay(dir: &Path, pcaps: &[&Path], tag: &str) -> (Output, String, String) {
    let (alerts, reports) = (
        dir.join(format!("{tag}.alerts")),
        dir.join(format!("{tag}.reports")),
    );
    let o = Command::new(env!("CARGO_BIN_EXE_dnsmonitor"))
        .arg("replay")
        .arg("--pipeline")
        .arg(dir.join("p.toml"))
        .arg("--alerts")
        .arg(&alerts)
        .arg("--reports")
        .arg(&reports)
        .arg("--quiet")
        .args(pcaps)
        .output()
        .expect("run dnsmonitor");
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    (o, read(&alerts), read(&reports))
}

/// The (client, domain) pairs of the `newly_observed` report lines.
fn pairs(reports: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for l in reports.lines() {
        let v: serde_json::Value = serde_json::from_str(l).expect("report line is JSON");
        if v["report"] == "newly_observed" {
            for it in v["items"].as_array().unwrap() {
                out.insert(format!(
                    "{} {}",
                    it["client"].as_str().unwrap(),
                    it["domain"].as_str().unwrap()
                ));
            }
        }
    }
    out
}

fn raised(alerts: &str) -> Vec<(String, String, String)> {
    alerts
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|a| a["state"] == "raised")
        .map(|a| {
            let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
            (
                s("kind"),
                s("severity"),
                a["key"]["client"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn pipeline(dir: &Path) {
    std::fs::write(
        dir.join("p.toml"),
        "[detectors.newly_observed]\nenabled = true\nlearning_secs = 60\nfilter_file = \"nod.bloom\"\n",
    )
    .unwrap();
}

#[test]
fn restart_with_the_saved_filter_reports_nothing_again() {
    let dir = tempfile::tempdir().unwrap();
    pipeline(dir.path());
    let pcap = dir.path().join("all.pcap");
    newly::write_capture(&pcap, 0, newly::DURATION_S).unwrap();
    let filter = dir.path().join("nod.bloom");

    let (o, alerts, reports) = replay(dir.path(), &[&pcap], "first");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let first = pairs(&reports);
    assert_eq!(
        first.len(),
        (newly::BENIGN as u32 + newly::INFECTED_DOMAINS) as usize,
        "{first:?}"
    );
    assert!(first.contains("10.20.0.3 benign3-new.net"), "{first:?}");
    let infected = newly::INFECTED.to_string();
    assert_eq!(
        raised(&alerts),
        [(
            "newly_observed".to_string(),
            "info".to_string(),
            infected.clone()
        )],
        "{alerts}"
    );
    let saved = std::fs::read(&filter).expect("filter file written at the end of the run");
    assert!(!dnsmonitor::sketch::bloom::tmp_path(&filter).exists());

    // Restart on the same traffic: every domain is known now.
    let (o, alerts, reports) = replay(dir.path(), &[&pcap], "second");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(pairs(&reports).is_empty(), "{reports}");
    assert!(raised(&alerts).is_empty(), "{alerts}");
    assert_eq!(
        std::fs::read(&filter).unwrap(),
        saved,
        "the filter is the same after a restart"
    );

    // A corrupt filter: the run does not start, the error names the file,
    // the key and what is wrong.
    let mut bad = saved.clone();
    *bad.last_mut().unwrap() ^= 1;
    std::fs::write(&filter, &bad).unwrap();
    let (o, _, _) = replay(dir.path(), &[&pcap], "corrupt");
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("detectors.newly_observed.filter_file")
            && err.contains(&filter.display().to_string())
            && err.contains("checksum"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&filter).unwrap(),
        bad,
        "a refused file is left alone"
    );
}

#[test]
fn a_capture_cut_in_two_runs_reports_what_one_run_does() {
    let (whole, cut) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    pipeline(whole.path());
    pipeline(cut.path());
    let all = whole.path().join("all.pcap");
    newly::write_capture(&all, 0, newly::DURATION_S).unwrap();
    let (a, b) = (cut.path().join("a.pcap"), cut.path().join("b.pcap"));
    // Cut inside the learning period (60 s): the second run learns the
    // rest of it.
    newly::write_capture(&a, 0, 40).unwrap();
    newly::write_capture(&b, 40, newly::DURATION_S).unwrap();

    let (o, alerts_one, reports_one) = replay(whole.path(), &[&all], "one");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (o, _, reports_a) = replay(cut.path(), &[&a], "a");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(pairs(&reports_a).is_empty(), "still learning: {reports_a}");
    let (o, alerts_b, reports_b) = replay(cut.path(), &[&b], "b");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    assert_eq!(pairs(&reports_b), pairs(&reports_one));
    assert_eq!(raised(&alerts_b), raised(&alerts_one));
    assert_eq!(
        std::fs::read(cut.path().join("nod.bloom")).unwrap(),
        std::fs::read(whole.path().join("nod.bloom")).unwrap(),
        "the same filter, learning included"
    );
}
