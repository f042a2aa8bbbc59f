//! `KeyMap`: the reduce side's tables of `(detector, key)`, hashed once per
//! record. A record is looked up in the slot index and then in a pane's
//! cold table; with `HashMap` each lookup hashed the key again (an address
//! or a domain name, through `Hash`). Here the caller hashes once
//! (`KeyHasher::hash`) and every table takes that hash. Seeded per process:
//! keys are attacker-chosen.

use std::hash::BuildHasher;

use hashbrown::HashTable;
pub use hashbrown::hash_table::Entry;

use crate::detect::{Key, KeyRef};

/// The hash every `KeyMap` of one reduce worker is looked up by.
#[derive(Clone, Default)]
pub struct KeyHasher(foldhash::fast::RandomState);

impl KeyHasher {
    pub fn hash(&self, det: u16, key: &Key) -> u64 {
        det_key_hash(key_hash(&self.0, key.as_key_ref()), det)
    }
}

/// The hash of what a key is about, whatever its role: `Client(a)`,
/// `Victim(a)` and `Server(a)` hash alike (the tables tell them apart by
/// comparing the key). A spoofed source is tallied as a client by four
/// detectors and as a victim by two; hashed alike, with `det_key_hash`,
/// the six tallies share one probe group.
#[inline]
pub fn key_hash(s: &impl BuildHasher, key: KeyRef<'_>) -> u64 {
    match key {
        KeyRef::Client(a) | KeyRef::Victim(a) | KeyRef::Server(a) => s.hash_one(a),
        KeyRef::Subnet(a, p) => s.hash_one((a, p)),
        KeyRef::ClientDomain(a, d) => s.hash_one((a, d)),
        KeyRef::Domain(d) => s.hash_one(d),
    }
}

/// The hash of `(det, key)` in the map and reduce tables: the key's hash
/// with the detector folded into its top 7 bits only. hashbrown places an
/// entry by the low bits and filters a probe group by the top 7 (its tag),
/// so one key's tallies for different detectors land in the same probe
/// group, found with one cache miss for all the detectors of a message
/// that tally that key (a spoofed source is tallied by six), while each
/// detector's entry keeps a tag of its own (`det * 0x35` is distinct mod
/// 128 for every detector number below 128).
#[inline]
pub fn det_key_hash(key_hash: u64, det: u16) -> u64 {
    key_hash ^ ((u64::from(det).wrapping_mul(0x35) & 0x7f) << 57)
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

    /// `(hash, detector, key, value)` of every entry, the value mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (u64, u16, &Key, &mut V)> {
        self.table.iter_mut().map(|e| (e.0, e.1, &e.2, &mut e.3))
    }

    /// Every value, mutably.
    pub fn values_mut(&mut self) -> impl Iterator<Item = (u16, &mut V)> {
        self.table.iter_mut().map(|e| (e.1, &mut e.3))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_one_place_one_tag_per_detector() {
        let key_hash = 0x0123_4567_89ab_cdef;
        let mut tags = std::collections::HashSet::new();
        for det in 0..128u16 {
            let h = det_key_hash(key_hash, det);
            // Placed by the same low bits: the same probe group for every detector.
            assert_eq!(h << 7, key_hash << 7, "det {det}");
            // Told apart by hashbrown's 7-bit tag.
            assert!(tags.insert(h >> 57), "det {det} shares a tag");
        }
        assert_eq!(det_key_hash(key_hash, 0), key_hash);
    }

    #[test]
    fn detectors_of_one_key_are_separate_entries() {
        let hasher = KeyHasher::default();
        let key = Key::Client("192.0.2.1".parse().unwrap());
        let mut m = KeyMap::default();
        for det in 0..11u16 {
            m.insert_new(hasher.hash(det, &key), det, key.clone(), det);
        }
        for det in 0..11u16 {
            assert_eq!(m.get(hasher.hash(det, &key), det, &key), Some(&det));
        }
        assert_eq!(m.len(), 11);
    }

    #[test]
    fn one_address_in_two_roles_shares_a_hash_not_an_entry() {
        let hasher = KeyHasher::default();
        let a = "198.51.100.7".parse().unwrap();
        let (client, victim) = (Key::Client(a), Key::Victim(a));
        // Same detector, same address: the same full hash...
        assert_eq!(hasher.hash(3, &client), hasher.hash(3, &victim));
        // ...and still two entries, told apart by comparing the key.
        let mut m = KeyMap::default();
        m.insert_new(hasher.hash(3, &client), 3, client.clone(), "client");
        m.insert_new(hasher.hash(3, &victim), 3, victim.clone(), "victim");
        assert_eq!(m.get(hasher.hash(3, &client), 3, &client), Some(&"client"));
        assert_eq!(m.get(hasher.hash(3, &victim), 3, &victim), Some(&"victim"));
        // Another address is elsewhere.
        let b = Key::Client("198.51.100.8".parse().unwrap());
        assert_ne!(hasher.hash(3, &client), hasher.hash(3, &b));
        assert!(m.get(hasher.hash(3, &b), 3, &b).is_none());
    }
}
