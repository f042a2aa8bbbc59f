//! `nxdomain_flood`: one client receives a stream of NXDOMAIN answers (a
//! bot walking random names, a misconfigured search list, a DGA, the client
//! side of a random-subdomain attack). Key: the client, i.e. the destination
//! of responses. Observed: NXDOMAIN responses per second over the window.
//!
//! Fires when the rate reaches `warning_rate` (critical at `critical_rate`)
//! AND at least `min_ratio` of the client's responses are NXDOMAIN AND the
//! client got at least `min_responses` responses in the window: a busy
//! client whose failures are a minority is not flooded, it is just busy.
//!
//! The same code, with rcode 2, is `servfail_flood` (see that module):
//! [`RcodeFlood`] is generic over the rcode it counts.

use serde::Deserialize;
use serde_json::json;

use super::spec::{Check, NetList, defaults, yes};
use super::{
    Detector, Finding, Key, KeyRef, Kind, Observed, Severity, Tally, TallySink, WindowView,
};
use crate::spec::{ConfigError, Located};

/// Response code 3.
pub const RCODE_NXDOMAIN: u16 = 3;
/// Response code 2.
pub const RCODE_SERVFAIL: u16 = 2;

/// `[detectors.nxdomain_flood]` and `[detectors.servfail_flood]` in a
/// pipeline file (same keys and defaults).
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RcodeFloodSpec {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Failed responses per second (averaged over the window) for a warning.
    #[serde(default = "default_warning")]
    pub warning_rate: toml::Spanned<f64>,
    /// Failed responses per second for a critical alert; >= warning_rate.
    #[serde(default = "default_critical")]
    pub critical_rate: toml::Spanned<f64>,
    /// Least fraction of the client's responses that failed, in (0, 1].
    #[serde(default = "default_min_ratio")]
    pub min_ratio: toml::Spanned<f64>,
    /// Least responses to the client in the window (at least 1).
    #[serde(default = "default_min_responses")]
    pub min_responses: toml::Spanned<u64>,
    /// Clients (addresses or prefixes) this detector never counts.
    #[serde(default)]
    pub allow_clients: Vec<toml::Spanned<String>>,
}

/// `[detectors.nxdomain_flood]`.
pub type NxdomainFloodSpec = RcodeFloodSpec;

defaults! {
    default_warning: f64 = 20.0;
    default_critical: f64 = 100.0;
    default_min_ratio: f64 = 0.5;
    default_min_responses: u64 = 20;
}

impl Default for RcodeFloodSpec {
    fn default() -> Self {
        RcodeFloodSpec {
            enabled: true,
            warning_rate: default_warning(),
            critical_rate: default_critical(),
            min_ratio: default_min_ratio(),
            min_responses: default_min_responses(),
            allow_clients: Vec::new(),
        }
    }
}

/// A flood of responses with rcode `RCODE` to one client. Only
/// [`NxdomainFlood`] (3) and `ServfailFlood` (2) exist; other values do
/// not compile.
///
/// Tally fields used: `responses` (all responses to the client), `nxdomain`
/// (rcode 3, for `NxdomainFlood`) or `servfail` (rcode 2, for
/// `ServfailFlood`); samples are failing names only.
#[derive(Clone, Debug, PartialEq)]
pub struct RcodeFlood<const RCODE: u16> {
    pub warning_rate: f64,
    pub critical_rate: f64,
    pub min_ratio: f64,
    pub min_responses: u64,
    pub allow_clients: NetList,
}

/// `nxdomain_flood`.
pub type NxdomainFlood = RcodeFlood<RCODE_NXDOMAIN>;

impl<const RCODE: u16> RcodeFlood<RCODE> {
    /// The alert kind (compile error for an rcode without one).
    pub const KIND: Kind = match RCODE {
        RCODE_NXDOMAIN => Kind::NxdomainFlood,
        RCODE_SERVFAIL => Kind::ServfailFlood,
        _ => panic!("RcodeFlood exists for NXDOMAIN (3) and SERVFAIL (2) only"),
    };

