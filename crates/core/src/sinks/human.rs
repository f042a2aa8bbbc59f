//! The readable form of an alert for a person at a terminal: one aligned
//! line per alert state (time, state, severity, kind, key, observed vs
//! threshold, a short evidence summary), coloured when asked. The one
//! formatter behind `replay`/`live`/`consume` on a terminal and
//! `dnsmonitor alerts`. Every text taken from the alert is escaped
//! ([`for_terminal`]); the JSON form and its schema live in `alert/`.

use std::io::{self, Write};

use anstyle::{AnsiColor, Style};
use serde_json::Value;

use super::Sink;
use crate::alert::Alert;
use crate::escape::for_terminal;

/// Widths of the aligned columns: the longest state (`resolved`), severity
/// (`CRITICAL`) and kind (`unsolicited_response`); keys are padded to
/// [`KEY_WIDTH`] and may run past it.
const STATE_WIDTH: usize = 8;
const SEVERITY_WIDTH: usize = 8;
const KIND_WIDTH: usize = 20;
const KEY_WIDTH: usize = 24;
/// Evidence fields shown besides the sample names, at most.
const EVIDENCE_FIELDS: usize = 3;
/// Sample names shown, at most.
const SAMPLE_NAMES: usize = 3;

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => for_terminal(s),
        Value::Null => "-".into(),
        other => for_terminal(&other.to_string()),
    }
}

/// `text` padded to `width`, wrapped in `style` when colouring.
fn cell(text: &str, width: usize, style: Style, colour: bool) -> String {
    if colour {
        format!("{style}{text:<width$}{style:#}")
    } else {
        format!("{text:<width$}")
    }
}

fn severity_style(severity: &str) -> Style {
    match severity {
        "critical" => Style::new().bold().fg_color(Some(AnsiColor::Red.into())),
        "warning" => Style::new().fg_color(Some(AnsiColor::Yellow.into())),
        "info" => Style::new().fg_color(Some(AnsiColor::Cyan.into())),
        _ => Style::new(),
    }
}

fn state_style(state: &str) -> Style {
    match state {
        "raised" => Style::new().bold(),
        "resolved" => Style::new().fg_color(Some(AnsiColor::Green.into())),
        _ => Style::new(),
    }
}

/// A short summary of an evidence object: a few scalar counts (not the
/// thresholds, already shown) and the sample names.
fn evidence_summary(ev: &Value) -> String {
    let Some(o) = ev.as_object() else {
        return String::new();
    };
    let mut parts: Vec<String> = o
        .iter()
        .filter(|(k, v)| {
            (v.is_number() || v.is_string())
                && !k.ends_with("_qps")
                && !k.starts_with("warning")
                && !k.starts_with("critical")
                && !k.starts_with("min_")
        })
        .take(EVIDENCE_FIELDS)
        .map(|(k, v)| format!("{}={}", for_terminal(k), plain(v)))
        .collect();
    if let Some(names) = o.get("sample_qnames").and_then(Value::as_array) {
        let names: Vec<String> = names.iter().take(SAMPLE_NAMES).map(plain).collect();
        if !names.is_empty() {
            parts.push(format!("samples={}", names.join(",")));
        }
    }
    parts.join(" ")
}

/// One readable line for a `dnsmonitor.alert/1` object, e.g.
/// `2026-11-25T18:01:15Z updated  CRITICAL client_flood         client=127.0.0.66        316.2 queries/s (threshold 300)  queries=3162 ...`.
/// Missing fields print as `-`; nothing in the line can act on a terminal
/// but the colour codes added when `colour`.
pub fn human_line(v: &Value, colour: bool) -> String {
    let f = |k: &str| plain(v.get(k).unwrap_or(&Value::Null));
    let (state, severity) = (f("state"), f("severity"));
    let key = match v.get("key").and_then(Value::as_object) {
        Some(key) => key
            .iter()
            .map(|(k, val)| format!("{}={}", for_terminal(k), plain(val)))
            .collect::<Vec<_>>()
            .join(" "),
        None => "-".into(),
    };
    let mut line = format!(
        "{} {} {} {} {key:<KEY_WIDTH$} {} {} (threshold {})",
        f("event_time"),
        cell(&state, STATE_WIDTH, state_style(&state), colour),
        cell(
            &severity.to_uppercase(),
            SEVERITY_WIDTH,
            severity_style(&severity),
            colour
        ),
        cell(&f("kind"), KIND_WIDTH, Style::new(), false),
        f("observed"),
        f("unit"),
        f("threshold"),
    );
    let ev = evidence_summary(v.get("evidence").unwrap_or(&Value::Null));
    if !ev.is_empty() {
        line.push_str("  ");
        line.push_str(&ev);
    }
    line
}

/// Carriage return and "erase line": the start of a terminal line whatever
/// was drawn on it (the progress bar on stderr shares the screen).
const CLEAR_LINE: &[u8] = b"\r\x1b[2K";

/// Alerts as readable lines ([`human_line`]).
pub struct HumanAlerts {
    out: Box<dyn Write + Send>,
    colour: bool,
    /// Writing to a terminal: each batch starts on a cleared line, so an
    /// alert does not continue the progress bar's line (the bar redraws
    /// itself below it on its next tick).
    terminal: bool,
}

impl HumanAlerts {
    /// Plain lines (`colour` false) for a file or pipe.
    pub fn new(out: Box<dyn Write + Send>, colour: bool) -> Self {
        HumanAlerts {
            out,
            colour,
            terminal: false,
        }
    }

    /// For a terminal: each batch of lines starts on a cleared line.
    pub fn for_terminal(out: Box<dyn Write + Send>, colour: bool) -> Self {
        HumanAlerts {
            out,
            colour,
            terminal: true,
        }
    }
}

impl Sink<Alert> for HumanAlerts {
    fn emit(&mut self, alerts: &[Alert]) -> io::Result<()> {
        if self.terminal && !alerts.is_empty() {
            self.out.write_all(CLEAR_LINE)?;
        }
        for a in alerts {
            let v = a.to_json();
            writeln!(self.out, "{}", human_line(&v, self.colour))?;
        }
        self.out.flush()
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Whether to colour output for a terminal: not when `NO_COLOR` is set
/// (<https://no-color.org>).
pub fn colour_wanted() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_aligned_escaped_and_coloured_only_when_asked() {
        let v: Value = serde_json::from_str(
            r#"{"schema":"dnsmonitor.alert/1","kind":"client_flood","severity":"critical","state":"raised",
               "key":{"client":"\u202emoc.live\u001b[2J"},"event_time":"2026-11-25T18:01:15Z",
               "observed":316.2,"threshold":300,"unit":"queries/s",
               "evidence":{"queries":3162,"warning_qps":100.0,"sample_qnames":["a\\.b.test","\u0007x"]}}"#,
        )
        .unwrap();
        let plain = human_line(&v, false);
        assert!(
            !plain.contains('\u{1b}') && !plain.contains('\u{202e}'),
            "{plain:?}"
        );
        assert!(
            plain.starts_with("2026-11-25T18:01:15Z raised   CRITICAL client_flood         client=\\u{202e}moc.live\\u{1b}[2J"),
            "{plain}"
        );
        assert!(
            plain.contains(
                " 316.2 queries/s (threshold 300)  queries=3162 samples=a\\.b.test,\\u{7}x"
            ),
            "{plain}"
        );
        assert!(!plain.contains("warning_qps"), "{plain}");
        let coloured = human_line(&v, true);
        assert!(
            coloured.contains("\u{1b}[1m\u{1b}[31mCRITICAL\u{1b}[0m"),
            "{coloured:?}"
        );
    }
}
