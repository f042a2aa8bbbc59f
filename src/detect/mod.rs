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

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::dns::DnsMessage;
use crate::packet::Payload;

pub mod blocklist_hit;
pub mod client_flood;
pub mod registry;

pub use registry::{DetectorsSpec, build_detectors};

/// Alert kinds (snake_case on the wire; also a bounded metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    BlocklistHit,
    ClientFlood,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::BlocklistHit, Kind::ClientFlood];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::BlocklistHit => "blocklist_hit",
            Kind::ClientFlood => "client_flood",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// What an alert is about. Serialised as the alert's `key` object with the
/// field names of the schema (`client`, `domain`, ...). Domain strings are
/// already in escaped presentation form.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Key {
    Client(IpAddr),
    ClientDomain(IpAddr, Box<str>),
}

impl Key {
    /// The schema's `key` object.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Key::Client(c) => json!({ "client": c.to_string() }),
            Key::ClientDomain(c, d) => json!({ "client": c.to_string(), "domain": d }),
        }
    }
}

/// Most sample names a tally carries. The samples kept are those with the
/// smallest name hash, so merging in any order, on any number of workers,
/// keeps the same ones, and the map side can reject a name by comparing one
/// `u64` without formatting it.
pub const MAX_SAMPLES: usize = 3;

/// Counts one detector keeps for one key in one pane; summed over the panes
/// of a window. Every field merges associatively and commutatively (any
/// worker count, any arrival order, same result).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub queries: u64,
    pub responses: u64,
    pub nxdomain: u64,
    pub servfail: u64,
    pub bytes: u64,
    /// Up to `MAX_SAMPLES` distinct query names with the smallest name hash:
    /// `(hash, escaped presentation form)`, sorted.
    pub samples: Vec<(u64, Box<str>)>,
    /// A detector-defined label (e.g. the blocklist name); smallest kept.
    pub note: Option<Box<str>>,
}

impl Tally {
    pub fn merge(&mut self, other: &Tally) {
        self.queries += other.queries;
        self.responses += other.responses;
        self.nxdomain += other.nxdomain;
        self.servfail += other.servfail;
        self.bytes += other.bytes;
        for (h, s) in &other.samples {
            self.offer_sample(*h, || s.clone());
        }
        if let Some(n) = &other.note
            && self.note.as_ref().is_none_or(|m| n < m)
        {
            self.note = Some(n.clone());
        }
    }

    /// Add only the counters (not samples or note) of `other`.
    pub fn add_counts(&mut self, other: &Tally) {
        self.queries += other.queries;
        self.responses += other.responses;
        self.nxdomain += other.nxdomain;
        self.servfail += other.servfail;
        self.bytes += other.bytes;
    }

    /// Remove counters added with `add_counts`.
    pub fn sub_counts(&mut self, other: &Tally) {
        self.queries -= other.queries;
        self.responses -= other.responses;
        self.nxdomain -= other.nxdomain;
        self.servfail -= other.servfail;
        self.bytes -= other.bytes;
    }

    /// Keep the name if its hash is among the `MAX_SAMPLES` smallest;
    /// `name` is only called when it is kept.
    pub fn offer_sample(&mut self, hash: u64, name: impl FnOnce() -> Box<str>) {
        if self.samples.len() >= MAX_SAMPLES && self.samples.last().is_some_and(|(h, _)| hash >= *h)
        {
            return;
        }
        let name = name();
        let item = (hash, name);
        match self.samples.binary_search(&item) {
            Ok(_) => {}
            Err(pos) => {
                self.samples.insert(pos, item);
                self.samples.truncate(MAX_SAMPLES);
            }
        }
    }

    /// Offer a query name (hash = its case-insensitive name hash).
    pub fn offer_qname(&mut self, qname: &crate::dns::QName) {
        self.offer_sample(qname.hash(), || qname.to_string().into_boxed_str());
    }

    /// The sample names, for evidence.
    pub fn sample_names(&self) -> Vec<&str> {
        self.samples.iter().map(|(_, s)| &**s).collect()
    }
}

/// Where `observe` puts its counts: the map side's table for the message's
/// pane.
pub trait TallySink {
    fn tally(&mut self, key: Key) -> &mut Tally;
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

/// What `evaluate` sees: the key's tally summed over the window.
pub struct WindowView<'a> {
    pub tally: &'a Tally,
    pub window_secs: f64,
}

/// One decoded message as detectors see it on the map side.
pub struct Observed<'a, 'b> {
    pub payload: &'a Payload<'b>,
    pub msg: &'a DnsMessage<'b>,
}

/// A detector: see the module docs for the two halves.
pub trait Detector: Send + Sync {
    fn kind(&self) -> Kind;
    /// Map side: add this message's counts under its key, if any.
    fn observe(&self, m: &Observed<'_, '_>, sink: &mut dyn TallySink);
    /// Reduce side: the verdict for one key on one window.
    fn evaluate(&self, key: &Key, w: &WindowView<'_>) -> Option<Finding>;
    /// The measured value `evaluate` compares (same unit as its findings);
    /// carried by `resolved` states. A key with no data measures 0.
    fn measure(&self, w: &WindowView<'_>) -> f64;
}
