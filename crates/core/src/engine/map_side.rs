//! `MapTables`: per-pane tallies built where messages are decoded, before
//! they are exchanged by key. Pre-aggregating here sends one record per
//! (detector, key, pane) instead of one per message. Bounded: once it holds
//! `MAX_MAP_ENTRIES` entries the caller flushes it early (nothing is lost,
//! the reduce side merges partial tallies).

use std::cell::RefCell;
use std::hash::BuildHasherDefault;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use serde::{Deserialize, Serialize};

use super::keymap::{det_key_hash, key_hash};
use crate::detect::{Key, KeyRef, Tally, TallySink};
use crate::sketch::StableHasher;
use crate::time::Pane;

/// Entries held before an early flush. Each flush sends a busy key of the
/// pane another part, which the reduce side merges (see `cold`). 65 536
/// took 12 % fewer instructions than 16 384 on the bench capture's
/// hostile 5 s, but twice the last-level cache misses and about 70 MB more
/// peak RSS on the whole capture (this table and the flushed records in
/// flight, about 340 bytes an entry), for no wall-time gain that stood out
/// of this machine's noise: kept at 16 384. Shipping only the oldest
/// quarter of a full table (so that a key's response, tens of milliseconds
/// after its query, finds the entry) was tried too, at 16 384 and at
/// 65 536 entries: on the hostile 5 s most second parts come from benign
/// clients active across a whole pane (about ten tables' worth of keys),
/// so it saved few records, and the whole capture ran no faster.
/// Once a pane's vector went to the reduce side whole and came back
/// emptied (`recycle_batch`), 8 192 ran as fast as 16 384 on the whole
/// capture (25.8 s against 25.9 s, two alternating runs each), 6 % faster
/// on its spoofed-flood 40 s, and held 11 MB less peak RSS with 1 worker
/// (220 to 208 MB) and 253–260 against 263–275 MB with 2; 4 096 was no
/// faster than 16 384 on the flood: kept at 8 192.
pub const MAX_MAP_ENTRIES: usize = 1 << 13;

/// What crosses the exchange between map and reduce side.
// Tallies go by value in batches; boxing them would allocate per record.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Shuffle {
    /// A partial tally of detector `det` for `key` (the timely time is its pane).
    Tally { det: u16, key: Key, tally: Tally },
    /// Sent once by every source to every reduce worker when input ends:
    /// the last pane of the input, the same on every worker.
    End { target: u64, last_pane: Pane },
    /// Sent by the input's reader to every reduce worker on a reload:
    /// pipeline version `version` is in force for windows ending at `pane`
    /// or later (`dataflow::reload`).
    Switch {
        target: u64,
        pane: Pane,
        version: u64,
    },
}

impl Shuffle {
    /// Routing hash: by what the key is about (every detector's tally of
    /// one address or name goes to the same worker, where they sit side by
    /// side: see `keymap::key_hash`), or to the target worker. Stable: the
    /// members of a cluster route alike.
    pub fn route(&self) -> u64 {
        match self {
            Shuffle::Tally { key, .. } => key_hash(
                &BuildHasherDefault::<StableHasher>::default(),
                key.as_key_ref(),
            ),
            Shuffle::End { target, .. } | Shuffle::Switch { target, .. } => *target,
        }
    }
}

/// One pane's tallies: the entries in arrival order in one dense vector,
/// found through a small index of `(hash, position)` looked up by a
/// borrowed key (`KeyRef`), so that an existing tally is found without
/// building a `Key`. Probing touches 16-byte index slots, not the entries;
/// growth moves only the index; shipping walks the vector in order.
#[derive(Default)]
struct Table {
    index: HashTable<(u64, u32)>,
    /// `Shuffle::Tally` records only, in the exchange's own type: with one
    /// reduce worker the vector is handed over whole, not copied record by
    /// record (with several the exchange partitions it one by one).
    entries: Vec<Shuffle>,
}

