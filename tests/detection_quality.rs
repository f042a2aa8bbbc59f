//! Detection quality on labelled synthetic captures (`synth::labelled`):
//! every attack alone is raised with the right kind and key within two
//! slides of its start and resolved after it ends, with no other alert than
//! the ones its truth allows; benign traffic raises nothing; a mixed capture
//! meets recall and precision targets (a per-kind table is printed: run with
//! `--nocapture` to see it); a real reflection capture raises
//! `amplification` for its victim.
//!
//! All replays run in-process with the default pipeline plus
//! blocklists/example.txt, one worker.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{alerts_json, plan, replay, shared};
use dnsmonitor::config::DEFAULT_PIPELINE;
use dnsmonitor::synth::labelled::{SynthOptions, Truth, generate_file};
use dnsmonitor::time::MICROS;
use serde_json::Value;

/// Window length and slide of the default pipeline.
const WINDOW_US: i64 = 10 * MICROS;
const SLIDE_US: i64 = MICROS;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One alert line, the fields scoring needs.
#[derive(Clone, Debug)]
struct Alert {
    kind: String,
    state: String,
    key: Value,
    event_us: i64,
    line: Value,
}

/// Days since 1970-01-01 of a civil date (H. Hinnant).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` to µs since the epoch.
fn parse_rfc3339(s: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| -> i64 { s[r].parse().unwrap_or_else(|_| panic!("{s}")) };
    let days = days_from_civil(n(0..4), n(5..7), n(8..10));
    let secs = days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19);
    let frac = match s.as_bytes().get(19) {
        Some(b'.') => {
            let f = &s[20..s.len() - 1];
            f.parse::<i64>().unwrap() * 10i64.pow(6 - f.len() as u32)
        }
        _ => 0,
    };
    secs * MICROS + frac
}

fn parse_alerts(text: &str) -> Vec<Alert> {
    alerts_json(text)
        .into_iter()
        .map(|a| Alert {
            kind: a["kind"].as_str().unwrap().to_string(),
            state: a["state"].as_str().unwrap().to_string(),
            key: a["key"].clone(),
            event_us: parse_rfc3339(a["event_time"].as_str().unwrap()),
            line: a,
        })
        .collect()
}

/// How one raised alert was judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// Detects truth attack number `i`.
    Detects(usize),
    /// An `also` alert of truth attack number `i`.
    Also(usize),
    FalsePositive,
}

/// The scoring of one capture.
#[derive(Debug, Default)]
struct Score {
    /// Per truth attack: the delay of its first matching raised alert.
    delays: Vec<Option<i64>>,
    /// Per raised alert (in output order): the alert and its verdict.
    raised: Vec<(Alert, Verdict)>,
}

/// The matching rule.
///
/// - A truth attack is **detected** when a `raised` alert has the same
///   kind and the same key object as the attack and its event_time is in
///   `[start, end + window]`; its **delay** is that event_time − start (the
///   first such alert counts).
/// - A `raised` alert is **expected** when it detects a truth attack, or
///   has the kind and key of one of an attack's `also` entries with its
///   event_time in that attack's `[start, end + window]`. Every other raised
///   alert is a **false positive** — also one with the right kind and key
///   but outside every attack window of that key (this is stricter than
///   matching by kind and key alone).
/// - An attack on a key whose alert is still open from an earlier attack
///   (e.g. `spoofed_flood` for the resolver, raised as an `also` of the
///   water-torture bots a minute before) has no `raised` of its own: it is
///   detected by an `updated` state of that alert in its window (the
///   alert's observed value moved), with that delay.
/// - Otherwise `updated` and `resolved` states are not scored here (the
///   per-attack tests check `resolved` separately).
fn score(truth: &Truth, alerts: &[Alert], window_us: i64) -> Score {
    let in_window = |a: &Alert, t: &dnsmonitor::synth::labelled::TruthAttack| -> bool {
        a.event_us >= t.start_us && a.event_us <= t.end_us + window_us
    };
    let mut s = Score {
        delays: vec![None; truth.attacks.len()],
        raised: Vec::new(),
    };
    for a in alerts.iter().filter(|a| a.state == "raised") {
        let mut verdict = Verdict::FalsePositive;
        for (i, t) in truth.attacks.iter().enumerate() {
            if t.kind == a.kind && t.key == a.key && in_window(a, t) {
                verdict = Verdict::Detects(i);
                let d = a.event_us - t.start_us;
                if s.delays[i].is_none_or(|old| d < old) {
                    s.delays[i] = Some(d);
                }
                break;
            }
        }
        if verdict == Verdict::FalsePositive {
            for (i, t) in truth.attacks.iter().enumerate() {
                if in_window(a, t) && t.also.iter().any(|x| x.kind == a.kind && x.key == a.key) {
                    verdict = Verdict::Also(i);
                    break;
                }
            }
        }
        s.raised.push((a.clone(), verdict));
    }
    for (i, t) in truth.attacks.iter().enumerate() {
        if s.delays[i].is_some() {
            continue;
        }
        s.delays[i] = alerts
            .iter()
            .filter(|a| {
                a.state == "updated" && t.kind == a.kind && t.key == a.key && in_window(a, t)
            })
            .map(|a| a.event_us - t.start_us)
            .min();
    }
    s
}

