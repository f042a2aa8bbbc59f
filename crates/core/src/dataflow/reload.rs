//! A new pipeline version taking effect while a run goes on (SIGHUP).
//!
//! The switch is decided once, by the reader of the input (worker 0's
//! source), at an event-time boundary: pane `P` = the pane after the newest
//! frame it has handed on (and not below its watermark). Every message in a
//! pane `>= P` is observed with the new version's detectors (blocklists
//! included), every window ending at `P` or later is evaluated with the new
//! version's detectors and alert lifecycle; everything before with the old
//! one. The reader tells every reduce worker through the `Shuffle` stream
//! (`Shuffle::Switch`, sent at its capability, which is `<= P`, so no reduce
//! worker can have closed window `P` yet); the `Spread` operators of its
//! process read the switch from here before decoding a batch sent after it.
//! So the output depends only on the input and `P`, not on the worker
//! count or on thread timing.
//!
//! Limits: the window (size, slide, lateness), the detector list (kinds
//! and order) and the report interval cannot change live: such a version is
//! refused (restart to apply it). A replay of files read by several workers
//! has no single reader that could decide `P` for all: reloads are refused
//! there, and a cluster member refuses SIGHUP.
//!
//! A cluster switches at a pane fixed by the push instead (`cluster push
//! --at`, `pane_at`): each member's config watcher `hold`s its readers
//! before `P` (refused when one of them already handed on a frame of `P`
//! or later, or its input ended), tells the others whether it is ready and,
//! once every member of the formation is, `decide`s (or `release`s when
//! one is not). Every reader of the process waits at its first frame of a
//! pane `>= P` while a version is held or decided but not yet followed
//! (`may_pass`), and follows a decided version by switching its decoding
//! and sending its `Shuffle::Switch` at its capability (`< P`). So every
//! worker of every member switches at `P`, or none does.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::config::Plan;
use crate::window::Pane;

/// One version in force: the pipeline from pane `from` on.
#[derive(Clone)]
pub struct Version {
    /// 1 for the version the run started with, then 2, 3, ...
    pub number: u64,
    pub from: Pane,
    pub plan: Arc<Plan>,
}

/// What the reload signal handler and the operators of a run share.
pub struct Reload {
    /// A checked new version waiting for the reader to pick its pane.
    /// With the pane it was asked for (`schedule`), if any.
    pending: Mutex<Option<(Arc<Plan>, Option<Pane>)>>,
    /// The versions, in order (the first is the starting one, from pane 0).
    versions: Mutex<Vec<Version>>,
    /// Why this run cannot switch (set by `run`), if it cannot.
    refuse: Mutex<Option<String>>,
    /// Cluster: readers wait before a frame of this pane or later (a
    /// version held for every member's answer); `NO_GATE` when none.
    gate: AtomicU64,
    /// The newest pane a reader of this process reached (`u64::MAX` once
    /// an input ended): a hold at or below it is too late.
    passed: AtomicU64,
    /// `versions.len()`, for the readers' per-frame check.
    decided: AtomicUsize,
}

const NO_GATE: u64 = u64::MAX;

/// The pane a version pushed for event time `at_us` is in force from: the
/// first pane that starts at or after it (a time inside a pane is rounded
/// up to the next boundary). `None` before 1970.
pub fn pane_at(slide_us: i64, at_us: i64) -> Option<Pane> {
    (at_us >= 0 && slide_us > 0).then(|| (at_us as u64).div_ceil(slide_us as u64))
}

impl Reload {
    pub fn new(plan: Arc<Plan>) -> Self {
        Reload {
            pending: Mutex::new(None),
            versions: Mutex::new(vec![Version {
                number: 1,
                from: 0,
                plan,
            }]),
            refuse: Mutex::new(None),
            gate: AtomicU64::new(NO_GATE),
            passed: AtomicU64::new(0),
            decided: AtomicUsize::new(1),
        }
    }

    /// Cluster: hold this process's readers before pane `at` for a new
    /// version (`plan`, checked against the one in force); `Err` with why
    /// not: it cannot be applied live, another is held, or a reader
    /// already reached pane `at` (too late: its frames from `at` on were
    /// observed with the version in force).
    pub fn hold(&self, plan: &Plan, at: Pane) -> Result<(), String> {
        let latest = self.latest();
        compatible(&latest.plan, plan)?;
        if at <= latest.from && latest.number > 1 {
            return Err(format!(
                "version {} is in force from a later pane already",
                latest.number
            ));
        }
        if self
            .gate
            .compare_exchange(NO_GATE, at, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Err("another pushed version is waiting for the members".into());
        }
        // A reader publishes its pane before it looks at the gate: either
        // it sees the gate, or this sees its pane.
        let passed = self.passed.load(Ordering::SeqCst);
        if passed >= at {
            self.release();
            return Err(if passed == u64::MAX {
                "the input of this member ended".into()
            } else {
                "this member's input is already past that event time".into()
            });
        }
        Ok(())
    }

