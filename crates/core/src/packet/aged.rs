//! `AgedTable`: a map whose entries carry an age (event time, then
//! insertion order), so that the oldest entry can be found and dropped in
//! O(log n). The packet layer's bounded tables (IP fragments, TCP flows)
//! are built on it: they evict the oldest entry when full and drop entries
//! older than a timeout; the table only keeps the order, the caller decides
//! when and counts why.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

/// Age of an entry: event time in microseconds, then a sequence number
/// that keeps equal times in insertion order (and the keys unique).
type Age = (i64, u64);

#[derive(Debug)]
struct Aged<V> {
    value: V,
    age: Age,
}

#[derive(Debug)]
pub struct AgedTable<K, V> {
    map: HashMap<K, Aged<V>>,
    by_age: BTreeMap<Age, K>,
    next_seq: u64,
}

impl<K: Copy + Eq + Hash, V> Default for AgedTable<K, V> {
    fn default() -> Self {
        AgedTable {
            map: HashMap::new(),
            by_age: BTreeMap::new(),
            next_seq: 0,
        }
    }
}

impl<K: Copy + Eq + Hash, V> AgedTable<K, V> {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn contains_key(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key).map(|a| &a.value)
    }

    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.map.get_mut(key).map(|a| &mut a.value)
    }

    /// Every value (invariant checks in tests and fuzz targets).
    #[cfg(any(test, fuzzing))]
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.map.values().map(|a| &a.value)
    }

    /// Insert `value` aged `ts_us` (newest among equal times); a value held
    /// for `key` is replaced and returned.
    pub fn insert(&mut self, key: K, value: V, ts_us: i64) -> Option<V> {
        let old = self.remove(&key);
        let age = (ts_us, self.next_seq);
        self.next_seq = self.next_seq.wrapping_add(1);
        self.by_age.insert(age, key);
        self.map.insert(key, Aged { value, age });
        old
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        let a = self.map.remove(key)?;
        self.by_age.remove(&a.age);
        Some(a.value)
    }

    /// Make `key`'s age `ts_us` (it was active then); nothing when absent.
    pub fn touch(&mut self, key: &K, ts_us: i64) {
        if let Some(a) = self.map.get_mut(key)
            && a.age.0 != ts_us
        {
            self.by_age.remove(&a.age);
            a.age.0 = ts_us;
            self.by_age.insert(a.age, *key);
        }
    }

    /// Remove the oldest entry.
    pub fn pop_oldest(&mut self) -> Option<(K, V)> {
        let (_, key) = self.by_age.pop_first()?;
        let a = self.map.remove(&key)?;
        Some((key, a.value))
    }

    /// Remove the oldest entry if it is older than `cutoff_us`.
    pub fn pop_older_than(&mut self, cutoff_us: i64) -> Option<(K, V)> {
        let entry = self.by_age.first_entry()?;
        if entry.key().0 >= cutoff_us {
            return None;
        }
        let key = entry.remove();
        let a = self.map.remove(&key)?;
        Some((key, a.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_first_touch_and_replace() {
        let mut t = AgedTable::default();
        t.insert(1u8, "a", 10);
        t.insert(2, "b", 5);
        t.insert(3, "c", 5);
        assert_eq!(t.len(), 3);
        // Equal times: insertion order.
        t.touch(&2, 20);
        assert_eq!(t.pop_oldest(), Some((3, "c")));
        assert_eq!(t.insert(1, "a2", 30), Some("a"));
        assert_eq!(t.pop_older_than(20), None);
        assert_eq!(t.pop_older_than(21), Some((2, "b")));
        assert_eq!(t.get(&1), Some(&"a2"));
        assert_eq!(t.remove(&1), Some("a2"));
        assert!(t.is_empty() && t.pop_oldest().is_none());
        t.touch(&9, 1);
        assert!(t.is_empty());
    }
}
