//! Alerts: the `dnsmonitor.alert/1` record (an outside contract, documented
//! in README.md) and the lifecycle that turns per-window findings into
//! raised / updated / resolved states, one episode per (kind, key).

use serde::{Deserialize, Serialize};

use crate::detect::{Key, Kind, Severity};
use crate::time::rfc3339;

pub mod lifecycle;

pub use lifecycle::{AlertLifecycle, LifecyclePolicy, Transition};

/// Schema name written in every alert line.
pub const SCHEMA: &str = "dnsmonitor.alert/1";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Raised,
    Updated,
    Resolved,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Raised => "raised",
            State::Updated => "updated",
            State::Resolved => "resolved",
        }
    }
}

/// One alert state change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub kind: Kind,
    pub severity: Severity,
    pub state: State,
    pub key: Key,
    /// Window end at which this state was reached (µs since the epoch).
    pub event_time_us: i64,
    pub window_start_us: i64,
    pub observed: f64,
    pub threshold: f64,
    pub unit: Box<str>,
    /// JSON object text (kept as text so the record crosses workers cheaply).
    pub evidence: Box<str>,
}

/// Stable alert id per (kind, key): 16 hex digits of a fixed 64-bit hash of
/// the kind and the key's JSON, the same on every run and machine.
pub fn alert_id(kind: Kind, key: &Key) -> String {
    let text = format!("{}|{}", kind.as_str(), key.to_json());
    let mut h = crate::sketch::fnv1a(text.as_bytes());
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    format!("{h:016x}")
}

fn num(v: f64) -> serde_json::Value {
    // Integers print without a fraction; others keep 3 decimals for stable output.
    if v.fract() == 0.0 && v.abs() < 1e15 {
        serde_json::Value::from(v as i64)
    } else {
        serde_json::Number::from_f64((v * 1000.0).round() / 1000.0)
            .map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

impl Alert {
    /// Add a field to the evidence object (e.g. capture loss seen by the sink).
    pub fn add_evidence(&mut self, key: &str, value: serde_json::Value) {
        let mut v: serde_json::Value = serde_json::from_str(&self.evidence)
            .unwrap_or_else(|_| serde_json::Value::Object(Default::default()));
        if let Some(o) = v.as_object_mut() {
            o.insert(key.to_string(), value);
        }
        self.evidence = v.to_string().into();
    }

    /// Sort key making output independent of worker count and scheduling.
    pub fn order_key(&self) -> (i64, Kind, &Key, State) {
        (self.event_time_us, self.kind, &self.key, self.state)
    }

    /// The alert as one JSON line (no trailing newline), fields in schema order.
    pub fn to_json_line(&self) -> String {
        let evidence: serde_json::Value = serde_json::from_str(&self.evidence)
            .unwrap_or_else(|_| serde_json::Value::Object(Default::default()));
        let mut m = serde_json::Map::new();
        m.insert("schema".into(), SCHEMA.into());
        m.insert("id".into(), alert_id(self.kind, &self.key).into());
        m.insert("kind".into(), self.kind.as_str().into());
        m.insert("severity".into(), self.severity.as_str().into());
        m.insert("state".into(), self.state.as_str().into());
        m.insert("key".into(), self.key.to_json());
        m.insert("event_time".into(), rfc3339(self.event_time_us).into());
        m.insert(
            "window".into(),
            serde_json::json!({ "start": rfc3339(self.window_start_us), "end": rfc3339(self.event_time_us) }),
        );
        m.insert("observed".into(), num(self.observed));
        m.insert("threshold".into(), num(self.threshold));
        m.insert("unit".into(), (*self.unit).into());
        m.insert("evidence".into(), evidence);
        serde_json::Value::Object(m).to_string()
    }
}
