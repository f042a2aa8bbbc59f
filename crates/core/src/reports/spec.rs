//! `[reports]` of a pipeline: the report interval and top-N, beside the
//! report tables. `config/` assembles it into the `Plan`.

use serde::Deserialize;

use crate::spec::{ConfigError, Located, unspanned};
use crate::time::MICROS;
use crate::window::spec::MAX_WINDOW_SECS;

/// `[reports]`: periodic top-k reports (`--reports`).
#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportsSpec {
    pub interval_secs: toml::Spanned<u64>,
    pub top: toml::Spanned<usize>,
}

impl Default for ReportsSpec {
    fn default() -> Self {
        ReportsSpec {
            interval_secs: unspanned(10),
            top: unspanned(10),
        }
    }
}

/// `[reports]`: interval (microseconds, a multiple of the slide; one window
/// length when not set) and top-N.
pub fn reports_table(
    r: &ReportsSpec,
    size: u64,
    slide: u64,
    loc: &Located<'_>,
    errors: &mut Vec<ConfigError>,
) -> (i64, usize) {
    let (mut ri, rt) = (*r.interval_secs.get_ref(), *r.top.get_ref());
    if r.interval_secs.span() == (0..0) {
        // Not set: one report per window length (always slide-aligned).
        ri = size.max(1);
    } else if ri == 0 || ri > MAX_WINDOW_SECS || (slide > 0 && ri % slide != 0) {
        errors.push(loc.error(
            r.interval_secs.span(),
            "reports.interval_secs",
            format!("must be a multiple of window.slide_secs ({slide}) up to {MAX_WINDOW_SECS}"),
        ));
    }
    if rt == 0 || rt > 1000 {
        errors.push(loc.error(r.top.span(), "reports.top", "must be between 1 and 1000"));
    }
    (ri.min(MAX_WINDOW_SECS) as i64 * MICROS, rt)
}
