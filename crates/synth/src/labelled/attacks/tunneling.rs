//! `tunneling`: one client carries data in unique long base32 names under
//! one domain (TXT and NULL queries), answered with TXT/NULL data.

use std::net::{IpAddr, SocketAddr};

use serde_json::json;

use super::{Attack, AttackState, Inject, TruthCtx, scaled};
use crate::labelled::traffic::{Gen, Msg, QTYPE_NULL, record_response};
use crate::labelled::world::{BASE32, BASE64, World, random_label, times};
use crate::labelled::{Planned, RESOLVER, TUNNEL_CLIENT, TUNNEL_DOMAIN};
use crate::qtype;
use dnsmonitor_core::detect::Kind;

/// tunneling: >= 20 queries in its 60 s window; the floor (1.5 q/s) gives
/// 30 queries over the 20 s slot of `mixed`, a slow tunnel.
const TUNNEL_QPS: (f64, f64) = (30.0, 1.5);

pub(super) struct Tunneling;

impl Inject for Tunneling {
    fn attack(&self) -> Attack {
        Attack::Detect(Kind::Tunneling)
    }

    fn slot(&self) -> (u32, u32) {
        (26, 20)
    }

    fn rate(&self, scale: f64) -> f64 {
        scaled(scale, TUNNEL_QPS)
    }

    fn truth(&self, t: &mut TruthCtx<'_>) -> String {
        t.push(
            json!({ "client": TUNNEL_CLIENT.to_string(), "domain": TUNNEL_DOMAIN }),
            vec![],
        );
        format!(
            "tunneling {}: {TUNNEL_CLIENT} at {:.0} q/s, TXT (70 %) and NULL \
             queries for <50-60 base32 chars>.<seq>.t.{TUNNEL_DOMAIN}, each name \
             unique, answered with TXT/NULL data",
            t.when, t.p.rate
        )
    }

    fn traffic(&self, g: &mut Gen, _: &World, st: &mut AttackState, p: &Planned, lo: i64, hi: i64) {
        for ts in times(&mut g.rng, p.rate, lo, hi) {
            st.tunnel_seq += 1;
            let len = 50 + g.rng.below(11) as usize;
            let data = random_label(&mut g.rng, len, BASE32);
            let name = format!("{data}.{:04x}.t.{TUNNEL_DOMAIN}", st.tunnel_seq & 0xffff);
            let null = g.rng.unit() < 0.3;
            let qt = if null { QTYPE_NULL } else { qtype::TXT };
            let src = SocketAddr::new(IpAddr::V4(TUNNEL_CLIENT), g.port());
            let dst = SocketAddr::new(IpAddr::V4(RESOLVER), 53);
            let id = g.id();
            let rlen = 80 + g.rng.below(120) as usize;
            let reply = random_label(&mut g.rng, rlen, BASE64);
            let rdata = if null {
                reply.into_bytes()
            } else {
                let mut v = vec![reply.len() as u8];
                v.extend_from_slice(reply.as_bytes());
                v
            };
            let payload = record_response(&mut g.fb, id, &name, qt, qt, &rdata);
            let delay = 10_000 + g.rng.below(40_000) as i64;
            g.push(
                ts + delay,
                Msg::Udp {
                    src: dst,
                    dst: src,
                    payload,
                },
            );
            g.push(
                ts,
                Msg::Query {
                    src,
                    dst,
                    id,
                    qname: name,
                    qtype: qt,
                    edns: true,
                },
            );
        }
    }
}
