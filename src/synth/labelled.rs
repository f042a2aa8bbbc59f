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

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::scenario::{Rng, Zipf};
use super::{FrameBuilder, PcapWriter, qtype, rcode, tcp_flags};
use crate::time::{MICROS, rfc3339};

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
        if Attack::from_name(name).is_none() {
            return Err(format!(
                "intensity for unknown attack `{}` (known: {})",
                name.escape_debug(),
                ATTACKS.map(|a| a.name()).join(", ")
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
    let mut g = Gen {
        rng: Rng::new(opts.seed),
        w: PcapWriter::new(out)?,
        fb: FrameBuilder::new(),
        queue: BTreeMap::new(),
        seq: 0,
        frames: 0,
    };
    let world = World::new(&mut g.rng, opts.clients);
    let mut state = AttackState::new(&mut g.rng, &plan);
    let start = opts.start_us;
    for s in 0..opts.duration_s {
        let lo = start + s as i64 * MICROS;
        let hi = lo + MICROS;
        background(&mut g, &world, &plan, lo, hi);
        for a in &plan.attacks {
            let (alo, ahi) = (lo.max(a.start_us), hi.min(a.end_us));
            if alo < ahi {
                attack(&mut g, &world, &mut state, a, alo, ahi);
            }
        }
        g.flush_before(hi)?;
    }
    g.flush_before(i64::MAX)?;
    let frames = g.frames;
    g.w.into_inner()?.flush()?;
    Ok((plan.truth(opts), frames))
}

/// Convenience: [`generate`] into a file (buffered).
pub fn generate_file(opts: &SynthOptions, path: &std::path::Path) -> io::Result<(Truth, u64)> {
    // Nothing is created for options that cannot be generated.
    validate(opts).map_err(|m| io::Error::new(io::ErrorKind::InvalidInput, m))?;
    let f = std::fs::File::create(path)?;
    generate(opts, io::BufWriter::with_capacity(1 << 16, f))
}

// ------------------------------------------------------------ attacks ----

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Attack {
    ClientFlood,
    SubnetFlood,
    NxdomainFlood,
    ServfailFlood,
    RandomSubdomain,
    Amplification,
    UnsolicitedResponse,
    SpoofedFlood,
    RateAnomaly,
    Tunneling,
    BlocklistHit,
    /// A slow `rate_anomaly`: not part of `mixed` (same key as RateAnomaly).
    RateRamp,
    /// Infected hosts, one per DGA family (`synth::dga`): not part of
    /// `mixed` (they need minutes).
    Dga,
}

/// Every attack, in the order of their slots in `mixed`.
const ATTACKS: [Attack; 11] = [
    Attack::ClientFlood,
    Attack::NxdomainFlood,
    Attack::Tunneling,
    Attack::BlocklistHit,
    Attack::SubnetFlood,
    Attack::ServfailFlood,
    Attack::RandomSubdomain,
    Attack::Amplification,
    Attack::UnsolicitedResponse,
    Attack::SpoofedFlood,
    Attack::RateAnomaly,
];

impl Attack {
    fn name(self) -> &'static str {
        match self {
            Attack::ClientFlood => "client_flood",
            Attack::SubnetFlood => "subnet_flood",
            Attack::NxdomainFlood => "nxdomain_flood",
            Attack::ServfailFlood => "servfail_flood",
            Attack::RandomSubdomain => "random_subdomain",
            Attack::Amplification => "amplification",
            Attack::UnsolicitedResponse => "unsolicited_response",
            Attack::SpoofedFlood => "spoofed_flood",
            Attack::RateAnomaly => "rate_anomaly",
            Attack::Tunneling => "tunneling",
            Attack::BlocklistHit => "blocklist_hit",
            Attack::RateRamp => "rate_ramp",
            Attack::Dga => "dga",
        }
    }

    /// The alert kind its truth names.
    fn kind(self) -> &'static str {
        match self {
            Attack::RateRamp => "rate_anomaly",
            a => a.name(),
        }
    }

    fn from_name(n: &str) -> Option<Attack> {
        ATTACKS
            .into_iter()
            .chain([Attack::RateRamp, Attack::Dga])
            .find(|a| a.name() == n)
    }

    fn needs_warmup(self) -> bool {
        matches!(
            self,
            Attack::SpoofedFlood | Attack::RateAnomaly | Attack::RateRamp
        )
    }
}

/// An attack's slot in `mixed` (and whenever several attacks are asked
/// for): its start in seconds on a 180 s timeline, scaled to the capture's
/// duration, and its length in seconds (not scaled). Baseline-learning
/// attacks start no earlier than [`WARMUP_START_S`].
pub fn mixed_slot(kind: &str) -> Option<(u32, u32)> {
    Some(match Attack::from_name(kind)? {
        Attack::ClientFlood => (18, 12),
        Attack::NxdomainFlood => (22, 12),
        Attack::Tunneling => (26, 20),
        Attack::BlocklistHit => (30, 12),
        Attack::SubnetFlood => (40, 12),
        Attack::ServfailFlood => (46, 12),
        Attack::RandomSubdomain => (54, 12),
        Attack::Amplification => (60, 12),
        Attack::UnsolicitedResponse => (68, 12),
        Attack::SpoofedFlood => (90, 12),
        Attack::RateAnomaly => (100, 12),
        Attack::RateRamp => (100, 180),
        Attack::Dga => (20, 150),
    })
}

const MIXED_REF_S: f64 = 180.0;

