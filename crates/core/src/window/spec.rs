//! `[window]` of a pipeline: size, slide and allowed lateness, with their
//! defaults and limits, beside the windows they shape. `config/` assembles
//! it into the `Plan` (as a `WindowPlan`).

use serde::Deserialize;

use crate::spec::{ConfigError, Located, unspanned};

/// Largest window a pipeline may ask for (1 day).
pub const MAX_WINDOW_SECS: u64 = 86_400;
/// Most panes per window (size / slide): bounds per-key state.
pub const MAX_PANES: u64 = 3_600;

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WindowSpec {
    pub size_secs: toml::Spanned<u64>,
    pub slide_secs: toml::Spanned<u64>,
    pub allowed_lateness_secs: toml::Spanned<u64>,
}

impl Default for WindowSpec {
    fn default() -> Self {
        WindowSpec {
            size_secs: unspanned(10),
            slide_secs: unspanned(1),
            allowed_lateness_secs: unspanned(2),
        }
    }
}

/// `[window]`: size, slide and allowed lateness, in seconds.
pub fn window_table(
    w: &WindowSpec,
    loc: &Located<'_>,
    errors: &mut Vec<ConfigError>,
) -> (u64, u64, u64) {
    let (size, slide, late) = (
        *w.size_secs.get_ref(),
        *w.slide_secs.get_ref(),
        *w.allowed_lateness_secs.get_ref(),
    );
    if slide == 0 {
        errors.push(loc.error(
            w.slide_secs.span(),
            "window.slide_secs",
            "must be at least 1",
        ));
    }
    if size == 0 || size > MAX_WINDOW_SECS {
        errors.push(loc.error(
            w.size_secs.span(),
            "window.size_secs",
            format!("must be between 1 and {MAX_WINDOW_SECS}"),
        ));
    } else if slide > 0 && size % slide != 0 {
        errors.push(loc.error(
            w.slide_secs.span(),
            "window.slide_secs",
            format!("must divide window.size_secs ({size})"),
        ));
    } else if slide > 0 && size / slide > MAX_PANES {
        errors.push(loc.error(
            w.slide_secs.span(),
            "window.slide_secs",
            format!("window.size_secs / slide_secs must be at most {MAX_PANES}"),
        ));
    }
    if late > MAX_WINDOW_SECS {
        errors.push(loc.error(
            w.allowed_lateness_secs.span(),
            "window.allowed_lateness_secs",
            format!("must be at most {MAX_WINDOW_SECS}"),
        ));
    }
    (size, slide, late)
}
