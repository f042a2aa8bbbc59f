//! Sources of raw packets. Each yields captured frames in capture order
//! with their link type and timestamp; nothing here decodes them.

pub mod dnstap_listen;
pub mod live;
pub mod live_source;
pub mod pcap_classic;
pub mod pcap_file;
pub mod pcap_resync;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use pcap_file::{PcapFiles, RawPacket, SourceError};

/// What one `read` call found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadStatus {
    /// This many frames were handed over.
    Frames(usize),
    /// Nothing arrived within the wait (live input only).
    Idle,
    /// The input is finished (end of files, or stop requested).
    Done,
}

/// Capture-side counters (live input): packets the kernel received and
/// dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureCounters {
    pub received: u64,
    pub dropped_kernel: u64,
    pub dropped_interface: u64,
}

impl CaptureCounters {
    /// Move the capture metrics on to the kernel's totals `self`; `seen` is
    /// what was published before (updated).
    pub fn publish(self, seen: &mut CaptureCounters, m: &crate::metrics::Metrics) {
        m.capture_received
            .inc_by(self.received.saturating_sub(seen.received));
        m.capture_drops
            .with_label_values(&["kernel"])
            .inc_by(self.dropped_kernel.saturating_sub(seen.dropped_kernel));
        m.capture_drops.with_label_values(&["interface"]).inc_by(
            self.dropped_interface
                .saturating_sub(seen.dropped_interface),
        );
        *seen = self;
    }
}

/// A source of frames for the dataflow's source operator.
pub trait FrameSource {
    /// Hand over up to `max` frames; wait at most `wait` when none is ready.
    fn read(&mut self, max: usize, wait: Duration, f: &mut dyn FnMut(RawPacket<'_>)) -> ReadStatus;
    /// True when every worker reads the same frames (files) and decodes its
    /// shard; false when one worker reads it and forwards each frame to the
    /// worker of its shard (live, queue, pipe).
    fn shared(&self) -> bool;
    /// Event time advances with the wall clock while the input is idle.
    fn live(&self) -> bool {
        false
    }
    /// The input watches the stop flag itself: on stop it hands over what
    /// it already received and then reports `Done` (the dnstap listener),
    /// so a reader keeps reading until then.
    fn stops_itself(&self) -> bool {
        false
    }
    /// (bytes done, bytes total) for a progress bar, when known.
    fn progress(&self) -> Option<(u64, u64)> {
        None
    }
    /// Kernel counters, for live captures.
    fn capture_counters(&mut self) -> Option<CaptureCounters> {
        None
    }
    /// Inputs that ended early, with the reason.
    fn broken(&self) -> Vec<(PathBuf, String)> {
        Vec::new()
    }
    /// Event time (µs) the input is known to be complete up to, when the
    /// source knows better than "the newest packet" (several sensors);
    /// `None` = the newest packet read.
    fn watermark_us(&mut self) -> Option<i64> {
        None
    }
    /// True when [`watermark_us`](FrameSource::watermark_us) speaks for the
    /// input: lateness then follows it, not the newest frame read.
    fn own_watermark(&self) -> bool {
        false
    }
    /// The sinks have written everything of panes below `below` (`None`:
    /// everything, the run is over). Sources that acknowledge their input
    /// do it here.
    fn outputs_done(&mut self, _below: Option<crate::window::Pane>) {}
}

impl FrameSource for PcapFiles {
    fn read(
        &mut self,
        max: usize,
        _wait: Duration,
        f: &mut dyn FnMut(RawPacket<'_>),
    ) -> ReadStatus {
        let mut n = 0;
        while n < max {
            match self.next_packet() {
                Some(p) => {
                    f(p);
                    n += 1;
                }
                None => break,
            }
        }
        if n == 0 {
            ReadStatus::Done
        } else {
            ReadStatus::Frames(n)
        }
    }

    fn shared(&self) -> bool {
        PcapFiles::shared(self)
    }

    fn progress(&self) -> Option<(u64, u64)> {
        Some((self.bytes_read, self.total_bytes()))
    }

    fn broken(&self) -> Vec<(PathBuf, String)> {
        self.broken.clone()
    }
}

/// Inputs that ended early, shared with whoever handed the source away.
pub type BrokenInputs = Arc<Mutex<Vec<(PathBuf, String)>>>;

/// A source that keeps a copy of its [`broken`](FrameSource::broken) list
/// where the caller can read it after handing the source away (the sensor
/// consumes its input): updated whenever the source reports it is done.
pub struct NoteBroken<S> {
    inner: S,
    broken: BrokenInputs,
}

impl<S: FrameSource> NoteBroken<S> {
    pub fn new(inner: S) -> (Self, BrokenInputs) {
        let broken = BrokenInputs::default();
        let me = NoteBroken {
            inner,
            broken: broken.clone(),
        };
        (me, broken)
    }
}

impl<S: FrameSource> FrameSource for NoteBroken<S> {
    fn read(&mut self, max: usize, wait: Duration, f: &mut dyn FnMut(RawPacket<'_>)) -> ReadStatus {
        let status = self.inner.read(max, wait, f);
        if status == ReadStatus::Done {
            *self.broken.lock().unwrap_or_else(|p| p.into_inner()) = self.inner.broken();
        }
        status
    }
    fn shared(&self) -> bool {
        self.inner.shared()
    }
    fn live(&self) -> bool {
        self.inner.live()
    }
    fn stops_itself(&self) -> bool {
        self.inner.stops_itself()
    }
    fn progress(&self) -> Option<(u64, u64)> {
        self.inner.progress()
    }
    fn capture_counters(&mut self) -> Option<CaptureCounters> {
        self.inner.capture_counters()
    }
    fn broken(&self) -> Vec<(PathBuf, String)> {
        self.inner.broken()
    }
    fn watermark_us(&mut self) -> Option<i64> {
        self.inner.watermark_us()
    }
    fn own_watermark(&self) -> bool {
        self.inner.own_watermark()
    }
    fn outputs_done(&mut self, below: Option<crate::window::Pane>) {
        self.inner.outputs_done(below)
    }
}
