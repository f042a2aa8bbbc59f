//! `--tui`: a full-screen live view of a run (ratatui on crossterm), for
//! `live`, `consume` and `replay` (any command that runs the dataflow can
//! take it: it needs only the run's metrics, alert sink and report output).
//!
//! It costs the pipeline nothing per packet: it reads what the pipeline
//! already produces, on its own thread:
//!
//! - the metrics registry ([`Metrics`]), sampled once a second: packets,
//!   queries, responses by RCODE, late messages, capture drops, watermark;
//! - the alert stream: [`ScreenAlerts`] is one more alert sink (alerts are
//!   sent once per closed window);
//! - the report stream: [`ScreenReports`] is one more report sink (one
//!   report per table per reporting interval).
//!
//! The last two reach the screen over a channel. The screen is read-only;
//! `q` or Ctrl-C sets the run's stop flag (the same one SIGINT sets), so the
//! pipeline closes its windows and flushes its outputs; [`Screen::finish`]
//! then restores the terminal and the caller prints the summary. When the
//! input ends by itself the screen stays until the operator quits.

pub mod draw;
pub mod model;

use std::io::{self, IsTerminal};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};

use crate::alert::Alert;
use crate::metrics::{CAPTURE_DROP_WHERE, Metrics, RCODES};
use crate::reports::Report;
use crate::sinks::Sink;
use crate::time::Clock;
use model::{Action, Phase, Sample, View};

/// How often the screen samples the metrics and redraws.
pub const REFRESH: Duration = Duration::from_secs(1);

/// What the pipeline sends the screen.
enum Update {
    Alert(Box<Alert>),
    Report(Box<Report>),
    /// The run is over (input ended or stopped).
    Ended,
}

/// The counters the screen shows, read from the registry.
pub fn sample(m: &Metrics) -> Sample {
    let mut rcodes = [0; RCODES.len()];
    for (i, r) in RCODES.iter().enumerate() {
        rcodes[i] = m.dns_responses.with_label_values(&[r]).get();
    }
    Sample {
        packets: m.packets.get(),
        queries: m.dns_messages.with_label_values(&["query"]).get(),
        responses: m.dns_messages.with_label_values(&["response"]).get(),
        rcodes,
        late: m.late_messages.get(),
        capture_drops: CAPTURE_DROP_WHERE
            .iter()
            .map(|w| m.capture_drops.with_label_values(&[w]).get())
            .sum(),
        watermark_secs: m.watermark.get(),
    }
}

/// The alert sink that feeds the screen (a copy of every alert state).
pub struct ScreenAlerts(Sender<Update>);

