//! `blocklist_hit`: one client looks up names of blocklists/example.txt
//! three times each.

use std::net::IpAddr;

use serde_json::json;

use super::{Attack, AttackState, Inject, TruthCtx};
use crate::labelled::traffic::Gen;
use crate::labelled::world::World;
use crate::labelled::{BLOCKLIST_CLIENT, BLOCKLISTED, Planned, RESOLVER};
use crate::{Rng, qtype, rcode};
use dnsmonitor_core::detect::Kind;

/// The three instants of the lookups: near the start, the middle and the
/// end of `p`, each up to 200 ms later.
pub(super) fn instants(rng: &mut Rng, p: &Planned) -> Vec<i64> {
    let len = p.end_us - p.start_us;
    [0.02, 0.5, 0.95]
        .into_iter()
        .map(|f| p.start_us + (len as f64 * f) as i64 + rng.below(200_000) as i64)
        .collect()
}

pub(super) struct BlocklistHit;

impl Inject for BlocklistHit {
    fn attack(&self) -> Attack {
        Attack::Detect(Kind::BlocklistHit)
    }

    fn slot(&self) -> (u32, u32) {
        (30, 12)
    }

    /// No rate: three rounds of lookups.
    fn rate(&self, _: f64) -> f64 {
        0.0
    }

    fn truth(&self, t: &mut TruthCtx<'_>) -> String {
        for (_, entry) in BLOCKLISTED {
            t.push(
                json!({ "client": BLOCKLIST_CLIENT.to_string(), "domain": entry }),
                vec![],
            );
        }
        format!(
            "blocklist_hit {}: {BLOCKLIST_CLIENT} looks up {} 3 times each \
             (entries of blocklists/example.txt; replay with --blocklist)",
            t.when,
            BLOCKLISTED.map(|(n, _)| n).join(" and ")
        )
    }

    fn traffic(&self, g: &mut Gen, _: &World, st: &mut AttackState, _: &Planned, lo: i64, hi: i64) {
        for i in 0..st.blocklist_at.len() {
            let at = st.blocklist_at[i];
            if at < lo || at >= hi {
                continue;
            }
            for (k, (name, _)) in BLOCKLISTED.iter().enumerate() {
                let d = g.delay();
                g.lookup(
                    at + k as i64 * 150_000,
                    IpAddr::V4(BLOCKLIST_CLIENT),
                    IpAddr::V4(RESOLVER),
                    name.to_string(),
                    qtype::A,
                    true,
                    Some(rcode::NXDOMAIN),
                    d,
                );
            }
        }
    }
}