// Rates: `(nominal at rate_scale 1, floor)`. The nominal rates are detected
// within two 1 s slides by the default pipeline at any rate_scale >= 0.5;
// the floors keep an attack of 10 s or more detectable at all (about 1.3x
// to 1.6x the volume the default thresholds need in one 10 s window; for
// rate_anomaly, see below), for small example captures.
const BENIGN_QPS: f64 = 300.0;
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
/// client_flood: warning 100 q/s over 10 s.
const CLIENT_FLOOD_QPS: (f64, f64) = (3000.0, 150.0);
/// subnet_flood: warning 500 q/s with >= 4 clients (window or newest 2 s),
/// or the weak rule (>= 150 q/s from >= 20 sources at >= 4 q/s each); 40
/// clients keep each one far below client_flood's 100 q/s (at 0.3x, 6.75
/// q/s each: the weak rule's case).
const SUBNET_FLOOD_QPS: (f64, f64) = (900.0, 200.0);
const SUBNET_FLOOD_CLIENTS: u32 = 40;
/// nxdomain_flood / servfail_flood: warning 20/s, ratio >= 0.5, >= 20
/// responses.
const NXDOMAIN_FLOOD_QPS: (f64, f64) = (400.0, 30.0);
const SERVFAIL_FLOOD_QPS: (f64, f64) = (300.0, 30.0);
/// random_subdomain: bots at BOT_QPS each; warning 300 distinct names.
const BOTS: (f64, f64) = (500.0, 12.0);
const BOT_QPS: f64 = 4.0;
/// amplification: warning 20 000 bytes/s.
const AMPLIFICATION_RPS: (f64, f64) = (500.0, 11.0);
const AMPLIFICATION_SIZE: usize = 3000;
/// unsolicited_response: >= 20 in the window, >= half the victim's responses.
const UNSOLICITED_RPS: (f64, f64) = (200.0, 5.0);
/// spoofed_flood: once warm, >= 500 distinct sources (or the baseline's
/// level); 5000 cold.
const SPOOFED_QPS: (f64, f64) = (3000.0, 75.0);
/// rate_anomaly: the extra queries per second to the second server (normally
/// 300/7 ~ 43 q/s); the detector's min_qps is 200 averaged over the window
/// and it learns every window below that, so a ramp that takes more than
/// two windows to cross 200 q/s teaches the baseline a deviation that
/// outruns it: the floor crosses it in two 1 s slides.
const RATE_ANOMALY_EXTRA_QPS: (f64, f64) = (2400.0, 1100.0);
/// rate_ramp: the extra queries per second to the second server at the end
/// of a linear ramp from 0 over the whole attack (minutes): the EWMA
/// baseline follows it, the ramp rule (3x the mean of minutes ago, >= 200
/// q/s) does not.
const RATE_RAMP_PEAK_QPS: (f64, f64) = (1200.0, 600.0);
/// dga: lookups per second of each infected host (one per family of
/// `synth::dga::FAMILIES`, at 10.77.0.1 on), 10 % of them repeats of its
/// previous name; `dga` needs 10 distinct names in its 300 s window.
const DGA_QPS: (f64, f64) = (0.3, 0.1);
/// The first infected host of the `dga` scenario.
pub const DGA_HOSTS: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// Least benign rate of the second server (small scales).
const SECOND_SERVER_MIN_QPS: f64 = 5.0;
/// unsolicited_response: the victim's own lookups during the attack, on top
/// of its background ones.
const VICTIM_OWN_QPS: f64 = 1.0;
/// tunneling: >= 20 queries in its 60 s window; the floor (1.5 q/s) gives
/// 30 queries over the 20 s slot of `mixed`, a slow tunnel.
const TUNNEL_QPS: (f64, f64) = (30.0, 1.5);

#[derive(Clone, Debug)]
struct Planned {
    attack: Attack,
    start_us: i64,
    end_us: i64,
    /// Events per second (queries, responses or bots, per attack).
    rate: f64,
}

struct Plan {
    scale: f64,
    attacks: Vec<Planned>,
    /// Normal rate of the second server (for `rate_anomaly`).
    second_server_qps: f64,
    start_us: i64,
}

/// Seconds left after a lone attack for its alert to resolve (window 10 s
/// + hold 20 s + 2 s).
const RESOLVE_ROOM_S: u32 = 32;
/// Shortest lone attack.
const MIN_ATTACK_S: u32 = 10;

/// `[start, end)` in whole seconds of `attack` in a capture of `d` seconds.
fn attack_window(attack: Attack, alone: bool, d: u32, len: Option<u32>) -> (u32, u32) {
    let at = |f: f64| (d as f64 * f).round() as u32;
    let (mut s, mut e) = if alone {
        let s = if attack.needs_warmup() {
            at(0.2).max(WARMUP_START_S)
        } else {
            at(0.2)
        };
        let e = at(0.6).min(d.saturating_sub(RESOLVE_ROOM_S));
        match len {
            Some(l) => (s, s + l),
            None => (s, e.max(s + MIN_ATTACK_S)),
        }
    } else {
        let (a, slot_len) = mixed_slot(attack.name()).unwrap_or((0, 0));
        let len = len.unwrap_or(slot_len);
        let mut s = (a as f64 * d as f64 / MIXED_REF_S).round() as u32;
        if attack.needs_warmup() {
            s = s.max(WARMUP_START_S);
        }
        (s, s + len)
    };
    e = e.min(d);
    s = s.min(e);
    (s, e)
}

fn scaled(scale: f64, (nominal, floor): (f64, f64)) -> f64 {
    (nominal * scale).max(floor)
}

impl Plan {
    fn new(opts: &SynthOptions) -> Plan {
        let mut kinds: Vec<Attack> = Vec::new();
        for n in &opts.scenarios {
            if n == "mixed" {
                kinds.extend(ATTACKS);
            } else if let Some(a) = Attack::from_name(n) {
                kinds.push(a);
            }
        }
        let mut seen = HashSet::new();
        kinds.retain(|a| seen.insert(*a));
        kinds.sort_by_key(|a| ATTACKS.iter().position(|b| b == a));
        let d = opts.duration_s;
        let scale = opts.rate_scale;
        let second_server_qps =
            (BENIGN_QPS * scale * SECOND_SERVER_SHARE).max(SECOND_SERVER_MIN_QPS);
        let attacks = kinds
            .iter()
            .map(|&attack| {
                let (s, e) = attack_window(attack, kinds.len() == 1, d, opts.attack_secs);
                let scale = opts
                    .intensity
                    .iter()
                    .rev()
                    .find(|(n, _)| n == attack.name())
                    .map_or(scale, |(_, f)| *f);
                let rate = match attack {
                    Attack::ClientFlood => scaled(scale, CLIENT_FLOOD_QPS),
                    Attack::SubnetFlood => scaled(scale, SUBNET_FLOOD_QPS),
                    Attack::NxdomainFlood => scaled(scale, NXDOMAIN_FLOOD_QPS),
                    Attack::ServfailFlood => scaled(scale, SERVFAIL_FLOOD_QPS),
                    Attack::RandomSubdomain => scaled(scale, BOTS).round(),
                    Attack::Amplification => scaled(scale, AMPLIFICATION_RPS),
                    Attack::UnsolicitedResponse => scaled(scale, UNSOLICITED_RPS),
                    Attack::SpoofedFlood => scaled(scale, SPOOFED_QPS),
                    Attack::RateAnomaly => scaled(scale, RATE_ANOMALY_EXTRA_QPS),
                    Attack::RateRamp => scaled(scale, RATE_RAMP_PEAK_QPS),
                    Attack::Dga => scaled(scale, DGA_QPS),
                    Attack::Tunneling => scaled(scale, TUNNEL_QPS),
                    Attack::BlocklistHit => 0.0,
                };
                Planned {
                    attack,
                    start_us: opts.start_us + s as i64 * MICROS,
                    end_us: opts.start_us + e as i64 * MICROS,
                    rate,
                }
            })
            .collect();
        Plan {
            scale,
            attacks,
            second_server_qps,
            start_us: opts.start_us,
        }
    }

