//! Untrusted text made safe to print: characters that act on a terminal or
//! hide text (C0/C1 controls, DEL, bidi overrides and isolates such as
//! U+202E, zero-width and other format characters, line separators) are
//! written as escapes. Used wherever bytes from outside (message bodies,
//! pipeline keys, list lines) reach a person; DNS names have their own
//! presentation form (`dns::name`).

use std::fmt::Write as _;

/// A character that can act on a terminal or hide text: what Rust's
/// `escape_debug` does not print as itself, quotes and backslash aside.
pub fn acts_on_terminal(c: char) -> bool {
    c.is_control() || (!c.is_ascii() && c.escape_debug().nth(1).is_some())
}

/// `s` with every such character escaped Rust-style (`\u{202e}`, `\u{1b}`,
/// `\n`); everything else, including other non-ASCII text, as it is.
pub fn for_terminal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if acts_on_terminal(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

/// Serialised JSON with every such character written as a `\uXXXX` escape:
/// the same JSON value (they can only be inside strings), safe anywhere.
pub fn json_for_terminal(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if acts_on_terminal(c) {
            for unit in c.encode_utf16(&mut [0; 2]) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_acts_on_a_terminal_and_keeps_the_rest() {
        assert_eq!(
            for_terminal("a\u{1b}[2J\u{7}\u{202e}\u{200b}\u{85}é\"\\"),
            "a\\u{1b}[2J\\u{7}\\u{202e}\\u{200b}\\u{85}é\"\\"
        );
        let json = json_for_terminal("{\"k\":\"\u{202e}x\u{e0041}\u{7f}\"}");
        assert_eq!(json, "{\"k\":\"\\u202ex\\udb40\\udc41\\u007f\"}");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["k"], "\u{202e}x\u{e0041}\u{7f}");
    }
}
