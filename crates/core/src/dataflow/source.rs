//! The source operator: one per worker. Each activation reads a batch of
//! frames (`SOURCE_BATCH`), lets `Ingest` decode this worker's shard, then
//! moves the watermark and ships what it leaves behind on three outputs:
//!
//! - map-side tallies (`Shuffle`), exchanged by key hash to the reduce side;
//! - event lines, for the event log on worker 0;
//! - top-k report parts, for the report sink on worker 0.
//!
//! All three capabilities stand at the watermark pane. At the end of input
//! the source sends `Shuffle::End` with the last pane to every reduce
//! worker, adds its counts to the summary and drops its capabilities.
//!
//! Paced replay (`--speed`): a frame is handed on when its time comes. The
//! activation ends at the first frame not yet due (kept in `held`) or once
//! the watermark moved, and the operator asks to be woken when the frame
//! falls due (at most `LIVE_POLL` later); meanwhile the watermark follows
//! the pace (`Pacer::idle_complete_us`). So windows close, and alerts are
//! written, in (paced) real time, as with a live capture; which messages
//! are late does not depend on it (`rules::LateBound`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::{Scope, Stream};
use timely::scheduling::Activator;

use super::reload::Reload;
use super::rules::{self, LateBound, Pacer, Watermark};
use super::sink::{WRITTEN_ALERTS, WRITTEN_EVENTS};
use super::spread::{Forwarding, FrameBatch};
use super::{EventLine, LIVE_POLL, RunSummary, SOURCE_BATCH, Speed};
use crate::config::Plan;
use crate::engine::ingest::{Ingest, Published};
use crate::engine::map_side::Shuffle;
use crate::metrics::Metrics;
use crate::packet::PacketDecoder;
use crate::reports::{self, ReportPart};
use crate::sources::{CaptureCounters, FrameSource, RawPacket, ReadStatus};
use crate::time::Clock;
use crate::window::Pane;

type Output<D> = OutputBuilder<Pane, CapacityContainerBuilder<Vec<D>>>;

/// What `run` gives every worker's source.
pub(crate) struct SourceSetup {
    pub(crate) plan: Arc<Plan>,
    pub(crate) index: usize,
    pub(crate) peers: usize,
    /// `None` on workers that read nothing (a single input, not worker 0).
    pub(crate) input: Option<Box<dyn FrameSource>>,
    pub(crate) events: bool,
    pub(crate) reports: bool,
    pub(crate) speed: Speed,
    pub(crate) progress: bool,
    pub(crate) stop: Option<Arc<AtomicBool>>,
    pub(crate) metrics: Option<Metrics>,
    pub(crate) summary: Arc<Mutex<RunSummary>>,
    /// How far the alert and event sinks wrote (`sink::WRITTEN_*`).
    pub(crate) written: Arc<[AtomicU64; 2]>,
    /// The workers of this process (a single input read here is spread
    /// over them) and what this reader shares with their `Spread`s.
    pub(crate) forwarding: Arc<Forwarding>,
    /// New pipeline versions (SIGHUP), taken by the input's reader.
    pub(crate) reload: Option<Arc<Reload>>,
}

/// How long the reader waits when a worker has `MAX_FORWARD_AHEAD` frames.
const FORWARD_WAIT: Duration = Duration::from_micros(200);

/// The three output streams of the source (and of `Spread`).
pub(crate) struct SourceStreams<'s> {
    pub(crate) shuffle: Stream<'s, Pane, Vec<Shuffle>>,
    pub(crate) events: Stream<'s, Pane, Vec<EventLine>>,
    pub(crate) reports: Stream<'s, Pane, Vec<ReportPart>>,
}

