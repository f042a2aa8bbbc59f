//! The source's rules of time, as plain types: `--speed` pacing, the
//! watermark (how far event time is known to be complete, and the pane the
//! source's capabilities move to), the pane below which a message is late,
//! when the map side flushes, and when a read ends the input. No timely and
//! no clock here: callers pass the time in, so all of it is tested alone.
//!
//! Why lateness is decided per frame (`LateBound`): the source's
//! capabilities move once per activation, and an activation's batch ends
//! where the pace says (a paced replay hands frames on as they fall due).
//! If lateness followed the capability, the batch boundaries, hence the
//! pace, would decide which messages are late, and so the alerts. Deciding
//! it from the newest frame read so far makes it a function of the input
//! alone: the same at any `--speed`, batch size and worker count.

use std::time::{Duration, Instant};

use super::{IDLE_AFTER_US, Speed};
use crate::engine::map_side::MAX_MAP_ENTRIES;
use crate::sources::ReadStatus;
use crate::time::TIME_JUMP_US;
use crate::window::{Pane, WindowPlan};

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

    /// The event time the pace has reached at wall time `now` (`None`
    /// before the first frame).
    pub(crate) fn event_now(&self, now: Instant) -> Option<i64> {
        let (t0, w0) = self.origin?;
        let run = now.saturating_duration_since(w0).as_micros() as f64 * self.factor;
        Some(t0.saturating_add(run.min(i64::MAX as f64) as i64))
    }

    /// While the next frame (`held_ts_us`) is not due yet, event time is
    /// complete up to where the pace stands (`now`), as a live capture's
    /// silent wire follows the clock: windows close in (paced) real time.
    /// Never past the held frame, and only when that frame is sure to move
    /// the newest packet time (`max_ts_us`) at least as far (it is within
    /// `TIME_JUMP_US` of it): so no later frame can find itself below the
    /// capabilities, and lateness stays a function of the input alone.
    pub(crate) fn idle_complete_us(
        &self,
        now: Instant,
        held_ts_us: i64,
        max_ts_us: i64,
    ) -> Option<i64> {
        if max_ts_us == i64::MIN || held_ts_us > max_ts_us.saturating_add(TIME_JUMP_US) {
            return None;
        }
        Some(self.event_now(now)?.min(held_ts_us))
    }
}

/// The pane below which a message is late: the watermark pane of the
/// newest frame read so far (see the module comment), never below the
/// capabilities' pane. Kept incrementally: one comparison per frame.
#[derive(Debug)]
pub(crate) struct LateBound {
    spec: WindowPlan,
    pane: Pane,
    /// The newest-frame time at which `pane` moves on.
    next_us: i64,
}

impl LateBound {
    pub(crate) fn new(spec: WindowPlan) -> Self {
        LateBound {
            spec,
            pane: 0,
            next_us: i64::MIN,
        }
    }

    /// The late bound once the newest frame read is `max_ts_us` (`i64::MIN`
    /// before event time is known), with the capabilities at `cap_pane`.
    pub(crate) fn min_pane(&mut self, max_ts_us: i64, cap_pane: Pane) -> Pane {
        if max_ts_us != i64::MIN && max_ts_us >= self.next_us {
            self.pane = self.spec.watermark_pane(max_ts_us);
            self.next_us = (self.pane as i64 + 1)
                .saturating_mul(self.spec.slide_us)
                .saturating_add(self.spec.lateness_us);
        }
        self.pane.max(cap_pane)
    }
}

/// Where the source's capabilities stand, from what it has read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Watermark {
    pub(crate) spec: WindowPlan,
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
    fn the_pace_tells_event_time_between_frames() {
        let w0 = Clock.now();
        let mut p = Pacer::new(Speed::Factor(10.0)).expect("paced");
        assert_eq!(p.event_now(w0), None);
        assert_eq!(p.wait(100 * MICROS, w0), None);
        let later = w0 + Duration::from_millis(300);
        // 0.3 s at 10x: 3 s of event time.
        assert_eq!(p.event_now(later), Some(103 * MICROS));
        // Waiting for a frame at 110 s: complete up to the pace...
        assert_eq!(
            p.idle_complete_us(later, 110 * MICROS, 100 * MICROS),
            Some(103 * MICROS)
        );
        // ...never past the frame...
        assert_eq!(
            p.idle_complete_us(later, 101 * MICROS, 100 * MICROS),
            Some(101 * MICROS)
        );
        // ...and not when the frame would not be believed (a jump far
        // ahead) or event time is not known yet.
        let far = 100 * MICROS + TIME_JUMP_US + 1;
        assert_eq!(p.idle_complete_us(later, far, 100 * MICROS), None);
        assert_eq!(p.idle_complete_us(later, 101 * MICROS, i64::MIN), None);
    }

    #[test]
    fn late_bound_follows_the_newest_frame_whatever_the_batches() {
        // 10 s panes, 5 s lateness.
        let spec = WindowPlan::new(60, 10, 5);
        let mut b = LateBound::new(spec);
        assert_eq!(b.min_pane(i64::MIN, 0), 0);
        assert_eq!(b.min_pane(i64::MIN, 2), 2);
        assert_eq!(b.min_pane(100 * MICROS, 0), 9);
        assert_eq!(b.min_pane(104 * MICROS, 0), 9);
        assert_eq!(b.min_pane(105 * MICROS, 0), 10);
        // The capabilities' pane is a floor.
        assert_eq!(b.min_pane(105 * MICROS, 12), 12);
        // It equals the watermark pane of every newest time, step by step.
        let mut b = LateBound::new(spec);
        for t in (0..400).map(|s| s * MICROS / 2) {
            assert_eq!(b.min_pane(t, 0), spec.watermark_pane(t), "{t}");
        }
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
            spec: WindowPlan::new(60, 10, 5),
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
