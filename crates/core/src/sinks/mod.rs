//! Sinks: where alert states, event lines and reports go. One typed trait,
//! [`Sink`], for the three records ([`Alert`], [`EventLine`], [`Report`]);
//! JSON lines ([`JsonLines`]), readable lines on a terminal ([`human`]), the
//! RabbitMQ publishers (`amqp::sink`) and the live screen (`tui`) implement
//! it; [`Tee`] fans a record out to several sinks and [`watch`] records the
//! first failure of a run. Output order is decided before a sink sees the
//! records (sorted per closed window, interval or pane).

use std::io::{self, BufWriter, Write};
use std::marker::PhantomData;
use std::path::Path;

pub mod human;
pub mod watch;

use crate::alert::Alert;
use crate::dns::event::EventLine;
use crate::reports::Report;

/// Receives records of one kind, already sorted, one batch at a time (a
/// closed window's alerts, a pane's event lines, an interval's reports).
pub trait Sink<R>: Send {
    fn emit(&mut self, records: &[R]) -> io::Result<()>;
    /// The input ended: write out what is buffered (a broker: wait for its
    /// confirms).
    fn finish(&mut self) -> io::Result<()>;
    /// Everything emitted so far is safe (written, or confirmed by a
    /// broker): acknowledged input may be released up to here.
    fn settled(&self) -> bool {
        true
    }
}

/// A record with a one-line form: its schema's JSON object.
pub trait JsonLine {
    /// Write the line and its `'\n'`.
    fn write_line(&self, out: &mut dyn Write) -> io::Result<()>;
}

impl JsonLine for Alert {
    fn write_line(&self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(self.to_json_line().as_bytes())?;
        out.write_all(b"\n")
    }
}

impl JsonLine for Report {
    fn write_line(&self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(self.to_json_line().as_bytes())?;
        out.write_all(b"\n")
    }
}

/// Rendered by the worker that decoded the message (newline included).
impl JsonLine for EventLine {
    fn write_line(&self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(&self.line)
    }
}

/// JSON lines (`dnsmonitor.alert/1`, `.event/1`, `.report/1`), one object
/// per line, flushed after every batch: alerts and reports are wanted
/// promptly, and acknowledged input is released once its event lines are
/// written.
pub struct JsonLines<R> {
    out: Box<dyn Write + Send>,
    records: PhantomData<fn(&R)>,
}

impl<R> JsonLines<R> {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        JsonLines {
            out,
            records: PhantomData,
        }
    }
}

impl<R: JsonLine> Sink<R> for JsonLines<R> {
    fn emit(&mut self, records: &[R]) -> io::Result<()> {
        for r in records {
            r.write_line(&mut *self.out)?;
        }
        self.out.flush()
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The same records to several sinks (a file and a broker, the screen).
/// Every sink gets every batch, also after another failed; the first error
/// is returned. Errors at `finish` are printed, each naming its cause (a
/// broker's unconfirmed alerts), since only the first is returned.
pub struct Tee<R>(Vec<Box<dyn Sink<R>>>);

impl<R> Tee<R> {
    pub fn new(sinks: Vec<Box<dyn Sink<R>>>) -> Self {
        Tee(sinks)
    }
}

impl<R> Default for Tee<R> {
    fn default() -> Self {
        Tee(Vec::new())
    }
}

impl<R> Sink<R> for Tee<R> {
    fn emit(&mut self, records: &[R]) -> io::Result<()> {
        let mut first = Ok(());
        for s in &mut self.0 {
            if let Err(e) = s.emit(records)
                && first.is_ok()
            {
                first = Err(e);
            }
        }
        first
    }

    fn finish(&mut self) -> io::Result<()> {
        let mut first = Ok(());
        for s in &mut self.0 {
            if let Err(e) = s.finish() {
                eprintln!("error: {e}");
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }

    fn settled(&self) -> bool {
        self.0.iter().all(|s| s.settled())
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A sink that records what it got and fails when told to.
    struct Probe {
        got: Arc<Mutex<Vec<u32>>>,
        fail: Option<io::ErrorKind>,
        settled: bool,
    }

    impl Sink<u32> for Probe {
        fn emit(&mut self, records: &[u32]) -> io::Result<()> {
            self.got.lock().unwrap().extend_from_slice(records);
            self.fail.map_or(Ok(()), |k| Err(k.into()))
        }
        fn finish(&mut self) -> io::Result<()> {
            self.fail.map_or(Ok(()), |k| Err(k.into()))
        }
        fn settled(&self) -> bool {
            self.settled
        }
    }

    #[test]
    fn tee_gives_every_sink_every_batch_and_returns_the_first_error() {
        let got: Vec<Arc<Mutex<Vec<u32>>>> = (0..3).map(|_| Arc::default()).collect();
        let fails = [
            None,
            Some(io::ErrorKind::BrokenPipe),
            Some(io::ErrorKind::Other),
        ];
        let sinks = got
            .iter()
            .zip(fails)
            .map(|(g, fail)| {
                Box::new(Probe {
                    got: g.clone(),
                    fail,
                    settled: fail.is_none(),
                }) as Box<dyn Sink<u32>>
            })
            .collect();
        let mut tee = Tee::new(sinks);
        let e = tee.emit(&[1, 2]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        for g in &got {
            assert_eq!(*g.lock().unwrap(), [1, 2]);
        }
        assert_eq!(tee.finish().unwrap_err().kind(), io::ErrorKind::BrokenPipe);
        assert!(!tee.settled());
        assert!(Tee::<u32>::default().settled());
    }

    #[test]
    fn json_lines_write_one_record_per_line() {
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl Write for Buf {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let mut events = JsonLines::new(Box::new(buf.clone()));
        let line = |frame: u64| EventLine {
            file: 0,
            frame,
            line: format!("{{\"frame\":{frame}}}\n").into_bytes(),
        };
        events.emit(&[line(1), line(2)]).unwrap();
        events.finish().unwrap();
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text, "{\"frame\":1}\n{\"frame\":2}\n");
    }
}
