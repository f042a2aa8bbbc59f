//! `unsolicited_response`: a host that does send DNS queries receives many
//! responses that answer none of them — reflected traffic aimed at it, or
//! a cache-poisoning attempt spraying forged answers.
//!
//! Key: the victim, the destination of responses (`Key::Victim`).
//! Tally fields: `queries` (queries sent by the victim), `responses`
//! (responses to it), `unsolicited` (those with `Observed::unsolicited ==
//! Some(true)`: no query with the same (client, client port, server, server
//! port, id) within `ingest::QUERY_TIMEOUT_US` = 10 s on this worker; see
//! `ingest::QueryTracker`, which runs only when this detector is
//! configured).
//!
//! Fires when, over the window, the victim's own queries are visible
//! (`queries >= 1`), `unsolicited >= min_unsolicited` and
//! `unsolicited / responses >= min_ratio`. Critical when the unsolicited
//! rate reaches `critical_rate` per second. Observed: unsolicited responses
//! per second; the warning threshold reported is `min_unsolicited /
//! window_secs` (with a `critical_rate` below that, every alert is critical).
//!
//! Limits: a capture that sees only one direction (responses but not the
//! victim's queries) cannot use this detector — with no query visible the
//! key never alerts (every response would look unsolicited). A capture that
//! starts mid-conversation shows a few unmatched responses for queries sent
//! before it began, as does a response arriving more than 10 s late or a
//! duplicated answer: `min_unsolicited` and `min_ratio` absorb them.

use serde::Deserialize;
use serde_json::json;

use super::spec::{Check, built, defaults, yes};
use super::{Detector, Finding, Key, KeyRef, Kind, Observed, Severity, TallySink, WindowView};
use crate::spec::{ConfigError, Located};

/// `[detectors.unsolicited_response]` in a pipeline file.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct UnsolicitedResponseSpec {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Least unsolicited responses to one victim in the window.
    #[serde(default = "default_min_unsolicited")]
    pub min_unsolicited: toml::Spanned<u64>,
    /// Least share of the victim's responses that are unsolicited, in (0, 1].
    #[serde(default = "default_min_ratio")]
    pub min_ratio: toml::Spanned<f64>,
    /// Unsolicited responses per second (averaged over the window) for a
    /// critical alert.
    #[serde(default = "default_critical_rate")]
    pub critical_rate: toml::Spanned<f64>,
}

defaults! {
    default_min_unsolicited: u64 = 20;
    default_min_ratio: f64 = 0.5;
    default_critical_rate: f64 = 50.0;
}

