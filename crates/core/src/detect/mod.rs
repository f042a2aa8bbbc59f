//! Detectors: what is suspicious, kept apart from how it is computed in
//! parallel. Each detector is one module with two pure halves:
//! - `observe` runs where a message is decoded (map side): it picks the key
//!   (client, domain, ...) and adds counts to a `Tally` for the message's pane;
//! - `evaluate` runs where the key's panes meet (reduce side): given the
//!   window's summed `Tally` it returns a `Finding` or nothing.
//!
//! The dataflow sums tallies per (detector, key, pane) and drives the alert
//! lifecycle; detectors never see timely, a clock or another key.
//! Adding a detector = one module here + one line in `registry.rs`.

use std::cell::Cell;
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::dns::DnsMessage;
use crate::packet::Payload;
use crate::sketch::distinct::Distinct;

pub mod amplification;
pub mod blocklist_hit;
pub mod client_flood;
pub mod dga;
pub mod newly_observed;
pub mod nxdomain_flood;
pub mod random_subdomain;
pub mod rate_anomaly;
pub mod registry;
pub mod servfail_flood;
pub mod spec;
pub mod spoofed_flood;
pub mod subnet_flood;
#[cfg(test)]
pub(crate) mod test_support;
pub mod tunneling;
pub mod unsolicited_response;

pub use crate::dns::ShortStr;
pub use registry::{DetectorsSpec, Kind, build_detectors};

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth a look, not an attack by itself (`newly_observed`).
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// What an alert is about. Serialised as the alert's `key` object with the
/// field names of the schema (`client`, `subnet`, `domain`, `victim`,
/// `server`). Domain strings are already in escaped presentation form.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Key {
    Client(IpAddr),
    ClientDomain(IpAddr, Box<str>),
    /// Network address and prefix length (IPv4 /24, IPv6 /64 by default).
    Subnet(IpAddr, u8),
    /// A registered domain (public suffix list aware).
    Domain(Box<str>),
    /// Destination of responses (reflection / amplification target).
    Victim(IpAddr),
    /// Destination of queries (the DNS server under load).
    Server(IpAddr),
}

impl Key {
    /// The schema's `key` object.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Key::Client(c) => json!({ "client": c.to_string() }),
            Key::ClientDomain(c, d) => json!({ "client": c.to_string(), "domain": d }),
            Key::Subnet(n, p) => json!({ "subnet": format!("{n}/{p}") }),
            Key::Domain(d) => json!({ "domain": d }),
            Key::Victim(v) => json!({ "victim": v.to_string() }),
            Key::Server(s) => json!({ "server": s.to_string() }),
        }
    }

    /// The subnet of `ip`: IPv4 masked to `v4_prefix` bits, IPv6 to `v6_prefix`.
    pub fn subnet_of(ip: IpAddr, v4_prefix: u8, v6_prefix: u8) -> Key {
        KeyRef::subnet_of(ip, v4_prefix, v6_prefix).to_key()
    }
}

impl KeyRef<'static> {
    /// See `Key::subnet_of`.
    pub fn subnet_of(ip: IpAddr, v4_prefix: u8, v6_prefix: u8) -> KeyRef<'static> {
        match ip {
            IpAddr::V4(a) => {
                let p = v4_prefix.min(32);
                let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
                KeyRef::Subnet(IpAddr::V4((u32::from(a) & mask).into()), p)
            }
            IpAddr::V6(a) => {
                let p = v6_prefix.min(128);
                let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
                KeyRef::Subnet(IpAddr::V6((u128::from(a) & mask).into()), p)
            }
        }
    }
}

/// A `Key` borrowed: what `observe` looks its tally up by, so finding an
/// existing tally allocates nothing (a domain string is copied only for a
/// new key). Hashes and compares like the `Key` it stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyRef<'a> {
    Client(IpAddr),
    ClientDomain(IpAddr, &'a str),
    Subnet(IpAddr, u8),
    Domain(&'a str),
    Victim(IpAddr),
    Server(IpAddr),
}

impl KeyRef<'_> {
    pub fn to_key(self) -> Key {
        match self {
            KeyRef::Client(a) => Key::Client(a),
            KeyRef::ClientDomain(a, d) => Key::ClientDomain(a, d.into()),
            KeyRef::Subnet(a, p) => Key::Subnet(a, p),
            KeyRef::Domain(d) => Key::Domain(d.into()),
            KeyRef::Victim(a) => Key::Victim(a),
            KeyRef::Server(a) => Key::Server(a),
        }
    }
}

