//! `ColdTally`: a pane tally packed for keeping, not for work. The reduce
//! side holds one per (detector, key, pane) of every key that has no state
//! yet (see `keyed`): under a spoofed flood that is nearly every key, each
//! with a query or two, so a full `Tally` (over 200 bytes, mostly zeros)
//! would spend memory on nothing. Packed: a bit mask of the non-zero
//! counters and their LEB128 values, then the samples, the note and a small
//! distinct set; a distinct-count sketch stays boxed as it is. Lossless:
//! `unpack(pack(t))` equals `t`.
//!
//! A key whose pane arrives in many parts (an early map-side flush, another
//! worker) is merged in its full form: from its `FULL_FROM_PART`th part on
//! it stays unpacked and later parts merge into the `Tally` in place,
//! instead of an unpack, a merge and a pack per part (a busy key of the
//! pane not yet complete gets a part at every flush). A key of two parts
//! (most of those that have more than one) stays packed, so the full form
//! costs memory only for the busy keys. `settle` packs it again once its
//! pane is complete and it stayed cold.

use std::cell::RefCell;

use crate::detect::{SampleName, Tally};
use crate::sketch::distinct::Distinct;

#[derive(Default)]
pub struct ColdTally {
    form: Form,
    /// Parts merged into it (saturating).
    parts: u8,
    /// The detector's `pane_may_fire` on the (merged) tally.
    pub may_fire: bool,
}

/// The part from which a tally is kept in the full form until its pane is
/// complete.
pub const FULL_FROM_PART: u8 = 3;

enum Form {
    Packed {
        data: Box<[u8]>,
        /// A distinct sketch past the small form (the small form is in `data`).
        distinct: Option<Box<Distinct>>,
    },
    /// Merged from more than one part, kept unpacked until `settle`.
    Full(Box<Tally>),
}

impl Default for Form {
    /// Unpacks to `Tally::default()` (`Reader` reads zeros past the end).
    fn default() -> Self {
        Form::Packed {
            data: Box::default(),
            distinct: None,
        }
    }
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

/// A sample name: its packed bytes (`SampleName::packed`).
fn put_sample(out: &mut Vec<u8>, s: &SampleName) {
    put_varint(out, s.packed().len() as u64);
    out.extend_from_slice(s.packed());
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
    fn u64(&mut self) -> u64 {
        let mut h = [0u8; 8];
        let b = self.bytes(8);
        h[..b.len()].copy_from_slice(b);
        u64::from_le_bytes(h)
    }
    fn sample(&mut self) -> SampleName {
        let n = self.varint() as usize;
        SampleName::from_packed(self.bytes(n))
    }
    fn string(&mut self) -> Box<str> {
        let n = self.varint() as usize;
        let b = self.bytes(n);
        // Packed from a `str`: valid UTF-8 (lossy only as a guard).
        match std::str::from_utf8(b) {
            Ok(s) => s.into(),
            Err(_) => String::from_utf8_lossy(b).into(),
        }
    }
}

impl ColdTally {
    pub fn pack(mut t: Tally, may_fire: bool) -> ColdTally {
        ColdTally::pack_from(&mut t, may_fire)
    }