struct Case {
    truth: Truth,
    alerts: Vec<Alert>,
    score: Score,
}

/// Generate a capture (in a temporary folder) and replay it.
fn run(scenario: &str, seed: u64, duration_s: u32, rate_scale: f64) -> Case {
    run_opts(SynthOptions {
        scenarios: vec![scenario.to_string()],
        seed,
        duration_s,
        rate_scale,
        ..SynthOptions::default()
    })
}

/// The same with every synth option.
fn run_opts(opts: SynthOptions) -> Case {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir
        .path()
        .join(format!("{}-{}.pcap", opts.scenarios.join("+"), opts.seed));
    let (truth, _frames) = generate_file(&opts, &pcap).unwrap();
    let list = root().join("blocklists/example.txt");
    let run = replay(&[pcap], plan(DEFAULT_PIPELINE, &root(), &[list]), 1, false);
    let alerts = parse_alerts(&run.alerts);
    let score = score(&truth, &alerts, WINDOW_US);
    Case {
        truth,
        alerts,
        score,
    }
}

/// No alert of `c` is a false positive (the failure lists them and `ctx`).
fn assert_no_false_positive(c: &Case, ctx: impl Fn() -> String) {
    let fps: Vec<_> = c
        .score
        .raised
        .iter()
        .filter(|(_, v)| *v == Verdict::FalsePositive)
        .map(|(a, _)| a.line.to_string())
        .collect();
    assert!(fps.is_empty(), "unexpected alerts: {fps:#?}\n{}", ctx());
}

fn describe(c: &Case) -> String {
    let mut s = format!(
        "truth: {}\nalerts:\n",
        serde_json::to_string_pretty(&c.truth.attacks).unwrap()
    );
    for a in &c.alerts {
        s.push_str(&a.line.to_string());
        s.push('\n');
    }
    s
}

/// One attack alone, over two seeds: detected with its kind and key within
/// two slides of its start, a `resolved` after its end, nothing else raised
/// but its `also` alerts.
fn attack_alone(scenario: &str, duration_s: u32, rate_scale: f64) {
    for seed in [1, 2] {
        let c = run(scenario, seed, duration_s, rate_scale);
        let ctx = || format!("{scenario} seed {seed}\n{}", describe(&c));
        assert!(!c.truth.attacks.is_empty(), "{}", ctx());
        for (i, t) in c.truth.attacks.iter().enumerate() {
            assert_eq!(t.kind, scenario);
            let delay = c.score.delays[i]
                .unwrap_or_else(|| panic!("not detected: {} {}\n{}", t.kind, t.key, ctx()));
            assert!(
                delay <= 2 * SLIDE_US,
                "{} {} raised {} s after its start\n{}",
                t.kind,
                t.key,
                delay as f64 / 1e6,
                ctx()
            );
            assert!(
                c.alerts.iter().any(|a| a.state == "resolved"
                    && a.kind == t.kind
                    && a.key == t.key
                    && a.event_us > t.end_us),
                "{} {} not resolved after its end\n{}",
                t.kind,
                t.key,
                ctx()
            );
        }
        assert_no_false_positive(&c, ctx);
    }
}

