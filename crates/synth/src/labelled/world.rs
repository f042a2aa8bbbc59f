//! The benign world of a labelled capture: the client population with its
//! activity weights and servers, the popular names, and the random draws
//! every part of the traffic uses (labels, Poisson counts and times,
//! stable answers, typos, public addresses).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{RESOLVER, RESOLVER_V6, SECOND_SERVER};
use crate::Rng;
use crate::qtype;
use crate::scenario::Zipf;
use dnsmonitor_core::time::MICROS;

pub(super) const V4_CLIENTS: u32 = 300;
const V6_CLIENTS: u32 = 8;
/// Share of the benign query weight that goes to the second server.
pub(super) const SECOND_SERVER_SHARE: f64 = 1.0 / 7.0;
const DOMAINS: usize = 400;
pub(super) const NX_DOMAINS: usize = 1000;
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

/// The benign population and the names it uses, drawn once per capture.
pub(super) struct World {
    pub clients: Vec<IpAddr>,
    /// Cumulative activity weights of `clients`.
    pub cum: Vec<f64>,
    /// Clients whose queries go to the second server.
    pub second: Vec<bool>,
    /// IPv4 clients only (for `rate_anomaly`).
    pub v4: Vec<IpAddr>,
    /// Benign names by popularity rank.
    pub names: Vec<String>,
    pub zipf: Zipf,
    pub nx_domains: Vec<String>,
    pub servfail_names: Vec<String>,
}

impl World {
    pub fn new(rng: &mut Rng, v4_clients: u32) -> World {
        let (clients, v4) = addresses(v4_clients);
        let (cum, second) = weights(rng, &clients);
        let names = names(rng);
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
    pub fn pick_client(&self, rng: &mut Rng) -> usize {
        let u = rng.unit() * self.cum.last().copied().unwrap_or(0.0);
        self.cum
            .partition_point(|&c| c <= u)
            .min(self.cum.len() - 1)
    }

    pub fn server_of(&self, i: usize) -> IpAddr {
        match self.clients[i] {
            IpAddr::V6(_) => IpAddr::V6(RESOLVER_V6),
            IpAddr::V4(_) if self.second[i] => IpAddr::V4(SECOND_SERVER),
            IpAddr::V4(_) => IpAddr::V4(RESOLVER),
        }
    }

    pub fn popular(&self, rng: &mut Rng) -> &str {
        &self.names[self.zipf.sample(rng)]
    }
}

/// Every benign client (IPv4 then IPv6) and the IPv4 ones alone.
fn addresses(v4_clients: u32) -> (Vec<IpAddr>, Vec<IpAddr>) {
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
    (clients, v4)
}

/// Cumulative activity weights of `clients` and which of them use the
/// second server.
fn weights(rng: &mut Rng, clients: &[IpAddr]) -> (Vec<f64>, Vec<bool>) {
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
    (cum, second)
}

/// Benign names by popularity rank: hosts under [`DOMAINS`] registered
/// domains, shuffled.
fn names(rng: &mut Rng) -> Vec<String> {
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
    names
}

pub(super) const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
pub(super) const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
pub(super) const HEX: &[u8] = b"0123456789abcdef";
pub(super) const BASE32: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
pub(super) const BASE64: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub(super) fn random_label(rng: &mut Rng, len: usize, alphabet: &[u8]) -> String {
    (0..len)
        .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize] as char)
        .collect()
}

/// Poisson-distributed count with mean `lambda` (Knuth below 30, normal
/// approximation above).
pub(super) fn poisson(rng: &mut Rng, lambda: f64) -> u64 {
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
pub(super) fn times(rng: &mut Rng, rate: f64, lo: i64, hi: i64) -> Vec<i64> {
    if hi <= lo {
        return Vec::new();
    }
    let n = poisson(rng, rate * (hi - lo) as f64 / MICROS as f64);
    let span = (hi - lo).max(1) as u64;
    (0..n).map(|_| lo + rng.below(span) as i64).collect()
}

fn fnv(s: &str) -> u64 {
    dnsmonitor_core::sketch::fnv1a(s.as_bytes())
}

/// Answers for a name (stable per name): A in 198.18.0.0/15, AAAA in
/// 2001:db8:ff::/48; none for other types.
pub(super) fn answers_for(qname: &str, qt: u16) -> Vec<IpAddr> {
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

/// A mistyped name: one letter of the registered-domain label doubled,
/// dropped or replaced.
pub(super) fn typo(rng: &mut Rng, name: &str) -> String {
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

/// A public-looking IPv4 address outside private, reserved, documentation
/// and multicast space.
pub(super) fn public_v4(rng: &mut Rng) -> Ipv4Addr {
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
