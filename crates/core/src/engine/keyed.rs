//! `KeyedWindows`: the reduce side. Holds, per (detector, key), the partial
//! tallies of the panes still inside a window, and the alert lifecycle of
//! each key. `close_through(e)` evaluates every window ending at or before
//! pane `e` in order and returns the alert states reached. Pure: the
//! dataflow calls it when the frontier passes `e`; tests call it directly.
//!
//! Long windows: a detector may ask for its own window length
//! (`Detector::window_secs`, e.g. `dga` over minutes). Its keys go through
//! the cold store like any other (kept for the pipeline's window only, so
//! a key that never may fire costs what it costs any detector); a key
//! promoted to a slot (at most `MAX_LONG_KEYS` per process, refusals
//! counted) takes its cold panes of the pipeline's window and keeps its
//! panes for the long window from then on: what came before that is not
//! held. Its complete panes are folded into buckets (at most
//! `LONG_BUCKETS` per window) and packed like the cold store's tallies
//! (`ColdTally`), so a key holds a few dozen small tallies, not one full
//! tally per slide. Only complete panes
//! are folded, so the result is still a function of the input alone. A
//! bucket leaves the window when its newest pane does (the window is then
//! up to one bucket longer than asked).
//!
//! The cost of closing a window is proportional to the keys whose window
//! changed (a pane entered or left) plus the keys with an open alert, never
//! to every key held: each pane keeps the list of keys with data in it
//! (`touched`), and the window ending at `e` visits the keys of pane `e`
//! (entering), of pane `e - panes` (leaving) and the open alerts. A key
//! whose window did not change and has no open alert would get the same
//! verdict as last time (none), so skipping it changes nothing.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use std::sync::Arc;

use super::cold::ColdTally;
use super::keymap::{Entry, KeyHasher, KeyMap};
use crate::alert::LifecyclePolicy;
use crate::alert::{Alert, AlertLifecycle, Evidence};
use crate::detect::{Baseline, Detector, Key, Tally, WindowView};
use crate::window::{Pane, WindowPlan};

/// Index of a key's state in `KeyedWindows::slots`.
type SlotId = u32;

/// One key's panes still inside a window, the counters of the panes already
/// entered into the current window (added when the window ending at their
/// pane closes, removed when they slide out: closing a window costs O(1) per
/// key instead of a sum over its panes), its learned baseline and its alert.
struct Slot {
    det: u16,
    key: Key,
    /// `KeyHasher::hash` of `(det, key)`.
    hash: u64,
    /// Sorted by pane; a handful at most (window plus lateness). For a
    /// long window only the panes not yet entered (see `buckets`).
    panes: Vec<(Pane, Tally)>,
    /// A long window's entered panes, folded into buckets and packed (each
    /// under its newest pane), oldest first: a key of `tunneling` or `dga`
    /// holds up to `LONG_BUCKETS` of them, mostly a counter or two and a
    /// sample name, where a full `Tally` is 240 bytes.
    buckets: Vec<(Pane, ColdTally)>,
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

impl Slot {
    /// Slide the key's window to the one `[first, e]`: panes before `first`
    /// leave `sum`, complete panes up to `e` enter it (the frontier passed
    /// them). True when the window's counters changed.
    #[inline]
    fn slide_to(&mut self, first: Pane, e: Pane) -> bool {
        let mut changed = false;
        let gone = self.panes.iter().take_while(|(p, _)| *p < first).count();
        for (_, t) in self.panes.drain(..gone) {
            if self.entered > 0 {
                self.sum.sub_counts(&t);
                self.entered -= 1;
                changed = true;
            }
        }
        while let Some((p, t)) = self.panes.get(self.entered) {
            if *p > e {
                break;
            }
            self.sum.add_counts(t);
            self.entered += 1;
            changed = true;
        }
        changed
    }