    fn truth(&self, opts: &SynthOptions) -> Truth {
        let mut attacks = Vec::new();
        let regular_54 = BENIGN_QPS * self.scale * SECOND_SERVER_SHARE;
        let top_up = (SECOND_SERVER_MIN_QPS - regular_54).max(0.0);
        let population = if opts.clients > V4_CLIENTS {
            format!(
                "{} IPv4 clients (300 in 10.1.0.0/16 in 30 /24s, the rest 25 per /24 from \
                 10.2.0.0)",
                opts.clients
            )
        } else {
            "300 IPv4 clients in 10.1.0.0/16 (30 /24s)".to_string()
        };
        let mut notes = vec![format!(
            "background: {population} and 8 IPv6 clients in \
             2001:db8:1::/64, {:.1} q/s in all: {:.1} q/s to {SECOND_SERVER}{}, the IPv6 \
             clients to {RESOLVER_V6}, the rest to {RESOLVER}; forwarder {FORWARDER} at \
             {:.1} q/s, {FORWARDER_SURGE}x from {FORWARDER_SURGE_S} s on; telemetry names under t.{TELEMETRY_DOMAIN} at {:.1} q/s; {:.2} TCP \
             lookups/s; 2 % NXDOMAIN typos, 0.2 % SERVFAIL; answers 1-30 ms after queries",
            BENIGN_QPS * self.scale + top_up,
            self.second_server_qps,
            if top_up > 0.0 {
                format!(" (topped up by {top_up:.1} q/s)")
            } else {
                String::new()
            },
            FORWARDER_QPS * self.scale,
            telemetry_qps(self.scale),
            tcp_rate(self.scale),
        )];
        let server = json!({ "server": RESOLVER.to_string() });
        let rate53 = TruthAlso {
            kind: "rate_anomaly".into(),
            key: server.clone(),
        };
        let client_also = |c: Ipv4Addr| TruthAlso {
            kind: "client_flood".into(),
            key: json!({ "client": c.to_string() }),
        };
        for p in &self.attacks {
            let secs = |us: i64| (us - self.start_us) as f64 / MICROS as f64;
            let when = format!("{}-{} s", secs(p.start_us), secs(p.end_us));
            let mut push = |key: serde_json::Value, also: Vec<TruthAlso>| {
                attacks.push(TruthAttack {
                    kind: p.attack.kind().into(),
                    key,
                    start: rfc3339(p.start_us),
                    end: rfc3339(p.end_us),
                    start_us: p.start_us,
                    end_us: p.end_us,
                    also,
                })
            };
            let note = match p.attack {
                Attack::ClientFlood => {
                    push(
                        json!({ "client": CLIENT_FLOODER.to_string() }),
                        vec![rate53.clone()],
                    );
                    format!(
                        "client_flood {when}: {CLIENT_FLOODER} -> {RESOLVER} at {:.0} q/s, popular \
                         names, answered",
                        p.rate
                    )
                }
                Attack::SubnetFlood => {
                    push(
                        json!({ "subnet": format!("{FLOOD_SUBNET}/24") }),
                        vec![rate53.clone()],
                    );
                    format!(
                        "subnet_flood {when}: {SUBNET_FLOOD_CLIENTS} clients in {FLOOD_SUBNET}/24 \
                         at {:.1} q/s each ({:.0} q/s in all) -> {RESOLVER}, answered",
                        p.rate / SUBNET_FLOOD_CLIENTS as f64,
                        p.rate
                    )
                }
                Attack::NxdomainFlood => {
                    push(
                        json!({ "client": NXDOMAIN_CLIENT.to_string() }),
                        vec![
                            client_also(NXDOMAIN_CLIENT),
                            rate53.clone(),
                            // random registered domains look generated
                            TruthAlso {
                                kind: "dga".into(),
                                key: json!({ "client": NXDOMAIN_CLIENT.to_string() }),
                            },
                        ],
                    );
                    format!(
                        "nxdomain_flood {when}: {NXDOMAIN_CLIENT} at {:.0} q/s for random names \
                         under {NX_DOMAINS} random registered domains, all NXDOMAIN",
                        p.rate
                    )
                }
                Attack::ServfailFlood => {
                    push(
                        json!({ "client": SERVFAIL_CLIENT.to_string() }),
                        vec![client_also(SERVFAIL_CLIENT), rate53.clone()],
                    );
                    format!(
                        "servfail_flood {when}: {SERVFAIL_CLIENT} at {:.0} q/s for names in \
                         broken zones, all SERVFAIL",
                        p.rate
                    )
                }
                Attack::RandomSubdomain => {
                    // 500 bots are "far more sources than normal" for the
                    // resolver once spoofed_flood has learned its baseline.
                    let spoofed = TruthAlso {
                        kind: "spoofed_flood".into(),
                        key: server.clone(),
                    };
                    push(
                        json!({ "domain": VICTIM_DOMAIN }),
                        vec![rate53.clone(), spoofed],
                    );
                    format!(
                        "random_subdomain {when}: {:.0} bots in 10.70.0.0/16 at {BOT_QPS} q/s \
                         each ({:.0} q/s) for <16 random chars>.{VICTIM_DOMAIN}, NXDOMAIN",
                        p.rate,
                        p.rate * BOT_QPS
                    )
                }
                Attack::Amplification => {
                    push(
                        json!({ "victim": AMPLIFICATION_VICTIM.to_string() }),
                        vec![],
                    );
                    format!(
                        "amplification {when}: {:.0} ANY responses/s of {AMPLIFICATION_SIZE} bytes \
                         from {RESOLVER} and 198.51.100.10-13 to {AMPLIFICATION_VICTIM} (queries \
                         spoofed, not captured)",
                        p.rate
                    )
                }
                Attack::UnsolicitedResponse => {
                    push(json!({ "victim": UNSOLICITED_VICTIM.to_string() }), vec![]);
                    format!(
                        "unsolicited_response {when}: {:.0} small unmatched responses/s from \
                         {RESOLVER} to {UNSOLICITED_VICTIM} (random ids and ports), which also \
                         sends its normal queries and {VICTIM_OWN_QPS} more lookup/s",
                        p.rate
                    )
                }
                Attack::SpoofedFlood => {
                    push(server.clone(), vec![rate53.clone()]);
                    format!(
                        "spoofed_flood {when}: {:.0} q/s to {RESOLVER} from random public IPv4 \
                         sources (each used once), unanswered",
                        p.rate
                    )
                }
                Attack::Dga => {
                    let h = u32::from(DGA_HOSTS);
                    for i in 0..crate::synth::dga::FAMILIES.len() as u32 {
                        push(
                            json!({ "client": Ipv4Addr::from(h + i).to_string() }),
                            vec![],
                        );
                    }
                    format!(
                        "dga {when}: {} infected hosts from {DGA_HOSTS} on, one per family ({}), \
                         each {:.2} lookups/s of its generated domains (10 % repeats), NXDOMAIN",
                        crate::synth::dga::FAMILIES.len(),
                        crate::synth::dga::FAMILIES.join(", "),
                        p.rate
                    )
                }
                Attack::RateRamp => {
                    push(json!({ "server": SECOND_SERVER.to_string() }), vec![]);
                    format!(
                        "rate_ramp {when}: the benign population adds 0 rising linearly to \
                         {:.0} q/s to {SECOND_SERVER} (normally {:.0} q/s), answered",
                        p.rate, self.second_server_qps
                    )
                }
                Attack::RateAnomaly => {
                    push(json!({ "server": SECOND_SERVER.to_string() }), vec![]);
                    format!(
                        "rate_anomaly {when}: the benign population adds {:.0} q/s to \
                         {SECOND_SERVER} (normally {:.0} q/s), answered",
                        p.rate, self.second_server_qps
                    )
                }
                Attack::Tunneling => {
                    push(
                        json!({ "client": TUNNEL_CLIENT.to_string(), "domain": TUNNEL_DOMAIN }),
                        vec![],
                    );
                    format!(
                        "tunneling {when}: {TUNNEL_CLIENT} at {:.0} q/s, TXT (70 %) and NULL \
                         queries for <50-60 base32 chars>.<seq>.t.{TUNNEL_DOMAIN}, each name \
                         unique, answered with TXT/NULL data",
                        p.rate
                    )
                }
                Attack::BlocklistHit => {
                    for (_, entry) in BLOCKLISTED {
                        push(
                            json!({ "client": BLOCKLIST_CLIENT.to_string(), "domain": entry }),
                            vec![],
                        );
                    }
                    format!(
                        "blocklist_hit {when}: {BLOCKLIST_CLIENT} looks up {} 3 times each \
                         (entries of blocklists/example.txt; replay with --blocklist)",
                        BLOCKLISTED.map(|(n, _)| n).join(" and ")
                    )
                }
            };
            notes.push(note);
        }
        if self
            .attacks
            .iter()
            .any(|p| p.attack.needs_warmup() && p.start_us - self.start_us < 70 * MICROS)
        {
            notes.push(
                "warning: spoofed_flood / rate_anomaly start before 70 s (capture too short); \
                 their detectors may still be learning their baseline"
                    .into(),
            );
        }
        Truth {
            schema: TRUTH_SCHEMA.into(),
            seed: opts.seed,
            duration_s: opts.duration_s,
            scenarios: opts.scenarios.clone(),
            attacks,
            notes,
        }
    }
}

