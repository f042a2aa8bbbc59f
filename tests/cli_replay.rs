//! The `dnsmonitor` binary as users run it: `check` errors, replay of the
//! project's loopback captures, every shared real capture, and broken files.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{alerts_json, shared};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dnsmonitor"))
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> Output {
    bin()
        .current_dir(root())
        .args(args)
        .output()
        .expect("run dnsmonitor")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn check_accepts_the_shipped_pipelines() {
    let o = run(&["check", "pipelines/default.toml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("ok"));
    let o = run(&["check", "pipelines/central.toml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("source: amqp queue dns.packets"), "{out}");
    assert!(
        out.contains("sink: amqp exchange dnsmonitor.alerts"),
        "{out}"
    );
    // The shipped pipelines use no retired key.
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
}

/// The retired `[source] type` still loads, with a warning naming the file,
/// line and key, in `check` and in a command that runs.
#[test]
fn a_retired_key_loads_with_a_located_warning() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("old.toml");
    std::fs::write(&p, "[source]\ntype = \"amqp\"\nqueue = \"q\"\n").unwrap();
    let want = format!(
        "warning: {}:2:8: key `source.type`: no longer used",
        p.display()
    );
    let o = bin().arg("check").arg(&p).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains(&want), "{}", stderr(&o));
    let o = bin()
        .current_dir(root())
        .args([
            "replay",
            "captures/loopback-dig.pcap",
            "--alerts",
            "/dev/null",
            "--pipeline",
        ])
        .arg(&p)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains(&want), "{}", stderr(&o));
}

#[test]
fn check_rejects_a_broken_pipeline_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(
        &p,
        "[window]\nsize_secs = 10\nslide_secs = 4\n\n[detectors.client_flood]\nwarning_qps = -1.0\n\n[detectors.blocklist_hit]\nlists = [\"missing.txt\"]\n",
    )
    .unwrap();
    let o = bin().arg("check").arg(&p).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    let file = p.display().to_string();
    assert!(
        err.contains(&format!(
            "{file}:3:14: key `window.slide_secs`: must divide"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{file}:6:15: key `detectors.client_flood.warning_qps`"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{file}:9:10: key `detectors.blocklist_hit.lists`"))
            && err.contains("missing.txt"),
        "{err}"
    );

    std::fs::write(&p, "[window]\nsize_secs = 10\nslid_secs = 1\n").unwrap();
    let o = bin().arg("check").arg(&p).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(&format!(
            "{file}:3:1: key `window.slid_secs`: unknown field"
        )),
        "{}",
        stderr(&o)
    );

    // replay refuses to start on the same file.
    let o = bin()
        .args(["replay", "--pipeline"])
        .arg(&p)
        .arg(root().join("captures/loopback-dig.pcap"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
}

#[test]
fn loopback_flood_capture_raises_and_resolves_a_client_flood() {
    let o = run(&["replay", "captures/loopback-flood.pcap"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let alerts = alerts_json(&String::from_utf8_lossy(&o.stdout));
    assert!(!alerts.is_empty());
    for a in &alerts {
        assert_eq!(a["kind"], "client_flood");
        assert_eq!(a["key"]["client"], "127.0.0.66");
    }
    assert_eq!(alerts.first().unwrap()["state"], "raised");
    assert!(alerts.iter().any(|a| a["severity"] == "critical"));
    assert_eq!(alerts.last().unwrap()["state"], "resolved");
    let err = stderr(&o);
    assert!(err.contains("packets: 18498"), "{err}");
    assert!(err.contains("parse errors: none"), "{err}");
}

#[test]
fn loopback_dig_capture_with_the_example_blocklist_gives_three_hits() {
    let o = run(&[
        "replay",
        "captures/loopback-dig.pcap",
        "--blocklist",
        "blocklists/example.txt",
        "--workers",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let alerts = alerts_json(&String::from_utf8_lossy(&o.stdout));
    let mut domains: Vec<_> = alerts
        .iter()
        .map(|a| {
            assert_eq!(a["kind"], "blocklist_hit");
            assert_eq!(a["key"]["client"], "127.0.0.7");
            a["key"]["domain"].as_str().unwrap().to_string()
        })
        .collect();
    domains.sort();
    assert_eq!(domains, ["c2.invalid", "malware.example", "phish.test"]);
    // The summary's frequent access patterns: 8 clients x 15 queries.
    let err = stderr(&o);
    assert!(err.contains("top clients:\n"), "{err}");
    assert_eq!(err.matches("        15  127.0.0.").count(), 8, "{err}");
    assert!(err.contains("          58  corp.test"), "{err}");
}

#[test]
fn events_and_alerts_go_to_files() {
    let dir = tempfile::tempdir().unwrap();
    let (a, e) = (
        dir.path().join("alerts.jsonl"),
        dir.path().join("events.jsonl"),
    );
    let o = bin()
        .current_dir(root())
        .args([
            "replay",
            "captures/loopback-dig.pcap",
            "-q",
            "-b",
            "blocklists/example.txt",
            "--alerts",
        ])
        .arg(&a)
        .arg("--events")
        .arg(&e)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        o.stdout.is_empty() && o.stderr.is_empty(),
        "--quiet and file outputs leave the terminal alone"
    );
    assert_eq!(std::fs::read_to_string(&a).unwrap().lines().count(), 3);
    let events = std::fs::read_to_string(&e).unwrap();
    let lines: Vec<serde_json::Value> = events
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 240);
    let frames: Vec<u64> = lines.iter().map(|l| l["frame"].as_u64().unwrap()).collect();
    assert!(frames.windows(2).all(|w| w[0] < w[1]), "frame order");
    assert_eq!(lines.iter().filter(|l| l["transport"] == "tcp").count(), 12);
}

#[test]
fn every_shared_capture_replays_without_a_panic() {
    let mut files = vec![];
    let mut stack = vec![shared("captures")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("../shared/data/captures") {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() > 100, "found {} captures", files.len());
    // All at once (one process, several files) and with 2 workers, events on.
    let o = bin()
        .args(["replay", "-q", "--workers", "2", "--events", "/dev/null"])
        .args(&files)
        .output()
        .unwrap();
    // 3: partial input (one capture in the set is cut short on purpose).
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    // And one by one, so a failure names its file.
    for f in &files {
        let o = bin()
            .args(["replay", "--events", "/dev/null"])
            .arg(f)
            .output()
            .unwrap();
        let err = stderr(&o);
        // 0, or 3 for a capture cut short (it says where).
        let partial = o.status.code() == Some(3) && err.contains("ended early: record ");
        assert!(
            o.status.success() || partial,
            "{}: exit {:?}: {err}",
            f.display(),
            o.status
        );
        assert!(!err.contains("panicked"), "{}: {err}", f.display());
    }
}

#[test]
fn unreadable_and_truncated_captures() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pcap");
    std::fs::write(&junk, b"this is not a capture\n").unwrap();
    let o = bin().arg("replay").arg(&junk).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(&junk.display().to_string()),
        "{}",
        stderr(&o)
    );

    let missing = dir.path().join("missing.pcap");
    let o = bin().arg("replay").arg(&missing).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("missing.pcap"), "{}", stderr(&o));

    // A capture cut in the middle of a record: replayed up to the cut,
    // warned, exit 3 (partial input).
    let full = std::fs::read(root().join("captures/loopback-dig.pcap")).unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &full[..full.len() - 5]).unwrap();
    let o = bin().arg("replay").arg(&cut).output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("ended early"), "{err}");
}

