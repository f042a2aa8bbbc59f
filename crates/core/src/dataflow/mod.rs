//! The timely dataflow of a run. Each worker runs:
//!
//! ```text
//! Source ──Shuffle (by key hash)──> Reduce (KeyedWindows) ──Alert (to worker 0)──> Sink<Alert>
//!    │  └─FrameBatch (a single stream's frames, by shard)──> Spread ──Shuffle──┘
//!    ├─────EventLine (to worker 0)─────────────────────────────────────────────> Sink<EventLine>
//!    └─────ReportPart (to worker 0, merged into Report)────────────────────────> Sink<Report>
//! ```
//!
//! - `source.rs`: the source operator (`Source`): reads frames, paces them,
//!   decodes its shard through `Ingest`, moves the watermark and ships
//!   map-side tallies, event lines and report parts; ends the input.
//! - `spread.rs`: a single stream (live, queue, pipe) is read by worker 0,
//!   which forwards each frame to the worker of its shard; `Spread` decodes
//!   them there and ships like a source.
//! - `reduce.rs`: the reduce operator (`Reduce`): `KeyedWindows` closed by
//!   the frontier, alerts sent at their window's pane.
//! - `sink.rs`: one generic sink (`stash_sink`): stash by time, sort, emit
//!   to the output's `sinks::Sink` when the frontier passes; `AlertWriter`,
//!   `EventWriter` and `ReportWriter` are what differs per output.
//! - `rules.rs`: pacing (`--speed`) and watermark rules, plain types tested
//!   without timely.
//! - this file: the public API (`run`, `replay`, options, summary) and the
//!   wiring of one worker (`RunShared::build`).
//!
//! Timestamps are pane indices (`window::Pane`). Every worker reads every
//! frame of the input (a pcap read costs ~50 ns) but decodes only the frames
//! of its shard (`PacketDecoder::shard_key`), so the watermark, the batch
//! boundaries and thus every capability are the same on every worker: the
//! output does not depend on the worker count. The source holds its
//! capability at the watermark pane (newest packet minus the allowed
//! lateness); when it moves, the map-side tallies of older panes are sent
//! and the frontier lets the reduce side close those windows. Sinks sort each
//! closed window's output before writing it.

mod reduce;
pub mod reload;
mod rules;
mod sink;
mod source;
mod spread;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use timely::dataflow::Scope;
use timely::dataflow::operators::Concat;

use crate::alert::{Alert, State};
use crate::config::Plan;
use crate::detect::Kind;
use crate::dns::DecodeError;
pub use crate::engine::ingest::EventLine;
use crate::engine::ingest::TOP_NAMES_CAPACITY;
use crate::metrics::Metrics;
use crate::packet::PacketStats;
use crate::reports::Report;
use crate::sinks::{JsonLines, Sink};
use crate::sketch::topk::TopK;
use crate::sources::{CaptureCounters, FrameSource, PcapFiles};
use crate::time::Clock;
use crate::window::Pane;
use sink::{AlertWriter, EventWriter, Output, ReportWriter, stash_sink};
use source::SourceSetup;

/// Frames read per activation of the source (also the granularity at which
/// the watermark moves; the same on every worker).
pub const SOURCE_BATCH: usize = 4096;

/// Replay pace.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Speed {
    /// As fast as possible.
    Max,
    /// Recorded pace times this factor (`1x` = real time).
    Factor(f64),
}

impl std::str::FromStr for Speed {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "max" {
            return Ok(Speed::Max);
        }
        let n = s.strip_suffix('x').unwrap_or(s);
        match n.parse::<f64>() {
            Ok(f) if f.is_finite() && f > 0.0 => Ok(Speed::Factor(f)),
            _ => Err(format!(
                "invalid speed `{s}`: use `max`, `1x`, `10x`, `0.5x`"
            )),
        }
    }
}

pub struct RunOptions {
    pub workers: usize,
    pub speed: Speed,
    /// Show a progress bar (stderr is a terminal).
    pub progress: bool,
    /// Set (by a signal handler) to stop reading and finish cleanly.
    pub stop: Option<Arc<AtomicBool>>,
    /// Where counters go (`--metrics-listen`).
    pub metrics: Option<Metrics>,
    /// Packets lost by the capture so far (live): added to alert evidence.
    pub capture_drops: Option<Arc<AtomicU64>>,
    /// This process's place in a cluster formed through ZooKeeper
    /// (`crate::cluster`); `None`: a single process.
    pub cluster: Option<crate::cluster::net::Endpoints>,
    /// New pipeline versions offered while the run goes on (SIGHUP);
    /// see `reload`.
    pub reload: Option<Arc<reload::Reload>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            workers: 1,
            speed: Speed::Max,
            progress: false,
            stop: None,
            metrics: None,
            capture_drops: None,
            cluster: None,
            reload: None,
        }
    }
}