    /// Name of the counted rcode, as used in evidence.
    pub const RCODE_NAME: &'static str = match RCODE {
        RCODE_NXDOMAIN => "nxdomain",
        _ => "servfail",
    };

    /// The failures counted in a tally.
    pub fn failures(t: &Tally) -> u64 {
        if RCODE == RCODE_NXDOMAIN {
            t.nxdomain
        } else {
            t.servfail
        }
    }

    /// Validate `spec`; `None` when disabled or invalid (errors pushed).
    pub fn from_spec(
        spec: &RcodeFloodSpec,
        loc: &Located<'_>,
        errors: &mut Vec<ConfigError>,
    ) -> Option<Self> {
        if !spec.enabled {
            return None;
        }
        let mut check = Check::new(Self::KIND, loc, errors);
        let w = check.positive("warning_rate", &spec.warning_rate);
        let c = check.positive_at_least("critical_rate", &spec.critical_rate, w, "warning_rate");
        let ratio = check.ratio("min_ratio", &spec.min_ratio);
        let min_responses = check.at_least_one("min_responses", &spec.min_responses);
        let allow_clients = check.nets("allow_clients", &spec.allow_clients);
        check.ok().then_some(RcodeFlood {
            warning_rate: w,
            critical_rate: c,
            min_ratio: ratio,
            min_responses,
            allow_clients,
        })
    }
}

impl<const RCODE: u16> Detector for RcodeFlood<RCODE> {
    fn kind(&self) -> Kind {
        Self::KIND
    }

    fn observe(&self, m: &Observed<'_, '_>, sink: &mut dyn TallySink) {
        if !m.msg.qr || self.allow_clients.contains(m.payload.dst) {
            return;
        }
        let t = sink.tally(KeyRef::Client(m.payload.dst));
        t.responses += 1;
        if m.msg.rcode == RCODE {
            if RCODE == RCODE_NXDOMAIN {
                t.nxdomain += 1;
            } else {
                t.servfail += 1;
            }
            if let Some(q) = &m.msg.question {
                t.offer_qname(&q.qname);
            }
        }
    }

    fn pane_may_fire(&self, pane: &Tally, slide_secs: f64, _panes: u64) -> bool {
        super::pane_share(Self::failures(pane), self.warning_rate, slide_secs)
    }

    fn measure(&self, w: &WindowView<'_>) -> f64 {
        Self::failures(w.tally) as f64 / w.window_secs
    }

