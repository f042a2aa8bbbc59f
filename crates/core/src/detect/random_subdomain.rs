//! `random_subdomain` ("water torture"): queries for many distinct,
//! never-repeated names under one registered domain (`<random>.victim.com`),
//! sent through resolvers so that the victim's authoritative servers (and
//! the resolvers' outstanding-query slots) are exhausted. Key: the
//! registered domain (public suffix list aware; a name that is itself a
//! public suffix is skipped, never keyed on). Observed: distinct query
//! names under the domain in the window (HLL++ estimate).
//!
//! Many unique names alone are normal for CDNs, telemetry and anti-virus
//! lookups (`<hash>.cdn.example`), which are answered. What makes the
//! attack is that the names do not exist or cannot be resolved, so:
//! - when responses are visible (at least [`MIN_VISIBLE_RESPONSES`] in the
//!   window), it fires at `warning_names` distinct names only if at least
//!   `min_failure_ratio` of the responses are NXDOMAIN or SERVFAIL (critical
//!   at `critical_names`, same condition); answered names never fire;
//! - when no responses are visible (a tap that sees one direction, or the
//!   victim no longer answers), it fires only at `critical_names`.
//!
//! Tally fields used: `queries`, `distinct` (query name hashes), samples
//! (query names); `responses`, `nxdomain` (rcode 3), `servfail` (rcode 2)
//! of responses for names under the domain.

use serde::Deserialize;
use serde_json::json;

use super::spec::{Check, defaults, yes};
use super::{
    Detector, Finding, Key, KeyRef, Kind, Observed, Severity, Tally, TallySink, WindowView,
};
use crate::spec::{ConfigError, Located};

/// Responses in the window from which the failure ratio is trusted;
/// below it the domain is treated as having no visible responses.
pub const MIN_VISIBLE_RESPONSES: u64 = 20;

/// `[detectors.random_subdomain]` in a pipeline file.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RandomSubdomainSpec {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Distinct query names under one registered domain in the window for a
    /// warning (with failing responses).
    #[serde(default = "default_warning")]
    pub warning_names: toml::Spanned<u64>,
    /// Distinct names for a critical alert (and for any alert when no
    /// responses are visible); must be >= warning_names.
    #[serde(default = "default_critical")]
    pub critical_names: toml::Spanned<u64>,
    /// Least fraction of visible responses that are NXDOMAIN or SERVFAIL,
    /// in (0, 1].
    #[serde(default = "default_min_failure_ratio")]
    pub min_failure_ratio: toml::Spanned<f64>,
    /// Registered domains never keyed here (DNSBL and reputation zones such
    /// as `spamhaus.org`, whose lookups are unique names that mostly fail).
    #[serde(default)]
    pub ignore_domains: Vec<toml::Spanned<String>>,
}

defaults! {
    default_warning: u64 = 300;
    default_critical: u64 = 1500;
    default_min_failure_ratio: f64 = 0.5;
}

