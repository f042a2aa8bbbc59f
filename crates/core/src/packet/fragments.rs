//! IPv4 and IPv6 fragment reassembly.
//!
//! Datagrams are keyed by (source, destination, protocol / fragment next
//! header, identification). The table is bounded: at most
//! `max_datagrams` partial datagrams (the oldest, by first fragment, is
//! evicted to make room and counted), each at most [`MAX_DATAGRAM_BYTES`]
//! long and [`MAX_FRAGMENTS_PER_DATAGRAM`] pieces, dropped after `timeout_us`
//! since its first fragment. Fragments may arrive in any order. Overlapping
//! fragments (except an exact, byte-identical duplicate, which is ignored),
//! pieces past the end or past the announced total, and non-final pieces
//! whose length is not a multiple of 8 make the whole datagram `BadFragment`
//! (RFC 5722 style: the partial datagram is discarded).

use std::net::IpAddr;

use super::PacketError;
use super::aged::AgedTable;
use super::ip::Fragment;

/// Largest reassembled payload accepted (IP length fields are 16 bits).
pub const MAX_DATAGRAM_BYTES: usize = 65535;
/// Most pieces one datagram may be made of.
pub const MAX_FRAGMENTS_PER_DATAGRAM: usize = 256;
/// Fragment offsets are in units of 8 bytes: every non-final piece's
/// length is a multiple of this.
pub const FRAGMENT_UNIT: usize = 8;

/// Identity of one fragmented datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FragmentKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 protocol or the IPv6 fragment header's next header.
    pub protocol: u8,
    pub id: u32,
}

/// A datagram being reassembled.
#[derive(Debug)]
struct Partial {
    data: Vec<u8>,
    /// Received pieces `[start, end)`, sorted by start, never overlapping.
    pieces: Vec<(usize, usize)>,
    received: usize,
    /// Payload length, known once the last piece (no "more") arrived.
    total: Option<usize>,
}

/// Bounded reassembly table. See the module documentation.
#[derive(Debug)]
pub struct FragmentTable {
    /// Aged by first fragment.
    partials: AgedTable<FragmentKey, Partial>,
    max_datagrams: usize,
    timeout_us: i64,
    evictions: u64,
    expired: u64,
}

impl FragmentTable {
    pub fn new(max_datagrams: usize, timeout_us: i64) -> Self {
        FragmentTable {
            partials: AgedTable::default(),
            max_datagrams,
            timeout_us,
            evictions: 0,
            expired: 0,
        }
    }

    /// Partial datagrams held.
    pub fn len(&self) -> usize {
        self.partials.len()
    }

    pub fn is_empty(&self) -> bool {
        self.partials.is_empty()
    }

    /// Partial datagrams evicted because the table was full.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Partial datagrams dropped by [`FragmentTable::expire`].
    pub fn expired(&self) -> u64 {
        self.expired
    }

    /// Adds one piece. Returns the reassembled payload (everything after
    /// the IP header / fragment header) when this piece completes it.
    pub fn insert(
        &mut self,
        key: FragmentKey,
        frag: Fragment,
        data: &[u8],
        ts_us: i64,
    ) -> Result<Option<Vec<u8>>, PacketError> {
        let result = self.insert_inner(key, frag, data, ts_us);
        if result.is_err() {
            self.remove(&key);
        }
        result
    }