fn telemetry_qps(scale: f64) -> f64 {
    TELEMETRY_QPS * scale
}

fn tcp_rate(scale: f64) -> f64 {
    (TCP_LOOKUPS_PER_S * scale).max(0.05)
}

// -------------------------------------------------------------- world ----

const V4_CLIENTS: u32 = 300;
const V6_CLIENTS: u32 = 8;
/// Share of the benign query weight that goes to the second server.
const SECOND_SERVER_SHARE: f64 = 1.0 / 7.0;
const DOMAINS: usize = 400;
const NX_DOMAINS: usize = 1000;
const SERVFAIL_ZONES: usize = 8;

const WORDS: [&str; 24] = [
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "wayne",
    "stark",
    "tyrell",
    "cyberdyne",
    "wonka",
    "soylent",
    "vandelay",
    "dunder",
    "aperture",
    "oceanic",
    "monarch",
    "gringotts",
    "piedpiper",
    "massive",
    "oscorp",
    "nakatomi",
    "virtucon",
    "zorg",
    "buynlarge",
];
const SUFFIXES: [&str; 14] = [
    "com", "com", "com", "net", "org", "io", "de", "fr", "co.uk", "org.uk", "com.au", "co.jp",
    "com.br", "example",
];
const HOSTS: [&str; 12] = [
    "api", "mail", "cdn", "img", "static", "login", "m", "news", "shop", "app", "auth", "video",
];

struct World {
    clients: Vec<IpAddr>,
    /// Cumulative activity weights of `clients`.
    cum: Vec<f64>,
    /// Clients whose queries go to the second server.
    second: Vec<bool>,
    /// IPv4 clients only (for `rate_anomaly`).
    v4: Vec<IpAddr>,
    /// Benign names by popularity rank.
    names: Vec<String>,
    zipf: Zipf,
    nx_domains: Vec<String>,
    servfail_names: Vec<String>,
}

