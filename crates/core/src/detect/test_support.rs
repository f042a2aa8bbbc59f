//! Helpers shared by the detector tests (`amplification`,
//! `unsolicited_response`, `spoofed_flood`, `rate_anomaly`, the rcode and
//! query floods, `random_subdomain`, `tunneling`, ...).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use crate::detect::{Detector, Finding, Key, Observed, Tally, TallySink, WindowView};
use crate::packet::frame::FrameBuilder;
use crate::packet::{Payload, Transport};
use crate::spec::{ConfigError, Located};

/// A map-side table for one pane.
#[derive(Default)]
pub struct Sink(pub HashMap<Key, Tally>);

impl TallySink for Sink {
    fn tally(&mut self, key: crate::detect::KeyRef<'_>) -> &mut Tally {
        self.0.entry(key.to_key()).or_default()
    }
}

impl Sink {
    pub fn get(&self, key: &Key) -> Tally {
        self.0.get(key).cloned().unwrap_or_default()
    }
}

pub fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Let `d` observe one DNS message `bytes` from `src` to `dst`.
pub fn observe(
    d: &dyn Detector,
    sink: &mut Sink,
    src: SocketAddr,
    dst: SocketAddr,
    bytes: &[u8],
    unsolicited: Option<bool>,
) {
    observe_at(d, sink, 1_700_000_000_000_000, src, dst, bytes, unsolicited);
}

/// Let `d` observe one DNS message `bytes` (UDP) from `src` to `dst` at
/// `ts_us`.
pub fn observe_at(
    d: &dyn Detector,
    sink: &mut dyn TallySink,
    ts_us: i64,
    src: SocketAddr,
    dst: SocketAddr,
    bytes: &[u8],
    unsolicited: Option<bool>,
) {
    let msg = crate::dns::decode(bytes).expect("decodes");
    let payload = Payload {
        ts_us,
        src: src.ip(),
        dst: dst.ip(),
        sport: src.port(),
        dport: dst.port(),
        transport: Transport::Udp,
        data: bytes,
    };
    d.observe(&Observed::new(&payload, &msg, unsolicited), sink);
}

/// `ip` (a string) and `port` as a socket address.
pub fn at(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

/// A window view of `tally` over `window_secs` seconds, with no baseline.
pub fn view(tally: &Tally, window_secs: f64) -> WindowView<'_> {
    WindowView {
        tally,
        window_secs,
        baseline: None,
        panes: &[],
        end: 0,
        slide_secs: 1.0,
    }
}

/// Evaluate `d` on `key`'s tally in `sink` over a 10 s window, no baseline;
/// `None` when the key has no tally.
pub fn eval_key(d: &dyn Detector, sink: &Sink, key: &Key) -> Option<Finding> {
    d.evaluate(key, &view(sink.0.get(key)?, 10.0))
}

/// Run a detector's `from_spec` on `spec`, located in `text` (file
/// "p.toml"); the detector (if any) and the errors pushed.
pub fn from_spec<S, D>(
    spec: &S,
    text: &str,
    build: impl Fn(&S, &Located<'_>, &mut Vec<ConfigError>) -> Option<D>,
) -> (Option<D>, Vec<ConfigError>)
where
    S: ?Sized,
{
    let loc = Located {
        file: "p.toml",
        text,
    };
    let mut errors = Vec::new();
    let d = build(spec, &loc, &mut errors);
    (d, errors)
}

/// The detector built from the default spec; panics on any error.
pub fn default_built<S: Default, D>(
    build: impl Fn(&S, &Located<'_>, &mut Vec<ConfigError>) -> Option<D>,
) -> D {
    let (d, errors) = from_spec(&S::default(), "", build);
    assert!(errors.is_empty());
    d.expect("default spec builds")
}

/// The `[detectors.<kind>]` table of a pipeline `text`, deserialized in
/// place (its spans point into `text`).
pub fn detector_table<S: serde::de::DeserializeOwned>(text: &str, kind: &str) -> S {
    #[derive(serde::Deserialize)]
    struct Pipeline<S> {
        detectors: HashMap<String, S>,
    }
    let mut p: Pipeline<S> = toml::from_str(text).expect("pipeline parses");
    p.detectors.remove(kind).expect("detector table present")
}

/// Run a detector's `from_spec` on the `[detectors.<kind>]` table of a
/// pipeline `text`; the detector (if any) and the errors pushed.
pub fn validate_table<S, D>(
    text: &str,
    kind: &str,
    build: impl Fn(&S, &Located<'_>, &mut Vec<ConfigError>) -> Option<D>,
) -> (Option<D>, Vec<ConfigError>)
where
    S: serde::de::DeserializeOwned,
{
    let table: S = detector_table(text, kind);
    from_spec(&table, text, build)
}

/// Each error's key and line, in order.
pub fn key_lines(errors: &[ConfigError]) -> Vec<(&str, usize)> {
    errors.iter().map(|e| (e.key.as_str(), e.line)).collect()
}

/// The keys of `errors`, in order.
pub fn error_keys(errors: &[ConfigError]) -> Vec<&str> {
    errors.iter().map(|e| e.key.as_str()).collect()
}

/// `n` queries from `src` to `dst`.
pub fn queries(
    d: &dyn Detector,
    sink: &mut Sink,
    src: SocketAddr,
    dst: SocketAddr,
    n: u32,
    qname: &str,
    qtype: u16,
) {
    let mut fb = FrameBuilder::new();
    for i in 0..n {
        let m = fb.query_message(i as u16, qname, qtype, true).to_vec();
        observe(d, sink, src, dst, &m, None);
    }
}

/// `n` responses from `src` to `dst`, padded to at least `pad_to` bytes.
#[allow(clippy::too_many_arguments)]
pub fn responses(
    d: &dyn Detector,
    sink: &mut Sink,
    src: SocketAddr,
    dst: SocketAddr,
    n: u32,
    qname: &str,
    qtype: u16,
    pad_to: usize,
    unsolicited: Option<bool>,
) {
    let mut fb = FrameBuilder::new();
    let answers: [IpAddr; 1] = ["192.0.2.1".parse().unwrap()];
    for i in 0..n {
        let m = fb
            .response_message(i as u16, qname, qtype, 0, &answers, pad_to)
            .to_vec();
        observe(d, sink, src, dst, &m, unsolicited);
    }
}

/// Parse one `[detectors.<kind>]` table's body and run `build` on it;
/// returns the detector (if any) and the errors as "line:key: message".
pub fn build<S, D>(
    text: &str,
    build: impl Fn(&S, &Located<'_>, &mut Vec<ConfigError>) -> Option<D>,
) -> (Option<D>, Vec<String>)
where
    S: serde::de::DeserializeOwned,
{
    let spec: S = toml::from_str(text).expect("spec parses");
    let loc = Located {
        file: "t.toml",
        text,
    };
    let mut errors = Vec::new();
    let d = build(&spec, &loc, &mut errors);
    let errors = errors
        .iter()
        .map(|e| format!("{}:{}: {}", e.line, e.key, e.message))
        .collect();
    (d, errors)
}