// Captures of 60 s (attack from 12 s to 28 s) at half the nominal rates
// (the least scale at which every attack is detected within two slides,
// see synth::labelled); 150 s (attack from 75 s to 90 s) for the attacks
// whose detectors learn a baseline first.

#[test]
fn client_flood_alone() {
    attack_alone("client_flood", 60, 0.5);
}

#[test]
fn subnet_flood_alone() {
    attack_alone("subnet_flood", 60, 0.5);
}

#[test]
fn nxdomain_flood_alone() {
    attack_alone("nxdomain_flood", 60, 0.5);
}

#[test]
fn servfail_flood_alone() {
    attack_alone("servfail_flood", 60, 0.5);
}

#[test]
fn random_subdomain_alone() {
    attack_alone("random_subdomain", 60, 0.5);
}

#[test]
fn amplification_alone() {
    attack_alone("amplification", 60, 0.5);
}

#[test]
fn unsolicited_response_alone() {
    attack_alone("unsolicited_response", 60, 0.5);
}

/// 200 s: the alert resolves once the tunnel's queries leave the
/// detector's 60 s window.
#[test]
fn tunneling_alone() {
    attack_alone("tunneling", 200, 0.5);
}

#[test]
fn blocklist_hit_alone() {
    attack_alone("blocklist_hit", 60, 0.5);
}

#[test]
fn spoofed_flood_alone() {
    attack_alone("spoofed_flood", 150, 0.5);
}

#[test]
fn rate_anomaly_alone() {
    attack_alone("rate_anomaly", 150, 0.5);
}

/// A slow tunnel, 1.5 q/s (the generator's floor: `--intensity
/// tunneling=0.05`) for 36 s amid nominal background, over three seeds:
/// under the 2 q/s a 10 s window needs for 20 queries, found by the
/// detector's 60 s window within 20 s of its start; nothing else raised.
#[test]
fn slow_tunnel() {
    for seed in [1, 2, 3] {
        let c = run_opts(SynthOptions {
            scenarios: vec!["tunneling".into()],
            seed,
            duration_s: 90,
            intensity: [("tunneling".to_string(), 0.05)].into_iter().collect(),
            ..SynthOptions::default()
        });
        let ctx = || format!("slow tunnel seed {seed}\n{}", describe(&c));
        let delay = c.score.delays[0].unwrap_or_else(|| panic!("not detected\n{}", ctx()));
        println!("slow tunnel seed {seed}: raised after {} s", delay / MICROS);
        assert!(
            delay <= 20 * MICROS,
            "raised after {} s\n{}",
            delay / MICROS,
            ctx()
        );
        assert_no_false_positive(&c, ctx);
    }
}

/// A rate_anomaly whose extra load rises linearly over minutes (80-240 s
/// of a 400 s capture), over two seeds: the EWMA baseline follows such a
/// ramp, the ramp rule does not; raised before the ramp ends, nothing else
/// raised.
#[test]
fn rate_ramp_alone() {
    for seed in [1, 2] {
        let c = run("rate_ramp", seed, 400, 0.5);
        let ctx = || format!("rate_ramp seed {seed}\n{}", describe(&c));
        let t = &c.truth.attacks[0];
        assert_eq!(t.kind, "rate_anomaly", "{}", ctx());
        let delay = c.score.delays[0].unwrap_or_else(|| panic!("ramp not detected\n{}", ctx()));
        assert!(
            delay < t.end_us - t.start_us,
            "raised {} s into a {} s ramp\n{}",
            delay / MICROS,
            (t.end_us - t.start_us) / MICROS,
            ctx()
        );
        assert_no_false_positive(&c, ctx);
    }
}