#[test]
fn hostile_names_are_escaped_in_events() {
    use dnsmonitor::synth::{FrameBuilder, PcapWriter, qtype};
    let dir = tempfile::tempdir().unwrap();
    let p: PathBuf = dir.path().join("hostile.pcap");
    let mut w = PcapWriter::new(std::fs::File::create(&p).unwrap()).unwrap();
    let mut fb = FrameBuilder::new();
    let (c, s) = (
        "10.0.0.9:4000".parse().unwrap(),
        "192.0.2.53:53".parse().unwrap(),
    );
    w.write_frame(
        1_700_000_000_000_000,
        fb.query(
            c,
            s,
            1,
            "\\027[31mred\\010\\034.x\\.y.example",
            qtype::A,
            false,
        ),
    )
    .unwrap();
    w.into_inner().unwrap();
    let o = bin()
        .arg("replay")
        .arg("-q")
        .arg("--events")
        .arg("-")
        .arg(&p)
        .output()
        .unwrap();
    assert!(o.status.success());
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        !out.bytes().any(|b| b < 0x20 && b != b'\n'),
        "raw control bytes in output: {out:?}"
    );
    let ev: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(ev["qname"], "\\027[31mred\\010\\034.x\\.y.example");
}

#[test]
fn paced_replay_gives_the_same_alerts_as_full_speed() {
    // loopback-dig.pcap spans 20.66 s: at 20x it cannot finish in under ~1 s.
    let args = [
        "replay",
        "captures/loopback-dig.pcap",
        "-q",
        "-b",
        "blocklists/example.txt",
    ];
    let fast = run(&args);
    let clock = dnsmonitor::time::Clock;
    let t0 = clock.now();
    let paced = bin()
        .current_dir(root())
        .args(args)
        .args(["--speed", "20x"])
        .output()
        .unwrap();
    let elapsed = clock.now().duration_since(t0);
    assert!(fast.status.success() && paced.status.success());
    assert!(
        elapsed.as_secs_f64() >= 1.0,
        "20x pacing of a 20.66 s capture took only {elapsed:?}"
    );
    assert_eq!(fast.stdout, paced.stdout);
    assert_eq!(String::from_utf8_lossy(&fast.stdout).lines().count(), 3);
    let bad = run(&["replay", "captures/loopback-dig.pcap", "--speed", "fast"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("invalid speed"), "{}", stderr(&bad));
}

#[test]
fn reports_count_every_query_once_and_do_not_depend_on_workers() {
    let dir = tempfile::tempdir().unwrap();
    let mut outs = vec![];
    for w in ["1", "2"] {
        let p = dir.path().join(format!("reports-{w}.jsonl"));
        let o = bin()
            .current_dir(root())
            .args([
                "replay",
                "captures/loopback-dig.pcap",
                "-q",
                "--workers",
                w,
                "--reports",
            ])
            .arg(&p)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        outs.push(std::fs::read_to_string(&p).unwrap());
    }
    assert_eq!(outs[0], outs[1]);
    let lines: Vec<serde_json::Value> = outs[0]
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let total = |name: &str| -> u64 {
        lines
            .iter()
            .filter(|l| l["report"] == name)
            .map(|l| l["total"].as_u64().unwrap())
            .sum()
    };
    // 120 queries in the capture: each counted once per table.
    assert_eq!(total("top_qnames"), 120);
    assert_eq!(total("top_clients"), 120);
    assert_eq!(total("top_domains"), 120);
    for l in &lines {
        assert_eq!(l["schema"], "dnsmonitor.report/1");
        let top = l["top"].as_array().unwrap();
        assert!(top.len() <= 10);
        let counts: Vec<u64> = top.iter().map(|i| i["count"].as_u64().unwrap()).collect();
        assert!(counts.windows(2).all(|w| w[0] >= w[1]), "sorted: {l}");
    }
    // 8 clients x 15 queries; 127.0.0.7 appears in the reports.
    assert!(outs[0].contains("\"client\":\"127.0.0.7\""));
}
