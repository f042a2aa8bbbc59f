//! `newly_observed`: registered domains this site has never resolved
//! before (PowerDNS Recursor's "newly observed domain"), per client. A
//! host looking up several domains nobody here has looked up before, in a
//! short time, is worth a look (fresh command servers, phishing kits,
//! freshly registered malware domains); one such lookup is routine.
//!
//! What counts: a NOERROR response (answered or NODATA) to a client, not
//! unsolicited, whose registered domain (public suffix list aware) is not
//! in the filter. Responses, not queries, so that names which do not exist
//! (random names, typos, DGA probes: NXDOMAIN, the `dga` detector's signal)
//! never fill the filter. The domain is added to the filter at once; the
//! response is *newly observed* unless it falls in the learning period.
//! Key: the client (the response's destination). Window: its own,
//! `window_secs`.
//!
//! State: one [`Bloom`] filter per process, shared by its workers (atomic
//! words), fixed size (`capacity`, `false_positive_rate`) and fixed
//! hashing. With `filter_file` set it is loaded at start (a missing file
//! is an empty filter; a corrupt or mismatched one is a configuration
//! error naming the file), and written atomically (temporary file, rename)
//! every `save_every_secs` of event time and when the pipeline is dropped
//! at the end of the run, only when something was added. A reload of the
//! pipeline with the same file keeps the running filter.
//!
//! Forgetting (`forget_secs` > 0): two filters, one per generation of
//! `forget_secs` of event time (generation = ts / forget_secs). Known = in
//! either; a known domain is also put in the current one (kept while in
//! use); entering a new generation empties the previous filter and makes
//! it the current one (two or more generations on: both emptied). The file
//! then holds both, current first, each with its generation number.
//!
//! Learning: the first `learning_secs` of event time the filter sees are
//! learned, not reported. The file records how much has been learned, so
//! learning continues across restarts until `learning_secs` is reached;
//! a run that starts with a filter past its learning reports at once.
//!
//! Map side, per newly observed response: `long_labels` += 1 (counted),
//! the domain's hash into `distinct` (HLL++), the domain as a sample
//! (escaped), and `Observed::newly_observed` set, which puts the (client,
//! domain) pair in the `newly_observed` report (`--reports`).
//!
//! Fires (info) when a client's window holds at least `min_domains`
//! distinct newly observed domains.
//!
//! Workers: the filter is shared, so a domain is newly observed once per
//! process. With one worker that is the first response in input order.
//! With several, two clients whose first responses for the same new domain
//! are decoded by different workers at about the same time may both be
//! credited with it, or either one: the attribution of a domain looked up
//! by several clients for the first time can depend on worker timing (a
//! domain looked up by one client, the infected-host case, cannot). In a
//! cluster every member has its own filter (give each its own file).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};

use serde::Deserialize;
use serde_json::json;

use super::spec::{Check, NetList, defaults};
use super::{
    Detector, Finding, Key, KeyRef, Kind, Observed, Severity, Tally, TallySink, WindowView,
};
use crate::sketch::bloom::Bloom;
use crate::spec::{ConfigError, Located};

/// `[detectors.newly_observed]` in a pipeline file.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct NewlyObservedSpec {
    /// Off by default (see the README: it needs a learned filter).
    #[serde(default)]
    pub enabled: bool,
    /// Length of the detector's own window, seconds.
    #[serde(default = "default_window_secs")]
    pub window_secs: toml::Spanned<u64>,
    /// Least distinct newly observed domains of a client in the window for
    /// an (info) alert.
    #[serde(default = "default_min_domains")]
    pub min_domains: toml::Spanned<u64>,
    /// Event time learned before anything is reported, seconds (0: none).
    #[serde(default = "default_learning_secs")]
    pub learning_secs: toml::Spanned<u64>,
    /// Registered domains the filter is sized for.
    #[serde(default = "default_capacity")]
    pub capacity: toml::Spanned<u64>,
    /// False-positive rate at `capacity` (a new domain taken for a known
    /// one), in (0, 0.5].
    #[serde(default = "default_false_positive_rate")]
    pub false_positive_rate: toml::Spanned<f64>,
    /// Where the filter is kept across runs (relative to the pipeline
    /// file); empty: in memory only.
    #[serde(default = "default_filter_file")]
    pub filter_file: toml::Spanned<String>,
    /// Event time between two saves of the filter file, seconds.
    #[serde(default = "default_save_every_secs")]
    pub save_every_secs: toml::Spanned<u64>,
    /// Forget a domain not seen for between this and twice this much event
    /// time, seconds (two filters, one per generation); 0: never forget.
    #[serde(default = "default_forget_secs")]
    pub forget_secs: toml::Spanned<u64>,
    /// Clients (addresses or prefixes) this detector never counts.
    #[serde(default)]
    pub allow_clients: Vec<toml::Spanned<String>>,
}