/// Build this worker's source operator. Besides its three streams it
/// returns the frames a single input's reader forwards to the other
/// workers (`spread`); empty for files.
pub(crate) fn source<'s>(
    scope: Scope<'s, Pane>,
    setup: SourceSetup,
) -> (SourceStreams<'s>, Stream<'s, Pane, Vec<FrameBatch>>) {
    let mut builder = OperatorBuilder::new("Source".to_owned(), scope);
    let info = builder.operator_info();
    let activator = scope.activator_for(info.address.clone());
    let (out_shuffle, shuffle) = builder.new_output::<Vec<Shuffle>>();
    let (out_events, events) = builder.new_output::<Vec<EventLine>>();
    let (out_reports, reports) = builder.new_output::<Vec<ReportPart>>();
    let (out_forward, forward) = builder.new_output::<Vec<FrameBatch>>();
    let outputs = Outputs::new(
        scope.peers(),
        OutputBuilder::from(out_shuffle),
        OutputBuilder::from(out_events),
        OutputBuilder::from(out_reports),
    );
    let out_forward = OutputBuilder::from(out_forward);
    builder.build(move |mut caps| {
        let forward_cap = caps.pop();
        let caps = Caps::from_vec(caps);
        let mut source = Source::new(setup, activator, outputs, caps);
        source.out_forward = Some((out_forward, forward_cap));
        move |_frontiers| source.step()
    });
    (
        SourceStreams {
            shuffle,
            events,
            reports,
        },
        forward,
    )
}

pub(crate) struct Outputs {
    pub(crate) shuffle: Output<Shuffle>,
    pub(crate) events: Output<EventLine>,
    pub(crate) reports: Output<ReportPart>,
    /// One reduce worker: a pane's records go to it as the vector they
    /// were tallied in (no copy). With several, the exchange partitions
    /// them record by record anyway, and a whole pane sent at once only
    /// piles up in the channels (285 against 250–262 MB peak RSS in one
    /// pair of runs of the bench capture with 2 workers): then they go as
    /// a stream.
    shuffle_whole: bool,
}

impl Outputs {
    /// The outputs of a worker's map side in a dataflow of `peers` workers.
    pub(crate) fn new(
        peers: usize,
        shuffle: Output<Shuffle>,
        events: Output<EventLine>,
        reports: Output<ReportPart>,
    ) -> Outputs {
        Outputs {
            shuffle,
            events,
            reports,
            shuffle_whole: peers == 1,
        }
    }
}

/// One capability per output, all at the watermark pane.
pub(crate) struct Caps {
    pub(crate) shuffle: Capability<Pane>,
    pub(crate) events: Capability<Pane>,
    pub(crate) reports: Capability<Pane>,
}

impl Caps {
    /// The operator's initial capabilities, in output order (shuffle,
    /// events, reports); `None` if they are not all there.
    pub(crate) fn from_vec(mut caps: Vec<Capability<Pane>>) -> Option<Caps> {
        let reports = caps.pop();
        let events = caps.pop();
        let shuffle = caps.pop();
        match (shuffle, events, reports) {
            (Some(shuffle), Some(events), Some(reports)) => Some(Caps {
                shuffle,
                events,
                reports,
            }),
            _ => None,
        }
    }

    pub(crate) fn downgrade(&mut self, p: Pane) {
        self.shuffle.downgrade(&p);
        self.events.downgrade(&p);
        self.reports.downgrade(&p);
    }
}

/// The source operator's state.
pub(crate) struct Source {
    place: Place,
    /// Dropped at the end of input.
    input: Option<Box<dyn FrameSource>>,
    live: bool,
    ingest: Ingest,
    watermark: Watermark,
    interval_us: i64,
    /// Lateness from the newest frame (`None`: from the capabilities, for
    /// live input and sources that keep their own watermark).
    late: Option<LateBound>,
    pacer: Option<Pacer>,
    /// Paced replay: the next frame, read before it was due.
    held: Option<HeldFrame>,
    /// Paced replay: wake the operator after this long (the held frame).
    wake: Option<Duration>,
    bar: Option<indicatif::ProgressBar>,
    clock: Clock,
    published: Published,
    capture_published: CaptureCounters,
    stop: Option<Arc<AtomicBool>>,
    metrics: Option<Metrics>,
    summary: Arc<Mutex<RunSummary>>,
    written: Arc<[AtomicU64; 2]>,
    activator: Activator,
    outputs: Outputs,
    /// `None` once the input ended.
    caps: Option<Caps>,
    /// Frames for the other workers (a single input read by this one with
    /// more than one worker): one batch per worker, and their output.
    /// (`forward[i]` goes to worker `local_start + i`.)
    forward: Vec<FrameBatch>,
    out_forward: Option<(Output<FrameBatch>, Option<Capability<Pane>>)>,
    forwarding: Arc<Forwarding>,
    /// New pipeline versions, when this worker reads input: it follows
    /// every decided one; the input's one reader (`decides`) also picks
    /// the pane of a reload (SIGHUP).
    reload: Option<Arc<Reload>>,
    decides: bool,
    /// Frames read but not handed on: a cluster version waits at their
    /// pane (`Reload::may_pass`).
    backlog: std::collections::VecDeque<HeldFrame>,
}

