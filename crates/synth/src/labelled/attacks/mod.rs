//! The attacks a labelled capture can carry, one file each (like
//! `detect/`, one per detector): its rate, its slot in `mixed`, its truth
//! (the alerts it should raise and the others it may cause) and its
//! traffic. An attack is named by the detector kind that should find it
//! ([`dnsmonitor_core::detect::Kind`]); the slow `rate_ramp` is a `rate_anomaly`
//! with traffic and a slot of its own.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};

use serde_json::json;

use super::traffic::Gen;
use super::world::World;
use super::{Plan, Planned, RESOLVER, TruthAlso, TruthAttack};
use crate::Rng;
use dnsmonitor_core::detect::Kind;
use dnsmonitor_core::time::rfc3339;

mod amplification;
mod blocklist_hit;
mod client_flood;
mod dga;
mod nxdomain_flood;
mod random_subdomain;
mod rate_anomaly;
mod rate_ramp;
mod servfail_flood;
mod spoofed_flood;
mod subnet_flood;
mod tunneling;
mod unsolicited_response;

/// What a scenario injects: traffic a detector should find (its kind), or
/// the slow ramp (a `rate_anomaly` too, with its own traffic and slot).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Attack {
    Detect(Kind),
    RateRamp,
}

impl Attack {
    /// The scenario name (`--scenario`, `--intensity`).
    pub fn name(self) -> &'static str {
        match self {
            Attack::Detect(k) => k.as_str(),
            Attack::RateRamp => "rate_ramp",
        }
    }

    /// The alert kind its truth names.
    pub fn kind(self) -> Kind {
        match self {
            Attack::Detect(k) => k,
            Attack::RateRamp => Kind::RateAnomaly,
        }
    }

    /// Its detector learns a baseline first: it starts no earlier than
    /// [`super::WARMUP_START_S`].
    pub fn needs_warmup(self) -> bool {
        matches!(self.kind(), Kind::SpoofedFlood | Kind::RateAnomaly)
    }
}

/// One kind of attack (a file of this folder).
pub(super) trait Inject: Sync {
    fn attack(&self) -> Attack;
    /// Its slot in `mixed` (and whenever several attacks are asked for):
    /// start in seconds on a 180 s timeline, length in seconds.
    fn slot(&self) -> (u32, u32);
    /// Events per second (queries, responses or bots) at rate scale
    /// `scale`: `nominal × scale`, never below a floor (module docs of
    /// `labelled`).
    fn rate(&self, scale: f64) -> f64;
    /// Push the alerts it should raise (with what else they may cause) to
    /// `t`; the note describing it.
    fn truth(&self, t: &mut TruthCtx<'_>) -> String;
    /// Its traffic in `[lo, hi)` µs (within `p`'s `[start, end)`).
    fn traffic(
        &self,
        g: &mut Gen,
        world: &World,
        st: &mut AttackState,
        p: &Planned,
        lo: i64,
        hi: i64,
    );
}

/// Every attack of `mixed`, in the order of their slots.
pub(super) const MIXED: [&dyn Inject; 11] = [
    &client_flood::ClientFlood,
    &nxdomain_flood::NxdomainFlood,
    &tunneling::Tunneling,
    &blocklist_hit::BlocklistHit,
    &subnet_flood::SubnetFlood,
    &servfail_flood::ServfailFlood,
    &random_subdomain::RandomSubdomain,
    &amplification::Amplification,
    &unsolicited_response::UnsolicitedResponse,
    &spoofed_flood::SpoofedFlood,
    &rate_anomaly::RateAnomaly,
];

/// The attacks only asked for by name: the ramp has the same key as
/// `rate_anomaly`, the infected hosts of `dga` need minutes.
pub(super) const ALONE: [&dyn Inject; 2] = [&rate_ramp::RateRamp, &dga::Dga];

/// The attack named `n`.
pub(super) fn by_name(n: &str) -> Option<&'static dyn Inject> {
    MIXED
        .into_iter()
        .chain(ALONE)
        .find(|a| a.attack().name() == n)
}

// Rates: `(nominal at rate_scale 1, floor)`. The nominal rates are detected
// within two 1 s slides by the default pipeline at any rate_scale >= 0.5;
// the floors keep an attack of 10 s or more detectable at all (about 1.3x
// to 1.6x the volume the default thresholds need in one 10 s window; for
// rate_anomaly, see there), for small example captures.

/// `(nominal at rate_scale 1, floor)` at `scale`.
fn scaled(scale: f64, (nominal, floor): (f64, f64)) -> f64 {
    (nominal * scale).max(floor)
}

/// What an attack's [`Inject::truth`] writes to.
pub(super) struct TruthCtx<'a> {
    pub p: &'a Planned,
    /// `start-end s` into the capture.
    pub when: String,
    /// The normal rate of the second server.
    pub second_server_qps: f64,
    pub out: &'a mut Vec<TruthAttack>,
}

impl TruthCtx<'_> {
    /// One alert the attack should raise: its kind's, for `key`.
    fn push(&mut self, key: serde_json::Value, also: Vec<TruthAlso>) {
        self.out.push(TruthAttack {
            kind: self.p.attack().kind().as_str().into(),
            key,
            start: rfc3339(self.p.start_us),
            end: rfc3339(self.p.end_us),
            start_us: self.p.start_us,
            end_us: self.p.end_us,
            also,
        })
    }
}

/// The resolver's key.
fn server() -> serde_json::Value {
    json!({ "server": RESOLVER.to_string() })
}

/// A query flood at the resolver is also a `rate_anomaly` for it once its
/// baseline is learned.
fn rate53() -> TruthAlso {
    TruthAlso {
        kind: Kind::RateAnomaly.as_str().into(),
        key: server(),
    }
}

/// `c` is also a `client_flood`.
fn client_also(c: Ipv4Addr) -> TruthAlso {
    TruthAlso {
        kind: Kind::ClientFlood.as_str().into(),
        key: json!({ "client": c.to_string() }),
    }
}

/// What the attacks keep from one second to the next, drawn once.
pub(super) struct AttackState {
    subnet_clients: Vec<IpAddr>,
    bots: Vec<IpAddr>,
    spoofed_seen: HashSet<u32>,
    tunnel_seq: u32,
    /// Per DGA family: its names and the next one to look up.
    dga: Vec<(Vec<String>, usize)>,
    /// The instants of the blocklisted lookups, per planned attack start.
    blocklist_at: Vec<i64>,
}

impl AttackState {
    /// Drawn in this order (the draws of a seed depend on it): the bots,
    /// the blocklisted lookups' instants, the DGA names.
    pub fn new(rng: &mut Rng, plan: &Plan) -> AttackState {
        let planned = |k: Kind| {
            plan.attacks
                .iter()
                .find(|p| p.attack() == Attack::Detect(k))
        };
        let nbots = planned(Kind::RandomSubdomain).map_or(0, |p| p.rate as usize);
        let bots = random_subdomain::bots(rng, nbots);
        let blocklist_at = match planned(Kind::BlocklistHit) {
            Some(p) => blocklist_hit::instants(rng, p),
            None => Vec::new(),
        };
        let dga = match planned(Kind::Dga) {
            Some(p) => dga::names(rng, p),
            None => Vec::new(),
        };
        AttackState {
            subnet_clients: subnet_flood::clients(),
            bots,
            dga,
            spoofed_seen: HashSet::new(),
            tunnel_seq: 0,
            blocklist_at,
        }
    }
}
