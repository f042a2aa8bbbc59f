//! `KeyedWindows`: the reduce side. Holds, per (detector, key), the partial
//! tallies of the panes still inside a window, and the alert lifecycle of
//! each key. `close_through(e)` evaluates every window ending at or before
//! pane `e` in order and returns the alert states reached. Pure: the
//! dataflow calls it when the frontier passes `e`; tests call it directly.

use std::collections::VecDeque;

use foldhash::{HashMap, HashMapExt};
use std::sync::Arc;

use super::{Pane, WindowSpec};
use crate::alert::{Alert, AlertLifecycle};
use crate::config::LifecyclePolicy;
use crate::detect::{Baseline, Detector, Key, Tally, WindowView};

/// One key's panes still inside a window, the counters of the panes already
/// entered into the current window (added when the window ending at their
/// pane closes, removed when they slide out: closing a window costs O(1) per
/// key instead of a sum over its panes), its learned baseline and its alert.
#[derive(Default)]
struct KeyPanes {
    panes: VecDeque<(Pane, Tally)>,
    sum: Tally,
    /// How many panes at the front are already added to `sum`.
    entered: usize,
    /// The key's learned normal (see `detect::Baseline`).
    baseline: Baseline,
    /// The key's open alert episode, if any.
    alert: Option<AlertLifecycle>,
}

pub struct KeyedWindows {
    spec: WindowSpec,
    policy: LifecyclePolicy,
    detectors: Vec<Arc<dyn Detector>>,
    /// Keys with panes in a window or an open alert.
    /// (Boxed: a slot of the map stays small, most keys hold one pane.)
    keys: HashMap<(u16, Key), Box<KeyPanes>>,
    /// Open alerts (keys whose `alert` is set).
    active: usize,
    /// Windows ending before this pane are closed.
    next_end: Option<Pane>,
    /// Tallies that arrived for an already closed window (should not happen
    /// with frontier-driven closing; counted, never silently merged).
    pub late_tallies: u64,
    /// Tallies refused because `MAX_KEYS` keys were already held.
    pub refused_keys: u64,
}

/// Most (detector, key) entries one reduce worker holds. Past it, tallies
/// for new keys are refused and counted (`refused_keys`): a flood of
/// millions of spoofed sources cannot grow the state without bound, and the
/// keys already tracked (the ones with traffic) keep being evaluated.
pub const MAX_KEYS: usize = 1 << 18;

impl KeyedWindows {
    pub fn new(
        spec: WindowSpec,
        policy: LifecyclePolicy,
        detectors: Vec<Arc<dyn Detector>>,
    ) -> Self {
        KeyedWindows {
            spec,
            policy,
            detectors,
            keys: HashMap::new(),
            active: 0,
            next_end: None,
            late_tallies: 0,
            refused_keys: 0,
        }
    }

    pub fn add(&mut self, pane: Pane, det: u16, key: Key, tally: Tally) {
        if let Some(next) = self.next_end
            && pane < next
        {
            self.late_tallies += 1;
            return;
        }
        if self.keys.len() >= MAX_KEYS && !self.keys.contains_key(&(det, key.clone())) {
            self.refused_keys += 1;
            return;
        }
        // Most keys (one source, one name) only ever hold one pane: start
        // with room for one instead of the default growth to four.
        let kp = self.keys.entry((det, key)).or_insert_with(|| {
            Box::new(KeyPanes {
                panes: VecDeque::with_capacity(1),
                ..KeyPanes::default()
            })
        });
        // Panes arrive before their window closes, so `pane` is never among
        // the entered ones (those are <= the last closed window end).
        match kp.panes.binary_search_by(|(p, _)| p.cmp(&pane)) {
            Ok(i) => kp.panes[i].1.merge(&tally),
            Err(i) => kp.panes.insert(i, (pane, tally)),
        }
    }

    /// Keys with state (for tests and memory accounting).
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    pub fn active_alerts(&self) -> usize {
        self.active
    }

    fn min_pane(&self) -> Option<Pane> {
        self.keys
            .values()
            .filter_map(|v| v.panes.front().map(|(p, _)| *p))
            .min()
    }

