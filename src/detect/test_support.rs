//! Helpers shared by the detector tests (`amplification`,
//! `unsolicited_response`, `spoofed_flood`, `rate_anomaly`, the rcode and
//! query floods, `random_subdomain`, `tunneling`, ...).

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::config::Plan;
use crate::detect::{Detector, Finding, Key, Observed, Tally, TallySink, WindowView};
use crate::packet::{Payload, Transport};
use crate::spec::{ConfigError, Located};
use crate::synth::FrameBuilder;

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

#[derive(Clone, Default)]
pub struct Buf(pub Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(rel)
}

/// Replay `files` through the real dataflow (default pipeline: windows,
/// lifecycle, packet layer) with exactly `detectors`; the alerts as JSON.
pub fn replay(files: &[PathBuf], detectors: Vec<Arc<dyn Detector>>) -> Vec<serde_json::Value> {
    let mut plan = Plan::default_plan(&[]).expect("default plan");
    plan.detectors = detectors;
    plan.blocklist = None;
    let buf = Buf::default();
    let outputs = crate::dataflow::Outputs::json_lines(Box::new(buf.clone()), None, None);
    crate::dataflow::replay(
        Arc::new(plan),
        files.to_vec(),
        crate::dataflow::RunOptions::default(),
        outputs,
    )
    .expect("replay");
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).expect("alert JSON"))
        .collect()
}

/// Write a capture of queries to one server 198.51.100.53: `normal_secs`
/// seconds of 250 queries/s from 200 clients (10.1.0.0/24), then
/// `attack_secs` seconds adding `attack_qps` queries/s, each from a new
/// address (spoofed, from 100.64.0.0/10). Returns the file (in a fresh
/// temporary folder, removed by `Scratch`'s drop).
pub fn server_scenario(
    name: &str,
    normal_secs: i64,
    attack_secs: i64,
    attack_qps: i64,
) -> (Scratch, PathBuf) {
    use crate::synth::PcapWriter;
    let dir = std::env::temp_dir().join(format!("dnsmon-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("scenario.pcap");
    let mut w = PcapWriter::create(&path).unwrap();
    let mut fb = FrameBuilder::new();
    let server = sa("198.51.100.53:53");
    let t0 = 1_700_000_000_000_000i64;
    let mut id = 0u16;
    let mut spoofed = 0u32;
    for s in 0..normal_secs + attack_secs {
        let sec = t0 + s * 1_000_000;
        for i in 0..250i64 {
            let c = ((i * 7 + s) % 200) as u8;
            let src = SocketAddr::new(IpAddr::from([10, 1, 0, c]), 40_000 + u16::from(c));
            id = id.wrapping_add(1);
            let qname = format!("host{}.example.com", i % 50);
            w.write_frame(sec + i * 4_000, fb.query(src, server, id, &qname, 1, false))
                .unwrap();
        }
        if s < normal_secs {
            continue;
        }
        for j in 0..attack_qps {
            spoofed += 1;
            let a = 0x6440_0000u32 + spoofed.wrapping_mul(7919) % (1 << 22);
            let src = SocketAddr::new(
                IpAddr::from(a.to_be_bytes()),
                1024 + (spoofed % 60_000) as u16,
            );
            id = id.wrapping_add(1);
            let ts = sec + j * 1_000_000 / attack_qps + 1;
            w.write_frame(ts, fb.query(src, server, id, "www.example.com", 1, false))
                .unwrap();
        }
    }
    w.into_inner().unwrap();
    (Scratch(dir), path)
}

/// A temporary folder removed when dropped.
pub struct Scratch(pub PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// Every capture under `../shared/data/captures`, sorted.
pub fn all_captures() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![shared("captures")];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .extension()
                .is_some_and(|x| x == "pcap" || x == "pcapng" || x == "cap")
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
