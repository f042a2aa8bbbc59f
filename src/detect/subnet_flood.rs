//! `subnet_flood`: a query flood spread over several sources of one subnet
//! (a botnet in one network, a source-rotating flooder), which per-client
//! `client_flood` thresholds miss. Key: the query source's subnet (IPv4
//! masked to `v4_prefix` bits, IPv6 to `v6_prefix`). Observed: queries per
//! second over the window; warning and critical tiers.
//!
//! It fires only when the subnet has at least `min_clients` distinct
//! sources in the window (HLL++ sketch of source address hashes) and the
//! average rate per source is below `max_client_qps` (default 100, the
//! client_flood warning): one flooder among a few quiet neighbours raises
//! the average over it and stays `client_flood`'s job; many hosts each
//! below the client threshold are this detector's. (The sketch knows how
//! many sources there are, not how queries spread over them: one flooder
//! among hundreds of busy neighbours can still raise both.)
//!
//! Tally fields used: `queries`, `bytes` (query message bytes), `distinct`
//! (source addresses), samples.

use serde::Deserialize;
use serde_json::json;

use super::spec::{Check, defaults, yes};
use super::{Detector, Finding, Key, KeyRef, Kind, Observed, Severity, TallySink, WindowView};
use crate::config::{ConfigError, Located};

/// `[detectors.subnet_flood]` in a pipeline file.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetFloodSpec {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Queries per second from the subnet (averaged over the window) for a
    /// warning.
    #[serde(default = "default_warning")]
    pub warning_qps: toml::Spanned<f64>,
    /// Queries per second for a critical alert; must be >= warning_qps.
    #[serde(default = "default_critical")]
    pub critical_qps: toml::Spanned<f64>,
    /// IPv4 prefix length of a subnet, 1..=32.
    #[serde(default = "default_v4_prefix")]
    pub v4_prefix: toml::Spanned<u64>,
    /// IPv6 prefix length of a subnet, 1..=128.
    #[serde(default = "default_v6_prefix")]
    pub v6_prefix: toml::Spanned<u64>,
    /// Least distinct source addresses in the subnet for an alert (>= 1).
    #[serde(default = "default_min_clients")]
    pub min_clients: toml::Spanned<u64>,
    /// Average queries/s per source at or above which the subnet's rate is
    /// left to `client_flood` (> 0).
    #[serde(default = "default_max_client_qps")]
    pub max_client_qps: toml::Spanned<f64>,
}

defaults! {
    default_warning: f64 = 500.0;
    default_critical: f64 = 1500.0;
    default_v4_prefix: u64 = 24;
    default_v6_prefix: u64 = 64;
    default_min_clients: u64 = 4;
    default_max_client_qps: f64 = 100.0;
}