    /// Cluster: let the readers go on with the version in force.
    pub fn release(&self) {
        self.gate.store(NO_GATE, Ordering::SeqCst);
    }

    /// Cluster: every member is ready: `plan` is in force from pane `at`
    /// (held before with `hold`). The readers follow it, then go on.
    pub fn decide(&self, plan: Arc<Plan>, at: Pane) -> Version {
        let version = {
            let mut v = self.versions.lock().unwrap_or_else(|p| p.into_inner());
            let version = Version {
                number: v.len() as u64 + 1,
                from: at,
                plan,
            };
            v.push(version.clone());
            self.decided.store(v.len(), Ordering::SeqCst);
            version
        };
        self.release();
        version
    }

    /// A reader is about to hand on a frame of pane `p` (and publishes
    /// it: a later `hold` at or below it is too late), having followed
    /// `followed` versions: whether it may (no version held at or before
    /// `p`, none decided that it has not followed yet).
    pub(crate) fn may_pass(&self, p: Pane, followed: usize) -> bool {
        if self.passed.load(Ordering::Relaxed) < p {
            self.passed.fetch_max(p, Ordering::SeqCst);
        }
        p < self.gate.load(Ordering::SeqCst) && self.decided.load(Ordering::SeqCst) == followed
    }

    /// A reader's capabilities would move to pane `p`, having followed
    /// `followed` versions: where they may move (not past the pane a
    /// version is held at, or decided at and not yet followed here).
    pub(crate) fn cap_at_most(&self, p: Pane, followed: usize) -> Pane {
        let reached = p.saturating_sub(1);
        if self.passed.load(Ordering::Relaxed) < reached {
            self.passed.fetch_max(reached, Ordering::SeqCst);
        }
        let p = p.min(self.gate.load(Ordering::SeqCst));
        if self.decided.load(Ordering::SeqCst) > followed
            && let Some(v) = self.get(followed as u64 + 1)
        {
            return p.min(v.from);
        }
        p
    }

    /// Whether a reader that followed `followed` versions must not end
    /// yet: a version is held, or decided and not followed here.
    pub(crate) fn busy(&self, followed: usize) -> bool {
        self.gate.load(Ordering::SeqCst) != NO_GATE
            || self.decided.load(Ordering::SeqCst) > followed
    }

    /// A reader's input ended: no version can be held any more.
    pub(crate) fn input_ended(&self) {
        self.passed.store(u64::MAX, Ordering::SeqCst);
    }

    /// Offer a new version (loaded and valid): `Ok` once it is queued for
    /// the reader, `Err` with why it cannot be applied live.
    pub fn offer(&self, plan: Arc<Plan>) -> Result<(), String> {
        self.queue(plan, None)
    }

    /// Offer a new version to be in force from pane `at` (or, if the
    /// reader is past it when it looks, from the first pane it can):
    /// the same path as a reload, at a chosen event time (tests).
    pub fn schedule(&self, plan: Arc<Plan>, at: Pane) -> Result<(), String> {
        self.queue(plan, Some(at))
    }

