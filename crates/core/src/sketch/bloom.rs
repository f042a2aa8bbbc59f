//! A Bloom filter of fixed size with fixed hashing, shared by the workers
//! of a process (atomic words, no lock) and saved to a file.
//!
//! Hashing is pinned here, not borrowed from `std::hash`: an item's hash is
//! `StableHasher` over its bytes ([`Bloom::hash`]), and its `hashes` bit
//! positions come from that one hash by double hashing (`h1 + i * h2`, `h2`
//! a second mix of `h1`, odd). So an item sets the same bits on every run,
//! worker, process and machine, a filter saved by one run means the same to
//! the next, and the OR of two filters of the same size is the filter of
//! both item sets. The file records a check value (the hash of a fixed
//! string) so a build whose hashing changed refuses an old file instead of
//! misreading it.
//!
//! File format (little endian), [`FILE_HEADER`] bytes then the words:
//! `b"DNSMNOD1"`, version `u32` (1), hashes `u32`, log2 of the bits `u32`,
//! generation `u32` (owned by the caller, 0 when unused), hash check `u64`,
//! learned event time `u64` (microseconds, owned by the caller), checksum
//! `u64` (`StableHasher` of the word bytes), then `2^bits_log2 / 8` bytes
//! of words. A file may hold several such filters one after the other
//! ([`Bloom::parse_all`] reads them all).

use std::hash::Hasher;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::StableHasher;

/// File magic.
pub const MAGIC: &[u8; 8] = b"DNSMNOD1";
/// File format version.
pub const VERSION: u32 = 1;
/// Bytes before the words.
pub const FILE_HEADER: usize = 48;
/// Smallest and largest size, as log2 of the bits (64 bits .. 4 GiB).
pub const MIN_BITS_LOG2: u32 = 6;
pub const MAX_BITS_LOG2: u32 = 35;
/// Most hash functions.
pub const MAX_HASHES: u32 = 16;
/// The string whose hash every file records (see the module docs).
const CHECK_ITEM: &[u8] = b"dnsmonitor.example";

/// What a file holds besides the bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileMeta {
    pub bits_log2: u32,
    pub hashes: u32,
    /// Caller's value (the detector's learned event time, microseconds).
    pub learned_us: u64,
    /// Caller's value (the detector's generation number; 0 when unused).
    pub generation: u32,
}

pub struct Bloom {
    words: Box<[AtomicU64]>,
    bits_log2: u32,
    hashes: u32,
    /// Bits set (exact: counted when an insert flips one).
    set: AtomicU64,
}

impl std::fmt::Debug for Bloom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bloom")
            .field("bits_log2", &self.bits_log2)
            .field("hashes", &self.hashes)
            .field("set", &self.set.load(Ordering::Relaxed))
            .finish()
    }
}

/// Second hash of double hashing: a splitmix64 finaliser of `h`, odd (so
/// with a power-of-two size every step visits distinct positions).
fn step(h: u64) -> u64 {
    let mut z = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) | 1
}

impl Bloom {
    /// An empty filter of `2^bits_log2` bits and `hashes` hash functions
    /// (clamped to the supported ranges).
    pub fn new(bits_log2: u32, hashes: u32) -> Bloom {
        let bits_log2 = bits_log2.clamp(MIN_BITS_LOG2, MAX_BITS_LOG2);
        let words = (0..1u64 << (bits_log2 - 6)).map(|_| AtomicU64::new(0));
        Bloom {
            words: words.collect(),
            bits_log2,
            hashes: hashes.clamp(1, MAX_HASHES),
            set: AtomicU64::new(0),
        }
    }

    /// Size for `capacity` items at false-positive rate `fp_rate` (in
    /// (0, 1)): `hashes = ceil(log2(1 / fp_rate))` and the bits
    /// `capacity * hashes / ln 2` rounded up to a power of two (so the rate
    /// at capacity is at most `fp_rate`). Returns `(bits_log2, hashes)`.
    pub fn size_for(capacity: u64, fp_rate: f64) -> (u32, u32) {
        let hashes = (1.0 / fp_rate).log2().ceil().clamp(1.0, MAX_HASHES as f64) as u32;
        let bits = (capacity.max(1) as f64 * hashes as f64 / std::f64::consts::LN_2).ceil();
        let log2 = (bits.log2().ceil() as u32).clamp(MIN_BITS_LOG2, MAX_BITS_LOG2);
        (log2, hashes)
    }

