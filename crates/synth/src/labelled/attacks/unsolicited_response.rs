//! `unsolicited_response`: a normal client (which keeps asking) receives a
//! spray of responses matching none of its queries.

use std::net::{IpAddr, SocketAddr};

use serde_json::json;

use super::{Attack, AttackState, Inject, TruthCtx, scaled};
use crate::labelled::traffic::{Gen, Msg};
use crate::labelled::world::{World, answers_for, times};
use crate::labelled::{Planned, RESOLVER, UNSOLICITED_VICTIM};
use crate::{qtype, rcode};
use dnsmonitor_core::detect::Kind;

/// unsolicited_response: >= 20 in the window, >= half the victim's responses.
const UNSOLICITED_RPS: (f64, f64) = (200.0, 5.0);
/// unsolicited_response: the victim's own lookups during the attack, on top
/// of its background ones.
const VICTIM_OWN_QPS: f64 = 1.0;

pub(super) struct UnsolicitedResponse;

impl Inject for UnsolicitedResponse {
    fn attack(&self) -> Attack {
        Attack::Detect(Kind::UnsolicitedResponse)
    }

    fn slot(&self) -> (u32, u32) {
        (68, 12)
    }

    fn rate(&self, scale: f64) -> f64 {
        scaled(scale, UNSOLICITED_RPS)
    }

    fn truth(&self, t: &mut TruthCtx<'_>) -> String {
        t.push(json!({ "victim": UNSOLICITED_VICTIM.to_string() }), vec![]);
        format!(
            "unsolicited_response {}: {:.0} small unmatched responses/s from \
             {RESOLVER} to {UNSOLICITED_VICTIM} (random ids and ports), which also \
             sends its normal queries and {VICTIM_OWN_QPS} more lookup/s",
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
        let resolver = IpAddr::V4(RESOLVER);
        // The victim's own lookups (the detector needs to see it ask).
        for ts in times(&mut g.rng, VICTIM_OWN_QPS, lo, hi) {
            let name = world.popular(&mut g.rng).to_string();
            let d = g.delay();
            g.lookup(
                ts,
                IpAddr::V4(UNSOLICITED_VICTIM),
                resolver,
                name,
                qtype::A,
                true,
                Some(rcode::NOERROR),
                d,
            );
        }
        for ts in times(&mut g.rng, p.rate, lo, hi) {
            let name = world.popular(&mut g.rng).to_string();
            let answers = answers_for(&name, qtype::A);
            let id = g.id();
            let port = g.port();
            g.push(
                ts,
                Msg::Response {
                    src: SocketAddr::new(resolver, 53),
                    dst: SocketAddr::new(IpAddr::V4(UNSOLICITED_VICTIM), port),
                    id,
                    qname: name,
                    qtype: qtype::A,
                    rcode: rcode::NOERROR,
                    answers,
                    pad_to: 0,
                },
            );
        }
    }
}
