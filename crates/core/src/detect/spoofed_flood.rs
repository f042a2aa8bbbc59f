//! `spoofed_flood`: a DNS server receives queries from far more distinct
//! source addresses than it normally does — a flood with randomised
//! (spoofed) sources, or a botnet, that no per-client threshold sees.
//!
//! Key: the server, the destination of queries (`Key::Server`).
//! Tally fields: `queries`, and the `distinct` sketch (HyperLogLog, ~1.6 %
//! error) of the query sources' stable hashes; sample query names.
//! Observed: distinct sources in the window.
//!
//! Fires when the distinct sources reach `min_sources` and
//! - the key's baseline is warm (`warmup_windows` learned) and the count
//!   reaches `mean + deviations × max(deviation, 0.1 × mean, 10)`, or
//! - the count reaches `absolute_sources`, with or without a baseline — except
//!   that a warm baseline whose own warning level is above
//!   `absolute_sources` (a big resolver that normally sees that many
//!   clients) wins, and that without a warm baseline the sources must send
//!   at most `max_queries_per_source` queries each on average (spoofed
//!   sources are mostly used once; a big legitimate population is not),
//!   and the key must have had queries since the window's first pane: in a
//!   window that began before its traffic (the input started, or the
//!   server was silent) light legitimate clients have not had the time to
//!   ask twice, and without a baseline nothing else tells them apart.
//!
//! Warning level `W` = `max(min_sources, mean + margin)` when warm, else
//! `absolute_sources`. Critical at `2 × W`, or at `absolute_sources` when
//! that is lower (so cold keys firing at `absolute_sources` are critical).
//!
//! The sketch is merged (full view) only when the window has at least
//! `min_sources` queries, since the distinct sources cannot exceed the
//! queries; below that the window measures 0. The baseline therefore learns
//! 0 for quiet windows, which only lowers it for servers that rarely reach
//! `min_sources` queries — and those are held by `min_sources` anyway.

use serde::Deserialize;
use serde_json::json;

use super::spec::{Check, built, defaults, yes};
use super::{
    Detector, Finding, Key, KeyRef, Kind, Observed, Severity, Tally, TallySink, WindowView,
};
use crate::spec::{ConfigError, Located};

/// Smallest margin above a warm baseline, in sources.
pub const MIN_MARGIN_SOURCES: f64 = 10.0;

/// `[detectors.spoofed_flood]` in a pipeline file.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SpoofedFloodSpec {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Least distinct query sources to one server in the window.
    #[serde(default = "default_min_sources")]
    pub min_sources: toml::Spanned<u64>,
    /// Distinct sources that fire (critical) without a baseline; must be >=
    /// min_sources.
    #[serde(default = "default_absolute_sources")]
    pub absolute_sources: toml::Spanned<u64>,
    /// Windows learned before the baseline is used.
    #[serde(default = "default_warmup_windows")]
    pub warmup_windows: toml::Spanned<u64>,
    /// How many deviations above the baseline mean.
    #[serde(default = "default_deviations")]
    pub deviations: toml::Spanned<f64>,
    /// Without a warm baseline, fire only when the sources send at most this
    /// many queries each on average (spoofed sources are mostly used once;
    /// a big legitimate population asks several times per window).
    #[serde(default = "default_max_queries_per_source")]
    pub max_queries_per_source: toml::Spanned<f64>,
}

defaults! {
    default_min_sources: u64 = 500;
    default_absolute_sources: u64 = 5000;
    default_warmup_windows: u64 = 30;
    default_deviations: f64 = 6.0;
    default_max_queries_per_source: f64 = 2.0;
}

