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

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Distinct(HyperLogLogPlus<u64, FixedState>);

impl Default for Distinct {
    fn default() -> Self {
        Self::new()
    }
}

impl Distinct {
    pub fn new() -> Self {
        // PRECISION is within the crate's bounds [4, 18]: cannot fail.
        Distinct(HyperLogLogPlus::new(PRECISION, FixedState).expect("valid HLL precision"))
    }

    /// Add an item by its (already computed) 64-bit hash.
    pub fn insert(&mut self, item_hash: u64) {
        self.0.insert(&item_hash);
    }

    /// Merge another sketch (same precision and hasher by construction).
    pub fn merge(&mut self, other: &Distinct) {
        // Same precision by construction: cannot fail.
        let _ = self.0.merge(&other.0);
    }

    /// Estimated number of distinct items.
    pub fn count(&mut self) -> f64 {
        self.0.count()
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
}
