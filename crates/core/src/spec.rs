//! Located values and the errors about them: the leaf that every
//! component's spec parser uses, so that a detector or a source can check
//! its own table and name file:line:column and the dotted key without
//! depending on `config/` (which assembles the components, above them all).
//! Must not: depend on anything but `escape` and `time`.

use std::fmt;
use std::ops::Range;

use crate::time::MICROS;

/// Ceiling of every other `*_secs` duration (timeouts, alert hold): a day.
pub const MAX_TIMEOUT_SECS: u64 = 86_400;

/// A value with no place in the file (a default).
pub fn unspanned<T>(v: T) -> toml::Spanned<T> {
    toml::Spanned::new(0..0, v)
}

/// One configuration problem, located.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based; 0 when the problem has no place in the file.
    pub line: usize,
    pub column: usize,
    /// Dotted key, e.g. `window.slide_secs` (may be empty).
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys and messages quote the file's text: escaped, so a key with
        // ESC or U+202E in it cannot act on the terminal.
        use crate::escape::for_terminal;
        let file = for_terminal(&self.file);
        if self.line > 0 {
            write!(f, "{file}:{}:{}: ", self.line, self.column)?;
        } else {
            write!(f, "{file}: ")?;
        }
        if !self.key.is_empty() {
            write!(f, "key `{}`: ", for_terminal(&self.key))?;
        }
        f.write_str(&for_terminal(&self.message))
    }
}

/// All the errors of one pipeline.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The text of a pipeline file with its name, to turn byte spans into
/// file:line:column and dotted keys.
pub struct Located<'a> {
    pub file: &'a str,
    pub text: &'a str,
}

impl Located<'_> {
    /// An error at `span`; `key` is used when given, otherwise the key is
    /// worked out from the file around the span.
    pub fn error(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> ConfigError {
        let message = message.into();
        if span == (0..0) {
            // A default value: no place in the file.
            return ConfigError {
                file: self.file.to_string(),
                line: 0,
                column: 0,
                key: key.to_string(),
                message,
            };
        }
        let (line, column) = line_col(self.text, span.start);
        let key = if key.is_empty() {
            key_path_at(self.text, span.start)
        } else {
            key.to_string()
        };
        ConfigError {
            file: self.file.to_string(),
            line,
            column,
            key,
            message,
        }
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = offset
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    (line, col)
}

/// Dotted key of the `key = value` line holding `offset`, prefixed by the
/// nearest `[table]` header above it.
fn key_path_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |p| p + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |p| offset + p);
    let line = text[line_start..line_end].trim();
    let mut table = String::new();
    for l in text[..line_start].lines().rev() {
        let l = l.trim();
        if l.starts_with('[') {
            table = l.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            break;
        }
    }
    if line.starts_with('[') {
        return line
            .trim_matches(|c| c == '[' || c == ']')
            .trim()
            .to_string();
    }
    let key = line
        .split('=')
        .next()
        .unwrap_or("")
        .trim()
        .trim_matches('"');
    match (table.is_empty(), key.is_empty()) {
        (_, true) => table,
        (true, false) => key.to_string(),
        (false, false) => format!("{table}.{key}"),
    }
}

/// A timeout key: at most a day; returned in microseconds (clamped, so it
/// cannot overflow even when the error is being reported).
pub fn timeout_us(
    v: &toml::Spanned<u64>,
    key: &str,
    loc: &Located<'_>,
    errors: &mut Vec<ConfigError>,
) -> i64 {
    if *v.get_ref() > MAX_TIMEOUT_SECS {
        errors.push(loc.error(
            v.span(),
            key,
            format!("must be at most {MAX_TIMEOUT_SECS} (a day)"),
        ));
    }
    (*v.get_ref()).min(MAX_TIMEOUT_SECS) as i64 * MICROS
}
