//! `spoofed_flood`: queries to the resolver from random public IPv4
//! sources, each used once, unanswered.

use std::net::IpAddr;

use super::{Attack, AttackState, Inject, TruthCtx, rate53, scaled, server};
use crate::labelled::traffic::Gen;
use crate::labelled::world::{World, public_v4, times};
use crate::labelled::{Planned, RESOLVER};
use crate::qtype;
use dnsmonitor_core::detect::Kind;

/// spoofed_flood: once warm, >= 500 distinct sources (or the baseline's
/// level); 5000 cold.
const SPOOFED_QPS: (f64, f64) = (3000.0, 75.0);

pub(super) struct SpoofedFlood;

impl Inject for SpoofedFlood {
    fn attack(&self) -> Attack {
        Attack::Detect(Kind::SpoofedFlood)
    }

    fn slot(&self) -> (u32, u32) {
        (90, 12)
    }

    fn rate(&self, scale: f64) -> f64 {
        scaled(scale, SPOOFED_QPS)
    }

    fn truth(&self, t: &mut TruthCtx<'_>) -> String {
        t.push(server(), vec![rate53()]);
        format!(
            "spoofed_flood {}: {:.0} q/s to {RESOLVER} from random public IPv4 \
             sources (each used once), unanswered",
            t.when, t.p.rate
        )
    }

    fn traffic(
        &self,
        g: &mut Gen,
        world: &World,
        st: &mut AttackState,
        p: &Planned,
        lo: i64,
        hi: i64,
    ) {
        for ts in times(&mut g.rng, p.rate, lo, hi) {
            let src = loop {
                let a = public_v4(&mut g.rng);
                if st.spoofed_seen.insert(u32::from(a)) {
                    break a;
                }
            };
            let name = world.popular(&mut g.rng).to_string();
            g.lookup(
                ts,
                IpAddr::V4(src),
                IpAddr::V4(RESOLVER),
                name,
                qtype::A,
                false,
                None,
                0,
            );
        }
    }
}
