//! `random_subdomain`: hundreds of bots ask for random names under one
//! victim domain (water torture), NXDOMAIN.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};

use serde_json::json;

use super::{Attack, AttackState, Inject, TruthCtx, rate53, scaled, server};
use crate::labelled::traffic::Gen;
use crate::labelled::world::{ALNUM, World, random_label, times};
use crate::labelled::{Planned, RESOLVER, TruthAlso, VICTIM_DOMAIN};
use crate::{Rng, qtype, rcode};
use dnsmonitor_core::detect::Kind;

/// random_subdomain: bots at BOT_QPS each; warning 300 distinct names.
const BOTS: (f64, f64) = (500.0, 12.0);
const BOT_QPS: f64 = 4.0;

/// `n` distinct bots in 10.70.0.0/16: about 64 per /24 (a busy-looking
/// subnet each), in at least 8 of them, at most the whole /16.
pub(super) fn bots(rng: &mut Rng, n: usize) -> Vec<IpAddr> {
    let mut seen = HashSet::new();
    let mut bots = Vec::with_capacity(n);
    let nets = (n as u64 / 64 + 1).clamp(8, 256);
    while bots.len() < n {
        let a = Ipv4Addr::new(10, 70, rng.below(nets) as u8, 1 + rng.below(254) as u8);
        if seen.insert(a) {
            bots.push(IpAddr::V4(a));
        }
    }
    bots
}

pub(super) struct RandomSubdomain;

impl Inject for RandomSubdomain {
    fn attack(&self) -> Attack {
        Attack::Detect(Kind::RandomSubdomain)
    }

    fn slot(&self) -> (u32, u32) {
        (54, 12)
    }

    /// The number of bots.
    fn rate(&self, scale: f64) -> f64 {
        scaled(scale, BOTS).round()
    }

    fn truth(&self, t: &mut TruthCtx<'_>) -> String {
        // 500 bots are "far more sources than normal" for the
        // resolver once spoofed_flood has learned its baseline.
        let spoofed = TruthAlso {
            kind: Kind::SpoofedFlood.as_str().into(),
            key: server(),
        };
        t.push(json!({ "domain": VICTIM_DOMAIN }), vec![rate53(), spoofed]);
        format!(
            "random_subdomain {}: {:.0} bots in 10.70.0.0/16 at {BOT_QPS} q/s \
             each ({:.0} q/s) for <16 random chars>.{VICTIM_DOMAIN}, NXDOMAIN",
            t.when,
            t.p.rate,
            t.p.rate * BOT_QPS
        )
    }

    fn traffic(&self, g: &mut Gen, _: &World, st: &mut AttackState, _: &Planned, lo: i64, hi: i64) {
        let rate = st.bots.len() as f64 * BOT_QPS;
        for ts in times(&mut g.rng, rate, lo, hi) {
            let bot = st.bots[g.rng.below(st.bots.len() as u64) as usize];
            let name = format!("{}.{VICTIM_DOMAIN}", random_label(&mut g.rng, 16, ALNUM));
            let delay = 5000 + g.rng.below(35_000) as i64;
            g.lookup(
                ts,
                bot,
                IpAddr::V4(RESOLVER),
                name,
                qtype::A,
                true,
                Some(rcode::NXDOMAIN),
                delay,
            );
        }
    }
}
