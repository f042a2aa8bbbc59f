//! The source's rules of time, as plain types: `--speed` pacing, the
//! watermark (how far event time is known to be complete, and the pane the
//! source's capabilities move to), when the map side flushes, and when a
//! read ends the input. No timely and no clock here: callers pass the
//! time in, so all of it is tested alone.

use std::time::{Duration, Instant};

use super::{IDLE_AFTER_US, Speed};
use crate::sources::ReadStatus;
use crate::window::map_side::MAX_MAP_ENTRIES;
use crate::window::{Pane, WindowSpec};

/// `--speed`: holds frames back so that event time runs at the recorded
/// pace times a factor, counted from the first frame.
#[derive(Debug)]
pub(crate) struct Pacer {
    factor: f64,
    /// (event time, wall time) of the first frame.
    origin: Option<(i64, Instant)>,
}

impl Pacer {
    /// `None` for `Speed::Max`: nothing to pace.
    pub(crate) fn new(speed: Speed) -> Option<Pacer> {
        match speed {
            Speed::Max => None,
            Speed::Factor(factor) => Some(Pacer {
                factor,
                origin: None,
            }),
        }
    }

    /// How long to wait, at wall time `now`, before handing on the frame
    /// stamped `ts_us` (`None`: it is due already). The first frame sets the
    /// origin; frames older than it are due at once.
    pub(crate) fn wait(&mut self, ts_us: i64, now: Instant) -> Option<Duration> {
        let (t0, w0) = *self.origin.get_or_insert((ts_us, now));
        let due = Duration::from_micros(((ts_us - t0).max(0) as f64 / self.factor) as u64);
        let elapsed = now.saturating_duration_since(w0);
        (due > elapsed).then(|| due - elapsed)
    }
}

/// Where the source's capabilities stand, from what it has read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Watermark {
    pub(crate) spec: WindowSpec,
    /// A live capture: a silent wire lets event time follow the clock.
    pub(crate) live: bool,
}

impl Watermark {
    /// Event time known to be complete, before lateness: the newest packet
    /// (`i64::MIN` before any); for a live input at least the wall clock
    /// `now_us` minus `IDLE_AFTER_US`; a source that keeps its own
    /// watermark (`FrameSource::watermark_us`) overrides both.
    pub(crate) fn complete_us(&self, max_ts_us: i64, now_us: i64, source_us: Option<i64>) -> i64 {
        if let Some(w) = source_us {
            return w;
        }
        if self.live {
            max_ts_us.max(now_us - IDLE_AFTER_US)
        } else {
            max_ts_us
        }
    }

    /// The pane the capabilities move to (never back from `cap_pane`), or
    /// `None` when the input is done.
    pub(crate) fn next_pane(&self, done: bool, complete_us: i64, cap_pane: Pane) -> Option<Pane> {
        if done {
            None
        } else if complete_us == i64::MIN {
            Some(cap_pane)
        } else {
            Some(self.spec.watermark_pane(complete_us).max(cap_pane))
        }
    }

    /// At the end of input: the last pane, told to every reduce worker.
    pub(crate) fn last_pane(&self, complete_us: i64, cap_pane: Pane) -> Pane {
        if complete_us == i64::MIN {
            cap_pane
        } else {
            self.spec.pane_of(complete_us).max(cap_pane)
        }
    }
}

/// Map-side tallies below this pane are shipped (`None`: all of them, at the
/// end or once the tables grew past `MAX_MAP_ENTRIES`).
pub(crate) fn ship_tallies_below(entries: usize, next_pane: Option<Pane>) -> Option<Pane> {
    if entries > MAX_MAP_ENTRIES {
        None
    } else {
        next_pane
    }
}

