//! Reading the head of a function (`static int JEMALLOC_NOTHROW *foo(const char FAR *s, int n)`)
//! from its tokens, without knowing the macros in it.
//!
//! Only brackets and a few keywords ([`super::words`]) carry meaning here: an identifier this
//! module does not know is taken for a macro (a qualifier, an annotation, a calling convention,
//! an export or attribute macro), which is what the compiler will see once the preprocessor has
//! run. What is read: the name and its parameter list (the first `(` group after the name, past
//! the `)` of a macro or parentheses around it: `BZ_API(name)(...)`, `(name)(...)`), each
//! parameter's name ([`super::params`]), `...`, the storage class and `inline` keywords written
//! in the head, whether it returns `void`, and whether it is an old-style (K&R) definition. The
//! rewrite copies the head's text, so the compiler sees the types as written.

use super::brackets::Brackets;
use super::params::{parameters, params_score, Param};
use super::tokens::{Kind, Tok};
use super::words::{is_keyword, is_name_word, word};
use std::ops::Range;

/// A head that cannot be read: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadError {
    pub at: usize,
    pub message: String,
}

/// What a head says, as byte ranges of the text it was read from: of a definition in a `.c`
/// file ([`super::c::FunctionDef`]) or of a `.ic` prototype.
#[derive(Debug, Clone)]
pub struct Head {
    /// The name (renamed `_name` in the rewrite).
    pub name: Range<usize>,
    /// The parameter list, `(` to one past `)`.
    pub params_range: Range<usize>,
    pub params: Vec<Param>,
    pub variadic: bool,
    pub returns_void: bool,
    /// Old-style (K&R) definition: `int f(a) int a; { ... }`, declarations between the `)` and
    /// the body.
    pub kr: bool,
    pub is_static: bool,
    /// The `inline` keywords written in the head.
    pub inline_kw: Vec<Range<usize>>,
    /// End of the declarator: the end of the head's last token, or for K&R the `)` that ends the
    /// declarator (its parameter declarations follow).
    pub declarator_end: usize,
    /// A macro around the name (`PRIV(name)`, `BZ_API(name)`): byte ranges of its text before
    /// and after the name. It may paste the name into another (`_pcre2_##name`), so every use
    /// of the name in generated code goes through it.
    pub name_macro: Option<(Range<usize>, Range<usize>)>,
}

/// Read the head in `toks` whose name is token `name`. `Ok(None)` when that token is not the
/// name of a function declarator (no parameter list follows it).
pub fn read(
    text: &[u8],
    toks: &[Tok],
    b: &Brackets,
    name: usize,
) -> Result<Option<Head>, HeadError> {
    Ok(declarator(text, toks, b, name)?.map(|d| d.head))
}

/// A head, and the tokens of its parameter list's `(` and `)`.
struct Declarator {
    head: Head,
    params_open: usize,
    params_close: usize,
}

fn declarator(
    text: &[u8],
    toks: &[Tok],
    b: &Brackets,
    name: usize,
) -> Result<Option<Declarator>, HeadError> {
    // Groups still open at the name: a declarator's or a macro's parentheses around it.
    let mut open: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < name {
        if let Kind::Punct(b'(' | b'[' | b'{') = toks[i].kind {
            match b.pair(i) {
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
    // inside a macro's arguments, `GEN(x, name(i)->y)`, is not a head), and after the last `*`
    // only keywords (`* const name`): a word there is a parameter's name, and the "name" an
    // attribute macro after it (`(const void *p lzma_attribute((unused)))`).
    let plain = |from: usize| {
        let inside = &toks[from..name];
        let after_star = inside.iter().rposition(|t| t.is(b'*')).map_or(0, |s| s + 1);
        inside.iter().all(|t| t.is(b'*') || t.kind == Kind::Ident)
            && inside[after_star..]
                .iter()
                .all(|t| is_keyword(word(text, t)))
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
    Ok(Some(Declarator {
        head: Head {
            name: toks[name].start..toks[name].end,
            params_range: toks[params_open].start..toks[params_close].end,
            params,
            variadic,
            returns_void: last_void.is_some() && !star_after_void && !nested_pointer,
            kr,
            is_static,
            inline_kw,
            declarator_end,
            name_macro,
        },
        params_open,
        params_close,
    }))
}

/// The name of the function a head declares, when it is not known in advance (`.ic`
/// prototypes, `--skeleton`): among identifiers followed by a parameter list, the one whose list
/// looks most like parameters; a macro that takes the name (`BZ_API(name)(...)`) yields the
/// name; on a tie, the last.
/// Returns the name's token and the head.
pub fn find_name(
    text: &[u8],
    toks: &[Tok],
    b: &Brackets,
) -> Result<Option<(usize, Head)>, HeadError> {
    let mut best: Option<(u8, usize, Declarator)> = None;
    for (i, t) in toks.iter().enumerate() {
        let before_parens = toks.get(i + 1).is_some_and(|n| n.is(b'(') || n.is(b')'));
        if !before_parens || !is_name_word(text, t) {
            continue;
        }
        let Some(d) = declarator(text, toks, b, i)? else {
            continue;
        };
        if toks.get(d.params_close + 1).is_some_and(|n| n.is(b'(')) {
            continue; // a macro around the name: the name inside wins.
        }
        let score = params_score(text, toks, b, d.params_open, d.params_close);
        if score == 0 {
            continue;
        }
        // On a tie the later one wins: decorations come before the name (a definition may not
        // have attributes after its declarator).
        if best.as_ref().is_none_or(|(s, _, _)| score >= *s) {
            best = Some((score, i, d));
        }
    }
    Ok(best.map(|(_, name, d)| (name, d.head)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::tokens::lex;

    fn name_of(code: &str) -> (String, usize, bool, bool) {
        let text = code.as_bytes();
        let toks = lex(text, 0..text.len()).unwrap();
        let b = Brackets::new(text, &toks).unwrap();
        let (_, h) = find_name(text, &toks, &b).unwrap().expect(code);
        (
            String::from_utf8_lossy(&text[h.name]).into_owned(),
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
            // An attribute macro after a parameter (xz's lzip_decoder.c) is not the name.
            ("static lzma_check lzip_decoder_get_check(const void *coder_ptr lzma_attribute((__unused__)))", "lzip_decoder_get_check", 1, false),
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
        let (_, h) = find_name(text, &toks, &b).unwrap().unwrap();
        let names: Vec<_> = h.params.iter().map(|p| p.name.clone().unwrap()).collect();
        assert_eq!(
            names,
            ["buf", "cb", "a", "s", "x", "compar", "callout", "func"]
        );
    }
}