    fn evaluate(&self, _key: &Key, w: &WindowView<'_>) -> Option<Finding> {
        let t = w.tally;
        let failures = Self::failures(t);
        if t.responses == 0 || t.responses < self.min_responses {
            return None;
        }
        let ratio = failures as f64 / t.responses as f64;
        if ratio < self.min_ratio {
            return None;
        }
        let rate = self.measure(w);
        let (severity, threshold) = if rate >= self.critical_rate {
            (Severity::Critical, self.critical_rate)
        } else if rate >= self.warning_rate {
            (Severity::Warning, self.warning_rate)
        } else {
            return None;
        };
        let mut evidence = serde_json::Map::new();
        evidence.insert("responses".into(), json!(t.responses));
        evidence.insert(Self::RCODE_NAME.into(), json!(failures));
        evidence.insert("ratio".into(), json!(round3(ratio)));
        evidence.insert("window_secs".into(), json!(w.window_secs));
        evidence.insert("warning_rate".into(), json!(self.warning_rate));
        evidence.insert("critical_rate".into(), json!(self.critical_rate));
        evidence.insert("min_ratio".into(), json!(self.min_ratio));
        evidence.insert("min_responses".into(), json!(self.min_responses));
        evidence.insert("sample_qnames".into(), json!(t.sample_names()));
        Some(Finding {
            severity,
            observed: rate,
            threshold,
            unit: "responses/s",
            evidence,
        })
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::detect::test_support::*;
    use crate::packet::frame::{FrameBuilder, qtype, rcode};

    const CLIENT: &str = "10.0.0.7";
    const SERVER: &str = "10.0.0.1";

    /// One response from the server to `client` for `qname` with `rc`.
    fn respond(
        d: &dyn Detector,
        sink: &mut Sink,
        fb: &mut FrameBuilder,
        client: &str,
        qname: &str,
        rc: u8,
    ) {
        let answers: &[IpAddr] = if rc == rcode::NOERROR {
            &[IpAddr::V4([192, 0, 2, 1].into())]
        } else {
            &[]
        };
        let bytes = fb
            .response_message(7, qname, qtype::A, rc, answers, 0)
            .to_vec();
        observe_at(d, sink, 0, at(SERVER, 53), at(client, 40000), &bytes, None);
    }

    fn query(d: &dyn Detector, sink: &mut Sink, fb: &mut FrameBuilder, client: &str, qname: &str) {
        let bytes = fb.query_message(7, qname, qtype::A, true).to_vec();
        observe_at(d, sink, 0, at(client, 40000), at(SERVER, 53), &bytes, None);
    }

    fn eval(d: &dyn Detector, sink: &Sink, client: &str) -> Option<Finding> {
        eval_key(d, sink, &Key::Client(client.parse().unwrap()))
    }

    fn default_detector() -> NxdomainFlood {
        default_built(NxdomainFlood::from_spec)
    }

    #[test]
    fn nxdomain_flood_tiers_and_non_firing() {
        let d = default_detector();
        assert_eq!(
            d,
            RcodeFlood {
                warning_rate: 20.0,
                critical_rate: 100.0,
                min_ratio: 0.5,
                min_responses: 20,
                allow_clients: NetList::default(),
            }
        );
        let mut fb = FrameBuilder::new();
        let mut sink = Sink::default();
        // A bot: 300 NXDOMAIN + 100 NOERROR in 10 s -> 30/s, ratio 0.75.
        let bot = "10.0.0.66";
        for i in 0..300 {
            respond(
                &d,
                &mut sink,
                &mut fb,
                bot,
                &format!("x{i}.example.com"),
                rcode::NXDOMAIN,
            );
        }
        for i in 0..100 {
            respond(
                &d,
                &mut sink,
                &mut fb,
                bot,
                &format!("ok{i}.example.com"),
                rcode::NOERROR,
            );
        }
        // Queries are not counted.
        for _ in 0..50 {
            query(&d, &mut sink, &mut fb, bot, "www.example.com");
        }
        // A busy but healthy client: 3000 responses, 400 NXDOMAIN (40/s, ratio 0.13).
        let busy = "10.0.0.8";
        for i in 0..3000 {
            let rc = if i % 15 < 2 {
                rcode::NXDOMAIN
            } else {
                rcode::NOERROR
            };
            respond(
                &d,
                &mut sink,
                &mut fb,
                busy,
                &format!("n{i}.example.org"),
                rc,
            );
        }
        // A critical one: 1200 NXDOMAIN, nothing else (120/s).
        let crit = "10.0.0.9";
        for i in 0..1200 {
            respond(
                &d,
                &mut sink,
                &mut fb,
                crit,
                &format!("r{i}.victim.test"),
                rcode::NXDOMAIN,
            );
        }
        // SERVFAIL does not count for nxdomain_flood.
        let sf = "10.0.0.10";
        for i in 0..1200 {
            respond(
                &d,
                &mut sink,
                &mut fb,
                sf,
                &format!("s{i}.broken.test"),
                rcode::SERVFAIL,
            );
        }
        // Below warning: 150 NXDOMAIN (15/s), all failures.
        let slow = "10.0.0.11";
        for i in 0..150 {
            respond(
                &d,
                &mut sink,
                &mut fb,
                slow,
                &format!("q{i}.example.net"),
                rcode::NXDOMAIN,
            );
        }

        let f = eval(&d, &sink, bot).expect("bot fires");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.observed, 30.0);
        assert_eq!(f.threshold, 20.0);
        assert_eq!(f.unit, "responses/s");
        assert_eq!(f.evidence["responses"], 400);
        assert_eq!(f.evidence["nxdomain"], 300);
        assert_eq!(f.evidence["ratio"], 0.75);
        let samples = f.evidence["sample_qnames"].as_array().unwrap();
        assert_eq!(samples.len(), 3);
        assert!(samples.iter().all(|s| s.as_str().unwrap().starts_with('x')));

        assert!(eval(&d, &sink, busy).is_none(), "ratio below min_ratio");
        let f = eval(&d, &sink, crit).unwrap();
        assert_eq!(
            (f.severity, f.observed, f.threshold),
            (Severity::Critical, 120.0, 100.0)
        );
        assert!(eval(&d, &sink, sf).is_none(), "SERVFAIL is not NXDOMAIN");
        assert!(eval(&d, &sink, slow).is_none(), "below warning_rate");
        assert!(
            eval(&d, &sink, SERVER).is_none(),
            "no key for the query source's peer"
        );
        assert_eq!(
            d.measure(&WindowView {
                tally: &sink.0[&Key::Client(bot.parse().unwrap())],
                window_secs: 10.0,
                baseline: None,
                panes: &[],
                end: 0,
                slide_secs: 1.0,
            }),
            30.0
        );
        assert_eq!(
            d.measure(&WindowView {
                tally: &Tally::default(),
                window_secs: 10.0,
                baseline: None,
                panes: &[],
                end: 0,
                slide_secs: 1.0,
            }),
            0.0
        );
    }

