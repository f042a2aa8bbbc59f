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

use super::Pane;
use crate::detect::{Key, KeyRef, Tally, TallySink};
use crate::sketch::stable_hash;

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

/// One pane's tallies, looked up by a borrowed key (`KeyRef`), so that an
/// existing tally is found without building a `Key`.
type Table = HashTable<(u16, Key, Tally)>;

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
        let (det, hasher) = (self.det, self.hasher);
        let hash = hasher.hash_one((det, key));
        let entry = self.table.entry(
            hash,
            |(d, k, _)| *d == det && k.as_key_ref() == key,
            |(d, k, _)| hasher.hash_one((*d, k.as_key_ref())),
        );
        match entry {
            Entry::Occupied(o) => &mut o.into_mut().2,
            Entry::Vacant(v) => {
                *self.entries += 1;
                &mut v.insert((det, key.to_key(), Tally::default())).into_mut().2
            }
        }
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
            // Order is irrelevant: the reduce side merges commutatively.
            send(
                pane,
                &mut table
                    .drain()
                    .map(|(det, key, tally)| Shuffle::Tally { det, key, tally }),
            );
            if self.spare.len() < SPARE_TABLES {
                self.spare.push(table);
            }
        }
    }
}
