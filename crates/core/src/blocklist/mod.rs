//! Domain blocklist with allowlist, matched by suffix.
//!
//! Lists are loaded once ([`BlocklistSet::load`]) and shared read-only by the
//! workers (`Arc<BlocklistSet>`); [`BlocklistSet::lookup`] does not allocate.
//!
//! # Matching
//! * An entry `evil.com` matches `evil.com` and every name below it
//!   (`a.b.evil.com`), never `notevil.com`. Comparison ignores ASCII case.
//! * `*.evil.com` (wildcard, RPZ `*.` owner) is stored as `evil.com`: it
//!   matches `evil.com` itself too. RPZ's distinction between `d` (exact)
//!   and `*.d` (below) is not kept; both are suffix entries.
//! * The hit is the most specific (longest) matching block entry.
//! * **Allow rule:** with `b` the most specific matching block entry and `a`
//!   the most specific matching allow entry, the name is allowed when `a`
//!   has at least as many labels as `b`. So block `example.com` + allow
//!   `good.example.com`: `good.example.com` and `x.good.example.com` are not
//!   hits, `bad.example.com` is. Block `ads.good.example.com` on top of that
//!   is more specific than the allow entry, so `ads.good.example.com` is a
//!   hit again. A name both blocked and allowed is allowed. (AdGuard Home
//!   lets any matching `@@` rule win; here the more specific rule wins.)
//! * Allow entries are global: an allow entry from any list (allow file, or
//!   an exception line inside a block file) can clear a block from any list.
//!
//! # Formats (detected per line, so files may mix them)
//! See `blocklists/README.md` for the full description. Plain domains,
//! hosts files, AdBlock/AdGuard `||d^` (`@@||d^` gives an allow entry),
//! RPZ zone files (`rpz-passthru.` gives an allow entry), dnsmasq
//! `address=`/`server=`/`local=`, unbound `local-zone:` (transparent types
//! give allow entries), BIND `zone "d" { ... };`. In an allow list every
//! parsed name is an allow entry. Lines that cannot be used are skipped,
//! counted per list ([`ListInfo::skipped`]) and the first few reported by
//! [`BlocklistSet::warnings`].
//!
//! # Storage
//! Entry names are stored once, in one `String` arena; an open-addressing
//! table maps [`QName`] suffix hashes to entries. A table hit is always
//! verified by comparing labels, so a hash collision cannot produce a hit.

mod parse;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::dns::QName;
pub use parse::Reject;
use parse::{Item, LineParser};

/// Warnings kept per list (the rest are only counted).
const WARNINGS_PER_LIST: usize = 5;
/// Bit of `Entry::meta` marking an allow entry; the low bits are the label count.
const ALLOW_BIT: u8 = 0x80;
const EMPTY: u64 = 0;

/// Errors that stop loading. Unusable lines are not errors (see
/// [`BlocklistSet::warnings`]).
#[derive(thiserror::Error, Debug)]
pub enum BlocklistError {
    #[error("cannot read list {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("duplicate list name `{name}`: {} and {} (list names are file stems)", first.display(), second.display())]
    DuplicateName {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("too many lists at {} (at most {})", path.display(), u16::MAX)]
    TooManyLists { path: PathBuf },
    #[error("lists too large at {} (at most 4 GiB of names and 2^31 entries)", path.display())]
    TooLarge { path: PathBuf },
    /// A NUL byte: a binary file (compressed, UTF-16, a capture), not a list.
    #[error("{}: not a text list: NUL byte at byte offset {offset} (binary, compressed or UTF-16 data?)", path.display())]
    Binary { path: PathBuf, offset: usize },
    /// Lines were there, none of them usable.
    #[error("{}: no usable entry: all {skipped} lines rejected (first: {first})", path.display())]
    NothingUsable {
        path: PathBuf,
        skipped: usize,
        first: String,
    },
}

/// Whether a list was loaded as a block list or an allow list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListKind {
    Block,
    Allow,
}

