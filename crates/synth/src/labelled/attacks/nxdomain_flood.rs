//! `nxdomain_flood`: one client asks for random names under random
//! registered domains, all NXDOMAIN.

use std::net::IpAddr;

use serde_json::json;

use super::{Attack, AttackState, Inject, TruthCtx, client_also, rate53, scaled};
use crate::labelled::traffic::Gen;
use crate::labelled::world::{ALNUM, NX_DOMAINS, World, random_label, times};
use crate::labelled::{NXDOMAIN_CLIENT, Planned, RESOLVER, TruthAlso};
use crate::{qtype, rcode};
use dnsmonitor_core::detect::Kind;

/// nxdomain_flood / servfail_flood: warning 20/s, ratio >= 0.5, >= 20
/// responses.
const NXDOMAIN_FLOOD_QPS: (f64, f64) = (400.0, 30.0);

pub(super) struct NxdomainFlood;

impl Inject for NxdomainFlood {
    fn attack(&self) -> Attack {
        Attack::Detect(Kind::NxdomainFlood)
    }

    fn slot(&self) -> (u32, u32) {
        (22, 12)
    }

    fn rate(&self, scale: f64) -> f64 {
        scaled(scale, NXDOMAIN_FLOOD_QPS)
    }

    fn truth(&self, t: &mut TruthCtx<'_>) -> String {
        t.push(
            json!({ "client": NXDOMAIN_CLIENT.to_string() }),
            vec![
                client_also(NXDOMAIN_CLIENT),
                rate53(),
                // random registered domains look generated
                TruthAlso {
                    kind: Kind::Dga.as_str().into(),
                    key: json!({ "client": NXDOMAIN_CLIENT.to_string() }),
                },
            ],
        );
        format!(
            "nxdomain_flood {}: {NXDOMAIN_CLIENT} at {:.0} q/s for random names \
             under {NX_DOMAINS} random registered domains, all NXDOMAIN",
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
            let d = &world.nx_domains[g.rng.below(world.nx_domains.len() as u64) as usize];
            let len = 8 + g.rng.below(7) as usize;
            let name = format!("{}.{d}", random_label(&mut g.rng, len, ALNUM));
            let delay = g.delay();
            g.lookup(
                ts,
                IpAddr::V4(NXDOMAIN_CLIENT),
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
