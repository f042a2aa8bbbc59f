//! `rate_ramp`: a slow `rate_anomaly` (not part of `mixed`, same key): the
//! extra queries to the second server rise linearly from 0 over minutes.

use serde_json::json;

use super::rate_anomaly::extra_queries;
use super::{Attack, AttackState, Inject, TruthCtx, scaled};
use crate::labelled::traffic::Gen;
use crate::labelled::world::World;
use crate::labelled::{Planned, SECOND_SERVER};

/// rate_ramp: the extra queries per second to the second server at the end
/// of a linear ramp from 0 over the whole attack (minutes): the EWMA
/// baseline follows it, the ramp rule (3x the mean of minutes ago, >= 200
/// q/s) does not.
const RATE_RAMP_PEAK_QPS: (f64, f64) = (1200.0, 600.0);

pub(super) struct RateRamp;

impl Inject for RateRamp {
    fn attack(&self) -> Attack {
        Attack::RateRamp
    }

    fn slot(&self) -> (u32, u32) {
        (100, 180)
    }

    fn rate(&self, scale: f64) -> f64 {
        scaled(scale, RATE_RAMP_PEAK_QPS)
    }

    fn truth(&self, t: &mut TruthCtx<'_>) -> String {
        t.push(json!({ "server": SECOND_SERVER.to_string() }), vec![]);
        format!(
            "rate_ramp {}: the benign population adds 0 rising linearly to \
             {:.0} q/s to {SECOND_SERVER} (normally {:.0} q/s), answered",
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
        extra_queries(g, world, p, true, lo, hi);
    }
}