    /// The item hash: `StableHasher` over the bytes (see the module docs).
    pub fn hash(item: &[u8]) -> u64 {
        let mut h = StableHasher::default();
        h.write(item);
        h.finish()
    }

    pub fn bits_log2(&self) -> u32 {
        self.bits_log2
    }

    pub fn hashes(&self) -> u32 {
        self.hashes
    }

    /// Bytes of the bit array.
    pub fn bytes(&self) -> usize {
        self.words.len() * 8
    }

    fn positions(&self, h: u64) -> impl Iterator<Item = u64> + use<> {
        let mask = (1u64 << self.bits_log2) - 1;
        let d = step(h);
        (0..self.hashes as u64).map(move |i| h.wrapping_add(i.wrapping_mul(d)) & mask)
    }

    /// Is the item (by [`Bloom::hash`]) possibly in the filter?
    pub fn contains(&self, h: u64) -> bool {
        self.positions(h)
            .all(|p| self.words[(p >> 6) as usize].load(Ordering::Relaxed) & (1 << (p & 63)) != 0)
    }

    /// Add the item; true when it was not in the filter (some bit was 0).
    /// Safe from any number of threads: an item inserted by two at once is
    /// new for at least one of them.
    pub fn insert(&self, h: u64) -> bool {
        let mut new = false;
        for p in self.positions(h) {
            let bit = 1u64 << (p & 63);
            let word = &self.words[(p >> 6) as usize];
            // Read first: most inserts find their bits set and write nothing.
            if word.load(Ordering::Relaxed) & bit == 0
                && word.fetch_or(bit, Ordering::Relaxed) & bit == 0
            {
                self.set.fetch_add(1, Ordering::Relaxed);
                new = true;
            }
        }
        new
    }

    /// Forget everything (the words are zeroed one by one: a concurrent
    /// reader may see a partly cleared filter).
    pub fn clear(&self) {
        for w in self.words.iter() {
            w.store(0, Ordering::Relaxed);
        }
        self.set.store(0, Ordering::Relaxed);
    }

    /// Share of the bits set, in [0, 1].
    pub fn fill_ratio(&self) -> f64 {
        self.set.load(Ordering::Relaxed) as f64 / (1u64 << self.bits_log2) as f64
    }

    /// False-positive rate at the present fill: `fill ^ hashes`.
    pub fn fp_rate(&self) -> f64 {
        self.fill_ratio().powi(self.hashes as i32)
    }

    /// The file bytes (see the module docs); `learned_us` is stored as given.
    pub fn to_bytes(&self, learned_us: u64) -> Vec<u8> {
        self.to_bytes_gen(learned_us, 0)
    }

    /// `to_bytes` with a generation number in the header.
    pub fn to_bytes_gen(&self, learned_us: u64, generation: u32) -> Vec<u8> {
        let mut words = Vec::with_capacity(self.bytes());
        for w in self.words.iter() {
            words.extend_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
        }
        let mut out = Vec::with_capacity(FILE_HEADER + words.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&self.hashes.to_le_bytes());
        out.extend_from_slice(&self.bits_log2.to_le_bytes());
        out.extend_from_slice(&generation.to_le_bytes());
        out.extend_from_slice(&Self::hash(CHECK_ITEM).to_le_bytes());
        out.extend_from_slice(&learned_us.to_le_bytes());
        out.extend_from_slice(&Self::hash(&words).to_le_bytes());
        out.extend_from_slice(&words);
        out
    }

    /// Read file bytes: one filter, or several one after the other. The
    /// error says what is wrong, and in which filter past the first (the
    /// caller names the file).
    pub fn parse_all(mut b: &[u8]) -> Result<Vec<(Bloom, FileMeta)>, String> {
        let mut out = Vec::new();
        loop {
            let (bloom, meta, used) = Self::from_prefix(b).map_err(|e| match out.len() {
                0 => e,
                n => format!("filter {}: {e}", n + 1),
            })?;
            out.push((bloom, meta));
            b = &b[used..];
            if b.is_empty() {
                return Ok(out);
            }
        }
    }