impl Source {
    fn new(setup: SourceSetup, activator: Activator, outputs: Outputs, caps: Option<Caps>) -> Self {
        let input = setup.input;
        let mut ingest = Ingest::new(setup.plan.clone(), setup.events);
        if setup.reports {
            ingest = ingest.with_reports();
        }
        let shared = input.as_ref().is_some_and(|s| s.shared());
        let reads = input.is_some();
        // Only the one reader of the input decides where a version switches.
        let reader = input.is_some() && (!shared || setup.peers == 1);
        let local = setup.forwarding.local();
        let forward = if input.is_some() && !shared && local.len() > 1 {
            local
                .clone()
                .map(|w| setup.forwarding.batch(w as u64))
                .collect()
        } else {
            Vec::new()
        };
        let live = input.as_ref().is_some_and(|s| s.live());
        let own_watermark = input.as_ref().is_some_and(|s| s.own_watermark());
        let total = input.as_ref().and_then(|s| s.progress()).map_or(0, |p| p.1);
        let bar = (setup.progress && setup.index == 0 && !live).then(|| progress_bar(total));
        Source {
            place: Place {
                index: setup.index,
                peers: setup.peers,
                shared,
                local_start: local.start,
            },
            input,
            live,
            ingest,
            watermark: Watermark {
                spec: setup.plan.window,
                live,
            },
            interval_us: setup.plan.report_interval_us,
            late: (!live && !own_watermark).then(|| LateBound::new(setup.plan.window)),
            pacer: Pacer::new(setup.speed),
            held: None,
            wake: None,
            bar,
            clock: Clock,
            published: Published::default(),
            capture_published: CaptureCounters::default(),
            stop: setup.stop,
            metrics: setup.metrics,
            summary: setup.summary,
            written: setup.written,
            activator,
            outputs,
            caps,
            forward,
            out_forward: None,
            forwarding: setup.forwarding,
            reload: setup.reload.filter(|_| reads),
            decides: reader,
            backlog: Default::default(),
        }
    }

