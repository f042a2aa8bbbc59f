//! Labelled synthetic captures: realistic benign background with injected
//! attacks, written as a pcap together with the *truth*, the alerts a
//! correct detector suite should raise (kind, exact `key` object, time
//! window). Used by `dnsmonitor synth`, tests/detection_quality.rs and the
//! examples in captures/synth/. Deterministic for a seed (SplitMix64, no wall
//! clock, no hash-map iteration order in the output).
//!
//! # Background (always present, every rate times `rate_scale`)
//!
//! - 300 IPv4 clients, 10 in each of 30 /24s of 10.1.0.0/16 (heavy-tailed
//!   activity, none above ~5 q/s at scale 1), and 8 IPv6 clients in
//!   2001:db8:1::/64: 300 q/s in all, Poisson timing. Clients numbered
//!   i % 7 == 3 (one in seven, 1/7 of the IPv4 query weight, ~43 q/s) use
//!   the second server 192.0.2.54 (topped up to at least 5 q/s at small
//!   scales, so its baseline can warm up), IPv6 clients 2001:db8::53,
//!   everyone else 192.0.2.53.
//! - Names: Zipf-popular hosts under 400 registered domains, also under
//!   multi-label public suffixes (co.uk, org.uk, com.au, co.jp, com.br);
//!   qtypes A 60 %, AAAA 28 %, HTTPS 6 %, MX 3 %, TXT 3 %; EDNS on 90 %;
//!   2 % typos answered NXDOMAIN, 0.2 % SERVFAIL (~100 ms); every query
//!   answered 1–30 ms later (A/AAAA answers, NODATA for the other types).
//! - A forwarder 10.1.200.1 at 60 q/s, twice that from 80 s on (at scale 1,
//!   120 q/s: above client_flood's fixed 100 q/s, a hard negative for the
//!   client's learned baseline).
//! - Telemetry: random 12-hex-digit names under `t.cdn-telemetry.example`
//!   from random clients at 80 q/s, all NOERROR: 4800 unique names a
//!   minute, a hard negative for `random_subdomain` (800 distinct names per
//!   window at scale 1, 400 at 0.5, above its 300) and `tunneling`.
//! - Reputation lookups, not scaled: a mail server 10.1.7.7 checks 2
//!   addresses/s against `zen.spamhaus.org` (85 % NXDOMAIN), an antivirus
//!   endpoint 10.1.8.8 looks up 3 file hashes/s (`<40 hex>.fh.sophosxl.net`,
//!   answered): hard negatives for `tunneling` (its default
//!   `allow_domains`) and for lexical signals.
//! - DNS over TCP: 0.5 lookups/s, half with SYN / SYN-ACK / ACK and a FIN
//!   teardown, half starting mid-flow (the two data segments only).
//!
//! # Attacks
//!
//! Each is active in `[start, end)`. With one attack in the capture:
//! `start` = 20 % and `end` = 60 % of the duration (whole seconds), but
//! `end` leaves 32 s (window + hold + 2 s) for the alert to resolve and the
//! attack lasts at least 10 s; `spoofed_flood` and `rate_anomaly` start no
//! earlier than [`WARMUP_START_S`] because their detectors learn a baseline
//! first (use 150 s or more). With several attacks (`mixed`, or several
//! names) each has its own slot ([`mixed_slot`]): 12 s (tunneling 20 s)
//! starting at a point of a 180 s timeline scaled to the duration.
//!
//! Rates are `nominal × rate_scale`, never below a floor. At scale >= 0.5
//! every attack is detected by the default pipeline within two 1 s slides
//! of its start; at smaller scales the floors (1.3–1.6× the volume the
//! default thresholds need in one 10 s window; rate_anomaly: enough to
//! cross its 200 q/s minimum within two slides, since it learns every
//! window below that) keep it detectable, later.
//! The numbers used are in the truth's `notes`. Nominal (floor):
//!
//! | scenario | traffic |
//! |---|---|
//! | client_flood | 10.66.0.1 → 192.0.2.53, 3000 q/s (150), popular names, answered 1 ms later |
//! | subnet_flood | 40 clients 10.99.7.10–49 → 192.0.2.53, 900 q/s in all (200), answered: at 0.3x each host sends ~7 q/s, far below client_flood |
//! | nxdomain_flood | 10.66.0.2, 400 q/s (30), random names under 1000 random registered domains, NXDOMAIN |
//! | servfail_flood | 10.66.0.3, 300 q/s (30), 24 names in 8 broken zones, SERVFAIL after 20–200 ms |
//! | random_subdomain | 500 bots (12) in 10.70.0.0/16, about 64 per /24 (at least eight /24s) at 4 q/s each (a busy-looking subnet, a hard negative for subnet_flood), `<16 chars>.victim-domain.example`, NXDOMAIN |
//! | amplification | 500 (11) ANY responses/s of 3000 bytes from 192.0.2.53 and 198.51.100.10–13 to 203.0.113.7; the spoofed queries are not captured |
//! | unsolicited_response | 200 (5) unmatched A responses/s (random ids, ports) from 192.0.2.53 to 10.1.3.3, a normal client that also looks up 1 more name/s |
//! | spoofed_flood | 3000 q/s (75) to 192.0.2.53 from random public IPv4 sources, each used once, unanswered |
//! | rate_anomaly | the IPv4 population adds 2400 q/s (1100) to 192.0.2.54, answered |
//! | tunneling | 10.1.5.5, 30 q/s (1.5) TXT (70 %) / NULL, `<50–60 base32>.<seq>.t.tunnel-domain.example`, answered with TXT/NULL data |
//! | blocklist_hit | 10.1.4.4 looks up www.malware.example and x.phish.test 3 times each (blocklists/example.txt) |
//!
//! The truth lists each attack's primary `(kind, key)` and, in `also`, the
//! other alerts it legitimately causes: the NXDOMAIN and SERVFAIL flooders
//! are also `client_flood`s, a query flood at 192.0.2.53 is also a
//! `rate_anomaly` for it once its baseline is learned, the 500 bots are
//! "far more sources than normal" (`spoofed_flood`) for a warm resolver.
//! Those are allowed, not required.