defaults! {
    default_window_secs: u64 = 600;
    default_min_domains: u64 = 10;
    default_learning_secs: u64 = 86_400;
    default_capacity: u64 = 1_000_000;
    default_false_positive_rate: f64 = 0.01;
    default_filter_file: String = String::new();
    default_save_every_secs: u64 = 300;
    default_forget_secs: u64 = 0;
}

impl Default for NewlyObservedSpec {
    fn default() -> Self {
        NewlyObservedSpec {
            enabled: false,
            window_secs: default_window_secs(),
            min_domains: default_min_domains(),
            learning_secs: default_learning_secs(),
            capacity: default_capacity(),
            false_positive_rate: default_false_positive_rate(),
            filter_file: default_filter_file(),
            save_every_secs: default_save_every_secs(),
            forget_secs: default_forget_secs(),
            allow_clients: Vec::new(),
        }
    }
}

/// Longest `learning_secs` and `forget_secs`.
const TEN_YEARS_SECS: u64 = 10 * 365 * 86_400;

/// Shortest `forget_secs` other than 0 (a generation shorter than the
/// detector's window would forget what the window still counts).
pub const MIN_FORGET_SECS: u64 = 3600;

/// Largest `capacity` (a filter of at most 2^35 bits, 4 GiB, at 1 %).
pub const MAX_CAPACITY: u64 = 1 << 30;

/// The filter and what goes with it, one per filter file (or per pipeline
/// when in memory), shared by the workers.
#[derive(Debug)]
pub struct NodState {
    /// The current generation's filter and the previous one's (`cur`
    /// says which is which). Without forgetting only `gens[0]` is used.
    gens: [Bloom; 2],
    cur: AtomicUsize,
    /// Generation number of the current filter: event time divided by
    /// `forget_us` (0 without forgetting).
    generation: AtomicU64,
    /// `forget_secs` in microseconds; 0: never forget.
    forget_us: i64,
    rotate_lock: Mutex<()>,
    file: Option<PathBuf>,
    /// Learning to do, microseconds of event time (config).
    learning_us: u64,
    /// Learned before this run (from the file).
    learned_before_us: u64,
    /// Oldest event time observed in this run (`i64::MAX`: none yet).
    start_us: AtomicI64,
    /// Newest event time observed.
    newest_us: AtomicI64,
    /// Event time of the next periodic save (`i64::MIN`: not set).
    next_save_us: AtomicI64,
    save_every_us: i64,
    /// Something was added since the last save.
    dirty: AtomicBool,
    save_lock: Mutex<()>,
}

/// Every live filter: a reload with the same file shares the running one,
/// and the metrics read their fill. Dead entries are pruned on use.
static LIVE: LazyLock<Mutex<Vec<Weak<NodState>>>> = LazyLock::new(Default::default);

/// Fill ratio of the live filters (the fullest), for
/// `dnsmonitor_nod_filter_fill_ratio`; 0 with none.
pub fn fill_ratio() -> f64 {
    let live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    live.iter()
        .filter_map(Weak::upgrade)
        .map(|s| s.fill_ratio())
        .fold(0.0, f64::max)
}

/// Save every live filter that has a file and changed (the end of a run;
/// the commands call it once `dataflow::run` returns). The errors name
/// the files.
pub fn save_all() -> Vec<String> {
    let live: Vec<Arc<NodState>> = {
        let live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        live.iter().filter_map(Weak::upgrade).collect()
    };
    live.iter().filter_map(|s| s.save().err()).collect()
}

