//! A capture for the `newly_observed` detector (tests and demos): benign
//! clients resolving a fixed set of popular domains from the start, each
//! also resolving one domain of its own later (one newly observed domain
//! per benign client) and some NXDOMAIN typos; one infected client
//! resolving `INFECTED_DOMAINS` fresh domains from 100 s on. Queries and
//! NOERROR/NXDOMAIN responses, one resolver. Deterministic; any time range
//! of it can be written on its own (a capture cut in two).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use super::{FrameBuilder, PcapWriter, qtype, rcode};
use crate::Rng;
use dnsmonitor_core::time::MICROS;

/// Start of the capture, µs since the epoch (aligned to a minute).
pub const START_US: i64 = 1_700_000_040 * MICROS;
/// Length, seconds.
pub const DURATION_S: u32 = 240;
/// Benign clients 10.20.0.1 ..= 10.20.0.BENIGN.
pub const BENIGN: u8 = 20;
/// The infected client.
pub const INFECTED: Ipv4Addr = Ipv4Addr::new(10, 20, 0, 99);
/// Fresh domains the infected client resolves (one every 5 s from 100 s).
pub const INFECTED_DOMAINS: u32 = 20;
/// Popular domains every benign client uses.
pub const POPULAR: u32 = 40;

fn resolver() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 20, 0, 53)), 53)
}

/// Every lookup: (time µs, client, name, rcode), in time order.
pub fn lookups() -> Vec<(i64, Ipv4Addr, String, u8)> {
    let mut out = Vec::new();
    let mut rng = Rng::new(16);
    for c in 1..=BENIGN {
        let client = Ipv4Addr::new(10, 20, 0, c);
        // A lookup about every 2 s, cycling through the popular domains so
        // every one is seen in the first minute.
        let mut t = rng.below(2_000_000) as i64;
        let mut k = c as u32;
        while t < DURATION_S as i64 * MICROS {
            out.push((
                t,
                client,
                format!("www.popular{}.com", k % POPULAR),
                rcode::NOERROR,
            ));
            k += 3;
            t += 1_500_000 + rng.below(1_000_000) as i64;
        }
        // Its own new domain, once, after the first two minutes.
        let at = (120 + c as i64 * 3) * MICROS + 250_000;
        out.push((
            at,
            client,
            format!("shop.benign{c}-new.net"),
            rcode::NOERROR,
        ));
        // A typo (NXDOMAIN: never counted).
        out.push((
            at + MICROS,
            client,
            format!("www.popolar{c}x.com"),
            rcode::NXDOMAIN,
        ));
    }
    for j in 0..INFECTED_DOMAINS {
        let at = (100 + 5 * j as i64) * MICROS + 500_000;
        out.push((at, INFECTED, format!("cdn.fresh{j}-c2.xyz"), rcode::NOERROR));
        out.push((
            at + 700_000,
            INFECTED,
            "www.popular1.com".into(),
            rcode::NOERROR,
        ));
    }
    out.sort();
    out
}

/// Write the lookups at `[from_s, to_s)` seconds of the capture (each a
/// query and, 2 ms later, its response) to `path`.
pub fn write_capture(path: &Path, from_s: u32, to_s: u32) -> io::Result<u64> {
    let mut w = PcapWriter::create(path)?;
    let mut fb = FrameBuilder::new();
    let mut n = 0;
    let answer = [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 80))];
    for (i, (t, client, name, rc)) in lookups().into_iter().enumerate() {
        if t < from_s as i64 * MICROS || t >= to_s as i64 * MICROS {
            continue;
        }
        let c = SocketAddr::new(IpAddr::V4(client), 40_000 + (i % 20_000) as u16);
        let id = i as u16;
        w.write_frame(
            START_US + t,
            fb.query(c, resolver(), id, &name, qtype::A, true),
        )?;
        let ans: &[IpAddr] = if rc == rcode::NOERROR { &answer } else { &[] };
        let f = fb.response(resolver(), c, id, &name, qtype::A, rc, ans, 0);
        w.write_frame(START_US + t + 2_000, f)?;
        n += 2;
    }
    w.into_inner()?;
    Ok(n)
}
