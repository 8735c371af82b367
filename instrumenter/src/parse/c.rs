//! The definitions in a `.c` file: the regions [`super::scan`] found, each head read by
//! [`super::head`]. Bodies are never parsed: the scan matched their braces, and the rewrite copies
//! them as they are.

use super::brackets::Brackets;
use super::head::{self, Head};
use super::scan::{self, Scan};
use super::tokens::{self, Kind, Tok};
use super::Source;
use super::{fx, lexical, words};
use std::ops::Range;

/// A definition of a function: its head, and where it is.
#[derive(Debug, Clone)]
pub struct FunctionDef {
    pub name: String,
    /// What the head says, with the byte ranges the rewrite edits.
    pub head: Head,
    /// First byte of the definition's head (after the previous top-level item).
    pub start: usize,
    pub body_start: usize,
    pub end: usize,
    pub in_conditional: bool,
    /// The name is `#define`d as a macro after the definition: the wrapper at the end of the
    /// file is written with that macro set aside (`#pragma push_macro`, `#undef`).
    pub name_defined_later: bool,
}

impl FunctionDef {
    /// The function's name, or (with `rename`) the renamed original's, as C code must write it
    /// (through the macro around the name, if any). `text` is the `.c` file's. Written straight
    /// into `out` (the rewrite writes it several times per definition).
    pub fn push_name_expr(&self, text: &[u8], out: &mut Vec<u8>, rename: bool) {
        let (pre, post) = self.head.name_macro.clone().unwrap_or_default();
        out.extend_from_slice(&text[pre]);
        if rename {
            out.extend_from_slice(ORIGINAL_PREFIX);
        }
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(&text[post]);
    }
}

/// The prefix of the macro that names the renamed original of `name`: `INVITE_ORIGINAL_name`,
/// which stands for `_name`, or `invite_original_name` where `_name` is already a macro (a
/// library's `#define _pcre2_jit_free ...`).
pub const ORIGINAL_PREFIX: &[u8] = b"INVITE_ORIGINAL_";

/// What the `.c` file holds for the wanted names.
pub struct Definitions {
    pub defs: Vec<FunctionDef>,
    /// A wanted name whose head could not be read: name, offset, why.
    pub unparsed: Vec<(String, usize, String)>,
    pub scan: Scan,
}

/// The definitions of the `wanted` functions; `watched` names are looked up at the top level
/// (see [`Scan::top_level`]).
pub fn find_definitions(src: &Source, wanted: &[&str], watched: &[&str]) -> Definitions {
    let names: fx::Names = wanted.iter().map(|n| n.as_bytes()).collect();
    let watched: fx::Names = watched.iter().map(|n| n.as_bytes()).collect();
    let scan = scan::scan(&src.text, &names, &watched);
    let mut defs: Vec<FunctionDef> = Vec::new();
    let mut unparsed = Vec::new();
    let mut done = fx::FastMap::default();
    for cand in &scan.candidates {
        if done.insert(cand.name_at, ()).is_some() {
            continue;
        }
        let region = cand.item_start..cand.body_start;
        let named = |toks: &[Tok]| toks.iter().position(|t| t.start == cand.name_at);
        let place = Place {
            region,
            undefs: &scan.undefs,
            defines: &scan.defines,
            in_conditional: cand.in_conditional,
            split_head: cand.split_head,
            end: cand.item_end,
        };
        match read_head(src, &place, &scan.item_macros, named) {
            Ok(Some(d)) => defs.push(d),
            Ok(None) => {}
            Err(e) => {
                let name = src.str(cand.name_at..ident_end(&src.text, cand.name_at));
                unparsed.push((name, e.at, e.message));
            }
        }
    }
    Definitions {
        defs,
        unparsed,
        scan,
    }
}

/// A head that could not be read: where, why, and its name (with its offset) when it was found.
pub struct Unread {
    pub at: usize,
    pub why: String,
    pub name: Option<(usize, String)>,
}

/// Every function definition in the file (for `--skeleton`): each one read, or why not (the
/// offset and the reason), in file order.
pub fn all_definitions(src: &Source) -> (Vec<Result<FunctionDef, Unread>>, Scan) {
    let scan = scan::scan(&src.text, &fx::Names::default(), &fx::Names::default());
    let mut out = Vec::new();
    for body in &scan.bodies {
        let region = body.item_start..body.body_start;
        let mut name_at = None;
        let pick = |toks: &[Tok]| -> Option<usize> {
            let b = Brackets::new(&src.text, toks).ok()?;
            let (name, _) = head::find_name(&src.text, toks, &b).ok()??;
            Some(name)
        };
        let place = Place {
            region,
            undefs: &scan.undefs,
            defines: &scan.defines,
            in_conditional: body.in_conditional,
            split_head: body.split_head,
            end: body.item_end,
        };
        match read_head(src, &place, &scan.item_macros, |t| {
            let found = pick(t);
            name_at = found.map(|n| t[n].start);
            found
        }) {
            Ok(Some(d)) => out.push(Ok(d)),
            Ok(None) => {}
            Err(e) => out.push(Err(Unread {
                at: e.at,
                why: e.message,
                name: name_at.map(|at| (at, src.str(at..ident_end(&src.text, at)))),
            })),
        }
    }
    (out, scan)
}