impl Key {
    pub fn as_key_ref(&self) -> KeyRef<'_> {
        match self {
            Key::Client(a) => KeyRef::Client(*a),
            Key::ClientDomain(a, d) => KeyRef::ClientDomain(*a, d),
            Key::Subnet(a, p) => KeyRef::Subnet(*a, *p),
            Key::Domain(d) => KeyRef::Domain(d),
            Key::Victim(a) => KeyRef::Victim(*a),
            Key::Server(a) => KeyRef::Server(*a),
        }
    }
}

/// Most sample names a tally carries. The samples kept are those with the
/// smallest name hash, so merging in any order, on any number of workers,
/// keeps the same ones, and the map side can reject a name by comparing one
/// `u64` without formatting it.
pub const MAX_SAMPLES: usize = 3;

/// Counts one detector keeps for one key in one pane; summed over the panes
/// of a window. Each detector uses the fields it needs and documents which.
/// Every field merges associatively and commutatively (any worker count, any
/// arrival order, same result). The plain counters are also kept as a
/// running sum per key (`add_counts`/`sub_counts`); samples, the note and
/// the sketch are merged only when a detector asks for the full view.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Tally {
    pub queries: u64,
    pub responses: u64,
    pub nxdomain: u64,
    pub servfail: u64,
    /// Bytes of queries (DNS message sizes).
    pub bytes: u64,
    /// Bytes of responses.
    pub response_bytes: u64,
    /// Responses for amplifying query types (ANY, DNSKEY, RRSIG, TXT, ...).
    pub amplifying: u64,
    /// Responses at or above the detector's large-response size.
    pub large: u64,
    /// Responses with no matching query seen.
    pub unsolicited: u64,
    /// Names with a long or high-entropy label (tunnelling signal).
    pub long_labels: u64,
    /// Bytes carried in names below the registered domain.
    pub label_bytes: u64,
    /// Sum of per-name label entropy, in thousandths of a bit per byte.
    pub entropy_milli: u64,
    /// Queries for TXT, NULL and similar payload-carrying types.
    pub txt_null: u64,
    /// Distinct items (names or sources), when the detector counts them.
    pub distinct: Option<Distinct>,
    /// Up to `MAX_SAMPLES` distinct query names with the smallest name hash:
    /// `(hash, name)` (a `SampleName`: wire form or text), sorted by hash,
    /// then presentation form.
    pub samples: Samples,
    /// A detector-defined label (e.g. the blocklist name); smallest kept.
    pub note: Option<Box<str>>,
}

impl Tally {
    /// `merge`, taking `other`'s names and sets instead of copying them
    /// (the reduce side merges the tallies it is sent).
    pub fn merge_owned(&mut self, other: Tally) {
        self.add_counts(&other);
        let Tally {
            distinct,
            samples,
            note,
            ..
        } = other;
        if let Some(d) = distinct {
            match &mut self.distinct {
                Some(mine) => mine.merge(&d),
                None => {
                    let mut d = d;
                    d.settle();
                    self.distinct = Some(d);
                }
            }
        }
        for (h, s) in samples.into_items() {
            self.samples.offer_owned(h, s);
        }
        if let Some(n) = note
            && self.note.as_ref().is_none_or(|m| n < *m)
        {
            self.note = Some(n);
        }
    }

    pub fn merge(&mut self, other: &Tally) {
        self.add_counts(other);
        if let Some(d) = &other.distinct {
            match &mut self.distinct {
                Some(mine) => mine.merge(d),
                None => {
                    let mut d = d.clone();
                    d.settle();
                    self.distinct = Some(d);
                }
            }
        }
        for (h, s) in other.samples.iter() {
            self.samples
                .offer(*h, |stored| s.cmp_to(stored), || s.clone());
        }
        if let Some(n) = &other.note
            && self.note.as_ref().is_none_or(|m| n < m)
        {
            self.note = Some(n.clone());
        }
    }