impl Default for SpoofedFloodSpec {
    fn default() -> Self {
        SpoofedFloodSpec {
            enabled: true,
            min_sources: default_min_sources(),
            absolute_sources: default_absolute_sources(),
            warmup_windows: default_warmup_windows(),
            deviations: default_deviations(),
            max_queries_per_source: default_max_queries_per_source(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct SpoofedFlood {
    pub min_sources: u64,
    pub absolute_sources: u64,
    pub warmup_windows: u64,
    pub deviations: f64,
    pub max_queries_per_source: f64,
}

impl Default for SpoofedFlood {
    fn default() -> Self {
        built(Self::from_spec)
    }
}

impl SpoofedFlood {
    /// Validate `spec`; `None` when disabled or invalid (errors pushed).
    pub fn from_spec(
        spec: &SpoofedFloodSpec,
        loc: &Located<'_>,
        errors: &mut Vec<ConfigError>,
    ) -> Option<SpoofedFlood> {
        let mut check = Check::new(Kind::SpoofedFlood, loc, errors);
        let min = check.positive_int("min_sources", &spec.min_sources);
        let abs = check.require(
            "absolute_sources",
            &spec.absolute_sources,
            |abs| abs > 0 && abs >= min,
            format!("must be an integer >= min_sources ({min})"),
        );
        let warm = check.positive_int("warmup_windows", &spec.warmup_windows);
        let dev = check.positive("deviations", &spec.deviations);
        let per = check.positive("max_queries_per_source", &spec.max_queries_per_source);
        if !spec.enabled || !check.ok() {
            return None;
        }
        Some(SpoofedFlood {
            min_sources: min,
            absolute_sources: abs,
            warmup_windows: warm,
            deviations: dev,
            max_queries_per_source: per,
        })
    }

    /// (warning level, critical level) for a window, given the baseline.
    pub fn levels(&self, w: &WindowView<'_>) -> (f64, f64) {
        let abs = self.absolute_sources as f64;
        match w.baseline.filter(|b| b.windows >= self.warmup_windows) {
            Some(b) => {
                let margin =
                    self.deviations * b.deviation.max(0.1 * b.mean).max(MIN_MARGIN_SOURCES);
                let warning = (b.mean + margin).max(self.min_sources as f64);
                let critical = if abs > warning {
                    (2.0 * warning).min(abs)
                } else {
                    2.0 * warning
                };
                (warning, critical)
            }
            None => (abs, abs),
        }
    }
}

impl Detector for SpoofedFlood {
    fn kind(&self) -> Kind {
        Kind::SpoofedFlood
    }

    fn observe(&self, m: &Observed<'_, '_>, sink: &mut dyn TallySink) {
        if m.msg.qr {
            return;
        }
        let t = sink.tally(KeyRef::Server(m.payload.dst));
        t.queries += 1;
        t.distinct_mut()
            .insert(crate::sketch::stable_hash(&m.payload.src));
        if let Some(q) = &m.msg.question {
            t.offer_qname(&q.qname);
        }
    }

    fn needs_full_view(&self, counts: &Tally, _window_secs: f64) -> bool {
        counts.queries >= self.min_sources
    }

    fn measure(&self, w: &WindowView<'_>) -> f64 {
        w.tally.distinct_count().round()
    }

    fn evaluate(&self, _key: &Key, w: &WindowView<'_>) -> Option<Finding> {
        let t = w.tally;
        let distinct = self.measure(w);
        if distinct < self.min_sources as f64 {
            return None;
        }
        // Cold: warning = absolute_sources. Warm: a baseline level above
        // absolute_sources wins over it.
        let (warning, critical) = self.levels(w);
        if distinct < warning {
            return None;
        }
        let warm = w.baseline.is_some_and(|b| b.windows >= self.warmup_windows);
        if !warm && t.queries as f64 > self.max_queries_per_source * distinct {
            // Many sources, but each asking repeatedly: a big population,
            // not spoofing. Without a baseline that is all there is to go on.
            return None;
        }
        if !warm && !fills_window(w) {
            // The key's queries began inside this window (the input
            // started, or the server was silent): its clients have had
            // less than a window to ask twice, and a big population of
            // light clients looks spoofed (a resolver's 20 000 clients
            // measured 1.5 queries each over the first 3 s, 2.5 over 10 s).
            return None;
        }
        let (severity, threshold) = if distinct >= critical {
            (Severity::Critical, critical)
        } else {
            (Severity::Warning, warning)
        };
        let b = w.baseline.copied().unwrap_or_default();
        let evidence = json!({
            "distinct_sources": distinct,
            "queries": t.queries,
            "window_secs": w.window_secs,
            "baseline_mean": b.mean,
            "baseline_deviation": b.deviation,
            "baseline_windows": b.windows,
            "warmup_windows": self.warmup_windows,
            "warning_sources": warning,
            "critical_sources": critical,
            "min_sources": self.min_sources,
            "absolute_sources": self.absolute_sources,
            "max_queries_per_source": self.max_queries_per_source,
            "sample_qnames": t.sample_names(),
        });
        Some(Finding {
            severity,
            observed: distinct,
            threshold,
            unit: "sources",
            evidence: evidence.as_object().cloned().unwrap_or_default(),
        })
    }
}

/// Whether the key has queries in the window's first pane, so its data
/// spans the whole window (a key's panes are its panes with data, oldest
/// first).
fn fills_window(w: &WindowView<'_>) -> bool {
    let panes = (w.window_secs / w.slide_secs).round().max(1.0) as u64;
    let first = w.end.saturating_sub(panes - 1);
    w.panes.first().is_some_and(|(p, _)| *p <= first)
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    use super::*;
    use crate::detect::Baseline;
    use crate::detect::test_support::*;

    fn server() -> Key {
        Key::Server("198.51.100.53".parse().unwrap())
    }

    /// A tally of `queries` queries from `sources` distinct addresses,
    /// observed from real messages.
    fn window(d: &SpoofedFlood, sources: u32, per_source: u32) -> Tally {
        let mut s = Sink::default();
        let dst = sa("198.51.100.53:53");
        for i in 0..sources {
            let src = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), 33333);
            queries(d, &mut s, src, dst, per_source, "www.example.com", 1);
        }
        s.get(&server())
    }

    /// `t` as the window ending at pane 9, with queries since its first
    /// pane (0).
    fn eval(d: &SpoofedFlood, t: &Tally, b: Option<Baseline>) -> Option<Finding> {
        eval_from(d, t, b, 0)
    }

    /// The same with the key's first queries in pane `since`.
    fn eval_from(d: &SpoofedFlood, t: &Tally, b: Option<Baseline>, since: u64) -> Option<Finding> {
        d.evaluate(
            &server(),
            &WindowView {
                tally: t,
                window_secs: 10.0,
                baseline: b.as_ref(),
                panes: &[(since, Tally::default())],
                end: 9,
                slide_secs: 1.0,
            },
        )
    }

    /// Without a baseline, a window the key's traffic does not fill (it
    /// began in pane 3) does not fire, however many light sources; a warm
    /// baseline is not held back.
    #[test]
    fn cold_rule_waits_for_a_full_window() {
        let d = SpoofedFlood::default();
        let t = window(&d, 6000, 1);
        assert!(eval_from(&d, &t, None, 3).is_none());
        assert!(eval_from(&d, &t, None, 0).is_some());
        assert!(eval_from(&d, &t, warm(200.0, 20.0), 3).is_some());
    }

    fn warm(mean: f64, deviation: f64) -> Option<Baseline> {
        Some(Baseline {
            mean,
            deviation,
            windows: 100,
            history: Default::default(),
        })
    }

    #[test]
    fn observe_counts_distinct_sources() {
        let d = SpoofedFlood::default();
        let t = window(&d, 300, 3);
        assert_eq!(t.queries, 900);
        assert!(
            (d.measure(&WindowView {
                tally: &t,
                window_secs: 10.0,
                baseline: None,
                panes: &[],
                end: 0,
                slide_secs: 1.0,
            }) - 300.0)
                .abs()
                <= 3.0
        );
        assert!(d.needs_full_view(&t, 10.0));
        assert!(!d.needs_full_view(
            &Tally {
                queries: 499,
                ..Tally::default()
            },
            10.0
        ));
        assert_eq!(t.sample_names(), ["www.example.com"]);
    }

    #[test]
    fn warm_baseline_tiers() {
        let d = SpoofedFlood::default();
        // Normal 200 sources with deviation 20: warning at 200 + 6 × 20 = 320,
        // raised to min_sources 500.
        let b = warm(200.0, 20.0);
        assert!(eval(&d, &window(&d, 260, 2), b).is_none());
        assert!(
            eval(&d, &window(&d, 490, 1), b).is_none(),
            "below min_sources"
        );
        let f = eval(&d, &window(&d, 600, 1), b).unwrap();
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.threshold, 500.0);
        assert_eq!(f.unit, "sources");
        assert_eq!(f.evidence["baseline_mean"], 200.0);
        assert_eq!(f.evidence["baseline_windows"], 100);
        let f = eval(&d, &window(&d, 2000, 1), b).unwrap();
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.threshold, 1000.0);
        assert!((f.observed - 2000.0).abs() < 100.0, "{}", f.observed);

        // A server that normally sees 1000 sources (deviation 50): margin
        // 6 × max(50, 100, 10) = 600.
        let b = warm(1000.0, 50.0);
        assert!(eval(&d, &window(&d, 1500, 1), b).is_none());
        let f = eval(&d, &window(&d, 1700, 1), b).unwrap();
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.threshold, 1600.0);
        // Critical at min(2 × 1600, absolute 5000).
        assert_eq!(
            eval(&d, &window(&d, 3500, 1), b).unwrap().severity,
            Severity::Critical
        );
    }

    #[test]
    fn warmup_and_absolute() {
        let d = SpoofedFlood {
            absolute_sources: 5000,
            ..SpoofedFlood::default()
        };
        let cold = Some(Baseline {
            mean: 10.0,
            deviation: 1.0,
            windows: 29,
            history: Default::default(),
        });
        for b in [None, cold] {
            assert!(eval(&d, &window(&d, 2000, 1), b).is_none(), "warming up");
            let f = eval(&d, &window(&d, 5500, 1), b).unwrap();
            assert_eq!(f.severity, Severity::Critical);
            assert_eq!(f.threshold, 5000.0);
        }
        // A big resolver whose normal is above absolute_sources: its normal
        // does not fire, a doubling does.
        let b = warm(20_000.0, 500.0);
        assert!(eval(&d, &window(&d, 21_000, 1), b).is_none());
        let f = eval(&d, &window(&d, 40_000, 1), b).unwrap();
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.threshold, 32_000.0);
    }

    #[test]
    fn learned_baseline_from_normal_windows() {
        // Windows of 180..220 sources learned as the engine does; then 260
        // does not fire and 2000 does.
        let d = SpoofedFlood::default();
        let mut b = Baseline::default();
        for i in 0..40u32 {
            let n = 180 + (i * 7) % 41;
            let t = window(&d, n, 2);
            let view = WindowView {
                tally: &t,
                window_secs: 10.0,
                baseline: Some(&b),
                panes: &[],
                end: 0,
                slide_secs: 1.0,
            };
            assert!(d.evaluate(&server(), &view).is_none());
            let m = d.measure(&view);
            b.learn(m);
        }
        assert!(b.windows >= 30 && (b.mean - 200.0).abs() < 20.0, "{b:?}");
        assert!(eval(&d, &window(&d, 260, 2), Some(b)).is_none());
        assert!(eval(&d, &window(&d, 2000, 1), Some(b)).is_some());
    }

    #[test]
    fn from_spec_validates() {
        let ok = |text: &str| build(text, SpoofedFlood::from_spec);
        let (d, errs) = ok("");
        assert!(errs.is_empty());
        let d = d.unwrap();
        assert_eq!(
            (
                d.min_sources,
                d.absolute_sources,
                d.warmup_windows,
                d.deviations
            ),
            (500, 5000, 30, 6.0)
        );
        assert!(ok("enabled = false").0.is_none());
        let (d, errs) =
            ok("min_sources = 0\nabsolute_sources = 0\nwarmup_windows = 0\ndeviations = -1.0\n");
        assert!(d.is_none());
        assert_eq!(
            errs,
            [
                "1:detectors.spoofed_flood.min_sources: must be a positive integer",
                "2:detectors.spoofed_flood.absolute_sources: must be an integer >= min_sources (0)",
                "3:detectors.spoofed_flood.warmup_windows: must be a positive integer",
                "4:detectors.spoofed_flood.deviations: must be a positive number",
            ]
        );
        let (_, errs) = ok("min_sources = 100\nabsolute_sources = 50\n");
        assert_eq!(
            errs,
            ["2:detectors.spoofed_flood.absolute_sources: must be an integer >= min_sources (100)"]
        );
    }
}