/// Where results go; taken by worker 0.
pub struct Outputs {
    pub alerts: Box<dyn Sink<Alert>>,
    /// The event log (`--events`), when asked for.
    pub events: Option<Box<dyn Sink<EventLine>>>,
    /// Top-k and newly observed reports (`--reports`), when asked for.
    pub reports: Option<Box<dyn Sink<Report>>>,
}

impl Outputs {
    /// JSON lines to each writer given: alerts, and the event log and
    /// reports when asked for.
    pub fn json_lines(
        alerts: Box<dyn std::io::Write + Send>,
        events: Option<Box<dyn std::io::Write + Send>>,
        reports: Option<Box<dyn std::io::Write + Send>>,
    ) -> Self {
        Outputs {
            alerts: Box::new(JsonLines::new(alerts)),
            events: events.map(|w| Box::new(JsonLines::new(w)) as Box<dyn Sink<EventLine>>),
            reports: reports.map(|w| Box::new(JsonLines::new(w)) as Box<dyn Sink<Report>>),
        }
    }
}

/// What a run counted; merged over workers.
#[derive(Debug)]
pub struct RunSummary {
    /// Frames read from the files.
    pub frames: u64,
    pub packet: PacketStats,
    pub dns_messages: u64,
    pub queries: u64,
    pub responses: u64,
    pub decode_errors: BTreeMap<DecodeError, u64>,
    /// Messages older than the watermark: logged, not counted by detectors.
    pub late_messages: u64,
    /// Keys whose state the reduce side refused because its bounded tables
    /// were full (`dnsmonitor_state_evictions_total{table="window_keys"}`).
    pub refused_window_keys: u64,
    /// Map-side tallies that reached the reduce side after their windows
    /// had closed (`dnsmonitor_late_tallies_total`).
    pub late_tallies: u64,
    pub alerts: BTreeMap<(Kind, State), u64>,
    /// Alerts still raised when the input ended.
    pub active_at_end: u64,
    pub top_names: TopK,
    pub top_clients: TopK,
    pub top_domains: TopK,
    pub first_ts_us: Option<i64>,
    pub last_ts_us: Option<i64>,
    /// Files that ended early with a read error.
    pub broken_files: Vec<(PathBuf, String)>,
    pub elapsed: Duration,
    /// The output stopped accepting (reader went away).
    pub output_closed: bool,
    /// Kernel counters at the end, for live captures.
    pub capture: Option<CaptureCounters>,
    /// dnstap frames, messages by type and errors by reason (message side;
    /// the listener's connection counts are added by the caller).
    pub dnstap: crate::dnstap::DnstapCounters,
    /// Pipeline versions after the starting one (a reload): number, origin
    /// and the event time from which it was in force.
    pub versions: Vec<(u64, String, i64)>,
}

impl Default for RunSummary {
    fn default() -> Self {
        RunSummary {
            frames: 0,
            packet: PacketStats::default(),
            dns_messages: 0,
            queries: 0,
            responses: 0,
            decode_errors: BTreeMap::new(),
            late_messages: 0,
            refused_window_keys: 0,
            late_tallies: 0,
            alerts: BTreeMap::new(),
            active_at_end: 0,
            top_names: TopK::new(TOP_NAMES_CAPACITY),
            top_clients: TopK::new(TOP_NAMES_CAPACITY),
            top_domains: TopK::new(TOP_NAMES_CAPACITY),
            first_ts_us: None,
            last_ts_us: None,
            broken_files: vec![],
            elapsed: Duration::ZERO,
            output_closed: false,
            capture: None,
            dnstap: Default::default(),
            versions: Vec::new(),
        }
    }
}

/// The input of a run: built before the workers start, so errors (a file
/// that does not open, a capture permission) stop the program first.
pub enum Input {
    /// Capture files: every worker opens them and reads every frame.
    Files(Vec<PathBuf>),
    /// One stream read by worker 0 only (live capture, queue, dnstap
    /// socket, pipe), which forwards each frame to the worker of its shard.
    Single(Box<dyn FrameSource + Send>),
}