fn ident_end(text: &[u8], at: usize) -> usize {
    at + text[at..]
        .iter()
        .take_while(|&&b| super::is_ident_byte(b))
        .count()
}

/// How many leading tokens are calls of macros that make items of their own: calls of the file's
/// `item_macros`, and any top-level call followed by a blank line (`rb_gen(...)` from a header,
/// then the function), as long as a parameter list remains after them.
fn item_macro_calls(
    text: &[u8],
    toks: &[Tok],
    item_macros: &fx::FastSet<Vec<u8>>,
) -> Result<usize, head::HeadError> {
    let b = Brackets::new(text, toks)?;
    let mut cut = 0;
    let mut i = 0;
    while i < toks.len() {
        let t = toks[i];
        let word = &text[t.start..t.end];
        if t.kind == Kind::Ident
            && !words::is_attribute(word)
            && toks.get(i + 1).is_some_and(|n| n.is(b'('))
        {
            let close = b.end(toks, i + 1);
            // A blank line between: one whole line of blanks (a directive's line is not one).
            let blank = toks.get(close + 1).is_some_and(|n| {
                let gap = &text[toks[close].end..n.start];
                let lines: Vec<&[u8]> = gap.split(|&c| c == b'\n').collect();
                lines.len() > 2
                    && lines[1..lines.len() - 1]
                        .iter()
                        .any(|l| l.iter().all(u8::is_ascii_whitespace))
            });
            let rest_has_params = toks[close + 1..].iter().any(|n| n.is(b'('));
            if rest_has_params && (blank || item_macros.contains(word)) {
                cut = close + 1;
            }
            i = close;
        } else if let Kind::Punct(b'(' | b'[' | b'{') = t.kind {
            i = b.end(toks, i);
        }
        i += 1;
    }
    Ok(cut)
}

/// Where a definition's head is: from the end of the previous item to the body's `{`.
struct Place<'s> {
    region: Range<usize>,
    undefs: &'s fx::FastMap<Vec<u8>, Vec<usize>>,
    defines: &'s fx::FastMap<Vec<u8>, Vec<usize>>,
    in_conditional: bool,
    split_head: bool,
    end: usize,
}