    /// One activation: read a batch, move the watermark, ship what it left.
    fn step(&mut self) {
        let Some(caps) = self.caps.take() else { return };
        let cap_pane = *caps.shuffle.time();
        let stopping = self
            .stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed));
        self.settle_input();
        self.take_reload(&caps, cap_pane);
        let status = self.read_batch(cap_pane, stopping);
        if let (Some(b), Some((done, total))) =
            (&self.bar, self.input.as_ref().and_then(|s| s.progress()))
        {
            b.set_position(done.min(total));
        }
        let followed = self.ingest.switches() + 1;
        let mut done = status == ReadStatus::Done;
        if done && self.reload.as_ref().is_some_and(|r| r.busy(followed)) {
            // A cluster version waits for the members' answers: end once
            // it is decided (and followed) or released.
            done = false;
            self.wake = Some(GATE_WAIT);
        }
        if done {
            self.ingest.settle_time();
        }
        self.publish_metrics(cap_pane);
        let complete_us = self.complete_us();
        let mut next_pane = self.watermark.next_pane(done, complete_us, cap_pane);
        if let (Some(r), Some(p)) = (&self.reload, next_pane) {
            // Not past the pane a cluster version waits at.
            next_pane = Some(r.cap_at_most(p, followed).max(cap_pane));
        }
        self.ship(&caps, cap_pane, next_pane);
        match next_pane {
            Some(p) => {
                let mut caps = caps;
                if p > cap_pane {
                    caps.downgrade(p);
                    if let Some((_, Some(c))) = self.out_forward.as_mut() {
                        c.downgrade(&p);
                    }
                }
                match self.wake.take() {
                    Some(d) => self.activator.activate_after(d),
                    None => self.activator.activate(),
                }
                self.caps = Some(caps);
            }
            None => {
                if let Some(r) = &self.reload {
                    r.input_ended();
                }
                // End of input: tell every reduce worker the last pane.
                let last_pane = self.watermark.last_pane(complete_us, cap_pane);
                let ends =
                    (0..self.place.peers as u64).map(|target| Shuffle::End { target, last_pane });
                self.outputs
                    .shuffle
                    .activate()
                    .session(&caps.shuffle)
                    .give_iterator(ends);
                if let Some(b) = &self.bar {
                    b.finish_and_clear();
                }
                self.add_to_summary();
                drop(caps);
                self.out_forward = None;
                self.input = None;
            }
        }
    }

    /// A new pipeline version waiting (SIGHUP, the input's one reader): it
    /// is in force from the pane after the newest frame handed on (not
    /// below the capabilities). Then every decided version this worker has
    /// not followed yet (a cluster's are decided by the config watcher at
    /// the pushed pane, while every reader waits before it): for this
    /// worker's decoding at once, for the `Spread`s of this process through
    /// `Reload`, and for every reduce worker by a `Shuffle::Switch` sent at
    /// the capability (so none can have closed that window yet).
    fn take_reload(&mut self, caps: &Caps, cap_pane: Pane) {
        let Some(reload) = self.reload.clone() else {
            return;
        };
        let spec = self.watermark.spec;
        if self.decides {
            let newest = self.ingest.counters.newest_seen_us();
            let from = if newest == i64::MIN {
                cap_pane
            } else {
                cap_pane.max(spec.pane_of(newest) + 1)
            };
            if reload.take_pending(from).is_some()
                && let Some(m) = &self.metrics
            {
                m.pipeline_reloads.with_label_values(&["applied"]).inc();
            }
        }
        while let Some(v) = reload.get(self.ingest.switches() as u64 + 2) {
            debug_assert!(cap_pane <= v.from, "a switch below the capability");
            self.ingest.switch_at(v.from, v.plan.clone());
            let switches = (0..self.place.peers as u64).map(|target| Shuffle::Switch {
                target,
                pane: v.from,
                version: v.number,
            });
            self.outputs
                .shuffle
                .activate()
                .session(&caps.shuffle)
                .give_iterator(switches);
            if self.decides {
                let start_us = spec.bounds_us(v.from).1 - spec.slide_us;
                eprintln!(
                    "reload: pipeline version {} ({}) in force from event time {} (messages from then on; windows ending from {} on)",
                    v.number,
                    crate::escape::for_terminal(&v.plan.origin),
                    crate::time::rfc3339(start_us),
                    crate::time::rfc3339(spec.end_us(v.from)),
                );
            }
        }
    }

    /// Tell the input how far the sinks have written, so it can settle
    /// (acknowledge) what lies below.
    fn settle_input(&mut self) {
        if let Some(src) = self.input.as_mut() {
            let w = self.written[WRITTEN_ALERTS]
                .load(Ordering::Acquire)
                .min(self.written[WRITTEN_EVENTS].load(Ordering::Acquire));
            src.outputs_done((w != u64::MAX).then_some(w));
        }
    }

    /// Read up to `SOURCE_BATCH` frames; this worker decodes its shard.
    /// Frames at or past the pane a cluster version waits at are kept
    /// back (`backlog`, in order) until it is decided.
    fn read_batch(&mut self, cap_pane: Pane, stopping: bool) -> ReadStatus {
        if !self.forward.is_empty() && self.forwarding.full() {
            self.wake = Some(FORWARD_WAIT);
            return ReadStatus::Frames(0);
        }
        if self.pacer.is_some() {
            return self.read_paced(cap_pane, stopping);
        }
        if stopping {
            self.backlog.clear();
        }
        let gate = Gate::new(self);
        let Some(src) = self.input.as_mut() else {
            return ReadStatus::Done;
        };
        let mut frames = Frames {
            ingest: &mut self.ingest,
            late: &mut self.late,
            forward: &mut self.forward,
            place: self.place,
            cap_pane,
        };
        let mut n = 0;
        while let Some(h) = self.backlog.front() {
            if !gate.open(h.ts_us) {
                self.wake = Some(GATE_WAIT);
                return ReadStatus::Frames(n);
            }
            frames.hand_on(h.raw());
            self.backlog.pop_front();
            n += 1;
        }
        // On stop, drain what the kernel already holds without waiting,
        // then finish.
        let wait = if stopping { Duration::ZERO } else { LIVE_POLL };
        let backlog = &mut self.backlog;
        let st = src.read(SOURCE_BATCH, wait, &mut |raw| {
            if backlog.is_empty() && gate.open(raw.ts_us) {
                frames.hand_on(raw);
            } else {
                backlog.push_back(HeldFrame::default());
                if let Some(h) = backlog.back_mut() {
                    h.keep(&raw);
                }
            }
        });
        let status = rules::read_status(st, stopping, src.live());
        if !self.backlog.is_empty() {
            self.wake = Some(GATE_WAIT);
            if status == ReadStatus::Done {
                return ReadStatus::Frames(n);
            }
        }
        status
    }

    /// Paced replay: hand frames on as they fall due, up to `SOURCE_BATCH`;
    /// end the batch at the first frame not yet due (it is held, and
    /// `wake` set) or once the late bound moved, so the capabilities follow
    /// the pace. A stop ends the input at once.
    fn read_paced(&mut self, cap_pane: Pane, stopping: bool) -> ReadStatus {
        self.wake = None;
        if stopping {
            self.held = None;
            return ReadStatus::Done;
        }
        let clock = self.clock;
        let gate = Gate::new(self);
        let Source {
            input,
            pacer,
            held,
            wake,
            ..
        } = self;
        let (Some(src), Some(pacer)) = (input.as_mut(), pacer.as_mut()) else {
            return ReadStatus::Done;
        };
        let mut frames = Frames {
            ingest: &mut self.ingest,
            late: &mut self.late,
            forward: &mut self.forward,
            place: self.place,
            cap_pane,
        };
        let start_bound = frames.bound();
        let mut n = 0;
        while n < SOURCE_BATCH {
            if let Some(h) = held.as_mut().filter(|h| h.waiting()) {
                match pacer.wait(h.ts_us, clock.now()) {
                    Some(d) if d >= INLINE_WAIT => {
                        *wake = Some(d.min(LIVE_POLL));
                        return ReadStatus::Frames(n);
                    }
                    Some(d) => clock.sleep(d),
                    None => {}
                }
                if !gate.open(h.ts_us) {
                    *wake = Some(GATE_WAIT);
                    return ReadStatus::Frames(n);
                }
                frames.hand_on(h.raw());
                h.ts_us = i64::MIN;
                n += 1;
                if frames.bound() > start_bound {
                    break;
                }
            }
            let mut got = None;
            let st = src.read(1, Duration::ZERO, &mut |raw| {
                if pacer.wait(raw.ts_us, clock.now()).is_none() && gate.open(raw.ts_us) {
                    frames.hand_on(raw);
                    got = Some(true);
                } else {
                    held.get_or_insert_with(HeldFrame::default).keep(&raw);
                    got = Some(false);
                }
            });
            match got {
                None if st == ReadStatus::Done => return ReadStatus::Done,
                None => break,
                Some(true) => {
                    n += 1;
                    if frames.bound() > start_bound {
                        break;
                    }
                }
                Some(false) => {}
            }
        }
        ReadStatus::Frames(n)
    }

    /// Counters, once per activation (never per packet).
    fn publish_metrics(&mut self, cap_pane: Pane) {
        // Live: the kernel counters, read once per activation, feed the
        // metrics and (through the source) alert evidence.
        if self.live
            && let Some(cc) = self.input.as_mut().and_then(|s| s.capture_counters())
            && let Some(m) = &self.metrics
        {
            cc.publish(&mut self.capture_published, m);
        }
        let Some(m) = &self.metrics else { return };
        let reader = self.place.index == 0 || !self.place.shared;
        self.ingest.publish(&mut self.published, m, reader);
        if self.place.index == 0 {
            let spec = self.watermark.spec;
            m.watermark.set(spec.end_us(cap_pane) as f64 / 1e6);
            let max_ts = self.ingest.counters.max_ts_us;
            if self.live && max_ts != i64::MIN {
                m.event_time_lag
                    .set((self.clock.unix_micros() - max_ts) as f64 / 1e6);
            }
        }
    }

    /// Event time known to be complete (before lateness).
    fn complete_us(&mut self) -> i64 {
        let mut max_ts = self.ingest.counters.max_ts_us;
        // Paced replay waiting for its next frame: event time follows the pace.
        if let (Some(p), Some(h)) = (&self.pacer, self.held.as_ref().filter(|h| h.waiting()))
            && let Some(t) = p.idle_complete_us(self.clock.now(), h.ts_us, max_ts)
        {
            max_ts = max_ts.max(t);
        }
        let now_us = if self.live {
            self.clock.unix_micros()
        } else {
            0
        };
        let source_us = self.input.as_mut().and_then(|s| s.watermark_us());
        self.watermark.complete_us(max_ts, now_us, source_us)
    }

    /// Send the frames read for other workers, event lines, the tallies of
    /// panes the capabilities are about to leave (`next_pane`; everything
    /// at the end or when the tables are full) and the report intervals
    /// that end before it.
    fn ship(&mut self, caps: &Caps, cap_pane: Pane, next_pane: Option<Pane>) {
        if let Some((out, Some(c))) = self.out_forward.as_mut()
            && self.forward.iter().any(|b| !b.is_empty())
        {
            let mut out = out.activate();
            let mut session = out.session(c);
            for b in self.forward.iter_mut().filter(|b| !b.is_empty()) {
                self.forwarding.sent(b);
                let next = self.forwarding.batch(b.target);
                session.give(std::mem::replace(b, next));
            }
        }
        ship_ingest(
            &mut self.ingest,
            &mut self.outputs,
            caps,
            cap_pane,
            next_pane,
            self.interval_us,
            self.watermark.spec.slide_us,
        );
    }

    /// At the end of input: add this worker's counts to the run summary
    /// (frame counts of shared input once, from worker 0).
    fn add_to_summary(&mut self) {
        let c = &self.ingest.counters;
        let mut s = self.summary.lock().unwrap_or_else(|p| p.into_inner());
        if self.place.index == 0 || !self.place.shared {
            s.frames += c.frames;
            s.first_ts_us = match (s.first_ts_us, c.first_ts_us) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if c.max_ts_us != i64::MIN {
                s.last_ts_us = Some(s.last_ts_us.map_or(c.max_ts_us, |m| m.max(c.max_ts_us)));
            }
        }
        if let Some(src) = self.input.as_mut() {
            if self.place.index == 0 {
                s.broken_files = src.broken();
            }
            if let Some(cc) = src.capture_counters() {
                s.capture = Some(cc);
            }
        }
        add_ingest_counts(&mut s, &self.ingest);
    }
}

