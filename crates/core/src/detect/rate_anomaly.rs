//! `rate_anomaly`: a DNS server's query rate jumps far above its own
//! learned normal — a flood that per-client thresholds miss because it is
//! spread over many sources, or any sudden load.
//!
//! Key: the server, the destination of queries (`Key::Server`).
//! Tally fields: `queries`; sample query names.
//! Observed: queries per second over the window.
//!
//! Fires only after warm-up (the key's baseline has learned
//! `warmup_windows` windows) when `qps >= min_qps` and
//! `qps >= mean + margin`, `margin = deviations × max(deviation, 0.1 × mean)`.
//! Critical at `mean + 2 × margin` (and at least `min_qps`).
//!
//! Slow ramps: a rate that climbs over minutes drags the EWMA mean and
//! inflates the deviation, so the margin rule above never catches it (and
//! windows below `min_qps` are learned as normal). The ramp rule compares
//! the rate with the lowest mean the baseline had in its history (sampled
//! every 30 learned windows, the last 8: about 4 minutes at 1 s slides,
//! `detect::Baseline::history`): `qps >= min_qps` and `qps >= ramp_factor ×
//! that low` is a warning (evidence `rule = "ramp"`, `reference_mean`).
//!
//! The engine learns the baseline only on windows without a finding (an
//! attack is not learned as normal) and keeps it while the key has panes in
//! the window: a server needs `warmup_windows` slides of continuous traffic
//! before this detector can speak, and forgets its normal after a whole
//! window of silence.

use serde::Deserialize;
use serde_json::json;

use super::spec::{Check, built, defaults, yes};
use super::{Detector, Finding, Key, KeyRef, Kind, Observed, Severity, TallySink, WindowView};
use crate::spec::{ConfigError, Located};

/// `[detectors.rate_anomaly]` in a pipeline file.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateAnomalySpec {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Least queries per second to one server for any alert.
    #[serde(default = "default_min_qps")]
    pub min_qps: toml::Spanned<f64>,
    /// How many deviations above the baseline mean.
    #[serde(default = "default_deviations")]
    pub deviations: toml::Spanned<f64>,
    /// Windows learned before the baseline is used.
    #[serde(default = "default_warmup_windows")]
    pub warmup_windows: toml::Spanned<u64>,
    /// Ramp rule: rate at least this times the lowest mean of the last
    /// minutes (> 1).
    #[serde(default = "default_ramp_factor")]
    pub ramp_factor: toml::Spanned<f64>,
}

defaults! {
    default_min_qps: f64 = 200.0;
    default_deviations: f64 = 6.0;
    default_warmup_windows: u64 = 60;
    default_ramp_factor: f64 = 3.0;
}

