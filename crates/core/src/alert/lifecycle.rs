//! `AlertLifecycle`: the state of one (kind, key) across windows. One
//! `raised` per episode; `updated` only when the severity changes or the
//! observed value moves by `update_ratio` since the last state sent;
//! `resolved` once the condition has been clear for `hold_us` of event time.
//! Pure: driven by window ends, no clock.

use crate::detect::{Finding, Severity};

use super::State;

/// Alert lifecycle policy: `[alerts]` of the pipeline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LifecyclePolicy {
    /// A key must be clear this long (event time) before `resolved`.
    pub hold_us: i64,
    /// `updated` is sent when observed moves by at least this fraction
    /// since the last state sent (or when severity changes).
    pub update_ratio: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AlertLifecycle {
    pub severity: Severity,
    pub threshold: f64,
    pub unit: &'static str,
    /// Observed value in the last state sent.
    pub last_sent: f64,
    pub peak: f64,
    pub raised_at_us: i64,
    /// End of the first clear window of the current clear stretch.
    pub clear_since_us: Option<i64>,
}

/// A state change to publish.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    pub state: State,
    pub severity: Severity,
    pub observed: f64,
    pub threshold: f64,
    pub unit: &'static str,
}

impl AlertLifecycle {
    /// Advance one (kind, key) by one window ending at `end_us`.
    /// `finding` is the detector's verdict, `measured` its measured value.
    pub fn step(
        slot: &mut Option<AlertLifecycle>,
        policy: &LifecyclePolicy,
        finding: Option<&Finding>,
        measured: f64,
        end_us: i64,
    ) -> Option<Transition> {
        match (slot.as_mut(), finding) {
            (None, None) => None,
            (None, Some(f)) => {
                *slot = Some(AlertLifecycle {
                    severity: f.severity,
                    threshold: f.threshold,
                    unit: f.unit,
                    last_sent: f.observed,
                    peak: f.observed,
                    raised_at_us: end_us,
                    clear_since_us: None,
                });
                Some(Transition {
                    state: State::Raised,
                    severity: f.severity,
                    observed: f.observed,
                    threshold: f.threshold,
                    unit: f.unit,
                })
            }
            (Some(a), Some(f)) => {
                a.clear_since_us = None;
                a.peak = a.peak.max(f.observed);
                let moved =
                    (f.observed - a.last_sent).abs() >= policy.update_ratio * a.last_sent.abs();
                if f.severity != a.severity || moved {
                    a.severity = f.severity;
                    a.threshold = f.threshold;
                    a.last_sent = f.observed;
                    Some(Transition {
                        state: State::Updated,
                        severity: f.severity,
                        observed: f.observed,
                        threshold: f.threshold,
                        unit: f.unit,
                    })
                } else {
                    None
                }
            }
            (Some(a), None) => {
                let since = *a.clear_since_us.get_or_insert(end_us);
                if end_us - since >= policy.hold_us {
                    let t = Transition {
                        state: State::Resolved,
                        severity: a.severity,
                        observed: measured,
                        threshold: a.threshold,
                        unit: a.unit,
                    };
                    *slot = None;
                    Some(t)
                } else {
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::MICROS;

    fn finding(sev: Severity, observed: f64) -> Finding {
        Finding {
            severity: sev,
            observed,
            threshold: 100.0,
            unit: "queries/s",
            evidence: Default::default(),
        }
    }

    #[test]
    fn raise_update_resolve() {
        let policy = LifecyclePolicy {
            hold_us: 3 * MICROS,
            update_ratio: 0.5,
        };
        let mut slot = None;
        let mut states = vec![];
        let inputs = [
            Some(finding(Severity::Warning, 120.0)),  // raised
            Some(finding(Severity::Warning, 150.0)),  // +25 %: nothing
            Some(finding(Severity::Warning, 181.0)),  // +51 %: updated
            Some(finding(Severity::Critical, 182.0)), // severity: updated
            None,                                     // clear since t=5
            Some(finding(Severity::Critical, 182.0)), // back: clear reset
            None,                                     // clear since 7
            None,
            None,
            None, // 10 - 7 >= 3: resolved
            None,
        ];
        for (i, f) in inputs.iter().enumerate() {
            let end = (i as i64 + 1) * MICROS;
            if let Some(t) = AlertLifecycle::step(&mut slot, &policy, f.as_ref(), 0.0, end) {
                states.push((i + 1, t.state, t.severity));
            }
        }
        assert_eq!(
            states,
            vec![
                (1, State::Raised, Severity::Warning),
                (3, State::Updated, Severity::Warning),
                (4, State::Updated, Severity::Critical),
                (10, State::Resolved, Severity::Critical),
            ]
        );
        assert!(slot.is_none());
    }
}
