//! `Distinct`: a mergeable distinct-count sketch (HyperLogLog++ from the
//! `hyperloglogplus` crate) over `u64` item hashes, with one fixed hasher
//! (never `RandomState`) so sketches from any worker or process merge
//! correctly. Precision 12: 4096 registers (~3 KiB dense), relative
//! standard error 1.04 / sqrt(4096) ≈ 1.6 %; small sets stay in the sparse
//! form (a few bytes per item) and are near exact.

use std::hash::BuildHasher;

use hyperloglogplus::{HyperLogLog, HyperLogLogPlus};
use serde::{Deserialize, Serialize};

use super::StableHasher;

/// HLL precision (registers = 2^PRECISION).
pub const PRECISION: u8 = 12;

/// The fixed hasher builder every sketch uses.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct FixedState;

impl BuildHasher for FixedState {
    type Hasher = StableHasher;
    fn build_hasher(&self) -> StableHasher {
        StableHasher::default()
    }
}

/// Distinct items held exactly before the sketch is built: most keys of a
/// flood (a spoofed source's /24, a bot's names in one pane) see one or two,
/// and need no sketch (allocation, hashing) for that.
pub const SMALL: usize = 4;

type Hll = HyperLogLogPlus<u64, FixedState>;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Distinct(Repr);

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Repr {
    /// Up to `SMALL` distinct item hashes, in insertion order.
    Small {
        len: u8,
        items: [u64; SMALL],
    },
    Sketch(Box<Hll>),
}

impl Default for Distinct {
    fn default() -> Self {
        Self::new()
    }
}

fn new_hll() -> Hll {
    // PRECISION is within the crate's bounds [4, 18]: cannot fail.
    HyperLogLogPlus::new(PRECISION, FixedState).expect("valid HLL precision")
}

impl Distinct {
    pub fn new() -> Self {
        Distinct(Repr::Small {
            len: 0,
            items: [0; SMALL],
        })
    }

    /// Add an item by its (already computed) 64-bit hash.
    pub fn insert(&mut self, item_hash: u64) {
        match &mut self.0 {
            Repr::Small { len, items } => {
                let n = *len as usize;
                if items[..n].contains(&item_hash) {
                    return;
                }
                if n < SMALL {
                    items[n] = item_hash;
                    *len += 1;
                    return;
                }
                // The same inserts, in the same order, as if the sketch
                // had been there from the start.
                let mut h = new_hll();
                for i in items.iter() {
                    h.insert(i);
                }
                h.insert(&item_hash);
                self.0 = Repr::Sketch(Box::new(h));
            }
            Repr::Sketch(h) => h.insert(&item_hash),
        }
    }

    /// The items of a small set (in insertion order), `None` once a sketch.
    pub fn small_items(&self) -> Option<&[u64]> {
        match &self.0 {
            Repr::Small { len, items } => Some(&items[..*len as usize]),
            Repr::Sketch(_) => None,
        }
    }

    /// A small set of these items (at most `SMALL`; the rest are inserted
    /// as usual), as `small_items` gave them.
    pub fn from_small(hashes: &[u64]) -> Distinct {
        let mut d = Distinct::new();
        for h in hashes {
            d.insert(*h);
        }
        d
    }

    /// Merge another sketch (same precision and hasher by construction).
    pub fn merge(&mut self, other: &Distinct) {
        match &other.0 {
            Repr::Small { len, items } => {
                for i in &items[..*len as usize] {
                    self.insert(*i);
                }
            }
            Repr::Sketch(o) => match &mut self.0 {
                Repr::Sketch(h) => {
                    // Same precision by construction: cannot fail.
                    let _ = h.merge(o);
                }
                Repr::Small { len, items } => {
                    let mut h = o.clone();
                    for i in &items[..*len as usize] {
                        h.insert(i);
                    }
                    self.0 = Repr::Sketch(h);
                }
            },
        }
    }

    /// Estimated number of distinct items (a small set is estimated by the
    /// sketch it would be, so the number never depends on the form).
    pub fn count(&mut self) -> f64 {
        match &mut self.0 {
            Repr::Small { len, items } => {
                let mut h = new_hll();
                for i in &items[..*len as usize] {
                    h.insert(i);
                }
                h.count()
            }
            Repr::Sketch(h) => h.count(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_to_exact_and_mergeable() {
        let mut a = Distinct::new();
        let mut b = Distinct::new();
        for i in 0..50_000u64 {
            a.insert(i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            if i % 2 == 0 {
                b.insert(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)); // overlaps a
            }
            b.insert((i + 1_000_000).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        }
        let ca = a.count();
        assert!((ca - 50_000.0).abs() / 50_000.0 < 0.05, "{ca}");
        a.merge(&b);
        let union = a.count();
        assert!((union - 100_000.0).abs() / 100_000.0 < 0.05, "{union}");
        let mut small = Distinct::new();
        for i in 0..100u64 {
            small.insert(i * 7919);
            small.insert(i * 7919);
        }
        assert!((small.count() - 100.0).abs() <= 2.0, "{}", small.count());
    }

    /// The small form counts, merges and grows exactly as the sketch would.
    #[test]
    fn small_sets_count_like_the_sketch() {
        let h = |i: u64| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x55;
        for n in 0..12u64 {
            let mut d = Distinct::new();
            let mut raw = new_hll();
            for i in 0..n {
                d.insert(h(i));
                d.insert(h(i));
                raw.insert(&h(i));
            }
            assert_eq!(d.count(), raw.count(), "{n} items");
            // Small into small, small into sketch, sketch into small.
            let mut big = Distinct::new();
            for i in 100..120 {
                big.insert(h(i));
                raw.insert(&h(i));
            }
            let mut a = d.clone();
            a.merge(&big);
            let mut b = big.clone();
            b.merge(&d);
            assert_eq!(a.count(), raw.count());
            assert_eq!(b.count(), raw.count());
        }
    }
}