/// One infected host per DGA family of the generator (`synth::dga`), in
/// 300 s of background from `clients` clients (typo NXDOMAINs, DNSBL
/// lookups, antivirus hash lookups, telemetry hashes), one capture per
/// seed: per family, the seeds it was found in and its delays (in the
/// order of `FAMILIES`), the false positives, and the table (Markdown).
fn dga_families_run(seeds: &[u64], clients: u32) -> (Vec<u32>, Vec<String>, String) {
    let families = dnsmonitor::synth::dga::FAMILIES;
    let cases: Vec<(u64, Case)> = std::thread::scope(|sc| {
        let handles: Vec<_> = seeds
            .iter()
            .map(|&seed| {
                sc.spawn(move || {
                    let c = run_opts(SynthOptions {
                        scenarios: vec!["dga".into()],
                        seed,
                        duration_s: 300,
                        clients,
                        ..SynthOptions::default()
                    });
                    (seed, c)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut found = vec![0u32; families.len()];
    let mut delays: Vec<Vec<i64>> = vec![Vec::new(); families.len()];
    let mut fps = Vec::new();
    for (seed, c) in &cases {
        assert_eq!(c.truth.attacks.len(), families.len(), "seed {seed}");
        for (i, d) in c.score.delays.iter().enumerate() {
            if let Some(d) = d {
                found[i] += 1;
                delays[i].push(*d);
            }
        }
        for (a, v) in &c.score.raised {
            if *v == Verdict::FalsePositive {
                fps.push(format!("seed {seed}: {}", a.line));
            }
        }
    }
    let mut table = format!(
        "| family | detected (of {}) | mean delay (s) |\n|---|---:|---:|\n",
        seeds.len()
    );
    for (i, f) in families.iter().enumerate() {
        let mean = if delays[i].is_empty() {
            "-".to_string()
        } else {
            format!(
                "{:.0}",
                delays[i].iter().sum::<i64>() as f64 / delays[i].len() as f64 / 1e6
            )
        };
        table.push_str(&format!("| {f} | {} | {mean} |\n", found[i]));
    }
    (found, fps, table)
}

/// Three seeds, 3000 clients: recall per family printed (`--nocapture`);
/// every family is found in at least 2 of 3 (the word and pronounceable
/// ones by the volume rule), nothing else is raised.
#[test]
fn dga_families() {
    let (found, fps, table) = dga_families_run(&[1, 2, 3], 3000);
    println!("{table}");
    assert!(fps.is_empty(), "false positives: {fps:#?}\n{table}");
    for (i, f) in dnsmonitor::synth::dga::FAMILIES.iter().enumerate() {
        assert!(
            found[i] >= 2,
            "{f} found in {} of 3 seeds\n{table}",
            found[i]
        );
    }
}

/// The README's per-family table: six other seeds, with 3000 clients and
/// with 300 (ten times the lookups, and so the typos, per client). Ignored
/// by default (minutes): `cargo test --test detection_quality
/// dga_families_full -- --ignored --nocapture`.
#[test]
#[ignore]
fn dga_families_full() {
    for clients in [3000, 300] {
        let (found, fps, table) = dga_families_run(&[4, 5, 6, 7, 8, 9], clients);
        println!("{clients} clients\n{table}");
        assert!(fps.is_empty(), "false positives: {fps:#?}\n{table}");
        for (i, f) in dnsmonitor::synth::dga::FAMILIES.iter().enumerate() {
            assert!(found[i] >= 5, "{f}: {}\n{table}", found[i]);
        }
    }
}

/// Background only, at its nominal rates, long enough for every baseline to
/// warm up (100 s): no alert at all.
#[test]
fn benign_raises_nothing() {
    for seed in 1..=4 {
        let c = run("benign", seed, 100, 1.0);
        assert!(c.alerts.is_empty(), "seed {seed}\n{}", describe(&c));
    }
}

/// Per-kind tallies over several captures.
#[derive(Default)]
struct KindStats {
    attacks: u64,
    detected: u64,
    raised: u64,
    false_positives: u64,
    delays: Vec<i64>,
}

/// Every attack in one capture (own slots on a 180 s timeline), over three
/// seeds: recall >= 0.95 and precision >= 0.9 overall.
#[test]
fn mixed_recall_and_precision() {
    let mut stats: BTreeMap<String, KindStats> = BTreeMap::new();
    let mut fps = Vec::new();
    let mut missed = Vec::new();
    // The seeds run in parallel (generation and replay are single-threaded).
    let cases: Vec<(u64, Case)> = std::thread::scope(|sc| {
        let handles: Vec<_> = (1..=3)
            .map(|seed| sc.spawn(move || (seed, run("mixed", seed, 180, 0.5))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (seed, c) in &cases {
        for (i, t) in c.truth.attacks.iter().enumerate() {
            let k = stats.entry(t.kind.clone()).or_default();
            k.attacks += 1;
            match c.score.delays[i] {
                Some(d) => {
                    k.detected += 1;
                    k.delays.push(d);
                }
                None => missed.push(format!("seed {seed}: {} {}", t.kind, t.key)),
            }
        }
        for (a, v) in &c.score.raised {
            let k = stats.entry(a.kind.clone()).or_default();
            k.raised += 1;
            if *v == Verdict::FalsePositive {
                k.false_positives += 1;
                fps.push(format!("seed {seed}: {}", a.line));
            }
        }
    }
    let table = quality_table(&stats);
    println!("{table}");
    let (attacks, detected, raised, fp) = stats.values().fold((0, 0, 0, 0), |acc, k| {
        (
            acc.0 + k.attacks,
            acc.1 + k.detected,
            acc.2 + k.raised,
            acc.3 + k.false_positives,
        )
    });
    let recall = detected as f64 / attacks as f64;
    let precision = if raised == 0 {
        1.0
    } else {
        (raised - fp) as f64 / raised as f64
    };
    assert!(
        recall >= 0.95,
        "recall {recall:.3}\n{table}\nmissed: {missed:#?}\nfalse positives: {fps:#?}"
    );
    assert!(
        precision >= 0.9,
        "precision {precision:.3}\n{table}\nmissed: {missed:#?}\nfalse positives: {fps:#?}"
    );
}

/// Attack kinds of the `mixed` scenario (each gets the sweep's intensity).
const MIXED_KINDS: [&str; 11] = [
    "client_flood",
    "subnet_flood",
    "nxdomain_flood",
    "servfail_flood",
    "random_subdomain",
    "amplification",
    "unsolicited_response",
    "spoofed_flood",
    "rate_anomaly",
    "tunneling",
    "blocklist_hit",
];

/// One cell of the sweep: per kind, the attacks, detections, raised alerts
/// (scored), false positives and delays.
fn sweep_cell(intensity: f64, seeds: &[u64]) -> BTreeMap<String, KindStats> {
    let cases: Vec<Case> = std::thread::scope(|sc| {
        let handles: Vec<_> = seeds
            .iter()
            .map(|&seed| {
                sc.spawn(move || {
                    run_opts(SynthOptions {
                        scenarios: vec!["mixed".into()],
                        seed,
                        duration_s: 180,
                        intensity: MIXED_KINDS
                            .iter()
                            .map(|k| (k.to_string(), intensity))
                            .collect(),
                        ..SynthOptions::default()
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut stats: BTreeMap<String, KindStats> = BTreeMap::new();
    for c in &cases {
        for (i, t) in c.truth.attacks.iter().enumerate() {
            let k = stats.entry(t.kind.clone()).or_default();
            k.attacks += 1;
            if let Some(d) = c.score.delays[i] {
                k.detected += 1;
                k.delays.push(d);
            }
        }
        for (a, v) in &c.score.raised {
            let k = stats.entry(a.kind.clone()).or_default();
            k.raised += 1;
            if *v == Verdict::FalsePositive {
                k.false_positives += 1;
            }
        }
    }
    stats
}

/// `p`-quantile (nearest rank) of delays in seconds, `-` when none.
fn quantile_s(delays: &[i64], p: f64) -> String {
    if delays.is_empty() {
        return "-".into();
    }
    let mut d = delays.to_vec();
    d.sort_unstable();
    let rank = ((p * d.len() as f64).ceil() as usize).clamp(1, d.len());
    format!("{:.0}", d[rank - 1] as f64 / 1e6)
}

/// The sweep: every attack of `mixed` at each intensity (background at its
/// nominal rate), over `seeds`; a Markdown table of recall, precision and
/// median / p95 delay per kind and intensity (the README's), and the
/// overall (recall, precision) per intensity.
fn sweep(intensities: &[f64], seeds: &[u64]) -> (String, Vec<(f64, f64, f64)>) {
    let mut table = String::from(
        "| kind | intensity | attacks | recall | raised | precision | median delay (s) | p95 delay (s) |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut overall = Vec::new();
    let cells: Vec<(f64, BTreeMap<String, KindStats>)> = intensities
        .iter()
        .map(|&x| (x, sweep_cell(x, seeds)))
        .collect();
    let kinds: std::collections::BTreeSet<&String> =
        cells.iter().flat_map(|(_, s)| s.keys()).collect();
    let ratio = |a: u64, b: u64| {
        if b == 0 {
            "-".to_string()
        } else {
            format!("{:.2}", a as f64 / b as f64)
        }
    };
    for kind in kinds {
        for (x, stats) in &cells {
            let Some(k) = stats.get(kind) else { continue };
            table.push_str(&format!(
                "| {kind} | {x}x | {} | {} | {} | {} | {} | {} |\n",
                k.attacks,
                ratio(k.detected, k.attacks),
                k.raised,
                ratio(k.raised - k.false_positives, k.raised),
                quantile_s(&k.delays, 0.5),
                quantile_s(&k.delays, 0.95),
            ));
        }
    }
    for (x, stats) in &cells {
        let (a, d, r, f) = stats.values().fold((0, 0, 0, 0), |acc, k| {
            (
                acc.0 + k.attacks,
                acc.1 + k.detected,
                acc.2 + k.raised,
                acc.3 + k.false_positives,
            )
        });
        let precision = if r == 0 {
            1.0
        } else {
            (r - f) as f64 / r as f64
        };
        overall.push((*x, d as f64 / a as f64, precision));
    }
    (table, overall)
}

/// The fast subset of the sweep, run by default: 0.3x, 1x and 3x over two
/// seeds. Weak attacks may be missed (recall >= 0.8 at 0.3x), normal and
/// strong ones not (>= 0.95); precision >= 0.9 at every intensity.
#[test]
fn intensity_sweep_fast() {
    let (table, overall) = sweep(&[0.3, 1.0, 3.0], &[11, 12]);
    println!("{table}\n{overall:?}");
    for (x, recall, precision) in overall {
        let want = if x < 1.0 { 0.8 } else { 0.95 };
        assert!(recall >= want, "{x}x: recall {recall:.3}\n{table}");
        assert!(precision >= 0.9, "{x}x: precision {precision:.3}\n{table}");
    }
}

/// The whole sweep (the README's table): 0.3x, 1x and 3x over five seeds.
/// Ignored by default (minutes in a debug build): `cargo test --test
/// detection_quality intensity_sweep_full -- --ignored --nocapture`.
#[test]
#[ignore]
fn intensity_sweep_full() {
    let (table, overall) = sweep(&[0.3, 1.0, 3.0], &[21, 22, 23, 24, 25]);
    println!("{table}\n{overall:?}");
    for (x, recall, precision) in overall {
        let want = if x < 1.0 { 0.8 } else { 0.95 };
        assert!(recall >= want, "{x}x: recall {recall:.3}\n{table}");
        assert!(precision >= 0.9, "{x}x: precision {precision:.3}\n{table}");
    }
}

/// The table printed by `mixed_recall_and_precision` (Markdown).
fn quality_table(stats: &BTreeMap<String, KindStats>) -> String {
    let mut s = String::from(
        "| kind | attacks | detected | recall | raised | false pos. | precision | mean delay (s) | max delay (s) |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let ratio = |a: u64, b: u64| {
        if b == 0 {
            "-".to_string()
        } else {
            format!("{:.2}", a as f64 / b as f64)
        }
    };
    let (mut ta, mut td, mut tr, mut tf, mut all) = (0, 0, 0, 0, Vec::new());
    for (kind, k) in stats {
        let mean = if k.delays.is_empty() {
            "-".into()
        } else {
            format!(
                "{:.1}",
                k.delays.iter().sum::<i64>() as f64 / k.delays.len() as f64 / 1e6
            )
        };
        let max = k
            .delays
            .iter()
            .max()
            .map_or("-".into(), |m| format!("{:.1}", *m as f64 / 1e6));
        s.push_str(&format!(
            "| {kind} | {} | {} | {} | {} | {} | {} | {mean} | {max} |\n",
            k.attacks,
            k.detected,
            ratio(k.detected, k.attacks),
            k.raised,
            k.false_positives,
            ratio(k.raised - k.false_positives, k.raised),
        ));
        ta += k.attacks;
        td += k.detected;
        tr += k.raised;
        tf += k.false_positives;
        all.extend(&k.delays);
    }
    let mean = if all.is_empty() {
        "-".into()
    } else {
        format!(
            "{:.1}",
            all.iter().sum::<i64>() as f64 / all.len() as f64 / 1e6
        )
    };
    let max = all
        .iter()
        .max()
        .map_or("-".into(), |m| format!("{:.1}", *m as f64 / 1e6));
    s.push_str(&format!(
        "| **all** | {ta} | {td} | {} | {tr} | {tf} | {} | {mean} | {max} |\n",
        ratio(td, ta),
        ratio(tr - tf, tr),
    ));
    s
}

/// The real RRSIG reflection capture (stopddos): `amplification` raised for
/// the destination of its RRSIG responses.
#[test]
fn stopddos_rrsig_reflection_raises_amplification() {
    let pcap = shared("captures/attacks/stopddos-amp.dns.RRSIG.fragmented.pcap");
    assert!(
        pcap.exists(),
        "shared data file missing: {}",
        pcap.display()
    );
    let list = root().join("blocklists/example.txt");
    let run = replay(
        std::slice::from_ref(&pcap),
        plan(DEFAULT_PIPELINE, Path::new("."), &[list]),
        1,
        true,
    );
    // The victim: the destination of the RRSIG (46) responses.
    let mut dst: BTreeMap<String, u64> = BTreeMap::new();
    for line in run.events.lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        if e["qr"] == true && e["qtype"] == 46 {
            *dst.entry(e["dst"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    let (victim, n) = dst
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(v, n)| (v.clone(), *n))
        .expect("RRSIG responses in the capture");
    assert!(n >= 100, "{dst:?}");
    let alerts = parse_alerts(&run.alerts);
    assert!(
        alerts.iter().any(|a| a.kind == "amplification"
            && a.state == "raised"
            && a.key == serde_json::json!({ "victim": victim })),
        "no amplification alert for {victim}:\n{}",
        run.alerts
    );
}

#[test]
fn matching_rule() {
    use dnsmonitor::synth::labelled::{TruthAlso, TruthAttack};
    use serde_json::json;
    let t0 = 1_700_000_000 * MICROS;
    let truth = Truth {
        schema: "dnsmonitor.truth/1".into(),
        seed: 1,
        duration_s: 100,
        scenarios: vec!["x".into()],
        attacks: vec![TruthAttack {
            kind: "client_flood".into(),
            key: json!({"client": "10.0.0.1"}),
            start: String::new(),
            end: String::new(),
            start_us: t0 + 20 * MICROS,
            end_us: t0 + 40 * MICROS,
            also: vec![TruthAlso {
                kind: "rate_anomaly".into(),
                key: json!({"server": "192.0.2.53"}),
            }],
        }],
        notes: vec![],
    };
    let al = |kind: &str, state: &str, key: Value, s: i64| Alert {
        kind: kind.into(),
        state: state.into(),
        key,
        event_us: t0 + s * MICROS,
        line: Value::Null,
    };
    let c = json!({"client": "10.0.0.1"});
    let alerts = vec![
        al("client_flood", "raised", c.clone(), 10), // before: false
        al("client_flood", "raised", c.clone(), 22), // detects, delay 2 s
        al("client_flood", "updated", c.clone(), 23), // not scored
        al("client_flood", "raised", c.clone(), 50), // end + window: still in
        al("client_flood", "raised", c.clone(), 51), // after: false
        al(
            "rate_anomaly",
            "raised",
            json!({"server": "192.0.2.53"}),
            30,
        ), // also
        al(
            "rate_anomaly",
            "raised",
            json!({"server": "192.0.2.54"}),
            30,
        ), // false
        al("client_flood", "raised", json!({"client": "10.0.0.2"}), 25), // false
    ];
    let s = score(&truth, &alerts, WINDOW_US);
    assert_eq!(s.delays, [Some(2 * MICROS)]);
    let v: Vec<Verdict> = s.raised.iter().map(|(_, v)| *v).collect();
    use Verdict::*;
    assert_eq!(
        v,
        [
            FalsePositive,
            Detects(0),
            Detects(0),
            FalsePositive,
            Also(0),
            FalsePositive,
            FalsePositive
        ]
    );
    assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), t0);
    assert_eq!(parse_rfc3339("1970-01-01T00:00:01.5Z"), 1_500_000);
    assert_eq!(
        parse_rfc3339("2000-02-29T00:00:00.000001Z"),
        951_782_400 * MICROS + 1
    );
}