    /// `pack` of a tally left where it is (only its boxed sketch is taken).
    pub fn pack_from(t: &mut Tally, may_fire: bool) -> ColdTally {
        thread_local! {
            /// Packing scratch: the packed form is copied out in one exact
            /// allocation.
            static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        }
        t.settle();
        SCRATCH.with_borrow_mut(|out| {
            out.clear();
            let c = t.counters();
            let mask = c
                .iter()
                .enumerate()
                .fold(0u16, |m, (i, v)| if *v != 0 { m | 1 << i } else { m });
            out.extend_from_slice(&mask.to_le_bytes());
            for v in c.iter().filter(|v| **v != 0) {
                put_varint(out, *v);
            }
            out.push(t.samples.len() as u8);
            for (h, s) in t.samples.iter() {
                out.extend_from_slice(&h.to_le_bytes());
                put_sample(out, s);
            }
            match &t.note {
                Some(n) => {
                    out.push(1);
                    put_str(out, n);
                }
                None => out.push(0),
            }
            // Distinct: 0 none, 1 boxed sketch, 2 + count + hashes small set.
            let distinct = match &t.distinct {
                None => {
                    out.push(0);
                    None
                }
                Some(d) => match d.small_items() {
                    Some(items) => {
                        out.push(2);
                        out.push(items.len() as u8);
                        for h in items {
                            out.extend_from_slice(&h.to_le_bytes());
                        }
                        None
                    }
                    None => {
                        out.push(1);
                        t.distinct.take().map(Box::new)
                    }
                },
            };
            ColdTally {
                form: Form::Packed {
                    data: Box::from(&out[..]),
                    distinct,
                },
                parts: 1,
                may_fire,
            }
        })
    }

    /// Merge another part of the same pane into this one and hand the
    /// merged tally to `f` (in the full form from the `FULL_FROM_PART`th
    /// part on, packed again before that).
    pub fn merge_owned<R>(&mut self, part: Tally, f: impl FnOnce(&Tally) -> R) -> R {
        self.parts = self.parts.saturating_add(1);
        match &mut self.form {
            Form::Full(t) => {
                t.merge_owned(part);
                f(t)
            }
            Form::Packed { .. } => {
                let (parts, may_fire) = (self.parts, self.may_fire);
                let mut t = std::mem::take(self).unpack();
                t.merge_owned(part);
                let r = f(&t);
                *self = if parts >= FULL_FROM_PART {
                    ColdTally {
                        form: Form::Full(Box::new(t)),
                        parts,
                        may_fire,
                    }
                } else {
                    ColdTally::repack(t, parts, may_fire)
                };
                r
            }
        }
    }

    /// Pack a tally left in the full form by `merge_owned` (its pane is
    /// complete: no more parts will come, it is only kept).
    pub fn settle(&mut self) {
        if let Form::Full(_) = self.form {
            let (parts, may_fire) = (self.parts, self.may_fire);
            *self = ColdTally::repack(std::mem::take(self).unpack(), parts, may_fire);
        }
    }

    /// `pack`, keeping the count of parts merged so far.
    fn repack(t: Tally, parts: u8, may_fire: bool) -> ColdTally {
        ColdTally {
            parts,
            ..ColdTally::pack(t, may_fire)
        }
    }

    pub fn unpack(self) -> Tally {
        match self.form {
            Form::Full(t) => *t,
            Form::Packed { data, distinct } => read(&data, || distinct.map(|d| *d)),
        }
    }

    /// `unpack` of a tally that stays kept (the boxed sketch is copied).
    pub fn to_tally(&self) -> Tally {
        match &self.form {
            Form::Full(t) => (**t).clone(),
            Form::Packed { data, distinct } => read(data, || distinct.as_deref().cloned()),
        }
    }