/// Read the head in `place`, whose name is the token `name` picks. A call of one of the file's
/// `item_macros` before the name is an item of its own, not part of the head.
fn read_head(
    src: &Source,
    place: &Place<'_>,
    item_macros: &fx::FastSet<Vec<u8>>,
    name: impl FnOnce(&[Tok]) -> Option<usize>,
) -> Result<Option<FunctionDef>, head::HeadError> {
    let text = &src.text;
    let region = place.region.clone();
    let all = tokens::lex(text, region.clone()).map_err(|at| head::HeadError {
        at,
        message: "unterminated comment".into(),
    })?;
    let directives: Vec<Tok> = all
        .iter()
        .copied()
        .filter(|t| t.kind == Kind::Directive)
        .collect();
    let mut toks = all;
    if !directives.is_empty() {
        toks.retain(|t| t.kind != Kind::Directive);
    }
    let cut = item_macro_calls(text, &toks, item_macros)?;
    let first = toks.get(cut).map_or(region.end, |t| t.start);
    toks.drain(..cut);
    // The name first, so that a head refused below is refused by name (a conditional's
    // branches may leave the name unfound: then the refusal has none).
    let named = name(&toks);
    // A conditional inside the head (the scan ends items at top-level directives) would make
    // the parameters depend on it.
    if let Some(d) = directives.iter().find(|t| {
        t.kind == Kind::Directive
            && t.start > first
            && matches!(
                lexical::directive(text, t.start).1,
                b"if"
                    | b"ifdef"
                    | b"ifndef"
                    | b"elif"
                    | b"else"
                    | b"endif"
                    | b"elifdef"
                    | b"elifndef"
            )
    }) {
        return Err(head::HeadError {
            at: d.start,
            message: "#if inside its head: which parameters exist depends on it".into(),
        });
    }
    let Some(n) = named else {
        return Ok(None);
    };
    if place.split_head {
        return Err(head::HeadError {
            at: toks[n].start,
            message: "#if branches in its head: they share one body".into(),
        });
    }
    let b = Brackets::new(text, &toks)?;
    let Some(h) = head::read(text, &toks, &b, n)? else {
        return Ok(None);
    };
    // The wrapper repeats the head at the end of the file: a macro it uses must still be defined.
    if let Some((t, at)) = toks[..].iter().find_map(|t| {
        let undefs = place.undefs.get(&text[t.start..t.end])?;
        undefs.iter().find(|&&u| u > place.end).map(|&u| (t, u))
    }) {
        return Err(head::HeadError {
            at: t.start,
            message: format!(
                "a macro #undef'd later in its head: `{}` is #undef'd at line {}, before the wrapper at the end of the file",
                String::from_utf8_lossy(&text[t.start..t.end]),
                src.line(at)
            ),
        });
    }
    // A name `#define`d as a macro after the definition (zstd's legacy `#define FSEv06_isError
    // ERR_isError`, curl's `#else #define progress_meter(x)`): the wrapper at the end of the
    // file must name the function, not what the macro expands to.
    let name_text = &text[toks[n].start..toks[n].end];
    let name_defined_later = place
        .defines
        .get(name_text)
        .is_some_and(|d| d.iter().any(|&d| d > place.end));
    let start = toks.first().map_or(region.start, |t| t.start);

    Ok(Some(FunctionDef {
        name: String::from_utf8_lossy(&text[h.name.clone()]).into_owned(),
        head: h,
        start,
        body_start: region.end,
        end: place.end,
        in_conditional: place.in_conditional,
        name_defined_later,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defs(code: &str, wanted: &[&str]) -> Vec<FunctionDef> {
        let src = Source::new("t.c", code.as_bytes().to_vec());
        find_definitions(&src, wanted, &[]).defs
    }

    #[test]
    fn reads_hard_declarators() {
        let code = "int EXPORT foo(int a) { return a; }\n\
                    int BZ_API(bz)(void *s, int b) { return 0; }\n\
                    int (paren)(int a) { return a; }\n\
                    char *(*handler(int x))(void) { return 0; }\n\
                    int kr(a, b) int a; char *b; { return a; }\n\
                    static inline void nothing(int a[10], int (*cb)(int)) { cb(a[0]); }\n\
                    int var(int a, ...) { return a; }\n\
                    int lz4(int a) { int limit = 64 KB; DEBUGLOG(5, \"x\") return a; }\n";
        let d = defs(
            code,
            &[
                "foo", "bz", "paren", "handler", "kr", "nothing", "var", "lz4",
            ],
        );
        let by = |n: &str| {
            d.iter()
                .find(|f| f.name == n)
                .unwrap_or_else(|| panic!("{n} not found"))
        };
        assert_eq!(by("bz").head.params.len(), 2);
        assert_eq!(by("paren").head.params[0].name.as_deref(), Some("a"));
        assert!(!by("handler").head.returns_void);
        assert!(by("kr").head.kr);
        let n = by("nothing");
        assert!(n.head.returns_void && n.head.is_static && n.head.inline_kw.len() == 1);
        assert_eq!(
            n.head
                .params
                .iter()
                .map(|p| p.name.clone().unwrap())
                .collect::<Vec<_>>(),
            ["a", "cb"]
        );
        assert!(by("var").head.variadic);
        assert_eq!(by("lz4").head.params.len(), 1);
    }

    /// xz's crc64_fast.c: an attribute before a directive belongs to the head after it; a
    /// head split by `#endif` is refused, never rewritten with the attribute on the wrong
    /// declaration.
    #[test]
    fn attribute_before_a_directive_stays_with_its_head() {
        let code = "#if defined(__GNUC__)\n__attribute__((__target__(\"sse4.1\")))\n#endif\nstatic int f(int a) { return a; }\n#if X\n#endif\nint g(int a) { return a; }\n";
        let src = Source::new("t.c", code.as_bytes().to_vec());
        let found = find_definitions(&src, &["f", "g"], &[]);
        assert_eq!(found.defs.len(), 1, "{:?}", found.unparsed);
        assert_eq!(found.defs[0].name, "g");
        assert!(
            found.unparsed[0].2.contains("#if inside its head"),
            "{:?}",
            found.unparsed
        );
    }

    /// zstd's legacy decoders define `FSEv06_isError` and later `#define FSEv06_isError
    /// ERR_isError`: the definition is found, and marked so the wrapper sets the macro aside.
    #[test]
    fn notes_a_name_defined_as_a_macro_later() {
        let code = "unsigned f_isError(int c) { return c; }\n#define f_isError g_isError\nint h(int a) { return a; }\n#define h(a) (a)\n";
        let src = Source::new("t.c", code.as_bytes().to_vec());
        let found = find_definitions(&src, &["f_isError", "h"], &[]);
        assert!(found.unparsed.is_empty(), "{:?}", found.unparsed);
        let later: Vec<_> = found.defs.iter().map(|d| d.name_defined_later).collect();
        assert_eq!(later, [true, true]);
        let code = "#define f(a) (a)\nint f(int a) { return a; }\n";
        let src = Source::new("t.c", code.as_bytes().to_vec());
        assert!(!find_definitions(&src, &["f"], &[]).defs[0].name_defined_later);
    }
}
