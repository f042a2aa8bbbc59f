//! The benign background of a labelled capture (always present, every rate
//! times `rate_scale`; see the module docs of `labelled`): the regular
//! clients, the second server's top-up, the forwarder, reputation lookups,
//! telemetry beacons and DNS over TCP.

use std::net::IpAddr;

use super::traffic::{Gen, QTYPE_HTTPS};
use super::world::{
    HEX, SECOND_SERVER_SHARE, V4_CLIENTS, World, public_v4, random_label, times, typo,
};
use super::{
    AV_CLIENT, FORWARDER, MAIL_SERVER, Plan, RESOLVER, RESOLVER_V6, SECOND_SERVER, TELEMETRY_DOMAIN,
};
use crate::{qtype, rcode};
use dnsmonitor_core::time::MICROS;

pub(super) const BENIGN_QPS: f64 = 300.0;
const FORWARDER_QPS: f64 = 60.0;
/// The forwarder doubles its rate (legitimately) from this second on: 120
/// q/s at scale 1, above client_flood's fixed 100 q/s, below 3x its learned
/// baseline.
const FORWARDER_SURGE_S: i64 = 80;
const FORWARDER_SURGE: f64 = 2.0;
/// Telemetry names: 80/s = 800 distinct names per 10 s window at rate_scale
/// 1, 400 at 0.5 (random_subdomain's warning is 300).
const TELEMETRY_QPS: f64 = 80.0;
const TCP_LOOKUPS_PER_S: f64 = 0.5;
/// DNSBL lookups of the mail server, per second (not scaled).
const DNSBL_QPS: f64 = 2.0;
/// File-hash lookups of the antivirus endpoint, per second (not scaled):
/// 30 per window, enough for tunneling without its allowlist.
const AV_HASH_QPS: f64 = 3.0;
/// Least benign rate of the second server (small scales).
pub(super) const SECOND_SERVER_MIN_QPS: f64 = 5.0;

pub(super) fn telemetry_qps(scale: f64) -> f64 {
    TELEMETRY_QPS * scale
}

pub(super) fn tcp_rate(scale: f64) -> f64 {
    (TCP_LOOKUPS_PER_S * scale).max(0.05)
}

/// The truth's note on the background of a capture of `clients` IPv4 clients.
pub(super) fn note(plan: &Plan, clients: u32) -> String {
    let regular_54 = BENIGN_QPS * plan.scale * SECOND_SERVER_SHARE;
    let top_up = (SECOND_SERVER_MIN_QPS - regular_54).max(0.0);
    let population = if clients > V4_CLIENTS {
        format!(
            "{} IPv4 clients (300 in 10.1.0.0/16 in 30 /24s, the rest 25 per /24 from \
             10.2.0.0)",
            clients
        )
    } else {
        "300 IPv4 clients in 10.1.0.0/16 (30 /24s)".to_string()
    };
    format!(
        "background: {population} and 8 IPv6 clients in \
         2001:db8:1::/64, {:.1} q/s in all: {:.1} q/s to {SECOND_SERVER}{}, the IPv6 \
         clients to {RESOLVER_V6}, the rest to {RESOLVER}; forwarder {FORWARDER} at \
         {:.1} q/s, {FORWARDER_SURGE}x from {FORWARDER_SURGE_S} s on; telemetry names under t.{TELEMETRY_DOMAIN} at {:.1} q/s; {:.2} TCP \
         lookups/s; 2 % NXDOMAIN typos, 0.2 % SERVFAIL; answers 1-30 ms after queries",
        BENIGN_QPS * plan.scale + top_up,
        plan.second_server_qps,
        if top_up > 0.0 {
            format!(" (topped up by {top_up:.1} q/s)")
        } else {
            String::new()
        },
        FORWARDER_QPS * plan.scale,
        telemetry_qps(plan.scale),
        tcp_rate(plan.scale),
    )
}

/// The background traffic of the second `[lo, hi)` µs (see the module docs
/// of `labelled`), in this order (the draws of a seed depend on it).
pub(super) fn background(g: &mut Gen, world: &World, plan: &Plan, lo: i64, hi: i64) {
    regular(g, world, plan.scale, lo, hi);
    second_server_top_up(g, world, plan.scale, lo, hi);
    forwarder(g, world, plan, lo, hi);
    reputation(g, lo, hi);
    telemetry(g, world, plan.scale, lo, hi);
    tcp(g, world, plan.scale, lo, hi);
}

/// The regular clients: Zipf-popular names, mixed qtypes, typos answered
/// NXDOMAIN, a few SERVFAIL.
fn regular(g: &mut Gen, world: &World, scale: f64, lo: i64, hi: i64) {
    for ts in times(&mut g.rng, BENIGN_QPS * scale, lo, hi) {
        let ci = world.pick_client(&mut g.rng);
        let client = world.clients[ci];
        let server = world.server_of(ci);
        let mut name = world.popular(&mut g.rng).to_string();
        let u = g.rng.unit();
        let qt = if u < 0.60 {
            qtype::A
        } else if u < 0.88 {
            qtype::AAAA
        } else if u < 0.94 {
            QTYPE_HTTPS
        } else if u < 0.97 {
            qtype::MX
        } else {
            qtype::TXT
        };
        let u = g.rng.unit();
        let rc = if u < 0.02 {
            name = typo(&mut g.rng, &name);
            rcode::NXDOMAIN
        } else if u < 0.022 {
            rcode::SERVFAIL
        } else {
            rcode::NOERROR
        };
        let edns = g.rng.unit() < 0.9;
        let mut delay = g.delay();
        if rc == rcode::SERVFAIL {
            delay += 100_000;
        }
        g.lookup(ts, client, server, name, qt, edns, Some(rc), delay);
    }
}