    fn queue(&self, plan: Arc<Plan>, at: Option<Pane>) -> Result<(), String> {
        if let Some(why) = self
            .refuse
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Err(why);
        }
        let current = self.latest().plan;
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let before = pending.as_ref().map_or(current, |(p, _)| p.clone());
        compatible(&before, &plan)?;
        *pending = Some((plan, at));
        Ok(())
    }

    /// Refuse every reload of this run, saying why.
    pub(crate) fn refuse_all(&self, why: String) {
        *self.refuse.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
    }

    /// The reader: take the waiting version, in force from pane `from`.
    pub(crate) fn take_pending(&self, from: Pane) -> Option<Version> {
        let (plan, at) = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()?;
        let from = at.map_or(from, |a| a.max(from));
        let mut v = self.versions.lock().unwrap_or_else(|p| p.into_inner());
        let from = v.last().map_or(from, |l| from.max(l.from));
        let version = Version {
            number: v.len() as u64 + 1,
            from,
            plan,
        };
        v.push(version.clone());
        self.decided.store(v.len(), Ordering::SeqCst);
        Some(version)
    }

    /// The newest version.
    pub fn latest(&self) -> Version {
        let v = self.versions.lock().unwrap_or_else(|p| p.into_inner());
        v.last()
            .cloned()
            .expect("the starting version is always there")
    }

    /// Version `number`, if decided.
    pub(crate) fn get(&self, number: u64) -> Option<Version> {
        let v = self.versions.lock().unwrap_or_else(|p| p.into_inner());
        v.get((number as usize).checked_sub(1)?).cloned()
    }

    /// Every version decided so far.
    pub fn versions(&self) -> Vec<Version> {
        self.versions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// How many versions are decided (cheap check for news).
    pub(crate) fn count(&self) -> usize {
        self.versions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

/// Whether `new` can replace `old` live; else why not.
pub fn compatible(old: &Plan, new: &Plan) -> Result<(), String> {
    if old.window != new.window {
        return Err(
            "the [window] (size, slide or lateness) changed; a window change cannot be applied live: restart to apply it"
                .into(),
        );
    }
    let kinds = |p: &Plan| p.detectors.iter().map(|d| d.kind()).collect::<Vec<_>>();
    if kinds(old) != kinds(new) {
        return Err(
            "the set of detectors changed; only their settings (thresholds, blocklists) and [alerts] can change live: restart to apply it"
                .into(),
        );
    }
    let long = |p: &Plan| {
        p.detectors
            .iter()
            .map(|d| d.window_secs())
            .collect::<Vec<_>>()
    };
    if long(old) != long(new) {
        return Err(
            "a detector's own window (window_secs, e.g. [detectors.dga]) changed; it cannot change live: restart to apply it"
                .into(),
        );
    }
    if old.report_interval_us != new.report_interval_us {
        return Err(
            "[reports] interval_secs changed; it cannot change live: restart to apply it".into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str) -> Arc<Plan> {
        let p = Plan::from_str(text, "<test>", std::path::Path::new("."), &[]).expect("valid");
        Arc::new(p)
    }

    #[test]
    fn a_pushed_time_is_rounded_up_to_a_pane_boundary() {
        let s = 1_000_000;
        assert_eq!(pane_at(s, 75 * s), Some(75), "on a boundary: that pane");
        assert_eq!(pane_at(s, 74 * s + 1), Some(75), "inside a pane: the next");
        assert_eq!(pane_at(5 * s, 74 * s), Some(15));
        assert_eq!(pane_at(s, 0), Some(0));
        assert_eq!(pane_at(s, -1), None);
    }

    #[test]
    fn a_hold_behind_the_readers_is_refused_and_one_ahead_waits_for_them() {
        let old = plan("[detectors.client_flood]\nwarning_qps = 100.0\n");
        let new = plan("[detectors.client_flood]\nwarning_qps = 1000.0\ncritical_qps = 3000.0\n");
        let r = Reload::new(old);
        assert!(r.may_pass(100, 1), "nothing held");
        let late = r.hold(&new, 100).unwrap_err();
        assert!(late.contains("already past"), "{late}");
        assert!(
            r.may_pass(101, 1),
            "a refused hold leaves the readers alone"
        );
        // Ahead of them: they wait at its pane, not before.
        r.hold(&new, 103).expect("ahead");
        assert!(r.may_pass(102, 1));
        assert!(!r.may_pass(103, 1), "held at its pane");
        assert!(r.hold(&new, 104).is_err(), "one version at a time");
        r.release();
        assert!(r.may_pass(103, 1), "released");
        r.hold(&new, 110).expect("ahead");
        let v = r.decide(new.clone(), 110);
        assert_eq!((v.number, v.from), (2, 110));
        assert!(!r.may_pass(109, 1), "decided: a reader follows it first");
        assert_eq!(r.cap_at_most(120, 1), 110, "not past it before following");
        assert_eq!(r.cap_at_most(120, 2), 120);
        assert!(r.may_pass(110, 2), "followed");
        assert!(
            r.hold(&new, 110).is_err(),
            "not at the pane of the version in force"
        );
        let window = plan(
            "[window]\nsize_secs = 20\nslide_secs = 1\n[detectors.client_flood]\nwarning_qps = 100.0\n",
        );
        assert!(r.hold(&window, 200).unwrap_err().contains("window"));
        r.input_ended();
        assert!(r.hold(&new, 1_000).unwrap_err().contains("ended"));
    }
}
