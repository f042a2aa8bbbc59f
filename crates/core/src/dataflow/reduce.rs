//! The reduce operator: map-side tallies, exchanged by key hash, go into
//! `KeyedWindows`; the input frontier says which windows are complete, and
//! closing them yields alerts. The operator holds a capability only once
//! tallies arrived (data that can produce alerts), sends each alert at its
//! window's pane so the sink can write window by window, and follows the
//! frontier down.

use std::sync::{Arc, Mutex};

use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::{Operator, OutputBuilderSession};
use timely::dataflow::operators::{Capability, InputCapability};

use super::reload::Reload;
use super::{RunSummary, frontier_min};
use crate::alert::Alert;
use crate::config::Plan;
use crate::engine::keyed::{Bounds, KeyedWindows};
use crate::engine::map_side::{Shuffle, recycle_batch};
use crate::metrics::Metrics;
use crate::window::{Pane, WindowPlan};

type AlertOutput<'a> = OutputBuilderSession<'a, Pane, CapacityContainerBuilder<Vec<Alert>>>;

/// The reduce side of one worker.
pub(crate) struct Reduce {
    spec: WindowPlan,
    windows: KeyedWindows,
    /// Held for data that can produce alerts, at the least time not closed.
    held: Option<Capability<Pane>>,
    /// The last pane, once every source said where input ended.
    last_pane: Option<Pane>,
    /// Windows closed so far (by their last pane).
    closed_through: Option<Pane>,
    out_buf: Vec<Alert>,
    /// Active alerts were added to the summary (once, at the end).
    reported: bool,
    /// Windows counted in the metrics (worker 0), from the first data.
    counted_through: Option<Pane>,
    first_data: Option<Pane>,
    refused_published: u64,
    /// `KeyedWindows::late_tallies` already added to the metrics.
    late_published: u64,
    index: usize,
    metrics: Option<Metrics>,
    summary: Arc<Mutex<RunSummary>>,
    /// Pipeline versions announced (`Shuffle::Switch`), not yet in force:
    /// (first window end, version), in order.
    switches: Vec<(Pane, u64)>,
    reload: Option<Arc<Reload>>,
}

/// Build the reduce operator of this worker on the shuffled tallies.
pub(crate) fn reduce<'s>(
    shuffle: Stream<'s, Pane, Vec<Shuffle>>,
    plan: &Plan,
    index: usize,
    local_workers: usize,
    metrics: Option<Metrics>,
    summary: Arc<Mutex<RunSummary>>,
    reload: Option<Arc<Reload>>,
) -> Stream<'s, Pane, Vec<Alert>> {
    let mut r = Reduce {
        spec: plan.window,
        windows: KeyedWindows::new(
            plan.window,
            plan.lifecycle,
            plan.detectors.clone(),
            Bounds::per_worker(local_workers),
        ),
        held: None,
        last_pane: None,
        closed_through: None,
        out_buf: Vec::new(),
        reported: false,
        counted_through: None,
        first_data: None,
        refused_published: 0,
        late_published: 0,
        index,
        metrics,
        summary,
        switches: Vec::new(),
        reload,
    };
    shuffle.unary_frontier::<CapacityContainerBuilder<Vec<Alert>>, _, _, _>(
        Exchange::new(|s: &Shuffle| s.route()),
        "KeyedWindows",
        move |_cap, _info| {
            move |(input, frontier), output| {
                input.for_each_stamp(|cap, data| r.absorb(&cap, data));
                let f = frontier_min(frontier);
                r.step(f, output);
            }
        },
    )
}

impl Reduce {
    /// Add one stamp's tallies; note where input ends.
    fn absorb(&mut self, cap: &InputCapability<Pane>, data: std::slice::IterMut<'_, Vec<Shuffle>>) {
        let Some(&t) = cap.least() else { return };
        let mut any_tally = false;
        for batch in data {
            // Records are taken from where they arrived (a tally is not
            // copied out of the batch first).
            for s in batch.iter_mut() {
                match s {
                    Shuffle::Tally { det, key, tally } => {
                        any_tally = true;
                        self.windows.add_from(t, *det, key, tally)
                    }
                    &mut Shuffle::End { last_pane: p, .. } => {
                        self.last_pane = Some(self.last_pane.map_or(p, |q| q.max(p)));
                    }
                    &mut Shuffle::Switch { pane, version, .. } => {
                        if !self.switches.iter().any(|&(_, v)| v == version) {
                            self.switches.push((pane, version));
                            self.switches.sort_unstable();
                        }
                    }
                }
            }
            recycle_batch(std::mem::take(batch));
        }
        // Hold a capability only for data that can produce alerts.
        if any_tally && self.first_data.is_none() {
            self.first_data = Some(t);
        }
        if any_tally && self.held.as_ref().is_none_or(|h| t < *h.time()) {
            self.held = cap.retain_least(0);
        }
    }

