//! Parse the regions [`super::scan`] found with tree-sitter-c into [`FunctionDef`]s.

use super::decl::{self, Param};
use super::scan::{self, Scan};
use super::Source;
use std::collections::HashSet;
use std::ops::Range;
use tree_sitter::{Node, Parser};

/// A definition of a function the `.ic` names, with the byte ranges the rewrite edits.
#[derive(Debug, Clone)]
pub struct FunctionDef {
    pub name: String,
    /// First byte of the definition (its first specifier or attribute).
    pub start: usize,
    /// The name, to be renamed `_name`.
    pub name_range: Range<usize>,
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
    /// A syntax error in or right before the definition: offset and description.
    pub syntax_error: Option<(usize, String)>,
}

/// What the `.c` file holds for the wanted names.
pub struct Definitions {
    pub defs: Vec<FunctionDef>,
    /// A wanted name that appears in a region tree-sitter could not read as a definition.
    pub unparsed: Vec<(String, usize, String)>,
    pub scan: Scan,
}

pub fn find_definitions(src: &Source, wanted: &[&str]) -> Definitions {
    let names: HashSet<&[u8]> = wanted.iter().map(|n| n.as_bytes()).collect();
    let scan = scan::scan(&src.text, &names);
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_c::LANGUAGE.into())
        .expect("tree-sitter-c grammar matches the tree-sitter version");
    let mut defs: Vec<FunctionDef> = Vec::new();
    let mut unparsed = Vec::new();
    for cand in &scan.candidates {
        let base = cand.item_start;
        let region = &src.text[base..cand.item_end];
        let name_end = cand.name_at
            + src.text[cand.name_at..]
                .iter()
                .take_while(|&&b| super::is_ident_byte(b))
                .count();
        let name = &src.text[cand.name_at..name_end];
        let Some(tree) = parser.parse(region, None) else {
            continue;
        };
        let root = tree.root_node();
        let mut found = false;
        for def in definitions(root) {
            let Some(declarator) = def.child_by_field_name("declarator") else {
                continue;
            };
            let Some(fd) = decl::function_declarator(declarator) else {
                continue;
            };
            if fd.name.start_byte() + base != cand.name_at || decl::text(fd.name, region) != name {
                continue;
            }
            found = true;
            if defs.iter().any(|d| d.name_range.start == cand.name_at) {
                break;
            }
            defs.push(build(def, fd, region, base, cand.in_conditional, name));
            break;
        }
        if !found && root.has_error() {
            let at = decl::first_error(root)
                .map(|e| e.start_byte() + base)
                .unwrap_or(cand.name_at);
            let what = decl::first_error(root)
                .map(|e| decl::describe_error(e, region))
                .unwrap_or_else(|| "syntax error".into());
            unparsed.push((String::from_utf8_lossy(name).into_owned(), at, what));
        }
    }
    Definitions {
        defs,
        unparsed,
        scan,
    }
}

/// Function definitions at the top level of a region (also inside `#if` blocks and `ERROR`s).
fn definitions(root: Node<'_>) -> Vec<Node<'_>> {
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        let mut cursor = node.walk();
        for kid in node.children(&mut cursor) {
            match kid.kind() {
                "function_definition" => out.push(kid),
                "translation_unit" | "preproc_if" | "preproc_ifdef" | "preproc_else"
                | "preproc_elif" | "preproc_elifdef" | "ERROR" => stack.push(kid),
                _ => {}
            }
        }
    }
    out.sort_by_key(|n| n.start_byte());
    out
}

fn build(
    def: Node<'_>,
    fd: decl::FnDeclarator<'_>,
    region: &[u8],
    base: usize,
    in_conditional: bool,
    name: &[u8],
) -> FunctionDef {
    let declarator = def
        .child_by_field_name("declarator")
        .expect("checked by caller");
    let body = def.child_by_field_name("body");
    let (mut params, variadic) = decl::parameters(fd.params, region);
    for p in &mut params {
        p.at += base;
    }
    let returns_void = def
        .child_by_field_name("type")
        .is_some_and(|t| t.kind() == "primitive_type" && decl::text(t, region) == b"void")
        && fd.owner.id() == declarator.id();
    let mut is_static = false;
    let mut extern_kw = None;
    let mut inline_kw = Vec::new();
    let mut kr = false;
    let mut cursor = def.walk();
    for kid in def.children(&mut cursor) {
        match kid.kind() {
            "storage_class_specifier" => {
                let range = kid.start_byte() + base..kid.end_byte() + base;
                match decl::text(kid, region) {
                    b"static" => is_static = true,
                    b"extern" => extern_kw = Some(range),
                    b"inline" | b"__inline" | b"__inline__" => inline_kw.push(range),
                    _ => {}
                }
            }
            "declaration" => kr = true,
            _ => {}
        }
    }
    let syntax_error = decl::first_error(def)
        .or_else(|| def.prev_sibling().filter(|s| s.is_error()))
        .map(|e| (e.start_byte() + base, decl::describe_error(e, region)));
    let end = def.end_byte() + base;
    FunctionDef {
        name: String::from_utf8_lossy(name).into_owned(),
        start: def.start_byte() + base,
        name_range: fd.name.start_byte() + base..fd.name.end_byte() + base,
        declarator_end: declarator.end_byte() + base,
        body_start: body.map(|b| b.start_byte() + base).unwrap_or(end),
        end,
        params,
        variadic,
        returns_void,
        kr,
        is_static,
        extern_kw,
        inline_kw,
        in_conditional,
        syntax_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defs(code: &str, wanted: &[&str]) -> Vec<FunctionDef> {
        let src = Source::new("t.c", code.as_bytes().to_vec());
        find_definitions(&src, wanted).defs
    }

    #[test]
    fn reads_hard_declarators() {
        let code = "int EXPORT foo(int a) { return a; }\n\
                    int BZ_API(bz)(void *s, int b) { return 0; }\n\
                    int (paren)(int a) { return a; }\n\
                    char *(*handler(int x))(void) { return 0; }\n\
                    int kr(a, b) int a; char *b; { return a; }\n\
                    static inline void nothing(int a[10], int (*cb)(int)) { cb(a[0]); }\n\
                    int var(int a, ...) { return a; }\n";
        let d = defs(
            code,
            &["foo", "bz", "paren", "handler", "kr", "nothing", "var"],
        );
        let by = |n: &str| {
            d.iter()
                .find(|f| f.name == n)
                .unwrap_or_else(|| panic!("{n} not found"))
        };
        assert!(by("foo").syntax_error.is_none());
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
    }
}