    /// Evaluate every window ending at panes `..= last` not yet evaluated.
    pub fn close_through(&mut self, last: Pane, out: &mut Vec<Alert>) {
        let mut e = match self.next_end {
            Some(n) => n,
            None => match self.min_pane() {
                Some(p) => p,
                None => return,
            },
        };
        while e <= last {
            if self.active == 0 {
                // Nothing pending: jump over windows that hold no data.
                match self.min_pane() {
                    None => {
                        e = last + 1;
                        break;
                    }
                    Some(p) if p > e => {
                        e = p;
                        if e > last {
                            break;
                        }
                    }
                    Some(_) => {}
                }
            }
            self.close_one(e, out);
            e += 1;
        }
        self.next_end = Some(self.next_end.map_or(e, |n| n.max(e)));
    }

    fn close_one(&mut self, e: Pane, out: &mut Vec<Alert>) {
        let first = self.spec.first_pane(e);
        let (start_us, end_us) = self.spec.bounds_us(e);
        let window_secs = self.spec.size_secs_f64();
        let policy = self.policy;
        let mut active = self.active;
        for ((det, key), kp) in self.keys.iter_mut() {
            let mut changed = false;
            while kp.panes.front().is_some_and(|(p, _)| *p < first) {
                if let Some((_, t)) = kp.panes.pop_front()
                    && kp.entered > 0
                {
                    kp.sum.sub_counts(&t);
                    kp.entered -= 1;
                    changed = true;
                }
            }
            // Enter the panes up to `e` (complete now: the frontier passed them).
            while let Some((p, t)) = kp.panes.get(kp.entered) {
                if *p > e {
                    break;
                }
                kp.sum.add_counts(t);
                kp.entered += 1;
                changed = true;
            }
            let has_data = kp.panes.front().is_some_and(|(p, _)| *p <= e);
            // A key whose window did not change and has no open alert gets
            // the same verdict as last time (none): skip it.
            if kp.alert.is_none() && (!changed || !has_data) {
                continue;
            }
            let d = &self.detectors[*det as usize];
            let mut finding = None;
            let mut measured = 0.0;
            if has_data {
                // Counters first; the full view (samples, note, sketch) only
                // when the detector asks for it or there is evidence to write.
                let merge_full = |kp: &KeyPanes| {
                    let mut t = Tally::default();
                    for (_, p) in kp.panes.iter().take_while(|(p, _)| *p <= e) {
                        t.merge(p);
                    }
                    t
                };
                let full = d
                    .needs_full_view(&kp.sum, window_secs)
                    .then(|| merge_full(kp));
                let view = WindowView {
                    tally: full.as_ref().unwrap_or(&kp.sum),
                    window_secs,
                    baseline: Some(&kp.baseline),
                };
                finding = d.evaluate(key, &view);
                measured = d.measure(&view);
                if finding.is_some() && full.is_none() {
                    let t = merge_full(kp);
                    finding = d.evaluate(
                        key,
                        &WindowView {
                            tally: &t,
                            window_secs,
                            baseline: Some(&kp.baseline),
                        },
                    );
                }
                if finding.is_none() {
                    kp.baseline.learn(measured);
                }
            }
            let was_open = kp.alert.is_some();
            let raised_at = kp.alert.as_ref().map(|a| a.raised_at_us);
            let peak = kp.alert.as_ref().map(|a| a.peak);
            if let Some(t) =
                AlertLifecycle::step(&mut kp.alert, &policy, finding.as_ref(), measured, end_us)
            {
                let evidence = match &finding {
                    Some(f) => serde_json::Value::Object(f.evidence.clone()),
                    None => resolved_evidence(raised_at, peak, policy.hold_us),
                };
                out.push(Alert {
                    kind: d.kind(),
                    severity: t.severity,
                    state: t.state,
                    key: key.clone(),
                    event_time_us: end_us,
                    window_start_us: start_us,
                    observed: t.observed,
                    threshold: t.threshold,
                    unit: t.unit.into(),
                    evidence: evidence.to_string().into(),
                });
            }
            match (was_open, kp.alert.is_some()) {
                (false, true) => active += 1,
                (true, false) => active -= 1,
                _ => {}
            }
        }
        self.active = active;
        self.keys
            .retain(|_, kp| !kp.panes.is_empty() || kp.alert.is_some());
    }
}

fn resolved_evidence(raised_at: Option<i64>, peak: Option<f64>, hold_us: i64) -> serde_json::Value {
    serde_json::json!({
        "raised_at": raised_at.map(crate::time::rfc3339),
        "peak_observed": peak,
        "hold_secs": hold_us as f64 / crate::time::MICROS as f64,
    })
}