    /// Only the counters (`Tally::counters`), the rest left empty: what a
    /// window's running sum takes and gives back.
    pub fn counts(&self) -> Tally {
        match &self.form {
            Form::Full(t) => {
                let mut c = Tally::default();
                c.add_counts(t);
                c
            }
            Form::Packed { data, .. } => {
                let mut t = Tally::default();
                read_counters(&mut Reader(data), &mut t);
                t
            }
        }
    }
}

fn read_counters(r: &mut Reader<'_>, t: &mut Tally) {
    let mask = u16::from_le_bytes([r.byte(), r.byte()]);
    for (i, v) in t.counters_mut().into_iter().enumerate() {
        if mask & (1 << i) != 0 {
            *v = r.varint();
        }
    }
}

/// What `pack` wrote, with the boxed sketch (when it wrote one) from
/// `distinct`.
fn read(data: &[u8], distinct: impl FnOnce() -> Option<Distinct>) -> Tally {
    let mut r = Reader(data);
    let mut t = Tally::default();
    read_counters(&mut r, &mut t);
    let n = r.byte();
    for _ in 0..n {
        let h = r.u64();
        // Packed from `Samples::iter`: already sorted.
        t.samples.push_sorted(h, r.sample());
    }
    if r.byte() == 1 {
        t.note = Some(r.string());
    }
    t.distinct = match r.byte() {
        1 => distinct(),
        2 => {
            let n = usize::from(r.byte());
            let mut items = [0u64; crate::sketch::distinct::SMALL];
            for item in items.iter_mut().take(n) {
                *item = r.u64();
            }
            Some(Distinct::from_small(&items[..n.min(items.len())]))
        }
        _ => None,
    };
    t
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
        // A query name is kept in wire form, and packs as such.
        let mut q = crate::dns::QName::new();
        for label in [&b"A.b"[..], b"\x00x", b"example"] {
            q.push_label(label).unwrap();
        }
        q.seal();
        t.offer_qname(&q);
        t.distinct_mut().insert(42);
        let c = ColdTally::pack(t.clone(), true);
        assert!(c.may_fire);
        // Read in place: the whole tally, or its counters alone.
        assert_eq!(format!("{:?}", c.to_tally()), format!("{t:?}"));
        let counts = c.counts();
        assert_eq!(counts.counters(), t.counters());
        assert!(counts.samples.is_empty() && counts.note.is_none() && counts.distinct.is_none());
        let u = c.unpack();
        assert_eq!(format!("{u:?}"), format!("{t:?}"));
        assert_eq!(u.sample_names(), t.sample_names());
        assert!(
            u.sample_names()
                .contains(&"A\\.b.\\000x.example".to_string())
        );
        // A distinct set past the small form travels boxed.
        let mut big = Tally::default();
        for i in 0..100u64 {
            big.distinct_mut()
                .insert(i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        }
        let before = big.distinct_count();
        let packed = ColdTally::pack(big, false);
        assert_eq!(packed.to_tally().distinct_count(), before);
        assert_eq!(packed.unpack().distinct_count(), before);
        let empty = ColdTally::pack(Tally::default(), false).unpack();
        assert_eq!(format!("{empty:?}"), format!("{:?}", Tally::default()));
        // What `std::mem::take` leaves behind unpacks to nothing.
        let left = ColdTally::default().unpack();
        assert_eq!(format!("{left:?}"), format!("{:?}", Tally::default()));
    }

    #[test]
    fn parts_merge_in_full_form_and_settle_packed() {
        let part = |q: u64, name: &str| {
            let mut t = Tally {
                queries: q,
                ..Tally::default()
            };
            t.offer_sample(q, name);
            t.distinct_mut().insert(q);
            t
        };
        // The sketch's pending set is a hash set: compare what it counts.
        let shown = |t: &Tally| {
            let d = t.distinct_count();
            format!("{:?} {:?} {d}", t.counters(), t.samples)
        };
        let mut expected = part(1, "a.example");
        let mut c = ColdTally::pack(part(1, "a.example"), false);
        for q in 2..6u8 {
            expected.merge_owned(part(q.into(), "b.example"));
            let merged = c.merge_owned(part(q.into(), "b.example"), shown);
            assert_eq!(merged, shown(&expected));
            assert_eq!(c.parts, q);
            assert_eq!(matches!(c.form, Form::Full(_)), q >= FULL_FROM_PART);
        }
        // In the full form, read in place as well.
        assert_eq!(c.counts().counters(), expected.counters());
        assert_eq!(shown(&c.to_tally()), shown(&expected));
        c.may_fire = true;
        c.settle();
        assert!(matches!(c.form, Form::Packed { .. }));
        assert!(c.may_fire);
        assert_eq!(shown(&c.to_tally()), shown(&expected));
        assert_eq!(c.counts().counters(), expected.counters());
        assert_eq!(shown(&c.unpack()), shown(&expected));
    }
}
