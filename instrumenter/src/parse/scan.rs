//! One lexical pass over the whole `.c` file: where could the functions named in the `.ic` be
//! defined?
//!
//! It skips comments, string and character literals and preprocessor lines, counts braces, and
//! reports each top-level body ([`Body`], for `--skeleton`) and each place where a wanted name
//! appears outside any brace pair followed by `(` or `)` (a declarator: `foo(`, `(foo)(`,
//! `MACRO(foo)(`) and later reaches a `{`. The region from the end of the previous top-level
//! item to the matching `}` is a [`Candidate`]; [`super::c`] reads only the heads of those
//! regions. Along the way it notes what the plan checks names against: top-level uses of the
//! `.ic`'s names, `#define`s and `#undef`s, and the marker of an already instrumented file.
//!
//! Conditional compilation: like ctags, each `#elif`/`#else` branch restarts at the brace (and
//! parenthesis) depth of its `#if`, so definitions whose heads differ between branches do not
//! unbalance the count; a body whose head had such branches is marked ([`Body::split_head`]).

use super::fx::{FastMap, FastSet, Names};
use super::is_ident_byte;
use super::is_ident_start;
use super::lexical::{
    body_stop, defined_name, directive, find, line_comment_end, literal_end, number_end,
};

/// The comment that starts the test section of every output of the precompiler.
pub const MARKER: &[u8] = b"/* ---- in vivo tests (invite-precompile) ---- */";

/// A region of the file that may hold a definition of a wanted function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Offset of the wanted name.
    pub name_at: usize,
    /// Start of the top-level item that contains the name.
    pub item_start: usize,
    /// The `{` that opens the body.
    pub body_start: usize,
    /// One past the `}` that closes the item's body.
    pub item_end: usize,
    /// Inside `#if`/`#ifdef`/`#ifndef`.
    pub in_conditional: bool,
    /// The head has `#if` branches of its own that share one body.
    pub split_head: bool,
}

/// What the pass found: candidates, and the first structural problem (unbalanced braces, an
/// unterminated comment), which explains a function that was not found.
#[derive(Debug, Default)]
pub struct Scan {
    pub candidates: Vec<Candidate>,
    /// Every top-level item with a function body: start, `{`, one past `}`, in `#if`.
    pub bodies: Vec<Body>,
    /// First top-level (outside braces and parentheses, or `#define`d) use of each name of the
    /// second set given to [`scan`]: the names a `.ic` must not reuse.
    pub top_level: FastMap<Vec<u8>, usize>,
    /// Function-like macros `#define`d in the file whose replacement holds `{` or `;`: a call
    /// of one at the top level is an item of its own (`ZSTD_GEN_DFAST_FN(noDict, 4)`).
    pub item_macros: FastSet<Vec<u8>>,
    /// Where the test section of an instrumented file starts: the input is an output.
    pub instrumented_at: Option<usize>,
    /// Where each `#undef`ed name is undefined.
    pub undefs: FastMap<Vec<u8>, Vec<usize>>,
    /// Where each `#define`d name is defined.
    pub defines: FastMap<Vec<u8>, Vec<usize>>,
    pub problem: Option<(usize, String)>,
}

/// A top-level item that ends in a function body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    pub item_start: usize,
    pub body_start: usize,
    pub item_end: usize,
    pub in_conditional: bool,
    pub split_head: bool,
}

struct Pending {
    name_at: usize,
    item_start: usize,
    in_conditional: bool,
    semicolons: u32,
}

/// K&R definitions put parameter declarations (`int a;`) between `)` and `{`; allow this many.
const MAX_KR_DECLARATIONS: u32 = 32;

