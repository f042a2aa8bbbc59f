//! `KeyMap`: the reduce side's tables of `(detector, key)`, hashed once per
//! record. A record is looked up in the slot index and then in a pane's
//! cold table; with `HashMap` each lookup hashed the key again (an address
//! or a domain name, through `Hash`). Here the caller hashes once
//! (`KeyHasher::hash`) and every table takes that hash. Seeded per process:
//! keys are attacker-chosen.

use std::hash::BuildHasher;

use hashbrown::HashTable;
pub use hashbrown::hash_table::Entry;

use crate::detect::Key;

/// The hash every `KeyMap` of one reduce worker is looked up by.
#[derive(Clone, Default)]
pub struct KeyHasher(foldhash::fast::RandomState);

impl KeyHasher {
    pub fn hash(&self, det: u16, key: &Key) -> u64 {
        self.0.hash_one((det, key))
    }
}

/// `(detector, key) -> V`, looked up by a hash from the worker's `KeyHasher`.
pub struct KeyMap<V> {
    table: HashTable<(u64, u16, Key, V)>,
}

impl<V> Default for KeyMap<V> {
    fn default() -> Self {
        KeyMap {
            table: HashTable::new(),
        }
    }
}

fn matches<V>(h: u64, det: u16, key: &Key) -> impl Fn(&(u64, u16, Key, V)) -> bool + '_ {
    move |e| e.0 == h && e.1 == det && e.2 == *key
}

impl<V> KeyMap<V> {
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub fn get(&self, h: u64, det: u16, key: &Key) -> Option<&V> {
        self.table.find(h, matches(h, det, key)).map(|e| &e.3)
    }

    pub fn contains(&self, h: u64, det: u16, key: &Key) -> bool {
        self.get(h, det, key).is_some()
    }

    pub fn remove(&mut self, h: u64, det: u16, key: &Key) -> Option<V> {
        match self.table.find_entry(h, matches(h, det, key)) {
            Ok(o) => Some(o.remove().0.3),
            Err(_) => None,
        }
    }

    /// Insert a key known to be absent.
    pub fn insert_new(&mut self, h: u64, det: u16, key: Key, v: V) {
        self.table.insert_unique(h, (h, det, key, v), |e| e.0);
    }

    /// The entry of `key`, to update in place or to fill (a vacant entry
    /// takes `(h, det, key, value)`).
    pub fn entry(&mut self, h: u64, det: u16, key: &Key) -> Entry<'_, (u64, u16, Key, V)> {
        self.table.entry(h, matches(h, det, key), |e| e.0)
    }

    /// `(hash, detector, key, value)` of every entry.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u16, &Key, &V)> {
        self.table.iter().map(|e| (e.0, e.1, &e.2, &e.3))
    }

    /// Every value, mutably.
    pub fn values_mut(&mut self) -> impl Iterator<Item = (u16, &mut V)> {
        self.table.iter_mut().map(|e| (e.1, &mut e.3))
    }

    pub fn clear(&mut self) {
        self.table.clear();
    }
}