    /// `slide_to` for a long window: a pane entering folds into the newest
    /// bucket when it is of the same bucket (`bucket` panes each), else
    /// starts one; a bucket leaves when its newest pane does.
    fn slide_long(&mut self, first: Pane, e: Pane, bucket: u64) -> bool {
        let mut changed = false;
        let gone = self.buckets.iter().take_while(|(p, _)| *p < first).count();
        for (_, c) in self.buckets.drain(..gone) {
            self.sum.sub_counts(&c.counts());
            changed = true;
        }
        // Never entered and already out of the window (as in `slide_to`,
        // none arrive so late): dropped.
        let stale = self.panes.iter().take_while(|(p, _)| *p < first).count();
        self.panes.drain(..stale);
        let n = self.panes.iter().take_while(|(p, _)| *p <= e).count();
        for (p, mut t) in self.panes.drain(..n) {
            self.sum.add_counts(&t);
            changed = true;
            match self.buckets.last_mut() {
                Some((q, c)) if *q / bucket == p / bucket => {
                    t.merge_owned(std::mem::take(c).unpack());
                    *q = p;
                    *c = ColdTally::pack(t, false);
                }
                _ => self.buckets.push((p, ColdTally::pack(t, false))),
            }
        }
        changed
    }
}

/// Make room for one more pane in a slot's `panes`. A `Vec` doubles, and
/// a slot holds a full `Tally` (240 bytes) per pane: on the bench capture
/// the slots of the long windows (`dga`, `tunneling`, thousands of keys)
/// had reserved 1.6 to 1.9 times the panes they held. Growing by half,
/// never past `held` (the pipeline window's panes plus the panes not yet
/// entered: a long window keeps its entered panes in `buckets`), wastes a
/// fifth at most.
fn reserve_pane(panes: &mut Vec<(Pane, Tally)>, held: usize) {
    let len = panes.len();
    if len < panes.capacity() {
        return;
    }
    let want = (len + len / 2).max(2);
    let want = if want > held && len < held {
        held
    } else {
        want
    };
    panes.reserve_exact(want - len);
}

/// Most buckets a long window is made of.
pub const LONG_BUCKETS: u64 = 30;

/// Most keys of long-window detectors one process holds, split among its
/// reduce workers (`Bounds`; each key has a slot from its first tally that
/// may fire); past it new ones are refused and counted. 16 384 slots of up
/// to 30 buckets: under a spoofed flood with water torture beside it
/// (every source a `tunneling` or `dga` candidate) 65 536 cost 60 MB more
/// on the bench capture.
pub const MAX_LONG_KEYS: usize = 1 << 14;

/// The reduce side's bounds for one worker: the process's (`MAX_COLD_ENTRIES`,
/// `MAX_KEYS`, `MAX_LONG_KEYS`) split evenly among its workers. Keys are
/// spread over the workers by hash, so a process holds about the same
/// state, and refuses about as much, whatever `--workers` is: with a bound
/// per worker, 2 workers held twice the state (peak RSS 445 to 476 MB
/// against 290 MB on the bench capture).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    pub cold_entries: usize,
    pub keys: usize,
    pub long_keys: usize,
}

impl Bounds {
    pub fn per_worker(workers: usize) -> Bounds {
        let n = workers.max(1);
        Bounds {
            cold_entries: MAX_COLD_ENTRIES.div_ceil(n),
            keys: MAX_KEYS.div_ceil(n),
            long_keys: MAX_LONG_KEYS.div_ceil(n),
        }
    }
}

/// A detector's window: its length in panes, the panes per bucket (1 for
/// ordinary windows) and whether it is long (own length, no cold store).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DetWindow {
    panes: u64,
    bucket: u64,
    long: bool,
}

pub struct KeyedWindows {
    spec: WindowPlan,
    policy: LifecyclePolicy,
    detectors: Vec<Arc<dyn Detector>>,
    /// Per detector: its window.
    windows: Vec<DetWindow>,
    /// Per distinct long window length (panes): the slots of that length
    /// with data in each pane (as `touched` for ordinary windows).
    touched_long: Vec<(u64, BTreeMap<Pane, Vec<SlotId>>)>,
    /// Slots of long-window detectors held.
    long_keys: usize,
    /// This worker's share of the process's bounds.
    bounds: Bounds,
    /// Keys with panes in a window or an open alert -> their slot.
    index: KeyMap<SlotId>,
    /// Hashes `(detector, key)` once per record for every table below.
    hasher: KeyHasher,
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
    cold: BTreeMap<Pane, KeyMap<ColdTally>>,
    /// Entries in `cold`.
    cold_entries: usize,
    /// Scratch list of the keys promoted at one window (hash, detector, key).
    promote: Vec<(u64, u16, Key)>,
    /// Windows ending before this pane are closed.
    next_end: Option<Pane>,
    /// Scratch list of the slots to visit for one window.
    visit: Vec<SlotId>,
    /// Tallies that arrived for an already closed window (should not happen
    /// with frontier-driven closing; counted, never silently merged).
    pub late_tallies: u64,
    /// Tallies refused because the bounds (`Bounds`) were reached.
    pub refused_keys: u64,
}