impl Default for RandomSubdomainSpec {
    fn default() -> Self {
        RandomSubdomainSpec {
            enabled: true,
            warning_names: default_warning(),
            critical_names: default_critical(),
            min_failure_ratio: default_min_failure_ratio(),
            ignore_domains: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct RandomSubdomain {
    pub warning_names: u64,
    pub critical_names: u64,
    pub min_failure_ratio: f64,
    /// Sorted, lower-cased registered domains to skip.
    pub ignore_domains: Vec<Box<str>>,
}

impl RandomSubdomain {
    /// Validate `spec`; `None` when disabled or invalid (errors pushed).
    pub fn from_spec(
        spec: &RandomSubdomainSpec,
        loc: &Located<'_>,
        errors: &mut Vec<ConfigError>,
    ) -> Option<RandomSubdomain> {
        if !spec.enabled {
            return None;
        }
        let mut check = Check::new(Kind::RandomSubdomain, loc, errors);
        let w = check.require(
            "warning_names",
            &spec.warning_names,
            |w| w > 0,
            "must be a positive number",
        );
        let c = check.require(
            "critical_names",
            &spec.critical_names,
            |c| c >= w && c > 0,
            format!("must be a number >= warning_names ({w})"),
        );
        let ratio = check.ratio("min_failure_ratio", &spec.min_failure_ratio);
        let ignore_domains = check.domains("ignore_domains", &spec.ignore_domains);
        check.ok().then_some(RandomSubdomain {
            warning_names: w,
            critical_names: c,
            min_failure_ratio: ratio,
            ignore_domains,
        })
    }

    /// `Some(ratio)` of failed responses when enough are visible.
    fn failure_ratio(t: &Tally) -> Option<f64> {
        (t.responses >= MIN_VISIBLE_RESPONSES)
            .then(|| (t.nxdomain + t.servfail) as f64 / t.responses as f64)
    }

    /// The least distinct-name count that could alert given the responses:
    /// `None` when the responses rule an alert out.
    fn names_needed(&self, t: &Tally) -> Option<u64> {
        match Self::failure_ratio(t) {
            Some(r) if r >= self.min_failure_ratio => Some(self.warning_names),
            Some(_) => None,
            None => Some(self.critical_names),
        }
    }
}

impl Detector for RandomSubdomain {
    fn kind(&self) -> Kind {
        Kind::RandomSubdomain
    }

    fn observe(&self, m: &Observed<'_, '_>, sink: &mut dyn TallySink) {
        let Some(q) = &m.msg.question else { return };
        let Some(domain) = m.registered_domain_str() else {
            return;
        };
        if !self.ignore_domains.is_empty()
            && self
                .ignore_domains
                .binary_search_by(|d| (**d).cmp(domain))
                .is_ok()
        {
            return;
        }
        let t = sink.tally(KeyRef::Domain(domain));
        if m.msg.qr {
            t.responses += 1;
            match m.msg.rcode {
                3 => t.nxdomain += 1,
                2 => t.servfail += 1,
                _ => {}
            }
        } else {
            t.queries += 1;
            t.distinct_mut().insert(q.qname.hash());
            t.offer_qname(&q.qname);
        }
    }

    /// Distinct names cannot exceed queries: the sketch is merged only when
    /// the queries reach the count the responses leave possible.
    fn needs_full_view(&self, counts: &Tally, _window_secs: f64) -> bool {
        self.names_needed(counts)
            .is_some_and(|n| counts.queries >= n)
    }

    /// Distinct names (estimate) when the view has the sketch; without it
    /// (no alert possible, see `needs_full_view`) the query count, an upper
    /// bound of the distinct names.
    fn pane_may_fire(&self, pane: &Tally, _slide_secs: f64, panes: u64) -> bool {
        let least = self.warning_names.min(self.critical_names);
        super::pane_share_of_count(pane.queries, least, panes)
    }

    fn measure(&self, w: &WindowView<'_>) -> f64 {
        if w.tally.distinct.is_some() {
            w.tally.distinct_count()
        } else {
            w.tally.queries as f64
        }
    }

    fn evaluate(&self, _key: &Key, w: &WindowView<'_>) -> Option<Finding> {
        let t = w.tally;
        let needed = self.names_needed(t)?;
        if t.queries < needed || t.distinct.is_none() {
            return None;
        }
        let names = t.distinct_count();
        if names < needed as f64 {
            return None;
        }
        let (severity, threshold) = if names >= self.critical_names as f64 {
            (Severity::Critical, self.critical_names)
        } else {
            (Severity::Warning, self.warning_names)
        };
        let ratio = (t.responses > 0).then(|| {
            ((t.nxdomain + t.servfail) as f64 / t.responses as f64 * 1000.0).round() / 1000.0
        });
        let evidence = json!({
            "distinct_names": names.round() as u64,
            "queries": t.queries,
            "responses": t.responses,
            "nxdomain": t.nxdomain,
            "servfail": t.servfail,
            "failure_ratio": ratio,
            "window_secs": w.window_secs,
            "warning_names": self.warning_names,
            "critical_names": self.critical_names,
            "min_failure_ratio": self.min_failure_ratio,
            "sample_qnames": t.sample_names(),
        });
        Some(Finding {
            severity,
            observed: names,
            threshold: threshold as f64,
            unit: "names",
            evidence: evidence.as_object().cloned().unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, SocketAddr};

    use super::*;
    use crate::detect::test_support::{
        Sink, default_built, from_spec, key_lines, observe_at, validate_table,
    };
    use crate::packet::frame::{FrameBuilder, qtype, rcode};

    struct Feed {
        fb: FrameBuilder,
        sink: Sink,
        d: RandomSubdomain,
    }

    impl Feed {
        fn new() -> Feed {
            let d = default_built(RandomSubdomain::from_spec);
            Feed {
                fb: FrameBuilder::new(),
                sink: Sink::default(),
                d,
            }
        }

        fn message(&mut self, qr: bool, qname: &str, rc: u8) {
            let bytes = if qr {
                let ans: &[IpAddr] = if rc == rcode::NOERROR {
                    &[IpAddr::V4([192, 0, 2, 80].into())]
                } else {
                    &[]
                };
                self.fb
                    .response_message(3, qname, qtype::A, rc, ans, 0)
                    .to_vec()
            } else {
                self.fb.query_message(3, qname, qtype::A, true).to_vec()
            };
            let (c, s): (IpAddr, IpAddr) =
                ("10.9.0.5".parse().unwrap(), "10.9.0.1".parse().unwrap());
            let (src, dst) = if qr { (s, c) } else { (c, s) };
            let (src, dst) = (SocketAddr::new(src, 53), SocketAddr::new(dst, 53));
            observe_at(&self.d, &mut self.sink, 0, src, dst, &bytes, None);
        }

        /// `n` distinct names under `domain`, each queried `repeat` times and
        /// answered `answered` of the times with `rc`.
        fn names(&mut self, domain: &str, n: usize, repeat: usize, rc: Option<u8>) {
            for i in 0..n {
                let name = format!(
                    "k{:08x}.{domain}",
                    (i as u64).wrapping_mul(0x9e37_79b9) as u32
                );
                for _ in 0..repeat {
                    self.message(false, &name, 0);
                    if let Some(rc) = rc {
                        self.message(true, &name, rc);
                    }
                }
            }
        }

        /// Evaluate as the reduce side does: counters first, the full view
        /// only when `needs_full_view` says so.
        fn eval(&self, domain: &str) -> Option<Finding> {
            let key = Key::Domain(domain.into());
            let t = self.sink.0.get(&key)?;
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
            if self.d.needs_full_view(&counts, 10.0) {
                self.d.evaluate(&key, &view(t))
            } else {
                assert!(self.d.evaluate(&key, &view(&counts)).is_none());
                None
            }
        }
    }

    #[test]
    fn random_subdomain_water_torture_fires() {
        let mut f = Feed::new();
        // 600 random names, answered NXDOMAIN.
        f.names("victim.example", 600, 1, Some(rcode::NXDOMAIN));
        // 2000 random names under a co.uk domain, SERVFAIL (auth overloaded).
        f.names("victim.co.uk", 2000, 1, Some(rcode::SERVFAIL));
        // 1600 names, no responses visible at all -> critical only.
        f.names("quiet.example", 1600, 1, None);
        // 900 names, no responses visible: below critical_names.
        f.names("quiet2.example", 900, 1, None);

        let r = f.eval("victim.example").expect("nxdomain water torture");
        assert_eq!(r.severity, Severity::Warning);
        assert_eq!(r.threshold, 300.0);
        assert_eq!(r.unit, "names");
        assert!((r.observed - 600.0).abs() < 12.0, "{}", r.observed);
        assert_eq!(r.evidence["queries"], 600);
        assert_eq!(r.evidence["nxdomain"], 600);
        assert_eq!(r.evidence["failure_ratio"], 1.0);
        let samples = r.evidence["sample_qnames"].as_array().unwrap();
        assert_eq!(samples.len(), 3);
        assert!(
            samples
                .iter()
                .all(|s| s.as_str().unwrap().ends_with(".victim.example"))
        );

        let r = f
            .eval("victim.co.uk")
            .expect("registered domain under a public suffix");
        assert_eq!((r.severity, r.threshold), (Severity::Critical, 1500.0));
        assert_eq!(r.evidence["servfail"], 2000);

        let r = f
            .eval("quiet.example")
            .expect("no responses, above critical");
        assert_eq!(r.severity, Severity::Critical);
        assert_eq!(r.evidence["failure_ratio"], serde_json::Value::Null);
        assert!(
            f.eval("quiet2.example").is_none(),
            "no responses, below critical"
        );
        // Nothing keyed on the public suffix itself.
        assert!(!f.sink.0.contains_key(&Key::Domain("co.uk".into())));
    }

    #[test]
    fn random_subdomain_answered_cdn_does_not_fire() {
        let mut f = Feed::new();
        // A CDN / telemetry domain: 5000 unique names, all answered NOERROR.
        f.names("cdn.example", 5000, 1, Some(rcode::NOERROR));
        // A mostly answered domain with a few NXDOMAIN (10 %).
        for i in 0..1000 {
            let name = format!("t{i}.telemetry.example");
            f.message(false, &name, 0);
            f.message(
                true,
                &name,
                if i % 10 == 0 {
                    rcode::NXDOMAIN
                } else {
                    rcode::NOERROR
                },
            );
        }
        // A popular domain: many queries, few names.
        f.names("popular.example", 20, 200, Some(rcode::NOERROR));
        // Failing names, but few of them (a typo repeated).
        f.names("typo.example", 5, 100, Some(rcode::NXDOMAIN));

        assert!(f.eval("cdn.example").is_none());
        assert!(f.eval("telemetry.example").is_none());
        assert!(f.eval("popular.example").is_none());
        assert!(f.eval("typo.example").is_none());
        // Measure falls back to the query bound without the sketch.
        let t = &f.sink.0[&Key::Domain("cdn.example".into())];
        let w = WindowView {
            tally: t,
            window_secs: 10.0,
            baseline: None,
            panes: &[],
            end: 0,
            slide_secs: 1.0,
        };
        assert!((f.d.measure(&w) - 5000.0).abs() < 100.0);
    }

    #[test]
    fn random_subdomain_ignores_listed_domains() {
        let text = "[detectors.random_subdomain]\nignore_domains = [\"SpamHaus.org\", \"a..b\"]\n";
        let (d, errors) = validate_table(text, "random_subdomain", RandomSubdomain::from_spec);
        assert!(d.is_none());
        assert_eq!(
            key_lines(&errors),
            [("detectors.random_subdomain.ignore_domains", 2)]
        );
        let mut f = Feed::new();
        f.d.ignore_domains = vec!["spamhaus.org".into()];
        // A mail server's DNSBL lookups: unique names, mostly NXDOMAIN.
        f.names("zen.spamhaus.org", 2000, 1, Some(rcode::NXDOMAIN));
        f.names("victim.example", 600, 1, Some(rcode::NXDOMAIN));
        assert!(f.eval("spamhaus.org").is_none());
        assert!(f.eval("victim.example").is_some());
    }

    #[test]
    fn random_subdomain_spec_validation() {
        let text = "[detectors.random_subdomain]\nwarning_names = 0\ncritical_names = 10\nmin_failure_ratio = 0.0\n";
        let (d, errors) = validate_table(text, "random_subdomain", RandomSubdomain::from_spec);
        assert!(d.is_none());
        let got = key_lines(&errors);
        assert_eq!(
            got,
            [
                ("detectors.random_subdomain.warning_names", 2),
                ("detectors.random_subdomain.min_failure_ratio", 4),
            ]
        );
        let spec: RandomSubdomainSpec =
            toml::from_str("warning_names = 500\ncritical_names = 400").unwrap();
        let (d, errors) = from_spec(&spec, text, RandomSubdomain::from_spec);
        assert!(d.is_none());
        assert_eq!(errors[0].key, "detectors.random_subdomain.critical_names");
        assert!(toml::from_str::<RandomSubdomainSpec>("warning_names = -1").is_err());
        assert!(toml::from_str::<RandomSubdomainSpec>("min_ratio = 0.5").is_err());
        let spec: RandomSubdomainSpec = toml::from_str("enabled = false").unwrap();
        assert!(
            from_spec(&spec, text, RandomSubdomain::from_spec)
                .0
                .is_none()
        );
    }
}
