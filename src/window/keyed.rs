//! `KeyedWindows`: the reduce side. Holds, per (detector, key), the partial
//! tallies of the panes still inside a window, and the alert lifecycle of
//! each key. `close_through(e)` evaluates every window ending at or before
//! pane `e` in order and returns the alert states reached. Pure: the
//! dataflow calls it when the frontier passes `e`; tests call it directly.

use std::collections::VecDeque;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::sync::Arc;

use super::{Pane, WindowSpec};
use crate::alert::{Alert, AlertLifecycle, State};
use crate::config::LifecyclePolicy;
use crate::detect::{Baseline, Detector, Key, Tally, WindowView};

/// One key's panes still inside a window, and the counters of the panes
/// already entered into the current window (added when the window ending at
/// their pane closes, removed when they slide out), so closing a window costs
/// O(1) per key instead of a sum over its panes.
#[derive(Default)]
struct KeyPanes {
    panes: VecDeque<(Pane, Tally)>,
    sum: Tally,
    /// How many panes at the front are already added to `sum`.
    entered: usize,
    /// The key's learned normal (see `detect::Baseline`).
    baseline: Baseline,
}

pub struct KeyedWindows {
    spec: WindowSpec,
    policy: LifecyclePolicy,
    detectors: Vec<Arc<dyn Detector>>,
    /// Panes of each key, ascending, merged, with running counters.
    keys: HashMap<(u16, Key), KeyPanes>,
    alerts: HashMap<(u16, Key), AlertLifecycle>,
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
pub const MAX_KEYS: usize = 1 << 20;

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
            alerts: HashMap::new(),
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
        let kp = self.keys.entry((det, key)).or_default();
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
        self.alerts.len()
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
            if self.alerts.is_empty() {
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
        let empty = Tally::default();
        let mut seen: HashSet<(u16, Key)> = HashSet::new();
        for ((det, key), kp) in self.keys.iter_mut() {
            while kp.panes.front().is_some_and(|(p, _)| *p < first) {
                if let Some((_, t)) = kp.panes.pop_front()
                    && kp.entered > 0
                {
                    kp.sum.sub_counts(&t);
                    kp.entered -= 1;
                }
            }
            // Enter the panes up to `e` (complete now: the frontier passed them).
            while let Some((p, t)) = kp.panes.get(kp.entered) {
                if *p > e {
                    break;
                }
                kp.sum.add_counts(t);
                kp.entered += 1;
            }
            if kp.panes.front().is_none_or(|(p, _)| *p > e) {
                continue;
            }
            let d = &self.detectors[*det as usize];
            // Counters first; the full view (samples, note, sketch) only when
            // the detector asks for it or when there is evidence to write.
            let mut full: Option<Tally> = None;
            let merge_full = |kp: &KeyPanes| {
                let mut t = Tally::default();
                for (_, p) in kp.panes.iter().take_while(|(p, _)| *p <= e) {
                    t.merge(p);
                }
                t
            };
            if d.needs_full_view(&kp.sum, window_secs) {
                full = Some(merge_full(kp));
            }
            let view = WindowView {
                tally: full.as_ref().unwrap_or(&kp.sum),
                window_secs,
                baseline: Some(&kp.baseline),
            };
            let mut finding = d.evaluate(key, &view);
            let measured = d.measure(&view);
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
            let slot_key = (*det, key.clone());
            let mut slot = self.alerts.remove(&slot_key);
            let raised_at = slot.as_ref().map(|a| a.raised_at_us);
            let peak = slot.as_ref().map(|a| a.peak);
            if let Some(t) =
                AlertLifecycle::step(&mut slot, &self.policy, finding.as_ref(), measured, end_us)
            {
                let evidence = match &finding {
                    Some(f) => serde_json::Value::Object(f.evidence.clone()),
                    None => resolved_evidence(raised_at, peak, self.policy.hold_us),
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
            if let Some(a) = slot {
                self.alerts.insert(slot_key.clone(), a);
            }
            if !self.alerts.is_empty() {
                seen.insert(slot_key);
            }
        }
        // Active alerts whose key had no data in this window.
        let silent: Vec<(u16, Key)> = self
            .alerts
            .keys()
            .filter(|k| !seen.contains(k))
            .cloned()
            .collect();
        for slot_key in silent {
            let d = self.detectors[slot_key.0 as usize].clone();
            let view = WindowView {
                tally: &empty,
                window_secs,
                baseline: None,
            };
            let measured = d.measure(&view);
            let mut slot = self.alerts.remove(&slot_key);
            let raised_at = slot.as_ref().map(|a| a.raised_at_us);
            let peak = slot.as_ref().map(|a| a.peak);
            if let Some(t) = AlertLifecycle::step(&mut slot, &self.policy, None, measured, end_us) {
                debug_assert_eq!(t.state, State::Resolved);
                out.push(Alert {
                    kind: d.kind(),
                    severity: t.severity,
                    state: t.state,
                    key: slot_key.1.clone(),
                    event_time_us: end_us,
                    window_start_us: start_us,
                    observed: t.observed,
                    threshold: t.threshold,
                    unit: t.unit.into(),
                    evidence: resolved_evidence(raised_at, peak, self.policy.hold_us)
                        .to_string()
                        .into(),
                });
            }
            if let Some(a) = slot {
                self.alerts.insert(slot_key, a);
            }
        }
        self.keys.retain(|_, kp| !kp.panes.is_empty());
    }
}

fn resolved_evidence(raised_at: Option<i64>, peak: Option<f64>, hold_us: i64) -> serde_json::Value {
    serde_json::json!({
        "raised_at": raised_at.map(crate::time::rfc3339),
        "peak_observed": peak,
        "hold_secs": hold_us as f64 / crate::time::MICROS as f64,
    })
}