impl Default for SubnetFloodSpec {
    fn default() -> Self {
        SubnetFloodSpec {
            enabled: true,
            warning_qps: default_warning(),
            critical_qps: default_critical(),
            v4_prefix: default_v4_prefix(),
            v6_prefix: default_v6_prefix(),
            min_clients: default_min_clients(),
            max_client_qps: default_max_client_qps(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct SubnetFlood {
    pub warning_qps: f64,
    pub critical_qps: f64,
    pub v4_prefix: u8,
    pub v6_prefix: u8,
    pub min_clients: u64,
    pub max_client_qps: f64,
}

impl SubnetFlood {
    /// Validate `spec`; `None` when disabled or invalid (errors pushed).
    pub fn from_spec(
        spec: &SubnetFloodSpec,
        loc: &Located<'_>,
        errors: &mut Vec<ConfigError>,
    ) -> Option<SubnetFlood> {
        if !spec.enabled {
            return None;
        }
        let mut check = Check::new(Kind::SubnetFlood, loc, errors);
        let w = check.positive("warning_qps", &spec.warning_qps);
        let c = check.positive_at_least("critical_qps", &spec.critical_qps, w, "warning_qps");
        let mut prefix = |key: &str, s: &toml::Spanned<u64>, max: u64| -> u8 {
            let msg = format!("must be a prefix length in 1..={max}");
            let v = check.require(key, s, |v| (1..=max).contains(&v), msg);
            v.min(max) as u8
        };
        let v4_prefix = prefix("v4_prefix", &spec.v4_prefix, 32);
        let v6_prefix = prefix("v6_prefix", &spec.v6_prefix, 128);
        let min_clients = check.at_least_one("min_clients", &spec.min_clients);
        let max_client_qps = check.positive("max_client_qps", &spec.max_client_qps);
        check.ok().then_some(SubnetFlood {
            warning_qps: w,
            critical_qps: c,
            v4_prefix,
            v6_prefix,
            min_clients,
            max_client_qps,
        })
    }
}

impl Detector for SubnetFlood {
    fn kind(&self) -> Kind {
        Kind::SubnetFlood
    }

    fn observe(&self, m: &Observed<'_, '_>, sink: &mut dyn TallySink) {
        if m.msg.qr {
            return;
        }
        let src = m.payload.src;
        let t = sink.tally(KeyRef::subnet_of(src, self.v4_prefix, self.v6_prefix));
        t.queries += 1;
        t.bytes += m.msg.size as u64;
        t.distinct_mut().insert(crate::sketch::stable_hash(&src));
        if let Some(q) = &m.msg.question {
            t.offer_qname(&q.qname);
        }
    }

    /// The distinct-sources sketch is needed once the rate alone would alert.
    fn needs_full_view(&self, counts: &super::Tally, window_secs: f64) -> bool {
        counts.queries as f64 / window_secs >= self.warning_qps
    }

    fn pane_may_fire(&self, pane: &super::Tally, slide_secs: f64, _panes: u64) -> bool {
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
        // Without the sketch (counters-only view) this is 0: no finding, and
        // `needs_full_view` makes sure the sketch is there when it matters.
        let clients = w.tally.distinct_count().round() as u64;
        if clients < self.min_clients {
            return None;
        }
        // When the average client of the subnet is itself flooding, the
        // rate is one or a few clients' doing: `client_flood` reports them.
        // This detector is for many hosts each below the client threshold.
        if qps / clients.max(1) as f64 >= self.max_client_qps {
            return None;
        }
        let evidence = json!({
            "queries": w.tally.queries,
            "query_bytes": w.tally.bytes,
            "distinct_clients": clients,
            "window_secs": w.window_secs,
            "warning_qps": self.warning_qps,
            "critical_qps": self.critical_qps,
            "min_clients": self.min_clients,
            "max_client_qps": self.max_client_qps,
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
    use std::net::{IpAddr, SocketAddr};

    use super::*;
    use crate::detect::Tally;
    use crate::detect::test_support::*;
    use crate::synth::{FrameBuilder, qtype};

    fn query(d: &dyn Detector, sink: &mut Sink, fb: &mut FrameBuilder, src: IpAddr, qname: &str) {
        let bytes = fb.query_message(1, qname, qtype::A, false).to_vec();
        let dst: IpAddr = if src.is_ipv4() {
            "192.0.2.53".parse().unwrap()
        } else {
            "2001:db8::53".parse().unwrap()
        };
        let (src, dst) = (SocketAddr::new(src, 40000), SocketAddr::new(dst, 53));
        observe_at(d, sink, 0, src, dst, &bytes, None);
    }

    fn eval(d: &SubnetFlood, sink: &Sink, subnet: &str, prefix: u8) -> Option<Finding> {
        let key = Key::Subnet(subnet.parse().unwrap(), prefix);
        let t = sink.0.get(&key)?;
        // As the reduce side does: counters first, full view when asked.
        let counts_only = Tally {
            queries: t.queries,
            bytes: t.bytes,
            ..Tally::default()
        };
        let view = |tally| WindowView {
            tally,
            window_secs: 10.0,
            baseline: None,
        };
        if d.needs_full_view(&counts_only, 10.0) {
            d.evaluate(&key, &view(t))
        } else {
            assert!(d.evaluate(&key, &view(&counts_only)).is_none());
            None
        }
    }

    fn detector() -> SubnetFlood {
        default_built(SubnetFlood::from_spec)
    }

    #[test]
    fn subnet_flood_tiers_and_non_firing() {
        let d = detector();
        assert_eq!(
            d,
            SubnetFlood {
                warning_qps: 500.0,
                critical_qps: 1500.0,
                v4_prefix: 24,
                v6_prefix: 64,
                min_clients: 4,
                max_client_qps: 100.0,
            }
        );
        let mut fb = FrameBuilder::new();
        let mut sink = Sink::default();
        // 20 bots in 198.51.100.0/24: 6000 queries (600/s).
        for i in 0..6000u32 {
            let src = IpAddr::V4([198, 51, 100, (i % 20) as u8 + 1].into());
            query(
                &d,
                &mut sink,
                &mut fb,
                src,
                &format!("w{}.example.com", i % 97),
            );
        }
        // One client alone in 203.0.113.0/24 floods at 2000/s: client_flood's job.
        for _ in 0..20_000 {
            query(
                &d,
                &mut sink,
                &mut fb,
                "203.0.113.9".parse().unwrap(),
                "www.example.com",
            );
        }
        // 3 clients in 192.0.2.0/24 at 800/s: fewer than min_clients.
        for i in 0..8000u32 {
            let src = IpAddr::V4([192, 0, 2, (i % 3) as u8 + 10].into());
            query(&d, &mut sink, &mut fb, src, "api.example.com");
        }
        // A busy office /24 of 200 clients at 300/s: below warning.
        for i in 0..3000u32 {
            let src = IpAddr::V4([10, 20, 30, (i % 200) as u8 + 1].into());
            query(&d, &mut sink, &mut fb, src, "mail.example.com");
        }
        // IPv6: 64 sources of one /64 (distinct /128s) at 1600/s -> critical.
        for i in 0..16_000u32 {
            let src: IpAddr = format!("2001:db8:1:2::{:x}", i % 64 + 1).parse().unwrap();
            query(&d, &mut sink, &mut fb, src, "v6.example.com");
        }

        let f = eval(&d, &sink, "198.51.100.0", 24).expect("spread flood fires");
        assert_eq!(
            (f.severity, f.observed, f.threshold),
            (Severity::Warning, 600.0, 500.0)
        );
        assert_eq!(f.unit, "queries/s");
        assert_eq!(f.evidence["distinct_clients"], 20);
        assert_eq!(f.evidence["queries"], 6000);
        assert_eq!(f.evidence["min_clients"], 4);
        assert_eq!(f.evidence["sample_qnames"].as_array().unwrap().len(), 3);
        assert!(eval(&d, &sink, "203.0.113.0", 24).is_none(), "one client");
        assert!(eval(&d, &sink, "192.0.2.0", 24).is_none(), "three clients");
        assert!(eval(&d, &sink, "10.20.30.0", 24).is_none(), "below warning");
        let f = eval(&d, &sink, "2001:db8:1:2::", 64).expect("v6 /64");
        assert_eq!(
            (f.severity, f.observed, f.threshold),
            (Severity::Critical, 1600.0, 1500.0)
        );
        assert_eq!(f.evidence["distinct_clients"], 64);
        assert_eq!(sink.0.len(), 5, "one key per subnet");
        assert_eq!(
            Key::subnet_of("198.51.100.77".parse().unwrap(), 24, 64).to_json(),
            json!({"subnet": "198.51.100.0/24"})
        );
    }

    #[test]
    fn subnet_flood_prefixes() {
        let d = SubnetFlood {
            v4_prefix: 16,
            v6_prefix: 48,
            min_clients: 2,
            max_client_qps: f64::MAX,
            ..detector()
        };
        let mut fb = FrameBuilder::new();
        let mut sink = Sink::default();
        for i in 0..5000u32 {
            let src = IpAddr::V4([172, 16, (i % 2) as u8, 5].into());
            query(&d, &mut sink, &mut fb, src, "x.example.com");
        }
        query(
            &d,
            &mut sink,
            &mut fb,
            "2001:db8:7:1::1".parse().unwrap(),
            "x.example.com",
        );
        query(
            &d,
            &mut sink,
            &mut fb,
            "2001:db8:7:2::1".parse().unwrap(),
            "x.example.com",
        );
        assert!(
            sink.0
                .contains_key(&Key::Subnet("2001:db8:7::".parse().unwrap(), 48))
        );
        assert_eq!(
            eval(&d, &sink, "172.16.0.0", 16).unwrap().severity,
            Severity::Warning
        );
    }

    #[test]
    fn subnet_flood_spec_validation() {
        let text = "[detectors.subnet_flood]\nwarning_qps = 0.0\ncritical_qps = 100.0\nv4_prefix = 33\nv6_prefix = 0\nmin_clients = 0\n";
        let (d, errors) = validate_table(text, "subnet_flood", SubnetFlood::from_spec);
        assert!(d.is_none());
        let got = key_lines(&errors);
        assert_eq!(
            got,
            [
                ("detectors.subnet_flood.warning_qps", 2),
                ("detectors.subnet_flood.v4_prefix", 4),
                ("detectors.subnet_flood.v6_prefix", 5),
                ("detectors.subnet_flood.min_clients", 6),
            ]
        );
        let spec: SubnetFloodSpec =
            toml::from_str("warning_qps = 10.0\ncritical_qps = 9.0").unwrap();
        let (d, errors) = from_spec(&spec, text, SubnetFlood::from_spec);
        assert!(d.is_none());
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].key, "detectors.subnet_flood.critical_qps");
        let spec: SubnetFloodSpec = toml::from_str("enabled = false\nv4_prefix = 99").unwrap();
        let (d, errors) = from_spec(&spec, text, SubnetFlood::from_spec);
        assert!(d.is_none());
        assert!(errors.is_empty());
        assert!(toml::from_str::<SubnetFloodSpec>("prefix = 24").is_err());
    }
}