/// Add what an `Ingest` decoded to the run summary (not the frames read).
pub(crate) fn add_ingest_counts(s: &mut RunSummary, ingest: &Ingest) {
    let c = &ingest.counters;
    s.packet.merge(ingest.packet_stats());
    s.dns_messages += c.dns_messages;
    s.queries += c.queries;
    s.responses += c.responses;
    s.late_messages += c.late;
    for (k, v) in &c.decode_errors {
        *s.decode_errors.entry(*k).or_default() += v;
    }
    s.dnstap.merge(&c.dnstap);
    s.top_names.merge(&c.top);
    s.top_clients.merge(&c.top_clients);
    s.top_domains.merge(&c.top_domains);
}

/// Ship what an `Ingest` holds: event lines, the tallies of panes below
/// `next_pane` (all of them at the end, `None`, or when the tables are
/// full) and the report intervals that end before it. The capabilities
/// stand at `cap_pane`.
pub(crate) fn ship_ingest(
    ingest: &mut Ingest,
    outputs: &mut Outputs,
    caps: &Caps,
    cap_pane: Pane,
    next_pane: Option<Pane>,
    interval_us: i64,
    slide_us: i64,
) {
    if !ingest.event_buf.is_empty() {
        outputs
            .events
            .activate()
            .session(&caps.events)
            .give_iterator(ingest.event_buf.drain(..));
    }
    let below = rules::ship_tallies_below(ingest.tables.entries(), next_pane);
    let mut shuffle_out = outputs.shuffle.activate();
    let whole = outputs.shuffle_whole;
    ingest.tables.drain_each(below, |pane, records| {
        let c = caps.shuffle.delayed(&pane.max(cap_pane));
        if whole {
            shuffle_out.session(&c).give_container(records);
        } else {
            shuffle_out.session(&c).give_iterator(records.drain(..));
        }
    });
    drop(shuffle_out);
    if let Some(r) = ingest.reports.as_mut() {
        let below = next_pane.map(|p| reports::first_open_interval(p, interval_us, slide_us));
        let mut reports_out = outputs.reports.activate();
        for part in r.drain(below) {
            let last = reports::last_pane(part.interval, interval_us, slide_us);
            let c = caps.reports.delayed(&last.max(cap_pane));
            reports_out.session(&c).give(part);
        }
    }
}