/// Most pane tallies of keys without a slot one process holds, split among
/// its reduce workers (`Bounds`; about 100 MB); past it new ones are
/// refused and counted in `refused_keys`, unless the tally alone may fire.
/// A spoofed flood of 40 000 new sources a second fills it within a window;
/// so do about 20 000 busy clients (the bench capture's benign population
/// at 8x refuses a few hundred tallies a minute); below that every tally is
/// kept and the output is exact. Half of it refused 496 000 tallies in that
/// capture's first minute instead of 677.
pub const MAX_COLD_ENTRIES: usize = 1 << 18;

/// Most (detector, key) entries one process holds, split among its reduce
/// workers (`Bounds`). Past it, tallies
/// for new keys are refused and counted (`refused_keys`): a flood of
/// millions of spoofed sources cannot grow the state without bound, and the
/// keys already tracked (the ones with traffic) keep being evaluated.
pub const MAX_KEYS: usize = 1 << 18;

impl KeyedWindows {
    pub fn new(
        spec: WindowPlan,
        policy: LifecyclePolicy,
        detectors: Vec<Arc<dyn Detector>>,
        bounds: Bounds,
    ) -> Self {
        let windows: Vec<DetWindow> = detectors
            .iter()
            .map(|d| match d.window_secs() {
                Some(secs) => {
                    let slide = spec.slide_secs_f64();
                    let panes = ((secs as f64 / slide).ceil() as u64).max(spec.panes);
                    DetWindow {
                        panes,
                        bucket: panes.div_ceil(LONG_BUCKETS).max(1),
                        long: true,
                    }
                }
                None => DetWindow {
                    panes: spec.panes,
                    bucket: 1,
                    long: false,
                },
            })
            .collect();
        let mut touched_long: Vec<(u64, BTreeMap<Pane, Vec<SlotId>>)> = Vec::new();
        for w in windows.iter().filter(|w| w.long) {
            if !touched_long.iter().any(|(p, _)| *p == w.panes) {
                touched_long.push((w.panes, BTreeMap::new()));
            }
        }
        KeyedWindows {
            spec,
            policy,
            detectors,
            windows,
            touched_long,
            long_keys: 0,
            bounds,
            index: KeyMap::default(),
            hasher: KeyHasher::default(),
            slots: Vec::new(),
            free: Vec::new(),
            touched: BTreeMap::new(),
            open: Vec::new(),
            cold: BTreeMap::new(),
            cold_entries: 0,
            promote: Vec::new(),
            next_end: None,
            visit: Vec::new(),
            late_tallies: 0,
            refused_keys: 0,
        }
    }

    #[cfg(test)]
    pub fn add(&mut self, pane: Pane, det: u16, mut key: Key, mut tally: Tally) {
        self.add_from(pane, det, &mut key, &mut tally)
    }