impl World {
    fn new(rng: &mut Rng, v4_clients: u32) -> World {
        let mut clients = Vec::new();
        let mut v4 = Vec::new();
        for i in 0..v4_clients {
            if i >= V4_CLIENTS {
                // A bigger population: 25 per /24 from 10.2.0.0 on.
                let (net, h) = ((i - V4_CLIENTS) / 25, (i - V4_CLIENTS) % 25);
                let a = IpAddr::V4(Ipv4Addr::new(
                    10,
                    2 + (net / 256) as u8,
                    (net % 256) as u8,
                    10 + h as u8 * 9,
                ));
                clients.push(a);
                v4.push(a);
                continue;
            }
            // 30 /24s with 10 clients each; the special clients replace
            // the first host of subnets 3, 4 and 5.
            let net = i / 10;
            let host = match (net, i % 10) {
                (3..=5, 0) => net as u8,
                (_, h) => 10 + h as u8 * 23 + (net % 7) as u8,
            };
            let a = IpAddr::V4(Ipv4Addr::new(10, 1, net as u8, host));
            clients.push(a);
            v4.push(a);
        }
        for i in 0..V6_CLIENTS {
            clients.push(IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                1,
                0,
                0,
                0,
                0,
                0x1000 + i as u16,
            )));
        }
        let mut cum = Vec::with_capacity(clients.len());
        let mut second = Vec::with_capacity(clients.len());
        let mut acc = 0.0;
        let (mut w2, mut wall) = (0.0, 0.0);
        for (i, c) in clients.iter().enumerate() {
            // Heavy-tailed activity, capped at 8x the least active.
            let w = (1.0 / (rng.unit() * 0.98 + 0.02).sqrt()).min(8.0);
            acc += w;
            cum.push(acc);
            let s = c.is_ipv4() && i % 7 == 3;
            second.push(s);
            if c.is_ipv4() {
                wall += w;
                if s {
                    w2 += w;
                }
            }
        }
        // Rescale the second-server clients so they carry exactly
        // SECOND_SERVER_SHARE of the IPv4 weight (keeps `rate_anomaly`
        // numbers exact for every seed).
        let want = SECOND_SERVER_SHARE * wall;
        let other = wall - w2;
        let f2 = want / w2;
        let f1 = (wall - want) / other;
        let mut acc = 0.0;
        let mut prev = 0.0;
        for i in 0..clients.len() {
            let w = cum[i] - prev;
            prev = cum[i];
            let f = if !clients[i].is_ipv4() {
                1.0
            } else if second[i] {
                f2
            } else {
                f1
            };
            acc += w * f;
            cum[i] = acc;
        }

        let mut domains = Vec::with_capacity(DOMAINS);
        for i in 0..DOMAINS {
            let w = WORDS[i % WORDS.len()];
            let sfx = SUFFIXES[rng.below(SUFFIXES.len() as u64) as usize];
            domains.push(format!("{w}{}.{sfx}", i / WORDS.len()));
        }
        let mut names = Vec::new();
        for d in &domains {
            names.push(format!("www.{d}"));
            names.push(d.clone());
            for _ in 0..rng.below(4) {
                let h = HOSTS[rng.below(HOSTS.len() as u64) as usize];
                let n = format!("{h}.{d}");
                if !names.contains(&n) {
                    names.push(n);
                }
            }
        }
        // Popularity order: shuffled (Fisher-Yates).
        for i in (1..names.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            names.swap(i, j);
        }
        let zipf = Zipf::new(names.len());
        let nx_domains = (0..NX_DOMAINS)
            .map(|_| {
                let sfx = ["com", "net", "org", "info", "co.uk", "example"][rng.below(6) as usize];
                format!("{}.{sfx}", {
                    let n = 6 + rng.below(6) as usize;
                    random_label(rng, n, LOWER)
                })
            })
            .collect();
        let servfail_names = (0..SERVFAIL_ZONES)
            .flat_map(|z| ["www", "api", "mail"].map(|h| format!("{h}.broken-zone{z}.example")))
            .collect();
        World {
            clients,
            cum,
            second,
            v4,
            names,
            zipf,
            nx_domains,
            servfail_names,
        }
    }

    /// A benign client, by activity weight.
    fn pick_client(&self, rng: &mut Rng) -> usize {
        let u = rng.unit() * self.cum.last().copied().unwrap_or(0.0);
        self.cum
            .partition_point(|&c| c <= u)
            .min(self.cum.len() - 1)
    }

    fn server_of(&self, i: usize) -> IpAddr {
        match self.clients[i] {
            IpAddr::V6(_) => IpAddr::V6(RESOLVER_V6),
            IpAddr::V4(_) if self.second[i] => IpAddr::V4(SECOND_SERVER),
            IpAddr::V4(_) => IpAddr::V4(RESOLVER),
        }
    }

    fn popular(&self, rng: &mut Rng) -> &str {
        &self.names[self.zipf.sample(rng)]
    }
}

const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const HEX: &[u8] = b"0123456789abcdef";
const BASE32: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn random_label(rng: &mut Rng, len: usize, alphabet: &[u8]) -> String {
    (0..len)
        .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize] as char)
        .collect()
}

/// Poisson-distributed count with mean `lambda` (Knuth below 30, normal
/// approximation above).
fn poisson(rng: &mut Rng, lambda: f64) -> u64 {
    if lambda <= 0.0 {
        return 0;
    }
    if lambda < 30.0 {
        let l = (-lambda).exp();
        let mut k = 0;
        let mut p = rng.unit();
        while p > l {
            k += 1;
            p *= rng.unit();
        }
        return k;
    }
    // Box-Muller.
    let (u1, u2) = (rng.unit().max(1e-12), rng.unit());
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    (lambda + z * lambda.sqrt()).round().max(0.0) as u64
}

/// Poisson event times at `rate` per second in `[lo, hi)` µs.
fn times(rng: &mut Rng, rate: f64, lo: i64, hi: i64) -> Vec<i64> {
    if hi <= lo {
        return Vec::new();
    }
    let n = poisson(rng, rate * (hi - lo) as f64 / MICROS as f64);
    let span = (hi - lo).max(1) as u64;
    (0..n).map(|_| lo + rng.below(span) as i64).collect()
}

fn fnv(s: &str) -> u64 {
    crate::sketch::fnv1a(s.as_bytes())
}

/// Answers for a name (stable per name): A in 198.18.0.0/15, AAAA in
/// 2001:db8:ff::/48; none for other types.
fn answers_for(qname: &str, qt: u16) -> Vec<IpAddr> {
    let h = fnv(qname);
    let n = 1 + (h >> 60) as usize % 2;
    (0..n)
        .filter_map(|i| {
            let x = h.rotate_left(17 * i as u32);
            match qt {
                qtype::A => Some(IpAddr::V4(Ipv4Addr::new(
                    198,
                    18 + (x & 1) as u8,
                    (x >> 8) as u8,
                    (x >> 16) as u8 | 1,
                ))),
                qtype::AAAA => Some(IpAddr::V6(Ipv6Addr::new(
                    0x2001,
                    0xdb8,
                    0xff,
                    0,
                    0,
                    0,
                    (x >> 16) as u16,
                    x as u16 | 1,
                ))),
                _ => None,
            }
        })
        .collect()
}

// ---------------------------------------------------------- generator ----