/// The second server topped up to [`SECOND_SERVER_MIN_QPS`].
fn second_server_top_up(g: &mut Gen, world: &World, scale: f64, lo: i64, hi: i64) {
    // At small scales, keep the second server's traffic continuous (its
    // rate_anomaly baseline needs 60 windows with data).
    let top_up = SECOND_SERVER_MIN_QPS - BENIGN_QPS * scale * SECOND_SERVER_SHARE;
    for ts in times(&mut g.rng, top_up, lo, hi) {
        let ci = loop {
            let i = g.rng.below(world.clients.len() as u64) as usize;
            if world.second[i] {
                break i;
            }
        };
        let name = world.popular(&mut g.rng).to_string();
        let d = g.delay();
        g.lookup(
            ts,
            world.clients[ci],
            IpAddr::V4(SECOND_SERVER),
            name,
            qtype::A,
            true,
            Some(rcode::NOERROR),
            d,
        );
    }
}

/// The forwarder: steady, then twice as busy from [`FORWARDER_SURGE_S`] on
/// (a heavy legitimate client whose own baseline says this is normal).
fn forwarder(g: &mut Gen, world: &World, plan: &Plan, lo: i64, hi: i64) {
    let scale = plan.scale;
    let surge = plan.start_us + FORWARDER_SURGE_S * MICROS;
    let mut fwd = times(&mut g.rng, FORWARDER_QPS * scale, lo, hi.min(surge));
    fwd.extend(times(
        &mut g.rng,
        FORWARDER_QPS * FORWARDER_SURGE * scale,
        lo.max(surge),
        hi,
    ));
    for ts in fwd {
        let name = world.popular(&mut g.rng).to_string();
        let qt = if g.rng.unit() < 0.6 {
            qtype::A
        } else {
            qtype::AAAA
        };
        let d = g.delay();
        g.lookup(
            ts,
            IpAddr::V4(FORWARDER),
            IpAddr::V4(RESOLVER),
            name,
            qt,
            true,
            Some(rcode::NOERROR),
            d,
        );
    }
}

/// Reputation lookups (not scaled: one machine each): a mail server checks
/// connecting addresses against a DNSBL (mostly NXDOMAIN, "not listed"), an
/// antivirus endpoint looks file hashes up (40 hex digits in one label,
/// answered): data in names by design, hard negatives for tunneling and for
/// the lexical detectors.
fn reputation(g: &mut Gen, lo: i64, hi: i64) {
    for ts in times(&mut g.rng, DNSBL_QPS, lo, hi) {
        let ip = public_v4(&mut g.rng).octets();
        let name = format!("{}.{}.{}.{}.zen.spamhaus.org", ip[3], ip[2], ip[1], ip[0]);
        let listed = g.rng.unit() < 0.15;
        let rc = if listed {
            rcode::NOERROR
        } else {
            rcode::NXDOMAIN
        };
        let d = g.delay();
        g.lookup(
            ts,
            IpAddr::V4(MAIL_SERVER),
            IpAddr::V4(RESOLVER),
            name,
            qtype::A,
            true,
            Some(rc),
            d,
        );
    }
    for ts in times(&mut g.rng, AV_HASH_QPS, lo, hi) {
        let name = format!("{}.fh.sophosxl.net", random_label(&mut g.rng, 40, HEX));
        let d = g.delay();
        g.lookup(
            ts,
            IpAddr::V4(AV_CLIENT),
            IpAddr::V4(RESOLVER),
            name,
            qtype::A,
            true,
            Some(rcode::NOERROR),
            d,
        );
    }
}

/// Telemetry beacons: unique names under [`TELEMETRY_DOMAIN`].
fn telemetry(g: &mut Gen, world: &World, scale: f64, lo: i64, hi: i64) {
    for ts in times(&mut g.rng, telemetry_qps(scale), lo, hi) {
        let client = world.v4[g.rng.below(world.v4.len() as u64) as usize];
        let name = format!("{}.t.{TELEMETRY_DOMAIN}", random_label(&mut g.rng, 12, HEX));
        let d = g.delay();
        g.lookup(
            ts,
            client,
            IpAddr::V4(RESOLVER),
            name,
            qtype::A,
            true,
            Some(rcode::NOERROR),
            d,
        );
    }
}

/// Lookups over TCP, half of them with the handshake and teardown.
fn tcp(g: &mut Gen, world: &World, scale: f64, lo: i64, hi: i64) {
    for ts in times(&mut g.rng, tcp_rate(scale), lo, hi) {
        let client = world.v4[g.rng.below(world.v4.len() as u64) as usize];
        let name = world.popular(&mut g.rng).to_string();
        let hs = g.rng.unit() < 0.5;
        g.tcp_lookup(ts, client, IpAddr::V4(RESOLVER), &name, hs);
    }
}
