//! Reading C declarators from tree-sitter nodes: a function's name and parameters, through
//! pointers (`char *(*f(int))(void)`), parentheses (`int (f)(int)`) and a macro around the name
//! (`int BZ_API(f)(int)`, which tree-sitter reads as a function returning a function).

use tree_sitter::Node;

/// The parts of a function declarator that name the function and list its parameters.
#[derive(Debug, Clone, Copy)]
pub struct FnDeclarator<'t> {
    /// The function's name (an `identifier`, or a `type_identifier` inside a macro's parentheses).
    pub name: Node<'t>,
    /// The `parameter_list` of the function.
    pub params: Node<'t>,
    /// The `function_declarator` that owns `params`.
    pub owner: Node<'t>,
}

/// Find the function declarator under `declarator`: through pointers and parentheses to the
/// name. `MACRO(name)(params)` (a function returning a function, which C does not allow, so
/// only a macro can mean it) names `name`.
pub fn function_declarator<'t>(declarator: Node<'t>) -> Option<FnDeclarator<'t>> {
    let mut chain = Vec::new();
    let mut node = declarator;
    loop {
        match node.kind() {
            "function_declarator" => {
                chain.push(node);
                node = node.child_by_field_name("declarator")?;
            }
            "pointer_declarator" | "attributed_declarator" => {
                node = node
                    .child_by_field_name("declarator")
                    .or_else(|| first_named(node))?;
            }
            "parenthesized_declarator" => node = first_named(node)?,
            "identifier" => break,
            _ => return None,
        }
    }
    let inner = *chain.last()?;
    let params = inner.child_by_field_name("parameters")?;
    if chain.len() >= 2 {
        let outer = chain[chain.len() - 2];
        let direct = outer
            .child_by_field_name("declarator")
            .is_some_and(|d| d.id() == inner.id());
        if let (true, Some(name)) = (direct, bare_name(params)) {
            let params = outer.child_by_field_name("parameters")?;
            return Some(FnDeclarator {
                name,
                params,
                owner: outer,
            });
        }
    }
    Some(FnDeclarator {
        name: node,
        params,
        owner: inner,
    })
}

fn bare_name(params: Node<'_>) -> Option<Node<'_>> {
    let kids = named_children(params);
    match kids.as_slice() {
        [p] if p.kind() == "identifier" => Some(*p),
        [p] if p.kind() == "parameter_declaration"
            && p.child_by_field_name("declarator").is_none() =>
        {
            let inner = named_children(*p);
            match inner.as_slice() {
                [t] if t.kind() == "type_identifier" => Some(*t),
                _ => None,
            }
        }
        _ => None,
    }
}

/// One parameter of a parameter list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Its name; `None` for an unnamed parameter (legal in a declaration only).
    pub name: Option<String>,
    pub at: usize,
}

/// The parameters of a list (`(void)` is none) and whether it ends in `...`.
pub fn parameters(params: Node<'_>, src: &[u8]) -> (Vec<Param>, bool) {
    let mut out = Vec::new();
    let mut variadic = false;
    let kids = named_children(params);
    for kid in &kids {
        match kid.kind() {
            "variadic_parameter" => variadic = true,
            "identifier" => out.push(Param {
                name: Some(text_string(*kid, src)),
                at: kid.start_byte(),
            }),
            "parameter_declaration" => {
                let declarator = kid.child_by_field_name("declarator");
                let is_void = kid
                    .child_by_field_name("type")
                    .is_some_and(|t| text(t, src) == b"void");
                if is_void && declarator.is_none() && kids.len() == 1 {
                    break;
                }
                let name = declarator.and_then(|d| declarator_name(d, src));
                out.push(Param {
                    name,
                    at: kid.start_byte(),
                });
            }
            "comment" => {}
            _ => out.push(Param {
                name: None,
                at: kid.start_byte(),
            }),
        }
    }
    if kids.iter().any(|k| k.kind() == "...") || has_ellipsis(params) {
        variadic = true;
    }
    (out, variadic)
}

fn has_ellipsis(params: Node<'_>) -> bool {
    let mut cursor = params.walk();
    let found = params.children(&mut cursor).any(|c| c.kind() == "...");
    found
}

/// The identifier a (parameter) declarator declares.
pub fn declarator_name(mut node: Node<'_>, src: &[u8]) -> Option<String> {
    loop {
        match node.kind() {
            "identifier" => return Some(text_string(node, src)),
            "parenthesized_declarator" => node = first_named(node)?,
            _ => node = node.child_by_field_name("declarator")?,
        }
    }
}

pub fn named_children(node: Node<'_>) -> Vec<Node<'_>> {
    let mut cursor = node.walk();
    let kids = node
        .named_children(&mut cursor)
        .filter(|c| c.kind() != "comment")
        .collect();
    kids
}

fn first_named(node: Node<'_>) -> Option<Node<'_>> {
    named_children(node).into_iter().next()
}

pub fn text<'s>(node: Node<'_>, src: &'s [u8]) -> &'s [u8] {
    &src[node.start_byte()..node.end_byte()]
}

pub fn text_string(node: Node<'_>, src: &[u8]) -> String {
    String::from_utf8_lossy(text(node, src)).into_owned()
}

/// The first syntax error (an `ERROR` or a missing token) under `node`. An `ERROR` made only of
/// identifiers directly under a definition is a macro between the specifiers and the name
/// (`int EXPORT foo(void)`) and is not counted.
pub fn first_error(node: Node<'_>) -> Option<Node<'_>> {
    if !node.has_error() {
        return None;
    }
    if node.is_missing() {
        return Some(node);
    }
    if node.is_error() {
        let macro_only = node
            .parent()
            .is_some_and(|p| matches!(p.kind(), "function_definition" | "declaration"))
            && named_children(node)
                .iter()
                .all(|c| c.kind() == "identifier")
            && node.child_count() == named_children(node).len();
        if !macro_only {
            return Some(node);
        }
        return None;
    }
    let mut cursor = node.walk();
    let kids: Vec<_> = node.children(&mut cursor).collect();
    kids.into_iter().find_map(first_error)
}

/// Describe a syntax error node for a message.
pub fn describe_error(node: Node<'_>, src: &[u8]) -> String {
    if node.is_missing() {
        return format!("expected `{}`", node.kind());
    }
    let t = text(node, src);
    let shown: String = String::from_utf8_lossy(&t[..t.len().min(40)])
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    format!("syntax error at `{shown}`")
}