const QTYPE_HTTPS: u16 = 65;
const QTYPE_NULL: u16 = 10;

enum Msg {
    Query {
        src: SocketAddr,
        dst: SocketAddr,
        id: u16,
        qname: String,
        qtype: u16,
        edns: bool,
    },
    Response {
        src: SocketAddr,
        dst: SocketAddr,
        id: u16,
        qname: String,
        qtype: u16,
        rcode: u8,
        answers: Vec<IpAddr>,
        pad_to: usize,
    },
    /// A UDP datagram with a prebuilt DNS message.
    Udp {
        src: SocketAddr,
        dst: SocketAddr,
        payload: Vec<u8>,
    },
    Tcp {
        src: SocketAddr,
        dst: SocketAddr,
        seq: u32,
        ack: u32,
        flags: u8,
        payload: Vec<u8>,
    },
}

struct Gen<W: Write> {
    rng: Rng,
    w: PcapWriter<W>,
    fb: FrameBuilder,
    /// Frames not yet written, by (timestamp, insertion order).
    queue: BTreeMap<(i64, u64), Msg>,
    seq: u64,
    frames: u64,
}

impl<W: Write> Gen<W> {
    fn push(&mut self, ts: i64, m: Msg) {
        self.seq += 1;
        self.queue.insert((ts, self.seq), m);
    }

    /// Write every queued frame stamped before `ts`.
    fn flush_before(&mut self, ts: i64) -> io::Result<()> {
        while let Some(e) = self.queue.first_entry() {
            if e.key().0 >= ts {
                break;
            }
            let t = e.key().0;
            let m = e.remove();
            let f = match &m {
                Msg::Query {
                    src,
                    dst,
                    id,
                    qname,
                    qtype,
                    edns,
                } => self.fb.query(*src, *dst, *id, qname, *qtype, *edns),
                Msg::Response {
                    src,
                    dst,
                    id,
                    qname,
                    qtype,
                    rcode,
                    answers,
                    pad_to,
                } => self
                    .fb
                    .response(*src, *dst, *id, qname, *qtype, *rcode, answers, *pad_to),
                Msg::Udp { src, dst, payload } => self.fb.udp_frame(*src, *dst, payload),
                Msg::Tcp {
                    src,
                    dst,
                    seq,
                    ack,
                    flags,
                    payload,
                } => self.fb.tcp_segment(*src, *dst, *seq, *ack, *flags, payload),
            };
            self.w.write_frame(t, f)?;
            self.frames += 1;
        }
        Ok(())
    }

    fn port(&mut self) -> u16 {
        1024 + self.rng.below(64_000) as u16
    }

    fn id(&mut self) -> u16 {
        self.rng.next_u64() as u16
    }

    /// Query from `client` at `ts` and, unless `rc` is `None`, its
    /// response `delay` µs later (answers for NOERROR only).
    #[allow(clippy::too_many_arguments)]
    fn lookup(
        &mut self,
        ts: i64,
        client: IpAddr,
        server: IpAddr,
        qname: String,
        qt: u16,
        edns: bool,
        rc: Option<u8>,
        delay: i64,
    ) {
        let src = SocketAddr::new(client, self.port());
        let dst = SocketAddr::new(server, 53);
        let id = self.id();
        if let Some(rc) = rc {
            let answers = if rc == rcode::NOERROR {
                answers_for(&qname, qt)
            } else {
                Vec::new()
            };
            self.push(
                ts + delay,
                Msg::Response {
                    src: dst,
                    dst: src,
                    id,
                    qname: qname.clone(),
                    qtype: qt,
                    rcode: rc,
                    answers,
                    pad_to: 0,
                },
            );
        }
        self.push(
            ts,
            Msg::Query {
                src,
                dst,
                id,
                qname,
                qtype: qt,
                edns,
            },
        );
    }

    /// Resolver latency: cache hits (70 %) 1-3 ms, misses 8-30 ms.
    fn delay(&mut self) -> i64 {
        if self.rng.unit() < 0.7 {
            1000 + self.rng.below(2000) as i64
        } else {
            8000 + self.rng.below(22_000) as i64
        }
    }

    /// A lookup over TCP; with `handshake`, SYN / SYN-ACK / ACK before and
    /// FIN / FIN / ACK after, else only the two data segments (the capture
    /// joins the connection mid-flow).
    fn tcp_lookup(
        &mut self,
        ts: i64,
        client: IpAddr,
        server: IpAddr,
        qname: &str,
        handshake: bool,
    ) {
        let c = SocketAddr::new(client, self.port());
        let s = SocketAddr::new(server, 53);
        let id = self.id();
        let qt = if self.rng.unit() < 0.5 {
            qtype::A
        } else {
            qtype::AAAA
        };
        let framed = |m: &[u8]| {
            let mut v = (m.len() as u16).to_be_bytes().to_vec();
            v.extend_from_slice(m);
            v
        };
        let q = framed(self.fb.query_message(id, qname, qt, true));
        let answers = answers_for(qname, qt);
        let r = framed(
            self.fb
                .response_message(id, qname, qt, rcode::NOERROR, &answers, 0),
        );
        let (ci, si) = (self.rng.next_u64() as u32, self.rng.next_u64() as u32);
        let (cd, sd) = (ci.wrapping_add(1), si.wrapping_add(1));
        let (ql, rl) = (q.len() as u32, r.len() as u32);
        let rtt = 200 + self.rng.below(800) as i64;
        let mut t = ts;
        let seg = |g: &mut Self,
                   t: i64,
                   from_client: bool,
                   seq: u32,
                   ack: u32,
                   flags: u8,
                   payload: Vec<u8>| {
            let (src, dst) = if from_client { (c, s) } else { (s, c) };
            g.push(
                t,
                Msg::Tcp {
                    src,
                    dst,
                    seq,
                    ack,
                    flags,
                    payload,
                },
            );
        };
        use tcp_flags::{ACK, FIN, PSH, SYN};
        if handshake {
            seg(self, t, true, ci, 0, SYN, Vec::new());
            t += rtt;
            seg(self, t, false, si, cd, SYN | ACK, Vec::new());
            t += rtt / 4;
            seg(self, t, true, cd, sd, ACK, Vec::new());
        }
        t += 50;
        seg(self, t, true, cd, sd, PSH | ACK, q);
        t += rtt + self.delay();
        seg(self, t, false, sd, cd.wrapping_add(ql), PSH | ACK, r);
        if handshake {
            let (cf, sf) = (cd.wrapping_add(ql), sd.wrapping_add(rl));
            t += rtt / 4;
            seg(self, t, true, cf, sf, FIN | ACK, Vec::new());
            t += rtt;
            seg(
                self,
                t,
                false,
                sf,
                cf.wrapping_add(1),
                FIN | ACK,
                Vec::new(),
            );
            t += rtt / 4;
            seg(
                self,
                t,
                true,
                cf.wrapping_add(1),
                sf.wrapping_add(1),
                ACK,
                Vec::new(),
            );
        }
    }
}

