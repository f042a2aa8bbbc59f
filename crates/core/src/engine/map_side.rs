//! `MapTables`: per-pane tallies built where messages are decoded, before
//! they are exchanged by key. Pre-aggregating here sends one record per
//! (detector, key, pane) instead of one per message. Bounded: once it holds
//! `MAX_MAP_ENTRIES` entries the caller flushes it early (nothing is lost,
//! the reduce side merges partial tallies).

use std::collections::BTreeMap;

use std::hash::BuildHasher;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use serde::{Deserialize, Serialize};

use crate::detect::{Key, KeyRef, Tally, TallySink};
use crate::sketch::stable_hash;
use crate::time::Pane;

/// Entries held before an early flush.
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
    /// Routing hash: by (detector, key), or to the target worker.
    pub fn route(&self) -> u64 {
        match self {
            Shuffle::Tally { det, key, .. } => stable_hash(&(det, key)),
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
    panes: BTreeMap<Pane, Table>,
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
        let hash = self.hasher.hash_one((det, key));
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

impl MapTables {
    pub fn sink(&mut self, pane: Pane, det: u16) -> PaneSink<'_> {
        let spare = &mut self.spare;
        PaneSink {
            table: self
                .panes
                .entry(pane)
                .or_insert_with(|| spare.pop().unwrap_or_default()),
            det,
            entries: &mut self.entries,
            hasher: &self.hasher,
        }
    }

    pub fn entries(&self) -> usize {
        self.entries
    }

    /// Take every pane below `below` (all panes when `None`), oldest first.
    /// Hand every pane below `below` (all when `None`), oldest first, to
    /// `send` as records, without collecting them first.
    pub fn drain_each(
        &mut self,
        below: Option<Pane>,
        mut send: impl FnMut(Pane, &mut dyn Iterator<Item = Shuffle>),
    ) {
        let keep = match below {
            Some(b) => self.panes.split_off(&b),
            None => BTreeMap::new(),
        };
        let taken = std::mem::replace(&mut self.panes, keep);
        for (pane, mut table) in taken {
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