impl Default for RateAnomalySpec {
    fn default() -> Self {
        RateAnomalySpec {
            enabled: true,
            min_qps: default_min_qps(),
            deviations: default_deviations(),
            warmup_windows: default_warmup_windows(),
            ramp_factor: default_ramp_factor(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct RateAnomaly {
    pub min_qps: f64,
    pub deviations: f64,
    pub warmup_windows: u64,
    pub ramp_factor: f64,
}

impl Default for RateAnomaly {
    fn default() -> Self {
        built(Self::from_spec)
    }
}

impl RateAnomaly {
    /// Validate `spec`; `None` when disabled or invalid (errors pushed).
    pub fn from_spec(
        spec: &RateAnomalySpec,
        loc: &Located<'_>,
        errors: &mut Vec<ConfigError>,
    ) -> Option<RateAnomaly> {
        let mut check = Check::new(Kind::RateAnomaly, loc, errors);
        let q = check.positive("min_qps", &spec.min_qps);
        let dev = check.positive("deviations", &spec.deviations);
        let warm = check.positive_int("warmup_windows", &spec.warmup_windows);
        let ramp_factor = check.require(
            "ramp_factor",
            &spec.ramp_factor,
            |x| x.is_finite() && x > 1.0,
            "must be a number > 1",
        );
        if !spec.enabled || !check.ok() {
            return None;
        }
        Some(RateAnomaly {
            min_qps: q,
            deviations: dev,
            warmup_windows: warm,
            ramp_factor,
        })
    }
}

impl Detector for RateAnomaly {
    fn kind(&self) -> Kind {
        Kind::RateAnomaly
    }

    fn observe(&self, m: &Observed<'_, '_>, sink: &mut dyn TallySink) {
        if m.msg.qr {
            return;
        }
        let t = sink.tally(KeyRef::Server(m.payload.dst));
        t.queries += 1;
        if let Some(q) = &m.msg.question {
            t.offer_qname(&q.qname);
        }
    }

    fn measure(&self, w: &WindowView<'_>) -> f64 {
        w.tally.queries as f64 / w.window_secs
    }

    fn evaluate(&self, _key: &Key, w: &WindowView<'_>) -> Option<Finding> {
        let b = w.baseline.filter(|b| b.windows >= self.warmup_windows)?;
        let qps = self.measure(w);
        if qps < self.min_qps {
            return None;
        }
        let margin = self.deviations * b.deviation.max(0.1 * b.mean);
        let warning = (b.mean + margin).max(self.min_qps);
        let critical = (b.mean + 2.0 * margin).max(self.min_qps);
        let ramp_low = b.history_low();
        let ramp = ramp_low.map(|low| (self.ramp_factor * low).max(self.min_qps));
        let (severity, threshold, rule) = if qps >= critical {
            (Severity::Critical, critical, "margin")
        } else if qps >= warning {
            (Severity::Warning, warning, "margin")
        } else if let Some(r) = ramp
            && qps >= r
        {
            (Severity::Warning, r, "ramp")
        } else {
            return None;
        };
        let evidence = json!({
            "rule": rule,
            "reference_mean": ramp_low,
            "ramp_factor": self.ramp_factor,
            "qps": qps,
            "queries": w.tally.queries,
            "window_secs": w.window_secs,
            "baseline_mean": b.mean,
            "baseline_deviation": b.deviation,
            "baseline_windows": b.windows,
            "margin": margin,
            "warning_qps": warning,
            "critical_qps": critical,
            "min_qps": self.min_qps,
            "deviations": self.deviations,
            "sample_qnames": w.tally.sample_names(),
        });
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
    use crate::detect::test_support::*;
    use crate::detect::{Baseline, Tally};

    fn server() -> Key {
        Key::Server("198.51.100.53".parse().unwrap())
    }

    fn eval(d: &RateAnomaly, queries: u64, b: Option<Baseline>) -> Option<Finding> {
        let t = Tally {
            queries,
            ..Tally::default()
        };
        d.evaluate(
            &server(),
            &WindowView {
                tally: &t,
                window_secs: 10.0,
                baseline: b.as_ref(),
                panes: &[],
                end: 0,
                slide_secs: 1.0,
            },
        )
    }

    fn warm(mean: f64, deviation: f64) -> Option<Baseline> {
        Some(Baseline {
            mean,
            deviation,
            windows: 60,
            history: Default::default(),
        })
    }

    #[test]
    fn observe_counts_queries_to_the_server() {
        let d = RateAnomaly::default();
        let mut s = Sink::default();
        let (c, srv) = (sa("10.0.0.1:40000"), sa("198.51.100.53:53"));
        queries(&d, &mut s, c, srv, 7, "www.example.com", 1);
        responses(&d, &mut s, srv, c, 7, "www.example.com", 1, 0, None);
        assert_eq!(s.0.len(), 1);
        let t = s.get(&server());
        assert_eq!(t.queries, 7);
        assert_eq!(t.responses, 0);
        assert_eq!(t.sample_names(), ["www.example.com"]);
    }

    #[test]
    fn tiers_over_a_warm_baseline() {
        let d = RateAnomaly::default();
        // Normal 300 qps, deviation 20: margin 6 × max(20, 30) = 180.
        let b = warm(300.0, 20.0);
        assert!(eval(&d, 4_790, b).is_none());
        let f = eval(&d, 4_800, b).unwrap();
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.threshold, 480.0);
        assert_eq!(f.observed, 480.0);
        assert_eq!(f.unit, "queries/s");
        assert_eq!(f.evidence["margin"], 180.0);
        assert_eq!(f.evidence["baseline_windows"], 60);
        assert!(eval(&d, 6_590, b).unwrap().severity == Severity::Warning);
        let f = eval(&d, 6_600, b).unwrap();
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.threshold, 660.0);
    }

    #[test]
    fn min_qps_and_warmup() {
        let d = RateAnomaly::default();
        // A quiet server (10 qps): 150 qps is 15× its normal but below min_qps.
        let b = warm(10.0, 2.0);
        assert!(eval(&d, 1_500, b).is_none());
        let f = eval(&d, 2_000, b).unwrap();
        assert_eq!(f.threshold, 200.0);
        assert_eq!(
            f.severity,
            Severity::Critical,
            "critical level also floored"
        );
        // Warm-up respected: 59 windows, or no baseline.
        let cold = Some(Baseline {
            mean: 10.0,
            deviation: 2.0,
            windows: 59,
            history: Default::default(),
        });
        assert!(eval(&d, 100_000, cold).is_none());
        assert!(eval(&d, 100_000, None).is_none());
        // Normal variation of a busy server does not fire.
        let b = warm(1_000.0, 80.0);
        assert!(eval(&d, 15_990, b).is_none());
        assert!(eval(&d, 16_000, b).is_some());
    }

    #[test]
    fn learned_baseline_then_flood() {
        let d = RateAnomaly::default();
        let mut b = Baseline::default();
        for i in 0..100u64 {
            let queries = 2_500 + (i * 37) % 500; // 250..300 qps
            let t = Tally {
                queries,
                ..Tally::default()
            };
            let view = WindowView {
                tally: &t,
                window_secs: 10.0,
                baseline: Some(&b),
                panes: &[],
                end: 0,
                slide_secs: 1.0,
            };
            assert!(d.evaluate(&server(), &view).is_none(), "window {i}: {b:?}");
            b.learn(d.measure(&view));
        }
        assert!(eval(&d, 3_300, Some(b)).is_none(), "{b:?}");
        assert!(eval(&d, 10_000, Some(b)).is_some(), "{b:?}");
    }

    #[test]
    fn from_spec_validates() {
        let ok = |text: &str| build(text, RateAnomaly::from_spec);
        let (d, errs) = ok("");
        assert!(errs.is_empty());
        let d = d.unwrap();
        assert_eq!(
            (d.min_qps, d.deviations, d.warmup_windows),
            (200.0, 6.0, 60)
        );
        assert!(ok("enabled = false").0.is_none());
        let (d, errs) = ok("min_qps = 0.0\ndeviations = nan\nwarmup_windows = 0\n");
        assert!(d.is_none());
        assert_eq!(
            errs,
            [
                "1:detectors.rate_anomaly.min_qps: must be a positive number",
                "2:detectors.rate_anomaly.deviations: must be a positive number",
                "3:detectors.rate_anomaly.warmup_windows: must be a positive integer",
            ]
        );
    }
}
