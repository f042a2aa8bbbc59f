//! `subnet_flood`: a query flood spread over several sources of one subnet
//! (a botnet in one network, a source-rotating flooder), which per-client
//! `client_flood` thresholds miss. Key: the query source's subnet (IPv4
//! masked to `v4_prefix` bits, IPv6 to `v6_prefix`). Observed: queries per
//! second; warning and critical tiers. Three rules, the first that holds
//! wins:
//!
//! - **window**: the rate over the whole window reaches a tier;
//! - **burst**: the rate over the newest `burst_secs` of the window reaches a
//!   tier (so a flood is raised at the first window that shows it, not when
//!   it has filled the window);
//! - **weak** (warning only): over the newest `burst_secs`, at least
//!   `weak_qps` from at least `weak_min_clients` sources averaging at least
//!   `weak_client_qps` each — many hosts each far below the client
//!   threshold but all busy, which a benign subnet (many hosts, most of
//!   them quiet) does not look like.
//!
//! Every rule needs at least `min_clients` distinct sources (HLL++ sketch of
//! source address hashes) and an average per source below `max_client_qps`
//! (default 100, the client_flood warning): one flooder among a few quiet
//! neighbours stays `client_flood`'s job. And every rule needs the
//! subnet's NXDOMAIN share of responses at most `max_nxdomain_ratio`: bots of
//! a water-torture attack (random names under one victim domain, mostly
//! NXDOMAIN) are `random_subdomain`'s, keyed by the victim domain.
//!
//! The burst and weak rules read the complete panes of the window
//! (`WindowView::panes`, merged by the reducer once the frontier passed
//! them), so they are a function of the input alone, as the window rule is.
//!
//! Sources in `allow_clients` (addresses and prefixes) are never counted.
//!
//! Tally fields used: `queries`, `bytes` (query message bytes), `distinct`
//! (source addresses), samples; `responses` and `nxdomain` (responses sent
//! to the subnet).

use serde::Deserialize;
use serde_json::json;

use super::spec::{Check, NetList, defaults, yes};
use super::{Detector, Finding, Key, KeyRef, Kind, Observed, Severity, TallySink, WindowView};
use crate::spec::{ConfigError, Located};

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
    /// Length in seconds of the newest part of the window the burst and weak
    /// rules look at (a multiple of the slide, at most the window).
    #[serde(default = "default_burst_secs")]
    pub burst_secs: toml::Spanned<u64>,
    /// Weak rule: queries per second over `burst_secs` (> 0).
    #[serde(default = "default_weak_qps")]
    pub weak_qps: toml::Spanned<f64>,
    /// Weak rule: least distinct sources over `burst_secs` (>= 1).
    #[serde(default = "default_weak_min_clients")]
    pub weak_min_clients: toml::Spanned<u64>,
    /// Weak rule: least average queries/s per source (> 0).
    #[serde(default = "default_weak_client_qps")]
    pub weak_client_qps: toml::Spanned<f64>,
    /// Largest NXDOMAIN share of the subnet's responses for any rule, in
    /// (0, 1].
    #[serde(default = "default_max_nxdomain_ratio")]
    pub max_nxdomain_ratio: toml::Spanned<f64>,
    /// Sources (addresses or prefixes) this detector never counts.
    #[serde(default)]
    pub allow_clients: Vec<toml::Spanned<String>>,
}

defaults! {
    default_warning: f64 = 500.0;
    default_critical: f64 = 1500.0;
    default_v4_prefix: u64 = 24;
    default_v6_prefix: u64 = 64;
    default_min_clients: u64 = 4;
    default_max_client_qps: f64 = 100.0;
    default_burst_secs: u64 = 2;
    default_weak_qps: f64 = 150.0;
    default_weak_min_clients: u64 = 20;
    default_weak_client_qps: f64 = 4.0;
    default_max_nxdomain_ratio: f64 = 0.5;
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
            burst_secs: default_burst_secs(),
            weak_qps: default_weak_qps(),
            weak_min_clients: default_weak_min_clients(),
            weak_client_qps: default_weak_client_qps(),
            max_nxdomain_ratio: default_max_nxdomain_ratio(),
            allow_clients: Vec::new(),
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
    /// Seconds of the burst and weak rules (whole seconds, >= 1).
    pub burst_secs: u64,
    pub weak_qps: f64,
    pub weak_min_clients: u64,
    pub weak_client_qps: f64,
    pub max_nxdomain_ratio: f64,
    pub allow_clients: NetList,
}

/// Which rule raised a finding (the evidence's `rule`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    Window,
    Burst,
    Weak,
}

