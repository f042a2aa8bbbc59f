//! `client_flood`: one client sends too many queries. Key: the client
//! address (the source of queries). Observed: queries per second over the
//! window; warning and critical tiers.
//!
//! Heavy legitimate clients (a NAT, a forwarder) are judged against their
//! own learned baseline: a client with a pane of at least `learn_min_qps`
//! gets state and the engine learns its window rate (EWMA mean and
//! deviation, `detect::Baseline`, only on windows without a finding). Once
//! `baseline_windows` are learned, the mean is at least `learn_min_qps`, the
//! rate was steady (deviation at most `baseline_max_deviation` of the mean)
//! and the window's mix is normal (at most `baseline_max_error_ratio` of the
//! responses to the client are NXDOMAIN or SERVFAIL), the warning threshold
//! is `baseline_headroom` times the mean (never above `baseline_max_qps`,
//! never below `warning_qps`) and critical moves with it. A client without
//! such a history — a new flooder — meets the fixed tiers in its first
//! window. `allow_clients` (addresses and prefixes) are never counted.
//!
//! Tally fields used: `queries`, `bytes` (query bytes), samples;
//! `responses`, `nxdomain`, `servfail` (responses to the client: its mix).

use serde::Deserialize;
use serde_json::json;

use super::nxdomain_flood::{RCODE_NXDOMAIN, RCODE_SERVFAIL};
use super::spec::{Check, NetList, defaults, yes};
use super::{Detector, Finding, Key, KeyRef, Kind, Observed, Severity, TallySink, WindowView};
use crate::spec::{ConfigError, Located};

/// `[detectors.client_flood]` in a pipeline file.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientFloodSpec {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Queries per second (averaged over the window) for a warning.
    #[serde(default = "default_warning")]
    pub warning_qps: toml::Spanned<f64>,
    /// Queries per second for a critical alert; must be >= warning_qps.
    #[serde(default = "default_critical")]
    pub critical_qps: toml::Spanned<f64>,
    /// Clients (addresses or prefixes) this detector never counts.
    #[serde(default)]
    pub allow_clients: Vec<toml::Spanned<String>>,
    /// Least rate (queries/s in one pane, and learned mean) for a client's
    /// baseline to be learned and used (> 0).
    #[serde(default = "default_learn_min_qps")]
    pub learn_min_qps: toml::Spanned<f64>,
    /// Windows learned before the baseline is used (>= 1).
    #[serde(default = "default_baseline_windows")]
    pub baseline_windows: toml::Spanned<u64>,
    /// Warning threshold of a learned client = this times its mean (> 0).
    #[serde(default = "default_baseline_headroom")]
    pub baseline_headroom: toml::Spanned<f64>,
    /// Steady: learned deviation at most this share of the mean, in (0, 1].
    #[serde(default = "default_baseline_max_deviation")]
    pub baseline_max_deviation: toml::Spanned<f64>,
    /// Normal mix: NXDOMAIN + SERVFAIL share of the window's responses to
    /// the client at most this, in (0, 1].
    #[serde(default = "default_baseline_max_error_ratio")]
    pub baseline_max_error_ratio: toml::Spanned<f64>,
    /// A learned warning threshold never exceeds this (queries/s, >=
    /// warning_qps): past it only `allow_clients` exempts a client.
    #[serde(default = "default_baseline_max_qps")]
    pub baseline_max_qps: toml::Spanned<f64>,
}

defaults! {
    default_warning: f64 = 100.0;
    default_critical: f64 = 300.0;
    default_learn_min_qps: f64 = 20.0;
    default_baseline_windows: u64 = 60;
    default_baseline_headroom: f64 = 3.0;
    default_baseline_max_deviation: f64 = 0.5;
    default_baseline_max_error_ratio: f64 = 0.2;
    default_baseline_max_qps: f64 = 1000.0;
}