/// How often a reader kept waiting by a cluster version looks again.
const GATE_WAIT: Duration = Duration::from_millis(20);

/// Whether a frame may be handed on now: not while a cluster version
/// waits at or before its pane, or was decided and not yet followed here
/// (`Reload::may_pass`).
struct Gate {
    reload: Option<Arc<Reload>>,
    spec: crate::window::WindowPlan,
    followed: usize,
}

impl Gate {
    fn new(s: &Source) -> Self {
        Gate {
            reload: s.reload.clone(),
            spec: s.watermark.spec,
            followed: s.ingest.switches() + 1,
        }
    }

    fn open(&self, ts_us: i64) -> bool {
        self.reload
            .as_ref()
            .is_none_or(|r| r.may_pass(self.spec.pane_of(ts_us), self.followed))
    }
}

/// A paced wait shorter than this is slept inside the activation; a longer
/// one ends the batch and wakes the operator later.
const INLINE_WAIT: Duration = Duration::from_millis(1);

/// Hands frames to `Ingest`: counts every frame, decodes this worker's
/// shard, with lateness from the newest frame (`LateBound`) where it
/// applies.
struct Frames<'a> {
    ingest: &'a mut Ingest,
    late: &'a mut Option<LateBound>,
    /// One batch per worker when this worker reads a single input for all.
    forward: &'a mut [FrameBatch],
    place: Place,
    cap_pane: Pane,
}

