//! `KeyedWindows`: the reduce side. Holds, per (detector, key), the partial
//! tallies of the panes still inside a window, and the alert lifecycle of
//! each key. `close_through(e)` evaluates every window ending at or before
//! pane `e` in order and returns the alert states reached. Pure: the
//! dataflow calls it when the frontier passes `e`; tests call it directly.
//!
//! The cost of closing a window is proportional to the keys whose window
//! changed (a pane entered or left) plus the keys with an open alert, never
//! to every key held: each pane keeps the list of keys with data in it
//! (`touched`), and the window ending at `e` visits the keys of pane `e`
//! (entering), of pane `e - panes` (leaving) and the open alerts. A key
//! whose window did not change and has no open alert would get the same
//! verdict as last time (none), so skipping it changes nothing.

use std::collections::BTreeMap;

use foldhash::{HashMap, HashMapExt};
use std::sync::Arc;

use super::cold::ColdTally;
use super::{Pane, WindowSpec};
use crate::alert::{Alert, AlertLifecycle};
use crate::config::LifecyclePolicy;
use crate::detect::{Baseline, Detector, Key, Tally, WindowView};

/// Index of a key's state in `KeyedWindows::slots`.
type SlotId = u32;

/// One key's panes still inside a window, the counters of the panes already
/// entered into the current window (added when the window ending at their
/// pane closes, removed when they slide out: closing a window costs O(1) per
/// key instead of a sum over its panes), its learned baseline and its alert.
struct Slot {
    det: u16,
    key: Key,
    /// Sorted by pane; a handful at most (window plus lateness).
    panes: Vec<(Pane, Tally)>,
    sum: Tally,
    /// How many panes at the front are already added to `sum`.
    entered: usize,
    /// The key's learned normal (see `detect::Baseline`).
    baseline: Baseline,
    /// The key's open alert episode, if any.
    alert: Option<AlertLifecycle>,
    /// The last window end this key was visited for (each key once per window).
    visited: Option<Pane>,
}

pub struct KeyedWindows {
    spec: WindowSpec,
    policy: LifecyclePolicy,
    detectors: Vec<Arc<dyn Detector>>,
    /// Keys with panes in a window or an open alert -> their slot.
    index: HashMap<(u16, Key), SlotId>,
    slots: Vec<Option<Slot>>,
    /// Free slot numbers (reused before `slots` grows).
    free: Vec<SlotId>,
    /// Per pane still inside some window: the slots with data in it.
    touched: BTreeMap<Pane, Vec<SlotId>>,
    /// Slots with an open alert.
    open: Vec<SlotId>,
    /// Pane tallies of keys without a slot, until their pane leaves every
    /// window. A key moves to a slot, with all its panes, when one of its
    /// complete panes passes its detector's `pane_may_fire`; the others are
    /// never evaluated and their panes are dropped a table at a time.
    cold: BTreeMap<Pane, HashMap<(u16, Key), ColdTally>>,
    /// Entries in `cold`.
    cold_entries: usize,
    /// Emptied cold tables, reused with their capacity.
    spare: Vec<HashMap<(u16, Key), ColdTally>>,
    /// Scratch list of the keys promoted at one window.
    promote: Vec<(u16, Key)>,
    /// Windows ending before this pane are closed.
    next_end: Option<Pane>,
    /// Scratch list of the slots to visit for one window.
    visit: Vec<SlotId>,
    /// Tallies that arrived for an already closed window (should not happen
    /// with frontier-driven closing; counted, never silently merged).
    pub late_tallies: u64,
    /// Tallies refused because `MAX_KEYS` keys were already held.
    pub refused_keys: u64,
}

/// Most pane tallies of keys without a slot one reduce worker holds (about
/// 100 MB); past it new ones are refused and counted in `refused_keys`,
/// unless the tally alone may fire. A spoofed flood of 40 000 new sources a
/// second fills it within a window; below that every tally is kept and the
/// output is exact.
pub const MAX_COLD_ENTRIES: usize = 1 << 18;

