//! Event-time windows end to end on generated captures: determinism across
//! worker counts, flood lifecycle timing, benign traffic staying quiet.

mod common;

use std::net::IpAddr;
use std::path::PathBuf;

use common::{alerts_json, plan, replay};
use dnsmonitor::config::DEFAULT_PIPELINE;
use dnsmonitor::synth::scenario::{Flood, Lookup, Scenario, client};
use dnsmonitor::time::{MICROS, rfc3339};

fn write(dir: &tempfile::TempDir, name: &str, s: &Scenario) -> PathBuf {
    let p = dir.path().join(name);
    s.write_file(&p).unwrap();
    p
}

fn blocklist(dir: &tempfile::TempDir) -> PathBuf {
    let p = dir.path().join("list.txt");
    std::fs::write(
        &p,
        "# test list\nevil.example\n0.0.0.0 tracker.test\n||bad.invalid^\n",
    )
    .unwrap();
    p
}

fn flooder() -> IpAddr {
    "10.66.0.1".parse().unwrap()
}

#[test]
fn same_alerts_and_events_for_1_2_and_4_workers() {
    let dir = tempfile::tempdir().unwrap();
    let s = Scenario {
        seed: 7,
        duration_s: 70,
        clients: 200,
        background_qps: 200.0,
        floods: vec![
            Flood {
                client: flooder(),
                start_s: 10.0,
                end_s: 25.0,
                qps: 450,
            },
            Flood {
                client: "10.66.0.2".parse().unwrap(),
                start_s: 30.0,
                end_s: 40.0,
                qps: 150,
            },
        ],
        lookups: vec![
            Lookup {
                client: client(3),
                at_s: 5.5,
                qname: "www.evil.example".into(),
            },
            Lookup {
                client: client(4),
                at_s: 33.2,
                qname: "x.y.TRACKER.test".into(),
            },
            Lookup {
                client: client(4),
                at_s: 34.0,
                qname: "bad.invalid".into(),
            },
        ],
        ..Scenario::default()
    };
    let cap = write(&dir, "mix.pcap", &s);
    let list = blocklist(&dir);
    let base = PathBuf::from(".");
    let one = replay(
        std::slice::from_ref(&cap),
        plan(DEFAULT_PIPELINE, &base, std::slice::from_ref(&list)),
        1,
        true,
    );
    let alerts = alerts_json(&one.alerts);
    let kinds: Vec<_> = alerts
        .iter()
        .map(|a| {
            (
                a["kind"].as_str().unwrap().to_string(),
                a["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("client_flood".into(), "raised".into())),
        "{kinds:?}"
    );
    assert_eq!(
        alerts
            .iter()
            .filter(|a| a["kind"] == "blocklist_hit" && a["state"] == "raised")
            .count(),
        3
    );
    assert!(one.events.lines().count() as u64 == one.summary.dns_messages);
    for workers in [2, 4] {
        let other = replay(
            std::slice::from_ref(&cap),
            plan(DEFAULT_PIPELINE, &base, std::slice::from_ref(&list)),
            workers,
            true,
        );
        assert_eq!(
            one.alerts, other.alerts,
            "alerts differ with {workers} workers"
        );
        assert_eq!(
            one.events, other.events,
            "event log differs with {workers} workers"
        );
        assert_eq!(one.summary.dns_messages, other.summary.dns_messages);
    }
}

#[test]
fn flood_is_raised_escalated_and_resolved_at_the_right_event_times() {
    let dir = tempfile::tempdir().unwrap();
    // 500 q/s from 20 s to 35 s; window 10 s sliding 1 s; warning 100 q/s
    // (1000 in a window), critical 300 q/s (3000), hold 20 s.
    let s = Scenario {
        seed: 3,
        duration_s: 90,
        floods: vec![Flood {
            client: flooder(),
            start_s: 20.0,
            end_s: 35.0,
            qps: 500,
        }],
        ..Scenario::default()
    };
    let cap = write(&dir, "flood.pcap", &s);
    let run = replay(
        &[cap],
        plan(DEFAULT_PIPELINE, &PathBuf::from("."), &[]),
        2,
        false,
    );
    let alerts = alerts_json(&run.alerts);
    let at = |secs: i64| rfc3339(s.start_us + secs * MICROS);
    let states: Vec<(String, String, String)> = alerts
        .iter()
        .map(|a| {
            assert_eq!(a["kind"], "client_flood");
            assert_eq!(
                a["key"]["client"], "10.66.0.1",
                "only the flooder alerts: {a}"
            );
            (
                a["state"].as_str().unwrap().into(),
                a["severity"].as_str().unwrap().into(),
                a["event_time"].as_str().unwrap().into(),
            )
        })
        .collect();
    // Window [12,22) holds 2 s of flood = 1000 queries: warning at 22 s.
    assert_eq!(
        states[0],
        ("raised".into(), "warning".into(), at(22)),
        "{states:?}"
    );
    // [16,26) holds 6 s = 3000: critical at 26 s.
    assert!(
        states.contains(&("updated".into(), "critical".into(), at(26))),
        "{states:?}"
    );
    // [34,44) holds 1 s = 500 < 1000: first clear window ends at 44 s; resolved 20 s later.
    let last = states.last().unwrap();
    assert_eq!(
        (last.0.as_str(), last.2.clone()),
        ("resolved", at(64)),
        "{states:?}"
    );
    assert_eq!(states.iter().filter(|s| s.0 == "raised").count(), 1);
    let raised = &alerts[0];
    assert_eq!(raised["schema"], "dnsmonitor.alert/1");
    assert_eq!(raised["window"]["start"], at(12));
    assert_eq!(raised["window"]["end"], at(22));
    assert_eq!(raised["evidence"]["queries"], 1000);
    assert_eq!(raised["threshold"], 100);
    assert_eq!(
        raised["id"],
        alerts.last().unwrap()["id"],
        "id is stable per (kind, key)"
    );
    assert_eq!(run.summary.active_at_end, 0);
}

#[test]
fn benign_traffic_raises_nothing_over_several_seeds() {
    let dir = tempfile::tempdir().unwrap();
    for seed in 1..=4 {
        let s = Scenario {
            seed,
            duration_s: 40,
            clients: 100,
            background_qps: 300.0,
            ..Scenario::default()
        };
        let cap = write(&dir, &format!("benign{seed}.pcap"), &s);
        let run = replay(
            &[cap],
            plan(DEFAULT_PIPELINE, &PathBuf::from("."), &[]),
            1,
            false,
        );
        assert_eq!(run.alerts, "", "seed {seed}");
        assert!(
            run.summary.dns_messages > 20_000,
            "seed {seed}: {}",
            run.summary.dns_messages
        );
    }
}

#[test]
fn packets_older_than_the_allowed_lateness_are_counted_not_detected() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("late.pcap");
    let t0 = 1_700_000_000 * MICROS;
    // 5000 frames spread over 50 s, then one frame 30 s in the past.
    let mut frames: Vec<(i64, &str)> = (0..5000i64)
        .map(|i| (t0 + i * 10_000, "a.example"))
        .collect();
    frames.push((t0 + 20 * MICROS, "late.example"));
    frames.push((t0 + 50 * MICROS, "b.example"));
    write_queries(&p, &frames);
    let run = replay(
        &[p],
        plan(DEFAULT_PIPELINE, &PathBuf::from("."), &[]),
        1,
        true,
    );
    assert_eq!(run.summary.late_messages, 1);
    assert_eq!(run.summary.dns_messages, 5002);
    assert_eq!(
        run.events.lines().count(),
        5002,
        "late messages are still logged"
    );
}

#[test]
fn one_frame_with_a_bogus_future_timestamp_does_not_blind_detection() {
    use dnsmonitor::synth::{FrameBuilder, PcapWriter, qtype};
    let dir = tempfile::tempdir().unwrap();
    // `bogus_at`: the frame index before which the bogus frame goes.
    let write = |name: &str, bogus_at: Option<i64>| {
        let p = dir.path().join(name);
        let mut w = PcapWriter::new(std::fs::File::create(&p).unwrap()).unwrap();
        let mut fb = FrameBuilder::new();
        let (c, srv) = (
            "10.66.0.9:4000".parse().unwrap(),
            "192.0.2.53:53".parse().unwrap(),
        );
        let t0 = 1_700_000_000 * MICROS;
        // 400 q/s for 30 s from one client.
        for i in 0..12_000i64 {
            let ts = t0 + i * 2_500;
            if bogus_at == Some(i) {
                // Ten years ahead (a broken clock, a crafted record).
                let far = ts + 10 * 365 * 86_400 * MICROS;
                w.write_frame(far, fb.query(c, srv, 1, "b.example", qtype::A, false))
                    .unwrap();
            }
            w.write_frame(ts, fb.query(c, srv, i as u16, "a.example", qtype::A, false))
                .unwrap();
        }
        w.into_inner().unwrap();
        p
    };
    let clean = write("clean.pcap", None);
    let a = replay(
        &[clean],
        plan(DEFAULT_PIPELINE, &PathBuf::from("."), &[]),
        1,
        false,
    );
    assert!(a.alerts.contains("\"state\":\"raised\""));
    // Mid-capture, and as the very first frame (nothing to compare it
    // with yet: it used to set event time ten years ahead).
    for (name, at) in [("mid.pcap", 2_000), ("first.pcap", 0)] {
        let bogus = write(name, Some(at));
        let b = replay(
            &[bogus],
            plan(DEFAULT_PIPELINE, &PathBuf::from("."), &[]),
            1,
            false,
        );
        assert_eq!(a.alerts, b.alerts, "{name}");
        assert_eq!(b.summary.late_messages, 0, "{name}");
        assert_eq!(b.summary.last_ts_us, a.summary.last_ts_us, "{name}");
    }
}

/// A capture of one query (`name`) per timestamp from 10.0.0.9 to 192.0.2.53.
fn write_queries(p: &std::path::Path, frames: &[(i64, &str)]) {
    use dnsmonitor::synth::{FrameBuilder, PcapWriter, qtype};
    let mut w = PcapWriter::new(std::fs::File::create(p).unwrap()).unwrap();
    let mut fb = FrameBuilder::new();
    let (c, srv) = (
        "10.0.0.9:4000".parse().unwrap(),
        "192.0.2.53:53".parse().unwrap(),
    );
    for (i, (ts, name)) in frames.iter().enumerate() {
        w.write_frame(*ts, fb.query(c, srv, i as u16, name, qtype::A, false))
            .unwrap();
    }
    w.into_inner().unwrap();
}

#[test]
fn an_input_shorter_than_the_time_check_still_has_its_time() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("three.pcap");
    let t0 = 1_700_000_000 * MICROS;
    write_queries(
        &p,
        &[
            (t0, "a.example"),
            (t0 + MICROS, "a.example"),
            (t0 + 2 * MICROS, "a.example"),
        ],
    );
    let run = replay(
        &[p],
        plan(DEFAULT_PIPELINE, &PathBuf::from("."), &[]),
        1,
        true,
    );
    assert_eq!(run.summary.dns_messages, 3);
    assert_eq!(run.summary.late_messages, 0);
    assert_eq!(run.summary.first_ts_us, Some(t0));
    assert_eq!(run.summary.last_ts_us, Some(t0 + 2 * MICROS));
}
