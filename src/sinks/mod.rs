//! Sinks: where alert states and event lines go. Behind small traits; the
//! RabbitMQ sink is one more implementation. Output order is decided before
//! a sink sees the records (sorted per closed window).

use std::io::{self, BufWriter, Write};
use std::path::Path;

pub mod human;
pub mod watch;

use crate::alert::Alert;

/// Receives alert states, already sorted, one batch per closed window.
pub trait AlertSink: Send {
    fn emit(&mut self, alerts: &[Alert]) -> io::Result<()>;
    fn finish(&mut self) -> io::Result<()>;
    /// Everything emitted so far is safe (written, or confirmed by a
    /// broker): acknowledged input may be released up to here.
    fn settled(&self) -> bool {
        true
    }
}

/// JSON lines (`dnsmonitor.alert/1`), one object per line.
pub struct JsonLinesAlerts {
    out: Box<dyn Write + Send>,
}

impl JsonLinesAlerts {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        JsonLinesAlerts { out }
    }
}

impl AlertSink for JsonLinesAlerts {
    fn emit(&mut self, alerts: &[Alert]) -> io::Result<()> {
        for a in alerts {
            self.out.write_all(a.to_json_line().as_bytes())?;
            self.out.write_all(b"\n")?;
        }
        // Alerts are rare and wanted promptly: flush per window.
        self.out.flush()
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// `-` is standard output; anything else a file, created or truncated
/// (`append`: created or appended to).
pub fn open_output(spec: &Path, append: bool) -> io::Result<Box<dyn Write + Send>> {
    if spec.as_os_str() == "-" {
        Ok(Box::new(BufWriter::with_capacity(1 << 16, io::stdout())))
    } else {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(spec)
            .map_err(|e| {
                io::Error::new(e.kind(), format!("cannot create {}: {e}", spec.display()))
            })?;
        Ok(Box::new(BufWriter::with_capacity(1 << 16, f)))
    }
}

/// A write error that means "the reader went away" (`| head`): stop quietly.
pub fn is_broken_pipe(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}
