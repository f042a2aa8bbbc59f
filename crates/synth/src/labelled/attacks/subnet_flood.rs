//! `subnet_flood`: 40 clients of one /24 flood the resolver together, each
//! far below `client_flood`'s threshold; answered.

use std::net::{IpAddr, Ipv4Addr};

use serde_json::json;

use super::{Attack, AttackState, Inject, TruthCtx, rate53, scaled};
use crate::labelled::traffic::Gen;
use crate::labelled::world::{World, times};
use crate::labelled::{FLOOD_SUBNET, Planned, RESOLVER};
use crate::{qtype, rcode};
use dnsmonitor_core::detect::Kind;

/// subnet_flood: warning 500 q/s with >= 4 clients (window or newest 2 s),
/// or the weak rule (>= 150 q/s from >= 20 sources at >= 4 q/s each); 40
/// clients keep each one far below client_flood's 100 q/s (at 0.3x, 6.75
/// q/s each: the weak rule's case).
const SUBNET_FLOOD_QPS: (f64, f64) = (900.0, 200.0);
const SUBNET_FLOOD_CLIENTS: u32 = 40;

/// The flooding clients, .10 on in [`FLOOD_SUBNET`].
pub(super) fn clients() -> Vec<IpAddr> {
    (0..SUBNET_FLOOD_CLIENTS)
        .map(|i| {
            let o = FLOOD_SUBNET.octets();
            IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], 10 + i as u8))
        })
        .collect()
}

pub(super) struct SubnetFlood;

impl Inject for SubnetFlood {
    fn attack(&self) -> Attack {
        Attack::Detect(Kind::SubnetFlood)
    }

    fn slot(&self) -> (u32, u32) {
        (40, 12)
    }

    fn rate(&self, scale: f64) -> f64 {
        scaled(scale, SUBNET_FLOOD_QPS)
    }

    fn truth(&self, t: &mut TruthCtx<'_>) -> String {
        t.push(
            json!({ "subnet": format!("{FLOOD_SUBNET}/24") }),
            vec![rate53()],
        );
        format!(
            "subnet_flood {}: {SUBNET_FLOOD_CLIENTS} clients in {FLOOD_SUBNET}/24 \
             at {:.1} q/s each ({:.0} q/s in all) -> {RESOLVER}, answered",
            t.when,
            t.p.rate / SUBNET_FLOOD_CLIENTS as f64,
            t.p.rate
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
            let c = st.subnet_clients[g.rng.below(st.subnet_clients.len() as u64) as usize];
            let name = world.popular(&mut g.rng).to_string();
            g.lookup(
                ts,
                c,
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