    /// After the input: close what the frontier passed, release at the end.
    fn step(&mut self, frontier: Option<Pane>, output: &mut AlertOutput<'_>) {
        let through = complete_through(frontier, self.last_pane);
        self.count_windows(through);
        if let Some(e) = through
            && self.held.is_some()
            && self.closed_through.is_none_or(|c| e > c)
        {
            self.close_through(e, frontier, output);
        }
        if frontier.is_none() {
            self.held = None;
            if !self.reported {
                self.reported = true;
                let mut s = self.summary.lock().unwrap_or_else(|p| p.into_inner());
                s.active_at_end += self.windows.active_alerts() as u64;
                s.refused_window_keys += self.windows.refused_keys;
                s.late_tallies += self.windows.late_tallies;
            }
        }
    }

    /// Windows passed by the frontier since the first data (worker 0 counts).
    fn count_windows(&mut self, through: Option<Pane>) {
        if self.index == 0
            && let (Some(m), Some(e), Some(f)) = (&self.metrics, through, self.first_data)
        {
            let from = self.counted_through.map_or(f, |c| c + 1);
            if e + 1 > from {
                m.windows_closed.inc_by(e + 1 - from);
                self.counted_through = Some(e);
            }
        }
    }

    /// Close the windows ending through pane `e`, send their alerts and
    /// move the held capability to the frontier.
    fn close_through(&mut self, e: Pane, frontier: Option<Pane>, output: &mut AlertOutput<'_>) {
        if self.held.is_none() {
            return;
        }
        self.switch_through(e);
        let Some(h) = self.held.as_mut() else { return };
        self.windows.close_through(e, &mut self.out_buf);
        if let Some(m) = &self.metrics {
            let refused = self.windows.refused_keys;
            m.state_evictions
                .with_label_values(&["window_keys"])
                .inc_by(refused - self.refused_published);
            self.refused_published = refused;
            let late = self.windows.late_tallies;
            m.late_tallies.inc_by(late - self.late_published);
            self.late_published = late;
        }
        // Each state is sent at its window's pane, so the sink can order
        // output window by window.
        for (pane, range) in runs_by_pane(&self.out_buf, self.spec, *h.time()) {
            let c = h.delayed(&pane);
            output
                .session(&c)
                .give_iterator(self.out_buf[range].iter().cloned());
        }
        self.out_buf.clear();
        self.closed_through = Some(e);
        if let Some(f) = frontier
            && f > *h.time()
        {
            h.downgrade(&f);
        }
    }
}

impl Reduce {
    /// Put in force the versions announced for windows ending through
    /// `e`: the windows before each switch pane are closed with the
    /// version before it.
    fn switch_through(&mut self, e: Pane) {
        while let Some(&(pane, version)) = self.switches.first()
            && pane <= e
        {
            self.switches.remove(0);
            if pane > 0 {
                self.windows.close_through(pane - 1, &mut self.out_buf);
            }
            match self.reload.as_ref().and_then(|r| r.get(version)) {
                Some(v) => self
                    .windows
                    .set_plan(v.plan.lifecycle, v.plan.detectors.clone()),
                // Only the reader of this process announces versions.
                None => tracing::error!(version, "pipeline version announced but unknown here"),
            }
        }
    }
}

/// The last pane whose window is complete: the one before the frontier;
/// once input finished, the last pane the sources announced.
fn complete_through(frontier: Option<Pane>, last_pane: Option<Pane>) -> Option<Pane> {
    match frontier {
        Some(f) if f > 0 => Some(f - 1),
        Some(_) => None,
        None => last_pane,
    }
}

/// Consecutive runs of `alerts` that go out at the same pane: the pane of
/// the alert's window, not before `held`.
fn runs_by_pane(
    alerts: &[Alert],
    spec: WindowPlan,
    held: Pane,
) -> Vec<(Pane, std::ops::Range<usize>)> {
    runs_by(alerts, |a| spec.pane_of(a.event_time_us - 1).max(held))
}

/// Consecutive runs of `items` with the same `pane_of`, in order.
fn runs_by<T>(items: &[T], pane_of: impl Fn(&T) -> Pane) -> Vec<(Pane, std::ops::Range<usize>)> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < items.len() {
        let pane = pane_of(&items[i]);
        let j = items[i..]
            .iter()
            .position(|a| pane_of(a) != pane)
            .map_or(items.len(), |k| i + k);
        runs.push((pane, i..j));
        i = j;
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_through_is_the_pane_before_the_frontier() {
        assert_eq!(complete_through(Some(5), Some(9)), Some(4));
        assert_eq!(complete_through(Some(0), Some(9)), None);
        assert_eq!(complete_through(None, Some(9)), Some(9));
        assert_eq!(complete_through(None, None), None);
    }

    #[test]
    fn runs_split_where_the_pane_changes() {
        let panes: [Pane; 6] = [3, 3, 4, 4, 4, 3];
        let runs = runs_by(&panes, |p| *p);
        assert_eq!(runs, [(3, 0..2), (4, 2..5), (3, 5..6)]);
        assert!(runs_by(&[] as &[Pane], |p| *p).is_empty());
    }
}