    fn insert_inner(
        &mut self,
        key: FragmentKey,
        frag: Fragment,
        data: &[u8],
        ts_us: i64,
    ) -> Result<Option<Vec<u8>>, PacketError> {
        let start = frag.offset;
        let end = start
            .checked_add(data.len())
            .filter(|&e| e <= MAX_DATAGRAM_BYTES)
            .ok_or(PacketError::BadFragment)?;
        if frag.more && (data.is_empty() || !data.len().is_multiple_of(FRAGMENT_UNIT)) {
            return Err(PacketError::BadFragment);
        }
        if self.max_datagrams == 0 {
            return Err(PacketError::BadFragment);
        }
        if !self.partials.contains_key(&key) {
            while self.partials.len() >= self.max_datagrams {
                if self.partials.pop_oldest().is_none() {
                    break;
                }
                self.evictions += 1;
            }
            self.partials.insert(
                key,
                Partial {
                    data: Vec::new(),
                    pieces: Vec::new(),
                    received: 0,
                    total: None,
                },
                ts_us,
            );
        }
        let Some(p) = self.partials.get_mut(&key) else {
            return Err(PacketError::BadFragment);
        };

        // Where the piece would go, and whether it overlaps a neighbour.
        let idx = p.pieces.partition_point(|&(s, _)| s < start);
        if let Some(&(s, e)) = p.pieces.get(idx)
            && s == start
            && e == end
            && !data.is_empty()
        {
            // Same range again: a duplicate if the bytes agree.
            return if p.data.get(s..e) == Some(data) && frag.more == (p.total != Some(end)) {
                Ok(None)
            } else {
                Err(PacketError::BadFragment)
            };
        }
        let overlaps_prev = idx
            .checked_sub(1)
            .and_then(|i| p.pieces.get(i))
            .is_some_and(|&(_, e)| e > start);
        let overlaps_next = p.pieces.get(idx).is_some_and(|&(s, _)| s < end);
        if !data.is_empty() && (overlaps_prev || overlaps_next) {
            return Err(PacketError::BadFragment);
        }

        if frag.more {
            if p.total.is_some_and(|t| end > t) {
                return Err(PacketError::BadFragment);
            }
        } else {
            if p.total.is_some_and(|t| t != end) {
                return Err(PacketError::BadFragment);
            }
            if p.pieces.last().is_some_and(|&(_, e)| e > end) {
                return Err(PacketError::BadFragment);
            }
            p.total = Some(end);
        }

        if !data.is_empty() {
            if p.pieces.len() >= MAX_FRAGMENTS_PER_DATAGRAM {
                return Err(PacketError::BadFragment);
            }
            if p.data.len() < end {
                p.data.resize(end, 0);
            }
            let dst = p.data.get_mut(start..end).ok_or(PacketError::BadFragment)?;
            dst.copy_from_slice(data);
            p.pieces.insert(idx, (start, end));
            p.received += data.len();
        }

        if p.total == Some(p.received) {
            let Some(mut done) = self.remove(&key) else {
                return Err(PacketError::BadFragment);
            };
            done.data.truncate(done.received);
            return Ok(Some(done.data));
        }
        Ok(None)
    }

    fn remove(&mut self, key: &FragmentKey) -> Option<Partial> {
        self.partials.remove(key)
    }

    /// Drops datagrams whose first fragment is older than the timeout.
    pub fn expire(&mut self, now_us: i64) {
        let cutoff = now_us.saturating_sub(self.timeout_us);
        while self.partials.pop_older_than(cutoff).is_some() {
            self.expired += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key(id: u32) -> FragmentKey {
        FragmentKey {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            protocol: 17,
            id,
        }
    }

    fn frag(offset: usize, more: bool) -> Fragment {
        Fragment {
            id: 0,
            offset,
            more,
        }
    }

    fn payload(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + 3) as u8).collect()
    }

    #[test]
    fn in_order_and_out_of_order() {
        let whole = payload(40);
        let orders: [[usize; 3]; 3] = [[0, 1, 2], [2, 1, 0], [1, 2, 0]];
        for order in orders {
            let mut t = FragmentTable::new(16, 1_000_000);
            let pieces = [(0, 16, true), (16, 32, true), (32, 40, false)];
            let mut got = None;
            for (n, &i) in order.iter().enumerate() {
                let (s, e, more) = pieces[i];
                let r = t.insert(key(1), frag(s, more), &whole[s..e], 10).unwrap();
                if n < 2 {
                    assert!(r.is_none());
                } else {
                    got = r;
                }
            }
            assert_eq!(got.unwrap(), whole);
            assert!(t.is_empty());
        }
    }

