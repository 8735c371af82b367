//! A head's parameter list: each parameter's name (the last identifier that is not a keyword or a
//! macro call), `...`, and how much a bracket group looks like a parameter list at all.

use super::brackets::Brackets;
use super::tokens::{Kind, Tok};
use super::words::{is_attribute, is_name_word, word};
use std::ops::Range;

/// One parameter of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Its name; `None` for an unnamed parameter (legal in a declaration only).
    pub name: Option<String>,
    /// Byte offset of its first token.
    pub at: usize,
}

/// The parts of a bracket group between top-level commas, as token ranges.
fn parts(toks: &[Tok], b: &Brackets, open: usize, close: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = open + 1;
    let mut i = open + 1;
    while i < close {
        if toks[i].is(b',') {
            out.push(start..i);
            start = i + 1;
        } else {
            i = b.end(toks, i);
        }
        i += 1;
    }
    if start < close || !out.is_empty() {
        out.push(start..close);
    }
    out
}

pub fn parameters(
    text: &[u8],
    toks: &[Tok],
    b: &Brackets,
    open: usize,
    close: usize,
) -> (Vec<Param>, bool) {
    let parts = parts(toks, b, open, close);
    let mut variadic = false;
    let mut out = Vec::new();
    if let [only] = parts.as_slice() {
        if only.len() == 1 && word(text, &toks[only.start]) == b"void" {
            return (out, false);
        }
    }
    for part in parts {
        if part.len() == 3 && toks[part.clone()].iter().all(|t| t.is(b'.')) {
            variadic = true;
            continue;
        }
        let at = toks.get(part.start).map_or(toks[close].start, |t| t.start);
        let name = param_name(text, toks, b, part).map(|n| {
            let t = &toks[n];
            String::from_utf8_lossy(word(text, t)).into_owned()
        });
        out.push(Param { name, at });
    }
    (out, variadic)
}

/// A parenthesized pointer declarator: `(*name)`, `(CURL_STDCALL *func)` — a `*` at its top
/// with something after it, and no comma (not a parameter list such as `(const void *, int)`).
fn pointer_group(toks: &[Tok], b: &Brackets, open: usize) -> bool {
    let close = b.end(toks, open);
    let mut star = false;
    let mut i = open + 1;
    while i < close {
        if toks[i].is(b',') {
            return false;
        }
        if (toks[i].is(b'*') || toks[i].is(b'^')) && i + 1 < close {
            star = true;
        }
        i = b.end(toks, i) + 1;
    }
    star
}

/// The name a parameter declares: the last identifier that is neither a keyword, a tag, nor a
/// macro call; else the name inside a declarator's parentheses (`int (*cb)(int)`); else the last
/// identifier followed by a parameter list (`int compar(const void *, const void *)`).
fn param_name(text: &[u8], toks: &[Tok], b: &Brackets, part: Range<usize>) -> Option<usize> {
    let mut plain = None;
    let mut called = None;
    let mut declarator = None;
    let mut i = part.start;
    while i < part.end {
        let t = &toks[i];
        if t.kind == Kind::Ident && is_attribute(word(text, t)) {
            if toks.get(i + 1).is_some_and(|n| n.is(b'(')) {
                i = b.end(toks, i + 1);
            }
        } else if is_name_word(text, t) {
            let after_tag = i > part.start
                && matches!(word(text, &toks[i - 1]), b"struct" | b"union" | b"enum");
            // `TYPE (*name)(...)`: a word before a pointer declarator is the type.
            let before_pointer =
                toks.get(i + 1).is_some_and(|n| n.is(b'(')) && pointer_group(toks, b, i + 1);
            if !after_tag {
                if toks.get(i + 1).is_some_and(|n| n.is(b'(')) && i + 1 < part.end {
                    if !before_pointer {
                        called = Some(i);
                    }
                } else {
                    plain = Some(i);
                }
            }
        } else if t.is(b'(') {
            let after_word = i > part.start && is_name_word(text, &toks[i - 1]);
            let pointer = pointer_group(toks, b, i);
            if (!after_word || pointer) && declarator.is_none() {
                declarator = Some(i);
            }
            i = b.end(toks, i);
        } else if t.is(b'[') {
            i = b.end(toks, i);
        }
        i += 1;
    }
    plain
        .or_else(|| declarator.and_then(|o| param_name(text, toks, b, o + 1..b.end(toks, o))))
        .or(called)
}

/// How much a group looks like a parameter list: 3 when every part is a declaration
/// (`int a`, `char *`, `...`, `void`, or empty), 2 when some parts are a single word
/// (an unnamed `size_t`), 1 when all are single words or calls (a macro's argument such as
/// `malloc` or `nonnull(1)`, or K&R names), 0 when a part cannot be a parameter (a number, a
/// string).
pub fn params_score(text: &[u8], toks: &[Tok], b: &Brackets, open: usize, close: usize) -> u8 {
    let parts = parts(toks, b, open, close);
    if let [only] = parts.as_slice() {
        if only.len() == 1 && word(text, &toks[only.start]) == b"void" {
            return 3;
        }
    }
    let (mut decl, mut single) = (0, 0);
    for part in &parts {
        let mut words = 0;
        let mut shape = false;
        let mut bad = false;
        let mut i = part.start;
        while i < part.end {
            match toks[i].kind {
                Kind::Ident => words += 1,
                Kind::Punct(b'*' | b'.') => shape = true,
                Kind::Punct(b'(' | b'[') => {
                    shape = true;
                    i = b.end(toks, i);
                }
                Kind::Number | Kind::Literal if words == 0 => bad = true,
                _ => {}
            }
            i += 1;
        }
        // `nonnull(1)`, `format(printf, 1, 2)`: a word and its arguments, an attribute's.
        let call = words == 1
            && part.len() >= 3
            && toks[part.start].kind == Kind::Ident
            && toks[part.start + 1].is(b'(')
            && b.end(toks, part.start + 1) + 1 == part.end
            && !toks[part.start + 2].is(b'*');
        if bad || (words == 0 && !shape) {
            return 0;
        }
        if !call && (words >= 2 || shape) {
            decl += 1;
        } else {
            single += 1;
        }
    }
    match (decl, single) {
        (_, 0) => 3,
        (0, _) => 1,
        _ => 2,
    }
}
