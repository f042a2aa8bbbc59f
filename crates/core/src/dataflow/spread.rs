//! Spreading a single input over the workers.
//!
//! Files are read by every worker, each decoding its shard. A single input
//! (a live capture, a dnstap listener, a queue) has one reader, worker 0's
//! source. With more workers it decodes only its own shard and forwards
//! every other frame, copied into a `FrameBatch` per target worker, with the
//! late bound it had when it read the frame. On every worker a `Spread`
//! operator decodes the frames sent to it with its own `Ingest` and ships
//! tallies, event lines and report parts exactly as the source does; its
//! capabilities follow its input frontier (the reader's watermark).
//!
//! So the frames of a flow meet in one decoder (the shard key keeps both
//! directions and every fragment together, as for files), lateness is
//! decided once by the reader, and event lines keep the reader's batch
//! times: the output is the same for any worker count.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;

use super::reload::Reload;
use super::source::{Caps, Outputs, SourceStreams, add_ingest_counts, ship_ingest};
use super::{RunSummary, frontier_min};
use crate::config::Plan;
use crate::engine::ingest::{Ingest, Published};
use crate::metrics::Metrics;
use crate::sources::RawPacket;
use crate::window::Pane;

/// No sensor id (`RawPacket::source` is `None`).
const NO_SOURCE: u32 = u32::MAX;

/// Frames for one worker, read in one activation of the reader.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct FrameBatch {
    /// The worker that decodes them.
    pub(crate) target: u64,
    /// The frames' bytes, one after the other.
    data: Vec<u8>,
    frames: Vec<FrameMeta>,
    /// Sensor ids the frames name (`FrameMeta::source`), each once in a row.
    sources: Vec<Box<str>>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct FrameMeta {
    file: u32,
    frame: u64,
    linktype: i32,
    ts_us: i64,
    orig_len: u32,
    /// Where the frame's bytes end in `data`.
    end: u32,
    /// Index into `sources`, or `NO_SOURCE`.
    source: u32,
    /// Messages in panes below this are late (decided by the reader).
    min_pane: Pane,
}

impl FrameBatch {
    pub(crate) fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.frames.len()
    }

    /// Copy a frame in.
    pub(crate) fn push(&mut self, raw: &RawPacket<'_>, min_pane: Pane) {
        self.data.extend_from_slice(raw.data);
        let source = match raw.source {
            None => NO_SOURCE,
            Some(s) => match self.sources.last() {
                Some(last) if **last == *s => self.sources.len() as u32 - 1,
                _ => {
                    self.sources.push(s.into());
                    self.sources.len() as u32 - 1
                }
            },
        };
        self.frames.push(FrameMeta {
            file: raw.file as u32,
            frame: raw.frame,
            linktype: raw.linktype,
            ts_us: raw.ts_us,
            orig_len: raw.orig_len,
            end: self.data.len() as u32,
            source,
            min_pane,
        });
    }

    /// The frames, in the order they were read, with their late bound.
    pub(crate) fn for_each(&self, mut f: impl FnMut(RawPacket<'_>, Pane)) {
        let mut start = 0usize;
        for m in &self.frames {
            let end = m.end as usize;
            let raw = RawPacket {
                file: m.file as usize,
                frame: m.frame,
                linktype: m.linktype,
                ts_us: m.ts_us,
                orig_len: m.orig_len,
                data: self.data.get(start..end).unwrap_or_default(),
                source: self.sources.get(m.source as usize).map(|s| &**s),
            };
            f(raw, m.min_pane);
            start = end;
        }
    }
}

/// Frames a single input's reader lets one worker have waiting before it
/// reads on: it waits for the slowest worker instead of queueing without
/// bound. Measured on the hostile bench slice from a pipe with 2 workers:
/// peak RSS 2.4 GB with 65 536, 830 MB with 16 384, 500-590 MB with
/// 8192 or 4096 (a file read by both workers: 380-430 MB), and no slower.
pub(crate) const MAX_FORWARD_AHEAD: u64 = 2 * super::SOURCE_BATCH as u64;

