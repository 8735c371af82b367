//! What reaches a terminal: text from journals, kept pods and sockets made harmless.
//!
//! A test's output, a function name or a socket's answer is written by someone else. Printed raw,
//! it can retitle or clear the terminal, write the clipboard (OSC 52), or fake "all passed" with
//! `\r`. So every string that came from outside is escaped before it is printed: C0 controls, DEL,
//! C1 controls (U+0080..U+009F; U+009B alone starts a CSI on some terminals) and the bidi
//! overrides and isolates become visible escapes (`\e`, `\r`, `\u{9b}`). The only control
//! characters `invite` prints are the ones it made itself: line ends, and in `report --follow` on
//! a terminal the sequence that redraws the screen.

use std::borrow::Cow;

/// Whether a terminal could act on `c`, or it could reorder the text around it.
pub fn is_dangerous(c: char) -> bool {
    c.is_control()
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}')
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\u{1b}' => out.push_str("\\e"),
        '\r' => out.push_str("\\r"),
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        c if (c as u32) < 0x20 || c == '\u{7f}' => {
            out.push_str(&format!("\\x{:02x}", c as u32));
        }
        c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
    }
}

/// One line's worth of text (a table cell, a name): every dangerous character escaped, line ends
/// included.
pub fn cell(text: &str) -> Cow<'_, str> {
    escape_except(text, |_| false)
}

/// Text of several lines (a message, a test's output): as [`cell`], but `\n` stays a line end.
pub fn lines(text: &str) -> Cow<'_, str> {
    escape_except(text, |c| c == '\n')
}

fn escape_except(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(|c| is_dangerous(c) && !keep(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_dangerous(c) && !keep(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// JSON text for a terminal: serde_json escapes C0 controls in strings, but not DEL, C1 or bidi
/// controls. Those can only be inside strings in valid JSON, so `\uXXXX` keeps the JSON valid and
/// its value the same. A raw C0 control (only in a file someone else wrote) is escaped the same way.
pub fn json(text: &str) -> Cow<'_, str> {
    let keep = |c: char| c == '\n' || c == '\t' || !is_dangerous(c);
    if text.chars().all(keep) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if keep(c) {
            out.push(c);
        } else {
            out.push_str(&format!("\\u{:04x}", c as u32));
        }
    }
    Cow::Owned(out)
}

/// Bytes for a terminal that may not be UTF-8 (a file a pod changed): invalid UTF-8 is shown as
/// `\xNN`, and dangerous characters escaped as in [`lines`]; tabs are kept.
pub fn bytes(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len());
    for chunk in data.utf8_chunks() {
        for c in chunk.valid().chars() {
            if is_dangerous(c) && c != '\n' && c != '\t' {
                push_escaped(&mut out, c);
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_a_terminal_acts_on() {
        assert_eq!(cell("plain µs"), "plain µs");
        assert_eq!(cell("a\u{1b}]52;c;QQ\u{7}b"), "a\\e]52;c;QQ\\ab");
        assert_eq!(cell("x\ry\nz"), "x\\ry\\nz");
        assert_eq!(cell("\u{9b}2J\u{202e}\u{7f}"), "\\u{9b}2J\\u{202e}\\x7f");
        assert_eq!(lines("a\nb\r"), "a\nb\\r");
        assert_eq!(json("\"a\u{9b}\u{7f}\"\n"), "\"a\\u009b\\u007f\"\n");
        assert_eq!(bytes(b"ok\t\xff\x1b[2J\n"), "ok\t\\xff\\e[2J\n");
    }
}