    /// The plain counters, in one fixed order (see `counters_mut`).
    pub fn counters(&self) -> [u64; 13] {
        [
            self.queries,
            self.responses,
            self.nxdomain,
            self.servfail,
            self.bytes,
            self.response_bytes,
            self.amplifying,
            self.large,
            self.unsolicited,
            self.long_labels,
            self.label_bytes,
            self.entropy_milli,
            self.txt_null,
        ]
    }

    /// The plain counters, in the order of `counters`.
    pub fn counters_mut(&mut self) -> [&mut u64; 13] {
        [
            &mut self.queries,
            &mut self.responses,
            &mut self.nxdomain,
            &mut self.servfail,
            &mut self.bytes,
            &mut self.response_bytes,
            &mut self.amplifying,
            &mut self.large,
            &mut self.unsolicited,
            &mut self.long_labels,
            &mut self.label_bytes,
            &mut self.entropy_milli,
            &mut self.txt_null,
        ]
    }

    /// Add only the counters (not samples, note or sketch) of `other`.
    pub fn add_counts(&mut self, o: &Tally) {
        for (mine, theirs) in self.counters_mut().into_iter().zip(o.counters()) {
            *mine += theirs;
        }
    }

    /// Remove counters added with `add_counts`.
    pub fn sub_counts(&mut self, o: &Tally) {
        for (mine, theirs) in self.counters_mut().into_iter().zip(o.counters()) {
            *mine -= theirs;
        }
    }

    /// The distinct-count sketch, created on first use.
    pub fn distinct_mut(&mut self) -> &mut Distinct {
        self.distinct.get_or_insert_with(Default::default)
    }

    /// Settle the distinct set (`Distinct::settle`): for a tally that is
    /// kept rather than merged into another.
    pub fn settle(&mut self) {
        if let Some(d) = &mut self.distinct {
            d.settle();
        }
    }

    /// Estimated distinct items (0 without a sketch).
    pub fn distinct_count(&self) -> f64 {
        self.distinct.as_ref().map_or(0.0, |d| d.clone().count())
    }

    /// Keep the name if its hash is among the `MAX_SAMPLES` smallest
    /// (copied only when kept).
    pub fn offer_sample(&mut self, hash: u64, name: &str) {
        self.samples.offer(
            hash,
            |stored| stored.cmp_text(name.as_bytes()).reverse(),
            || SampleName::text(name),
        );
    }

    /// Offer a query name (hash = its case-insensitive name hash). Kept in
    /// wire form, copied only when kept and rendered only for evidence
    /// (`sample_names`): most tallies never become an alert.
    pub fn offer_qname(&mut self, qname: &crate::dns::QName) {
        let wire = qname.wire();
        self.samples.offer(
            qname.hash(),
            |stored| stored.cmp_wire(wire).reverse(),
            || SampleName::wire(wire),
        );
    }

    /// The sample names (escaped presentation form), for evidence.
    pub fn sample_names(&self) -> Vec<String> {
        self.samples.iter().map(|(_, s)| s.render()).collect()
    }
}

/// A sample name as a tally keeps it: a query name in wire form (labels
/// length-prefixed, case kept; rendered escaped only for evidence), or
/// text a detector built (a registered domain, already escaped). One boxed
/// slice, its first byte saying which (`WIRE` or `TEXT`): 16 bytes in a
/// tally, which every map-side record carries three of.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleName(Box<[u8]>);

const WIRE: u8 = 0;
const TEXT: u8 = 1;

impl SampleName {
    fn tagged(tag: u8, bytes: &[u8]) -> SampleName {
        let mut v = Vec::with_capacity(bytes.len() + 1);
        v.push(tag);
        v.extend_from_slice(bytes);
        SampleName(v.into_boxed_slice())
    }

    /// A query name, by `QName::wire`.
    pub fn wire(wire: &[u8]) -> SampleName {
        SampleName::tagged(WIRE, wire)
    }

    pub fn text(text: &str) -> SampleName {
        SampleName::tagged(TEXT, text.as_bytes())
    }

    /// The bytes as packed (`cold`): the tag, then the name.
    pub fn packed(&self) -> &[u8] {
        &self.0
    }

    /// What `packed` gave.
    pub fn from_packed(bytes: &[u8]) -> SampleName {
        SampleName(bytes.into())
    }

    /// The wire form, for a query name.
    fn as_wire(&self) -> Option<&[u8]> {
        match self.0.split_first() {
            Some((&WIRE, w)) => Some(w),
            _ => None,
        }
    }

