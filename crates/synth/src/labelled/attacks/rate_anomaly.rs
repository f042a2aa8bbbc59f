//! `rate_anomaly`: the benign IPv4 population suddenly sends many more
//! queries to the second server, answered.

use std::net::IpAddr;

use serde_json::json;

use super::{Attack, AttackState, Inject, TruthCtx, scaled};
use crate::labelled::traffic::Gen;
use crate::labelled::world::{World, times};
use crate::labelled::{Planned, SECOND_SERVER};
use crate::{qtype, rcode};
use dnsmonitor_core::detect::Kind;

/// rate_anomaly: the extra queries per second to the second server (normally
/// 300/7 ~ 43 q/s); the detector's min_qps is 200 averaged over the window
/// and it learns every window below that, so a ramp that takes more than
/// two windows to cross 200 q/s teaches the baseline a deviation that
/// outruns it: the floor crosses it in two 1 s slides.
const RATE_ANOMALY_EXTRA_QPS: (f64, f64) = (2400.0, 1100.0);

pub(super) struct RateAnomaly;

impl Inject for RateAnomaly {
    fn attack(&self) -> Attack {
        Attack::Detect(Kind::RateAnomaly)
    }

    fn slot(&self) -> (u32, u32) {
        (100, 12)
    }

    fn rate(&self, scale: f64) -> f64 {
        scaled(scale, RATE_ANOMALY_EXTRA_QPS)
    }

    fn truth(&self, t: &mut TruthCtx<'_>) -> String {
        t.push(json!({ "server": SECOND_SERVER.to_string() }), vec![]);
        format!(
            "rate_anomaly {}: the benign population adds {:.0} q/s to \
             {SECOND_SERVER} (normally {:.0} q/s), answered",
            t.when, t.p.rate, t.second_server_qps
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
        extra_queries(g, world, p, false, lo, hi);
    }
}

/// Extra answered queries from the IPv4 population to the second server at
/// `p.rate` per second; with `ramp`, each kept with probability
/// `(t - start) / length` (a linear ramp over the attack).
pub(super) fn extra_queries(g: &mut Gen, world: &World, p: &Planned, ramp: bool, lo: i64, hi: i64) {
    let len = (p.end_us - p.start_us).max(1) as f64;
    for ts in times(&mut g.rng, p.rate, lo, hi) {
        // A ramp keeps each query with probability (t - start) / len.
        if ramp && g.rng.unit() * len >= (ts - p.start_us) as f64 {
            continue;
        }
        let c = world.v4[g.rng.below(world.v4.len() as u64) as usize];
        let name = world.popular(&mut g.rng).to_string();
        let d = g.delay();
        g.lookup(
            ts,
            c,
            IpAddr::V4(SECOND_SERVER),
            name,
            qtype::A,
            true,
            Some(rcode::NOERROR),
            d,
        );
    }
}