    /// `add`, taking the key and tally out of where they arrived (what is
    /// kept is moved or packed from there; what is left is to be dropped).
    pub fn add_from(&mut self, pane: Pane, det: u16, key: &mut Key, tally: &mut Tally) {
        if let Some(next) = self.next_end
            && pane < next
        {
            self.late_tallies += 1;
            return;
        }
        let h = self.hasher.hash(det, key);
        if let Some(&id) = self.index.get(h, det, key) {
            self.add_to_slot(id, pane, std::mem::take(tally));
            return;
        }
        let slide_secs = self.spec.slide_secs_f64();
        let (panes, full) = (
            self.spec.panes,
            self.cold_entries >= self.bounds.cold_entries,
        );
        let detector = &self.detectors[det as usize];
        // A new table per pane, not an emptied one reused with its capacity:
        // a flood's pane tables are large, and up to four kept for reuse
        // held 25 MB more at the peak of the bench capture's hostile 100 s
        // (232 to 237 MB against 260 MB), for no measurable speed.
        let table = self.cold.entry(pane).or_default();
        match table.entry(h, det, key) {
            Entry::Occupied(o) => {
                // Another part of the same pane (another worker, an early
                // flush): merge in place (unpacked until the pane is
                // complete, see `cold`), and ask again.
                let c = &mut o.into_mut().3;
                c.may_fire = c.merge_owned(std::mem::take(tally), |t| {
                    detector.pane_may_fire(t, slide_secs, panes)
                });
            }
            Entry::Vacant(v) => {
                let may_fire = detector.pane_may_fire(tally, slide_secs, panes);
                // Full: still take a tally that may fire on its own (a new
                // attacker amid a spoofed flood is not refused with the flood).
                if full && !may_fire {
                    self.refused_keys += 1;
                    return;
                }
                self.cold_entries += 1;
                let key = std::mem::replace(key, Key::Client(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
                v.insert((h, det, key, ColdTally::pack_from(tally, may_fire)));
            }
        }
    }

    fn add_to_slot(&mut self, id: SlotId, pane: Pane, mut tally: Tally) {
        let Some(slot) = self.slots[id as usize].as_mut() else {
            return;
        };
        // Panes arrive before their window closes, so `pane` is never among
        // the entered ones (those are <= the last closed window end).
        match slot.panes.binary_search_by(|(p, _)| p.cmp(&pane)) {
            Ok(i) => slot.panes[i].1.merge_owned(tally),
            Err(i) => {
                tally.settle();
                reserve_pane(&mut slot.panes, self.spec.panes as usize + 2);
                slot.panes.insert(i, (pane, tally));
                let w = self.windows[slot.det as usize];
                self.touched_map(w).entry(pane).or_default().push(id);
            }
        }
    }

    /// The `touched` map of slots with window `w`.
    fn touched_map(&mut self, w: DetWindow) -> &mut BTreeMap<Pane, Vec<SlotId>> {
        if w.long
            && let Some(i) = self.touched_long.iter().position(|(p, _)| *p == w.panes)
        {
            return &mut self.touched_long[i].1;
        }
        &mut self.touched
    }

    /// Give key `k` a slot holding all its cold panes from `from` on.
    fn promote(&mut self, (h, det, key): (u64, u16, Key), from: Pane) {
        let long = self.windows[det as usize].long;
        if self.index.len() >= self.bounds.keys || (long && self.long_keys >= self.bounds.long_keys)
        {
            self.refused_keys += 1;
            return;
        }
        if long {
            self.long_keys += 1;
        }
        let mut slot = Slot {
            det,
            key: key.clone(),
            hash: h,
            panes: Vec::new(),
            buckets: Vec::new(),
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
            if let Some(t) = table.remove(h, det, &key) {
                self.cold_entries -= 1;
                reserve_pane(&mut slot.panes, self.spec.panes as usize + 2);
                slot.panes.push((p, t.unpack()));
            }
        }
        let w = self.windows[det as usize];
        let touched = self.touched_map(w);
        for (p, _) in &slot.panes {
            touched.entry(*p).or_default().push(id);
        }
        self.slots[id as usize] = Some(slot);
        self.index.insert_new(h, det, key, id);
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
        let long = self
            .touched_long
            .iter()
            .filter_map(|(_, t)| t.keys().next().copied())
            .min();
        [hot, cold, long].into_iter().flatten().min()
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
        // Keys without a slot whose pane `e` (complete now) may fire get
        // one; pane `e` gets no more parts, so what stays cold of it is
        // packed again (`ColdTally::settle`), in the same pass.
        let mut promote = std::mem::take(&mut self.promote);
        if let Some(table) = self.cold.get_mut(&e) {
            for (h, det, key, t) in table.iter_mut() {
                t.settle();
                if t.may_fire {
                    promote.push((h, det, key.clone()));
                }
            }
        }
        let first = self.spec.first_pane(e);
        for k in promote.drain(..) {
            self.promote(k, first);
        }
        self.promote = promote;
        if let Some(l) = leaving
            && let Some(t) = self.cold.remove(&l)
        {
            self.cold_entries -= t.len();
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
        for (panes, t) in &mut self.touched_long {
            if let Some(v) = t.get(&e) {
                visit.extend_from_slice(v);
            }
            if let Some(l) = e.checked_sub(*panes)
                && let Some(v) = t.remove(&l)
            {
                visit.extend_from_slice(&v);
            }
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
        let dw = self.windows[kp.det as usize];
        let first = e.saturating_sub(dw.panes - 1);
        let end_us = self.spec.end_us(e);
        let start_us = end_us - dw.panes as i64 * self.spec.slide_us;
        let window_secs = dw.panes as f64 * self.spec.slide_secs_f64();
        let slide_secs = self.spec.slide_secs_f64();
        let policy = self.policy;
        let changed = if dw.long {
            kp.slide_long(first, e, dw.bucket)
        } else {
            kp.slide_to(first, e)
        };
        let has_data = !kp.buckets.is_empty() || kp.panes.first().is_some_and(|(p, _)| *p <= e);
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
                    for (_, c) in &kp.buckets {
                        t.merge_owned(c.to_tally());
                    }
                    for (_, p) in kp.panes.iter().take_while(|(p, _)| *p <= e) {
                        t.merge(p);
                    }
                    t
                };
                let full = d
                    .needs_full_view(&kp.sum, window_secs)
                    .then(|| merge_full(kp));
                let panes = &kp.panes[..kp.entered];
                let view = WindowView {
                    tally: full.as_ref().unwrap_or(&kp.sum),
                    window_secs,
                    baseline: Some(&kp.baseline),
                    panes,
                    end: e,
                    slide_secs,
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
                            panes,
                            end: e,
                            slide_secs,
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
                let evidence = match finding {
                    Some(f) => f.evidence,
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
                    evidence,
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
            && kp.buckets.is_empty()
            && kp.alert.is_none()
            && let Some(s) = self.slots[id as usize].take()
        {
            if dw.long {
                self.long_keys -= 1;
            }
            self.index.remove(s.hash, s.det, &s.key);
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
            for (det, c) in table.values_mut() {
                let t = std::mem::take(c).unpack();
                let may_fire = self.detectors[det as usize].pane_may_fire(&t, slide_secs, panes);
                *c = ColdTally::pack(t, may_fire);
            }
            if self.next_end.is_some_and(|n| p < n) {
                wake.extend(
                    table
                        .iter()
                        .filter(|(.., c)| c.may_fire)
                        .map(|(h, det, key, _)| (h, det, key.clone())),
                );
            }
        }
        let Some(next) = self.next_end else { return };
        let first = self.spec.first_pane(next);
        wake.sort_unstable_by(|a, b| (a.1, &a.2).cmp(&(b.1, &b.2)));
        wake.dedup_by(|a, b| a.1 == b.1 && a.2 == b.2);
        for (h, det, key) in wake {
            if self.index.contains(h, det, &key) {
                continue;
            }
            self.promote((h, det, key.clone()), first);
            if let Some(&id) = self.index.get(h, det, &key) {
                self.touched.entry(next).or_default().push(id);
            }
        }
    }
}

fn resolved_evidence(raised_at: Option<i64>, peak: Option<f64>, hold_us: i64) -> Evidence {
    let mut e = Evidence::new();
    e.insert(
        "raised_at".into(),
        raised_at.map(crate::time::rfc3339).into(),
    );
    e.insert("peak_observed".into(), peak.into());
    e.insert(
        "hold_secs".into(),
        (hold_us as f64 / crate::time::MICROS as f64).into(),
    );
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The process's bounds are split among its workers, never to zero.
    #[test]
    fn bounds_are_the_process_split_among_its_workers() {
        assert_eq!(Bounds::per_worker(0), Bounds::per_worker(1));
        let one = Bounds::per_worker(1);
        assert_eq!(
            (one.cold_entries, one.keys, one.long_keys),
            (MAX_COLD_ENTRIES, MAX_KEYS, MAX_LONG_KEYS)
        );
        for n in [2, 3, 4, 7, 64] {
            let b = Bounds::per_worker(n);
            assert_eq!(b.cold_entries, MAX_COLD_ENTRIES.div_ceil(n));
            assert!(b.cold_entries * n >= MAX_COLD_ENTRIES);
            assert!(b.cold_entries * n < MAX_COLD_ENTRIES + n);
            assert_eq!(b.keys, MAX_KEYS.div_ceil(n));
            assert_eq!(b.long_keys, MAX_LONG_KEYS.div_ceil(n));
        }
        assert_eq!(Bounds::per_worker(1 << 20).long_keys, 1);
    }

    /// A slot's panes grow by half, to exactly `held`, and past that (a
    /// frontier far behind) by half again.
    #[test]
    fn slot_panes_grow_to_what_the_window_holds() {
        let held = 12;
        let mut panes: Vec<(Pane, Tally)> = Vec::new();
        let mut caps = Vec::new();
        for p in 0..held as u64 + 3 {
            reserve_pane(&mut panes, held);
            assert!(panes.len() < panes.capacity());
            panes.push((p, Tally::default()));
            caps.push(panes.capacity());
        }
        assert_eq!(caps[held - 1], held, "{caps:?}");
        assert!(caps[held] > held && caps[held] <= held + held / 2);
        for (n, c) in caps.iter().enumerate() {
            assert!(*c <= ((n + 1) * 3 / 2).max(2).max(held), "{caps:?}");
        }
    }
}