    /// The text's bytes (none for the default, empty name).
    fn text_bytes(&self) -> &[u8] {
        self.0.get(1..).unwrap_or_default()
    }

    /// The presentation form (as `QName`'s `Display`, escaped).
    pub fn render(&self) -> String {
        match self.as_wire() {
            Some(w) => crate::dns::QName::from_wire(w).to_presentation(),
            // Built from a `str` (lossy only for bytes a peer sent).
            None => String::from_utf8_lossy(self.text_bytes()).into_owned(),
        }
    }

    /// The order of samples with equal hashes: their presentation forms'.
    /// Two query names compare by their wire forms, which orders them as
    /// their presentation forms for the names that share a hash in
    /// practice (the same name in another case: equal lengths and bytes
    /// but for letters, so the first difference is the same letter pair in
    /// both forms).
    pub fn cmp_to(&self, other: &SampleName) -> std::cmp::Ordering {
        match other.as_wire() {
            Some(w) => self.cmp_wire(w),
            None => self.cmp_text(other.text_bytes()),
        }
    }

    /// `cmp_to` a query name in wire form.
    fn cmp_wire(&self, wire: &[u8]) -> std::cmp::Ordering {
        match self.as_wire() {
            Some(w) => w.cmp(wire),
            // Mixed kinds (no detector offers both): by the rendered text.
            None => self.text_bytes().cmp(
                crate::dns::QName::from_wire(wire)
                    .to_presentation()
                    .as_bytes(),
            ),
        }
    }

    /// `cmp_to` a name given as text (as `str` orders: by its bytes).
    fn cmp_text(&self, text: &[u8]) -> std::cmp::Ordering {
        match self.as_wire() {
            None => self.text_bytes().cmp(text),
            Some(_) => self.render().as_bytes().cmp(text),
        }
    }
}

/// Does a pane count reach its share of a window threshold? `per_sec` is
/// the threshold as a rate over the window, `slide_secs` a pane's length:
/// a window total of `per_sec * window_secs` needs one pane of at least
/// `per_sec * slide_secs`. A hair of slack keeps float rounding on the
/// safe side (a pane a little too eager costs nothing but state).
pub fn pane_share(count: u64, per_sec: f64, slide_secs: f64) -> bool {
    count as f64 >= per_sec * slide_secs * (1.0 - 1e-9)
}

/// The same for a window count (not a rate): a total of `min` over `panes`
/// panes needs one pane of at least `min / panes`.
pub fn pane_share_of_count(count: u64, min: u64, panes: u64) -> bool {
    count.saturating_mul(panes) >= min
}

/// The `MAX_SAMPLES` smallest `(hash, name)` pairs offered, sorted, held
/// inline (no allocation but the names kept).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Samples {
    len: u8,
    items: [(u64, SampleName); MAX_SAMPLES],
}