/// What was loaded from one list file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListInfo {
    /// File stem (`urlhaus-filter-hosts` for `.../urlhaus-filter-hosts.txt`).
    pub name: String,
    /// Path given to `load` (empty for lists added from text).
    pub path: PathBuf,
    pub kind: ListKind,
    /// Distinct names this list contributed, of either kind (a name also in
    /// an earlier list counts here but is attributed to the earlier list).
    pub entries: usize,
    /// How many of `entries` are allow entries (all of them for an allow
    /// list; exception lines such as `@@||d^` in a block list).
    pub allow_entries: usize,
    /// Names repeated within this list.
    pub duplicates: usize,
    /// Lines rejected (per name on multi-name hosts/dnsmasq lines).
    pub skipped: usize,
}

/// A blocked name: the matching entry and the list it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit<'a> {
    /// The matched entry, lower-case presentation form without trailing dot.
    pub domain: &'a str,
    /// Name of the list (file stem) the entry was first loaded from.
    pub list: &'a str,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    start: u32,
    list: u16,
    len: u8,
    /// Label count | `ALLOW_BIT`.
    meta: u8,
}

impl Entry {
    fn labels(&self) -> usize {
        (self.meta & !ALLOW_BIT) as usize
    }
    fn is_allow(&self) -> bool {
        self.meta & ALLOW_BIT != 0
    }
}

/// Open addressing, linear probing. A slot is `tag << 32 | (index + 1)`,
/// 0 = empty; `tag` is the high half of the suffix hash.
#[derive(Clone, Debug, Default)]
struct Table {
    slots: Box<[u64]>,
    shift: u32,
}

impl Table {
    fn with_bits(bits: u32) -> Self {
        Table {
            slots: vec![EMPTY; 1 << bits].into_boxed_slice(),
            shift: 64 - bits,
        }
    }

    #[inline]
    fn home(&self, hash: u64) -> usize {
        (hash.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize
    }

    #[inline]
    fn tag(hash: u64) -> u64 {
        hash >> 32
    }

    /// Every entry index stored under a hash with `hash`'s tag, in probe order.
    #[inline]
    fn candidates(&self, hash: u64) -> impl Iterator<Item = usize> + '_ {
        let mask = self.slots.len().wrapping_sub(1);
        let tag = Self::tag(hash);
        let mut i = if self.slots.is_empty() {
            0
        } else {
            self.home(hash)
        };
        let mut done = self.slots.is_empty();
        std::iter::from_fn(move || {
            while !done {
                let s = self.slots[i];
                if s == EMPTY {
                    done = true;
                    return None;
                }
                i = (i + 1) & mask;
                if s >> 32 == tag {
                    return Some((s as u32 - 1) as usize);
                }
            }
            None
        })
    }

    fn insert(&mut self, hash: u64, index: usize) {
        let mask = self.slots.len() - 1;
        let mut i = self.home(hash);
        while self.slots[i] != EMPTY {
            i = (i + 1) & mask;
        }
        self.slots[i] = Self::tag(hash) << 32 | (index as u64 + 1);
    }
}

/// The loaded lists: `Send + Sync`, read-only after loading.
#[derive(Clone)]
pub struct BlocklistSet {
    arena: String,
    entries: Vec<Entry>,
    table: Table,
    lists: Vec<ListInfo>,
    warnings: Vec<String>,
    block_len: usize,
    allow_len: usize,
    /// Most labels of any entry: longer suffixes of a query cannot match.
    max_labels: usize,
}

impl std::fmt::Debug for BlocklistSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlocklistSet")
            .field("len", &self.block_len)
            .field("allow_len", &self.allow_len)
            .field("lists", &self.lists)
            .finish_non_exhaustive()
    }
}

impl Default for BlocklistSet {
    fn default() -> Self {
        Self::empty()
    }
}

impl BlocklistSet {
    /// A set that matches nothing.
    pub fn empty() -> Self {
        BlocklistBuilder::new().build()
    }

