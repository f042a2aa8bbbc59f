//! `dga`: infected hosts, one per DGA family of `synth::dga`, look up
//! their generated domains at a few a minute, NXDOMAIN (not part of
//! `mixed`: they need minutes).

use std::net::{IpAddr, Ipv4Addr};

use serde_json::json;

use super::{Attack, AttackState, Inject, TruthCtx, scaled};
use crate::dga::{FAMILIES, generate};
use crate::labelled::traffic::Gen;
use crate::labelled::world::{World, times};
use crate::labelled::{DGA_HOSTS, Planned, RESOLVER};
use crate::{Rng, qtype, rcode};
use dnsmonitor_core::detect::Kind;
use dnsmonitor_core::time::MICROS;

/// dga: lookups per second of each infected host (one per family of
/// `synth::dga::FAMILIES`, at 10.77.0.1 on), 10 % of them repeats of its
/// previous name; `dga` needs 10 distinct names in its 300 s window.
const DGA_QPS: (f64, f64) = (0.3, 0.1);

/// Per family: enough generated names for `p` (twice its lookups, plus 50)
/// and the next one to look up.
pub(super) fn names(rng: &mut Rng, p: &Planned) -> Vec<(Vec<String>, usize)> {
    let n = (p.rate * (p.end_us - p.start_us) as f64 / MICROS as f64 * 2.0) as usize + 50;
    let seed = rng.next_u64();
    FAMILIES.iter().map(|f| (generate(f, seed, n), 0)).collect()
}

pub(super) struct Dga;

impl Inject for Dga {
    fn attack(&self) -> Attack {
        Attack::Detect(Kind::Dga)
    }

    fn slot(&self) -> (u32, u32) {
        (20, 150)
    }

    fn rate(&self, scale: f64) -> f64 {
        scaled(scale, DGA_QPS)
    }

    fn truth(&self, t: &mut TruthCtx<'_>) -> String {
        let h = u32::from(DGA_HOSTS);
        for i in 0..FAMILIES.len() as u32 {
            t.push(
                json!({ "client": Ipv4Addr::from(h + i).to_string() }),
                vec![],
            );
        }
        format!(
            "dga {}: {} infected hosts from {DGA_HOSTS} on, one per family ({}), \
             each {:.2} lookups/s of its generated domains (10 % repeats), NXDOMAIN",
            t.when,
            FAMILIES.len(),
            FAMILIES.join(", "),
            t.p.rate
        )
    }

    fn traffic(&self, g: &mut Gen, _: &World, st: &mut AttackState, p: &Planned, lo: i64, hi: i64) {
        let h = u32::from(DGA_HOSTS);
        for (i, (names, next)) in st.dga.iter_mut().enumerate() {
            for ts in times(&mut g.rng, p.rate, lo, hi) {
                let repeat = *next > 0 && g.rng.unit() < 0.1;
                if !repeat {
                    *next += 1;
                }
                let name = names[(*next - 1).min(names.len() - 1)].clone();
                let d = g.delay();
                g.lookup(
                    ts,
                    IpAddr::V4(Ipv4Addr::from(h + i as u32)),
                    IpAddr::V4(RESOLVER),
                    name,
                    qtype::A,
                    false,
                    Some(rcode::NXDOMAIN),
                    d,
                );
            }
        }
    }
}
