//! `client_flood`: one client floods the resolver with lookups of popular
//! names, each answered 1 ms later.

use std::net::IpAddr;

use serde_json::json;

use super::{Attack, AttackState, Inject, TruthCtx, rate53, scaled};
use crate::labelled::traffic::Gen;
use crate::labelled::world::{World, times};
use crate::labelled::{CLIENT_FLOODER, Planned, RESOLVER};
use crate::{qtype, rcode};
use dnsmonitor_core::detect::Kind;

/// client_flood: warning 100 q/s over 10 s.
const CLIENT_FLOOD_QPS: (f64, f64) = (3000.0, 150.0);

pub(super) struct ClientFlood;

impl Inject for ClientFlood {
    fn attack(&self) -> Attack {
        Attack::Detect(Kind::ClientFlood)
    }

    fn slot(&self) -> (u32, u32) {
        (18, 12)
    }

    fn rate(&self, scale: f64) -> f64 {
        scaled(scale, CLIENT_FLOOD_QPS)
    }

    fn truth(&self, t: &mut TruthCtx<'_>) -> String {
        t.push(
            json!({ "client": CLIENT_FLOODER.to_string() }),
            vec![rate53()],
        );
        format!(
            "client_flood {}: {CLIENT_FLOODER} -> {RESOLVER} at {:.0} q/s, popular \
             names, answered",
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
            let name = world.popular(&mut g.rng).to_string();
            g.lookup(
                ts,
                IpAddr::V4(CLIENT_FLOODER),
                IpAddr::V4(RESOLVER),
                name,
                qtype::A,
                false,
                Some(rcode::NOERROR),
                1000,
            );
        }
    }
}
