//! `[alerts]` of a pipeline: the lifecycle policy's keys and defaults,
//! beside the lifecycle. `config/` assembles it into the `Plan`.

use serde::Deserialize;

use super::LifecyclePolicy;
use crate::spec::{ConfigError, Located, timeout_us, unspanned};

/// `[alerts]`: how alert episodes hold and update.
#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsSpec {
    pub hold_secs: toml::Spanned<u64>,
    pub update_ratio: toml::Spanned<f64>,
}

impl Default for AlertsSpec {
    fn default() -> Self {
        AlertsSpec {
            hold_secs: unspanned(20),
            update_ratio: unspanned(0.5),
        }
    }
}

/// `[alerts]`: the lifecycle policy.
pub fn alerts_table(
    a: &AlertsSpec,
    loc: &Located<'_>,
    errors: &mut Vec<ConfigError>,
) -> LifecyclePolicy {
    let ratio = *a.update_ratio.get_ref();
    if !(ratio.is_finite() && ratio > 0.0) {
        errors.push(loc.error(
            a.update_ratio.span(),
            "alerts.update_ratio",
            "must be a positive number",
        ));
    }
    LifecyclePolicy {
        hold_us: timeout_us(&a.hold_secs, "alerts.hold_secs", loc, errors),
        update_ratio: ratio,
    }
}