use std::io::{self, Write};
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::PcapWriter;
use dnsmonitor_core::time::MICROS;

mod attacks;
mod background;
mod plan;
mod traffic;
mod world;

use attacks::{ALONE, AttackState, MIXED, by_name};
use plan::{Plan, Planned};
use traffic::Gen;
use world::World;

/// Scenario names accepted by [`generate`]: `benign` (background only), one
/// per attack, and `mixed` (every attack, each in its own slot).
pub const SCENARIOS: &[&str] = &[
    "benign",
    "client_flood",
    "subnet_flood",
    "nxdomain_flood",
    "servfail_flood",
    "random_subdomain",
    "amplification",
    "unsolicited_response",
    "spoofed_flood",
    "rate_anomaly",
    "tunneling",
    "blocklist_hit",
    "rate_ramp",
    "dga",
    "mixed",
];

/// `schema` of the truth file.
pub const TRUTH_SCHEMA: &str = "dnsmonitor.truth/1";
/// Default capture start: 2023-11-14T22:13:20Z.
pub const DEFAULT_START_US: i64 = 1_700_000_000 * MICROS;
/// Earliest start (seconds into the capture) of attacks whose detectors
/// need a learned baseline (`spoofed_flood`: 30 windows, `rate_anomaly`: 60).
pub const WARMUP_START_S: u32 = 75;

/// The resolver most clients use.
pub const RESOLVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);
/// A second server used by a minority of clients (~50 q/s).
pub const SECOND_SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 54);
/// The resolver of the IPv6 clients.
pub const RESOLVER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x53);
/// A legitimate heavy forwarder (60 q/s).
pub const FORWARDER: Ipv4Addr = Ipv4Addr::new(10, 1, 200, 1);
/// A mail server checking a DNSBL (benign reputation lookups).
pub const MAIL_SERVER: Ipv4Addr = Ipv4Addr::new(10, 1, 7, 7);
/// An antivirus endpoint looking file hashes up (benign).
pub const AV_CLIENT: Ipv4Addr = Ipv4Addr::new(10, 1, 8, 8);
/// Registered domain of the benign high-cardinality telemetry names.
pub const TELEMETRY_DOMAIN: &str = "cdn-telemetry.example";

