//! Watching the outputs of a run: the first output that fails is recorded
//! (which one, why) and a stop flag is set, so a live capture stops at once
//! instead of capturing into a dead output, and the command can exit with a
//! failure status. Wraps any [`Sink`]; it decides nothing about what to
//! write. It also lets a cluster member that re-forms (a re-exec) stop the
//! outputs between two writes ([`OutputWatch::quiesce`]), so no
//! half-written window is left behind.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, TryLockError};
use std::time::Duration;

use crate::sinks::{Sink, is_broken_pipe};

/// The first output failure of a run, shared by every watched output.
#[derive(Clone)]
pub struct OutputWatch {
    stop: Arc<AtomicBool>,
    failure: Arc<Mutex<Option<OutputFailure>>>,
    /// Held by each write (a whole window of alerts, a write or flush of
    /// the others), and for good by [`OutputWatch::quiesce`].
    gate: Arc<Mutex<()>>,
}

/// Which output failed and how.
#[derive(Clone, Debug)]
pub struct OutputFailure {
    /// `alert`, `event` or `report`.
    pub output: &'static str,
    pub kind: io::ErrorKind,
    pub message: String,
}

impl OutputFailure {
    /// The reader went away (`| head`): not an error of ours.
    pub fn reader_gone(&self) -> bool {
        self.kind == io::ErrorKind::BrokenPipe
    }
}

impl OutputWatch {
    /// Watch outputs; a failure sets `stop` (the run's stop flag).
    pub fn new(stop: Arc<AtomicBool>) -> Self {
        OutputWatch {
            stop,
            failure: Arc::new(Mutex::new(None)),
            gate: Arc::new(Mutex::new(())),
        }
    }

    /// Wait (at most `limit`) for the write under way to end, then hold
    /// every watched output for good: nothing more reaches them. Before a
    /// re-form's exec. False when the limit passed first (they are not
    /// held then).
    pub fn quiesce(&self, limit: Duration) -> bool {
        let clock = crate::time::Clock;
        let t0 = clock.now();
        loop {
            match self.gate.try_lock() {
                Ok(g) => {
                    std::mem::forget(g);
                    return true;
                }
                Err(TryLockError::Poisoned(p)) => {
                    std::mem::forget(p.into_inner());
                    return true;
                }
                Err(TryLockError::WouldBlock) if t0.elapsed() < limit => {
                    clock.sleep(Duration::from_millis(2));
                }
                Err(TryLockError::WouldBlock) => return false,
            }
        }
    }

    /// Hold the gate for one write.
    fn pass(&self) -> std::sync::MutexGuard<'_, ()> {
        self.gate.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The first failure, if any output failed.
    pub fn failure(&self) -> Option<OutputFailure> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn record(&self, output: &'static str, e: &io::Error) {
        if e.kind() == io::ErrorKind::Interrupted {
            return; // retried by `write_all`, not a failure
        }
        {
            let mut f = self.failure.lock().unwrap_or_else(|p| p.into_inner());
            if f.is_none() {
                *f = Some(OutputFailure {
                    output,
                    kind: e.kind(),
                    message: e.to_string(),
                });
            }
        }
        if !is_broken_pipe(e) {
            tracing::debug!(output, error = %e, "output failed; stopping the input");
        }
        self.stop.store(true, Ordering::Relaxed);
    }

    /// `sink` (the `output` output: `alert`, `event`, `report`), with its
    /// failures recorded.
    pub fn sink<R: 'static>(
        &self,
        output: &'static str,
        sink: Box<dyn Sink<R>>,
    ) -> Box<dyn Sink<R>> {
        Box::new(Watched {
            output,
            inner: sink,
            watch: self.clone(),
        })
    }
}

struct Watched<R> {
    output: &'static str,
    inner: Box<dyn Sink<R>>,
    watch: OutputWatch,
}

impl<R> Watched<R> {
    fn check(&self, r: io::Result<()>) -> io::Result<()> {
        r.inspect_err(|e| self.watch.record(self.output, e))
    }
}

impl<R> Sink<R> for Watched<R> {
    fn emit(&mut self, records: &[R]) -> io::Result<()> {
        let r = {
            let _one = self.watch.pass();
            self.inner.emit(records)
        };
        self.check(r)
    }
    fn finish(&mut self) -> io::Result<()> {
        let r = {
            let _one = self.watch.pass();
            self.inner.finish()
        };
        self.check(r)
    }
    fn settled(&self) -> bool {
        self.inner.settled()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Clock;

    /// A sink whose batches take `pause` to write.
    struct Slow(Duration);

    impl Sink<u8> for Slow {
        fn emit(&mut self, _: &[u8]) -> io::Result<()> {
            Clock.sleep(self.0);
            Ok(())
        }
        fn finish(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn quiesce_waits_for_the_write_under_way_and_then_holds_the_outputs() {
        let watch = OutputWatch::new(Arc::new(AtomicBool::new(false)));
        let mut w = watch.sink("event", Box::new(Slow(Duration::from_millis(300))));
        let writing = std::thread::spawn(move || {
            w.emit(b"one").unwrap();
            w
        });
        Clock.sleep(Duration::from_millis(50));
        // The write under way outlasts a short limit ...
        assert!(!watch.quiesce(Duration::from_millis(20)));
        // ... and ends within a long one.
        let t0 = Clock.now();
        assert!(watch.quiesce(Duration::from_secs(10)));
        assert!(t0.elapsed() >= Duration::from_millis(150));
        let mut w = writing.join().unwrap();
        // Held from now on: a later write does not get through.
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        std::thread::spawn(move || {
            let _ = w.emit(b"two");
            d.store(true, Ordering::Release);
        });
        Clock.sleep(Duration::from_millis(200));
        assert!(!done.load(Ordering::Acquire));
    }
}
