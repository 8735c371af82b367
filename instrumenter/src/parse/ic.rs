//! The `.ic` parser: the 2008 Invite format, unchanged, plus the extensions in
//! docs/ic-format.md (int tests, explicit phase markers, timeouts, `#` lines, helper code,
//! comments anywhere).
//!
//! The file is lexed into C tokens, then split into top-level items: a *block header*
//! (`PROTOTYPE pre|post|both [outermost]`), a *test* (`void|int NAME(PARAMS) [pre|post] PROB [timeout=T] {...}`)
//! or *code* (a `#` line, a declaration, a helper function) that is copied through as written.

use super::brackets::Brackets;
use super::head;
use super::tokens::{self, Kind, Tok};
use super::Source;
use crate::error::Diagnostic;
use std::ops::Range;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Pre,
    Post,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    Pre,
    Post,
    Both,
}

/// `int account_withdraw(struct account *a, int amount) both`
#[derive(Debug, Clone)]
pub struct Block {
    pub kind: BlockKind,
    /// The prototype's text, without the keyword.
    pub proto: Range<usize>,
    pub name: String,
    pub name_at: usize,
    pub params: usize,
    pub variadic: bool,
    pub returns_void: bool,
    /// `both outermost`: the block's tests sample only calls made while the same thread is not
    /// already inside the function (a recursive or re-entrant call is never tested).
    pub outermost: bool,
}

/// `void check_funds(struct account *a, int amount) .2 { ... }`
#[derive(Debug, Clone)]
pub struct Test {
    /// Index of its block in [`IcFile::items`].
    pub block: usize,
    pub name: String,
    pub name_at: usize,
    /// First byte of the header.
    pub start: usize,
    /// One past the `)` that closes the parameters.
    pub params_end: usize,
    /// From `{` to one past `}`.
    pub body: Range<usize>,
    pub returns_int: bool,
    pub is_static: bool,
    pub params: usize,
    pub marker: Option<(Phase, usize)>,
    pub probability: f64,
    pub timeout_ms: u32,
}

#[derive(Debug, Clone)]
pub enum Item {
    /// A `#` line, a declaration or a helper function, copied as written.
    Code(Range<usize>),
    Block(Block),
    Test(Test),
}

#[derive(Debug, Clone, Default)]
pub struct IcFile {
    pub items: Vec<Item>,
}

impl IcFile {
    pub fn blocks(&self) -> impl Iterator<Item = (usize, &Block)> {
        self.items
            .iter()
            .enumerate()
            .filter_map(|(i, it)| match it {
                Item::Block(b) => Some((i, b)),
                _ => None,
            })
    }

    pub fn tests(&self) -> impl Iterator<Item = &Test> {
        self.items.iter().filter_map(|it| match it {
            Item::Test(t) => Some(t),
            _ => None,
        })
    }
}

fn lex(src: &Source) -> Result<Vec<Tok>, Diagnostic> {
    tokens::lex(&src.text, 0..src.text.len()).map_err(|at| src.error(at, "unterminated comment"))
}