pub const CLIENT_FLOODER: Ipv4Addr = Ipv4Addr::new(10, 66, 0, 1);
pub const NXDOMAIN_CLIENT: Ipv4Addr = Ipv4Addr::new(10, 66, 0, 2);
pub const SERVFAIL_CLIENT: Ipv4Addr = Ipv4Addr::new(10, 66, 0, 3);
/// The /24 of the `subnet_flood` clients.
pub const FLOOD_SUBNET: Ipv4Addr = Ipv4Addr::new(10, 99, 7, 0);
pub const VICTIM_DOMAIN: &str = "victim-domain.example";
pub const AMPLIFICATION_VICTIM: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
/// A normal client that also receives unsolicited responses.
pub const UNSOLICITED_VICTIM: Ipv4Addr = Ipv4Addr::new(10, 1, 3, 3);
pub const BLOCKLIST_CLIENT: Ipv4Addr = Ipv4Addr::new(10, 1, 4, 4);
pub const TUNNEL_CLIENT: Ipv4Addr = Ipv4Addr::new(10, 1, 5, 5);
pub const TUNNEL_DOMAIN: &str = "tunnel-domain.example";
/// The first infected host of the `dga` scenario.
pub const DGA_HOSTS: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// Names looked up by `blocklist_hit` and the entries of
/// blocklists/example.txt they match.
pub const BLOCKLISTED: [(&str, &str); 2] = [
    ("www.malware.example", "malware.example"),
    ("x.phish.test", "phish.test"),
];

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthOptions {
    /// Names from [`SCENARIOS`]; `benign` adds nothing to the always-present
    /// background, `mixed` adds every attack.
    pub scenarios: Vec<String>,
    pub seed: u64,
    pub duration_s: u32,
    /// Multiplies every rate (background and attacks; attacks keep their
    /// floors, see the module docs). 1.0 = the nominal rates.
    pub rate_scale: f64,
    /// Capture start, µs since the Unix epoch.
    pub start_us: i64,
    /// Benign IPv4 clients (at least [`MIN_CLIENTS`], at most
    /// [`MAX_CLIENTS`]). The first 300 are always the same; more spread the
    /// same query rate over a bigger population (25 per /24 from 10.2.0.0
    /// on), as on a big resolver.
    pub clients: u32,
    /// Length in seconds of every attack (default: 12 s each, tunneling 20 s,
    /// or the lone-attack length).
    pub attack_secs: Option<u32>,
    /// Per-attack rate scale (scenario name, factor) used instead of
    /// `rate_scale` for that attack's traffic.
    pub intensity: Vec<(String, f64)>,
}

/// Fewest benign IPv4 clients (the fixed population of every capture).
pub const MIN_CLIENTS: u32 = 300;
/// Most benign IPv4 clients.
pub const MAX_CLIENTS: u32 = 250_000;

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions {
            scenarios: vec!["benign".into()],
            seed: 1,
            duration_s: 60,
            rate_scale: 1.0,
            start_us: DEFAULT_START_US,
            clients: MIN_CLIENTS,
            attack_secs: None,
            intensity: Vec::new(),
        }
    }
}

/// The labels of a generated capture (`dnsmonitor.truth/1`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    pub schema: String,
    pub seed: u64,
    pub duration_s: u32,
    pub scenarios: Vec<String>,
    pub attacks: Vec<TruthAttack>,
    pub notes: Vec<String>,
}

/// One injected attack: the alert a detector should raise for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TruthAttack {
    /// Alert kind (snake_case, as in alerts).
    pub kind: String,
    /// Exactly the alert's `key` object.
    pub key: serde_json::Value,
    /// RFC 3339, like alert times.
    pub start: String,
    pub end: String,
    pub start_us: i64,
    pub end_us: i64,
    /// Other (kind, key) alerts this attack legitimately causes while it
    /// runs (allowed, not required).
    #[serde(default)]
    pub also: Vec<TruthAlso>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TruthAlso {
    pub kind: String,
    pub key: serde_json::Value,
}

/// The names in `names` that are not in [`SCENARIOS`].
pub fn unknown_scenarios(names: &[String]) -> Vec<String> {
    names
        .iter()
        .filter(|n| !SCENARIOS.contains(&n.as_str()))
        .cloned()
        .collect()
}