impl Table {
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[derive(Default)]
pub struct MapTables {
    /// Sorted by pane: the few panes not yet shipped (a linear search from
    /// the newest beats a tree per detector per message).
    panes: Vec<(Pane, Table)>,
    entries: usize,
    /// Emptied tables, reused with their capacity (no regrowth every pane).
    spare: Vec<Table>,
    /// Seeded per process: keys are attacker-chosen.
    hasher: foldhash::fast::RandomState,
}

/// Emptied tables kept for reuse.
const SPARE_TABLES: usize = 1;

/// `TallySink` for one (pane, detector).
pub struct PaneSink<'a> {
    table: &'a mut Table,
    det: u16,
    entries: &'a mut usize,
    hasher: &'a foldhash::fast::RandomState,
}

impl TallySink for PaneSink<'_> {
    fn tally(&mut self, key: KeyRef<'_>) -> &mut Tally {
        let det = self.det;
        let hash = det_key_hash(key_hash(self.hasher, key), det);
        let Table { index, entries } = &mut *self.table;
        let found = index.entry(
            hash,
            |&(h, i)| {
                h == hash
                    && matches!(&entries[i as usize],
                        Shuffle::Tally { det: d, key: k, .. } if *d == det && k.as_key_ref() == key)
            },
            |&(h, _)| h,
        );
        let i = match found {
            Entry::Occupied(o) => o.get().1 as usize,
            Entry::Vacant(v) => {
                let i = entries.len();
                // At most `MAX_MAP_ENTRIES` and a pane's worth: fits in u32.
                v.insert((hash, i as u32));
                let key = key.to_key();
                // Written in place, not built on the stack and copied in
                // (a record is 288 bytes; `push` copied every new one).
                entries.reserve(1);
                entries.spare_capacity_mut()[0].write(Shuffle::Tally {
                    det,
                    key,
                    tally: Tally::default(),
                });
                // SAFETY: the slot at `i` (the length) was reserved and has
                // just been initialised.
                unsafe { entries.set_len(i + 1) };
                *self.entries += 1;
                i
            }
        };
        match &mut entries[i] {
            Shuffle::Tally { tally, .. } => tally,
            _ => unreachable!("map tables hold tallies only"),
        }
    }
}

thread_local! {
    /// Record vectors the reduce side of this thread has emptied
    /// (`recycle_batch`), for the map side to fill again: a vector handed
    /// to the exchange whole comes back here instead of being freed, so a
    /// flood does not allocate (and fault in) megabytes of fresh pages per
    /// shipped pane.
    static SPARE_BATCHES: RefCell<Vec<Vec<Shuffle>>> = const { RefCell::new(Vec::new()) };
}

/// Most emptied record vectors kept per thread.
const MAX_SPARE_BATCHES: usize = 1;
/// Smaller emptied vectors (the exchange's own, between workers) are not kept.
const MIN_SPARE_CAPACITY: usize = 1024;

/// Give back a vector of records once processed (kept, emptied, when it
/// is large and few are kept).
pub fn recycle_batch(mut batch: Vec<Shuffle>) {
    if batch.capacity() < MIN_SPARE_CAPACITY {
        return;
    }
    batch.clear();
    SPARE_BATCHES.with_borrow_mut(|spare| {
        if spare.len() < MAX_SPARE_BATCHES {
            spare.push(batch);
        }
    });
}

fn spare_batch() -> Option<Vec<Shuffle>> {
    SPARE_BATCHES.with_borrow_mut(|spare| spare.pop())
}

/// One pane's table, found once per message: each detector's `PaneSink`
/// comes from it (`sink`) without looking the pane up again.
pub struct PaneTables<'a> {
    table: &'a mut Table,
    entries: &'a mut usize,
    hasher: &'a foldhash::fast::RandomState,
}

impl PaneTables<'_> {
    /// The `TallySink` of detector `det` in this pane.
    pub fn sink(&mut self, det: u16) -> PaneSink<'_> {
        PaneSink {
            table: self.table,
            det,
            entries: self.entries,
            hasher: self.hasher,
        }
    }
}

