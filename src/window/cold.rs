//! `ColdTally`: a pane tally packed for keeping, not for work. The reduce
//! side holds one per (detector, key, pane) of every key that has no state
//! yet (see `keyed`): under a spoofed flood that is nearly every key, each
//! with a query or two, so a full `Tally` (over 200 bytes, mostly zeros)
//! would spend memory on nothing. Packed: a bit mask of the non-zero
//! counters and their LEB128 values, then the samples and the note; the
//! distinct-count sketch stays boxed as it is. Lossless: `unpack(pack(t))`
//! equals `t`.

use crate::detect::{Samples, Tally};
use crate::sketch::distinct::Distinct;

pub struct ColdTally {
    data: Box<[u8]>,
    distinct: Option<Box<Distinct>>,
    /// The detector's `pane_may_fire` on the (merged) tally.
    pub may_fire: bool,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Reads what `put_*` wrote (our own bytes: a short read is a bug, and
/// yields zeros rather than a panic).
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }
    fn varint(&mut self) -> u64 {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte();
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
        }
        v
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
    fn string(&mut self) -> Box<str> {
        let n = self.varint() as usize;
        String::from_utf8_lossy(self.bytes(n)).into()
    }
}

impl ColdTally {
    pub fn pack(t: Tally, may_fire: bool) -> ColdTally {
        let mut out = Vec::with_capacity(40);
        let c = t.counters();
        let mask = c
            .iter()
            .enumerate()
            .fold(0u16, |m, (i, v)| if *v != 0 { m | 1 << i } else { m });
        out.extend_from_slice(&mask.to_le_bytes());
        for v in c.iter().filter(|v| **v != 0) {
            put_varint(&mut out, *v);
        }
        out.push(t.samples.len() as u8);
        for (h, s) in t.samples.iter() {
            out.extend_from_slice(&h.to_le_bytes());
            put_str(&mut out, s);
        }
        match &t.note {
            Some(n) => {
                out.push(1);
                put_str(&mut out, n);
            }
            None => out.push(0),
        }
        ColdTally {
            data: out.into_boxed_slice(),
            distinct: t.distinct,
            may_fire,
        }
    }

    pub fn unpack(self) -> Tally {
        let mut r = Reader(&self.data);
        let mask = u16::from_le_bytes([r.byte(), r.byte()]);
        let mut t = Tally::default();
        for (i, v) in t.counters_mut().into_iter().enumerate() {
            if mask & (1 << i) != 0 {
                *v = r.varint();
            }
        }
        let n = r.byte();
        let mut samples = Samples::default();
        for _ in 0..n {
            let mut h = [0u8; 8];
            h.copy_from_slice(r.bytes(8));
            let s = r.string();
            samples.offer(
                u64::from_le_bytes(h),
                |stored| (*s).cmp(stored),
                || s.clone(),
            );
        }
        t.samples = samples;
        if r.byte() == 1 {
            t.note = Some(r.string());
        }
        t.distinct = self.distinct;
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trips() {
        let mut t = Tally {
            queries: 1,
            bytes: 300,
            response_bytes: u64::MAX,
            entropy_milli: 4321,
            note: Some("list.txt".into()),
            ..Tally::default()
        };
        t.offer_sample(7, "b.example");
        t.offer_sample(3, "a\\.x.example");
        t.offer_sample(u64::MAX, "z.example");
        t.distinct_mut().insert(42);
        let c = ColdTally::pack(t.clone(), true);
        assert!(c.may_fire);
        let u = c.unpack();
        assert_eq!(format!("{u:?}"), format!("{t:?}"));
        let empty = ColdTally::pack(Tally::default(), false).unpack();
        assert_eq!(format!("{empty:?}"), format!("{:?}", Tally::default()));
    }
}
