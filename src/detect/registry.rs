//! The one list of detectors: their `[detectors.<kind>]` tables and how each
//! is built from its spec. A new detector adds a field here and an arm in
//! `build_detectors`; nothing else in the engine changes.

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use super::Detector;
use super::blocklist_hit::{BlocklistHit, BlocklistHitSpec};
use super::client_flood::{ClientFlood, ClientFloodSpec};
use crate::blocklist::BlocklistSet;
use crate::config::{ConfigError, Located};

/// `[detectors]`: one optional table per detector kind.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorsSpec {
    #[serde(default)]
    pub client_flood: ClientFloodSpec,
    #[serde(default)]
    pub blocklist_hit: BlocklistHitSpec,
}

/// Build the enabled detectors in a fixed order. `base` resolves relative
/// list paths; `extra_lists` are `--blocklist` files from the command line.
/// Every problem is pushed to `errors` (nothing stops at the first).
pub fn build_detectors(
    spec: &DetectorsSpec,
    base: &Path,
    extra_lists: &[std::path::PathBuf],
    loc: &Located<'_>,
    errors: &mut Vec<ConfigError>,
) -> (Vec<Arc<dyn Detector>>, Option<Arc<BlocklistSet>>) {
    let mut out: Vec<Arc<dyn Detector>> = Vec::new();
    let mut blocklist = None;

    let bl = &spec.blocklist_hit;
    if bl.enabled || !extra_lists.is_empty() {
        let mut lists: Vec<_> = bl.lists.iter().map(|p| base.join(p.get_ref())).collect();
        lists.extend(extra_lists.iter().cloned());
        let allow: Vec<_> = bl.allow.iter().map(|p| base.join(p.get_ref())).collect();
        match BlocklistSet::load(&lists, &allow) {
            Ok(set) => {
                let set = Arc::new(set);
                blocklist = Some(set.clone());
                out.push(Arc::new(BlocklistHit {
                    set,
                    severity: bl.severity,
                }));
            }
            Err(e) => {
                let span = bl.lists.first().map(|s| s.span()).unwrap_or(0..0);
                errors.push(loc.error(span, "detectors.blocklist_hit.lists", e.to_string()));
            }
        }
    }

    let cf = &spec.client_flood;
    if cf.enabled {
        let (w, c) = (*cf.warning_qps.get_ref(), *cf.critical_qps.get_ref());
        if !(w.is_finite() && w > 0.0) {
            errors.push(loc.error(
                cf.warning_qps.span(),
                "detectors.client_flood.warning_qps",
                "must be a positive number",
            ));
        }
        if !(c.is_finite() && c >= w) {
            errors.push(loc.error(
                cf.critical_qps.span(),
                "detectors.client_flood.critical_qps",
                format!("must be a number >= warning_qps ({w})"),
            ));
        }
        out.push(Arc::new(ClientFlood {
            warning_qps: w,
            critical_qps: c,
        }));
    }
    (out, blocklist)
}