/// Check the options without writing anything: an unknown scenario, a zero
/// duration or attack length, a rate scale or intensity that is not a
/// positive finite number, a client count out of range, an intensity for an
/// unknown attack. The message says which and why.
pub fn validate(opts: &SynthOptions) -> Result<(), String> {
    let unknown = unknown_scenarios(&opts.scenarios);
    if !unknown.is_empty() {
        let unknown: Vec<String> = unknown
            .iter()
            .map(|n| n.escape_debug().to_string())
            .collect();
        return Err(format!(
            "unknown scenario(s) {} (known: {})",
            unknown.join(", "),
            SCENARIOS.join(", ")
        ));
    }
    if opts.duration_s == 0 {
        return Err("duration must be at least 1 s".into());
    }
    if !(opts.rate_scale.is_finite() && opts.rate_scale > 0.0) {
        return Err(format!(
            "rate scale must be a positive number, not {}",
            opts.rate_scale
        ));
    }
    if !(MIN_CLIENTS..=MAX_CLIENTS).contains(&opts.clients) {
        return Err(format!(
            "clients must be between {MIN_CLIENTS} and {MAX_CLIENTS}, not {}",
            opts.clients
        ));
    }
    if opts.attack_secs == Some(0) {
        return Err("attack length must be at least 1 s".into());
    }
    for (name, f) in &opts.intensity {
        if by_name(name).is_none() {
            return Err(format!(
                "intensity for unknown attack `{}` (known: {})",
                name.escape_debug(),
                MIXED
                    .into_iter()
                    .chain(ALONE)
                    .map(|a| a.attack().name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !(f.is_finite() && *f > 0.0) {
            return Err(format!(
                "intensity of {} must be a positive number, not {f}",
                name.escape_debug()
            ));
        }
    }
    Ok(())
}

/// Write the capture to `out` (classic pcap, Ethernet; wrap files in a
/// `BufWriter`) and return its truth and the number of frames written.
/// Errors: `InvalidInput` for an unknown scenario, a zero duration or a
/// rate scale that is not a positive finite number; write errors.
pub fn generate<W: Write>(opts: &SynthOptions, out: W) -> io::Result<(Truth, u64)> {
    validate(opts).map_err(|m| io::Error::new(io::ErrorKind::InvalidInput, m))?;
    let plan = Plan::new(opts);
    let mut w = PcapWriter::new(out)?;
    let mut g = Gen::new(opts.seed);
    let world = World::new(&mut g.rng, opts.clients);
    let mut state = AttackState::new(&mut g.rng, &plan);
    let start = opts.start_us;
    for s in 0..opts.duration_s {
        let lo = start + s as i64 * MICROS;
        let hi = lo + MICROS;
        background::background(&mut g, &world, &plan, lo, hi);
        for a in &plan.attacks {
            let (alo, ahi) = (lo.max(a.start_us), hi.min(a.end_us));
            if alo < ahi {
                a.inject.traffic(&mut g, &world, &mut state, a, alo, ahi);
            }
        }
        g.flush_before(&mut w, hi)?;
    }
    g.flush_before(&mut w, i64::MAX)?;
    w.into_inner()?.flush()?;
    Ok((plan.truth(opts), g.frames))
}

/// Convenience: [`generate`] into a file (buffered).
pub fn generate_file(opts: &SynthOptions, path: &std::path::Path) -> io::Result<(Truth, u64)> {
    // Nothing is created for options that cannot be generated.
    validate(opts).map_err(|m| io::Error::new(io::ErrorKind::InvalidInput, m))?;
    let f = std::fs::File::create(path)?;
    generate(opts, io::BufWriter::with_capacity(1 << 16, f))
}

/// An attack's slot in `mixed` (and whenever several attacks are asked
/// for): its start in seconds on a 180 s timeline, scaled to the capture's
/// duration, and its length in seconds (not scaled). Baseline-learning
/// attacks start no earlier than [`WARMUP_START_S`].
pub fn mixed_slot(kind: &str) -> Option<(u32, u32)> {
    Some(by_name(kind)?.slot())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use serde_json::json;

    use super::*;
    use dnsmonitor_core::time::rfc3339;

    fn opts(scenarios: &[&str], seed: u64, duration_s: u32, rate_scale: f64) -> SynthOptions {
        SynthOptions {
            scenarios: scenarios.iter().map(|s| s.to_string()).collect(),
            seed,
            duration_s,
            rate_scale,
            start_us: DEFAULT_START_US,
            ..SynthOptions::default()
        }
    }

    #[test]
    fn deterministic_per_seed() {
        let o = opts(&["mixed"], 3, 40, 0.05);
        let mut a = Vec::new();
        let (ta, na) = generate(&o, &mut a).unwrap();
        let mut b = Vec::new();
        let (tb, nb) = generate(&o, &mut b).unwrap();
        assert_eq!((na, &ta), (nb, &tb));
        assert!(a == b, "same seed, same bytes");
        let mut c = Vec::new();
        generate(&opts(&["mixed"], 4, 40, 0.05), &mut c).unwrap();
        assert!(a != c, "another seed, other bytes");
        assert!(a.len() as u64 > 24 + na * 16);
    }

    #[test]
    fn rejects_bad_options() {
        assert_eq!(
            unknown_scenarios(&["benign".into(), "nope".into(), "mixed".into()]),
            ["nope"]
        );
        for o in [
            opts(&["nope"], 1, 10, 1.0),
            opts(&["benign"], 1, 0, 1.0),
            opts(&["benign"], 1, 10, 0.0),
            opts(&["benign"], 1, 10, f64::NAN),
        ] {
            let e = generate(&o, Vec::new()).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{o:?}");
        }
    }

    #[test]
    fn truth_keys_and_windows() {
        let (t, _) = generate(&opts(&["mixed"], 1, 180, 0.02), io::sink()).unwrap();
        assert_eq!(t.schema, TRUTH_SCHEMA);
        let kinds: Vec<&str> = t.attacks.iter().map(|a| a.kind.as_str()).collect();
        assert_eq!(t.attacks.len(), 12, "{kinds:?}"); // blocklist_hit twice
        for a in &t.attacks {
            assert!(a.start_us < a.end_us, "{a:?}");
            assert_eq!(a.start, rfc3339(a.start_us));
            if a.kind == "spoofed_flood" || a.kind == "rate_anomaly" {
                assert!(a.start_us - DEFAULT_START_US >= 70 * MICROS, "{a:?}");
            }
            assert!(
                a.end_us + 32 * MICROS <= DEFAULT_START_US + 180 * MICROS,
                "room to resolve: {a:?}"
            );
        }
        let find = |k: &str| t.attacks.iter().find(|a| a.kind == k).unwrap();
        assert_eq!(find("subnet_flood").key, json!({"subnet": "10.99.7.0/24"}));
        assert_eq!(
            find("tunneling").key,
            json!({"client": "10.1.5.5", "domain": "tunnel-domain.example"})
        );
        assert_eq!(find("spoofed_flood").also[0].kind, "rate_anomaly");
        let text = serde_json::to_string(&t).unwrap();
        let back: Truth = serde_json::from_str(&text).unwrap();
        assert_eq!(back, t);

        for (kind, d, s, e) in [
            ("client_flood", 60, 12, 28),
            ("client_flood", 100, 20, 60),
            ("spoofed_flood", 150, 75, 90),
            ("rate_anomaly", 200, 75, 120),
        ] {
            let (t, _) = generate(&opts(&[kind], 1, d, 0.02), io::sink()).unwrap();
            assert_eq!(t.attacks.len(), 1);
            let a = &t.attacks[0];
            assert_eq!(
                (a.start_us, a.end_us),
                (DEFAULT_START_US + s * MICROS, DEFAULT_START_US + e * MICROS),
                "{kind} {d}"
            );
        }
        let (t, _) = generate(&opts(&["benign"], 1, 10, 0.02), io::sink()).unwrap();
        assert!(t.attacks.is_empty());
    }

    #[test]
    fn frames_decode_and_timestamps_ascend() {
        let mut buf = Vec::new();
        let (_, n) = generate(&opts(&["mixed"], 9, 180, 0.02), &mut buf).unwrap();
        // Walk the records: ascending timestamps, Ethernet frames that the
        // packet layer and the DNS decoder accept.
        let mut dec = dnsmonitor_core::packet::PacketDecoder::new(Default::default());
        let mut off = 24;
        let (mut prev, mut count, mut msgs) = (i64::MIN, 0u64, 0u64);
        let mut types = HashSet::new();
        while off < buf.len() {
            let h = &buf[off..off + 16];
            let sec = u32::from_ne_bytes(h[0..4].try_into().unwrap()) as i64;
            let us = u32::from_ne_bytes(h[4..8].try_into().unwrap()) as i64;
            let incl = u32::from_ne_bytes(h[8..12].try_into().unwrap()) as usize;
            let ts = sec * MICROS + us;
            assert!(ts >= prev);
            prev = ts;
            let frame = &buf[off + 16..off + 16 + incl];
            dec.decode(1, ts, frame, |p| {
                let m = dnsmonitor_core::dns::decode(p.data).expect("decodes");
                assert!(m.record_error.is_none());
                if let Some(q) = &m.question {
                    types.insert(q.qtype);
                }
                msgs += 1;
            });
            off += 16 + incl;
            count += 1;
        }
        assert_eq!(count, n);
        assert!(msgs > n * 8 / 10, "{msgs} of {n}");
        for t in [1, 28, 15, 16, 65, 10, 255] {
            assert!(types.contains(&t), "qtype {t}: {types:?}");
        }
    }
}