    #[test]
    fn overlap_rejected_duplicate_ignored() {
        let whole = payload(48);
        let mut t = FragmentTable::new(16, 1_000_000);
        assert!(
            t.insert(key(1), frag(0, true), &whole[..16], 0)
                .unwrap()
                .is_none()
        );
        // Exact byte-identical duplicate: ignored.
        assert!(
            t.insert(key(1), frag(0, true), &whole[..16], 0)
                .unwrap()
                .is_none()
        );
        assert_eq!(t.len(), 1);
        // Overlapping piece: whole datagram discarded.
        assert_eq!(
            t.insert(key(1), frag(8, true), &whole[8..24], 0),
            Err(PacketError::BadFragment)
        );
        assert!(t.is_empty());
        // Same range, different bytes: rejected too.
        t.insert(key(2), frag(0, true), &whole[..16], 0).unwrap();
        assert_eq!(
            t.insert(key(2), frag(0, true), &[0u8; 16], 0),
            Err(PacketError::BadFragment)
        );
    }

    #[test]
    fn out_of_bounds_rejected() {
        let mut t = FragmentTable::new(16, 1_000_000);
        assert_eq!(
            t.insert(key(1), frag(65528, false), &[0; 8], 0),
            Err(PacketError::BadFragment)
        );
        // Non-final piece not a multiple of 8.
        assert_eq!(
            t.insert(key(1), frag(0, true), &[0; 10], 0),
            Err(PacketError::BadFragment)
        );
        // Piece beyond the announced end.
        t.insert(key(3), frag(16, false), &[0; 4], 0).unwrap();
        assert_eq!(
            t.insert(key(3), frag(16, true), &[0; 8], 0),
            Err(PacketError::BadFragment)
        );
        // A second, different last fragment.
        t.insert(key(4), frag(16, false), &[0; 4], 0).unwrap();
        assert_eq!(
            t.insert(key(4), frag(24, false), &[0; 4], 0),
            Err(PacketError::BadFragment)
        );
        // Last fragment ending before received data.
        t.insert(key(5), frag(32, true), &[0; 8], 0).unwrap();
        assert_eq!(
            t.insert(key(5), frag(8, false), &[0; 4], 0),
            Err(PacketError::BadFragment)
        );
        assert!(t.is_empty());
    }

    #[test]
    fn bounded_table_evicts_oldest_and_expires() {
        let mut t = FragmentTable::new(2, 1_000);
        t.insert(key(1), frag(0, true), &[1; 8], 100).unwrap();
        t.insert(key(2), frag(0, true), &[2; 8], 200).unwrap();
        t.insert(key(3), frag(0, true), &[3; 8], 300).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.evictions(), 1);
        // key 1 was evicted: its last piece alone does not complete.
        assert!(
            t.insert(key(1), frag(8, false), &[1; 2], 301)
                .unwrap()
                .is_none()
        );
        assert_eq!(t.evictions(), 2); // key 2 made room for key 1
        // key 3 completes.
        let done = t
            .insert(key(3), frag(8, false), &[3; 2], 302)
            .unwrap()
            .unwrap();
        assert_eq!(done, vec![3, 3, 3, 3, 3, 3, 3, 3, 3, 3]);
        t.expire(1_300);
        assert_eq!(t.len(), 1);
        t.expire(1_302);
        assert!(t.is_empty());
        assert_eq!(t.expired(), 1);
    }

    #[test]
    fn too_many_pieces() {
        let mut t = FragmentTable::new(4, 1_000);
        for i in 0..MAX_FRAGMENTS_PER_DATAGRAM {
            t.insert(key(1), frag(i * 8, true), &[0; 8], 0).unwrap();
        }
        assert_eq!(
            t.insert(
                key(1),
                frag(MAX_FRAGMENTS_PER_DATAGRAM * 8, false),
                &[0; 1],
                0
            ),
            Err(PacketError::BadFragment)
        );
    }
}