/// A response message with one record of type `rtype` carrying `rdata`
/// (built on the question `FrameBuilder` encodes).
fn record_response(
    fb: &mut FrameBuilder,
    id: u16,
    qname: &str,
    qt: u16,
    rtype: u16,
    rdata: &[u8],
) -> Vec<u8> {
    let mut m = fb.query_message(id, qname, qt, false).to_vec();
    m[2..4].copy_from_slice(&0x8180u16.to_be_bytes());
    m[6..8].copy_from_slice(&1u16.to_be_bytes());
    m.extend_from_slice(&[0xc0, 0x0c]);
    m.extend_from_slice(&rtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    m.extend_from_slice(&0u32.to_be_bytes()); // TTL 0, as tunnels answer
    m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    m.extend_from_slice(rdata);
    m
}

fn background<W: Write>(g: &mut Gen<W>, world: &World, plan: &Plan, lo: i64, hi: i64) {
    let scale = plan.scale;
    // Regular clients.
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
    // The forwarder: steady, then twice as busy from FORWARDER_SURGE_S on
    // (a heavy legitimate client whose own baseline says this is normal).
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
    // Reputation lookups (not scaled: one machine each): a mail server
    // checks connecting addresses against a DNSBL (mostly NXDOMAIN, "not
    // listed"), an antivirus endpoint looks file hashes up (40 hex digits
    // in one label, answered): data in names by design, hard negatives for
    // tunneling and for the lexical detectors.
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
    // Telemetry beacons.
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
    // DNS over TCP.
    for ts in times(&mut g.rng, tcp_rate(scale), lo, hi) {
        let client = world.v4[g.rng.below(world.v4.len() as u64) as usize];
        let name = world.popular(&mut g.rng).to_string();
        let hs = g.rng.unit() < 0.5;
        g.tcp_lookup(ts, client, IpAddr::V4(RESOLVER), &name, hs);
    }
}

/// A mistyped name: one letter of the registered-domain label doubled,
/// dropped or replaced.
fn typo(rng: &mut Rng, name: &str) -> String {
    let labels: Vec<&str> = name.split('.').collect();
    // the longest label is the brand in our names
    let (li, l) = labels
        .iter()
        .enumerate()
        .max_by_key(|(i, l)| (l.len(), usize::MAX - i))
        .map(|(i, l)| (i, l.to_string()))
        .unwrap_or((0, name.to_string()));
    let mut b: Vec<u8> = l.into_bytes();
    let p = rng.below(b.len() as u64) as usize;
    match rng.below(3) {
        0 => {
            let c = b[p];
            b.insert(p, c);
        }
        1 if b.len() > 3 => {
            b.remove(p);
        }
        _ => b[p] = LOWER[rng.below(26) as usize],
    }
    let l = String::from_utf8(b).unwrap_or_default();
    let mut out: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
    out[li] = l;
    out.join(".")
}

struct AttackState {
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
    fn new(rng: &mut Rng, plan: &Plan) -> AttackState {
        let subnet_clients = (0..SUBNET_FLOOD_CLIENTS)
            .map(|i| {
                let o = FLOOD_SUBNET.octets();
                IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], 10 + i as u8))
            })
            .collect();
        let nbots = plan
            .attacks
            .iter()
            .find(|p| p.attack == Attack::RandomSubdomain)
            .map_or(0, |p| p.rate as usize);
        let mut seen = HashSet::new();
        let mut bots = Vec::with_capacity(nbots);
        // About 64 bots per /24, in at least 8 of them (a busy-looking
        // subnet each), at most the whole /16.
        let nets = (nbots as u64 / 64 + 1).clamp(8, 256);
        while bots.len() < nbots {
            let a = Ipv4Addr::new(10, 70, rng.below(nets) as u8, 1 + rng.below(254) as u8);
            if seen.insert(a) {
                bots.push(IpAddr::V4(a));
            }
        }
        let mut blocklist_at = Vec::new();
        if let Some(p) = plan
            .attacks
            .iter()
            .find(|p| p.attack == Attack::BlocklistHit)
        {
            let len = p.end_us - p.start_us;
            for f in [0.02, 0.5, 0.95] {
                blocklist_at.push(p.start_us + (len as f64 * f) as i64 + rng.below(200_000) as i64);
            }
        }
        let dga = match plan.attacks.iter().find(|p| p.attack == Attack::Dga) {
            Some(p) => {
                let n =
                    (p.rate * (p.end_us - p.start_us) as f64 / MICROS as f64 * 2.0) as usize + 50;
                let seed = rng.next_u64();
                crate::synth::dga::FAMILIES
                    .iter()
                    .map(|f| (crate::synth::dga::generate(f, seed, n), 0))
                    .collect()
            }
            None => Vec::new(),
        };
        AttackState {
            subnet_clients,
            bots,
            dga,
            spoofed_seen: HashSet::new(),
            tunnel_seq: 0,
            blocklist_at,
        }
    }
}

/// A public-looking IPv4 address outside private, reserved, documentation
/// and multicast space.
fn public_v4(rng: &mut Rng) -> Ipv4Addr {
    loop {
        let a = Ipv4Addr::from(rng.next_u64() as u32);
        let o = a.octets();
        let reserved = o[0] == 0
            || o[0] == 10
            || o[0] == 127
            || o[0] >= 224
            || (o[0] == 100 && (64..128).contains(&o[1]))
            || (o[0] == 169 && o[1] == 254)
            || (o[0] == 172 && (16..32).contains(&o[1]))
            || (o[0] == 192 && o[1] == 168)
            || (o[0] == 192 && o[1] == 0)
            || (o[0] == 198 && (18..20).contains(&o[1]))
            || (o[0] == 198 && o[1] == 51 && o[2] == 100)
            || (o[0] == 203 && o[1] == 0 && o[2] == 113);
        if !reserved {
            return a;
        }
    }
}

