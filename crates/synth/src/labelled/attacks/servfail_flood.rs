//! `servfail_flood`: one client asks for names in broken zones, each
//! answered SERVFAIL after 20-200 ms.

use std::net::IpAddr;

use serde_json::json;

use super::{Attack, AttackState, Inject, TruthCtx, client_also, rate53, scaled};
use crate::labelled::traffic::Gen;
use crate::labelled::world::{World, times};
use crate::labelled::{Planned, RESOLVER, SERVFAIL_CLIENT};
use crate::{qtype, rcode};
use dnsmonitor_core::detect::Kind;

/// Warning 20/s, ratio >= 0.5, >= 20 responses (as nxdomain_flood).
const SERVFAIL_FLOOD_QPS: (f64, f64) = (300.0, 30.0);

pub(super) struct ServfailFlood;

impl Inject for ServfailFlood {
    fn attack(&self) -> Attack {
        Attack::Detect(Kind::ServfailFlood)
    }

    fn slot(&self) -> (u32, u32) {
        (46, 12)
    }

    fn rate(&self, scale: f64) -> f64 {
        scaled(scale, SERVFAIL_FLOOD_QPS)
    }

    fn truth(&self, t: &mut TruthCtx<'_>) -> String {
        t.push(
            json!({ "client": SERVFAIL_CLIENT.to_string() }),
            vec![client_also(SERVFAIL_CLIENT), rate53()],
        );
        format!(
            "servfail_flood {}: {SERVFAIL_CLIENT} at {:.0} q/s for names in \
             broken zones, all SERVFAIL",
            t.when, t.p.rate
        )
    }

    fn traffic(
        &self,
        g: &mut Gen,
        world: &World,
        _: &mut AttackState,
        p: &Planned,
        lo: i64,
        hi: i64,
    ) {
        for ts in times(&mut g.rng, p.rate, lo, hi) {
            let n = &world.servfail_names[g.rng.below(world.servfail_names.len() as u64) as usize];
            let delay = 20_000 + g.rng.below(180_000) as i64;
            g.lookup(
                ts,
                IpAddr::V4(SERVFAIL_CLIENT),
                IpAddr::V4(RESOLVER),
                n.clone(),
                qtype::A,
                true,
                Some(rcode::SERVFAIL),
                delay,
            );
        }
    }
}