impl Samples {
    pub fn iter(&self) -> std::slice::Iter<'_, (u64, SampleName)> {
        self.items[..self.len as usize].iter()
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Append `(hash, name)` known to sort after every item held (as
    /// `iter` gave them); ignored when full.
    pub(crate) fn push_sorted(&mut self, hash: u64, name: SampleName) {
        let n = self.len as usize;
        if n < MAX_SAMPLES {
            self.items[n] = (hash, name);
            self.len += 1;
        }
    }

    /// Offer `(hash, name)`: `cmp(stored)` orders the offered name against
    /// a stored one (only asked on equal hashes), `make` builds it when kept.
    pub fn offer(
        &mut self,
        hash: u64,
        cmp: impl Fn(&SampleName) -> std::cmp::Ordering,
        make: impl FnOnce() -> SampleName,
    ) {
        if let Some(pos) = self.position(hash, cmp) {
            self.insert_at(pos, hash, make());
        }
    }

    /// `offer` of a name already built.
    pub fn offer_owned(&mut self, hash: u64, name: SampleName) {
        if let Some(pos) = self.position(hash, |stored| name.cmp_to(stored)) {
            self.insert_at(pos, hash, name);
        }
    }

    /// The items, by value (`len` of them).
    pub fn into_items(self) -> impl Iterator<Item = (u64, SampleName)> {
        let n = self.len as usize;
        self.items.into_iter().take(n)
    }

    /// Where `(hash, name)` goes, `None` when it is held already or sorts
    /// after a full set.
    fn position(
        &self,
        hash: u64,
        cmp: impl Fn(&SampleName) -> std::cmp::Ordering,
    ) -> Option<usize> {
        use std::cmp::Ordering;
        let n = self.len as usize;
        if n >= MAX_SAMPLES && hash >= self.items[n - 1].0 {
            return None;
        }
        for (i, (h, s)) in self.items[..n].iter().enumerate() {
            match hash.cmp(h).then_with(|| cmp(s)) {
                Ordering::Equal => return None,
                Ordering::Less => return Some(i),
                Ordering::Greater => {}
            }
        }
        Some(n)
    }

    fn insert_at(&mut self, pos: usize, hash: u64, name: SampleName) {
        if (self.len as usize) < MAX_SAMPLES {
            self.len += 1;
        }
        let end = self.len as usize;
        self.items[pos..end].rotate_right(1);
        self.items[pos] = (hash, name);
    }
}

/// Where `observe` puts its counts: the map side's table for the message's
/// pane.
pub trait TallySink {
    fn tally(&mut self, key: KeyRef<'_>) -> &mut Tally;
}

/// A detector's verdict on one key for one window.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub severity: Severity,
    /// The measured value compared with the threshold (e.g. queries/s).
    pub observed: f64,
    /// The threshold of `severity`.
    pub threshold: f64,
    pub unit: &'static str,
    pub evidence: serde_json::Map<String, serde_json::Value>,
}

/// A learned baseline of a key's measured value: exponentially weighted
/// mean and mean absolute deviation, updated once per window while the key
/// is not in alarm (so an attack is not learned as normal).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Baseline {
    pub mean: f64,
    pub deviation: f64,
    /// Windows learned so far (detectors wait for a warm-up).
    pub windows: u64,
    /// The mean as it was, sampled every `HISTORY_EVERY` learned windows
    /// (from window `2 * HISTORY_EVERY` on, past the warm-up's partial
    /// windows), the last `HISTORY` samples (a ring; 0 = not yet sampled):
    /// the key's normal of a few minutes ago, which a slow ramp cannot drag
    /// along as it drags the EWMA.
    pub history: [f64; Baseline::HISTORY],
}

impl Baseline {
    /// Weight of a new window in the averages.
    pub const ALPHA: f64 = 0.05;
    /// Samples of the mean kept.
    pub const HISTORY: usize = 8;
    /// Learned windows between two samples (with 1 s slides, the history
    /// reaches 4 minutes back).
    pub const HISTORY_EVERY: u64 = 30;

    pub fn learn(&mut self, value: f64) {
        if self.windows == 0 {
            self.mean = value;
            self.deviation = 0.0;
        } else {
            let d = (value - self.mean).abs();
            self.mean += Self::ALPHA * (value - self.mean);
            self.deviation += Self::ALPHA * (d - self.deviation);
        }
        self.windows += 1;
        if self.windows >= 2 * Self::HISTORY_EVERY
            && self.windows.is_multiple_of(Self::HISTORY_EVERY)
        {
            let i = (self.windows / Self::HISTORY_EVERY) as usize % Self::HISTORY;
            self.history[i] = self.mean;
        }
    }

    /// The lowest sampled mean of the history (`None` before the first
    /// sample).
    pub fn history_low(&self) -> Option<f64> {
        self.history
            .iter()
            .copied()
            .filter(|m| *m > 0.0)
            .min_by(f64::total_cmp)
    }
}

/// What `evaluate` sees: the key's tally summed over the window (counters
/// only, unless `needs_full_view` asked for samples and the sketch too).
pub struct WindowView<'a> {
    pub tally: &'a Tally,
    pub window_secs: f64,
    /// The key's learned baseline before this window.
    pub baseline: Option<&'a Baseline>,
    /// The window's complete panes with data (full tallies), oldest first,
    /// each with its pane index; empty panes are absent. Complete means the
    /// frontier passed them: every worker's part is merged, so what a
    /// detector reads here is a function of the input alone. Empty for a
    /// detector with its own long window (`window_secs`): its panes are
    /// folded into buckets and kept packed.
    pub panes: &'a [(crate::time::Pane, Tally)],
    /// The pane the window ends at.
    pub end: crate::time::Pane,
    /// A pane's length in seconds.
    pub slide_secs: f64,
}