    /// Read the filter at the start of `b`; also returns the bytes it took.
    fn from_prefix(b: &[u8]) -> Result<(Bloom, FileMeta, usize), String> {
        if b.len() < FILE_HEADER {
            return Err(format!(
                "truncated: {} bytes, shorter than the {FILE_HEADER}-byte header",
                b.len()
            ));
        }
        if &b[..8] != MAGIC {
            return Err("not a dnsmonitor newly-observed filter (bad magic)".into());
        }
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap_or_default());
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
        let (version, hashes, bits_log2) = (u32_at(8), u32_at(12), u32_at(16));
        if version != VERSION {
            return Err(format!(
                "format version {version}, this build reads {VERSION}"
            ));
        }
        if !(1..=MAX_HASHES).contains(&hashes)
            || !(MIN_BITS_LOG2..=MAX_BITS_LOG2).contains(&bits_log2)
        {
            return Err(format!("bad header: {hashes} hashes, 2^{bits_log2} bits"));
        }
        if u64_at(24) != Self::hash(CHECK_ITEM) {
            return Err("written with a different hash function (hash check differs)".into());
        }
        let want = 1usize << (bits_log2 - 3);
        let Some(words) = b.get(FILE_HEADER..FILE_HEADER + want) else {
            return Err(format!(
                "{} bytes of bits where the header (2^{bits_log2} bits) says {want}",
                b.len() - FILE_HEADER
            ));
        };
        if u64_at(40) != Self::hash(words) {
            return Err("checksum mismatch (the file is corrupt)".into());
        }
        let bloom = Bloom::new(bits_log2, hashes);
        let mut set = 0u64;
        for (w, c) in bloom.words.iter().zip(words.chunks_exact(8)) {
            let v = u64::from_le_bytes(c.try_into().unwrap_or_default());
            set += v.count_ones() as u64;
            w.store(v, Ordering::Relaxed);
        }
        bloom.set.store(set, Ordering::Relaxed);
        let meta = FileMeta {
            bits_log2,
            hashes,
            learned_us: u64_at(32),
            generation: u32_at(20),
        };
        Ok((bloom, meta, FILE_HEADER + want))
    }

    /// OR `other` (same size and hashes) into this filter.
    pub fn union(&self, other: &Bloom) -> Result<(), String> {
        if (self.bits_log2, self.hashes) != (other.bits_log2, other.hashes) {
            return Err(format!(
                "filters differ in size (2^{} bits, {} hashes against 2^{} bits, {} hashes)",
                self.bits_log2, self.hashes, other.bits_log2, other.hashes
            ));
        }
        for (mine, theirs) in self.words.iter().zip(other.words.iter()) {
            let t = theirs.load(Ordering::Relaxed);
            let before = mine.fetch_or(t, Ordering::Relaxed);
            self.set
                .fetch_add((t & !before).count_ones() as u64, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Read a file of filters (see [`Bloom::parse_all`]); `Ok(None)` when
    /// it does not exist.
    pub fn load(path: &Path) -> Result<Option<Vec<(Bloom, FileMeta)>>, String> {
        match std::fs::read(path) {
            Ok(b) => Bloom::parse_all(&b).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Write `bytes` to `path` atomically: a temporary file beside it
/// (`<path>.tmp`), synced, then renamed over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = tmp_path(path);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `<path>.tmp`.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(i: u64) -> u64 {
        Bloom::hash(format!("d{i}.example").as_bytes())
    }

    #[test]
    fn sizing_and_fp_rate_at_capacity() {
        assert_eq!(Bloom::size_for(1_000_000, 0.01), (24, 7));
        assert_eq!(Bloom::size_for(1000, 0.01), (14, 7));
        let (log2, k) = Bloom::size_for(20_000, 0.01);
        let b = Bloom::new(log2, k);
        for i in 0..20_000 {
            b.insert(item(i));
        }
        // Never a false negative.
        assert!((0..20_000).all(|i| b.contains(item(i))));
        // Items never inserted: measured rate at capacity under the target.
        let fp = (1_000_000..1_100_000u64)
            .filter(|&i| b.contains(item(i)))
            .count() as f64
            / 100_000.0;
        assert!(fp < 0.01, "false-positive rate {fp}");
        assert!(fp > 0.0, "a filter at capacity has some false positives");
        assert!((b.fp_rate() - fp).abs() < 0.003, "{} vs {fp}", b.fp_rate());
        // Fill is exact: the set bits counted equal the popcount.
        let pop: u64 = b
            .words
            .iter()
            .map(|w| w.load(Ordering::Relaxed).count_ones() as u64)
            .sum();
        assert_eq!(b.fill_ratio(), pop as f64 / (1u64 << log2) as f64);
        assert!(
            b.fill_ratio() > 0.3 && b.fill_ratio() < 0.6,
            "{}",
            b.fill_ratio()
        );
    }

    #[test]
    fn insert_says_new_once() {
        let b = Bloom::new(16, 4);
        assert!(b.insert(item(1)));
        assert!(!b.insert(item(1)));
        assert!(b.contains(item(1)) && !b.contains(item(2)));
        assert_eq!(b.fill_ratio(), 4.0 / 65536.0);
    }

    #[test]
    fn hashing_is_pinned() {
        // These values are in every file ever written: a change here makes
        // old files unreadable (the hash check refuses them).
        assert_eq!(Bloom::hash(b"example.com"), 0x907e_17d3_f41b_59f3);
        let b = Bloom::new(10, 3);
        let p: Vec<u64> = b.positions(Bloom::hash(b"example.com")).collect();
        assert_eq!(p, [499, 118, 761]);
    }

    #[test]
    fn save_and_load_are_identical() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nod.bloom");
        let b = Bloom::new(12, 5);
        for i in 0..300 {
            b.insert(item(i));
        }
        write_atomic(&path, &b.to_bytes(42)).unwrap();
        assert!(!tmp_path(&path).exists());
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), FILE_HEADER + 512);
        let (c, meta) = Bloom::load(&path).unwrap().unwrap().remove(0);
        assert_eq!(
            meta,
            FileMeta {
                bits_log2: 12,
                hashes: 5,
                learned_us: 42,
                generation: 0
            }
        );
        assert_eq!(c.fill_ratio(), b.fill_ratio());
        assert!((0..300).all(|i| c.contains(item(i))));
        // Saved again: byte for byte the same file.
        write_atomic(&path, &c.to_bytes(42)).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        // Two filters in one file: both read back, in order.
        let two = [bytes.clone(), Bloom::new(8, 2).to_bytes(7)].concat();
        let both = Bloom::parse_all(&two).unwrap();
        assert_eq!(both.len(), 2);
        assert_eq!((both[1].1.bits_log2, both[1].1.learned_us), (8, 7));
        let msg = Bloom::parse_all(&two[..two.len() - 1]).unwrap_err();
        assert!(
            msg.starts_with("filter 2: ") && msg.contains("bytes of bits"),
            "{msg}"
        );
        assert!(Bloom::load(&dir.path().join("absent")).unwrap().is_none());
    }

    #[test]
    fn broken_files_say_what_is_wrong() {
        let b = Bloom::new(8, 2);
        b.insert(item(7));
        let good = b.to_bytes(0);
        let err = |bytes: &[u8]| Bloom::parse_all(bytes).err().unwrap();
        assert!(err(&good[..20]).contains("truncated"));
        assert!(err(&[b'G'; 60]).contains("magic"));
        let mut v = good.clone();
        v[8] = 9;
        assert!(err(&v).contains("version 9"));
        let mut v = good.clone();
        v[24] ^= 1;
        assert!(err(&v).contains("hash function"));
        let mut v = good.clone();
        *v.last_mut().unwrap() ^= 0x80;
        assert!(err(&v).contains("checksum"));
        assert!(err(&good[..good.len() - 8]).contains("bytes of bits"));
        let mut v = good.clone();
        v[12] = 0;
        assert!(err(&v).contains("bad header"));
    }

    #[test]
    fn union_is_the_filter_of_both() {
        let (a, b, both) = (Bloom::new(12, 4), Bloom::new(12, 4), Bloom::new(12, 4));
        for i in 0..100 {
            if i % 2 == 0 { &a } else { &b }.insert(item(i));
            both.insert(item(i));
        }
        a.union(&b).unwrap();
        assert_eq!(a.to_bytes(0), both.to_bytes(0));
        assert_eq!(a.fill_ratio(), both.fill_ratio());
        assert!(a.union(&Bloom::new(13, 4)).is_err());
    }
}