/// Emptied batches kept for reuse per worker of the process.
const SPARE_PER_WORKER: usize = 4;

/// What the reader of a single input and the `Spread` operators of its
/// process share: how many frames each worker has waiting, and emptied
/// batches handed back for reuse (so a batch's buffers are not allocated
/// on one thread and freed on another every activation).
pub(crate) struct Forwarding {
    /// The first worker of this process.
    local_start: usize,
    /// Frames forwarded to each worker of this process, not yet decoded.
    waiting: Box<[AtomicU64]>,
    spare: Mutex<Vec<FrameBatch>>,
}

impl Forwarding {
    /// For the workers `local` of this process.
    pub(crate) fn new(local: std::ops::Range<usize>) -> Self {
        Forwarding {
            local_start: local.start,
            waiting: local.map(|_| AtomicU64::new(0)).collect(),
            spare: Mutex::new(Vec::new()),
        }
    }

    /// The workers of this process.
    pub(crate) fn local(&self) -> std::ops::Range<usize> {
        self.local_start..self.local_start + self.waiting.len()
    }

    fn waiting(&self, target: u64) -> Option<&AtomicU64> {
        self.waiting
            .get((target as usize).wrapping_sub(self.local_start))
    }

    /// Some worker has `MAX_FORWARD_AHEAD` frames waiting.
    pub(crate) fn full(&self) -> bool {
        self.waiting
            .iter()
            .any(|n| n.load(Ordering::Acquire) >= MAX_FORWARD_AHEAD)
    }

    /// An empty batch for `target` (a reused one when there is).
    pub(crate) fn batch(&self, target: u64) -> FrameBatch {
        let b = self.spare.lock().ok().and_then(|mut s| s.pop());
        let mut b = b.unwrap_or_default();
        b.target = target;
        b
    }

    /// `b` is on its way.
    pub(crate) fn sent(&self, b: &FrameBatch) {
        if let Some(n) = self.waiting(b.target) {
            n.fetch_add(b.len() as u64, Ordering::AcqRel);
        }
    }

    /// `b` was decoded: hand it back for reuse.
    fn done(&self, mut b: FrameBatch) {
        if let Some(n) = self.waiting(b.target) {
            n.fetch_sub(b.len() as u64, Ordering::AcqRel);
        }
        if let Ok(mut s) = self.spare.lock()
            && s.len() < SPARE_PER_WORKER * self.waiting.len()
        {
            b.data.clear();
            b.frames.clear();
            b.sources.clear();
            s.push(b);
        }
    }
}

/// What `run` gives every worker's `Spread`.
pub(crate) struct SpreadSetup {
    pub(crate) plan: Arc<Plan>,
    pub(crate) events: bool,
    pub(crate) reports: bool,
    pub(crate) metrics: Option<Metrics>,
    pub(crate) summary: Arc<Mutex<RunSummary>>,
    pub(crate) forwarding: Arc<Forwarding>,
    /// Pipeline versions the reader switched to (`dataflow::reload`).
    pub(crate) reload: Option<Arc<Reload>>,
}

/// Take on the versions the reader decided since: a batch sent after a
/// switch is decoded with it (the reader records it before sending on).
fn follow_reload(ingest: &mut Ingest, reload: Option<&Reload>) {
    let Some(r) = reload else { return };
    if r.count() > ingest.switches() + 1 {
        for v in r.versions().into_iter().skip(ingest.switches() + 1) {
            ingest.switch_at(v.from, v.plan);
        }
    }
}

