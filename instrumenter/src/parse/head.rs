//! Reading the head of a function (`static int JEMALLOC_NOTHROW *foo(const char FAR *s, int n)`)
//! from its tokens, without knowing the macros in it.
//!
//! Only brackets and a few keywords carry meaning here: an identifier this module does not know is
//! taken for a macro (a qualifier, an annotation, a calling convention, an export or attribute
//! macro), which is what the compiler will see once the preprocessor has run. What is read: the
//! name and its parameter list (the first `(` group after the name, past the `)` of a macro or
//! parentheses around it: `BZ_API(name)(...)`, `(name)(...)`), each parameter's name (the last
//! identifier that is not a keyword or a macro call), `...`, the storage class and `inline`
//! keywords written in the head, whether it returns `void`, and whether it is an old-style (K&R)
//! definition. The rewrite copies the head's text, so the compiler sees the types as written.
//!
//! Brackets nest at most [`MAX_NESTING`] deep: deeper input is refused with a located error, so no
//! input can exhaust the stack.

use super::tokens::{Kind, Tok};
use std::ops::Range;

/// How deep `(`, `[` and `{` may nest in a head or a `.ic` item.
pub const MAX_NESTING: usize = 256;

/// A head that cannot be read: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadError {
    pub at: usize,
    pub message: String,
}

/// One parameter of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Its name; `None` for an unnamed parameter (legal in a declaration only).
    pub name: Option<String>,
    /// Byte offset of its first token.
    pub at: usize,
}

/// What a head says, as token indices and byte ranges of the text it was read from.
#[derive(Debug, Clone)]
pub struct Head {
    /// Token index of the name.
    pub name: usize,
    /// Token indices of the `(` and `)` of the parameter list.
    pub params_open: usize,
    pub params_close: usize,
    pub params: Vec<Param>,
    pub variadic: bool,
    pub returns_void: bool,
    /// Old-style definition: declarations between the `)` and the body.
    pub kr: bool,
    pub is_static: bool,
    pub inline_kw: Vec<Range<usize>>,
    /// End of the declarator: the last token of the head, or for K&R the `)` that ends the
    /// declarator (its parameter declarations follow).
    pub declarator_end: usize,
    /// A macro around the name (`PRIV(name)`, `BZ_API(name)`): byte ranges of its text before
    /// and after the name. It may paste the name into another (`_pcre2_##name`), so every use
    /// of the name in generated code goes through it.
    pub name_macro: Option<(Range<usize>, Range<usize>)>,
}

/// For each token, the index of the bracket that matches it (open ↔ close), if it is one.
pub struct Brackets(Vec<Option<usize>>);

impl Brackets {
    pub fn new(text: &[u8], toks: &[Tok]) -> Result<Brackets, HeadError> {
        let mut pair = vec![None; toks.len()];
        let mut stack: Vec<usize> = Vec::new();
        for (i, t) in toks.iter().enumerate() {
            let Kind::Punct(p) = t.kind else { continue };
            match p {
                b'(' | b'[' | b'{' => {
                    if stack.len() >= MAX_NESTING {
                        return Err(HeadError {
                            at: t.start,
                            message: format!("brackets nest deeper than {MAX_NESTING} levels"),
                        });
                    }
                    stack.push(i);
                }
                b')' | b']' | b'}' => {
                    let open = stack.pop().filter(|&o| {
                        let want = match p {
                            b')' => b'(',
                            b']' => b'[',
                            _ => b'{',
                        };
                        text[toks[o].start] == want
                    });
                    let Some(o) = open else {
                        return Err(HeadError {
                            at: t.start,
                            message: format!("`{}` without a matching opening bracket", p as char),
                        });
                    };
                    pair[o] = Some(i);
                    pair[i] = Some(o);
                }
                _ => {}
            }
        }
        if let Some(&o) = stack.last() {
            return Err(HeadError {
                at: toks[o].start,
                message: format!("this `{}` is never closed", text[toks[o].start] as char),
            });
        }
        Ok(Brackets(pair))
    }

