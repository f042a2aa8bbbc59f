//! Alerts: the `dnsmonitor.alert/1` record (an outside contract, documented
//! in README.md) and the lifecycle that turns per-window findings into
//! raised / updated / resolved states, one episode per (kind, key).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::detect::{Key, Kind, Severity};
use crate::time::rfc3339;

pub mod lifecycle;
pub mod spec;

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
    /// Kind-specific counts, in the order the detector gave them (the
    /// `evidence` object of the schema); rendered with the alert only.
    #[serde(with = "evidence_wire")]
    pub evidence: Evidence,
}

/// An alert's evidence: a JSON object, its keys in insertion order.
pub type Evidence = Map<String, Value>;

/// How evidence crosses processes (a cluster's exchange, bincode, which
/// cannot read a `serde_json::Value` back: it is not self-describing): as a
/// tree of tagged values, exactly (floats are not printed and read). Within
/// a process alerts move as they are.
mod evidence_wire {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::Value;

    use super::Evidence;

    #[derive(Serialize, Deserialize)]
    enum Wire {
        Null,
        Bool(bool),
        U64(u64),
        I64(i64),
        F64(f64),
        Str(String),
        Array(Vec<Wire>),
        Object(Vec<(String, Wire)>),
    }

    fn object(o: &Evidence) -> Vec<(String, Wire)> {
        o.iter().map(|(k, v)| (k.clone(), to_wire(v))).collect()
    }

    fn to_wire(v: &Value) -> Wire {
        match v {
            Value::Null => Wire::Null,
            Value::Bool(b) => Wire::Bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => Wire::U64(u),
                (None, Some(i), _) => Wire::I64(i),
                (None, None, f) => Wire::F64(f.unwrap_or(f64::NAN)),
            },
            Value::String(s) => Wire::Str(s.clone()),
            Value::Array(a) => Wire::Array(a.iter().map(to_wire).collect()),
            Value::Object(o) => Wire::Object(object(o)),
        }
    }

    fn from_wire(w: Wire) -> Value {
        match w {
            Wire::Null => Value::Null,
            Wire::Bool(b) => b.into(),
            Wire::U64(u) => u.into(),
            Wire::I64(i) => i.into(),
            // Not finite only if it was not a number: null, as JSON has it.
            Wire::F64(f) => f.into(),
            Wire::Str(s) => s.into(),
            Wire::Array(a) => a.into_iter().map(from_wire).collect(),
            Wire::Object(o) => {
                Value::Object(o.into_iter().map(|(k, w)| (k, from_wire(w))).collect())
            }
        }
    }

    pub fn serialize<S: Serializer>(e: &Evidence, s: S) -> Result<S::Ok, S::Error> {
        object(e).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Evidence, D::Error> {
        let o = Vec::<(String, Wire)>::deserialize(d)?;
        Ok(o.into_iter().map(|(k, w)| (k, from_wire(w))).collect())
    }
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

fn num(v: f64) -> Value {
    // Integers print without a fraction; others keep 3 decimals for stable output.
    if v.fract() == 0.0 && v.abs() < 1e15 {
        Value::from(v as i64)
    } else {
        serde_json::Number::from_f64((v * 1000.0).round() / 1000.0)
            .map_or(Value::Null, Value::Number)
    }
}

impl Alert {
    /// Add a field to the evidence object (e.g. capture loss seen by the
    /// sink).
    pub fn add_evidence(&mut self, key: &str, value: Value) {
        self.evidence.insert(key.to_string(), value);
    }

    /// Sort key making output independent of worker count and scheduling.
    pub fn order_key(&self) -> (i64, Kind, &Key, State) {
        (self.event_time_us, self.kind, &self.key, self.state)
    }

    /// The alert as one JSON line (no trailing newline), fields in schema order.
    pub fn to_json_line(&self) -> String {
        self.to_json().to_string()
    }

    /// The alert as a `dnsmonitor.alert/1` object, fields in schema order.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
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
        m.insert("evidence".into(), Value::Object(self.evidence.clone()));
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Key;

    fn alert() -> Alert {
        let mut evidence = Evidence::new();
        evidence.insert("queries".into(), 3162.into());
        evidence.insert("window_secs".into(), 10.0.into());
        evidence.insert("baseline_mean".into(), 10.364839701248293.into());
        evidence.insert("sample_qnames".into(), vec!["a\\.b.test"].into());
        Alert {
            kind: Kind::ClientFlood,
            severity: Severity::Critical,
            state: State::Raised,
            key: Key::Client("127.0.0.66".parse().unwrap()),
            event_time_us: 1_764_093_675_000_000,
            window_start_us: 1_764_093_665_000_000,
            observed: 316.2,
            threshold: 300.0,
            unit: "queries/s".into(),
            evidence,
        }
    }

    #[test]
    fn evidence_is_rendered_in_the_order_it_was_given_added_fields_last() {
        let mut a = alert();
        let line = a.to_json_line();
        assert!(
            line.ends_with(
                r#""unit":"queries/s","evidence":{"queries":3162,"window_secs":10.0,"baseline_mean":10.364839701248293,"sample_qnames":["a\\.b.test"]}}"#
            ),
            "{line}"
        );
        a.add_evidence("capture_dropped_packets", 0.into());
        let line = a.to_json_line();
        assert!(
            line.ends_with(
                r#""evidence":{"queries":3162,"window_secs":10.0,"baseline_mean":10.364839701248293,"sample_qnames":["a\\.b.test"],"capture_dropped_packets":0}}"#
            ),
            "{line}"
        );
    }

    /// Alerts cross processes (a cluster) through timely's bincode.
    #[test]
    fn an_alert_crosses_processes_unchanged() {
        use timely::communication::Bytesable;
        let sent = timely::Bincode::from(vec![alert()]);
        let mut bytes = Vec::new();
        sent.into_bytes(&mut bytes);
        let got: timely::Bincode<Vec<Alert>> =
            Bytesable::from_bytes(timely::bytes::arc::BytesMut::from(bytes).freeze());
        assert_eq!(got.payload, sent.payload);
    }
}
