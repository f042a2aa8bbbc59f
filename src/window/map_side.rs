//! `MapTables`: per-pane tallies built where messages are decoded, before
//! they are exchanged by key. Pre-aggregating here sends one record per
//! (detector, key, pane) instead of one per message. Bounded: once it holds
//! `MAX_MAP_ENTRIES` entries the caller flushes it early (nothing is lost,
//! the reduce side merges partial tallies).

use std::collections::BTreeMap;

use foldhash::HashMap;

use serde::{Deserialize, Serialize};

use super::Pane;
use crate::detect::{Key, Tally, TallySink};
use crate::sketch::stable_hash;

/// Entries held before an early flush.
pub const MAX_MAP_ENTRIES: usize = 1 << 16;

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
}

impl Shuffle {
    /// Routing hash: by (detector, key), or to the target worker.
    pub fn route(&self) -> u64 {
        match self {
            Shuffle::Tally { det, key, .. } => stable_hash(&(det, key)),
            Shuffle::End { target, .. } => *target,
        }
    }
}

#[derive(Default)]
pub struct MapTables {
    panes: BTreeMap<Pane, HashMap<(u16, Key), Tally>>,
    entries: usize,
    /// Emptied tables, reused with their capacity (no regrowth every pane).
    spare: Vec<HashMap<(u16, Key), Tally>>,
}

/// Emptied tables kept for reuse.
const SPARE_TABLES: usize = 1;

/// `TallySink` for one (pane, detector).
pub struct PaneSink<'a> {
    table: &'a mut HashMap<(u16, Key), Tally>,
    det: u16,
    entries: &'a mut usize,
}

impl TallySink for PaneSink<'_> {
    fn tally(&mut self, key: Key) -> &mut Tally {
        let entries = &mut *self.entries;
        self.table.entry((self.det, key)).or_insert_with(|| {
            *entries += 1;
            Tally::default()
        })
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
        }
    }

    pub fn entries(&self) -> usize {
        self.entries
    }

    /// Take every pane below `below` (all panes when `None`), oldest first.
    pub fn drain(&mut self, below: Option<Pane>) -> Vec<(Pane, Vec<Shuffle>)> {
        let keep = match below {
            Some(b) => self.panes.split_off(&b),
            None => BTreeMap::new(),
        };
        let taken = std::mem::replace(&mut self.panes, keep);
        let mut out = Vec::with_capacity(taken.len());
        for (pane, mut table) in taken {
            self.entries -= table.len();
            // Order is irrelevant: the reduce side merges commutatively.
            let v: Vec<Shuffle> = table
                .drain()
                .map(|((det, key), tally)| Shuffle::Tally { det, key, tally })
                .collect();
            out.push((pane, v));
            if self.spare.len() < SPARE_TABLES {
                self.spare.push(table);
            }
        }
        out
    }
}