/// What a read means once a stop was asked for: an idle live source is
/// done (its kernel ring drained), a file is done at once.
pub(crate) fn read_status(status: ReadStatus, stopping: bool, live: bool) -> ReadStatus {
    match status {
        ReadStatus::Idle if stopping => ReadStatus::Done,
        _ if stopping && !live => ReadStatus::Done,
        st => st,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{Clock, MICROS};

    #[test]
    fn max_speed_does_not_pace() {
        assert!(Pacer::new(Speed::Max).is_none());
    }

    #[test]
    fn pacing_follows_event_time_times_the_factor() {
        let w0 = Clock.now();
        let mut p = Pacer::new(Speed::Factor(2.0)).expect("paced");
        // The first frame sets the origin and is due at once.
        assert_eq!(p.wait(10 * MICROS, w0), None);
        // 4 s of event time at 2x is due 2 s after the origin.
        assert_eq!(p.wait(14 * MICROS, w0), Some(Duration::from_secs(2)));
        let later = w0 + Duration::from_millis(500);
        assert_eq!(
            p.wait(14 * MICROS, later),
            Some(Duration::from_millis(1500))
        );
        // Late for its slot, or older than the origin: no wait.
        assert_eq!(p.wait(14 * MICROS, w0 + Duration::from_secs(3)), None);
        assert_eq!(p.wait(5 * MICROS, w0), None);
    }

    #[test]
    fn slow_pacing_stretches_time() {
        let w0 = Clock.now();
        let mut p = Pacer::new(Speed::Factor(0.5)).expect("paced");
        assert_eq!(p.wait(0, w0), None);
        assert_eq!(p.wait(MICROS, w0), Some(Duration::from_secs(2)));
    }

    fn rule(live: bool) -> Watermark {
        // 10 s panes, 60 s windows, 5 s lateness.
        Watermark {
            spec: WindowSpec::new(60, 10, 5),
            live,
        }
    }

    #[test]
    fn complete_time_is_the_newest_packet_for_files() {
        let w = rule(false);
        assert_eq!(
            w.complete_us(42 * MICROS, 1_000 * MICROS, None),
            42 * MICROS
        );
        assert_eq!(w.complete_us(i64::MIN, 1_000 * MICROS, None), i64::MIN);
        // A source's own watermark wins.
        assert_eq!(w.complete_us(42 * MICROS, 0, Some(7)), 7);
    }

    #[test]
    fn an_idle_live_input_follows_the_clock() {
        let w = rule(true);
        let now = 1_000 * MICROS;
        // Silent wire: the clock, IDLE_AFTER_US behind.
        assert_eq!(w.complete_us(i64::MIN, now, None), now - IDLE_AFTER_US);
        assert_eq!(w.complete_us(10 * MICROS, now, None), now - IDLE_AFTER_US);
        // Packets newer than that win.
        assert_eq!(w.complete_us(now, now, None), now);
        assert_eq!(w.complete_us(now, now, Some(3)), 3);
    }

    #[test]
    fn next_pane_subtracts_lateness_and_never_goes_back() {
        let w = rule(false);
        assert_eq!(w.next_pane(true, 100 * MICROS, 3), None);
        assert_eq!(w.next_pane(false, i64::MIN, 3), Some(3));
        // 100 s - 5 s lateness = pane 9.
        assert_eq!(w.next_pane(false, 100 * MICROS, 3), Some(9));
        assert_eq!(w.next_pane(false, 104 * MICROS, 3), Some(9));
        assert_eq!(w.next_pane(false, 105 * MICROS, 3), Some(10));
        assert_eq!(w.next_pane(false, 100 * MICROS, 12), Some(12));
        // Before the epoch: pane 0.
        assert_eq!(w.next_pane(false, -5, 0), Some(0));
    }

    #[test]
    fn last_pane_is_the_newest_without_lateness() {
        let w = rule(false);
        assert_eq!(w.last_pane(i64::MIN, 4), 4);
        assert_eq!(w.last_pane(100 * MICROS, 4), 10);
        assert_eq!(w.last_pane(100 * MICROS, 12), 12);
    }

    #[test]
    fn tallies_ship_below_the_next_pane_unless_the_table_is_full() {
        assert_eq!(ship_tallies_below(0, Some(5)), Some(5));
        assert_eq!(ship_tallies_below(MAX_MAP_ENTRIES, Some(5)), Some(5));
        assert_eq!(ship_tallies_below(MAX_MAP_ENTRIES + 1, Some(5)), None);
        assert_eq!(ship_tallies_below(0, None), None);
    }

    #[test]
    fn a_stop_ends_files_at_once_and_live_input_when_drained() {
        use ReadStatus::*;
        for live in [false, true] {
            for st in [Idle, Done] {
                assert_eq!(read_status(st, false, live), st);
                assert_eq!(read_status(st, true, live), Done);
            }
        }
        let more = Frames(3);
        assert_eq!(read_status(more, false, false), more);
        assert_eq!(read_status(more, true, false), Done);
        assert_eq!(read_status(more, true, true), more);
    }
}
