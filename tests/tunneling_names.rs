//! `tunneling`'s name signals against the labelled name sets of
//! `../shared/data/blocklists/labeled` (real tunnel tools' query names and
//! plain names): per name (`name_signals`, `key_labels`) and per window of
//! 20 queries built as the map side would (`Detector::evaluate`). These read
//! the shared data, so they live here rather than in `src/detect/`.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use dnsmonitor::detect::spec::built;
use dnsmonitor::detect::tunneling::{Tunneling, key_labels, name_signals};
use dnsmonitor::detect::{Detector, Finding, Key, Tally, WindowView};
use dnsmonitor::dns::name::{QName, registered_labels};

fn labeled(file: &str) -> PathBuf {
    common::shared("blocklists/labeled").join(file)
}

fn detector() -> Tunneling {
    built(Tunneling::from_spec)
}

/// Evaluate as the reduce side does: counters first, the full view only
/// when asked for.
fn eval(d: &Tunneling, key: &Key, t: &Tally) -> Option<Finding> {
    let mut counts = Tally::default();
    counts.add_counts(t);
    let view = |tally| WindowView {
        tally,
        window_secs: 10.0,
        baseline: None,
        panes: &[],
        end: 0,
        slide_secs: 1.0,
    };
    if d.needs_full_view(&counts, 10.0) {
        d.evaluate(key, &view(t))
    } else {
        assert!(d.evaluate(key, &view(&counts)).is_none());
        None
    }
}

/// A name from a labeled file as the DNS would have carried it: empty
/// labels dropped, each character one byte (the files decode iodine's
/// raw bytes as single characters), labels cut at 63 bytes. `None`
/// when it does not fit a DNS name.
fn lenient_qname(text: &str) -> Option<QName> {
    let mut q = QName::new();
    for label in text
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        let bytes: Vec<u8> = label
            .chars()
            .map(|c| (c as u32).min(255) as u8)
            .take(63)
            .collect();
        q.push_label(&bytes).ok()?;
    }
    (!q.is_root()).then_some(q)
}

/// Names of a labeled file (`label,qname` CSV with or without header,
/// or one domain per line), keeping rows whose label is `want`.
fn read_names(file: &str, want: Option<&str>) -> Vec<String> {
    let path = labeled(file);
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let text = String::from_utf8_lossy(&text);
    text.lines()
        .filter(|l| !l.is_empty() && *l != "label,qname")
        .filter_map(|l| match want {
            None => Some(l.to_string()),
            Some(w) => {
                let (label, name) = l.split_once(',')?;
                (label == w).then(|| name.to_string())
            }
        })
        .collect()
}

struct Agreement {
    names: usize,
    skipped: usize,
    flagged: usize,
    avg_bytes: f64,
}

fn agreement(names: &[String]) -> Agreement {
    let mut a = Agreement {
        names: 0,
        skipped: 0,
        flagged: 0,
        avg_bytes: 0.0,
    };
    let mut bytes = 0u64;
    for n in names {
        let Some(q) = lenient_qname(n) else {
            a.skipped += 1;
            continue;
        };
        let Some(k) = key_labels(&q, || registered_labels(&q)) else {
            a.skipped += 1;
            continue;
        };
        let s = name_signals(&q, k);
        a.names += 1;
        a.flagged += s.long as usize;
        bytes += s.label_bytes;
    }
    a.avg_bytes = bytes as f64 / a.names.max(1) as f64;
    a
}

/// Per-name agreement of the `long_labels` signal with the labels of
/// the shared sets: tunnel names flagged, plain names not flagged.
#[test]
fn tunneling_per_name_agreement() {
    let sets: [(&str, &str, Option<&str>, bool, f64); 8] = [
        (
            "dns2tcp",
            "netrack-dns2tcp-names.csv",
            Some("1"),
            true,
            0.60,
        ),
        (
            "dnscapy",
            "netrack-dnscapy-names.csv",
            Some("1"),
            true,
            0.95,
        ),
        ("iodine", "netrack-iodine-names.csv", Some("1"), true, 0.95),
        (
            "tunnel-qnames (1)",
            "netrack-tunnel-qnames-test.csv",
            Some("1"),
            true,
            0.45,
        ),
        ("plain", "netrack-plain-names.csv", Some("0"), false, 0.995),
        (
            "tunnel-qnames (0)",
            "netrack-tunnel-qnames-test.csv",
            Some("0"),
            false,
            0.97,
        ),
        ("ndpi non-DGA", "ndpi-test_non_dga.txt", None, false, 0.995),
        ("ndpi DGA", "ndpi-test_dga.txt", None, false, 0.99),
    ];
    println!("set                  names skipped  flagged  agreement  avg sub-label bytes");
    for (name, file, want, tunnel, min_agree) in sets {
        let names = read_names(file, want);
        let a = agreement(&names);
        let agree = if tunnel {
            a.flagged
        } else {
            a.names - a.flagged
        } as f64
            / a.names as f64;
        println!(
            "{name:<20} {:>5} {:>7} {:>8} {:>10.4} {:>10.1}",
            a.names, a.skipped, a.flagged, agree, a.avg_bytes
        );
        assert!(a.names > 1000, "{name}: {} names", a.names);
        assert!(
            agree >= min_agree,
            "{name}: agreement {agree:.4} < {min_agree}"
        );
    }
}