impl MapTables {
    /// The tables of `pane`, made when it has none yet.
    pub fn pane(&mut self, pane: Pane) -> PaneTables<'_> {
        let i = match self.panes.iter().rposition(|(p, _)| *p <= pane) {
            Some(i) if self.panes[i].0 == pane => i,
            found => {
                let at = found.map_or(0, |i| i + 1);
                let table = self.spare.pop().unwrap_or_default();
                self.panes.insert(at, (pane, table));
                at
            }
        };
        PaneTables {
            table: &mut self.panes[i].1,
            entries: &mut self.entries,
            hasher: &self.hasher,
        }
    }

    pub fn entries(&self) -> usize {
        self.entries
    }

    /// Hand every pane below `below` (all when `None`), oldest first, to
    /// `send` as a vector of records (`send` takes them, or leaves what it
    /// does not take to be dropped).
    pub fn drain_each(
        &mut self,
        below: Option<Pane>,
        mut send: impl FnMut(Pane, &mut Vec<Shuffle>),
    ) {
        let n = match below {
            Some(b) => self.panes.partition_point(|(p, _)| *p < b),
            None => self.panes.len(),
        };
        for _ in 0..n {
            let (pane, mut table) = self.panes.remove(0);
            self.entries -= table.len();
            table.index.clear();
            // Order is irrelevant: the reduce side merges commutatively.
            let shipped = table.entries.len();
            send(pane, &mut table.entries);
            table.entries.clear();
            // The exchange took the vector: take one the reduce side has
            // emptied, else start with room for as many records (regrowth
            // would copy them).
            if table.entries.capacity() < shipped {
                table.entries = spare_batch().unwrap_or_default();
                table.entries.reserve(shipped);
            }
            if self.spare.len() < SPARE_TABLES {
                self.spare.push(table);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    fn fill(tables: &mut MapTables, pane: Pane, n: u32) {
        let mut p = tables.pane(pane);
        let mut sink = p.sink(0);
        for i in 0..n {
            sink.tally(KeyRef::Client(IpAddr::V4(Ipv4Addr::from(i))))
                .queries += 1;
        }
    }

    #[test]
    fn a_pane_taken_whole_leaves_room_for_the_next() {
        let mut tables = MapTables::default();
        fill(&mut tables, 1, 2000);
        let mut shipped = Vec::new();
        tables.drain_each(None, |pane, records| {
            shipped.push((pane, std::mem::take(records)))
        });
        assert_eq!(shipped.len(), 1);
        assert_eq!(shipped[0].0, 1);
        assert_eq!(shipped[0].1.len(), 2000);
        assert!(
            shipped[0]
                .1
                .iter()
                .all(|s| matches!(s, Shuffle::Tally { tally, .. } if tally.queries == 1))
        );
        assert_eq!(tables.entries(), 0);
        // The next pane reuses the emptied table, with room for a pane as
        // large as the one shipped.
        fill(&mut tables, 2, 10);
        assert_eq!(tables.entries(), 10);
        assert!(tables.panes[0].1.entries.capacity() >= 2000);
    }

    #[test]
    fn only_large_emptied_batches_are_kept_and_few() {
        assert!(spare_batch().is_none());
        recycle_batch(Vec::with_capacity(MIN_SPARE_CAPACITY - 1));
        assert!(spare_batch().is_none());
        for _ in 0..MAX_SPARE_BATCHES + 2 {
            let mut v = Vec::with_capacity(MIN_SPARE_CAPACITY);
            v.push(Shuffle::End {
                target: 0,
                last_pane: 3,
            });
            recycle_batch(v);
        }
        for _ in 0..MAX_SPARE_BATCHES {
            let v = spare_batch().expect("a kept batch");
            assert!(v.is_empty() && v.capacity() >= MIN_SPARE_CAPACITY);
        }
        assert!(spare_batch().is_none());
    }
}
