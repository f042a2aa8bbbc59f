//! `amplification`: a host receives a flood of large DNS responses it did
//! not ask for in proportion — the reflection / amplification attack, where
//! an attacker spoofs the victim's address in small queries (ANY, DNSKEY,
//! RRSIG, TXT) to open resolvers and authoritative servers.
//!
//! Key: the victim, the destination of responses (`Key::Victim`).
//! Tally fields (per victim, per pane):
//! - responses to the victim: `responses`, `response_bytes` (DNS message
//!   sizes, after IP reassembly), `amplifying` (question type ANY, DNSKEY,
//!   RRSIG or TXT), `large` (size >= `large_bytes` and *not* an amplifying
//!   type, so `amplifying + large` counts each response at most once);
//! - queries sent by the victim (query source): `queries`, `bytes`.
//!
//! Fires when, over the window,
//! 1. response bytes per second >= `warning_bps` (bytes, not bits), and
//! 2. either no query from the victim is visible (`queries == 0`: a capture
//!    at the victim's edge sees only the reflected responses, or the victim
//!    never asked) or `response_bytes / query bytes >= min_ratio`, and
//! 3. `(amplifying + large) / responses >= min_amplifying_share`.
//!
//! Critical at `critical_bps`. Observed: response bytes per second.
//!
//! The amplifying types are the ones reflection attacks use for their size:
//! ANY (255), DNSKEY (48), RRSIG (46), TXT (16). DS (43) and NSEC3PARAM (51)
//! are left out on purpose: their answers are small (a few hundred bytes
//! with signatures), a validating resolver asks for DS at every zone cut, and
//! a large DS answer is counted as `large` anyway.
//!
//! Calibration (default 10 s windows): the RRSIG reflection capture
//! `stopddos-amp.dns.RRSIG.fragmented.pcap` delivers 402 responses (378
//! RRSIG, most 3–4 KB and IP-fragmented) to its victim at 11–77 KB/s per
//! window with 77–100 % amplifying share and no query from the victim, so it
//! fires at the 20 000 bytes/s default (all but its thinnest windows). A
//! busy normal client (100 responses/s of 100–500 bytes, A/AAAA) reaches
//! 10–50 KB/s but an amplifying share near 0, and a resolver's own lookups
//! are visible as queries with a byte ratio of 2–6: neither fires.

use serde::Deserialize;
use serde_json::json;

use super::spec::{Check, built, defaults, yes};
use super::{Detector, Finding, Key, KeyRef, Kind, Observed, Severity, TallySink, WindowView};
use crate::spec::{ConfigError, Located};

/// Question types whose answers are used for amplification.
pub const AMPLIFYING_QTYPES: [u16; 4] = [255, 48, 46, 16];

/// `[detectors.amplification]` in a pipeline file.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AmplificationSpec {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Response bytes per second to one victim (averaged over the window)
    /// for a warning. Bytes, not bits.
    #[serde(default = "default_warning")]
    pub warning_bps: toml::Spanned<f64>,
    /// Response bytes per second for a critical alert; >= warning_bps.
    #[serde(default = "default_critical")]
    pub critical_bps: toml::Spanned<f64>,
    /// When queries from the victim are visible: least response bytes per
    /// query byte.
    #[serde(default = "default_min_ratio")]
    pub min_ratio: toml::Spanned<f64>,
    /// Least share of responses that are of an amplifying type or large, in
    /// (0, 1].
    #[serde(default = "default_min_share")]
    pub min_amplifying_share: toml::Spanned<f64>,
    /// A response of at least this many bytes counts as large.
    #[serde(default = "default_large_bytes")]
    pub large_bytes: toml::Spanned<u64>,
}

defaults! {
    default_warning: f64 = 20_000.0;
    default_critical: f64 = 200_000.0;
    default_min_ratio: f64 = 10.0;
    default_min_share: f64 = 0.5;
    default_large_bytes: u64 = 1200;
}