    /// The close of the group opened at `i` (or `i` itself for any other token).
    pub fn end(&self, toks: &[Tok], i: usize) -> usize {
        match toks[i].kind {
            Kind::Punct(b'(' | b'[' | b'{') => self.0[i].unwrap_or(i),
            _ => i,
        }
    }
}

/// Words that are C (or GNU C) and never a function's or parameter's name.
fn is_keyword(w: &[u8]) -> bool {
    matches!(
        w,
        b"auto"
            | b"break"
            | b"case"
            | b"char"
            | b"const"
            | b"continue"
            | b"default"
            | b"do"
            | b"double"
            | b"else"
            | b"enum"
            | b"extern"
            | b"float"
            | b"for"
            | b"goto"
            | b"if"
            | b"inline"
            | b"int"
            | b"long"
            | b"register"
            | b"restrict"
            | b"return"
            | b"short"
            | b"signed"
            | b"sizeof"
            | b"static"
            | b"struct"
            | b"switch"
            | b"typedef"
            | b"union"
            | b"unsigned"
            | b"void"
            | b"volatile"
            | b"while"
            | b"_Bool"
            | b"_Complex"
            | b"_Imaginary"
            | b"_Atomic"
            | b"_Noreturn"
            | b"_Thread_local"
            | b"_Static_assert"
            | b"_Alignof"
            | b"_Generic"
            | b"bool"
            | b"__restrict"
            | b"__restrict__"
            | b"__const"
            | b"__volatile__"
            | b"__volatile"
            | b"__inline"
            | b"__inline__"
            | b"__signed__"
            | b"__signed"
            | b"__extension__"
            | b"__int128"
            | b"__thread"
            | b"_Float128"
            | b"__float128"
            | b"_Float16"
            | b"_Float32"
            | b"_Float64"
            | b"__complex__"
    ) || is_attribute(w)
}

/// Words followed by a parenthesized argument that is not a declarator.
fn is_attribute(w: &[u8]) -> bool {
    matches!(
        w,
        b"__attribute__"
            | b"__attribute"
            | b"__declspec"
            | b"__asm__"
            | b"__asm"
            | b"asm"
            | b"_Alignas"
            | b"alignas"
            | b"__typeof__"
            | b"__typeof"
            | b"typeof"
            | b"__alignof__"
            | b"_Pragma"
    )
}

fn word<'t>(text: &'t [u8], t: &Tok) -> &'t [u8] {
    &text[t.start..t.end]
}

fn is_name_word(text: &[u8], t: &Tok) -> bool {
    t.kind == Kind::Ident && !is_keyword(word(text, t))
}