impl WindowView<'_> {
    /// The newest `n` panes of the window (ending at `end`) merged into one
    /// full tally (counters, samples, sketch), and their length in seconds.
    /// Panes without data count as empty. `n` is clamped to the window.
    pub fn recent(&self, n: u64) -> (Tally, f64) {
        let n = n.max(1);
        let first = self.end.saturating_sub(n - 1);
        let mut t = Tally::default();
        for (_, p) in self
            .panes
            .iter()
            .filter(|(p, _)| *p >= first && *p <= self.end)
        {
            t.merge(p);
        }
        let secs = (n as f64 * self.slide_secs).min(self.window_secs);
        (t, secs)
    }
}

/// One decoded message as detectors see it on the map side.
pub struct Observed<'a, 'b> {
    pub payload: &'a Payload<'b>,
    pub msg: &'a DnsMessage<'b>,
    /// For responses: `Some(true)` when no matching query was seen although
    /// queries to that server are visible, `Some(false)` when matched,
    /// `None` when it cannot be told (queries not visible, or a query).
    pub unsolicited: Option<bool>,
    /// Cache for `registered_labels`.
    pub(crate) registered: Cell<Option<Option<usize>>>,
    /// Cache for `registered_domain_str`.
    domain: std::cell::OnceCell<Option<ShortStr>>,
    /// Set by `newly_observed` when this response's registered domain is
    /// newly observed (the map side then reports the pair).
    pub newly_observed: Cell<bool>,
}

impl<'a, 'b> Observed<'a, 'b> {
    pub fn new(
        payload: &'a Payload<'b>,
        msg: &'a DnsMessage<'b>,
        unsolicited: Option<bool>,
    ) -> Self {
        Observed {
            payload,
            msg,
            unsolicited,
            registered: Cell::new(None),
            domain: std::cell::OnceCell::new(),
            newly_observed: Cell::new(false),
        }
    }

    /// Labels of the query name's registered domain (public suffix list:
    /// `a.b.example.co.uk` -> 3 for `example.co.uk`); `None` when there is no
    /// question or the name is itself a public suffix. Computed once.
    pub fn registered_labels(&self) -> Option<usize> {
        if let Some(v) = self.registered.get() {
            return v;
        }
        let v = self
            .msg
            .question
            .as_ref()
            .and_then(|q| crate::dns::name::registered_labels(&q.qname));
        self.registered.set(Some(v));
        v
    }

    /// The registered domain as a lower-case presentation string.
    pub fn registered_domain(&self) -> Option<Box<str>> {
        self.registered_domain_str().map(Into::into)
    }

    /// The same, borrowed: computed once per message, without allocating
    /// (unless the escaped name is longer than 255 bytes).
    pub fn registered_domain_str(&self) -> Option<&str> {
        self.domain
            .get_or_init(|| {
                let n = self.registered_labels()?;
                let q = self.msg.question.as_ref()?;
                Some(q.qname.suffix_lowercase_presentation(n))
            })
            .as_ref()
            .map(ShortStr::as_str)
    }
}