impl Sink<Alert> for ScreenAlerts {
    fn emit(&mut self, alerts: &[Alert]) -> io::Result<()> {
        for a in alerts {
            // A screen that is gone wants nothing more.
            let _ = self.0.send(Update::Alert(Box::new(a.clone())));
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The report sink that feeds the screen (a copy of every report).
pub struct ScreenReports(Sender<Update>);

impl Sink<Report> for ScreenReports {
    fn emit(&mut self, reports: &[Report]) -> io::Result<()> {
        for r in reports {
            // A screen that is gone wants nothing more.
            let _ = self.0.send(Update::Report(Box::new(r.clone())));
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The running screen (its own thread).
pub struct Screen {
    tx: Sender<Update>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

/// Why the screen cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ScreenError {
    #[error("--tui needs a terminal on standard output")]
    NotATerminal,
    #[error("cannot start the screen: {0}")]
    Io(#[from] io::Error),
}

impl Screen {
    /// Take over the terminal and start drawing. `title` names the command
    /// and its input (escaped by the caller); `stop` is the run's stop flag.
    /// Returns the screen and the alert and report sinks to give the run.
    pub fn start(
        title: String,
        metrics: Metrics,
        stop: Arc<AtomicBool>,
    ) -> Result<(Screen, ScreenAlerts, ScreenReports), ScreenError> {
        if !io::stdout().is_terminal() {
            return Err(ScreenError::NotATerminal);
        }
        let (tx, rx) = channel();
        let terminal = ratatui::try_init()?;
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("screen".into())
            .spawn(move || run(terminal, &title, &metrics, &flag, &rx))?;
        let alerts = ScreenAlerts(tx.clone());
        let reports = ScreenReports(tx.clone());
        Ok((
            Screen {
                tx,
                stop,
                thread: Some(thread),
            },
            alerts,
            reports,
        ))
    }

    /// The run is over: show it, wait for the operator to quit when the
    /// input ended by itself (not when a quit or a signal stopped it),
    /// restore the terminal.
    pub fn finish(mut self) -> io::Result<()> {
        let _ = self.tx.send(Update::Ended);
        self.join()
    }

    fn join(&mut self) -> io::Result<()> {
        let r = match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("the screen thread panicked")),
            None => Ok(()),
        };
        ratatui::try_restore()?;
        r
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        // An early return (an error before `finish`): the run is over;
        // give the terminal back without waiting for a key.
        if self.thread.is_some() {
            self.stop.store(true, Ordering::Relaxed);
            let _ = self.tx.send(Update::Ended);
            let _ = self.join();
        }
    }
}

/// The screen's loop: drain updates, sample and redraw every `REFRESH`,
/// answer keys.
fn run(
    mut terminal: ratatui::DefaultTerminal,
    title: &str,
    metrics: &Metrics,
    stop: &AtomicBool,
    rx: &Receiver<Update>,
) -> io::Result<()> {
    let clock = Clock;
    let mut view = View::default();
    // What a paused screen keeps showing.
    let mut frozen: Option<View> = None;
    let mut last = clock.now();
    view.tick(sample(metrics), 0.0);
    let mut dirty = true;
    loop {
        while let Ok(u) = rx.try_recv() {
            match u {
                Update::Alert(a) => view.alert(&a),
                Update::Report(r) => view.report(&r),
                Update::Ended => {
                    // The final counts, at once.
                    let now = clock.now();
                    view.tick(
                        sample(metrics),
                        now.saturating_duration_since(last).as_secs_f64(),
                    );
                    last = now;
                    view.phase = Phase::Ended;
                    dirty = true;
                }
            }
        }
        // Stopped (q, Ctrl-C or a signal) and the run is over: leave.
        if view.phase == Phase::Ended && stop.load(Ordering::Relaxed) {
            break;
        }
        if view.phase == Phase::Running && stop.load(Ordering::Relaxed) {
            view.phase = Phase::Stopping;
        }
        let now = clock.now();
        let since = now.saturating_duration_since(last);
        if since >= REFRESH {
            view.tick(sample(metrics), since.as_secs_f64());
            last = now;
            dirty = true;
        }
        if dirty {
            let shown = frozen.as_ref().unwrap_or(&view);
            terminal.draw(|f| draw::draw(f, shown, title))?;
            dirty = false;
        }
        // Wait for a key until the next refresh (short, so updates and the
        // end of the run show promptly).
        let wait = REFRESH
            .saturating_sub(clock.now().saturating_duration_since(last))
            .min(Duration::from_millis(100));
        if !event::poll(wait)? {
            continue;
        }
        match event::read()? {
            Event::Key(k) if k.kind != KeyEventKind::Release => {
                let KeyCode::Char(c) = k.code else { continue };
                let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
                let paused_before = frozen.is_some();
                let action = match frozen.as_mut() {
                    Some(fz) => fz.key(c, ctrl),
                    None => view.key(c, ctrl),
                };
                match action {
                    Action::Quit => {
                        stop.store(true, Ordering::Relaxed);
                        frozen = None;
                        view.phase = match view.phase {
                            Phase::Running => Phase::Stopping,
                            p => p,
                        };
                        dirty = true;
                    }
                    Action::Redraw => {
                        // Pausing freezes what is shown; sorting applies to
                        // both, so resuming keeps the order chosen.
                        if let Some(fz) = &frozen {
                            view.top_sort = fz.top_sort;
                            view.alert_sort = fz.alert_sort;
                        }
                        let paused_now = frozen.as_ref().map_or(view.paused, |f| f.paused);
                        if paused_now && !paused_before {
                            frozen = Some(view.clone());
                        } else if !paused_now && paused_before {
                            frozen = None;
                            view.paused = false;
                        }
                        dirty = true;
                    }
                    Action::None => {}
                }
            }
            Event::Resize(..) => dirty = true,
            _ => {}
        }
    }
    Ok(())
}