/// Emptied cold tables kept for reuse.
const SPARE_TABLES: usize = 4;

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
            index: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            touched: BTreeMap::new(),
            open: Vec::new(),
            cold: BTreeMap::new(),
            cold_entries: 0,
            promote: Vec::new(),
            spare: Vec::new(),
            next_end: None,
            visit: Vec::new(),
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
        let k = (det, key);
        if let Some(&id) = self.index.get(&k) {
            self.add_to_slot(id, pane, tally);
            return;
        }
        let spare = &mut self.spare;
        let slide_secs = self.spec.slide_secs_f64();
        let (panes, full) = (self.spec.panes, self.cold_entries >= MAX_COLD_ENTRIES);
        let detector = &self.detectors[det as usize];
        let table = self
            .cold
            .entry(pane)
            .or_insert_with(|| spare.pop().unwrap_or_default());
        match table.entry(k) {
            std::collections::hash_map::Entry::Occupied(o) => {
                // Another part of the same pane (another worker, an early
                // flush): merge, and ask again.
                let (k, c) = o.remove_entry();
                let mut t = c.unpack();
                t.merge_owned(tally);
                let may_fire = detector.pane_may_fire(&t, slide_secs, panes);
                table.insert(k, ColdTally::pack(t, may_fire));
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                let may_fire = detector.pane_may_fire(&tally, slide_secs, panes);
                // Full: still take a tally that may fire on its own (a new
                // attacker amid a spoofed flood is not refused with the flood).
                if full && !may_fire {
                    self.refused_keys += 1;
                    return;
                }
                self.cold_entries += 1;
                v.insert(ColdTally::pack(tally, may_fire));
            }
        }
    }

    fn add_to_slot(&mut self, id: SlotId, pane: Pane, tally: Tally) {
        let Some(slot) = self.slots[id as usize].as_mut() else {
            return;
        };
        // Panes arrive before their window closes, so `pane` is never among
        // the entered ones (those are <= the last closed window end).
        match slot.panes.binary_search_by(|(p, _)| p.cmp(&pane)) {
            Ok(i) => slot.panes[i].1.merge_owned(tally),
            Err(i) => {
                slot.panes.insert(i, (pane, tally));
                self.touched.entry(pane).or_default().push(id);
            }
        }
    }

    /// Give key `k` a slot holding all its cold panes from `from` on.
    fn promote(&mut self, k: (u16, Key), from: Pane) {
        if self.index.len() >= MAX_KEYS {
            self.refused_keys += 1;
            return;
        }
        let mut slot = Slot {
            det: k.0,
            key: k.1.clone(),
            panes: Vec::new(),
            sum: Tally::default(),
            entered: 0,
            baseline: Baseline::default(),
            alert: None,
            visited: None,
        };
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as SlotId
            }
        };
        for (&p, table) in self.cold.range_mut(from..) {
            if let Some(t) = table.remove(&k) {
                self.cold_entries -= 1;
                slot.panes.push((p, t.unpack()));
                self.touched.entry(p).or_default().push(id);
            }
        }
        self.slots[id as usize] = Some(slot);
        self.index.insert(k, id);
    }

    /// Keys with state (for tests and memory accounting).
    pub fn key_count(&self) -> usize {
        self.index.len()
    }

    pub fn active_alerts(&self) -> usize {
        self.open.len()
    }

    /// The oldest pane any key still holds.
    fn min_pane(&self) -> Option<Pane> {
        let hot = self.touched.keys().next().copied();
        let cold = self.cold.keys().next().copied();
        match (hot, cold) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
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
            if self.open.is_empty() {
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
        // Pane `leaving` slides out of the window ending at `e`.
        let leaving = e.checked_sub(self.spec.panes);
        // Keys without a slot whose pane `e` (complete now) may fire get one.
        let mut promote = std::mem::take(&mut self.promote);
        if let Some(table) = self.cold.get(&e) {
            for ((det, key), t) in table {
                if t.may_fire {
                    promote.push((*det, key.clone()));
                }
            }
        }
        let first = self.spec.first_pane(e);
        for k in promote.drain(..) {
            self.promote(k, first);
        }
        self.promote = promote;
        if let Some(l) = leaving
            && let Some(mut t) = self.cold.remove(&l)
        {
            self.cold_entries -= t.len();
            t.clear();
            if self.spare.len() < SPARE_TABLES {
                self.spare.push(t);
            }
        }
        let mut visit = std::mem::take(&mut self.visit);
        visit.clear();
        visit.extend_from_slice(&self.open);
        if let Some(v) = self.touched.get(&e) {
            visit.extend_from_slice(v);
        }
        if let Some(l) = leaving
            && let Some(v) = self.touched.remove(&l)
        {
            visit.extend_from_slice(&v);
        }
        for &id in &visit {
            self.visit_slot(id, e, out);
        }
        self.visit = visit;
    }

    /// Bring one key's window to the one ending at `e` and evaluate it.
    fn visit_slot(&mut self, id: SlotId, e: Pane, out: &mut Vec<Alert>) {
        let Some(kp) = self.slots[id as usize].as_mut() else {
            return;
        };
        if kp.visited == Some(e) {
            return;
        }
        kp.visited = Some(e);
        let first = self.spec.first_pane(e);
        let (start_us, end_us) = self.spec.bounds_us(e);
        let window_secs = self.spec.size_secs_f64();
        let policy = self.policy;
        let mut changed = false;
        let gone = kp.panes.iter().take_while(|(p, _)| *p < first).count();
        for (_, t) in kp.panes.drain(..gone) {
            if kp.entered > 0 {
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
        let has_data = kp.panes.first().is_some_and(|(p, _)| *p <= e);
        // A key whose window did not change and has no open alert gets the
        // same verdict as last time (none): skip it.
        if kp.alert.is_some() || (changed && has_data) {
            let d = &self.detectors[kp.det as usize];
            let mut finding = None;
            let mut measured = 0.0;
            if has_data {
                // Counters first; the full view (samples, note, sketch) only
                // when the detector asks for it or there is evidence to write.
                let merge_full = |kp: &Slot| {
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
                finding = d.evaluate(&kp.key, &view);
                measured = d.measure(&view);
                if finding.is_some() && full.is_none() {
                    let t = merge_full(kp);
                    finding = d.evaluate(
                        &kp.key,
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
                    key: kp.key.clone(),
                    event_time_us: end_us,
                    window_start_us: start_us,
                    observed: t.observed,
                    threshold: t.threshold,
                    unit: t.unit.into(),
                    evidence: evidence.to_string().into(),
                });
            }
            match (was_open, kp.alert.is_some()) {
                (false, true) => self.open.push(id),
                (true, false) => {
                    if let Some(i) = self.open.iter().position(|&o| o == id) {
                        self.open.swap_remove(i);
                    }
                }
                _ => {}
            }
        }
        if kp.panes.is_empty()
            && kp.alert.is_none()
            && let Some(s) = self.slots[id as usize].take()
        {
            self.index.remove(&(s.det, s.key));
            self.free.push(id);
        }
    }
}

/// A reload (`dataflow::reload`): kept apart from the rest of the reduce side.
impl KeyedWindows {
    /// From the next window to close on, evaluate with `detectors` (the
    /// same kinds in the same order) and `policy`. A key's cold panes are
    /// asked again whether they may fire: a key whose pane, already passed
    /// as a window end, may fire under the new settings gets a slot now
    /// (and is visited at the next window), so a lowered threshold does not
    /// miss the keys that were not worth a slot before.
    pub fn set_plan(&mut self, policy: LifecyclePolicy, detectors: Vec<Arc<dyn Detector>>) {
        self.policy = policy;
        self.detectors = detectors;
        let slide_secs = self.spec.slide_secs_f64();
        let panes = self.spec.panes;
        let mut wake = Vec::new();
        for (&p, table) in self.cold.iter_mut() {
            let old = std::mem::take(table);
            for (k, c) in old {
                let t = c.unpack();
                let may_fire = self.detectors[k.0 as usize].pane_may_fire(&t, slide_secs, panes);
                if may_fire && self.next_end.is_some_and(|n| p < n) {
                    wake.push(k.clone());
                }
                table.insert(k, ColdTally::pack(t, may_fire));
            }
        }
        let Some(next) = self.next_end else { return };
        let first = self.spec.first_pane(next);
        wake.sort_unstable();
        wake.dedup();
        for k in wake {
            if self.index.contains_key(&k) {
                continue;
            }
            self.promote(k.clone(), first);
            if let Some(&id) = self.index.get(&k) {
                self.touched.entry(next).or_default().push(id);
            }
        }
    }
}

fn resolved_evidence(raised_at: Option<i64>, peak: Option<f64>, hold_us: i64) -> serde_json::Value {
    serde_json::json!({
        "raised_at": raised_at.map(crate::time::rfc3339),
        "peak_observed": peak,
        "hold_secs": hold_us as f64 / crate::time::MICROS as f64,
    })
}