impl NodState {
    /// The filter for `file` (`None`: a new in-memory one): the running
    /// one when a live pipeline uses that file, else loaded from it (an
    /// empty one when it does not exist). The error says what is wrong.
    pub fn open(
        file: Option<PathBuf>,
        bits_log2: u32,
        hashes: u32,
        learning_us: u64,
        save_every_us: i64,
        forget_us: i64,
    ) -> Result<Arc<NodState>, String> {
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|w| w.strong_count() > 0);
        if let Some(f) = &file
            && let Some(s) = live
                .iter()
                .filter_map(Weak::upgrade)
                .find(|s| s.file.as_ref() == Some(f))
        {
            let b = &s.gens[0];
            if (b.bits_log2(), b.hashes()) != (bits_log2, hashes) {
                return Err(format!(
                    "in use by the running pipeline with 2^{} bits and {} hashes; capacity and false_positive_rate ask for 2^{bits_log2} bits and {hashes} hashes",
                    b.bits_log2(),
                    b.hashes()
                ));
            }
            if s.forget_us != forget_us {
                return Err(format!(
                    "in use by the running pipeline with forget_secs = {}; a reload cannot change it",
                    s.forget_us / crate::time::MICROS
                ));
            }
            return Ok(s);
        }
        let new = || Bloom::new(bits_log2, hashes);
        // The second filter only exists when forgetting.
        let spare = || match forget_us {
            0 => Bloom::new(0, 1),
            _ => new(),
        };
        let loaded = file
            .as_deref()
            .map(Bloom::load)
            .transpose()?
            .flatten()
            .unwrap_or_default();
        if loaded.len() > 2 {
            return Err(format!(
                "holds {} filters; a newly_observed file holds one or two",
                loaded.len()
            ));
        }
        for (_, meta) in &loaded {
            if (meta.bits_log2, meta.hashes) != (bits_log2, hashes) {
                return Err(format!(
                    "holds a filter of 2^{} bits and {} hashes; capacity and false_positive_rate ask for 2^{bits_log2} bits and {hashes} hashes (move the file away to start a new filter)",
                    meta.bits_log2, meta.hashes
                ));
            }
        }
        let learned_before_us = loaded.first().map_or(0, |(_, m)| m.learned_us);
        let generation = loaded.first().map_or(0, |(_, m)| m.generation);
        let mut blooms = loaded.into_iter().map(|(b, _)| b);
        let gens = match (forget_us, blooms.next(), blooms.next()) {
            (_, None, _) => [new(), spare()],
            // Not forgetting: everything a file remembers is known.
            (0, Some(a), b) => {
                if let Some(b) = b {
                    a.union(&b)?;
                }
                [a, spare()]
            }
            (_, Some(a), b) => [a, b.unwrap_or_else(new)],
        };
        let s = Arc::new(NodState {
            gens,
            cur: AtomicUsize::new(0),
            generation: AtomicU64::new(if forget_us == 0 {
                0
            } else {
                u64::from(generation)
            }),
            forget_us,
            rotate_lock: Mutex::new(()),
            file,
            learning_us,
            learned_before_us,
            start_us: AtomicI64::new(i64::MAX),
            newest_us: AtomicI64::new(i64::MIN),
            next_save_us: AtomicI64::new(i64::MIN),
            save_every_us,
            dirty: AtomicBool::new(false),
            save_lock: Mutex::new(()),
        });
        live.push(Arc::downgrade(&s));
        Ok(s)
    }

    /// Note event time `ts_us`; true while it is in the learning period.
    ///
    /// The period starts at the oldest event time any worker has seen
    /// (`fetch_min`: with several workers the first to get here need not
    /// hold the oldest message), and a message older than the start known
    /// so far is inside it: a worker that saw a later message first must
    /// not end learning for the others.
    fn clock(&self, ts_us: i64) -> bool {
        // `i64::MAX` until the first message.
        let start = match self.start_us.load(Ordering::Relaxed) {
            s if s <= ts_us => s,
            _ => self.start_us.fetch_min(ts_us, Ordering::Relaxed).min(ts_us),
        };
        self.newest_us.fetch_max(ts_us, Ordering::Relaxed);
        let left = self.learning_us.saturating_sub(self.learned_before_us);
        left > 0 && (ts_us.saturating_sub(start).max(0) as u64) < left
    }

    /// Event time learned by now (what the file records).
    pub fn learned_us(&self) -> u64 {
        let (start, newest) = (
            self.start_us.load(Ordering::Relaxed),
            self.newest_us.load(Ordering::Relaxed),
        );
        let run = if start == i64::MAX {
            0
        } else {
            newest.saturating_sub(start).max(0) as u64
        };
        self.learned_before_us
            .saturating_add(run)
            .min(self.learning_us.max(self.learned_before_us))
    }

    /// Periodic save, when event time passes the next save point (one
    /// worker does it; the others go on).
    fn maybe_save(&self, ts_us: i64) {
        if self.file.is_none() {
            return;
        }
        let next = self.next_save_us.load(Ordering::Relaxed);
        if next == i64::MIN {
            let _ = self.next_save_us.compare_exchange(
                i64::MIN,
                ts_us.saturating_add(self.save_every_us),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            return;
        }
        if ts_us < next
            || self
                .next_save_us
                .compare_exchange(
                    next,
                    ts_us.saturating_add(self.save_every_us),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return;
        }
        if let Err(e) = self.save() {
            tracing::warn!(error = %e, "newly_observed: saving the filter failed");
        }
    }

    /// Write the filter file now if anything was added since the last save
    /// (no file: nothing to do). The error names the file.
    pub fn save(&self) -> Result<(), String> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let _one = self.save_lock.lock().unwrap_or_else(|e| e.into_inner());
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        crate::sketch::bloom::write_atomic(path, &self.to_bytes()).map_err(|e| {
            self.dirty.store(true, Ordering::Relaxed);
            format!("{}: {e}", path.display())
        })
    }

    /// The file's bytes: the current filter (with the learned time and its
    /// generation number), then, when forgetting, the previous one.
    pub fn to_bytes(&self) -> Vec<u8> {
        let _no_rotation = self.rotate_lock.lock().unwrap_or_else(|e| e.into_inner());
        let c = self.cur.load(Ordering::Acquire);
        let g = self.generation.load(Ordering::Relaxed) as u32;
        let mut out = self.gens[c].to_bytes_gen(self.learned_us(), g);
        if self.forget_us > 0 {
            out.extend(self.gens[1 - c].to_bytes_gen(0, g.saturating_sub(1)));
        }
        out
    }

    /// Share of the bits set in the fuller filter.
    pub fn fill_ratio(&self) -> f64 {
        self.gens[0].fill_ratio().max(self.gens[1].fill_ratio())
    }

    /// Is the domain (by `Bloom::hash`) known? Also remembers it in the
    /// current generation. Returns (newly observed, the filter changed).
    fn observe_domain(&self, h: u64) -> (bool, bool) {
        let c = self.cur.load(Ordering::Acquire);
        let cur = &self.gens[c];
        if self.forget_us == 0 {
            let set = cur.insert(h);
            return (set, set);
        }
        if cur.contains(h) {
            return (false, false);
        }
        // Seen last generation: known, and carried into this one so that
        // it is kept while it is in use.
        let known = self.gens[1 - c].contains(h);
        let set = cur.insert(h);
        (set && !known, set)
    }

    /// With forgetting: start a new generation when event time `ts_us`
    /// enters one (generation number = ts / forget_secs). The previous
    /// filter is emptied and becomes the current one, so a domain not seen
    /// in two generations is forgotten; a jump of two or more empties both.
    fn rotate(&self, ts_us: i64) {
        if self.forget_us == 0 {
            return;
        }
        let g = ts_us.max(0) as u64 / self.forget_us as u64;
        if g <= self.generation.load(Ordering::Relaxed) {
            return;
        }
        let _one = self.rotate_lock.lock().unwrap_or_else(|e| e.into_inner());
        let have = self.generation.load(Ordering::Relaxed);
        if g <= have {
            return;
        }
        let c = self.cur.load(Ordering::Relaxed);
        self.gens[1 - c].clear();
        if g > have + 1 {
            self.gens[c].clear();
        }
        self.cur.store(1 - c, Ordering::Release);
        self.generation.store(g, Ordering::Relaxed);
        self.dirty.store(true, Ordering::Relaxed);
    }
}