impl Default for AmplificationSpec {
    fn default() -> Self {
        AmplificationSpec {
            enabled: true,
            warning_bps: default_warning(),
            critical_bps: default_critical(),
            min_ratio: default_min_ratio(),
            min_amplifying_share: default_min_share(),
            large_bytes: default_large_bytes(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Amplification {
    pub warning_bps: f64,
    pub critical_bps: f64,
    pub min_ratio: f64,
    pub min_amplifying_share: f64,
    pub large_bytes: u64,
}

impl Default for Amplification {
    fn default() -> Self {
        built(Self::from_spec)
    }
}

impl Amplification {
    /// Validate `spec`; `None` when disabled or invalid (errors pushed).
    pub fn from_spec(
        spec: &AmplificationSpec,
        loc: &Located<'_>,
        errors: &mut Vec<ConfigError>,
    ) -> Option<Amplification> {
        let mut check = Check::new(Kind::Amplification, loc, errors);
        let w = check.positive_in("warning_bps", &spec.warning_bps, "bytes per second");
        let c = check.at_least("critical_bps", &spec.critical_bps, w, "warning_bps");
        let r = check.positive("min_ratio", &spec.min_ratio);
        let s = check.ratio("min_amplifying_share", &spec.min_amplifying_share);
        let l = check.require(
            "large_bytes",
            &spec.large_bytes,
            |l| (1..=65535).contains(&l),
            "must be between 1 and 65535",
        );
        if !spec.enabled || !check.ok() {
            return None;
        }
        Some(Amplification {
            warning_bps: w,
            critical_bps: c,
            min_ratio: r,
            min_amplifying_share: s,
            large_bytes: l,
        })
    }
}

impl Detector for Amplification {
    fn kind(&self) -> Kind {
        Kind::Amplification
    }

    fn observe(&self, m: &Observed<'_, '_>, sink: &mut dyn TallySink) {
        let size = u64::from(m.msg.size);
        if !m.msg.qr {
            let t = sink.tally(KeyRef::Victim(m.payload.src));
            t.queries += 1;
            t.bytes += size;
            return;
        }
        let t = sink.tally(KeyRef::Victim(m.payload.dst));
        t.responses += 1;
        t.response_bytes += size;
        let q = m.msg.question.as_ref();
        if q.is_some_and(|q| AMPLIFYING_QTYPES.contains(&q.qtype)) {
            t.amplifying += 1;
        } else if size >= self.large_bytes {
            t.large += 1;
        }
        if let Some(q) = q {
            t.offer_qname(&q.qname);
        }
    }

    fn pane_may_fire(&self, pane: &super::Tally, slide_secs: f64, _panes: u64) -> bool {
        super::pane_share(pane.response_bytes, self.warning_bps, slide_secs)
    }

    fn measure(&self, w: &WindowView<'_>) -> f64 {
        w.tally.response_bytes as f64 / w.window_secs
    }

    fn evaluate(&self, _key: &Key, w: &WindowView<'_>) -> Option<Finding> {
        let t = w.tally;
        let bps = self.measure(w);
        if bps < self.warning_bps || t.responses == 0 {
            return None;
        }
        let ratio = (t.queries > 0).then(|| t.response_bytes as f64 / t.bytes.max(1) as f64);
        if ratio.is_some_and(|r| r < self.min_ratio) {
            return None;
        }
        let share = (t.amplifying + t.large) as f64 / t.responses as f64;
        if share < self.min_amplifying_share {
            return None;
        }
        let (severity, threshold) = if bps >= self.critical_bps {
            (Severity::Critical, self.critical_bps)
        } else {
            (Severity::Warning, self.warning_bps)
        };
        let evidence = json!({
            "responses": t.responses,
            "response_bytes": t.response_bytes,
            "amplifying_responses": t.amplifying,
            "large_responses": t.large,
            "amplifying_share": share,
            "victim_queries": t.queries,
            "victim_query_bytes": t.bytes,
            "byte_ratio": ratio,
            "window_secs": w.window_secs,
            "warning_bps": self.warning_bps,
            "critical_bps": self.critical_bps,
            "min_ratio": self.min_ratio,
            "min_amplifying_share": self.min_amplifying_share,
            "large_bytes": self.large_bytes,
            "sample_qnames": t.sample_names(),
        });
        Some(Finding {
            severity,
            observed: bps,
            threshold,
            unit: "bytes/s",
            evidence: evidence.as_object().cloned().unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::test_support::*;
    use crate::detect::{Baseline, Tally};

    fn victim() -> Key {
        Key::Victim("10.10.10.10".parse().unwrap())
    }

    fn eval(d: &Amplification, t: &Tally) -> Option<Finding> {
        let b = Baseline::default();
        d.evaluate(
            &victim(),
            &WindowView {
                tally: t,
                window_secs: 10.0,
                baseline: Some(&b),
                panes: &[],
                end: 0,
                slide_secs: 1.0,
            },
        )
    }

    #[test]
    fn observe_counts_responses_to_victim_and_queries_from_it() {
        let d = Amplification::default();
        let mut s = Sink::default();
        let (v, r) = (sa("10.10.10.10:4444"), sa("198.51.100.7:53"));
        responses(&d, &mut s, r, v, 3, "pizzaseo.com", 46, 3000, None);
        responses(&d, &mut s, r, v, 2, "big.example", 1, 1500, None);
        responses(&d, &mut s, r, v, 4, "www.example", 1, 0, None);
        queries(&d, &mut s, v, r, 5, "www.example", 1);
        let t = s.get(&victim());
        assert_eq!(t.responses, 9);
        assert_eq!(t.amplifying, 3);
        assert_eq!(
            t.large, 2,
            "large A answers count once, RRSIG ones not again"
        );
        assert!(t.response_bytes >= 3 * 3000 + 2 * 1500);
        assert_eq!(t.queries, 5);
        assert!(t.bytes > 0);
        // Queries are keyed by their source only; responses by destination.
        assert_eq!(s.get(&Key::Victim(r.ip())).responses, 0);
        assert_eq!(s.get(&Key::Victim(r.ip())).queries, 0);
        assert_eq!(t.sample_names().len(), 3);
    }

    #[test]
    fn tiers_and_conditions() {
        let d = Amplification::default();
        let base = Tally {
            responses: 100,
            amplifying: 60,
            large: 0,
            ..Tally::default()
        };
        let with = |bytes: u64| Tally {
            response_bytes: bytes,
            ..base.clone()
        };
        assert!(eval(&d, &with(199_999)).is_none());
        let f = eval(&d, &with(200_000)).unwrap();
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.observed, 20_000.0);
        assert_eq!(f.threshold, 20_000.0);
        assert_eq!(f.unit, "bytes/s");
        assert_eq!(f.evidence["byte_ratio"], serde_json::Value::Null);
        assert_eq!(f.evidence["amplifying_responses"], 60);
        let f = eval(&d, &with(2_000_000)).unwrap();
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.threshold, 200_000.0);

        // Share below 0.5: no alert, however many bytes.
        let low = Tally {
            amplifying: 30,
            large: 19,
            ..with(5_000_000)
        };
        assert!(eval(&d, &low).is_none());
        let half = Tally {
            amplifying: 30,
            large: 20,
            ..with(5_000_000)
        };
        assert!(eval(&d, &half).is_some());

        // Victim's own queries visible: the byte ratio decides.
        let asked = Tally {
            queries: 100,
            bytes: 30_000,
            ..with(299_999)
        };
        assert!(eval(&d, &asked).is_none(), "ratio just below 10");
        let asked = Tally {
            queries: 100,
            bytes: 30_000,
            ..with(300_000)
        };
        let f = eval(&d, &asked).unwrap();
        assert_eq!(f.evidence["byte_ratio"], 10.0);
    }

    #[test]
    fn normal_resolver_client_does_not_fire() {
        // 100 responses/s of ~100-500 bytes, mostly A/AAAA, and the client's
        // own queries, over a 10 s window.
        let d = Amplification::default();
        let mut s = Sink::default();
        let (c, r) = (sa("192.168.1.20:40000"), sa("192.168.1.1:53"));
        queries(&d, &mut s, c, r, 1000, "www.example.com", 1);
        responses(&d, &mut s, r, c, 500, "www.example.com", 1, 500, None);
        responses(&d, &mut s, r, c, 400, "cdn.example.net", 28, 120, None);
        responses(&d, &mut s, r, c, 100, "example.com", 16, 300, None);
        let t = s.get(&Key::Victim(c.ip()));
        assert!(
            t.response_bytes as f64 / 10.0 >= d.warning_bps,
            "enough bytes"
        );
        assert!(eval(&d, &t).is_none());
        // Even with the queries not captured, the share of amplifying types
        // stays low.
        let no_queries = Tally {
            queries: 0,
            bytes: 0,
            ..t
        };
        assert!(eval(&d, &no_queries).is_none());
    }

    #[test]
    fn from_spec_validates() {
        let ok = |text: &str| build(text, Amplification::from_spec);
        let (d, errs) = ok("");
        assert!(errs.is_empty());
        let d = d.unwrap();
        assert_eq!(d.warning_bps, 20_000.0);
        assert_eq!(d.critical_bps, 200_000.0);
        assert_eq!(d.min_ratio, 10.0);
        assert_eq!(d.min_amplifying_share, 0.5);
        assert_eq!(d.large_bytes, 1200);
        let (d, errs) = ok("enabled = false");
        assert!(d.is_none() && errs.is_empty());
        let (d, errs) = ok("warning_bps = 0.0\ncritical_bps = 5.0\nmin_ratio = -1.0\n\
                            min_amplifying_share = 1.5\nlarge_bytes = 0\n");
        assert!(d.is_none());
        assert_eq!(
            errs,
            [
                "1:detectors.amplification.warning_bps: must be a positive number (bytes per second)",
                "3:detectors.amplification.min_ratio: must be a positive number",
                "4:detectors.amplification.min_amplifying_share: must be a ratio in (0, 1]",
                "5:detectors.amplification.large_bytes: must be between 1 and 65535",
            ]
        );
        let (d, errs) = ok("warning_bps = 100.0\ncritical_bps = 50.0\n");
        assert!(d.is_none());
        assert_eq!(
            errs,
            ["2:detectors.amplification.critical_bps: must be a number >= warning_bps (100)"]
        );
        let (_, errs) = ok("min_amplifying_share = 0.0");
        assert_eq!(errs.len(), 1);
        let (d, errs) = ok("min_amplifying_share = 1.0");
        assert!(d.is_some() && errs.is_empty());
    }
}