    /// Load block lists and allow lists (list name = file stem). Formats are
    /// detected per line; unusable lines are skipped, counted and the first
    /// few kept as [`warnings`](Self::warnings). Errors: I/O problems,
    /// duplicate list names, binary data (a NUL byte), and a list with lines
    /// of which none is usable.
    pub fn load(block: &[PathBuf], allow: &[PathBuf]) -> Result<Self, BlocklistError> {
        let mut b = BlocklistBuilder::new();
        for p in block {
            b.add_file(p, ListKind::Block)?;
        }
        for p in allow {
            b.add_file(p, ListKind::Allow)?;
        }
        Ok(b.build())
    }

    /// Most specific blocked suffix of `qname`, unless an allow entry at
    /// least as specific matches (see the module docs). Does not allocate.
    pub fn lookup(&self, qname: &QName) -> Option<Hit<'_>> {
        if self.entries.is_empty() {
            return None;
        }
        let mut block: Option<(usize, &Entry)> = None;
        let mut allow_labels = 0usize;
        for (n, hash) in qname.suffix_hashes().take(self.max_labels) {
            for idx in self.table.candidates(hash) {
                let e = &self.entries[idx];
                if self.entry_matches(e, qname, n) {
                    if e.is_allow() {
                        allow_labels = n;
                    } else {
                        block = Some((n, e));
                    }
                }
            }
        }
        match block {
            Some((n, e)) if n > allow_labels => Some(Hit {
                domain: self.text(e),
                list: &self.lists[e.list as usize].name,
            }),
            _ => None,
        }
    }

    /// True when `qname` is blocked (`lookup(qname).is_some()`).
    pub fn is_blocked(&self, qname: &QName) -> bool {
        self.lookup(qname).is_some()
    }

    /// Distinct block entries.
    pub fn len(&self) -> usize {
        self.block_len
    }

    /// Distinct allow entries.
    pub fn allow_len(&self) -> usize {
        self.allow_len
    }

    /// No block entries (so no lookup can hit, whatever the allow entries).
    pub fn is_empty(&self) -> bool {
        self.block_len == 0
    }

    /// The loaded lists, block lists first, in the order given.
    pub fn lists(&self) -> &[ListInfo] {
        &self.lists
    }

    /// The first few skipped lines of each list, as `file:line: reason: "text"`,
    /// plus a count line per list with more.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Block entries (lower-case, no trailing dot), in load order.
    pub fn domains(&self) -> impl Iterator<Item = &str> + '_ {
        self.entries
            .iter()
            .filter(|e| !e.is_allow())
            .map(|e| self.text(e))
    }

    /// Allow entries, in load order.
    pub fn allowed_domains(&self) -> impl Iterator<Item = &str> + '_ {
        self.entries
            .iter()
            .filter(|e| e.is_allow())
            .map(|e| self.text(e))
    }

    fn text(&self, e: &Entry) -> &str {
        let start = e.start as usize;
        &self.arena[start..start + e.len as usize]
    }

    /// The last `n` labels of `qname` equal the entry, ignoring ASCII case.
    #[inline]
    fn entry_matches(&self, e: &Entry, qname: &QName, n: usize) -> bool {
        if e.labels() != n {
            return false;
        }
        let mut rest = self.text(e).as_bytes();
        for label in qname.labels().skip(qname.label_count() - n) {
            let (head, tail) = match rest.iter().position(|&b| b == b'.') {
                Some(dot) => (&rest[..dot], &rest[dot + 1..]),
                None => (rest, &rest[rest.len()..]),
            };
            if !head.eq_ignore_ascii_case(label) {
                return false;
            }
            rest = tail;
        }
        rest.is_empty()
    }
}

/// Builds a [`BlocklistSet`] from files or text. `BlocklistSet::load` is
/// this with one `add_file` per path.
pub struct BlocklistBuilder {
    set: BlocklistSet,
    /// Hash of each entry (for growing the table).
    hashes: Vec<u64>,
    /// Last list that counted each entry (per-list distinct counts).
    last_seen: Vec<u16>,
}