impl Drop for NodState {
    /// The end of the run (the last pipeline holding the filter is gone).
    fn drop(&mut self) {
        if let Err(e) = self.save() {
            tracing::error!(error = %e, "newly_observed: saving the filter at the end failed");
        }
    }
}

#[derive(Clone, Debug)]
pub struct NewlyObserved {
    pub window_secs: u64,
    pub min_domains: u64,
    pub allow_clients: NetList,
    pub state: Arc<NodState>,
}

impl NewlyObserved {
    /// Validate `spec` and open its filter; `None` when disabled or
    /// invalid (errors pushed). `base` resolves a relative `filter_file`.
    pub fn from_spec(
        spec: &NewlyObservedSpec,
        base: &Path,
        loc: &Located<'_>,
        errors: &mut Vec<ConfigError>,
    ) -> Option<NewlyObserved> {
        if !spec.enabled {
            return None;
        }
        let mut check = Check::new(Kind::NewlyObserved, loc, errors);
        let window_secs = check.long_window_secs(&spec.window_secs);
        let min_domains = check.at_least_one("min_domains", &spec.min_domains);
        let learning_secs = check.require(
            "learning_secs",
            &spec.learning_secs,
            |v| v <= TEN_YEARS_SECS,
            "must be a number of seconds of at most ten years",
        );
        let capacity = check.require(
            "capacity",
            &spec.capacity,
            |v| (1..=MAX_CAPACITY).contains(&v),
            format!("must be a number of domains in 1..={MAX_CAPACITY}"),
        );
        let fp = check.require(
            "false_positive_rate",
            &spec.false_positive_rate,
            |v| v > 0.0 && v <= 0.5,
            "must be a rate in (0, 0.5]",
        );
        let save_every = check.positive_int("save_every_secs", &spec.save_every_secs);
        let forget_secs = check.require(
            "forget_secs",
            &spec.forget_secs,
            |v| v == 0 || (MIN_FORGET_SECS..=TEN_YEARS_SECS).contains(&v),
            format!("must be 0 (never forget) or a number of seconds from {MIN_FORGET_SECS} to ten years"),
        );
        let allow_clients = check.nets("allow_clients", &spec.allow_clients);
        if !check.ok() {
            return None;
        }
        let (bits_log2, hashes) = Bloom::size_for(capacity, fp);
        let file = spec.filter_file.get_ref();
        let file = (!file.is_empty()).then(|| base.join(file));
        match NodState::open(
            file.clone(),
            bits_log2,
            hashes,
            learning_secs * crate::time::MICROS as u64,
            (save_every as i64).saturating_mul(crate::time::MICROS),
            (forget_secs as i64).saturating_mul(crate::time::MICROS),
        ) {
            Ok(state) => Some(NewlyObserved {
                window_secs,
                min_domains,
                allow_clients,
                state,
            }),
            Err(e) => {
                let name = file.map(|f| f.display().to_string()).unwrap_or_default();
                errors.push(loc.error(
                    spec.filter_file.span(),
                    "detectors.newly_observed.filter_file",
                    format!("{name}: {e}"),
                ));
                None
            }
        }
    }
}