/// Where a worker's source stands: its index among `peers`, whether every
/// worker reads the input (`shared`: files) and the first worker of its
/// process (`forward[i]` goes to worker `local_start + i`).
#[derive(Clone, Copy, Debug)]
struct Place {
    index: usize,
    peers: usize,
    shared: bool,
    local_start: usize,
}

impl Frames<'_> {
    fn hand_on(&mut self, raw: RawPacket<'_>) {
        let ts = raw.ts_us;
        self.ingest.saw_frame(ts, raw.data.len());
        let min_pane = self.bound();
        if self.place.shared && self.place.peers > 1 {
            // Every worker reads this input and decodes its shard.
            if shard_key(raw.linktype, raw.data) % self.place.peers as u64
                != self.place.index as u64
            {
                return;
            }
        } else if !self.forward.is_empty() {
            // This worker reads for the workers of its process: the
            // frame goes to the one of its shard.
            let i = (shard_key(raw.linktype, raw.data) % self.forward.len() as u64) as usize;
            if self.place.local_start + i != self.place.index {
                self.forward[i].push(&raw, min_pane);
                return;
            }
        }
        self.ingest.set_source(raw.source);
        self.ingest.process(
            raw.file as u32,
            raw.frame,
            raw.linktype,
            ts,
            raw.data,
            min_pane,
        );
    }

    /// The pane below which a message is late now.
    fn bound(&mut self) -> Pane {
        match self.late.as_mut() {
            Some(b) => b.min_pane(self.ingest.counters.max_ts_us, self.cap_pane),
            None => self.cap_pane,
        }
    }
}

/// A frame read before it was due (paced replay); `ts_us == i64::MIN` once
/// handed on (the buffer is kept for the next one).
#[derive(Default)]
struct HeldFrame {
    file: usize,
    frame: u64,
    linktype: i32,
    ts_us: i64,
    orig_len: u32,
    data: Vec<u8>,
    source: Option<String>,
}

impl HeldFrame {
    fn keep(&mut self, raw: &RawPacket<'_>) {
        self.file = raw.file;
        self.frame = raw.frame;
        self.linktype = raw.linktype;
        self.ts_us = raw.ts_us;
        self.orig_len = raw.orig_len;
        self.data.clear();
        self.data.extend_from_slice(raw.data);
        self.source = raw.source.map(str::to_owned);
    }

    fn waiting(&self) -> bool {
        self.ts_us != i64::MIN
    }

    fn raw(&self) -> RawPacket<'_> {
        RawPacket {
            file: self.file,
            frame: self.frame,
            linktype: self.linktype,
            ts_us: self.ts_us,
            orig_len: self.orig_len,
            data: &self.data,
            source: self.source.as_deref(),
        }
    }
}

/// The worker that decodes a frame of shared input: dnstap frames by
/// their own address pair, packets by `PacketDecoder::shard_key`.
fn shard_key(linktype: i32, data: &[u8]) -> u64 {
    if linktype == crate::dnstap::LINKTYPE_DNSTAP {
        crate::dnstap::shard_key(data)
    } else {
        PacketDecoder::shard_key(linktype, data)
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