impl Default for ClientFloodSpec {
    fn default() -> Self {
        ClientFloodSpec {
            enabled: true,
            warning_qps: default_warning(),
            critical_qps: default_critical(),
            allow_clients: Vec::new(),
            learn_min_qps: default_learn_min_qps(),
            baseline_windows: default_baseline_windows(),
            baseline_headroom: default_baseline_headroom(),
            baseline_max_deviation: default_baseline_max_deviation(),
            baseline_max_error_ratio: default_baseline_max_error_ratio(),
            baseline_max_qps: default_baseline_max_qps(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct ClientFlood {
    pub warning_qps: f64,
    pub critical_qps: f64,
    pub allow_clients: NetList,
    pub learn_min_qps: f64,
    pub baseline_windows: u64,
    pub baseline_headroom: f64,
    pub baseline_max_deviation: f64,
    pub baseline_max_error_ratio: f64,
    pub baseline_max_qps: f64,
}

impl ClientFlood {
    /// Validate `spec`; `None` when disabled or invalid (errors pushed).
    pub fn from_spec(
        spec: &ClientFloodSpec,
        loc: &Located<'_>,
        errors: &mut Vec<ConfigError>,
    ) -> Option<ClientFlood> {
        if !spec.enabled {
            return None;
        }
        let mut check = Check::new(Kind::ClientFlood, loc, errors);
        let w = check.positive("warning_qps", &spec.warning_qps);
        let c = check.at_least("critical_qps", &spec.critical_qps, w, "warning_qps");
        let allow_clients = check.nets("allow_clients", &spec.allow_clients);
        let learn_min_qps = check.positive("learn_min_qps", &spec.learn_min_qps);
        let baseline_windows = check.at_least_one("baseline_windows", &spec.baseline_windows);
        let baseline_headroom = check.positive("baseline_headroom", &spec.baseline_headroom);
        let baseline_max_deviation =
            check.ratio("baseline_max_deviation", &spec.baseline_max_deviation);
        let baseline_max_error_ratio =
            check.ratio("baseline_max_error_ratio", &spec.baseline_max_error_ratio);
        // Below warning_qps the learned bar can never rise above the fixed
        // one: the baseline is simply off (a pipeline that only raised
        // warning_qps stays valid).
        let baseline_max_qps = check.positive("baseline_max_qps", &spec.baseline_max_qps);
        check.ok().then_some(ClientFlood {
            warning_qps: w,
            critical_qps: c,
            allow_clients,
            learn_min_qps,
            baseline_windows,
            baseline_headroom,
            baseline_max_deviation,
            baseline_max_error_ratio,
            baseline_max_qps,
        })
    }

    /// The warning and critical thresholds for this window, and the
    /// baseline mean when a learned one raised them.
    fn thresholds(&self, w: &WindowView<'_>) -> (f64, f64, Option<f64>) {
        let fixed = (self.warning_qps, self.critical_qps, None);
        let Some(b) = w.baseline else {
            return fixed;
        };
        let t = w.tally;
        let errors = t.nxdomain + t.servfail;
        let normal_mix = errors as f64 <= self.baseline_max_error_ratio * t.responses as f64;
        let steady = b.deviation <= self.baseline_max_deviation * b.mean;
        if b.windows < self.baseline_windows
            || b.mean < self.learn_min_qps
            || !steady
            || !normal_mix
        {
            return fixed;
        }
        let learned = (b.mean * self.baseline_headroom).min(self.baseline_max_qps);
        if learned <= self.warning_qps {
            return fixed;
        }
        let critical = self.critical_qps * learned / self.warning_qps;
        (learned, critical, Some(b.mean))
    }
}

impl Detector for ClientFlood {
    fn kind(&self) -> Kind {
        Kind::ClientFlood
    }

    fn observe(&self, m: &Observed<'_, '_>, sink: &mut dyn TallySink) {
        if m.msg.qr {
            // The client's mix: responses to it, and how many failed.
            let client = m.payload.dst;
            if self.allow_clients.contains(client) {
                return;
            }
            let t = sink.tally(KeyRef::Client(client));
            t.responses += 1;
            match m.msg.rcode {
                RCODE_NXDOMAIN => t.nxdomain += 1,
                RCODE_SERVFAIL => t.servfail += 1,
                _ => {}
            }
            return;
        }
        if self.allow_clients.contains(m.payload.src) {
            return;
        }
        let t = sink.tally(KeyRef::Client(m.payload.src));
        t.queries += 1;
        t.bytes += m.msg.size as u64;
        if let Some(q) = &m.msg.question {
            t.offer_qname(&q.qname);
        }
    }

    /// Sound: a window at `warning_qps` needs a pane at that rate; below it
    /// down to `learn_min_qps` a client gets state so its baseline learns.
    fn pane_may_fire(&self, pane: &crate::detect::Tally, slide_secs: f64, _panes: u64) -> bool {
        super::pane_share(
            pane.queries,
            self.warning_qps.min(self.learn_min_qps),
            slide_secs,
        )
    }

    fn measure(&self, w: &WindowView<'_>) -> f64 {
        w.tally.queries as f64 / w.window_secs
    }

    fn evaluate(&self, _key: &Key, w: &WindowView<'_>) -> Option<Finding> {
        let qps = self.measure(w);
        let (warning, critical, learned) = self.thresholds(w);
        let (severity, threshold) = if qps >= critical {
            (Severity::Critical, critical)
        } else if qps >= warning {
            (Severity::Warning, warning)
        } else {
            return None;
        };
        let mut evidence = json!({
            "queries": w.tally.queries,
            "query_bytes": w.tally.bytes,
            "window_secs": w.window_secs,
            "warning_qps": warning,
            "critical_qps": critical,
            "sample_qnames": w.tally.sample_names(),
        });
        if let Some(mean) = learned {
            evidence["baseline_mean"] = json!(mean);
        }
        Some(Finding {
            severity,
            observed: qps,
            threshold,
            unit: "queries/s",
            evidence: evidence.as_object().cloned().unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Tally;

    #[test]
    fn tiers() {
        let d = super::super::spec::built(ClientFlood::from_spec);
        let key = Key::Client("10.0.0.1".parse().unwrap());
        let eval = |queries| {
            let t = Tally {
                queries,
                ..Tally::default()
            };
            d.evaluate(
                &key,
                &WindowView {
                    tally: &t,
                    window_secs: 10.0,
                    baseline: None,
                    panes: &[],
                    end: 0,
                    slide_secs: 1.0,
                },
            )
        };
        assert!(eval(999).is_none());
        assert_eq!(eval(1000).unwrap().severity, Severity::Warning);
        let f = eval(3500).unwrap();
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.observed, 350.0);
        assert_eq!(f.threshold, 300.0);
    }

    /// A forwarder learned at a steady 60 q/s is judged against 3x that; a
    /// new client (no baseline), an unsteady one, one whose mix turned to
    /// failures, or one still warming up, meets the fixed tiers.
    #[test]
    fn learned_baseline_raises_the_bar_for_heavy_clients() {
        use crate::detect::Baseline;
        let d = super::super::spec::built(ClientFlood::from_spec);
        let key = Key::Client("10.1.200.1".parse().unwrap());
        let mut steady = Baseline::default();
        for i in 0..80 {
            steady.learn(60.0 + (i % 3) as f64);
        }
        let eval = |queries: u64, nx: u64, b: Option<&Baseline>| {
            let t = Tally {
                queries,
                responses: queries,
                nxdomain: nx,
                ..Tally::default()
            };
            d.evaluate(
                &key,
                &WindowView {
                    tally: &t,
                    window_secs: 10.0,
                    baseline: b,
                    panes: &[],
                    end: 0,
                    slide_secs: 1.0,
                },
            )
        };
        // 120 q/s: twice its normal, not a flood for this client.
        assert!(eval(1200, 20, Some(&steady)).is_none());
        // The same rate from a client with no history: the fixed warning.
        let f = eval(1200, 20, None).expect("new client");
        assert_eq!((f.severity, f.threshold), (Severity::Warning, 100.0));
        // Past 3x its mean the forwarder is flooding too.
        let f = eval(2000, 0, Some(&steady)).expect("3x its baseline");
        assert_eq!(f.severity, Severity::Warning);
        assert!((f.threshold - 3.0 * steady.mean).abs() < 1e-9);
        assert!(f.evidence["baseline_mean"].as_f64().unwrap() > 60.0);
        let f = eval(9000, 0, Some(&steady)).expect("critical scales");
        assert_eq!(f.severity, Severity::Critical);
        assert!((f.threshold - 9.0 * steady.mean).abs() < 1e-9);
        // Half its responses failing: not its normal mix.
        assert!(eval(1200, 600, Some(&steady)).is_some());
        // Warming up (59 windows) or unsteady: fixed tiers.
        let mut young = Baseline::default();
        for _ in 0..59 {
            young.learn(60.0);
        }
        assert!(eval(1200, 0, Some(&young)).is_some());
        let mut jumpy = Baseline::default();
        for i in 0..80 {
            jumpy.learn(if i % 2 == 0 { 5.0 } else { 150.0 });
        }
        assert!(eval(1200, 0, Some(&jumpy)).is_some());
        // The learned bar is capped at baseline_max_qps.
        let mut huge = Baseline::default();
        for _ in 0..80 {
            huge.learn(800.0);
        }
        let f = eval(12_000, 0, Some(&huge)).expect("above the cap");
        assert_eq!(f.threshold, 1000.0);
    }

    #[test]
    fn allow_clients_are_never_counted() {
        use crate::detect::test_support::*;
        use crate::packet::frame::{FrameBuilder, qtype};
        let text = "[detectors.client_flood]\nallow_clients = [\"10.1.200.1\", \"192.0.2.0/24\", \"2001:db8::/32\"]\n";
        let (d, errors) = validate_table(text, "client_flood", ClientFlood::from_spec);
        assert!(errors.is_empty(), "{errors:?}");
        let d = d.unwrap();
        let mut fb = FrameBuilder::new();
        let q = fb
            .query_message(1, "www.example.com", qtype::A, false)
            .to_vec();
        let mut sink = Sink::default();
        for src in ["10.1.200.1", "192.0.2.77", "2001:db8:5::1", "10.1.200.2"] {
            observe(&d, &mut sink, at(src, 4000), at("192.0.2.53", 53), &q, None);
        }
        let keys: Vec<_> = sink.0.keys().cloned().collect();
        assert_eq!(keys, [Key::Client("10.1.200.2".parse().unwrap())]);
        let bad = "[detectors.client_flood]\nallow_clients = [\"10.1.200.1\", \"not-an-ip\", \"10.0.0.0/33\"]\n";
        let (d, errors) = validate_table(bad, "client_flood", ClientFlood::from_spec);
        assert!(d.is_none());
        assert_eq!(
            key_lines(&errors),
            [
                ("detectors.client_flood.allow_clients", 2),
                ("detectors.client_flood.allow_clients", 2)
            ]
        );
        assert!(errors[0].to_string().contains("not-an-ip"), "{}", errors[0]);
    }
}
