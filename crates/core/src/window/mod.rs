//! Window math: event-time sliding windows made of slide-aligned panes.
//! A pane is `slide` long; pane `p` covers `[p*slide, (p+1)*slide)`. The
//! window that *ends* at pane `e` is panes `e-k+1 ..= e` with
//! `k = size / slide`. Timely timestamps in the dataflow are pane indices, so
//! "the frontier passed pane e" means the window ending at `e` is complete.
//! No timely here: plain arithmetic, tested alone.

use crate::time::MICROS;

pub mod spec;

pub use crate::time::Pane;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowPlan {
    /// Slide (pane length), microseconds, > 0.
    pub slide_us: i64,
    /// Panes per window (size / slide), >= 1.
    pub panes: u64,
    /// How far behind the newest packet an older packet may still arrive and
    /// be counted (out-of-order capture), microseconds.
    pub lateness_us: i64,
}

impl WindowPlan {
    pub fn new(size_secs: u64, slide_secs: u64, lateness_secs: u64) -> Self {
        assert!(
            slide_secs > 0 && size_secs.is_multiple_of(slide_secs),
            "validated by config"
        );
        WindowPlan {
            slide_us: slide_secs as i64 * MICROS,
            panes: size_secs / slide_secs,
            lateness_us: lateness_secs as i64 * MICROS,
        }
    }

    pub fn size_us(&self) -> i64 {
        self.slide_us * self.panes as i64
    }

    pub fn slide_secs_f64(&self) -> f64 {
        self.slide_us as f64 / MICROS as f64
    }

    pub fn size_secs_f64(&self) -> f64 {
        self.size_us() as f64 / MICROS as f64
    }

    /// Pane holding an event at `ts_us` (times before the epoch go to pane 0).
    pub fn pane_of(&self, ts_us: i64) -> Pane {
        if ts_us <= 0 {
            0
        } else {
            (ts_us / self.slide_us) as Pane
        }
    }

    /// The pane below which nothing new is accepted once `max_ts_us` was seen.
    pub fn watermark_pane(&self, max_ts_us: i64) -> Pane {
        self.pane_of(max_ts_us.saturating_sub(self.lateness_us))
    }

    /// First pane of the window ending at `end`.
    pub fn first_pane(&self, end: Pane) -> Pane {
        end.saturating_sub(self.panes - 1)
    }

    /// `[start, end)` of the window ending at pane `end`, microseconds.
    pub fn bounds_us(&self, end: Pane) -> (i64, i64) {
        let end_us = (end as i64 + 1) * self.slide_us;
        (end_us - self.size_us(), end_us)
    }

    /// Event time at which the window ending at pane `end` closes.
    pub fn end_us(&self, end: Pane) -> i64 {
        (end as i64 + 1) * self.slide_us
    }

    /// Is pane `p` inside the window ending at `end`?
    pub fn contains(&self, end: Pane, p: Pane) -> bool {
        p <= end && p >= self.first_pane(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panes_and_bounds() {
        let w = WindowPlan::new(10, 1, 2);
        assert_eq!(w.panes, 10);
        assert_eq!(w.pane_of(12_345_678), 12);
        assert_eq!(w.bounds_us(12), (3 * MICROS, 13 * MICROS));
        assert!(w.contains(12, 3) && w.contains(12, 12));
        assert!(!w.contains(12, 2) && !w.contains(12, 13));
        assert_eq!(w.watermark_pane(12 * MICROS), 10);
        assert_eq!(w.first_pane(3), 0);
        let w = WindowPlan::new(30, 5, 0);
        assert_eq!(w.panes, 6);
        assert_eq!(w.pane_of(29 * MICROS), 5);
    }
}
