//! `amplification`: large ANY responses from the resolver and four other
//! servers to one victim (the spoofed queries are not captured).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde_json::json;

use super::{Attack, AttackState, Inject, TruthCtx, scaled};
use crate::labelled::traffic::{Gen, Msg};
use crate::labelled::world::{World, times};
use crate::labelled::{AMPLIFICATION_VICTIM, Planned, RESOLVER};
use crate::{qtype, rcode};
use dnsmonitor_core::detect::Kind;

/// amplification: warning 20 000 bytes/s.
const AMPLIFICATION_RPS: (f64, f64) = (500.0, 11.0);
const AMPLIFICATION_SIZE: usize = 3000;

pub(super) struct Amplification;

impl Inject for Amplification {
    fn attack(&self) -> Attack {
        Attack::Detect(Kind::Amplification)
    }

    fn slot(&self) -> (u32, u32) {
        (60, 12)
    }

    fn rate(&self, scale: f64) -> f64 {
        scaled(scale, AMPLIFICATION_RPS)
    }

    fn truth(&self, t: &mut TruthCtx<'_>) -> String {
        t.push(
            json!({ "victim": AMPLIFICATION_VICTIM.to_string() }),
            vec![],
        );
        format!(
            "amplification {}: {:.0} ANY responses/s of {AMPLIFICATION_SIZE} bytes \
             from {RESOLVER} and 198.51.100.10-13 to {AMPLIFICATION_VICTIM} (queries \
             spoofed, not captured)",
            t.when, t.p.rate
        )
    }

    fn traffic(&self, g: &mut Gen, _: &World, _: &mut AttackState, p: &Planned, lo: i64, hi: i64) {
        const NAMES: [&str; 3] = ["big-records.example", "isc.example", "dnssec-lab.example"];
        let resolver = IpAddr::V4(RESOLVER);
        for ts in times(&mut g.rng, p.rate, lo, hi) {
            let k = g.rng.below(8);
            let src = if k < 4 {
                resolver
            } else {
                IpAddr::V4(Ipv4Addr::new(198, 51, 100, 6 + k as u8))
            };
            let name = NAMES[g.rng.below(3) as usize].to_string();
            let answers: Vec<IpAddr> = (0..8u8)
                .map(|i| IpAddr::V4(Ipv4Addr::new(198, 18, 200, 1 + i)))
                .collect();
            let id = g.id();
            let port = g.port();
            g.push(
                ts,
                Msg::Response {
                    src: SocketAddr::new(src, 53),
                    dst: SocketAddr::new(IpAddr::V4(AMPLIFICATION_VICTIM), port),
                    id,
                    qname: name,
                    qtype: qtype::ANY,
                    rcode: rcode::NOERROR,
                    answers,
                    pad_to: AMPLIFICATION_SIZE,
                },
            );
        }
    }
}
