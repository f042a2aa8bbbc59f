//! One sink for every output: stash what arrives by time, and when the
//! frontier passes a time, sort what it holds and emit it to the output's
//! [`Sink`], in time order. All data goes to worker 0. What differs per
//! output is a small [`SinkPart`]: how a batch is stashed, when a stash is
//! complete, how it is written, and what to do after each step (finish,
//! tell the source how far output was written).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;

use super::{EventLine, RunSummary, frontier_min};
use crate::alert::{Alert, State};
use crate::config::Plan;
use crate::metrics::Metrics;
use crate::reports::{self, Report, ReportPart};
use crate::sinks::{Sink, is_broken_pipe};
use crate::window::Pane;

/// Index into the `written` marks the source settles its input with.
pub(crate) const WRITTEN_ALERTS: usize = 0;
pub(crate) const WRITTEN_EVENTS: usize = 1;

/// What one output does with its stash.
pub(crate) trait SinkPart: 'static {
    type Item: timely::ExchangeData;

    /// Stash a batch received at time `t`, under a key written in order
    /// once the frontier passed it. By default the key is `t` (and data
    /// sent under no capability, `t` = `None`, is dropped).
    fn stash(
        &mut self,
        pending: &mut BTreeMap<u64, Vec<Self::Item>>,
        t: Option<Pane>,
        batch: &mut Vec<Self::Item>,
    ) {
        if let Some(t) = t {
            pending.entry(t).or_default().append(batch);
        }
    }

    /// Stashes keyed below this are complete (all of them when `None`);
    /// `frontier` is the input frontier (`None`: input finished).
    fn complete_below(&self, frontier: Option<Pane>) -> Option<u64> {
        frontier
    }

    /// Write one complete stash.
    fn write(&mut self, key: u64, items: Vec<Self::Item>);

    /// After each step, once the complete stashes are written.
    fn after(&mut self, _frontier: Option<Pane>) {}
}