    #[test]
    fn nxdomain_flood_min_responses() {
        // With a low warning rate the min_responses floor is what holds.
        let d = NxdomainFlood {
            warning_rate: 0.5,
            critical_rate: 100.0,
            min_ratio: 0.5,
            min_responses: 20,
            allow_clients: NetList::default(),
        };
        let mut fb = FrameBuilder::new();
        let mut sink = Sink::default();
        for i in 0..19 {
            respond(
                &d,
                &mut sink,
                &mut fb,
                CLIENT,
                &format!("x{i}.example.com"),
                rcode::NXDOMAIN,
            );
        }
        assert!(
            eval(&d, &sink, CLIENT).is_none(),
            "19 responses < min_responses"
        );
        respond(
            &d,
            &mut sink,
            &mut fb,
            CLIENT,
            "x19.example.com",
            rcode::NXDOMAIN,
        );
        assert_eq!(eval(&d, &sink, CLIENT).unwrap().severity, Severity::Warning);
    }

    #[test]
    fn nxdomain_flood_spec_validation() {
        let text = "[detectors.nxdomain_flood]\nwarning_rate = -1.0\ncritical_rate = 5.0\nmin_ratio = 1.5\nmin_responses = 0\n";
        let (d, errors) = validate_table(text, "nxdomain_flood", NxdomainFlood::from_spec);
        assert!(d.is_none());
        let keys = error_keys(&errors);
        assert_eq!(
            keys,
            [
                "detectors.nxdomain_flood.warning_rate",
                "detectors.nxdomain_flood.min_ratio",
                "detectors.nxdomain_flood.min_responses",
            ]
        );
        assert_eq!(errors[0].line, 2);

        let spec: NxdomainFloodSpec =
            toml::from_str("warning_rate = 50.0\ncritical_rate = 40.0\n").unwrap();
        let (d, errors) = from_spec(&spec, text, NxdomainFlood::from_spec);
        assert!(d.is_none());
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].key, "detectors.nxdomain_flood.critical_rate");

        let spec: NxdomainFloodSpec =
            toml::from_str("enabled = false\nwarning_rate = -1.0").unwrap();
        let (d, errors) = from_spec(&spec, text, NxdomainFlood::from_spec);
        assert!(d.is_none());
        assert!(errors.is_empty(), "a disabled detector is not validated");

        assert!(toml::from_str::<NxdomainFloodSpec>("warning_qps = 1.0").is_err());
        let spec: NxdomainFloodSpec = toml::from_str("min_ratio = 1.0").unwrap();
        assert!(from_spec(&spec, text, NxdomainFlood::from_spec).0.is_some());
    }
}
