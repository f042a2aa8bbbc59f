//! Blocklist load time for one million synthetic entries (plain and hosts
//! format) and lookup cost for hits and misses against that set.
//!
//! `cargo bench --bench blocklist`

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use dnsmonitor::blocklist::BlocklistSet;
use dnsmonitor::dns::QName;

const ENTRIES: usize = 1_000_000;
const TLDS: &[&str] = &[
    "com", "net", "org", "ru", "xyz", "top", "info", "cn", "de", "io",
];

/// The generator's deterministic RNG (SplitMix64), with a label maker.
struct Rng(dnsmonitor::synth::Rng);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(dnsmonitor::synth::Rng::new(seed))
    }

    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn label(&mut self, out: &mut String, min: usize, max: usize) {
        let len = min + (self.next() as usize) % (max - min + 1);
        let mut bits = self.next();
        for i in 0..len {
            if i % 12 == 11 {
                bits = self.next();
            }
            out.push((b'a' + (bits % 26) as u8) as char);
            bits /= 26;
        }
    }
}

/// Entry `i`: one to three labels over a TLD, like real lists.
fn entry(rng: &mut Rng, out: &mut String) {
    let depth = 1 + (rng.next() % 3) as usize;
    for _ in 0..depth {
        rng.label(out, 4, 14);
        out.push('.');
    }
    out.push_str(TLDS[(rng.next() % TLDS.len() as u64) as usize]);
}

fn write_list(path: &Path, hosts: bool) -> Vec<String> {
    let mut rng = Rng::new(42);
    let mut text = String::with_capacity(ENTRIES * 40);
    let mut names = Vec::with_capacity(ENTRIES);
    text.push_str("# synthetic list\n");
    let mut name = String::new();
    for _ in 0..ENTRIES {
        name.clear();
        entry(&mut rng, &mut name);
        if hosts {
            text.push_str("0.0.0.0 ");
        }
        let _ = writeln!(text, "{name}");
        names.push(name.clone());
    }
    std::fs::write(path, text).unwrap();
    names
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.txt");
    let hosts = dir.path().join("hosts.txt");
    let names = write_list(&plain, false);
    write_list(&hosts, true);

    let mut g = c.benchmark_group("blocklist_load_1m");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.bench_function("plain", |b| {
        b.iter(|| black_box(BlocklistSet::load(std::slice::from_ref(&plain), &[]).unwrap()))
    });
    g.bench_function("hosts", |b| {
        b.iter(|| black_box(BlocklistSet::load(std::slice::from_ref(&hosts), &[]).unwrap()))
    });
    g.finish();

    let set = BlocklistSet::load(std::slice::from_ref(&plain), &[]).unwrap();
    let distinct = set.len();
    assert!(distinct > ENTRIES * 99 / 100, "{distinct}");

    // Queries: hits are a random label under a listed name; misses are fresh
    // names of the same shape; deep misses look like tunnelling queries.
    let mut rng = Rng::new(7);
    let mut label = String::new();
    let hits: Vec<QName> = (0..4096)
        .map(|_| {
            label.clear();
            rng.label(&mut label, 3, 10);
            let n = &names[(rng.next() % names.len() as u64) as usize];
            QName::from_text(&format!("{label}.{n}")).unwrap()
        })
        .collect();
    let misses: Vec<QName> = (0..4096)
        .map(|_| {
            let mut s = String::from("www.");
            entry(&mut rng, &mut s);
            QName::from_text(&s).unwrap()
        })
        .collect();
    let deep: Vec<QName> = (0..4096)
        .map(|_| {
            let mut s = String::new();
            for _ in 0..6 {
                rng.label(&mut s, 8, 20);
                s.push('.');
            }
            entry(&mut rng, &mut s);
            QName::from_text(&s).unwrap()
        })
        .collect();
    assert!(hits.iter().all(|q| set.lookup(q).is_some()));
    let false_hits = misses.iter().filter(|q| set.lookup(q).is_some()).count();
    assert!(false_hits < 8, "{false_hits}");

    let mut g = c.benchmark_group("blocklist_lookup_1m");
    for (name, qs) in [("hit", &hits), ("miss", &misses), ("deep_miss", &deep)] {
        let mut i = 0usize;
        g.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) & 4095;
                black_box(set.lookup(black_box(&qs[i])))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
