//! Labelled scenarios for tests, benches and demos: benign background from
//! many clients (Zipf-popular names, answered by one resolver) with injected
//! floods and blocklisted lookups, written as a pcap with the truth beside
//! it. Deterministic for a seed (own PRNG; no wall clock).

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::{FrameBuilder, PcapWriter, Rng, qtype, rcode};
use dnsmonitor_core::time::MICROS;

/// One client sending `qps` queries per second in `[start_s, end_s)`.
#[derive(Clone, Debug)]
pub struct Flood {
    pub client: IpAddr,
    pub start_s: f64,
    pub end_s: f64,
    pub qps: u32,
}

/// A single lookup of `qname` by `client` at `at_s`.
#[derive(Clone, Debug)]
pub struct Lookup {
    pub client: IpAddr,
    pub at_s: f64,
    pub qname: String,
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub seed: u64,
    /// Capture start, µs since the epoch.
    pub start_us: i64,
    pub duration_s: u32,
    /// Benign clients 10.1.x.y.
    pub clients: u32,
    /// Total benign queries per second (spread over clients, Poisson-like).
    pub background_qps: f64,
    pub floods: Vec<Flood>,
    pub lookups: Vec<Lookup>,
    /// Write a response for every query (1 ms later).
    pub responses: bool,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            seed: 1,
            start_us: 1_700_000_000 * MICROS,
            duration_s: 60,
            clients: 50,
            background_qps: 50.0,
            floods: vec![],
            lookups: vec![],
            responses: true,
        }
    }
}

/// Resolver address used by scenarios.
pub const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 53));

/// Benign client number `i`.
pub fn client(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 1, (i >> 8) as u8, (i & 0xff) as u8))
}

const NAMES: usize = 500;

fn benign_name(rank: usize) -> String {
    const TLDS: [&str; 4] = ["com", "net", "org", "example"];
    format!("www.site{rank}.{}", TLDS[rank % TLDS.len()])
}

/// Zipf(1) rank in [0, n) by inverse CDF over precomputed weights.
pub(crate) struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    pub(crate) fn new(n: usize) -> Self {
        let mut acc = 0.0;
        let mut cdf = Vec::with_capacity(n);
        for k in 1..=n {
            acc += 1.0 / k as f64;
            cdf.push(acc);
        }
        for c in &mut cdf {
            *c /= acc;
        }
        Zipf { cdf }
    }
    pub(crate) fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

impl Scenario {
    /// Write the capture; returns the number of frames written.
    pub fn write_pcap<W: Write>(&self, out: W) -> io::Result<u64> {
        let mut w = PcapWriter::new(out)?;
        let mut fb = FrameBuilder::new();
        let mut rng = Rng::new(self.seed);
        let zipf = Zipf::new(NAMES);
        let names: Vec<String> = (0..NAMES).map(benign_name).collect();
        let mut frames = 0u64;
        let mut id: u16 = 0;
        // (ts_us, client, qname)
        let mut second: Vec<(i64, IpAddr, String)> = Vec::new();
        for s in 0..self.duration_s {
            second.clear();
            let base = self.start_us + s as i64 * MICROS;
            // Benign: a count around background_qps this second.
            let n = (self.background_qps + (rng.unit() - 0.5) * self.background_qps * 0.2)
                .round()
                .max(0.0) as u64;
            for _ in 0..n {
                let c = client(rng.below(self.clients as u64) as u32);
                let ts = base + rng.below(MICROS as u64) as i64;
                second.push((ts, c, names[zipf.sample(&mut rng)].clone()));
            }
            for f in &self.floods {
                let (a, b) = (f.start_s, f.end_s);
                let lo = (s as f64).max(a);
                let hi = ((s + 1) as f64).min(b);
                if hi <= lo {
                    continue;
                }
                let count = ((hi - lo) * f.qps as f64).round() as u64;
                for k in 0..count {
                    let t = lo + (hi - lo) * (k as f64 + 0.5) / count as f64;
                    let qname = names[zipf.sample(&mut rng)].clone();
                    second.push((self.start_us + (t * MICROS as f64) as i64, f.client, qname));
                }
            }
            for l in &self.lookups {
                if l.at_s >= s as f64 && l.at_s < (s + 1) as f64 {
                    second.push((
                        self.start_us + (l.at_s * MICROS as f64) as i64,
                        l.client,
                        l.qname.clone(),
                    ));
                }
            }
            second.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
            let mut pending: Vec<(i64, IpAddr, u16, u16, String)> = Vec::new();
            for (ts, c, qname) in &second {
                // Flush responses due before this query.
                pending.sort_by_key(|p| p.0);
                while pending.first().is_some_and(|p| p.0 <= *ts) {
                    let (rts, rc, rid, port, name) = pending.remove(0);
                    write_response(&mut w, &mut fb, rts, rc, rid, port, &name)?;
                    frames += 1;
                }
                id = id.wrapping_add(1);
                let port = 1024 + (rng.below(60000) as u16);
                let src = SocketAddr::new(*c, port);
                let dst = SocketAddr::new(SERVER, 53);
                w.write_frame(*ts, fb.query(src, dst, id, qname, qtype::A, true))?;
                frames += 1;
                if self.responses {
                    pending.push((ts + 1000, *c, id, port, qname.clone()));
                }
            }
            pending.sort_by_key(|p| p.0);
            for (rts, rc, rid, port, name) in pending.drain(..) {
                write_response(&mut w, &mut fb, rts, rc, rid, port, &name)?;
                frames += 1;
            }
        }
        w.into_inner()?.flush()?;
        Ok(frames)
    }

    /// Write to a file path.
    pub fn write_file(&self, path: &std::path::Path) -> io::Result<u64> {
        let f = std::fs::File::create(path)?;
        self.write_pcap(io::BufWriter::new(f))
    }
}

fn write_response<W: Write>(
    w: &mut PcapWriter<W>,
    fb: &mut FrameBuilder,
    ts: i64,
    client: IpAddr,
    id: u16,
    port: u16,
    qname: &str,
) -> io::Result<()> {
    let ans = [IpAddr::V4(Ipv4Addr::new(
        198,
        51,
        100,
        (id % 250) as u8 + 1,
    ))];
    let f = fb.response(
        SocketAddr::new(SERVER, 53),
        SocketAddr::new(client, port),
        id,
        qname,
        qtype::A,
        rcode::NOERROR,
        &ans,
        0,
    );
    w.write_frame(ts, f)
}
