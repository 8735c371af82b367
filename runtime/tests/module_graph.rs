//! The runtime's data flows one way: no top-level module of `runtime/src` may import, directly or
//! through others, a module that imports it back. This test reads the sources, collects the edges
//! `A → B` for every `crate::B` path written in module `A` (in `A.rs` or under `A/`, `use` lists
//! included, `super::B` at the top level of `A` too) and fails on any cycle, naming its members.
//!
//! It needs no root and builds nothing: it is a property of the text.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read runtime/src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its comments (line comments and doc comments; the runtime has no
/// block comments that mention paths) and without string literals' contents.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_str = false;
        let mut prev = '\0';
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if !in_str && c == '/' && chars.peek() == Some(&'/') {
                break;
            }
            if c == '"' && prev != '\\' && prev != '\'' {
                in_str = !in_str;
            } else if !in_str {
                out.push(c);
            }
            prev = c;
        }
        out.push('\n');
    }
    out
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The top-level modules named right after each occurrence of `prefix` (`crate::` or `super::`):
/// `crate::a::x` gives `a`, `crate::{a, b::c}` gives `a` and `b`.
fn targets(code: &str, prefix: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find(prefix).map(|i| from + i) {
        let before = code[..at].chars().last();
        from = at + prefix.len();
        let rest = &code[from..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue; // part of a longer path, e.g. `super::super::`
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if c.is_whitespace() => {}
                    _ if item_start && depth == 0 => {
                        item_start = false;
                        let name = ident_at(&group[i..]);
                        if !name.is_empty() && name != "self" {
                            found.push(name.to_string());
                        }
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident_at(rest);
            if !name.is_empty() && name != "super" && name != "self" {
                found.push(name.to_string());
            }
        }
    }
    found
}

fn module_graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|f| {
            let rel = f.strip_prefix(src).ok()?;
            let first = rel.components().next()?.as_os_str().to_str()?;
            Some(first.trim_end_matches(".rs").to_string())
        })
        .filter(|m| m != "lib")
        .collect();
    let mut graph: Graph = modules
        .iter()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    for file in &files {
        let rel = file.strip_prefix(src).unwrap();
        let parts: Vec<&str> = rel.iter().map(|p| p.to_str().unwrap()).collect();
        let module = parts[0].trim_end_matches(".rs").to_string();
        if module == "lib" {
            continue;
        }
        // `super::x` names a top-level module only in the top-level file of a module.
        let top_file = parts.len() == 1 || (parts.len() == 2 && parts[1] == "mod.rs");
        let code = code_only(&fs::read_to_string(file).unwrap());
        let mut named = targets(&code, "crate::");
        if top_file {
            named.extend(targets(&code, "super::"));
        }
        for target in named {
            if target != module && modules.contains(&target) {
                graph.get_mut(&module).unwrap().insert(target);
            }
        }
    }
    graph
}

/// Tarjan's strongly connected components with more than one member: each is a cycle.
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    struct State<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in &s.graph[v] {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on_stack.remove(w);
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.found
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn runtime_modules_import_each_other_in_no_cycle() {
    let graph = module_graph(&src_dir());
    let found = cycles(&graph);
    let listing: String = graph
        .iter()
        .map(|(m, to)| {
            format!(
                "  {m} → {}\n",
                to.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        })
        .collect();
    eprintln!("runtime/src modules and what each imports:\n{listing}");
    assert!(
        found.is_empty(),
        "import cycles among runtime/src modules: {found:?}\nthe graph:\n{listing}"
    );
}

/// The README's "Architecture" tree lists every module so that each imports only those below it.
#[test]
fn the_readme_lists_the_modules_in_import_order() {
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
        .expect("README.md");
    let tree = readme
        .split("runtime/src/\n")
        .nth(1)
        .expect("the README's tree of runtime/src/");
    let order: Vec<String> = tree
        .lines()
        .map_while(|l| l.strip_prefix("├── ").or_else(|| l.strip_prefix("└── ")))
        .map(|l| ident_at(l).to_string())
        .collect();
    let graph = module_graph(&src_dir());
    let listed: BTreeSet<&String> = order.iter().collect();
    let present: BTreeSet<&String> = graph.keys().collect();
    assert_eq!(listed, present, "the README's tree and runtime/src differ");
    for (i, module) in order.iter().enumerate() {
        for target in &graph[module] {
            let at = order.iter().position(|m| m == target).unwrap();
            assert!(
                at > i,
                "README: {module} imports {target}, which is listed above it"
            );
        }
    }
}

#[test]
fn the_reader_sees_the_paths_it_must() {
    let code = code_only(
        "use crate::{a, b::{c, d}, self};\nlet x = crate::e::f(); // crate::g\nuse super::h;\nsuper::super::i();\n\"crate::j\";",
    );
    assert_eq!(targets(&code, "crate::"), ["a", "b", "e"]);
    assert_eq!(targets(&code, "super::"), ["h"]);
}

#[test]
fn a_cycle_is_found_and_a_chain_is_not() {
    fn edge(graph: &mut Graph, a: &str, b: &str) {
        graph.entry(a.into()).or_default().insert(b.into());
        graph.entry(b.into()).or_default();
    }
    let mut graph = Graph::new();
    edge(&mut graph, "site", "sample");
    edge(&mut graph, "sample", "admit");
    assert!(cycles(&graph).is_empty());
    edge(&mut graph, "admit", "site");
    assert_eq!(cycles(&graph), [vec!["admit", "sample", "site"]]);
}
