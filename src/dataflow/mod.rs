//! The timely wiring, and only that. Each worker runs:
//!
//! ```text
//! PcapSource ──Shuffle (by key hash)──> KeyedWindows ──Alert (to worker 0)──> AlertSink
//!      └─────EventLine (to worker 0)──────────────────────────────────────> EventSink
//! ```
//! Timestamps are pane indices (`window::Pane`). Every worker reads every
//! frame of the input (a pcap read costs ~50 ns) but decodes only the frames
//! of its shard (`PacketDecoder::shard_key`), so the watermark, the batch
//! boundaries and thus every capability are the same on every worker: the
//! output does not depend on the worker count. The source holds its
//! capability at the watermark pane (newest packet minus the allowed
//! lateness); when it moves, the map-side tallies of older panes are sent
//! and the frontier lets the reduce side close those windows. Sinks sort each
//! closed window's output before writing it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::{Operator, OutputBuilder};

use crate::alert::{Alert, State};
use crate::config::Plan;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::detect::Kind;
use crate::dns::DecodeError;
pub use crate::ingest::EventLine;
use crate::ingest::Published;
use crate::ingest::{Ingest, TOP_NAMES_CAPACITY};
use crate::metrics::Metrics;
use crate::packet::{PacketDecoder, PacketStats};
use crate::reports::{self, ReportPart};
use crate::sinks::{AlertSink, is_broken_pipe};
use crate::sketch::topk::TopK;
use crate::sources::{CaptureCounters, FrameSource, PcapFiles, ReadStatus};
use crate::time::Clock;
use crate::window::Pane;
use crate::window::keyed::KeyedWindows;
use crate::window::map_side::{MAX_MAP_ENTRIES, Shuffle};

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
    pub stop: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// Where counters go (`--metrics-listen`).
    pub metrics: Option<Metrics>,
    /// Packets lost by the capture so far (live): added to alert evidence.
    pub capture_drops: Option<Arc<AtomicU64>>,
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
        }
    }
}

/// Where results go; taken by worker 0.
pub struct Outputs {
    pub alerts: Box<dyn AlertSink>,
    pub events: Option<Box<dyn Write + Send>>,
    /// Top-k report lines (`dnsmonitor.report/1`).
    pub reports: Option<Box<dyn Write + Send>>,
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
        }
    }
}