impl Detector for NewlyObserved {
    fn kind(&self) -> Kind {
        Kind::NewlyObserved
    }

    fn window_secs(&self) -> Option<u64> {
        Some(self.window_secs)
    }

    fn observe(&self, m: &Observed<'_, '_>, sink: &mut dyn TallySink) {
        if !m.msg.qr
            || m.msg.rcode != 0
            || m.unsolicited == Some(true)
            || self.allow_clients.contains(m.payload.dst)
        {
            return;
        }
        let Some(domain) = m.registered_domain_str() else {
            return;
        };
        let s = &self.state;
        let ts = m.payload.ts_us;
        let learning = s.clock(ts);
        s.rotate(ts);
        let h = Bloom::hash(domain.as_bytes());
        let (new, changed) = s.observe_domain(h);
        if changed {
            s.dirty.store(true, Ordering::Relaxed);
        }
        if new && !learning {
            let t = sink.tally(KeyRef::Client(m.payload.dst));
            t.long_labels += 1;
            t.distinct_mut().insert(h);
            t.offer_sample(h, domain);
            m.newly_observed.set(true);
        }
        s.maybe_save(ts);
    }

    /// Sound: a finding needs a newly observed domain, so a pane with one.
    fn pane_may_fire(&self, pane: &Tally, _slide_secs: f64, _panes: u64) -> bool {
        pane.long_labels > 0
    }

    fn needs_full_view(&self, counts: &Tally, _window_secs: f64) -> bool {
        counts.long_labels >= self.min_domains
    }

    fn measure(&self, w: &WindowView<'_>) -> f64 {
        w.tally.distinct_count().round()
    }

