//! `MapTables`: per-pane tallies built where messages are decoded, before
//! they are exchanged by key. Pre-aggregating here sends one record per
//! (detector, key, pane) instead of one per message. Bounded: once it holds
//! `MAX_MAP_ENTRIES` entries the caller flushes it early (nothing is lost,
//! the reduce side merges partial tallies).

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
pub const MAX_MAP_ENTRIES: usize = 1 << 14;

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
    entries: Vec<(u16, Key, Tally)>,
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
                h == hash && {
                    let (d, k, _) = &entries[i as usize];
                    *d == det && k.as_key_ref() == key
                }
            },
            |&(h, _)| h,
        );
        let i = match found {
            Entry::Occupied(o) => o.get().1 as usize,
            Entry::Vacant(v) => {
                let i = entries.len();
                // At most `MAX_MAP_ENTRIES` and a pane's worth: fits in u32.
                v.insert((hash, i as u32));
                entries.push((det, key.to_key(), Tally::default()));
                *self.entries += 1;
                i
            }
        };
        &mut entries[i].2
    }
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
    /// `send` as records, without collecting them first.
    pub fn drain_each(
        &mut self,
        below: Option<Pane>,
        mut send: impl FnMut(Pane, &mut dyn Iterator<Item = Shuffle>),
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
            send(
                pane,
                &mut table
                    .entries
                    .drain(..)
                    .map(|(det, key, tally)| Shuffle::Tally { det, key, tally }),
            );
            if self.spare.len() < SPARE_TABLES {
                self.spare.push(table);
            }
        }
    }
}