pub fn parse(src: &Source) -> Result<IcFile, Diagnostic> {
    src.check_text(".ic")?;
    let toks = lex(src)?;
    let text = &src.text;
    let word = |t: &Tok| &text[t.start..t.end];
    let is = |t: &Tok, p: u8| t.kind == Kind::Punct(p);
    let mut file = IcFile::default();
    let mut block: Option<usize> = None;
    let mut i = 0;
    while i < toks.len() {
        if toks[i].kind == Kind::Directive {
            file.items.push(Item::Code(toks[i].start..toks[i].end));
            i += 1;
            continue;
        }
        let first = i;
        let mut depth = 0i32;
        let mut last_close: Option<usize> = None;
        loop {
            let Some(t) = toks.get(i) else {
                return Err(src.error(
                    toks[first].start,
                    "this item never ends (expected `;`, `{ ... }` or `pre`/`post`/`both`)",
                ));
            };
            match t.kind {
                Kind::Punct(b'(' | b'[') => depth += 1,
                Kind::Punct(c @ (b')' | b']')) => {
                    depth -= 1;
                    if depth < 0 {
                        return Err(src.error(
                            t.start,
                            format!("`{}` without a matching opening bracket", c as char),
                        ));
                    }
                    if depth == 0 && c == b')' {
                        last_close = Some(i);
                    }
                }
                Kind::Punct(b';') if depth == 0 => {
                    file.items.push(Item::Code(toks[first].start..t.end));
                    i += 1;
                    break;
                }
                Kind::Ident
                    if depth == 0
                        && last_close == Some(i.wrapping_sub(1))
                        && matches!(word(t), b"pre" | b"post" | b"both")
                        && !toks
                            .get(i + 1)
                            .is_some_and(|n| n.kind == Kind::Number || is(n, b'{')) =>
                {
                    let kind = match word(t) {
                        b"pre" => BlockKind::Pre,
                        b"post" => BlockKind::Post,
                        _ => BlockKind::Both,
                    };
                    let mut header = parse_prototype(src, &toks[first..i], kind)?;
                    i += 1;
                    if toks
                        .get(i)
                        .is_some_and(|t| t.kind == Kind::Ident && word(t) == b"outermost")
                    {
                        header.outermost = true;
                        i += 1;
                    }
                    block = Some(file.items.len());
                    file.items.push(Item::Block(header));
                    break;
                }
                Kind::Punct(b'{') if depth == 0 => {
                    let close = matching_brace(&toks, i)
                        .ok_or_else(|| src.error(t.start, "this `{` is never closed"))?;
                    let clause = last_close.map(|c| &toks[c + 1..i]).unwrap_or(&[]);
                    let function_like =
                        last_close.is_some() && !clause.first().is_some_and(|c| is(c, b'='));
                    if function_like && clause.is_empty() {
                        // A function definition: helper code, unless it looks like a test
                        // that lost its probability.
                        let is_static = toks[first..i].iter().any(|t| word(t) == b"static");
                        if block.is_some() && !is_static {
                            let (name, _) =
                                head_name(&toks[first..i], text).unwrap_or((&toks[first], 0));
                            return Err(src.error(
                                name.start,
                                format!(
                                    "test `{}` has no probability (write one such as .5 after `)`; helper functions in a .ic must be `static`)",
                                    String::from_utf8_lossy(word(name))
                                ),
                            ));
                        }
                        file.items
                            .push(Item::Code(toks[first].start..toks[close].end));
                        i = close + 1;
                        break;
                    }
                    if function_like {
                        let Some(b) = block else {
                            return Err(src.error(
                                toks[first].start,
                                "a test before any block header (`PROTOTYPE pre|post|both`)",
                            ));
                        };
                        let c = last_close.expect("function_like");
                        let test = parse_test(
                            src,
                            &toks[first..=c],
                            clause,
                            (toks[i].start, toks[close].end),
                            b,
                        )?;
                        file.items.push(Item::Test(test));
                        i = close + 1;
                        break;
                    }
                    // struct/union/enum body or an initializer: the item goes on to its `;`.
                    i = close;
                }
                _ => {}
            }
            i += 1;
        }
    }
    if block.is_none() {
        return Err(src.error(
            0,
            "no block in this .ic file: expected a line such as `int foo(int x) pre`",
        ));
    }
    Ok(file)
}

fn matching_brace(toks: &[Tok], open: usize) -> Option<usize> {
    let mut depth = 0;
    for (j, t) in toks.iter().enumerate().skip(open) {
        match t.kind {
            Kind::Punct(b'{') => depth += 1,
            Kind::Punct(b'}') => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
    }
    None
}

/// The name of `TYPE NAME(...)`: the identifier before the first top-level `(`, and the index of
/// that `(`.
fn head_name<'t>(head: &'t [Tok], text: &[u8]) -> Option<(&'t Tok, usize)> {
    let open = head.iter().position(|t| t.kind == Kind::Punct(b'('))?;
    let name = head.get(open.checked_sub(1)?)?;
    (name.kind == Kind::Ident && !matches!(&text[name.start..name.end], b"void" | b"int"))
        .then_some((name, open))
}