impl Rule {
    fn as_str(self) -> &'static str {
        match self {
            Rule::Window => "window",
            Rule::Burst => "burst",
            Rule::Weak => "weak",
        }
    }
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
        let burst_secs = check.at_least_one("burst_secs", &spec.burst_secs);
        let weak_qps = check.positive("weak_qps", &spec.weak_qps);
        let weak_min_clients = check.at_least_one("weak_min_clients", &spec.weak_min_clients);
        let weak_client_qps = check.positive("weak_client_qps", &spec.weak_client_qps);
        let max_nxdomain_ratio = check.ratio("max_nxdomain_ratio", &spec.max_nxdomain_ratio);
        let allow_clients = check.nets("allow_clients", &spec.allow_clients);
        check.ok().then_some(SubnetFlood {
            warning_qps: w,
            critical_qps: c,
            v4_prefix,
            v6_prefix,
            min_clients,
            max_client_qps,
            burst_secs,
            weak_qps,
            weak_min_clients,
            weak_client_qps,
            max_nxdomain_ratio,
            allow_clients,
        })
    }
}

impl Detector for SubnetFlood {
    fn kind(&self) -> Kind {
        Kind::SubnetFlood
    }

    fn observe(&self, m: &Observed<'_, '_>, sink: &mut dyn TallySink) {
        if m.msg.qr {
            // Responses to the subnet: its NXDOMAIN share.
            if self.allow_clients.contains(m.payload.dst) {
                return;
            }
            let t = sink.tally(KeyRef::subnet_of(
                m.payload.dst,
                self.v4_prefix,
                self.v6_prefix,
            ));
            t.responses += 1;
            if m.msg.rcode == super::nxdomain_flood::RCODE_NXDOMAIN {
                t.nxdomain += 1;
            }
            return;
        }
        let src = m.payload.src;
        if self.allow_clients.contains(src) {
            return;
        }
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

    /// Sound for all three rules: a window (or its newest `burst_secs`)
    /// averaging `min(warning_qps, weak_qps)` needs one pane at that rate.
    fn pane_may_fire(&self, pane: &super::Tally, slide_secs: f64, _panes: u64) -> bool {
        super::pane_share(
            pane.queries,
            self.warning_qps.min(self.weak_qps),
            slide_secs,
        )
    }

    fn measure(&self, w: &WindowView<'_>) -> f64 {
        w.tally.queries as f64 / w.window_secs
    }

    fn evaluate(&self, _key: &Key, w: &WindowView<'_>) -> Option<Finding> {
        // Water torture from this subnet's bots is random_subdomain's.
        let nx_ratio = if w.tally.responses == 0 {
            0.0
        } else {
            w.tally.nxdomain as f64 / w.tally.responses as f64
        };
        if nx_ratio > self.max_nxdomain_ratio {
            return None;
        }
        let tier = |qps: f64| {
            if qps >= self.critical_qps {
                Some((Severity::Critical, self.critical_qps))
            } else if qps >= self.warning_qps {
                Some((Severity::Warning, self.warning_qps))
            } else {
                None
            }
        };
        // A rule holds with `clients` sources when there are enough of them
        // and the average one is not itself flooding (client_flood's job).
        let spread = |qps: f64, clients: u64| {
            clients >= self.min_clients && qps / (clients.max(1) as f64) < self.max_client_qps
        };
        let window_qps = self.measure(w);
        // Without the sketch (counters-only view) this is 0: no window-rule
        // finding, and `needs_full_view` makes sure the sketch is there
        // when it matters.
        let window_clients = w.tally.distinct_count().round() as u64;
        let mut hit = tier(window_qps)
            .filter(|_| spread(window_qps, window_clients))
            .map(|(sev, th)| (Rule::Window, sev, th, window_qps, window_clients));
        let burst_panes = (self.burst_secs as f64 / w.slide_secs).round().max(1.0) as u64;
        let (recent, recent_secs) = w.recent(burst_panes);
        let recent_qps = recent.queries as f64 / recent_secs;
        let recent_clients = recent.distinct_count().round() as u64;
        if hit.is_none()
            && let Some((sev, th)) = tier(recent_qps)
            && spread(recent_qps, recent_clients)
        {
            hit = Some((Rule::Burst, sev, th, recent_qps, recent_clients));
        }
        if hit.is_none()
            && recent_qps >= self.weak_qps
            && recent_clients >= self.weak_min_clients
            && recent_qps / recent_clients.max(1) as f64 >= self.weak_client_qps
            && spread(recent_qps, recent_clients)
        {
            hit = Some((
                Rule::Weak,
                Severity::Warning,
                self.weak_qps,
                recent_qps,
                recent_clients,
            ));
        }
        let (rule, severity, threshold, observed, clients) = hit?;
        let samples = if w.tally.samples.is_empty() {
            recent.sample_names()
        } else {
            w.tally.sample_names()
        };
        let evidence = json!({
            "rule": rule.as_str(),
            "queries": w.tally.queries,
            "query_bytes": w.tally.bytes,
            "distinct_clients": clients,
            "window_secs": w.window_secs,
            "recent_secs": recent_secs,
            "recent_queries": recent.queries,
            "nxdomain_ratio": nx_ratio,
            "warning_qps": self.warning_qps,
            "critical_qps": self.critical_qps,
            "weak_qps": self.weak_qps,
            "min_clients": self.min_clients,
            "max_client_qps": self.max_client_qps,
            "sample_qnames": samples,
        });
        Some(Finding {
            severity,
            observed,
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
    use crate::packet::frame::{FrameBuilder, qtype, rcode};

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
            panes: &[],
            end: 0,
            slide_secs: 1.0,
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
                burst_secs: 2,
                weak_qps: 150.0,
                weak_min_clients: 20,
                weak_client_qps: 4.0,
                max_nxdomain_ratio: 0.5,
                allow_clients: NetList::default(),
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

    /// A window of ten 1 s panes, each a map-side table, evaluated as the
    /// reducer does (panes merged, newest last).
    fn eval_panes(d: &SubnetFlood, panes: &[Sink], key: &Key) -> Option<Finding> {
        let list: Vec<(u64, Tally)> = panes
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.0.get(key).map(|t| (i as u64, t.clone())))
            .collect();
        let mut sum = Tally::default();
        for (_, t) in &list {
            sum.merge(t);
        }
        d.evaluate(
            key,
            &WindowView {
                tally: &sum,
                window_secs: 10.0,
                baseline: None,
                panes: &list,
                end: panes.len() as u64 - 1,
                slide_secs: 1.0,
            },
        )
    }

    /// `hosts` sources of `net`.x at `per_host` q/s for the newest `secs`
    /// panes of a ten-pane window; NXDOMAIN responses when `nx`.
    fn subnet_window(
        d: &SubnetFlood,
        net: [u8; 3],
        hosts: u32,
        per_host: u32,
        secs: usize,
        nx: bool,
    ) -> Vec<Sink> {
        let mut fb = FrameBuilder::new();
        let mut panes: Vec<Sink> = (0..10).map(|_| Sink::default()).collect();
        for pane in panes.iter_mut().skip(10 - secs) {
            for h in 0..hosts {
                let src = IpAddr::V4([net[0], net[1], net[2], h as u8 + 1].into());
                for q in 0..per_host {
                    query(d, pane, &mut fb, src, &format!("n{q}.example.com"));
                    let rc = if nx { rcode::NXDOMAIN } else { 0 };
                    let bytes = fb
                        .response_message(1, &format!("n{q}.example.com"), qtype::A, rc, &[], 0)
                        .to_vec();
                    observe_at(
                        d,
                        pane,
                        0,
                        SocketAddr::new("192.0.2.53".parse().unwrap(), 53),
                        SocketAddr::new(src, 40000),
                        &bytes,
                        None,
                    );
                }
            }
        }
        panes
    }

    #[test]
    fn subnet_flood_burst_and_weak_rules() {
        let d = detector();
        let key = |n: [u8; 3]| Key::Subnet(IpAddr::V4([n[0], n[1], n[2], 0].into()), 24);
        // 40 hosts at 20 q/s (800 q/s) for the newest second only: the
        // window averages 80 q/s, the newest 2 s 400: weak rule (40 busy
        // hosts), raised at once.
        let net = [10, 99, 7];
        let f = eval_panes(&d, &subnet_window(&d, net, 40, 20, 1, false), &key(net))
            .expect("first second of a subnet flood");
        assert_eq!(f.evidence["rule"], "weak");
        assert_eq!((f.severity, f.observed), (Severity::Warning, 400.0));
        // The same for two seconds: 800 q/s over the newest 2 s: burst.
        let f =
            eval_panes(&d, &subnet_window(&d, net, 40, 20, 2, false), &key(net)).expect("burst");
        assert_eq!(f.evidence["rule"], "burst");
        assert_eq!(f.evidence["distinct_clients"], 40);
        // 0.3x: 40 hosts at 7 q/s = 280 q/s: weak.
        let f = eval_panes(&d, &subnet_window(&d, net, 40, 7, 2, false), &key(net))
            .expect("weak subnet flood");
        assert_eq!(f.evidence["rule"], "weak");
        // A busy office: 200 hosts at 1 q/s (200 q/s) for the whole window.
        let office = [10, 20, 30];
        assert!(
            eval_panes(
                &d,
                &subnet_window(&d, office, 200, 1, 10, false),
                &key(office)
            )
            .is_none()
        );
        // A few busy hosts: 10 at 20 q/s (fewer than weak_min_clients).
        assert!(
            eval_panes(
                &d,
                &subnet_window(&d, office, 10, 20, 10, false),
                &key(office)
            )
            .is_none()
        );
        // Water-torture bots: 64 in one /24 at 5 q/s, all NXDOMAIN: the
        // weak rule's shape, but random_subdomain's attack.
        let bots = [10, 70, 3];
        let panes = subnet_window(&d, bots, 64, 5, 10, true);
        assert!(eval_panes(&d, &panes, &key(bots)).is_none());
        let lenient = SubnetFlood {
            max_nxdomain_ratio: 1.0,
            ..detector()
        };
        assert_eq!(
            eval_panes(&lenient, &panes, &key(bots)).unwrap().evidence["rule"],
            "weak",
            "the NXDOMAIN share is what keeps the bots out"
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
