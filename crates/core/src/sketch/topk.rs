//! `TopK`: heavy hitters with bounded memory (Misra–Gries). Keeps at most
//! `capacity` counters; any item with true count > N / (capacity + 1) is
//! guaranteed to be kept, and each kept count under-estimates the true count
//! by at most N / (capacity + 1) (N = total offered). Mergeable.

use std::borrow::Cow;
use std::net::IpAddr;

use foldhash::{HashMap, HashMapExt};

/// What a counter is about. An address is kept as one and rendered only
/// when the table is read: a spoofed flood offers a new address per packet,
/// and formatting each into a string would cost more than the counting.
#[derive(Clone, Debug)]
enum Label {
    Ip(IpAddr),
    Text(Box<str>),
}

impl Label {
    fn render(&self) -> Cow<'_, str> {
        match self {
            Label::Ip(ip) => Cow::Owned(ip.to_string()),
            Label::Text(s) => Cow::Borrowed(s),
        }
    }
}

#[derive(Clone, Debug)]
pub struct TopK {
    capacity: usize,
    counts: HashMap<u64, (u64, Label)>,
    total: u64,
    /// Decrement rounds (each removes at least one counter).
    pub evictions: u64,
}

impl TopK {
    pub fn new(capacity: usize) -> Self {
        TopK {
            capacity: capacity.max(1),
            counts: HashMap::new(),
            total: 0,
            evictions: 0,
        }
    }

    /// Count one occurrence of the item with hash `h`; `name` is called only
    /// when a new counter is created.
    pub fn offer(&mut self, h: u64, n: u64, name: impl FnOnce() -> Box<str>) {
        self.offer_label(h, n, || Label::Text(name()));
    }

    /// Count one occurrence of address `ip` (hash `h`).
    pub fn offer_ip(&mut self, h: u64, n: u64, ip: IpAddr) {
        self.offer_label(h, n, || Label::Ip(ip));
    }

    fn offer_label(&mut self, h: u64, n: u64, name: impl FnOnce() -> Label) {
        self.total += n;
        if let Some(c) = self.counts.get_mut(&h) {
            c.0 += n;
            return;
        }
        if self.counts.len() < self.capacity {
            self.counts.insert(h, (n, name()));
            return;
        }
        // Misra–Gries decrement: subtract the smallest of (n, min count) from all.
        let min = self.counts.values().map(|c| c.0).min().unwrap_or(0).min(n);
        self.evictions += 1;
        self.counts.retain(|_, c| {
            c.0 -= min;
            c.0 > 0
        });
        let left = n - min;
        if left > 0 && self.counts.len() < self.capacity {
            self.counts.insert(h, (left, name()));
        }
    }

    pub fn merge(&mut self, other: &TopK) {
        let mut items: Vec<_> = other.counts.iter().collect();
        items.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(b.0)));
        for (h, (n, name)) in items {
            self.offer_label(*h, *n, || name.clone());
        }
        self.total += other.total - other.counts.values().map(|c| c.0).sum::<u64>();
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// Every counter as (hash, count, name), sorted by hash.
    pub fn items(&self) -> Vec<(u64, u64, Box<str>)> {
        let mut v: Vec<_> = self
            .counts
            .iter()
            .map(|(h, (c, s))| (*h, *c, s.render().into()))
            .collect();
        v.sort();
        v
    }

    /// The `n` largest counters, biggest first (ties by name).
    pub fn top(&self, n: usize) -> Vec<(Cow<'_, str>, u64)> {
        let mut v: Vec<_> = self
            .counts
            .values()
            .map(|(c, s)| (s.render(), *c))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_heavy_hitters_within_bound() {
        let mut t = TopK::new(10);
        // 3 heavy items among 1000 distinct light ones.
        for i in 0..1000u64 {
            t.offer(1_000_000 + i, 1, || format!("light{i}").into());
            if i % 4 == 0 {
                t.offer(1, 1, || "heavy-a".into());
            }
            if i % 8 == 0 {
                t.offer(2, 1, || "heavy-b".into());
            }
        }
        let top = t.top(2);
        assert_eq!(top[0].0, "heavy-a");
        assert_eq!(top[1].0, "heavy-b");
        let bound = t.total() / 11;
        assert!(250 - top[0].1 <= bound && 125 - top[1].1 <= bound);
        assert!(t.counts.len() <= 10);
    }
}