pub fn scan(text: &[u8], names: &Names<'_>, watched: &Names<'_>) -> Scan {
    let n = text.len();
    let mut out = Scan::default();
    let mut pending: Vec<Pending> = Vec::new();
    let mut open: Vec<Pending> = Vec::new();
    let mut depth: i64 = 0;
    let mut paren: i64 = 0;
    let mut last_boundary = 0usize;
    let mut prev: u8 = b';';
    let mut outer_open_at = 0usize;
    let mut outer_is_body = false;
    let mut outer_in_conditional = false;
    // Where the item with the last top-level `(` started, and where the current body's item
    // did (for K&R, before its parameter declarations).
    let mut decl_start = 0usize;
    let mut outer_item_start = 0usize;
    let mut split_head = false;
    // Within the current top-level item: the last `)` outside attribute parentheses, and the last
    // `struct`/`union`/`enum` (a `{` after an identifier is a body only if a `)` came later).
    let mut last_rparen: Option<usize> = None;
    let mut last_tag: Option<usize> = None;
    let mut attribute_paren: Option<i64> = None;
    // An attribute at the top level since the last boundary: a directive after it does not end
    // the item (`__attribute__((target("sse4.1")))` under `#if`, then the head after `#endif`).
    let mut item_attribute = false;
    // The brace and parenthesis depths at each open `#if`.
    let mut conditionals: Vec<(i64, i64)> = Vec::new();
    let mut line_start = true;
    let mut i = 0usize;

    let problem = |out: &mut Scan, at: usize, msg: &str| {
        if out.problem.is_none() {
            out.problem = Some((at, msg.to_string()));
        }
    };

    while i < n {
        if depth > 0 {
            // Inside a body only braces, literals, comments and directives matter: skip the
            // rest without the full dispatch below (most of a C file is bodies).
            let run = i;
            i = body_stop(text, i);
            // A `#` still starts a directive if only blanks came since the last newline.
            line_start = text[run..i]
                .iter()
                .rev()
                .find(|&&b| b == b'\n' || b > b' ')
                .map_or(line_start, |&b| b == b'\n');
            if i >= n {
                break;
            }
        }
        let b = text[i];
        match b {
            b'\n' => {
                line_start = true;
                i += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' | 0x0b | 0x0c => {
                i += 1;
                continue;
            }
            b'\\' if text.get(i + 1) == Some(&b'\n') => {
                i += 2;
                continue;
            }
            b'#' if line_start => {
                let (end, keyword) = directive(text, i);
                match keyword {
                    b"if" | b"ifdef" | b"ifndef" => conditionals.push((depth, paren)),
                    b"elif" | b"else" | b"elifdef" | b"elifndef" => {
                        if let Some(&(d, p)) = conditionals.last() {
                            if d == 0 && depth > 0 {
                                // `#if` heads sharing one body: the branch's `{` is undone.
                                split_head = true;
                            }
                            depth = d;
                            if depth == 0 {
                                paren = p;
                            }
                        }
                    }
                    b"endif" => {
                        conditionals.pop();
                    }
                    b"undef" => {
                        let (at, name) = defined_name(text, i, end);
                        out.undefs.entry(name.to_vec()).or_default().push(at);
                    }
                    b"define" => {
                        let (at, name) = defined_name(text, i, end);
                        out.defines.entry(name.to_vec()).or_default().push(at);
                        if watched.contains(name) {
                            out.top_level.entry(name.to_vec()).or_insert(at);
                        }
                        let params = at + name.len();
                        if text.get(params) == Some(&b'(')
                            && text[params..end].iter().any(|&b| b == b'{' || b == b';')
                        {
                            out.item_macros.insert(name.to_vec());
                        }
                    }
                    _ => {}
                }
                if depth == 0 && paren == 0 && !item_attribute {
                    last_boundary = end;
                    prev = b';';
                    last_rparen = None;
                    last_tag = None;
                }
                i = end;
                continue;
            }
            b'/' if text.get(i + 1) == Some(&b'/') => {
                i = line_comment_end(text, i);
                continue;
            }
            b'/' if text.get(i + 1) == Some(&b'*') => {
                if line_start && out.instrumented_at.is_none() && text[i..].starts_with(MARKER) {
                    out.instrumented_at = Some(i);
                }
                match find(text, i + 2, b"*/") {
                    Some(e) => i = e + 2,
                    None => {
                        problem(&mut out, i, "unterminated comment");
                        break;
                    }
                }
                continue;
            }
            _ => {}
        }
        line_start = false;
        match b {
            b'"' | b'\'' => {
                i = literal_end(text, i);
                if depth == 0 {
                    prev = b'"';
                }
            }
            b'{' => {
                if depth == 0 {
                    outer_open_at = i;
                    outer_in_conditional = !conditionals.is_empty();
                    outer_item_start = if prev == b';' {
                        decl_start
                    } else {
                        last_boundary
                    };
                    outer_is_body = matches!(prev, b')' | b';')
                        || (prev == b'a'
                            && last_rparen.is_some_and(|r| last_tag.is_none_or(|t| r > t)));
                    open.append(&mut pending);
                }
                depth += 1;
                i += 1;
            }
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    if outer_is_body {
                        out.bodies.push(Body {
                            item_start: outer_item_start,
                            body_start: outer_open_at,
                            item_end: i + 1,
                            in_conditional: outer_in_conditional,
                            split_head,
                        });
                        last_boundary = i + 1;
                        last_rparen = None;
                        last_tag = None;
                        item_attribute = false;
                    }
                    prev = b'}';
                    for p in open.drain(..) {
                        out.candidates.push(Candidate {
                            name_at: p.name_at,
                            item_start: p.item_start,
                            body_start: outer_open_at,
                            item_end: i + 1,
                            in_conditional: p.in_conditional,
                            split_head,
                        });
                    }
                    split_head = false;
                } else if depth < 0 {
                    problem(&mut out, i, "`}` without a matching `{`");
                    depth = 0;
                }
                i += 1;
            }
            _ if depth > 0 => {
                // Inside a body: only braces, comments, literals and directives matter.
                if is_ident_start(b) || b.is_ascii_digit() {
                    i += 1;
                    while i < n && is_ident_byte(text[i]) {
                        i += 1;
                    }
                } else {
                    i += 1;
                }
            }
            b'(' => {
                if paren == 0 {
                    decl_start = last_boundary;
                }
                paren += 1;
                prev = b'(';
                i += 1;
            }
            b')' => {
                paren = (paren - 1).max(0);
                if attribute_paren.is_some_and(|p| paren <= p) {
                    attribute_paren = None;
                } else if attribute_paren.is_none() {
                    last_rparen = Some(i);
                }
                prev = b')';
                i += 1;
            }
            b';' => {
                if paren == 0 {
                    last_boundary = i + 1;
                    last_rparen = None;
                    last_tag = None;
                    item_attribute = false;
                    let after_paren = prev == b')';
                    pending.retain_mut(|p| {
                        p.semicolons += 1;
                        !after_paren && p.semicolons <= MAX_KR_DECLARATIONS
                    });
                }
                prev = b';';
                i += 1;
            }
            b'=' if paren == 0 => {
                pending.clear();
                prev = b'=';
                i += 1;
            }
            _ if is_ident_start(b) => {
                let start = i;
                while i < n && is_ident_byte(text[i]) {
                    i += 1;
                }
                let word = &text[start..i];
                match word {
                    b"struct" | b"union" | b"enum" => last_tag = Some(start),
                    b"__attribute__" | b"__attribute" | b"__declspec" | b"__asm__" | b"__asm"
                        if attribute_paren.is_none() =>
                    {
                        attribute_paren = Some(paren);
                        item_attribute |= paren == 0;
                    }
                    _ => {}
                }
                if paren == 0 && !watched.is_empty() && watched.contains(word) {
                    out.top_level.entry(word.to_vec()).or_insert(start);
                }
                if names.contains(word) {
                    let mut k = i;
                    while k < n && text[k].is_ascii_whitespace() {
                        k += 1;
                    }
                    if k < n && (text[k] == b'(' || text[k] == b')') {
                        pending.push(Pending {
                            name_at: start,
                            item_start: last_boundary,
                            in_conditional: !conditionals.is_empty(),
                            semicolons: 0,
                        });
                    }
                }
                prev = b'a';
            }
            _ if b.is_ascii_digit() => {
                i = number_end(text, i);
                prev = b'0';
            }
            _ => {
                prev = b;
                i += 1;
            }
        }
    }
    if depth > 0 {
        problem(&mut out, outer_open_at, "this `{` is never closed");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&'static str]) -> Names<'static> {
        v.iter().map(|s| s.as_bytes()).collect()
    }

    #[test]
    fn finds_definitions_not_declarations_or_calls() {
        let src =
            b"int foo(int);\nint x = foo(1);\n/* foo( */\nint foo(int a)\n{ return foo(a); }\n";
        let s = scan(src, &names(&["foo"]), &names(&[]));
        assert_eq!(s.candidates.len(), 1);
        let c = &s.candidates[0];
        assert_eq!(c.item_start, 29);
        assert!(src[c.item_start..c.item_end].ends_with(b"int foo(int a)\n{ return foo(a); }"));
        assert!(s.problem.is_none());
    }

    #[test]
    fn macro_around_name_kr_and_conditionals() {
        let src = b"#ifdef X\nint BZ_API(foo)(int a) { return a; }\n#endif\nint kr(a) int a; { return a; }\n";
        let s = scan(src, &names(&["foo", "kr"]), &names(&[]));
        assert_eq!(s.candidates.len(), 2);
        assert!(s.candidates[0].in_conditional);
        assert!(!s.candidates[1].in_conditional);
    }

    #[test]
    fn reports_unclosed_brace() {
        let s = scan(b"int f(void) {\n", &names(&["f"]), &names(&[]));
        assert!(s.candidates.is_empty());
        assert_eq!(s.problem.unwrap().0, 12);
    }
}