impl Default for BlocklistBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BlocklistBuilder {
    pub fn new() -> Self {
        BlocklistBuilder {
            set: BlocklistSet {
                arena: String::new(),
                entries: Vec::new(),
                table: Table::with_bits(4),
                lists: Vec::new(),
                warnings: Vec::new(),
                block_len: 0,
                allow_len: 0,
                max_labels: 0,
            },
            hashes: Vec::new(),
            last_seen: Vec::new(),
        }
    }

    /// Read and add one list file; its name is the file stem.
    pub fn add_file(&mut self, path: &Path, kind: ListKind) -> Result<&ListInfo, BlocklistError> {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.check_name(&name, path)?;
        let data = std::fs::read(path).map_err(|source| BlocklistError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        self.add_bytes(&name, path, &data, kind)
    }

    /// Add a list from text (tests, embedded lists); `name` is its list name.
    pub fn add_text(
        &mut self,
        name: &str,
        text: &str,
        kind: ListKind,
    ) -> Result<&ListInfo, BlocklistError> {
        self.add_bytes(name, Path::new(""), text.as_bytes(), kind)
    }

    fn check_name(&self, name: &str, path: &Path) -> Result<(), BlocklistError> {
        match self.set.lists.iter().find(|l| l.name == name) {
            Some(prev) => Err(BlocklistError::DuplicateName {
                name: name.to_string(),
                first: prev.path.clone(),
                second: path.to_path_buf(),
            }),
            None => Ok(()),
        }
    }

    fn add_bytes(
        &mut self,
        name: &str,
        path: &Path,
        data: &[u8],
        kind: ListKind,
    ) -> Result<&ListInfo, BlocklistError> {
        self.check_name(name, path)?;
        if let Some(offset) = data.iter().position(|&b| b == 0) {
            return Err(BlocklistError::Binary {
                path: path.to_path_buf(),
                offset,
            });
        }
        let list = self.set.lists.len();
        if list >= u16::MAX as usize {
            return Err(BlocklistError::TooManyLists {
                path: path.to_path_buf(),
            });
        }
        self.set.lists.push(ListInfo {
            name: name.to_string(),
            path: path.to_path_buf(),
            kind,
            entries: 0,
            allow_entries: 0,
            duplicates: 0,
            skipped: 0,
        });
        let shown_name = if path.as_os_str().is_empty() {
            name.to_string()
        } else {
            path.display().to_string()
        };
        let mut parser = LineParser::new();
        let mut info = Counts::default();
        let mut warnings = Vec::new();
        let mut too_large = false;
        for (lineno, line) in data.split(|&b| b == b'\n').enumerate() {
            parser.parse_line(line, &mut |item| {
                let (raw, allow) = match item {
                    Item::Name { raw, allow } => (raw, allow || kind == ListKind::Allow),
                    Item::Reject(r) => {
                        return info.reject(&mut warnings, &shown_name, lineno + 1, r, line);
                    }
                };
                match self.insert(raw, allow, list as u16) {
                    Ok(Inserted::New) | Ok(Inserted::Existing) => {
                        info.entries += 1;
                        info.allow_entries += allow as usize;
                    }
                    Ok(Inserted::Duplicate) => info.duplicates += 1,
                    Err(InsertError::Reject(r)) => {
                        info.reject(&mut warnings, &shown_name, lineno + 1, r, line)
                    }
                    Err(InsertError::TooLarge) => too_large = true,
                }
            });
            if too_large {
                return Err(BlocklistError::TooLarge {
                    path: path.to_path_buf(),
                });
            }
        }
        if info.entries + info.duplicates == 0 && info.skipped > 0 {
            return Err(BlocklistError::NothingUsable {
                path: path.to_path_buf(),
                skipped: info.skipped,
                first: warnings.first().cloned().unwrap_or_default(),
            });
        }
        if info.skipped > WARNINGS_PER_LIST {
            warnings.push(format!(
                "{shown_name}: {} more skipped lines not shown",
                info.skipped - WARNINGS_PER_LIST
            ));
        }
        self.set.warnings.append(&mut warnings);
        let li = &mut self.set.lists[list];
        li.entries = info.entries;
        li.allow_entries = info.allow_entries;
        li.duplicates = info.duplicates;
        li.skipped = info.skipped;
        Ok(li)
    }

    fn insert(&mut self, raw: &[u8], allow: bool, list: u16) -> Result<Inserted, InsertError> {
        let set = &mut self.set;
        let start = set.arena.len();
        let norm = parse::normalize(raw, &mut set.arena).map_err(InsertError::Reject)?;
        let text_len = set.arena.len() - start;
        // Same name and kind already stored?
        let meta = norm.labels | if allow { ALLOW_BIT } else { 0 };
        for idx in set.table.candidates(norm.hash) {
            let e = set.entries[idx];
            let s = e.start as usize;
            if e.meta == meta
                && set.arena.as_bytes()[s..s + e.len as usize] == set.arena.as_bytes()[start..]
            {
                set.arena.truncate(start);
                if self.last_seen[idx] == list {
                    return Ok(Inserted::Duplicate);
                }
                self.last_seen[idx] = list;
                return Ok(Inserted::Existing);
            }
        }
        if set.arena.len() > u32::MAX as usize || set.entries.len() >= (i32::MAX as usize) {
            return Err(InsertError::TooLarge);
        }
        let index = set.entries.len();
        self.push_entry(
            norm.hash,
            Entry {
                start: start as u32,
                list,
                len: text_len as u8,
                meta,
            },
        );
        self.last_seen.push(list);
        let set = &mut self.set;
        if allow {
            set.allow_len += 1;
        } else {
            set.block_len += 1;
        }
        set.max_labels = set.max_labels.max(norm.labels as usize);
        debug_assert_eq!(index + 1, set.entries.len());
        Ok(Inserted::New)
    }

    /// Store an entry under `hash`, growing the table to keep the load
    /// factor at most 5/8.
    fn push_entry(&mut self, hash: u64, e: Entry) {
        let set = &mut self.set;
        let index = set.entries.len();
        set.entries.push(e);
        self.hashes.push(hash);
        if (index + 1) * 8 > set.table.slots.len() * 5 {
            let bits = 64 - set.table.shift + 1;
            let mut table = Table::with_bits(bits);
            for (i, &h) in self.hashes[..index].iter().enumerate() {
                table.insert(h, i);
            }
            set.table = table;
        }
        set.table.insert(hash, index);
    }

    /// Finish; the builder's growth bookkeeping is dropped.
    pub fn build(self) -> BlocklistSet {
        let mut set = self.set;
        set.arena.shrink_to_fit();
        set.entries.shrink_to_fit();
        set
    }
}

enum Inserted {
    New,
    /// Already stored from an earlier list.
    Existing,
    /// Already seen in this list.
    Duplicate,
}

enum InsertError {
    Reject(Reject),
    TooLarge,
}

#[derive(Default)]
struct Counts {
    entries: usize,
    allow_entries: usize,
    duplicates: usize,
    skipped: usize,
}

impl Counts {
    fn reject(
        &mut self,
        warnings: &mut Vec<String>,
        file: &str,
        lineno: usize,
        r: Reject,
        line: &[u8],
    ) {
        self.skipped += 1;
        if self.skipped <= WARNINGS_PER_LIST {
            let text = String::from_utf8_lossy(line);
            let text = text.trim_end();
            let mut shown: String = text.chars().take(80).collect();
            if shown.len() < text.len() {
                shown.push('…');
            }
            let mut w = String::new();
            let _ = write!(w, "{file}:{lineno}: {r}: {shown:?}");
            warnings.push(w);
        }
    }
}

#[cfg(test)]
mod tests;
