//! `servfail_flood`: one client receives a stream of SERVFAIL answers (the
//! resolver cannot reach the zone's servers: the visible end of a
//! random-subdomain attack on an overloaded authoritative, a broken DNSSEC
//! chain, an NRDelegation-style resolver DoS). Key: the client (destination
//! of responses). Observed: SERVFAIL responses per second over the window.
//!
//! Same rule and keys as `nxdomain_flood` with rcode 2 counted (in the
//! tally's `servfail` field): fires when the rate reaches `warning_rate`
//! (critical at `critical_rate`) AND at least `min_ratio` of the client's
//! responses are SERVFAIL AND it got at least `min_responses` responses.

pub use super::nxdomain_flood::{RCODE_SERVFAIL, RcodeFlood, RcodeFloodSpec};

/// `[detectors.servfail_flood]` (same keys and defaults as `nxdomain_flood`).
pub type ServfailFloodSpec = RcodeFloodSpec;

/// `servfail_flood`.
pub type ServfailFlood = RcodeFlood<RCODE_SERVFAIL>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::test_support::*;
    use crate::detect::{Detector, Key, Kind, Severity};
    use crate::packet::frame::{FrameBuilder, qtype, rcode};

    fn respond(
        d: &dyn Detector,
        sink: &mut Sink,
        fb: &mut FrameBuilder,
        client: &str,
        qname: &str,
        rc: u8,
    ) {
        let bytes = fb
            .response_message(9, qname, qtype::AAAA, rc, &[], 0)
            .to_vec();
        let (src, dst) = (at("192.0.2.53", 53), at(client, 41000));
        observe_at(d, sink, 0, src, dst, &bytes, None);
    }

    fn eval(d: &dyn Detector, sink: &Sink, client: &str) -> Option<crate::detect::Finding> {
        eval_key(d, sink, &Key::Client(client.parse().unwrap()))
    }

    #[test]
    fn servfail_flood_tiers_and_non_firing() {
        let d = default_built(ServfailFlood::from_spec);
        assert_eq!(d.kind(), Kind::ServfailFlood);
        let mut fb = FrameBuilder::new();
        let mut sink = Sink::default();
        // IPv6 client: 250 SERVFAIL, 50 NOERROR (25/s, ratio 0.83).
        let v6 = "2001:db8::7";
        for i in 0..250 {
            respond(
                &d,
                &mut sink,
                &mut fb,
                v6,
                &format!("a{i}.victim.test"),
                rcode::SERVFAIL,
            );
        }
        for i in 0..50 {
            respond(
                &d,
                &mut sink,
                &mut fb,
                v6,
                &format!("ok{i}.example.com"),
                rcode::NOERROR,
            );
        }
        // NXDOMAIN does not count for servfail_flood.
        let nx = "10.1.1.1";
        for i in 0..2000 {
            respond(
                &d,
                &mut sink,
                &mut fb,
                nx,
                &format!("a{i}.victim.test"),
                rcode::NXDOMAIN,
            );
        }
        // Critical: 1500 SERVFAIL (150/s).
        let crit = "10.1.1.2";
        for i in 0..1500 {
            respond(
                &d,
                &mut sink,
                &mut fb,
                crit,
                &format!("a{i}.victim.test"),
                rcode::SERVFAIL,
            );
        }
        // Many SERVFAIL (30/s) but a minority of a busy client's answers.
        let busy = "10.1.1.3";
        for i in 0..3000 {
            let rc = if i % 10 == 0 {
                rcode::SERVFAIL
            } else {
                rcode::NOERROR
            };
            respond(
                &d,
                &mut sink,
                &mut fb,
                busy,
                &format!("b{i}.example.com"),
                rc,
            );
        }

        let f = eval(&d, &sink, v6).unwrap();
        assert_eq!(
            (f.severity, f.observed, f.threshold),
            (Severity::Warning, 25.0, 20.0)
        );
        assert_eq!(f.evidence["servfail"], 250);
        assert_eq!(f.evidence["responses"], 300);
        assert_eq!(f.evidence["ratio"], 0.833);
        assert!(f.evidence.get("nxdomain").is_none());
        assert_eq!(f.evidence["sample_qnames"].as_array().unwrap().len(), 3);
        assert!(eval(&d, &sink, nx).is_none());
        let f = eval(&d, &sink, crit).unwrap();
        assert_eq!((f.severity, f.observed), (Severity::Critical, 150.0));
        assert!(eval(&d, &sink, busy).is_none());
    }

    #[test]
    fn servfail_flood_spec_keys_in_errors() {
        let spec: ServfailFloodSpec = toml::from_str("min_ratio = 0.0\nmin_responses = 0").unwrap();
        let (d, errors) = from_spec(&spec, "", ServfailFlood::from_spec);
        assert!(d.is_none());
        assert_eq!(
            error_keys(&errors),
            [
                "detectors.servfail_flood.min_ratio",
                "detectors.servfail_flood.min_responses"
            ]
        );
    }
}