fn attack<W: Write>(
    g: &mut Gen<W>,
    world: &World,
    st: &mut AttackState,
    p: &Planned,
    lo: i64,
    hi: i64,
) {
    let resolver = IpAddr::V4(RESOLVER);
    match p.attack {
        Attack::ClientFlood => {
            for ts in times(&mut g.rng, p.rate, lo, hi) {
                let name = world.popular(&mut g.rng).to_string();
                g.lookup(
                    ts,
                    IpAddr::V4(CLIENT_FLOODER),
                    resolver,
                    name,
                    qtype::A,
                    false,
                    Some(rcode::NOERROR),
                    1000,
                );
            }
        }
        Attack::SubnetFlood => {
            for ts in times(&mut g.rng, p.rate, lo, hi) {
                let c = st.subnet_clients[g.rng.below(st.subnet_clients.len() as u64) as usize];
                let name = world.popular(&mut g.rng).to_string();
                g.lookup(
                    ts,
                    c,
                    resolver,
                    name,
                    qtype::A,
                    false,
                    Some(rcode::NOERROR),
                    1000,
                );
            }
        }
        Attack::NxdomainFlood => {
            for ts in times(&mut g.rng, p.rate, lo, hi) {
                let d = &world.nx_domains[g.rng.below(world.nx_domains.len() as u64) as usize];
                let len = 8 + g.rng.below(7) as usize;
                let name = format!("{}.{d}", random_label(&mut g.rng, len, ALNUM));
                let delay = g.delay();
                g.lookup(
                    ts,
                    IpAddr::V4(NXDOMAIN_CLIENT),
                    resolver,
                    name,
                    qtype::A,
                    true,
                    Some(rcode::NXDOMAIN),
                    delay,
                );
            }
        }
        Attack::ServfailFlood => {
            for ts in times(&mut g.rng, p.rate, lo, hi) {
                let n =
                    &world.servfail_names[g.rng.below(world.servfail_names.len() as u64) as usize];
                let delay = 20_000 + g.rng.below(180_000) as i64;
                g.lookup(
                    ts,
                    IpAddr::V4(SERVFAIL_CLIENT),
                    resolver,
                    n.clone(),
                    qtype::A,
                    true,
                    Some(rcode::SERVFAIL),
                    delay,
                );
            }
        }
        Attack::RandomSubdomain => {
            let rate = st.bots.len() as f64 * BOT_QPS;
            for ts in times(&mut g.rng, rate, lo, hi) {
                let bot = st.bots[g.rng.below(st.bots.len() as u64) as usize];
                let name = format!("{}.{VICTIM_DOMAIN}", random_label(&mut g.rng, 16, ALNUM));
                let delay = 5000 + g.rng.below(35_000) as i64;
                g.lookup(
                    ts,
                    bot,
                    resolver,
                    name,
                    qtype::A,
                    true,
                    Some(rcode::NXDOMAIN),
                    delay,
                );
            }
        }
        Attack::Amplification => {
            const NAMES: [&str; 3] = ["big-records.example", "isc.example", "dnssec-lab.example"];
            for ts in times(&mut g.rng, p.rate, lo, hi) {
                let k = g.rng.below(8);
                let src = if k < 4 {
                    resolver
                } else {
                    IpAddr::V4(Ipv4Addr::new(198, 51, 100, 6 + k as u8))
                };
                let name = NAMES[g.rng.below(3) as usize].to_string();
                let answers: Vec<IpAddr> = (0..8u8)
                    .map(|i| IpAddr::V4(Ipv4Addr::new(198, 18, 200, 1 + i)))
                    .collect();
                let id = g.id();
                let port = g.port();
                g.push(
                    ts,
                    Msg::Response {
                        src: SocketAddr::new(src, 53),
                        dst: SocketAddr::new(IpAddr::V4(AMPLIFICATION_VICTIM), port),
                        id,
                        qname: name,
                        qtype: qtype::ANY,
                        rcode: rcode::NOERROR,
                        answers,
                        pad_to: AMPLIFICATION_SIZE,
                    },
                );
            }
        }
        Attack::UnsolicitedResponse => {
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
        Attack::SpoofedFlood => {
            for ts in times(&mut g.rng, p.rate, lo, hi) {
                let src = loop {
                    let a = public_v4(&mut g.rng);
                    if st.spoofed_seen.insert(u32::from(a)) {
                        break a;
                    }
                };
                let name = world.popular(&mut g.rng).to_string();
                g.lookup(
                    ts,
                    IpAddr::V4(src),
                    resolver,
                    name,
                    qtype::A,
                    false,
                    None,
                    0,
                );
            }
        }
        Attack::RateAnomaly | Attack::RateRamp => {
            let ramp = p.attack == Attack::RateRamp;
            let len = (p.end_us - p.start_us).max(1) as f64;
            for ts in times(&mut g.rng, p.rate, lo, hi) {
                // A ramp keeps each query with probability (t - start) / len.
                if ramp && g.rng.unit() * len >= (ts - p.start_us) as f64 {
                    continue;
                }
                let c = world.v4[g.rng.below(world.v4.len() as u64) as usize];
                let name = world.popular(&mut g.rng).to_string();
                let d = g.delay();
                g.lookup(
                    ts,
                    c,
                    IpAddr::V4(SECOND_SERVER),
                    name,
                    qtype::A,
                    true,
                    Some(rcode::NOERROR),
                    d,
                );
            }
        }
        Attack::Tunneling => {
            for ts in times(&mut g.rng, p.rate, lo, hi) {
                st.tunnel_seq += 1;
                let len = 50 + g.rng.below(11) as usize;
                let data = random_label(&mut g.rng, len, BASE32);
                let name = format!("{data}.{:04x}.t.{TUNNEL_DOMAIN}", st.tunnel_seq & 0xffff);
                let null = g.rng.unit() < 0.3;
                let qt = if null { QTYPE_NULL } else { qtype::TXT };
                let src = SocketAddr::new(IpAddr::V4(TUNNEL_CLIENT), g.port());
                let dst = SocketAddr::new(resolver, 53);
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
        Attack::Dga => {
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
                        resolver,
                        name,
                        qtype::A,
                        false,
                        Some(rcode::NXDOMAIN),
                        d,
                    );
                }
            }
        }
        Attack::BlocklistHit => {
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
                        resolver,
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut dec = crate::packet::PacketDecoder::new(Default::default());
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
                let m = crate::dns::decode(p.data).expect("decodes");
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
