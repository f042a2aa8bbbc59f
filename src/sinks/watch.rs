//! Watching the outputs of a run: the first output that fails is recorded
//! (which one, why) and a stop flag is set, so a live capture stops at once
//! instead of capturing into a dead output, and the command can exit with a
//! failure status. Wraps any [`Sink`]; it decides nothing about what to
//! write.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::sinks::{Sink, is_broken_pipe};

/// The first output failure of a run, shared by every watched output.
#[derive(Clone)]
pub struct OutputWatch {
    stop: Arc<AtomicBool>,
    failure: Arc<Mutex<Option<OutputFailure>>>,
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
        }
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
        let r = self.inner.emit(records);
        self.check(r)
    }
    fn finish(&mut self) -> io::Result<()> {
        let r = self.inner.finish();
        self.check(r)
    }
    fn settled(&self) -> bool {
        self.inner.settled()
    }
}
