//! C tokens, as far as the precompiler needs them: identifiers, numbers, literals, single
//! punctuation bytes and whole preprocessor lines. Comments are skipped. Used for the heads of
//! definitions in the `.c` file and for the whole `.ic` file; bodies are never tokenized.

use super::lexical::{directive, find, line_comment_end, literal_end, number_end};
use super::{is_ident_byte, is_ident_start};
use std::ops::Range;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ident,
    Number,
    Punct(u8),
    Literal,
    /// A whole preprocessor line (`#if X`, with its continuations).
    Directive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tok {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

impl Tok {
    pub fn is(&self, p: u8) -> bool {
        self.kind == Kind::Punct(p)
    }
}

/// Tokenize `text[range]`; `Err(offset)` for a comment that never ends.
pub fn lex(text: &[u8], range: Range<usize>) -> Result<Vec<Tok>, usize> {
    let n = range.end.min(text.len());
    // About one token per four bytes of C: grown once or never.
    let mut toks = Vec::with_capacity(n.saturating_sub(range.start) / 4 + 16);
    let mut i = range.start;
    let mut line_start = text[..i]
        .iter()
        .rev()
        .take_while(|&&b| b != b'\n')
        .all(|b| b.is_ascii_whitespace());
    while i < n {
        let b = text[i];
        let start = i;
        let kind = match b {
            b'\n' => {
                line_start = true;
                i += 1;
                continue;
            }
            b'\\' if text.get(i + 1) == Some(&b'\n') => {
                i += 2;
                continue;
            }
            _ if b.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b'/' if text.get(i + 1) == Some(&b'/') => {
                i = line_comment_end(text, i);
                continue;
            }
            b'/' if text.get(i + 1) == Some(&b'*') => {
                match find(text, i + 2, b"*/") {
                    Some(e) => i = e + 2,
                    None => return Err(i),
                }
                continue;
            }
            b'#' if line_start => {
                i = directive(text, i).0;
                Kind::Directive
            }
            b'"' | b'\'' => {
                i = literal_end(text, i);
                Kind::Literal
            }
            b'.' if text.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                i = number_end(text, i);
                Kind::Number
            }
            _ if b.is_ascii_digit() => {
                i = number_end(text, i);
                Kind::Number
            }
            _ if is_ident_start(b) => {
                while i < n && is_ident_byte(text[i]) {
                    i += 1;
                }
                Kind::Ident
            }
            _ => {
                i += 1;
                Kind::Punct(b)
            }
        };
        line_start = false;
        toks.push(Tok {
            kind,
            start,
            end: i.min(n),
        });
    }
    Ok(toks)
}