/// Route `stream` to worker 0 and write it with `part`.
pub(crate) fn stash_sink<P: SinkPart>(
    stream: Stream<'_, Pane, Vec<P::Item>>,
    name: &str,
    mut part: P,
) {
    let mut pending: BTreeMap<u64, Vec<P::Item>> = BTreeMap::new();
    stream.sink(
        Exchange::new(|_: &P::Item| 0),
        name,
        move |(input, frontier)| {
            input.for_each_stamp(|cap, data| {
                let t = cap.least().copied();
                for batch in data {
                    part.stash(&mut pending, t, batch);
                }
            });
            let frontier = frontier_min(frontier);
            for (key, items) in take_below(&mut pending, part.complete_below(frontier)) {
                part.write(key, items);
            }
            part.after(frontier);
        },
    );
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

/// Worker 0's sink for one output (`None` elsewhere). When it fails it is
/// dropped (nothing more is written or released), the summary says the
/// output closed, and the error is logged unless the reader went away.
pub(crate) struct Output<R> {
    sink: Option<Box<dyn Sink<R>>>,
    /// `alert`, `event` or `report`, for the log.
    what: &'static str,
    summary: Arc<Mutex<RunSummary>>,
}

impl<R> Output<R> {
    pub(crate) fn new(
        what: &'static str,
        sink: Option<Box<dyn Sink<R>>>,
        summary: Arc<Mutex<RunSummary>>,
    ) -> Self {
        Output {
            sink,
            what,
            summary,
        }
    }

    fn is_open(&self) -> bool {
        self.sink.is_some()
    }

    /// Open, and everything emitted is safe (see [`Sink::settled`]).
    fn settled(&self) -> bool {
        self.sink.as_ref().is_some_and(|s| s.settled())
    }

    fn emit(&mut self, records: &[R]) {
        let Some(sink) = self.sink.as_mut() else {
            return;
        };
        if let Err(e) = sink.emit(records) {
            if !is_broken_pipe(&e) {
                tracing::error!(error = %e, "{} output failed", self.what);
            }
            self.close();
        }
    }

    /// The input ended.
    fn finish(&mut self) {
        let Some(sink) = self.sink.as_mut() else {
            return;
        };
        if let Err(e) = sink.finish() {
            // (Tee prints its sinks' errors, the output watch the first
            // failure.) Not everything reached its destination: say so in
            // the summary.
            tracing::debug!(error = %e, "{} output did not finish", self.what);
            self.close();
        }
    }

    fn close(&mut self) {
        self.summary
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .output_closed = true;
        self.sink = None;
    }
}

/// Alerts, sorted per window: counted in the summary and the metrics, with
/// the capture's drops as evidence (live), then emitted.
pub(crate) struct AlertWriter {
    /// Worker 0's output; closed elsewhere and once it failed.
    pub(crate) out: Output<Alert>,
    pub(crate) index: usize,
    pub(crate) summary: Arc<Mutex<RunSummary>>,
    pub(crate) metrics: Option<Metrics>,
    pub(crate) capture_drops: Option<Arc<AtomicU64>>,
    pub(crate) written: Arc<[AtomicU64; 2]>,
    /// Cluster member other than process 0, on its first worker: the sinks
    /// are in process 0, so the global frontier (what reached them) is
    /// stored as written, for this member's single input to settle with.
    pub(crate) relay: bool,
}

impl AlertWriter {
    fn count(&self, a: &mut Alert, s: &mut RunSummary) {
        *s.alerts.entry((a.kind, a.state)).or_default() += 1;
        if let Some(m) = &self.metrics {
            let labels = [a.kind.as_str(), a.severity.as_str(), a.state.as_str()];
            m.alerts.with_label_values(&labels).inc();
            let g = m.active_alerts.with_label_values(&[a.kind.as_str()]);
            match a.state {
                State::Raised => g.inc(),
                State::Resolved => g.dec(),
                State::Updated => {}
            }
        }
        if let Some(d) = &self.capture_drops {
            a.add_evidence("capture_dropped_packets", d.load(Ordering::Relaxed).into());
        }
    }
}

impl SinkPart for AlertWriter {
    type Item = Alert;

    fn write(&mut self, _window: u64, mut v: Vec<Alert>) {
        v.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
        {
            let mut s = self.summary.lock().unwrap_or_else(|p| p.into_inner());
            for a in v.iter_mut() {
                self.count(a, &mut s);
            }
        }
        self.out.emit(&v);
    }

    fn after(&mut self, frontier: Option<Pane>) {
        if frontier.is_none() {
            self.out.finish();
        }
        // Written only counts once the sink says it is safe (a broker
        // confirmed); otherwise a later step moves it on. (A failed sink is
        // gone: then nothing more is released.)
        if (self.index == 0 && self.out.settled()) || self.relay {
            let f = frontier.unwrap_or(u64::MAX);
            self.written[WRITTEN_ALERTS].store(f, Ordering::Release);
        }
    }
}

/// The event log, in frame order, each pane's lines written (and flushed)
/// when the frontier passes it.
pub(crate) struct EventWriter {
    /// Worker 0's output; closed elsewhere and once it failed.
    pub(crate) out: Output<EventLine>,
    pub(crate) index: usize,
    /// Event lines were asked for (on every worker).
    pub(crate) enabled: bool,
    pub(crate) written: Arc<[AtomicU64; 2]>,
    /// As `AlertWriter::relay`.
    pub(crate) relay: bool,
}

impl SinkPart for EventWriter {
    type Item = EventLine;

    fn write(&mut self, _pane: u64, mut v: Vec<EventLine>) {
        v.sort_by_key(|e| (e.file, e.frame));
        self.out.emit(&v);
    }

    fn after(&mut self, frontier: Option<Pane>) {
        if frontier.is_none() {
            self.out.finish();
        }
        // The source acknowledges input once its lines are written.
        if self.index == 0 {
            // An event output that failed releases nothing more.
            if !self.enabled || self.out.is_open() {
                let f = frontier.unwrap_or(u64::MAX);
                self.written[WRITTEN_EVENTS].store(f, Ordering::Release);
            }
        } else if self.relay {
            let f = frontier.unwrap_or(u64::MAX);
            self.written[WRITTEN_EVENTS].store(f, Ordering::Release);
        }
    }
}

/// Top-k reports: each interval's parts merged once the frontier passed
/// the interval's last pane.
pub(crate) struct ReportWriter {
    /// Worker 0's output; closed elsewhere and once it failed.
    pub(crate) out: Output<Report>,
    pub(crate) plan: Arc<Plan>,
}

impl SinkPart for ReportWriter {
    type Item = ReportPart;

    /// Stashed by interval, not by time.
    fn stash(
        &mut self,
        pending: &mut BTreeMap<u64, Vec<ReportPart>>,
        _t: Option<Pane>,
        batch: &mut Vec<ReportPart>,
    ) {
        for part in batch.drain(..) {
            pending.entry(part.interval).or_default().push(part);
        }
    }

    /// Interval i is complete once the frontier passed its last pane.
    fn complete_below(&self, frontier: Option<Pane>) -> Option<u64> {
        let interval_us = self.plan.report_interval_us;
        frontier.map(|f| reports::first_open_interval(f, interval_us, self.plan.window.slide_us))
    }

    fn write(&mut self, interval: u64, parts: Vec<ReportPart>) {
        let interval_us = self.plan.report_interval_us;
        let reports = reports::render(interval, interval_us, &parts, self.plan.report_top);
        self.out.emit(&reports);
    }

    fn after(&mut self, frontier: Option<Pane>) {
        if frontier.is_none() {
            self.out.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::sinks::JsonLines;

    /// An output whose bytes the test can read.
    #[derive(Clone, Default)]
    struct SharedBuf(Arc<Mutex<Vec<u8>>>);

    impl Write for SharedBuf {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn line(file: u32, frame: u64) -> EventLine {
        EventLine {
            file,
            frame,
            line: format!("{file}:{frame}\n").into_bytes(),
        }
    }

    #[test]
    fn events_are_stashed_by_time_and_written_in_frame_order() {
        let out = SharedBuf::default();
        let written = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let summary = Arc::new(Mutex::new(RunSummary::default()));
        let sink = JsonLines::new(Box::new(out.clone()));
        let mut w = EventWriter {
            out: Output::new("event", Some(Box::new(sink)), summary),
            index: 0,
            enabled: true,
            written: written.clone(),
            relay: false,
        };
        let mut pending = BTreeMap::new();
        w.stash(&mut pending, Some(2), &mut vec![line(0, 9), line(0, 3)]);
        w.stash(&mut pending, Some(2), &mut vec![line(0, 5)]);
        w.stash(&mut pending, Some(4), &mut vec![line(0, 1)]);
        // No capability, no time: dropped.
        w.stash(&mut pending, None, &mut vec![line(0, 0)]);
        assert_eq!(w.complete_below(Some(3)), Some(3));
        for (k, v) in take_below(&mut pending, w.complete_below(Some(3))) {
            w.write(k, v);
        }
        w.after(Some(3));
        assert_eq!(
            String::from_utf8(out.0.lock().unwrap().clone()).unwrap(),
            "0:3\n0:5\n0:9\n"
        );
        assert_eq!(written[WRITTEN_EVENTS].load(Ordering::Acquire), 3);
        assert_eq!(pending.keys().copied().collect::<Vec<_>>(), [4]);
        w.after(None);
        assert_eq!(written[WRITTEN_EVENTS].load(Ordering::Acquire), u64::MAX);
    }

    #[test]
    fn reports_are_complete_once_the_frontier_passed_the_interval() {
        let plan = Arc::new(Plan::default_plan(&[]).expect("default plan"));
        let summary = Arc::new(Mutex::new(RunSummary::default()));
        let w = ReportWriter {
            out: Output::new("report", None, summary),
            plan: plan.clone(),
        };
        let per = (plan.report_interval_us / plan.window.slide_us) as u64;
        assert_eq!(w.complete_below(Some(0)), Some(0));
        assert_eq!(w.complete_below(Some(per - 1)), Some(0));
        assert_eq!(w.complete_below(Some(per)), Some(1));
        assert_eq!(w.complete_below(None), None);
    }

    #[test]
    fn take_below_takes_what_the_frontier_passed() {
        let mut m: BTreeMap<u64, &str> = [(1, "a"), (3, "b"), (5, "c")].into();
        let taken = take_below(&mut m, Some(4));
        assert_eq!(taken.into_iter().collect::<Vec<_>>(), [(1, "a"), (3, "b")]);
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), [5]);
        assert!(take_below(&mut m, Some(5)).is_empty());
        assert_eq!(take_below(&mut m, None).len(), 1);
        assert!(m.is_empty());
    }
}