fn parse_prototype(src: &Source, toks: &[Tok], kind: BlockKind) -> Result<Block, Diagnostic> {
    let text = &src.text;
    let range = toks[0].start..toks[toks.len() - 1].end;
    let malformed = |at: usize, why: &str| {
        src.error(
            at,
            format!(
                "malformed prototype `{}`: {why}",
                src.str(range.clone())
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        )
    };
    let b = Brackets::new(text, toks).map_err(|e| malformed(e.at, &e.message))?;
    let (_, h) = head::find_name(text, toks, &b)
        .map_err(|e| malformed(e.at, &e.message))?
        .ok_or_else(|| {
            malformed(
                range.start,
                "expected a function declarator such as `int foo(int x)`",
            )
        })?;
    if h.kr {
        return Err(malformed(range.start, "expected one function declaration"));
    }
    Ok(Block {
        kind,
        proto: range.clone(),
        name: src.str(h.name.clone()),
        name_at: h.name.start,
        params: h.params.len(),
        variadic: h.variadic,
        returns_void: h.returns_void,
        outermost: false,
    })
}

fn parse_test(
    src: &Source,
    head: &[Tok],
    clause: &[Tok],
    body: (usize, usize),
    block: usize,
) -> Result<Test, Diagnostic> {
    let text = &src.text;
    let word = |t: &Tok| &text[t.start..t.end];
    let show = |t: &Tok| String::from_utf8_lossy(word(t)).into_owned();
    let (name, open) = head_name(head, text).ok_or_else(|| {
        src.error(
            head[0].start,
            "expected a test header such as `void check(int x) .5`",
        )
    })?;
    let mut is_static = false;
    let mut returns = Vec::new();
    for t in &head[..open - 1] {
        match word(t) {
            b"static" => is_static = true,
            _ => returns.push(t),
        }
    }
    let returns_int = match returns.as_slice() {
        [t] if word(t) == b"void" => false,
        [t] if word(t) == b"int" => true,
        _ => {
            return Err(src.error(
                head[0].start,
                format!("test `{}` must return `void` or `int`", show(name)),
            ));
        }
    };
    // Parameters: count top-level commas; `()` and `(void)` are none.
    let inner = &head[open + 1..head.len() - 1];
    if inner
        .windows(3)
        .any(|w| w.iter().all(|t| t.kind == Kind::Punct(b'.')))
    {
        return Err(src.error(
            name.start,
            format!(
                "test `{}` is variadic; a test takes the function's parameters",
                show(name)
            ),
        ));
    }
    let mut depth = 0;
    let mut params = usize::from(!inner.is_empty());
    for t in inner {
        match t.kind {
            Kind::Punct(b'(' | b'[' | b'{') => depth += 1,
            Kind::Punct(b')' | b']' | b'}') => depth -= 1,
            Kind::Punct(b',') if depth == 0 => params += 1,
            _ => {}
        }
    }
    if inner.len() == 1 && word(&inner[0]) == b"void" {
        params = 0;
    }
    // The clause: [pre|post] PROBABILITY [timeout[=]DURATION]
    let mut rest = clause;
    let mut marker = None;
    if let Some(t) = rest.first().filter(|t| matches!(word(t), b"pre" | b"post")) {
        marker = Some((
            if word(t) == b"pre" {
                Phase::Pre
            } else {
                Phase::Post
            },
            t.start,
        ));
        rest = &rest[1..];
    }
    let after = head[head.len() - 1].end;
    let Some(p) = rest.first() else {
        return Err(src.error(
            after,
            format!(
                "test `{}` has no probability (a number from 0 to 1 such as .5)",
                show(name)
            ),
        ));
    };
    let probability = probability(word(p)).map_err(|why| {
        src.error(
            p.start,
            format!("malformed probability `{}`: {why}", show(p)),
        )
    })?;
    rest = &rest[1..];
    let mut timeout_ms = 0;
    if let Some(t) = rest.first().filter(|t| word(t) == b"timeout") {
        rest = &rest[1..];
        if rest.first().is_some_and(|t| t.kind == Kind::Punct(b'=')) {
            rest = &rest[1..];
        }
        let d = rest
            .first()
            .ok_or_else(|| src.error(t.start, "`timeout` needs a duration such as 500ms or 2s"))?;
        timeout_ms = duration_ms(word(d))
            .map_err(|why| src.error(d.start, format!("malformed timeout `{}`: {why}", show(d))))?;
        rest = &rest[1..];
    }
    if let Some(t) = rest.first() {
        return Err(src.error(
            t.start,
            format!(
                "unexpected `{}` in the header of test `{}` (expected `{{`)",
                show(t),
                show(name)
            ),
        ));
    }
    Ok(Test {
        block,
        name: show(name),
        name_at: name.start,
        start: head[0].start,
        params_end: after,
        body: body.0..body.1,
        returns_int,
        is_static,
        params,
        marker,
        probability,
        timeout_ms,
    })
}

/// `.1`, `0.5`, `1.0`, `1`, `1e-4`: a decimal number from 0 to 1.
pub fn probability(word: &[u8]) -> Result<f64, String> {
    let s = std::str::from_utf8(word).map_err(|_| "not a number".to_string())?;
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(e) => (&s[..e], Some(&s[e + 1..])),
        None => (s, None),
    };
    let digits_ok = !mantissa.is_empty()
        && mantissa.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && mantissa.bytes().filter(|&b| b == b'.').count() <= 1
        && mantissa.bytes().any(|b| b.is_ascii_digit());
    let exp_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    if !digits_ok || !exp_ok {
        return Err("expected a number from 0 to 1 such as .5 or 1.0".into());
    }
    let v: f64 = s
        .parse()
        .map_err(|_| "expected a number from 0 to 1 such as .5 or 1.0".to_string())?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("{v} is not between 0 and 1"));
    }
    Ok(v)
}

/// `500ms`, `2s`, `500` (milliseconds).
fn duration_ms(word: &[u8]) -> Result<u32, String> {
    let s = std::str::from_utf8(word).map_err(|_| "not a duration".to_string())?;
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000)
    } else {
        (s, 1)
    };
    let v: u32 = num
        .parse()
        .map_err(|_| "expected a duration such as 500ms or 2s".to_string())?;
    let ms = v.checked_mul(scale).ok_or("too long")?;
    if ms == 0 {
        return Err("a timeout must be at least 1ms".into());
    }
    Ok(ms)
}
