//! The definitions in a `.c` file: the regions [`super::scan`] found, each head read by
//! [`super::head`]. Bodies are never parsed: the scan matched their braces, and the rewrite copies
//! them as they are.

use super::head::{self, Brackets, Param};
use super::scan::{self, Scan};
use super::tokens::{self, Kind, Tok};
use super::Source;
use std::collections::HashSet;
use std::ops::Range;

/// A definition of a function, with the byte ranges the rewrite edits.
#[derive(Debug, Clone)]
pub struct FunctionDef {
    pub name: String,
    /// First byte of the definition's head (after the previous top-level item).
    pub start: usize,
    /// The name, to be renamed `_name`.
    pub name_range: Range<usize>,
    /// The parameter list, `(` to one past `)`.
    pub params_range: Range<usize>,
    /// End of the declarator (K&R parameter declarations and the body follow).
    pub declarator_end: usize,
    pub body_start: usize,
    pub end: usize,
    pub params: Vec<Param>,
    pub variadic: bool,
    pub returns_void: bool,
    /// Old-style (K&R) definition: `int f(a) int a; { ... }`.
    pub kr: bool,
    pub is_static: bool,
    /// `extern` and `inline` keywords of the definition.
    pub extern_kw: Option<Range<usize>>,
    pub inline_kw: Vec<Range<usize>>,
    pub in_conditional: bool,
}

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
    let names: HashSet<&[u8]> = wanted.iter().map(|n| n.as_bytes()).collect();
    let watched: HashSet<&[u8]> = watched.iter().map(|n| n.as_bytes()).collect();
    let scan = scan::scan(&src.text, &names, &watched);
    let mut defs: Vec<FunctionDef> = Vec::new();
    let mut unparsed = Vec::new();
    for cand in &scan.candidates {
        if defs.iter().any(|d| d.name_range.start == cand.name_at) {
            continue;
        }
        let region = cand.item_start..cand.body_start;
        let named = |toks: &[Tok]| toks.iter().position(|t| t.start == cand.name_at);
        match read_head(src, region, cand.in_conditional, cand.item_end, named) {
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

/// A head that could not be read: its offset and why.
pub type Unread = (usize, String);

/// Every function definition in the file (for `--skeleton`): each one read, or why not (the
/// offset and the reason), in file order.
pub fn all_definitions(src: &Source) -> (Vec<Result<FunctionDef, Unread>>, Scan) {
    let scan = scan::scan(&src.text, &HashSet::new(), &HashSet::new());
    let mut out = Vec::new();
    for body in &scan.bodies {
        let region = body.item_start..body.body_start;
        let mut found = None;
        let pick = |toks: &[Tok]| -> Option<usize> {
            let b = Brackets::new(&src.text, toks).ok()?;
            let h = head::find_name(&src.text, toks, &b).ok()??;
            Some(h.name)
        };
        match read_head(src, region, body.in_conditional, body.item_end, |t| {
            found = pick(t);
            found
        }) {
            Ok(Some(d)) => out.push(Ok(d)),
            Ok(None) => {}
            Err(e) => out.push(Err((e.at, e.message))),
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

/// Read the head in `region` (up to the body's `{`), whose name is the token `name` picks.
fn read_head(
    src: &Source,
    region: Range<usize>,
    in_conditional: bool,
    end: usize,
    name: impl FnOnce(&[Tok]) -> Option<usize>,
) -> Result<Option<FunctionDef>, head::HeadError> {
    let text = &src.text;
    let all = tokens::lex(text, region.clone()).map_err(|at| head::HeadError {
        at,
        message: "unterminated comment".into(),
    })?;
    let toks: Vec<Tok> = all
        .iter()
        .copied()
        .filter(|t| t.kind != Kind::Directive)
        .collect();
    let Some(n) = name(&toks) else {
        return Ok(None);
    };
    let b = Brackets::new(text, &toks)?;
    let Some(h) = head::read(text, &toks, &b, n)? else {
        return Ok(None);
    };
    // A conditional inside the declarator would make the parameters depend on it.
    if let Some(d) = all.iter().find(|t| {
        t.kind == Kind::Directive
            && t.start > toks[n].start
            && matches!(
                scan::directive(text, t.start).1,
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
            message: "a conditional directive inside the declarator: which parameters exist depends on it".into(),
        });
    }
    let start = toks.first().map_or(region.start, |t| t.start);
    let first = all.first().map_or(start, |t| t.start).min(start);
    Ok(Some(FunctionDef {
        name: String::from_utf8_lossy(&text[toks[n].start..toks[n].end]).into_owned(),
        start: first,
        name_range: toks[n].start..toks[n].end,
        params_range: toks[h.params_open].start..toks[h.params_close].end,
        declarator_end: h.declarator_end,
        body_start: region.end,
        end,
        params: h.params,
        variadic: h.variadic,
        returns_void: h.returns_void,
        kr: h.kr,
        is_static: h.is_static,
        extern_kw: h.extern_kw,
        inline_kw: h.inline_kw,
        in_conditional,
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
        assert_eq!(by("bz").params.len(), 2);
        assert_eq!(by("paren").params[0].name.as_deref(), Some("a"));
        assert!(!by("handler").returns_void);
        assert!(by("kr").kr);
        let n = by("nothing");
        assert!(n.returns_void && n.is_static && n.inline_kw.len() == 1);
        assert_eq!(
            n.params
                .iter()
                .map(|p| p.name.clone().unwrap())
                .collect::<Vec<_>>(),
            ["a", "cb"]
        );
        assert!(by("var").variadic);
        assert_eq!(by("lz4").params.len(), 1);
    }
}
