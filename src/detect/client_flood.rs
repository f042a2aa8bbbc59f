//! `client_flood`: one client sends too many queries. Key: the client
//! address (the source of queries). Observed: queries per second over the
//! window; warning and critical tiers.

use serde::Deserialize;
use serde_json::json;

use super::spec::{Check, defaults, yes};
use super::{Detector, Finding, Key, KeyRef, Kind, Observed, Severity, TallySink, WindowView};
use crate::config::{ConfigError, Located};

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
}

defaults! {
    default_warning: f64 = 100.0;
    default_critical: f64 = 300.0;
}

impl Default for ClientFloodSpec {
    fn default() -> Self {
        ClientFloodSpec {
            enabled: true,
            warning_qps: default_warning(),
            critical_qps: default_critical(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct ClientFlood {
    pub warning_qps: f64,
    pub critical_qps: f64,
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
        check.ok().then_some(ClientFlood {
            warning_qps: w,
            critical_qps: c,
        })
    }
}

impl Detector for ClientFlood {
    fn kind(&self) -> Kind {
        Kind::ClientFlood
    }

    fn observe(&self, m: &Observed<'_, '_>, sink: &mut dyn TallySink) {
        if m.msg.qr {
            return;
        }
        let t = sink.tally(KeyRef::Client(m.payload.src));
        t.queries += 1;
        t.bytes += m.msg.size as u64;
        if let Some(q) = &m.msg.question {
            t.offer_qname(&q.qname);
        }
    }

    fn pane_may_fire(&self, pane: &crate::detect::Tally, slide_secs: f64, _panes: u64) -> bool {
        super::pane_share(pane.queries, self.warning_qps, slide_secs)
    }

    fn measure(&self, w: &WindowView<'_>) -> f64 {
        w.tally.queries as f64 / w.window_secs
    }

    fn evaluate(&self, _key: &Key, w: &WindowView<'_>) -> Option<Finding> {
        let qps = self.measure(w);
        let (severity, threshold) = if qps >= self.critical_qps {
            (Severity::Critical, self.critical_qps)
        } else if qps >= self.warning_qps {
            (Severity::Warning, self.warning_qps)
        } else {
            return None;
        };
        let evidence = json!({
            "queries": w.tally.queries,
            "query_bytes": w.tally.bytes,
            "window_secs": w.window_secs,
            "warning_qps": self.warning_qps,
            "critical_qps": self.critical_qps,
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
    use crate::detect::Tally;

    #[test]
    fn tiers() {
        let d = ClientFlood {
            warning_qps: 100.0,
            critical_qps: 300.0,
        };
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
}
