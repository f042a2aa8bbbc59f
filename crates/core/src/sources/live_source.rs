//! `LiveSource`: a `LiveCapture` as a dataflow `FrameSource`. One worker
//! reads it; frames are numbered from 1 as they arrive; kernel counters are
//! read at every activation of the source and shared (`drops`) so alerts can carry
//! evidence of capture loss.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::live::LiveCapture;
use super::{CaptureCounters, FrameSource, RawPacket, ReadStatus};

pub struct LiveSource {
    cap: LiveCapture,
    frame: u64,
    counters: CaptureCounters,
    /// Packets dropped so far (kernel + interface), for alert evidence.
    pub drops: Arc<AtomicU64>,
    /// Set when the capture failed while running (the command exits 1).
    pub failure: Arc<std::sync::Mutex<Option<String>>>,
    failed: bool,
}

impl LiveSource {
    pub fn new(cap: LiveCapture) -> Self {
        LiveSource {
            cap,
            frame: 0,
            counters: CaptureCounters::default(),
            drops: Arc::default(),
            failure: Arc::default(),
            failed: false,
        }
    }

    fn refresh_stats(&mut self) {
        match self.cap.stats() {
            Ok(s) => {
                self.counters = CaptureCounters {
                    received: s.received,
                    dropped_kernel: s.dropped_kernel,
                    dropped_interface: s.dropped_interface,
                };
                self.drops
                    .store(s.dropped_kernel + s.dropped_interface, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(error = %e, "cannot read capture statistics"),
        }
    }
}

impl FrameSource for LiveSource {
    fn read(&mut self, max: usize, wait: Duration, f: &mut dyn FnMut(RawPacket<'_>)) -> ReadStatus {
        if self.failed {
            return ReadStatus::Done;
        }
        let linktype = self.cap.linktype();
        let frame = &mut self.frame;
        let res = self.cap.poll_packets(wait, max, |ts_us, data, orig_len| {
            *frame += 1;
            f(RawPacket {
                file: 0,
                frame: *frame,
                linktype,
                ts_us,
                orig_len,
                data,
                source: None,
            });
        });
        match res {
            Ok(0) => ReadStatus::Idle,
            Ok(n) => ReadStatus::Frames(n),
            Err(e) => {
                if let Ok(mut f) = self.failure.lock() {
                    *f = Some(e.to_string());
                }
                self.failed = true;
                ReadStatus::Done
            }
        }
    }

    fn shared(&self) -> bool {
        false
    }

    fn live(&self) -> bool {
        true
    }

    /// Reads the kernel counters now (one getsockopt). The dataflow calls it
    /// once per activation of the source (per batch or per poll timeout,
    /// so at least ten times a second), which also refreshes `drops`.
    fn capture_counters(&mut self) -> Option<CaptureCounters> {
        self.refresh_stats();
        Some(self.counters)
    }
}