/// Build this worker's `Spread` operator, fed by the reader's forwarded
/// frames.
pub(crate) fn spread<'s>(
    frames: Stream<'s, Pane, Vec<FrameBatch>>,
    setup: SpreadSetup,
) -> SourceStreams<'s> {
    let scope = frames.scope();
    let mut builder = OperatorBuilder::new("Spread".to_owned(), scope);
    let mut input = builder.new_input(frames, Exchange::new(|b: &FrameBatch| b.target));
    let (out_shuffle, shuffle) = builder.new_output();
    let (out_events, events) = builder.new_output();
    let (out_reports, reports) = builder.new_output();
    let mut outputs = Outputs::new(
        scope.peers(),
        OutputBuilder::from(out_shuffle),
        OutputBuilder::from(out_events),
        OutputBuilder::from(out_reports),
    );
    builder.build(move |caps| {
        let mut caps = Caps::from_vec(caps);
        let mut ingest = Ingest::new(setup.plan.clone(), setup.events);
        if setup.reports {
            ingest = ingest.with_reports();
        }
        let spec = setup.plan.window;
        let interval_us = setup.plan.report_interval_us;
        let mut published = Published::default();
        move |frontiers| {
            let Some(held) = caps.as_mut() else {
                input.for_each(|_, _| {});
                return;
            };
            input.for_each(|cap, data| {
                for batch in data.drain(..) {
                    follow_reload(&mut ingest, setup.reload.as_deref());
                    batch.for_each(|raw, min_pane| {
                        ingest.set_source(raw.source);
                        ingest.process(
                            raw.file as u32,
                            raw.frame,
                            raw.linktype,
                            raw.ts_us,
                            raw.data,
                            min_pane,
                        );
                    });
                    setup.forwarding.done(batch);
                }
                // Event lines at the reader's batch time, as the source
                // sends its own.
                if let Some(&t) = cap.least()
                    && !ingest.event_buf.is_empty()
                {
                    let c = held.events.delayed(&t);
                    outputs
                        .events
                        .activate()
                        .session(&c)
                        .give_iterator(ingest.event_buf.drain(..));
                }
            });
            let next = frontier_min(&frontiers[0]);
            let cap_pane = *held.shuffle.time();
            ship_ingest(
                &mut ingest,
                &mut outputs,
                held,
                cap_pane,
                next,
                interval_us,
                spec.slide_us,
            );
            if let Some(m) = &setup.metrics {
                ingest.publish(&mut published, m, false);
            }
            match next {
                Some(p) if p > cap_pane => held.downgrade(p),
                Some(_) => {}
                None => {
                    let mut s = setup.summary.lock().unwrap_or_else(|p| p.into_inner());
                    add_ingest_counts(&mut s, &ingest);
                    drop(s);
                    caps = None;
                }
            }
        }
    });
    SourceStreams {
        shuffle,
        events,
        reports,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_gives_back_its_frames_in_order() {
        let mut b = FrameBatch {
            target: 1,
            ..Default::default()
        };
        assert!(b.is_empty());
        let frames: [(&[u8], Option<&str>); 4] = [
            (b"abc", None),
            (b"", Some("s1")),
            (b"de", Some("s1")),
            (b"f", Some("s2")),
        ];
        for (i, (data, source)) in frames.iter().enumerate() {
            let raw = RawPacket {
                file: 2,
                frame: i as u64,
                linktype: 1,
                ts_us: 10 + i as i64,
                orig_len: 99,
                data,
                source: *source,
            };
            b.push(&raw, i as Pane * 3);
        }
        assert_eq!(b.sources.len(), 2, "a sensor id is stored once in a row");
        let mut got = Vec::new();
        b.for_each(|raw, min_pane| {
            got.push((
                raw.frame,
                raw.data.to_vec(),
                raw.source.map(str::to_owned),
                raw.ts_us,
                min_pane,
            ))
        });
        let want: Vec<_> = frames
            .iter()
            .enumerate()
            .map(|(i, (d, s))| {
                (
                    i as u64,
                    d.to_vec(),
                    s.map(str::to_owned),
                    10 + i as i64,
                    i as Pane * 3,
                )
            })
            .collect();
        assert_eq!(got, want);
    }
}