/// Read the head in `toks` whose name is token `name`. `Ok(None)` when that token is not the
/// name of a function declarator (no parameter list follows it).
pub fn read(
    text: &[u8],
    toks: &[Tok],
    b: &Brackets,
    name: usize,
) -> Result<Option<Head>, HeadError> {
    // Groups still open at the name: a declarator's or a macro's parentheses around it.
    let mut open: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < name {
        if let Kind::Punct(b'(' | b'[' | b'{') = toks[i].kind {
            match b.0[i] {
                Some(c) if c < name => i = c,
                _ => open.push(i),
            }
        }
        i += 1;
    }
    if open.iter().any(|&o| !toks[o].is(b'(')) {
        return Ok(None);
    }
    // Only a declarator may surround the name: `*`, qualifiers and macros, no commas (a name
    // inside a macro's arguments, `GEN(x, name(i)->y)`, is not a head).
    let plain = |from: usize| {
        toks[from..name]
            .iter()
            .all(|t| t.is(b'*') || t.kind == Kind::Ident)
    };
    if open.iter().any(|&o| !plain(o + 1)) {
        return Ok(None);
    }
    let mut j = name + 1;
    let mut name_macro = None;
    while toks.get(j).is_some_and(|t| t.is(b')')) {
        let Some(o) = open.pop() else {
            return Ok(None);
        };
        if o > 0 && is_name_word(text, &toks[o - 1]) {
            name_macro = Some((
                toks[o - 1].start..toks[name].start,
                toks[name].end..toks[j].end,
            ));
        }
        j += 1;
    }
    if !toks.get(j).is_some_and(|t| t.is(b'(')) {
        return Ok(None);
    }
    let params_open = j;
    let params_close = b.end(toks, j);
    // Parentheses still open around the name (`(*f(int))(void)`): the head returns a pointer.
    let mut nested_pointer = open
        .iter()
        .any(|&o| toks[o + 1..name].iter().any(|t| t.is(b'*')));
    let mut k = params_close + 1;
    let mut declarator_end = toks[params_close].end;
    while !open.is_empty() && k < toks.len() {
        if toks[k].is(b')') {
            open.pop();
            declarator_end = toks[k].end;
        } else if toks[k].is(b'(') || toks[k].is(b'[') {
            nested_pointer = true;
            k = b.end(toks, k);
            declarator_end = toks[k].end;
        } else {
            return Ok(None);
        }
        k += 1;
    }
    let kr = toks[k..].iter().any(|t| t.is(b';'));
    if !kr {
        declarator_end = toks.last().map_or(declarator_end, |t| t.end);
    }
    // The specifiers: tokens before the name outside any group.
    let mut is_static = false;
    let mut inline_kw = Vec::new();
    let mut last_void: Option<usize> = None;
    let mut star_after_void = false;
    let mut i = 0;
    let outer = open.first().copied().unwrap_or(name);
    while i < outer.min(name) {
        let t = &toks[i];
        match (t.kind, word(text, t)) {
            (Kind::Punct(b'(' | b'[' | b'{'), _) => {
                let close = b.end(toks, i);
                // A macro that takes the return type: `LZMA_API(void)`, `LZMA_API(void *)`.
                if t.is(b'(') && i > 0 && is_name_word(text, &toks[i - 1]) {
                    for inner in &toks[i + 1..close] {
                        if inner.kind == Kind::Ident && word(text, inner) == b"void" {
                            last_void = Some(i);
                            star_after_void = false;
                        } else if inner.is(b'*') {
                            star_after_void = true;
                        }
                    }
                }
                i = close;
            }
            (Kind::Punct(b'*'), _) => star_after_void = true,
            (Kind::Ident, b"static") => is_static = true,
            (Kind::Ident, b"inline" | b"__inline" | b"__inline__") => {
                inline_kw.push(t.start..t.end)
            }
            (Kind::Ident, b"void") => {
                last_void = Some(i);
                star_after_void = false;
            }
            _ => {}
        }
        i += 1;
    }
    let (params, variadic) = parameters(text, toks, b, params_open, params_close);
    Ok(Some(Head {
        name,
        params_open,
        params_close,
        params,
        variadic,
        returns_void: last_void.is_some() && !star_after_void && !nested_pointer,
        kr,
        is_static,
        inline_kw,
        declarator_end,
        name_macro,
    }))
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

fn parameters(
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
fn params_score(text: &[u8], toks: &[Tok], b: &Brackets, open: usize, close: usize) -> u8 {
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

/// The name of the function a head declares, when it is not known in advance (`.ic`
/// prototypes, `--skeleton`): among identifiers followed by a parameter list, the one whose list
/// looks most like parameters; a macro that takes the name (`BZ_API(name)(...)`) yields the
/// name; on a tie, the last.
pub fn find_name(text: &[u8], toks: &[Tok], b: &Brackets) -> Result<Option<Head>, HeadError> {
    let mut best: Option<(u8, Head)> = None;
    for (i, t) in toks.iter().enumerate() {
        let declarator = toks.get(i + 1).is_some_and(|n| n.is(b'(') || n.is(b')'));
        if !declarator || !is_name_word(text, t) {
            continue;
        }
        let Some(head) = read(text, toks, b, i)? else {
            continue;
        };
        if toks.get(head.params_close + 1).is_some_and(|n| n.is(b'(')) {
            continue; // a macro around the name: the name inside wins.
        }
        let score = params_score(text, toks, b, head.params_open, head.params_close);
        if score == 0 {
            continue;
        }
        // On a tie the later one wins: decorations come before the name (a definition may not
        // have attributes after its declarator).
        if best.as_ref().is_none_or(|(s, _)| score >= *s) {
            best = Some((score, head));
        }
    }
    Ok(best.map(|(_, h)| h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::tokens::lex;

    fn name_of(code: &str) -> (String, usize, bool, bool) {
        let text = code.as_bytes();
        let toks = lex(text, 0..text.len()).unwrap();
        let b = Brackets::new(text, &toks).unwrap();
        let h = find_name(text, &toks, &b).unwrap().expect(code);
        (
            String::from_utf8_lossy(word(text, &toks[h.name])).into_owned(),
            h.params.len(),
            h.returns_void,
            h.variadic,
        )
    }

    #[test]
    fn finds_names_through_macros() {
        for (code, name, n, void) in [
            ("JEMALLOC_EXPORT JEMALLOC_ALLOCATOR void JEMALLOC_NOTHROW *je_malloc(size_t size) JEMALLOC_CXX_THROW JEMALLOC_ATTR(malloc)", "je_malloc", 1, false),
            ("int JEMALLOC_NOTHROW je_mallctl(const char *name, void *oldp)", "je_mallctl", 2, false),
            ("JEMALLOC_EXPORT void JEMALLOC_NOTHROW je_malloc_stats_print(void (*write_cb)(void *, const char *), void *o)", "je_malloc_stats_print", 2, true),
            ("int BZ_API(BZ2_bzCompressInit)(bz_stream *strm, int blockSize100k)", "BZ2_bzCompressInit", 2, false),
            ("uLong ZEXPORT adler32(uLong adler, const Bytef FAR *buf, uInt len)", "adler32", 3, false),
            ("JEMALLOC_ATTR(malloc) void *f(size_t)", "f", 1, false),
            ("JEMALLOC_EXPORT int JEMALLOC_NOTHROW JEMALLOC_ATTR(nonnull(1)) je_posix_memalign(void **memptr, size_t alignment, size_t size)", "je_posix_memalign", 3, false),
            ("static JEMALLOC_ATTR(format(printf, 1, 2)) void f(const char *fmt)", "f", 1, true),
            ("char *(*handler(int x))(void)", "handler", 1, false),
            ("void (*signal(int sig, void (*func)(int)))(int)", "signal", 2, false),
            ("static void (name)(int a)", "name", 1, true),
            ("extern LZMA_API(void) lzma_end(lzma_stream *strm)", "lzma_end", 1, true),
            ("extern LZMA_API(void *) lzma_alloc(size_t size)", "lzma_alloc", 1, false),
            ("extern LZMA_API(const char *) lzma_version_string(void)", "lzma_version_string", 0, false),
            ("int kr(a, b)", "kr", 2, false),
            ("int v(int a, ...)", "v", 1, false),
            ("void nothing(void)", "nothing", 0, true),
        ] {
            let got = name_of(code);
            assert_eq!((got.0.as_str(), got.1, got.2), (name, n, void), "{code}");
        }
        assert!(name_of("int v(int a, ...)").3);
    }

    #[test]
    fn parameter_names() {
        let code = "int f(const unsigned char FAR *buf, int (*cb)(int), int a[N], struct s s, int x __attribute__((unused)), int compar(const void *, const void *), PCRE2_SIZE (*callout)(PCRE2_SPTR, void *), CURL_THREAD_RETURN_T(CURL_STDCALL *func)(void *))";
        let text = code.as_bytes();
        let toks = lex(text, 0..text.len()).unwrap();
        let b = Brackets::new(text, &toks).unwrap();
        let h = find_name(text, &toks, &b).unwrap().unwrap();
        let names: Vec<_> = h.params.iter().map(|p| p.name.clone().unwrap()).collect();
        assert_eq!(
            names,
            ["buf", "cb", "a", "s", "x", "compar", "callout", "func"]
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let code = format!("int f{}int a{}", "(".repeat(10_000), ")".repeat(10_000));
        let toks = lex(code.as_bytes(), 0..code.len()).unwrap();
        let e = Brackets::new(code.as_bytes(), &toks).err().unwrap();
        assert!(e.message.contains("deeper than"), "{e:?}");
    }
}