    fn evaluate(&self, _key: &Key, w: &WindowView<'_>) -> Option<Finding> {
        let t = w.tally;
        if t.long_labels < self.min_domains || t.distinct.is_none() {
            return None;
        }
        let domains = (t.distinct_count().round() as u64).min(t.long_labels);
        if domains < self.min_domains {
            return None;
        }
        let evidence = json!({
            "newly_observed_domains": domains,
            "window_secs": w.window_secs,
            "min_domains": self.min_domains,
            "sample_domains": t.sample_names(),
        });
        Some(Finding {
            severity: Severity::Info,
            observed: domains as f64,
            threshold: self.min_domains as f64,
            unit: "domains",
            evidence: evidence.as_object().cloned().unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::test_support::*;
    use crate::packet::frame::{FrameBuilder, qtype, rcode};

    const T0: i64 = 1_700_000_000_000_000;

    fn spec(text: &str) -> NewlyObservedSpec {
        detector_table(
            &format!("[detectors.newly_observed]\n{text}"),
            "newly_observed",
        )
    }

    fn build(text: &str, base: &Path) -> (Option<NewlyObserved>, Vec<ConfigError>) {
        let s = spec(text);
        let full = format!("[detectors.newly_observed]\n{text}");
        from_spec(&s, &full, |s, loc, e| {
            NewlyObserved::from_spec(s, base, loc, e)
        })
    }

    fn detector(text: &str) -> NewlyObserved {
        let (d, errors) = build(text, Path::new("."));
        assert!(errors.is_empty(), "{errors:?}");
        d.expect("enabled")
    }

    /// A response with `rc` for `name` to `client` at `T0 + secs`; whether
    /// it was newly observed.
    fn resolve(
        d: &NewlyObserved,
        sink: &mut Sink,
        secs: i64,
        client: &str,
        name: &str,
        rc: u8,
    ) -> bool {
        let mut fb = FrameBuilder::new();
        let bytes = fb.response_message(7, name, qtype::A, rc, &[], 0).to_vec();
        let msg = crate::dns::decode(&bytes).unwrap();
        let (src, dst) = (at("192.0.2.53", 53), at(client, 5353));
        let payload = crate::packet::Payload {
            ts_us: T0 + secs * 1_000_000,
            src: src.ip(),
            dst: dst.ip(),
            sport: src.port(),
            dport: dst.port(),
            transport: crate::packet::Transport::Udp,
            data: &bytes,
        };
        let obs = Observed::new(&payload, &msg, None);
        d.observe(&obs, sink);
        obs.newly_observed.get()
    }

    fn eval(d: &NewlyObserved, sink: &Sink, client: &str) -> Option<Finding> {
        let key = Key::Client(client.parse().unwrap());
        d.evaluate(&key, &view(sink.0.get(&key)?, 600.0))
    }

    /// Workers reach the detector in any order: a message older than the
    /// first one seen is still in the learning period (it used to wrap
    /// to "long after the start" and be reported), and the period runs from
    /// the oldest message, wherever it was seen.
    #[test]
    fn learning_starts_at_the_oldest_message_not_the_first_seen() {
        let d = detector("enabled = true\nlearning_secs = 60\n");
        let mut sink = Sink::default();
        let ok = rcode::NOERROR;
        assert!(!resolve(&d, &mut sink, 5, "10.0.0.1", "late.com", ok));
        assert!(!resolve(&d, &mut sink, 0, "10.0.0.2", "early.com", ok));
        // 62 s after the oldest message: learning is over (it would not be,
        // counted from the first message seen).
        assert!(resolve(&d, &mut sink, 62, "10.0.0.2", "new.com", ok));
    }

    /// `forget_secs`: a domain not seen for two generations is newly
    /// observed again; one looked up every generation is kept; the file
    /// holds both generations and a restart from it decides the same.
    #[test]
    fn forgetting_by_generation_and_across_a_restart() {
        const H: i64 = 3600;
        let dir = tempfile::tempdir().unwrap();
        let text = "enabled = true\nlearning_secs = 0\nforget_secs = 3600\nfilter_file = \"f.bloom\"\ncapacity = 1000\n";
        let ok = rcode::NOERROR;
        // T0 is 22:13:20 UTC: generation boundaries fall at whole hours,
        // 2800 s after T0, then every 3600 s.
        let b = 2800;
        let mut sink = Sink::default();
        {
            let (d, e) = build(text, dir.path());
            assert!(e.is_empty(), "{e:?}");
            let d = d.unwrap();
            assert!(resolve(&d, &mut sink, 0, "10.0.0.1", "once.com", ok));
            assert!(resolve(&d, &mut sink, 0, "10.0.0.1", "daily.com", ok));
            assert!(!resolve(&d, &mut sink, 10, "10.0.0.2", "once.com", ok));
            // Next generation: both still known (previous filter); daily is
            // carried into this one.
            assert!(!resolve(&d, &mut sink, b + 20, "10.0.0.1", "daily.com", ok));
        }
        // The file: two filters, the current one first with its generation.
        let bytes = std::fs::read(dir.path().join("f.bloom")).unwrap();
        let gens = Bloom::parse_all(&bytes).unwrap();
        let (m1, m2) = (gens[0].1, gens[1].1);
        let g = ((T0 / 1_000_000 + b + 20) / H) as u32;
        assert_eq!((m1.generation, m2.generation), (g, g - 1));
        // A restart from the file decides as the same run would have.
        let (d, e) = build(text, dir.path());
        assert!(e.is_empty(), "{e:?}");
        let d = d.unwrap();
        assert_eq!(d.state.to_bytes(), bytes, "loaded as saved");
        // Two generations on: once.com (last seen in the first) is
        // forgotten, daily.com (seen in the second) is known.
        assert!(!resolve(
            &d,
            &mut sink,
            b + H + 10,
            "10.0.0.1",
            "daily.com",
            ok
        ));
        assert!(resolve(
            &d,
            &mut sink,
            b + H + 20,
            "10.0.0.1",
            "once.com",
            ok
        ));
        // A jump of two generations forgets everything.
        assert!(resolve(
            &d,
            &mut sink,
            b + 4 * H,
            "10.0.0.1",
            "daily.com",
            ok
        ));
        // Without forget_secs the same file is read as one filter holding
        // both generations (and a different forget_secs on the running
        // filter is refused by a reload).
        let plain =
            "enabled = true\nlearning_secs = 0\nfilter_file = \"g.bloom\"\ncapacity = 1000\n";
        std::fs::copy(dir.path().join("f.bloom"), dir.path().join("g.bloom")).unwrap();
        let (p, e) = build(plain, dir.path());
        assert!(e.is_empty(), "{e:?}");
        assert!(!resolve(
            &p.unwrap(),
            &mut sink,
            0,
            "10.0.0.1",
            "daily.com",
            ok
        ));
        let changed = text.replace("3600", "7200");
        let (_, e) = build(&changed, dir.path());
        assert!(format!("{e:?}").contains("forget_secs"), "{e:?}");
    }

    #[test]
    fn new_domains_per_client_after_learning() {
        let d = detector("enabled = true\nlearning_secs = 60\nmin_domains = 5\n");
        assert_eq!(d.window_secs(), Some(600));
        let mut sink = Sink::default();
        // Learning: added, not reported.
        assert!(!resolve(
            &d,
            &mut sink,
            0,
            "10.0.0.1",
            "www.known.com",
            rcode::NOERROR
        ));
        assert!(!resolve(
            &d,
            &mut sink,
            59,
            "10.0.0.1",
            "a.other.co.uk",
            rcode::NOERROR
        ));
        assert!(sink.0.is_empty());
        // Known (any name under a learned registered domain): nothing.
        assert!(!resolve(
            &d,
            &mut sink,
            61,
            "10.0.0.2",
            "mail.KNOWN.com",
            rcode::NOERROR
        ));
        assert!(!resolve(
            &d,
            &mut sink,
            62,
            "10.0.0.2",
            "b.other.co.uk",
            rcode::NOERROR
        ));
        // NXDOMAIN never counts and never enters the filter.
        assert!(!resolve(
            &d,
            &mut sink,
            63,
            "10.0.0.2",
            "typo-domain.com",
            rcode::NXDOMAIN
        ));
        assert!(resolve(
            &d,
            &mut sink,
            64,
            "10.0.0.2",
            "typo-domain.com",
            rcode::NOERROR
        ));
        // Once per domain: the second client is not credited.
        assert!(!resolve(
            &d,
            &mut sink,
            65,
            "10.0.0.3",
            "www.typo-domain.com",
            rcode::NOERROR
        ));
        assert!(eval(&d, &sink, "10.0.0.2").is_none());
        // Six fresh domains, one of them twice: an info alert.
        for i in 0..6 {
            assert!(resolve(
                &d,
                &mut sink,
                70 + i,
                "10.0.0.9",
                &format!("x.fresh{i}.xyz"),
                rcode::NOERROR
            ));
        }
        assert!(!resolve(
            &d,
            &mut sink,
            80,
            "10.0.0.9",
            "y.fresh0.xyz",
            rcode::NOERROR
        ));
        let f = eval(&d, &sink, "10.0.0.9").expect("alert");
        assert_eq!(f.severity, Severity::Info);
        assert_eq!((f.observed, f.threshold, f.unit), (6.0, 5.0, "domains"));
        assert_eq!(f.evidence["sample_domains"].as_array().unwrap().len(), 3);
        assert!(eval(&d, &sink, "10.0.0.3").is_none());
    }

    #[test]
    fn learning_zero_reports_from_the_start_and_allow_list() {
        let d = detector("enabled = true\nlearning_secs = 0\nallow_clients = [\"10.9.0.0/16\"]\n");
        let mut sink = Sink::default();
        assert!(!resolve(
            &d,
            &mut sink,
            0,
            "10.9.1.1",
            "first.com",
            rcode::NOERROR
        ));
        assert!(sink.0.is_empty());
        assert!(resolve(
            &d,
            &mut sink,
            0,
            "10.0.0.1",
            "second.com",
            rcode::NOERROR
        ));
    }

    /// Run, stop (the pipeline dropped), restart from the file: the filter
    /// bytes are the same, the domains of the first run are known, and the
    /// learning done before the stop is not done again.
    #[test]
    fn filter_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let text =
            "enabled = true\nlearning_secs = 10\nfilter_file = \"nod.bloom\"\ncapacity = 1000\n";
        let file = dir.path().join("nod.bloom");
        let mut sink = Sink::default();
        {
            let (d, e) = build(text, dir.path());
            assert!(e.is_empty(), "{e:?}");
            let d = d.unwrap();
            assert!(!resolve(
                &d,
                &mut sink,
                0,
                "10.0.0.1",
                "learned.com",
                rcode::NOERROR
            ));
            assert!(!resolve(
                &d,
                &mut sink,
                6,
                "10.0.0.1",
                "learned2.com",
                rcode::NOERROR
            ));
            assert!(
                !file.exists(),
                "written at the end, or every save_every_secs"
            );
        }
        let first = std::fs::read(&file).expect("saved when dropped");
        let (_, meta) = Bloom::parse_all(&first).unwrap().remove(0);
        assert_eq!(meta.learned_us, 6_000_000);
        {
            let (d, e) = build(text, dir.path());
            assert!(e.is_empty(), "{e:?}");
            let d = d.unwrap();
            assert_eq!(d.state.to_bytes(), first);
            // Known from the first run.
            assert!(!resolve(
                &d,
                &mut sink,
                100,
                "10.0.0.1",
                "www.learned.com",
                rcode::NOERROR
            ));
            // 4 s of learning left: 103 is learned, 105 is reported.
            assert!(!resolve(
                &d,
                &mut sink,
                103,
                "10.0.0.1",
                "late.com",
                rcode::NOERROR
            ));
            assert!(resolve(
                &d,
                &mut sink,
                105,
                "10.0.0.1",
                "new.com",
                rcode::NOERROR
            ));
            // A reload with the same file shares the running filter.
            let (again, e) = build(text, dir.path());
            assert!(e.is_empty());
            assert!(Arc::ptr_eq(&again.unwrap().state, &d.state));
            let (_, e) = build(&format!("{text}false_positive_rate = 0.001\n"), dir.path());
            assert!(
                e[0].to_string().contains("in use by the running pipeline"),
                "{e:?}"
            );
        }
        let second = std::fs::read(&file).unwrap();
        assert_ne!(first, second);
        let (b, meta) = Bloom::parse_all(&second).unwrap().remove(0);
        assert_eq!(meta.learned_us, 10_000_000);
        assert!(b.contains(Bloom::hash(b"new.com")) && b.contains(Bloom::hash(b"late.com")));
        // Nothing new: nothing written (same bytes, same time stamp).
        let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
        {
            let d = build(text, dir.path()).0.unwrap();
            assert!(!resolve(
                &d,
                &mut sink,
                200,
                "10.0.0.1",
                "new.com",
                rcode::NOERROR
            ));
        }
        assert_eq!(std::fs::read(&file).unwrap(), second);
        assert_eq!(std::fs::metadata(&file).unwrap().modified().unwrap(), mtime);
    }

    #[test]
    fn periodic_save_by_event_time() {
        let dir = tempfile::tempdir().unwrap();
        let text = "enabled = true\nlearning_secs = 0\nfilter_file = \"p.bloom\"\ncapacity = 1000\nsave_every_secs = 60\n";
        let file = dir.path().join("p.bloom");
        let d = build(text, dir.path()).0.unwrap();
        let mut sink = Sink::default();
        resolve(&d, &mut sink, 0, "10.0.0.1", "a.com", rcode::NOERROR);
        resolve(&d, &mut sink, 59, "10.0.0.1", "b.com", rcode::NOERROR);
        assert!(!file.exists());
        resolve(&d, &mut sink, 60, "10.0.0.1", "c.com", rcode::NOERROR);
        let (b, _) = Bloom::load(&file).unwrap().unwrap().remove(0);
        assert!(
            ["a.com", "b.com", "c.com"]
                .iter()
                .all(|n| b.contains(Bloom::hash(n.as_bytes())))
        );
    }

    #[test]
    fn bad_filter_files_are_config_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.bloom");
        std::fs::write(
            &file,
            b"not a filter at all, but long enough for a header.....",
        )
        .unwrap();
        let text = "enabled = true\nfilter_file = \"bad.bloom\"\n";
        let (d, e) = build(text, dir.path());
        assert!(d.is_none());
        let msg = e[0].to_string();
        assert!(
            msg.contains("detectors.newly_observed.filter_file"),
            "{msg}"
        );
        assert!(
            msg.contains(&file.display().to_string()) && msg.contains("bad magic"),
            "{msg}"
        );
        assert_eq!(e[0].line, 3);
        // A filter of another size: says which, and what to do.
        crate::sketch::bloom::write_atomic(&file, &Bloom::new(10, 3).to_bytes(0)).unwrap();
        let msg = build(text, dir.path()).1[0].to_string();
        assert!(
            msg.contains("2^10 bits and 3 hashes") && msg.contains("move the file away"),
            "{msg}"
        );
        // More filters than the two generations.
        let one = Bloom::new(20, 7).to_bytes(0);
        crate::sketch::bloom::write_atomic(&file, &one.repeat(3)).unwrap();
        let msg = build(text, dir.path()).1[0].to_string();
        assert!(msg.contains("holds 3 filters"), "{msg}");
        // A directory where the file should be.
        let msg = build("enabled = true\nfilter_file = \".\"\n", dir.path()).1[0].to_string();
        assert!(msg.contains("filter_file"), "{msg}");
    }

    #[test]
    fn newly_observed_spec_validation() {
        let text = "[detectors.newly_observed]\nenabled = true\nwindow_secs = 0\nmin_domains = 0\ncapacity = 0\nfalse_positive_rate = 0.9\nsave_every_secs = 0\nforget_secs = 60\nallow_clients = [\"x\"]\n";
        let s: NewlyObservedSpec = detector_table(text, "newly_observed");
        let (d, errors) = from_spec(&s, text, |s, loc, e| {
            NewlyObserved::from_spec(s, Path::new("."), loc, e)
        });
        assert!(d.is_none());
        assert_eq!(
            error_keys(&errors),
            [
                "detectors.newly_observed.window_secs",
                "detectors.newly_observed.min_domains",
                "detectors.newly_observed.capacity",
                "detectors.newly_observed.false_positive_rate",
                "detectors.newly_observed.save_every_secs",
                "detectors.newly_observed.forget_secs",
                "detectors.newly_observed.allow_clients",
            ]
        );
        // Off by default.
        assert!(build("", Path::new(".")).0.is_none());
    }
}