/// How long a live source waits for packets per activation.
pub const LIVE_POLL: Duration = Duration::from_millis(100);
/// A silent live input lets event time follow the wall clock, this far behind.
pub const IDLE_AFTER_US: i64 = 1_000_000;

/// Replay capture files through the plan's pipeline.
pub fn replay(
    plan: Arc<Plan>,
    files: Vec<PathBuf>,
    opts: RunOptions,
    outputs: Outputs,
) -> anyhow::Result<RunSummary> {
    // Fail before starting when a file cannot be opened.
    PcapFiles::open(&files)?;
    run(plan, Input::Files(files), opts, outputs)
}

/// Run the pipeline on an input until it ends (or a stop is requested).
pub fn run(
    plan: Arc<Plan>,
    input: Input,
    opts: RunOptions,
    outputs: Outputs,
) -> anyhow::Result<RunSummary> {
    let clock = Clock;
    let started = clock.now();
    let summary = Arc::new(Mutex::new(RunSummary::default()));
    let (files, single) = match input {
        Input::Files(f) => (f, None),
        Input::Single(s) => (Vec::new(), Some(s)),
    };
    let workers = opts.workers.max(1);
    // This process's workers: global indices `first..first + workers`.
    let first = opts.cluster.as_ref().map_or(0, |e| e.index * workers);
    // Cluster: timely's communication over the formed members' sockets
    // (worker indices and peers become global); else one process.
    let (builders, others) = match &opts.cluster {
        Some(endpoints) => endpoints.communication(workers)?,
        None => timely::CommunicationConfig::Process(workers)
            .try_build()
            .map_err(|e| anyhow::anyhow!("cannot start workers: {e}"))?,
    };
    if let Some(r) = &opts.reload {
        if opts.cluster.is_some() {
            r.refuse_all(
                "a cluster member does not reload its pipeline file: push a new version with `dnsmonitor cluster push --at TIME` (every member switches at that event time)".into(),
            );
        } else if !files.is_empty() && workers > 1 {
            r.refuse_all(format!(
                "a replay of files with --workers {workers} has no single reader to decide the switch time for every worker: run with --workers 1, or read the capture from standard input, to reload live"
            ));
        }
    }
    let reload = opts.reload.clone();
    let shared = RunShared {
        reload: opts.reload,
        plan,
        // Every worker must know whether event lines and reports are wanted.
        events: outputs.events.is_some(),
        reports: outputs.reports.is_some(),
        outputs: Mutex::new(Some(outputs)),
        files,
        single: Mutex::new(single),
        local_workers: workers,
        speed: opts.speed,
        progress: opts.progress,
        stop: opts.stop,
        metrics: opts.metrics,
        capture_drops: opts.capture_drops,
        summary: summary.clone(),
        written: Arc::new([AtomicU64::new(0), AtomicU64::new(0)]),
        // A single input read here is spread over this process's workers
        // only (a queue's members are competing consumers).
        forwarding: Arc::new(spread::Forwarding::new(first..first + workers)),
    };
    let worker_config = timely::WorkerConfig::default();
    let guards = timely::execute::execute_from(builders, others, worker_config, move |worker| {
        let (index, peers) = (worker.index(), worker.peers());
        worker.dataflow::<Pane, _, _>(|scope| shared.build(scope, index, peers));
    })
    .map_err(|e| anyhow::anyhow!("cannot start workers: {e}"))?;
    let results = guards.join();
    for r in results {
        r.map_err(|e| anyhow::anyhow!("worker failed: {e}"))?;
    }
    let mut s = std::mem::take(&mut *summary.lock().unwrap_or_else(|p| p.into_inner()));
    if let Some(r) = reload {
        s.versions = r
            .versions()
            .into_iter()
            .skip(1)
            .map(|v| {
                let from_us = v.from as i64 * v.plan.window.slide_us;
                (v.number, v.plan.origin.clone(), from_us)
            })
            .collect();
    }
    s.elapsed = clock.now().saturating_duration_since(started);
    Ok(s)
}

