//! The deploy/ files against the metrics the program exports: the Prometheus
//! rules pass `promtool check rules`, the exposition passes `promtool check
//! metrics`, every metric name the dashboard, the rules and deploy/README.md
//! use is one `Metrics::new()` registers, and every label value is from a
//! closed set.
//!
//! promtool comes from the Debian package `prometheus`, which
//! scripts/install-deps.sh installs (scripts/test.sh runs it first). These
//! tests fail, not skip, without it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use dnsmonitor::alert::State;
use dnsmonitor::detect::{Kind, Severity};
use dnsmonitor::dns::DecodeError;
use dnsmonitor::metrics::Metrics;
use dnsmonitor::packet::PacketError;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    let p = root().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// promtool on PATH, or a failure that says how to get it.
fn promtool() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("promtool"))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => p,
        None => panic!(
            "promtool not found on PATH. It is in the Debian package `prometheus`: \
             run scripts/install-deps.sh (scripts/test.sh does) or `sudo apt-get install prometheus`"
        ),
    }
}

/// Runs promtool with `args`, `stdin` on its standard input; returns
/// (success, stdout + stderr).
fn run_promtool(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new(promtool())
        .args(args)
        .current_dir(root())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(text.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A registry with every kind of metric moved off zero.
fn busy_metrics() -> Metrics {
    let m = Metrics::new();
    m.packets.inc_by(1000);
    m.bytes.inc_by(123_456);
    m.dns_messages.with_label_values(&["query"]).inc_by(600);
    m.dns_messages.with_label_values(&["response"]).inc_by(390);
    m.parse_errors
        .with_label_values(&["packet", PacketError::TruncatedUdp.as_str()])
        .inc_by(7);
    m.parse_errors
        .with_label_values(&["dns", DecodeError::BadName.as_str()])
        .inc_by(3);
    m.late_messages.inc_by(2);
    m.time_jumps.inc();
    m.late_tallies.inc();
    m.alerts
        .with_label_values(&[Kind::ClientFlood.as_str(), "warning", "raised"])
        .inc();
    m.alerts
        .with_label_values(&[Kind::ClientFlood.as_str(), "critical", "updated"])
        .inc();
    m.active_alerts
        .with_label_values(&[Kind::ClientFlood.as_str()])
        .set(1);
    m.windows_closed.inc_by(60);
    m.event_time_lag.set(0.25);
    m.watermark.set(1_764_093_675.0);
    m.capture_drops.with_label_values(&["kernel"]).inc_by(5);
    m.capture_received.inc_by(1005);
    m.state_evictions.with_label_values(&["tcp_flows"]).inc();
    m.amqp_deliveries.with_label_values(&["received"]).inc();
    m.amqp_publishes.with_label_values(&["confirmed"]).inc();
    m.queue_depth.set(4);
    m.cluster_members.set(3);
    m.cluster_process_index.set(1);
    m.cluster_config_version.set(2);
    m.cluster_config_refused.inc();
    m.cluster_reforms.with_label_values(&["loss"]).inc();
    m.pipeline_reloads.with_label_values(&["applied"]).inc();
    m.set_zookeeper_session("connected");
    m
}

/// Metric names (`dnsmonitor_*`, `process_*`) mentioned in `text`, with
/// histogram/summary suffixes stripped when the base name is known.
fn referenced_names(text: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let b = text.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    let mut out = BTreeSet::new();
    let mut i = 0;
    while i < b.len() {
        let at_start = i == 0 || !ident(b[i - 1]);
        let prefix = ["dnsmonitor_", "process_"]
            .into_iter()
            .find(|p| b[i..].starts_with(p.as_bytes()));
        match prefix {
            Some(p) if at_start => {
                let mut j = i + p.len();
                while j < b.len()
                    && (b[j].is_ascii_lowercase() || b[j].is_ascii_digit() || b[j] == b'_')
                {
                    j += 1;
                }
                if j == i + p.len() {
                    // the bare prefix, as in "the `dnsmonitor_` prefix"
                    i = j;
                    continue;
                }
                let mut name = text[i..j].to_string();
                for suffix in ["_bucket", "_sum", "_count"] {
                    if let Some(base) = name.strip_suffix(suffix)
                        && known.contains(base)
                    {
                        name = base.to_string();
                    }
                }
                out.insert(name);
                i = j;
            }
            _ => i += 1,
        }
    }
    out
}

fn known_names() -> BTreeSet<String> {
    Metrics::new().names().into_iter().collect()
}

fn assert_all_known(what: &str, used: &BTreeSet<String>, known: &BTreeSet<String>) {
    let unknown: Vec<&String> = used.difference(known).collect();
    assert!(
        unknown.is_empty(),
        "{what} references metrics dnsmonitor does not export: {unknown:?}\nexported: {known:?}"
    );
}

#[test]
fn promtool_check_rules_passes() {
    let (ok, out) = run_promtool(&["check", "rules", "deploy/prometheus/rules.yml"], None);
    assert!(ok, "promtool check rules failed:\n{out}");
    assert!(out.contains("SUCCESS: 7 rules found"), "{out}");
}

/// `promtool test rules`: the newly_observed filter rule fires on a fill
/// held above 0.6 for an hour, with its labels, and not on one at 0.5 or
/// on a short spike.
#[test]
fn nod_filter_rule_fires_on_a_filling_filter_only() {
    let dir = tempfile::tempdir().unwrap();
    let test = dir.path().join("nod-rule-test.yml");
    let rules = root().join("deploy/prometheus/rules.yml");
    std::fs::write(
        &test,
        format!(
            r#"rule_files:
  - {rules}
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'dnsmonitor_nod_filter_fill_ratio{{instance="full:9100", job="dnsmonitor"}}'
        values: '0.7x120'
      - series: 'dnsmonitor_nod_filter_fill_ratio{{instance="half:9100", job="dnsmonitor"}}'
        values: '0.5x120'
      - series: 'dnsmonitor_nod_filter_fill_ratio{{instance="spike:9100", job="dnsmonitor"}}'
        values: '0.5x30 0.9x20 0.5x70'
    alert_rule_test:
      - eval_time: 50m
        alertname: DnsmonitorNodFilterFull
        exp_alerts: []
      - eval_time: 90m
        alertname: DnsmonitorNodFilterFull
        exp_alerts:
          - exp_labels:
              severity: warning
              instance: full:9100
              job: dnsmonitor
            exp_annotations:
              summary: "dnsmonitor full:9100: the newly_observed filter is 70% full"
              description: "The newly_observed Bloom filter has more than 60 % of its bits set (about 0.5 at its configured capacity). Its false-positive rate is the fill to the power of its hash count, so more and more new domains are taken for known ones and go unreported. Raise detectors.newly_observed.capacity, set forget_secs, or move filter_file away to start learning again (README, \"newly_observed\")."
"#,
            rules = rules.display()
        ),
    )
    .unwrap();
    let (ok, out) = run_promtool(&["test", "rules", test.to_str().unwrap()], None);
    assert!(ok, "promtool test rules failed:\n{out}");
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn promtool_check_metrics_is_clean() {
    let text = busy_metrics().render();
    let (ok, out) = run_promtool(&["check", "metrics"], Some(&text));
    assert!(
        ok && out.trim().is_empty(),
        "promtool check metrics:\n{out}\non:\n{text}"
    );
}

#[test]
fn dashboard_uses_only_exported_metrics() {
    let known = known_names();
    let text = read("deploy/grafana/dnsmonitor.json");
    let dash: serde_json::Value = serde_json::from_str(&text).expect("dashboard is JSON");
    assert_eq!(dash["uid"], "dnsmonitor");
    assert!(dash["schemaVersion"].as_u64().unwrap() >= 36);
    assert_eq!(dash["__inputs"][0]["name"], "DS_PROMETHEUS");
    assert_eq!(dash["__inputs"][0]["pluginId"], "prometheus");

    // every expr of every panel target
    let mut exprs = Vec::new();
    let mut ids = BTreeSet::new();
    for panel in dash["panels"].as_array().expect("panels") {
        assert!(
            ids.insert(panel["id"].as_u64().unwrap()),
            "duplicate panel id"
        );
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(
            panel["datasource"]["uid"], "${DS_PROMETHEUS}",
            "{}",
            panel["title"]
        );
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{}", panel["title"]);
        for t in targets {
            let e = t["expr"].as_str().expect("expr");
            assert!(!e.is_empty());
            exprs.push(e.to_string());
        }
    }
    let mut used = BTreeSet::new();
    for e in &exprs {
        let names = referenced_names(e, &known);
        assert!(!names.is_empty(), "expr names no dnsmonitor metric: {e}");
        used.extend(names);
    }
    assert_all_known("dashboard expr", &used, &known);
    // and anything else in the file (variables, descriptions)
    assert_all_known("dashboard", &referenced_names(&text, &known), &known);

    // the panels the dashboard is for
    for name in [
        "dnsmonitor_packets_total",
        "dnsmonitor_dns_messages_total",
        "dnsmonitor_parse_errors_total",
        "dnsmonitor_alerts_total",
        "dnsmonitor_active_alerts",
        "dnsmonitor_event_time_lag_seconds",
        "dnsmonitor_capture_drops_total",
        "dnsmonitor_amqp_deliveries_total",
        "dnsmonitor_amqp_publishes_total",
        "dnsmonitor_state_evictions_total",
        "process_resident_memory_bytes",
    ] {
        assert!(used.contains(name), "no panel shows {name}");
    }
}

#[test]
fn rules_use_only_exported_metrics() {
    let known = known_names();
    let text = read("deploy/prometheus/rules.yml");
    let used = referenced_names(&text, &known);
    assert_all_known("rules.yml", &used, &known);
    for name in [
        "dnsmonitor_capture_drops_total",
        "dnsmonitor_event_time_lag_seconds",
        "dnsmonitor_alerts_total",
        "dnsmonitor_parse_errors_total",
        "dnsmonitor_packets_total",
        "dnsmonitor_nod_filter_fill_ratio",
    ] {
        assert!(used.contains(name), "rules do not use {name}");
    }
    assert!(text.contains("up{job=\"dnsmonitor\"} == 0"));
    // each rule has a severity label and both annotations
    let rules: Vec<&str> = text.split("- alert: ").skip(1).collect();
    let names: Vec<&str> = rules
        .iter()
        .map(|r| r.lines().next().unwrap().trim())
        .collect();
    assert_eq!(
        names,
        [
            "DnsmonitorDown",
            "DnsmonitorCaptureDrops",
            "DnsmonitorLagGrowing",
            "DnsmonitorCriticalAlerts",
            "DnsmonitorParseErrorsHigh",
            "DnsmonitorLateTallies",
            "DnsmonitorNodFilterFull"
        ]
    );
    for r in rules {
        for field in ["severity: ", "summary: ", "description: "] {
            assert!(r.contains(field), "rule without {field}: {r}");
        }
    }
}

#[test]
fn readme_table_lists_every_metric() {
    let known = known_names();
    let text = read("deploy/README.md");
    assert_all_known("deploy/README.md", &referenced_names(&text, &known), &known);
    for spec in dnsmonitor::metrics::MetricName::ALL.map(|m| m.spec()) {
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", spec.name)))
            .unwrap_or_else(|| panic!("deploy/README.md has no table row for {}", spec.name));
        assert!(
            row.contains(&format!("| {} |", spec.metric_type.as_str())),
            "{row}"
        );
        for label in spec.labels {
            assert!(row.contains(&format!("`{label}`")), "{row}");
        }
    }
    assert!(text.contains("process_resident_memory_bytes"));
}

/// Allowed values for each label name, built from the crate's enums and
/// the documented closed sets (independently of the metrics module).
fn closed_sets() -> BTreeMap<&'static str, BTreeSet<String>> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<BTreeSet<_>>();
    let mut reasons: BTreeSet<String> =
        PacketError::ALL.iter().map(|e| e.as_str().into()).collect();
    reasons.extend(DecodeError::ALL.iter().map(|e| e.as_str().to_string()));
    reasons.extend(
        dnsmonitor::dnstap::DnstapError::ALL
            .iter()
            .map(|e| e.as_str().to_string()),
    );
    BTreeMap::from([
        ("qr", s(&["query", "response"])),
        (
            "rcode",
            s(&[
                "noerror", "formerr", "servfail", "nxdomain", "notimp", "refused", "other",
            ]),
        ),
        (
            "type",
            dnsmonitor::dnstap::MessageType::ALL
                .iter()
                .map(|t| t.as_str().to_string())
                .collect(),
        ),
        ("layer", s(&["packet", "dns"])),
        ("reason", reasons),
        (
            "kind",
            Kind::ALL.iter().map(|k| k.as_str().into()).collect(),
        ),
        (
            "severity",
            [Severity::Info, Severity::Warning, Severity::Critical]
                .iter()
                .map(|x| x.as_str().into())
                .collect(),
        ),
        (
            "state",
            [State::Raised, State::Updated, State::Resolved]
                .iter()
                .map(|x| x.as_str().into())
                .collect(),
        ),
        ("where", s(&["kernel", "interface"])),
        (
            "table",
            s(&[
                "fragments",
                "tcp_flows",
                "tcp_bytes",
                "top_names",
                "window_keys",
                "pending_queries",
            ]),
        ),
        (
            "outcome",
            s(&[
                "received",
                "acked",
                "rejected",
                "duplicate",
                "confirmed",
                "failed",
                "dropped",
            ]),
        ),
        ("version", s(&[env!("CARGO_PKG_VERSION")])),
        ("result", s(&["applied", "refused"])),
        ("cause", s(&["loss", "grow"])),
        (
            "session_state",
            s(&[
                "connected",
                "disconnected",
                "readonly",
                "expired",
                "auth_failed",
                "closed",
            ]),
        ),
    ])
}

#[test]
fn label_values_come_from_closed_sets() {
    let allowed = closed_sets();
    let text = busy_metrics().render();
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let series = line.rsplit_once(' ').expect("value").0;
        let Some((_, labels)) = series.split_once('{') else {
            continue;
        };
        let labels = labels.strip_suffix('}').expect("closing brace");
        for pair in labels.split(',') {
            let (k, v) = pair.split_once('=').expect("label pair");
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .expect("quoted");
            let Some(values) = allowed.get(k) else {
                panic!("label {k} is not a known closed set: {line}");
            };
            assert!(
                values.contains(v),
                "label {k}={v:?} not in {values:?}: {line}"
            );
            seen.entry(k.to_string()).or_default().insert(v.to_string());
        }
    }
    // and every value of every set is pre-created (series exist from start)
    for (k, values) in &allowed {
        assert_eq!(seen.get(*k), Some(values), "label {k}");
    }
}