/// The input of a run: built before the workers start, so errors (a file
/// that does not open, a capture permission) stop the program first.
pub enum Input {
    /// Capture files: every worker opens them and reads every frame.
    Files(Vec<PathBuf>),
    /// One source read by worker 0 only (live capture).
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
    // Every worker must know whether event lines are wanted.
    let events_enabled = outputs.events.is_some();
    let reports_enabled = outputs.reports.is_some();
    let outputs = Arc::new(Mutex::new(Some(outputs)));
    let (files, single) = match input {
        Input::Files(f) => (Arc::new(f), None),
        Input::Single(s) => (Arc::new(Vec::new()), Some(s)),
    };
    let single = Arc::new(Mutex::new(single));
    let speed = opts.speed;
    let progress = opts.progress;
    let workers = opts.workers.max(1);
    let stop = opts.stop.clone();
    let metrics = opts.metrics.clone();
    let capture_drops = opts.capture_drops.clone();
    // How far the alert and event sinks (worker 0) have written: the pane
    // their input frontier reached, `u64::MAX` once finished. The source
    // (worker 0 too for single inputs) settles its input with it.
    let written: Arc<[AtomicU64; 2]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);

    let summary_w = summary.clone();
    let guards = timely::execute(timely::Config::process(workers), move |worker| {
        let index = worker.index();
        let peers = worker.peers();
        let plan = plan.clone();
        let summary = summary_w.clone();
        let mine = if index == 0 {
            outputs.lock().ok().and_then(|mut o| o.take())
        } else {
            None
        };
        let (mut alert_sink, mut event_out, mut report_out) = match mine {
            Some(o) => (Some(o.alerts), o.events, o.reports),
            None => (None, None, None),
        };
        let mut source: Option<Box<dyn FrameSource>> = if !files.is_empty() {
            // Checked before the workers started (`replay`).
            Some(Box::new(PcapFiles::new(&files)))
        } else if index == 0 {
            single
                .lock()
                .ok()
                .and_then(|mut s| s.take())
                .map(|s| s as Box<dyn FrameSource>)
        } else {
            None
        };
        let stop = stop.clone();
        let metrics = metrics.clone();
        let capture_drops = capture_drops.clone();
        let written = written.clone();

        worker.dataflow::<Pane, _, _>(|scope| {
            let mut builder = OperatorBuilder::new("Source".to_owned(), scope);
            let info = builder.operator_info();
            let activator = scope.activator_for(info.address.clone());
            let (out_shuffle, shuffle) = builder.new_output::<Vec<Shuffle>>();
            let (out_events, events) = builder.new_output::<Vec<EventLine>>();
            let (out_reports, reports) = builder.new_output::<Vec<ReportPart>>();
            let mut out_reports = OutputBuilder::from(out_reports);
            let mut out_shuffle = OutputBuilder::from(out_shuffle);
            let mut out_events = OutputBuilder::from(out_events);

            let src_plan = plan.clone();
            let src_summary = summary.clone();
            let src_metrics = metrics.clone();
            let src_written = written.clone();
            builder.build(move |mut caps| {
                let mut cap_reports = caps.pop();
                let mut cap_events = caps.pop();
                let mut cap_shuffle = caps.pop();
                let spec = src_plan.window;
                let mut ingest = Ingest::new(src_plan.clone(), events_enabled);
                if reports_enabled {
                    ingest = ingest.with_reports();
                }
                let interval_us = src_plan.report_interval_us;
                let shared = source.as_ref().is_some_and(|s| s.shared());
                let live = source.as_ref().is_some_and(|s| s.live());
                let mut pace_origin: Option<(i64, std::time::Instant)> = None;
                let total = source
                    .as_ref()
                    .and_then(|s| s.progress())
                    .map_or(0, |p| p.1);
                let bar = (progress && index == 0 && !live).then(|| progress_bar(total));
                let clock = Clock;
                let mut published = Published::default();
                let mut capture_published = CaptureCounters::default();

                move |_frontiers| {
                    let (Some(cs), Some(ce), Some(cr)) = (
                        cap_shuffle.as_mut(),
                        cap_events.as_mut(),
                        cap_reports.as_mut(),
                    ) else {
                        return;
                    };
                    let cap_pane = *cs.time();
                    let stopping = stop
                        .as_ref()
                        .is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed));
                    if let Some(src) = source.as_mut() {
                        let w = src_written[0]
                            .load(Ordering::Acquire)
                            .min(src_written[1].load(Ordering::Acquire));
                        src.outputs_done((w != u64::MAX).then_some(w));
                    }
                    let status = match source.as_mut() {
                        None => ReadStatus::Done,
                        Some(src) => {
                            let ingest = &mut ingest;
                            let pace = &mut pace_origin;
                            // On stop, drain what the kernel already holds
                            // without waiting, then finish.
                            let wait = if stopping { Duration::ZERO } else { LIVE_POLL };
                            let st = src.read(SOURCE_BATCH, wait, &mut |raw| {
                                let ts = raw.ts_us;
                                ingest.saw_frame(ts, raw.data.len());
                                if let Speed::Factor(f) = speed {
                                    let (t0, w0) = *pace.get_or_insert((ts, clock.now()));
                                    let due =
                                        Duration::from_micros(((ts - t0).max(0) as f64 / f) as u64);
                                    let elapsed = clock.now().saturating_duration_since(w0);
                                    if due > elapsed {
                                        clock.sleep(due - elapsed);
                                    }
                                }
                                if shared
                                    && peers > 1
                                    && PacketDecoder::shard_key(raw.linktype, raw.data)
                                        % peers as u64
                                        != index as u64
                                {
                                    return;
                                }
                                ingest.process(
                                    raw.file as u32,
                                    raw.frame,
                                    raw.linktype,
                                    ts,
                                    raw.data,
                                    cap_pane,
                                );
                            });
                            match st {
                                ReadStatus::Idle if stopping => ReadStatus::Done,
                                _ if stopping && !src.live() => ReadStatus::Done,
                                st => st,
                            }
                        }
                    };
                    if let (Some(b), Some((done, total))) =
                        (&bar, source.as_ref().and_then(|s| s.progress()))
                    {
                        b.set_position(done.min(total));
                    }
                    let done = status == ReadStatus::Done;
                    let max_ts = ingest.counters.max_ts_us;
                    // Live: the kernel counters, read once per activation, feed
                    // the metrics and (through the source) alert evidence.
                    if live
                        && let Some(cc) = source.as_mut().and_then(|s| s.capture_counters())
                        && let Some(m) = &src_metrics
                    {
                        m.add_capture(cc, &mut capture_published);
                    }
                    if let Some(m) = &src_metrics {
                        let reader = index == 0 || !shared;
                        ingest.publish(&mut published, m, reader);
                        if index == 0 {
                            m.watermark.set(spec.end_us(cap_pane) as f64 / 1e6);
                            if live && max_ts != i64::MIN {
                                m.event_time_lag
                                    .set((clock.unix_micros() - max_ts) as f64 / 1e6);
                            }
                        }
                    }
                    // Event time known to be complete (before lateness).
                    let mut wm_ts = max_ts;
                    if live {
                        wm_ts = wm_ts.max(clock.unix_micros() - IDLE_AFTER_US);
                    }
                    if let Some(w) = source.as_mut().and_then(|s| s.watermark_us()) {
                        wm_ts = w;
                    }

                    let mut shuffle_out = out_shuffle.activate();
                    let mut events_out = out_events.activate();
                    if !ingest.event_buf.is_empty() {
                        events_out
                            .session(&*ce)
                            .give_iterator(ingest.event_buf.drain(..));
                    }
                    let new_pane = if done {
                        None
                    } else if wm_ts == i64::MIN {
                        Some(cap_pane)
                    } else {
                        Some(spec.watermark_pane(wm_ts).max(cap_pane))
                    };
                    // Send tallies of panes the capability is about to leave,
                    // or everything when the table grew past its bound.
                    let below = if ingest.tables.entries() > MAX_MAP_ENTRIES {
                        None
                    } else {
                        new_pane
                    };
                    ingest.tables.drain_each(below, |pane, records| {
                        let c = cs.delayed(&pane.max(cap_pane));
                        shuffle_out.session(&c).give_iterator(records);
                    });
                    // Report intervals that end before the new watermark pane.
                    if let Some(r) = ingest.reports.as_mut() {
                        let below = new_pane
                            .map(|p| reports::first_open_interval(p, interval_us, spec.slide_us));
                        let mut reports_out = out_reports.activate();
                        for part in r.drain(below) {
                            let last =
                                reports::last_pane(part.interval, interval_us, spec.slide_us);
                            let c = cr.delayed(&last.max(cap_pane));
                            reports_out.session(&c).give(part);
                        }
                    }
                    match new_pane {
                        Some(p) => {
                            if p > cap_pane {
                                cs.downgrade(&p);
                                ce.downgrade(&p);
                                cr.downgrade(&p);
                            }
                            activator.activate();
                        }
                        None => {
                            // End of input: tell every reduce worker the last pane.
                            let last_pane = if wm_ts == i64::MIN {
                                cap_pane
                            } else {
                                spec.pane_of(wm_ts).max(cap_pane)
                            };
                            let ends =
                                (0..peers as u64).map(|target| Shuffle::End { target, last_pane });
                            shuffle_out.session(&*cs).give_iterator(ends);
                            drop(shuffle_out);
                            drop(events_out);
                            if let Some(b) = &bar {
                                b.finish_and_clear();
                            }
                            let c = &ingest.counters;
                            let mut s = src_summary.lock().unwrap_or_else(|p| p.into_inner());
                            if index == 0 || !shared {
                                s.frames += c.frames;
                                s.first_ts_us = match (s.first_ts_us, c.first_ts_us) {
                                    (Some(a), Some(b)) => Some(a.min(b)),
                                    (a, b) => a.or(b),
                                };
                                if c.max_ts_us != i64::MIN {
                                    s.last_ts_us = Some(
                                        s.last_ts_us.map_or(c.max_ts_us, |m| m.max(c.max_ts_us)),
                                    );
                                }
                            }
                            if let Some(src) = source.as_mut() {
                                if index == 0 {
                                    s.broken_files = src.broken();
                                }
                                if let Some(cc) = src.capture_counters() {
                                    s.capture = Some(cc);
                                }
                            }
                            s.packet.merge(ingest.packet_stats());
                            s.dns_messages += c.dns_messages;
                            s.queries += c.queries;
                            s.responses += c.responses;
                            s.late_messages += c.late;
                            for (k, v) in &c.decode_errors {
                                *s.decode_errors.entry(*k).or_default() += v;
                            }
                            s.top_names.merge(&c.top);
                            s.top_clients.merge(&c.top_clients);
                            s.top_domains.merge(&c.top_domains);
                            cap_shuffle = None;
                            cap_events = None;
                            cap_reports = None;
                            source = None;
                        }
                    }
                }
            });
            // Reduce side: windows per key, closed by the frontier.
            let red_plan = plan.clone();
            let red_summary = summary.clone();
            let red_metrics = metrics.clone();
            let alerts = shuffle
                .unary_frontier::<timely::container::CapacityContainerBuilder<Vec<Alert>>, _, _, _>(
                    Exchange::new(|s: &Shuffle| s.route()),
                    "KeyedWindows",
                    move |_cap, _info| {
                        let spec = red_plan.window;
                        let mut windows = KeyedWindows::new(
                            red_plan.window,
                            red_plan.lifecycle,
                            red_plan.detectors.clone(),
                        );
                        let mut held: Option<timely::dataflow::operators::Capability<Pane>> = None;
                        let mut last_pane: Option<Pane> = None;
                        let mut closed_through: Option<Pane> = None;
                        let mut out_buf: Vec<Alert> = Vec::new();
                        let mut reported = false;
                        let mut counted_through: Option<Pane> = None;
                        let mut first_data: Option<Pane> = None;
                        let mut refused_published = 0u64;
                        move |(input, frontier), output| {
                            input.for_each_stamp(|cap, data| {
                                let Some(&t) = cap.least() else { return };
                                let mut any_tally = false;
                                for batch in data {
                                    for s in batch.drain(..) {
                                        match s {
                                            Shuffle::Tally { det, key, tally } => {
                                                any_tally = true;
                                                windows.add(t, det, key, tally)
                                            }
                                            Shuffle::End { last_pane: p, .. } => {
                                                last_pane = Some(last_pane.map_or(p, |q| q.max(p)));
                                            }
                                        }
                                    }
                                }
                                // Hold a capability only for data that can produce alerts.
                                if any_tally && first_data.is_none() {
                                    first_data = Some(t);
                                }
                                if any_tally && held.as_ref().is_none_or(|h| t < *h.time()) {
                                    held = cap.retain_least(0);
                                }
                            });
                            let through = match frontier_min(frontier) {
                                Some(f) if f > 0 => Some(f - 1),
                                Some(_) => None,
                                None => last_pane,
                            };
                            // Windows passed by the frontier since the first data
                            // (worker 0 counts).
                            if index == 0
                                && let (Some(m), Some(e), Some(f)) =
                                    (&red_metrics, through, first_data)
                            {
                                let from = counted_through.map_or(f, |c| c + 1);
                                if e + 1 > from {
                                    m.windows_closed.inc_by(e + 1 - from);
                                    counted_through = Some(e);
                                }
                            }
                            if let (Some(e), Some(h)) = (through, held.as_mut())
                                && closed_through.is_none_or(|c| e > c)
                            {
                                windows.close_through(e, &mut out_buf);
                                if let Some(m) = &red_metrics {
                                    let refused = windows.refused_keys;
                                    m.state_evictions
                                        .with_label_values(&["window_keys"])
                                        .inc_by(refused - refused_published);
                                    refused_published = refused;
                                }
                                // Each state is sent at its window's pane, so the sink
                                // can order output window by window.
                                let mut i = 0;
                                while i < out_buf.len() {
                                    let pane =
                                        spec.pane_of(out_buf[i].event_time_us - 1).max(*h.time());
                                    let j = out_buf[i..]
                                        .iter()
                                        .position(|a| {
                                            spec.pane_of(a.event_time_us - 1).max(*h.time()) != pane
                                        })
                                        .map_or(out_buf.len(), |k| i + k);
                                    let c = h.delayed(&pane);
                                    output
                                        .session(&c)
                                        .give_iterator(out_buf[i..j].iter().cloned());
                                    i = j;
                                }
                                out_buf.clear();
                                closed_through = Some(e);
                                if let Some(f) = frontier_min(frontier)
                                    && f > *h.time()
                                {
                                    h.downgrade(&f);
                                }
                            }
                            if frontier.is_empty() {
                                held = None;
                                if !reported {
                                    reported = true;
                                    let mut s =
                                        red_summary.lock().unwrap_or_else(|p| p.into_inner());
                                    s.active_at_end += windows.active_alerts() as u64;
                                }
                            }
                        }
                    },
                );

            // Alert sink on worker 0: sort each closed window, then write.
            let sink_summary = summary.clone();
            let sink_metrics = metrics.clone();
            let sink_drops = capture_drops.clone();
            let sink_written = written.clone();
            let mut pending: BTreeMap<Pane, Vec<Alert>> = BTreeMap::new();
            alerts.sink(
                Exchange::new(|_: &Alert| 0),
                "AlertSink",
                move |(input, frontier)| {
                    input.for_each_stamp(|cap, data| {
                        let Some(&t) = cap.least() else { return };
                        let v = pending.entry(t).or_default();
                        for batch in data {
                            v.append(batch);
                        }
                    });
                    for (_, mut v) in take_below(&mut pending, frontier_min(frontier)) {
                        v.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
                        let mut s = sink_summary.lock().unwrap_or_else(|p| p.into_inner());
                        for a in v.iter_mut() {
                            *s.alerts.entry((a.kind, a.state)).or_default() += 1;
                            if let Some(m) = &sink_metrics {
                                let labels =
                                    [a.kind.as_str(), a.severity.as_str(), a.state.as_str()];
                                m.alerts.with_label_values(&labels).inc();
                                let g = m.active_alerts.with_label_values(&[a.kind.as_str()]);
                                match a.state {
                                    State::Raised => g.inc(),
                                    State::Resolved => g.dec(),
                                    State::Updated => {}
                                }
                            }
                            if let Some(d) = &sink_drops {
                                a.add_evidence(
                                    "capture_dropped_packets",
                                    d.load(Ordering::Relaxed).into(),
                                );
                            }
                        }
                        if let Some(sink) = alert_sink.as_mut()
                            && let Err(e) = sink.emit(&v)
                        {
                            if !is_broken_pipe(&e) {
                                tracing::error!(error = %e, "alert output failed");
                            }
                            s.output_closed = true;
                            alert_sink = None;
                        }
                    }
                    if frontier.is_empty()
                        && let Some(sink) = alert_sink.as_mut()
                        && let Err(e) = sink.finish()
                    {
                        // (Tee prints its sinks' errors.) Not everything
                        // reached its destination: say so in the summary.
                        tracing::debug!(error = %e, "alert output did not finish");
                        sink_summary
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .output_closed = true;
                        alert_sink = None;
                    }
                    // Written only counts once the sink says it is safe (a
                    // broker confirmed); otherwise a later step moves it on.
                    // (A failed sink is gone: then nothing more is released.)
                    if index == 0 && alert_sink.as_ref().is_some_and(|s| s.settled()) {
                        let f = frontier_min(frontier).unwrap_or(u64::MAX);
                        sink_written[0].store(f, Ordering::Release);
                    }
                },
            );

            // Reports on worker 0: merge each interval's parts once complete.
            let mut pending_rep: BTreeMap<u64, Vec<ReportPart>> = BTreeMap::new();
            let rep_plan = plan.clone();
            let rep_summary = summary.clone();
            reports.sink(
                Exchange::new(|_: &ReportPart| 0),
                "ReportSink",
                move |(input, frontier)| {
                    input.for_each_stamp(|_cap, data| {
                        for batch in data {
                            for part in batch.drain(..) {
                                pending_rep.entry(part.interval).or_default().push(part);
                            }
                        }
                    });
                    let interval_us = rep_plan.report_interval_us;
                    let slide_us = rep_plan.window.slide_us;
                    // Interval i is complete once the frontier passed its last pane.
                    let bound = frontier_min(frontier)
                        .map(|f| reports::first_open_interval(f, interval_us, slide_us));
                    for (i, parts) in take_below(&mut pending_rep, bound) {
                        let lines = reports::render(i, interval_us, &parts, rep_plan.report_top);
                        write_or_close(&mut report_out, "report", &rep_summary, |out| {
                            for line in &lines {
                                out.write_all(line.as_bytes())?;
                                out.write_all(b"\n")?;
                            }
                            out.flush()
                        });
                    }
                },
            );

            // Event log on worker 0, in frame order.
            let mut pending_ev: BTreeMap<Pane, Vec<EventLine>> = BTreeMap::new();
            let ev_summary = summary.clone();
            let ev_written = written.clone();
            events.sink(
                Exchange::new(|_: &EventLine| 0),
                "EventSink",
                move |(input, frontier)| {
                    input.for_each_stamp(|cap, data| {
                        let Some(&t) = cap.least() else { return };
                        let v = pending_ev.entry(t).or_default();
                        for batch in data {
                            v.append(batch);
                        }
                    });
                    for (_, mut v) in take_below(&mut pending_ev, frontier_min(frontier)) {
                        v.sort_by_key(|e| (e.file, e.frame));
                        write_or_close(&mut event_out, "event", &ev_summary, |out| {
                            v.iter().try_for_each(|e| out.write_all(&e.line))
                        });
                    }
                    // Flushed at every step: the source acknowledges input
                    // once its lines are written.
                    if index == 0 {
                        write_or_close(&mut event_out, "event", &ev_summary, |out| out.flush());
                        // An event output that failed releases nothing more.
                        if !events_enabled || event_out.is_some() {
                            let f = frontier_min(frontier).unwrap_or(u64::MAX);
                            ev_written[1].store(f, Ordering::Release);
                        }
                    }
                },
            );
        });
    })
    .map_err(|e| anyhow::anyhow!("cannot start workers: {e}"))?;
    let results = guards.join();
    for r in results {
        r.map_err(|e| anyhow::anyhow!("worker failed: {e}"))?;
    }
    let mut s = std::mem::take(&mut *summary.lock().unwrap_or_else(|p| p.into_inner()));
    s.elapsed = clock.now().saturating_duration_since(started);
    Ok(s)
}

/// The frontier's time, `None` once it is empty (input finished).
fn frontier_min(frontier: &timely::progress::frontier::MutableAntichain<Pane>) -> Option<Pane> {
    frontier.frontier().first().copied()
}

/// Take the stashed entries keyed below `bound` (all of them when `None`):
/// what the frontier has passed, in key order.
fn take_below<K: Ord, V>(pending: &mut BTreeMap<K, V>, bound: Option<K>) -> BTreeMap<K, V> {
    let rest = match bound {
        Some(b) => pending.split_off(&b),
        None => BTreeMap::new(),
    };
    std::mem::replace(pending, rest)
}

/// Write to an optional output; when that fails the output is dropped, the
/// summary says so, and the error is logged unless the reader went away.
fn write_or_close(
    out: &mut Option<Box<dyn Write + Send>>,
    what: &str,
    summary: &Mutex<RunSummary>,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) {
    let Some(o) = out.as_mut() else { return };
    if let Err(e) = write(o.as_mut()) {
        if !is_broken_pipe(&e) {
            tracing::error!(error = %e, "{what} output failed");
        }
        summary
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .output_closed = true;
        *out = None;
    }
}

fn progress_bar(total: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}
