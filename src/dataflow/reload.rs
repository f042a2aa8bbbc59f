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
//! there; and a cluster member applies pushed versions when it restarts.

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
        }
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