impl Default for UnsolicitedResponseSpec {
    fn default() -> Self {
        UnsolicitedResponseSpec {
            enabled: true,
            min_unsolicited: default_min_unsolicited(),
            min_ratio: default_min_ratio(),
            critical_rate: default_critical_rate(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct UnsolicitedResponse {
    pub min_unsolicited: u64,
    pub min_ratio: f64,
    pub critical_rate: f64,
}

impl Default for UnsolicitedResponse {
    fn default() -> Self {
        built(Self::from_spec)
    }
}

impl UnsolicitedResponse {
    /// Validate `spec`; `None` when disabled or invalid (errors pushed).
    pub fn from_spec(
        spec: &UnsolicitedResponseSpec,
        loc: &Located<'_>,
        errors: &mut Vec<ConfigError>,
    ) -> Option<UnsolicitedResponse> {
        let mut check = Check::new(Kind::UnsolicitedResponse, loc, errors);
        let n = check.positive_int("min_unsolicited", &spec.min_unsolicited);
        let r = check.ratio("min_ratio", &spec.min_ratio);
        let c = check.positive_in("critical_rate", &spec.critical_rate, "responses per second");
        if !spec.enabled || !check.ok() {
            return None;
        }
        Some(UnsolicitedResponse {
            min_unsolicited: n,
            min_ratio: r,
            critical_rate: c,
        })
    }
}

impl Detector for UnsolicitedResponse {
    fn kind(&self) -> Kind {
        Kind::UnsolicitedResponse
    }

    fn observe(&self, m: &Observed<'_, '_>, sink: &mut dyn TallySink) {
        if !m.msg.qr {
            sink.tally(KeyRef::Victim(m.payload.src)).queries += 1;
            return;
        }
        let t = sink.tally(KeyRef::Victim(m.payload.dst));
        t.responses += 1;
        if m.unsolicited == Some(true) {
            t.unsolicited += 1;
            if let Some(q) = &m.msg.question {
                t.offer_qname(&q.qname);
            }
        }
    }

    fn pane_may_fire(&self, pane: &super::Tally, _slide_secs: f64, panes: u64) -> bool {
        super::pane_share_of_count(pane.unsolicited, self.min_unsolicited, panes)
    }

    fn measure(&self, w: &WindowView<'_>) -> f64 {
        w.tally.unsolicited as f64 / w.window_secs
    }

    fn evaluate(&self, _key: &Key, w: &WindowView<'_>) -> Option<Finding> {
        let t = w.tally;
        if t.queries == 0 || t.unsolicited < self.min_unsolicited || t.responses == 0 {
            return None;
        }
        let ratio = t.unsolicited as f64 / t.responses as f64;
        if ratio < self.min_ratio {
            return None;
        }
        let rate = self.measure(w);
        let warning_rate = self.min_unsolicited as f64 / w.window_secs;
        let (severity, threshold) = if rate >= self.critical_rate {
            (Severity::Critical, self.critical_rate)
        } else {
            (Severity::Warning, warning_rate)
        };
        let evidence = json!({
            "unsolicited": t.unsolicited,
            "responses": t.responses,
            "victim_queries": t.queries,
            "unsolicited_ratio": ratio,
            "window_secs": w.window_secs,
            "min_unsolicited": self.min_unsolicited,
            "min_ratio": self.min_ratio,
            "critical_rate": self.critical_rate,
            "sample_qnames": t.sample_names(),
        });
        Some(Finding {
            severity,
            observed: rate,
            threshold,
            unit: "responses/s",
            evidence: evidence.as_object().cloned().unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::test_support::*;
    use crate::detect::{Baseline, Tally};

    fn eval(d: &UnsolicitedResponse, t: &Tally) -> Option<Finding> {
        let b = Baseline::default();
        d.evaluate(
            &Key::Victim("192.0.2.10".parse().unwrap()),
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

    fn tally(queries: u64, responses: u64, unsolicited: u64) -> Tally {
        Tally {
            queries,
            responses,
            unsolicited,
            ..Tally::default()
        }
    }

    #[test]
    fn observe_keys_by_victim() {
        let d = UnsolicitedResponse::default();
        let mut s = Sink::default();
        let (v, r) = (sa("192.0.2.10:5353"), sa("198.51.100.1:53"));
        queries(&d, &mut s, v, r, 3, "www.example.com", 1);
        responses(&d, &mut s, r, v, 3, "www.example.com", 1, 0, Some(false));
        responses(&d, &mut s, r, v, 25, "forged.example.com", 1, 0, Some(true));
        // A response with no tracker verdict is not unsolicited.
        responses(&d, &mut s, r, v, 2, "other.example.com", 1, 0, None);
        let t = s.get(&Key::Victim(v.ip()));
        assert_eq!((t.queries, t.responses, t.unsolicited), (3, 30, 25));
        assert_eq!(t.sample_names(), ["forged.example.com"]);
        assert_eq!(s.0.len(), 1, "the server is no key");
        let f = eval(&d, &t).unwrap();
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.observed, 2.5);
        assert_eq!(f.threshold, 2.0);
        assert_eq!(f.unit, "responses/s");
        assert_eq!(f.evidence["unsolicited"], 25);
        assert_eq!(f.evidence["sample_qnames"][0], "forged.example.com");
    }

    #[test]
    fn tiers_and_conditions() {
        let d = UnsolicitedResponse::default();
        assert!(
            eval(&d, &tally(1, 20, 19)).is_none(),
            "below min_unsolicited"
        );
        assert_eq!(
            eval(&d, &tally(1, 20, 20)).unwrap().severity,
            Severity::Warning
        );
        assert!(eval(&d, &tally(1, 41, 20)).is_none(), "ratio below 0.5");
        assert!(eval(&d, &tally(1, 40, 20)).is_some(), "ratio 0.5");
        // No query from the victim visible: a one-direction capture.
        assert!(eval(&d, &tally(0, 10_000, 10_000)).is_none());
        let f = eval(&d, &tally(5, 600, 499)).unwrap();
        assert_eq!(f.severity, Severity::Warning);
        let f = eval(&d, &tally(5, 600, 500)).unwrap();
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.threshold, 50.0);
        assert_eq!(f.observed, 50.0);
    }

    #[test]
    fn normal_client_with_a_few_stray_answers_does_not_fire() {
        // 100 queries/s answered, plus the handful of unmatched answers a
        // capture starting mid-conversation or late replies produce.
        let d = UnsolicitedResponse::default();
        assert!(eval(&d, &tally(1000, 1012, 12)).is_none());
        assert!(eval(&d, &tally(1000, 1100, 100)).is_none(), "ratio 0.09");
        assert_eq!(
            d.measure(&WindowView {
                tally: &tally(1000, 1012, 12),
                window_secs: 10.0,
                baseline: None,
                panes: &[],
                end: 0,
                slide_secs: 1.0,
            }),
            1.2
        );
    }

    #[test]
    fn from_spec_validates() {
        let ok = |text: &str| build(text, UnsolicitedResponse::from_spec);
        let (d, errs) = ok("");
        assert!(errs.is_empty());
        let d = d.unwrap();
        assert_eq!(
            (d.min_unsolicited, d.min_ratio, d.critical_rate),
            (20, 0.5, 50.0)
        );
        let (d, errs) = ok("enabled = false");
        assert!(d.is_none() && errs.is_empty());
        let (d, errs) = ok("min_unsolicited = 0\nmin_ratio = 0.0\ncritical_rate = -5.0\n");
        assert!(d.is_none());
        assert_eq!(
            errs,
            [
                "1:detectors.unsolicited_response.min_unsolicited: must be a positive integer",
                "2:detectors.unsolicited_response.min_ratio: must be a ratio in (0, 1]",
                "3:detectors.unsolicited_response.critical_rate: must be a positive number (responses per second)",
            ]
        );
        let (_, errs) = ok("min_ratio = 1.01");
        assert_eq!(errs.len(), 1);
        assert!(ok("min_ratio = 1.0").0.is_some());
    }
}