/// The names of `names` as one client's queries, cut per key domain (in
/// file order) into windows of `per_window` queries; the fraction of
/// windows that fire (10 s windows).
fn window_fire_rate(d: &Tunneling, names: &[String], per_window: usize) -> (usize, usize) {
    let mut by_domain: HashMap<String, Vec<QName>> = HashMap::new();
    for n in names {
        let Some(q) = lenient_qname(n) else { continue };
        let Some(k) = key_labels(&q, || registered_labels(&q)) else {
            continue;
        };
        by_domain
            .entry(q.suffix(k).to_lowercase_string())
            .or_default()
            .push(q);
    }
    let (mut windows, mut fired) = (0, 0);
    let mut domains: Vec<_> = by_domain.into_iter().collect();
    domains.sort_by(|a, b| a.0.cmp(&b.0));
    for (dom, qs) in domains {
        for chunk in qs.chunks(per_window) {
            if chunk.len() < per_window {
                continue;
            }
            let mut t = Tally::default();
            for q in chunk {
                let k = key_labels(q, || registered_labels(q)).unwrap();
                let s = name_signals(q, k);
                if s.label_bytes == 0 {
                    continue;
                }
                t.queries += 1;
                t.label_bytes += s.label_bytes;
                t.long_labels += s.long as u64;
                t.entropy_milli += s.entropy_milli;
                t.distinct_mut().insert(q.hash());
            }
            windows += 1;
            let key = Key::ClientDomain("10.0.0.1".parse().unwrap(), dom.clone().into());
            fired += eval(d, &key, &t).is_some() as usize;
        }
    }
    (windows, fired)
}

/// Window-level agreement on the labeled sets: each tunnel tool's names
/// (file order) cut into windows of 20 queries (`min_queries`: the
/// smallest window that can fire) from one client; benign names grouped
/// by registered domain, 20 distinct names of one domain per window (far
/// more than a browsing client asks for in 10 s). `tunnel-qnames (1)` is
/// mostly tuns, whose polls (`r51646.tunnel.tuns.org`, 60 % of its
/// queries) keep many windows under `min_long_ratio`.
#[test]
fn tunneling_window_agreement() {
    let d = detector();
    let sets: [(&str, &str, Option<&str>, bool, f64); 7] = [
        (
            "dns2tcp",
            "netrack-dns2tcp-names.csv",
            Some("1"),
            true,
            0.95,
        ),
        (
            "dnscapy",
            "netrack-dnscapy-names.csv",
            Some("1"),
            true,
            0.95,
        ),
        ("iodine", "netrack-iodine-names.csv", Some("1"), true, 0.95),
        (
            "tunnel-qnames (1)",
            "netrack-tunnel-qnames-test.csv",
            Some("1"),
            true,
            0.35,
        ),
        (
            "tunnel-qnames-train (1)",
            "netrack-tunnel-qnames-train.csv",
            Some("1"),
            true,
            0.65,
        ),
        (
            "tunnel-qnames (0)",
            "netrack-tunnel-qnames-test.csv",
            Some("0"),
            false,
            1.0,
        ),
        ("ndpi non-DGA", "ndpi-test_non_dga.txt", None, false, 1.0),
    ];
    println!("set                      windows  fired  agreement");
    for (name, file, want, tunnel, min_agree) in sets {
        let names = read_names(file, want);
        let (windows, fired) = window_fire_rate(&d, &names, 20);
        let agree = if tunnel { fired } else { windows - fired } as f64 / windows.max(1) as f64;
        println!("{name:<24} {windows:>7} {fired:>6} {agree:>10.3}");
        assert!(windows > 0, "{name}: no window");
        assert!(agree >= min_agree, "{name}: {agree:.3} < {min_agree}");
    }
}