/// A detector: see the module docs for the two halves.
pub trait Detector: Send + Sync {
    fn kind(&self) -> Kind;
    /// Map side: add this message's counts under its key, if any.
    fn observe(&self, m: &Observed<'_, '_>, sink: &mut dyn TallySink);
    /// Reduce side, before `evaluate`: given the window's counters only,
    /// does this key need the full view (samples, note, distinct sketch)?
    /// Merging it costs a pass over the window's panes, so say yes only when
    /// the counters make an alert possible. Default: no.
    fn needs_full_view(&self, _counts: &Tally, _window_secs: f64) -> bool {
        false
    }
    /// Reduce side, when a pane is complete, for a key that holds no state
    /// yet: could a window holding this pane raise a finding? It must be a
    /// sound bound: when every pane of a window answers no, `evaluate` finds
    /// nothing for that window. Keys whose panes all answer no are kept as
    /// plain pane tallies and never evaluated (under a spoofed flood that is
    /// almost every key), so the cost of a window grows with the keys that
    /// matter. A detector that learns a baseline for every key must keep the
    /// default (always yes). Typical bound: a window total of at least
    /// `T * panes` needs one pane of at least `T` (see [`pane_share`]).
    fn pane_may_fire(&self, _pane: &Tally, _slide_secs: f64, _panes: u64) -> bool {
        true
    }
    /// A window of its own, in seconds, longer than the pipeline's (e.g.
    /// `dga` over minutes): its keys skip the cold store, get a slot from
    /// their first tally and hold their panes folded into at most
    /// `engine::keyed::LONG_BUCKETS` buckets. Default: the pipeline's
    /// window.
    fn window_secs(&self) -> Option<u64> {
        None
    }
    /// Reduce side: the verdict for one key on one window.
    fn evaluate(&self, key: &Key, w: &WindowView<'_>) -> Option<Finding>;
    /// The measured value `evaluate` compares (same unit as its findings);
    /// carried by `resolved` states and learned into the key's baseline.
    /// A key with no data measures 0.
    fn measure(&self, w: &WindowView<'_>) -> f64;
}

#[cfg(test)]
mod tally_tests {
    use super::*;
    use crate::sketch::distinct::Distinct;

    fn tally(seed: u64, names: &[&str], note: Option<&str>, distinct: &[u64]) -> Tally {
        let mut t = Tally {
            queries: seed,
            nxdomain: seed * 3,
            ..Tally::default()
        };
        for (i, n) in names.iter().enumerate() {
            t.offer_sample(seed.wrapping_mul(31).wrapping_add(i as u64) % 7, n);
        }
        t.note = note.map(Into::into);
        if !distinct.is_empty() {
            let mut d = Distinct::new();
            for h in distinct {
                d.insert(*h);
            }
            t.distinct = Some(d);
        }
        t
    }

    /// Merging by value (the reduce side) gives what merging a copy gives.
    /// Query names are kept in wire form but ordered, deduplicated and
    /// shown as their presentation forms were: case variants (one hash)
    /// both kept, capitals first, the same name once, escapes rendered;
    /// in any order of offers and merges.
    #[test]
    fn query_name_samples_order_and_render_as_presentation() {
        let name = |t: &str| {
            let mut q = crate::dns::QName::from_text(t).unwrap();
            q.seal();
            q
        };
        let names = [
            name("www.example.com"),
            name("WWW.example.com"),
            name("Www.example.com"),
            name("www.example.com"),
            name("a\\.b.example.com"),
        ];
        assert_eq!(names[0].hash(), names[1].hash());
        let mut expect = vec![
            "WWW.example.com",
            "Www.example.com",
            "www.example.com",
            "a\\.b.example.com",
        ];
        // The three smallest by (hash, presentation form).
        expect.sort_by_key(|t| (name(t).hash(), t.to_string()));
        expect.truncate(MAX_SAMPLES);
        for order in [[0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [2, 4, 0, 3, 1]] {
            let mut one = Tally::default();
            let (mut a, mut b) = (Tally::default(), Tally::default());
            for (k, &i) in order.iter().enumerate() {
                one.offer_qname(&names[i]);
                if k % 2 == 0 { &mut a } else { &mut b }.offer_qname(&names[i]);
            }
            assert_eq!(one.sample_names(), expect, "{order:?}");
            let mut by_ref = a.clone();
            by_ref.merge(&b);
            assert_eq!(by_ref.sample_names(), expect, "{order:?}");
            a.merge_owned(b);
            assert_eq!(a.sample_names(), expect, "{order:?}");
        }
    }

    #[test]
    fn merge_owned_equals_merge() {
        let cases = [
            (
                tally(1, &["a.example", "b.example"], Some("x"), &[1, 2]),
                tally(
                    2,
                    &["c.example", "a.example", "d.example"],
                    Some("w"),
                    &[2, 3],
                ),
            ),
            (
                tally(5, &[], None, &[]),
                tally(6, &["e.example"], Some("n"), &[9]),
            ),
            (
                tally(9, &["f.example", "g.example", "h.example"], Some("a"), &[]),
                tally(4, &["f.example"], None, &[]),
            ),
        ];
        for (a, b) in cases {
            let mut by_ref = a.clone();
            by_ref.merge(&b);
            let mut by_value = a;
            by_value.merge_owned(b);
            assert_eq!(
                serde_json::to_string(&by_ref).unwrap(),
                serde_json::to_string(&by_value).unwrap()
            );
        }
    }
}