/// What the workers of a run share.
struct RunShared {
    plan: Arc<Plan>,
    reload: Option<Arc<reload::Reload>>,
    events: bool,
    reports: bool,
    /// Taken by worker 0.
    outputs: Mutex<Option<Outputs>>,
    /// Capture files, read by every worker (empty for a single input).
    files: Vec<PathBuf>,
    /// A single input, taken by this process's first worker.
    single: Mutex<Option<Box<dyn FrameSource + Send>>>,
    /// Workers in this process (global index = process * this + local).
    local_workers: usize,
    speed: Speed,
    progress: bool,
    stop: Option<Arc<AtomicBool>>,
    metrics: Option<Metrics>,
    capture_drops: Option<Arc<AtomicU64>>,
    summary: Arc<Mutex<RunSummary>>,
    /// How far the alert and event sinks (worker 0) have written: the pane
    /// their input frontier reached, `u64::MAX` once finished
    /// (`sink::WRITTEN_*`). The source (worker 0 too for single inputs)
    /// settles its input with it.
    written: Arc<[AtomicU64; 2]>,
    /// What a single input's reader shares with the `Spread` operators of
    /// this process's workers.
    forwarding: Arc<spread::Forwarding>,
}

impl RunShared {
    /// One worker's dataflow: source, reduce, and the three sinks.
    fn build(&self, scope: Scope<'_, Pane>, index: usize, peers: usize) {
        let mine = if index == 0 {
            self.outputs.lock().ok().and_then(|mut o| o.take())
        } else {
            None
        };
        let (alert_sink, event_out, report_out) = match mine {
            Some(o) => (Some(o.alerts), o.events, o.reports),
            None => (None, None, None),
        };
        let (read, forward) = source::source(
            scope,
            SourceSetup {
                plan: self.plan.clone(),
                index,
                peers,
                input: self.input(index),
                events: self.events,
                reports: self.reports,
                speed: self.speed,
                progress: self.progress,
                stop: self.stop.clone(),
                metrics: self.metrics.clone(),
                summary: self.summary.clone(),
                written: self.written.clone(),
                forwarding: self.forwarding.clone(),
                reload: self.reload.clone(),
            },
        );
        // A single input's frames for the other workers (nothing for files).
        let spread = spread::spread(
            forward,
            spread::SpreadSetup {
                plan: self.plan.clone(),
                events: self.events,
                reports: self.reports,
                metrics: self.metrics.clone(),
                summary: self.summary.clone(),
                forwarding: self.forwarding.clone(),
                reload: self.reload.clone(),
            },
        );
        let streams = source::SourceStreams {
            shuffle: read.shuffle.concat(spread.shuffle),
            events: read.events.concat(spread.events),
            reports: read.reports.concat(spread.reports),
        };
        let alerts = reduce::reduce(
            streams.shuffle,
            &self.plan,
            index,
            self.local_workers,
            self.metrics.clone(),
            self.summary.clone(),
            self.reload.clone(),
        );
        let alert_writer = AlertWriter {
            out: Output::new("alert", alert_sink, self.summary.clone()),
            index,
            summary: self.summary.clone(),
            metrics: self.metrics.clone(),
            capture_drops: self.capture_drops.clone(),
            written: self.written.clone(),
            relay: self.relays(index),
        };
        stash_sink(alerts, "AlertSink", alert_writer);
        let report_writer = ReportWriter {
            out: Output::new("report", report_out, self.summary.clone()),
            plan: self.plan.clone(),
        };
        stash_sink(streams.reports, "ReportSink", report_writer);
        let event_writer = EventWriter {
            out: Output::new("event", event_out, self.summary.clone()),
            index,
            enabled: self.events,
            written: self.written.clone(),
            relay: self.relays(index),
        };
        stash_sink(streams.events, "EventSink", event_writer);
    }

    /// A cluster member other than process 0, on its first worker (where
    /// its single input is read): its sink parts store the global frontier
    /// as written, since the outputs are in process 0.
    fn relays(&self, index: usize) -> bool {
        index != 0 && index.is_multiple_of(self.local_workers)
    }

    /// This worker's input: every worker reads the files; a single input
    /// goes to the first worker of each process (worker 0 of a single
    /// process; in a cluster each member reads its own source).
    fn input(&self, index: usize) -> Option<Box<dyn FrameSource>> {
        if !self.files.is_empty() {
            // Checked before the workers started (`replay`).
            Some(Box::new(PcapFiles::new(&self.files)))
        } else if index.is_multiple_of(self.local_workers) {
            self.single
                .lock()
                .ok()
                .and_then(|mut s| s.take())
                .map(|s| s as Box<dyn FrameSource>)
        } else {
            None
        }
    }
}

/// The frontier's time, `None` once it is empty (input finished).
fn frontier_min(frontier: &timely::progress::frontier::MutableAntichain<Pane>) -> Option<Pane> {
    frontier.frontier().first().copied()
}
