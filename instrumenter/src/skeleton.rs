//! `--skeleton`: a starter `.ic` for a `.c` file — one `pre` block and one empty test
//! (probability 1, named `<function>_skeleton`) for every definition the precompiler can
//! instrument, and a `/* skipped NAME (line N): reason */` comment for each one it cannot. The
//! prototypes are the definitions' own heads, macros and all, so the compiler checks them as
//! the author wrote them.

use crate::error::Diagnostic;
use crate::parse::c::{self, FunctionDef};
use crate::parse::Source;
use crate::plan::GENERATED_PREFIX;
use std::collections::BTreeMap;

/// The skeleton's text and what it found.
#[derive(Debug, Clone, Default)]
pub struct Skeleton {
    /// The `.ic` text.
    pub text: Vec<u8>,
    /// Function definitions in the file (each `#if` branch counts).
    pub found: usize,
    /// Definitions the skeleton's blocks instrument.
    pub instrumented: usize,
    /// Definitions left out: name (or `?`), line, reason.
    pub skipped: Vec<(String, usize, String)>,
}

impl Skeleton {
    /// Skipped definitions counted by reason (the reason's words before any `:`).
    pub fn skipped_by_reason(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for (_, _, why) in &self.skipped {
            let key = why.split(':').next().unwrap_or(why).to_string();
            *out.entry(key).or_insert(0) += 1;
        }
        out
    }

    /// `N definitions, M instrumented, K skipped (reason: n, ...)`.
    pub fn summary(&self) -> String {
        let reasons: Vec<String> = self
            .skipped_by_reason()
            .iter()
            .map(|(r, n)| format!("{r}: {n}"))
            .collect();
        format!(
            "{} definitions, {} instrumented, {} skipped{}",
            self.found,
            self.instrumented,
            self.skipped.len(),
            if reasons.is_empty() {
                String::new()
            } else {
                format!(" ({})", reasons.join(", "))
            }
        )
    }
}

/// Why a definition cannot be instrumented, if it cannot.
fn refusal(c: &Source, d: &FunctionDef) -> Option<String> {
    if d.head.variadic {
        return Some("variadic: the wrapper cannot forward `...`".into());
    }
    if d.head.kr {
        return Some("old-style (K&R) definition: write its prototype by hand".into());
    }
    if c.text[d.start..d.head.declarator_end].contains(&b'#') && has_directive(c, d) {
        return Some(
            "a preprocessor line inside its head: the .ic prototype cannot hold it".into(),
        );
    }
    for (i, p) in d.head.params.iter().enumerate() {
        match &p.name {
            None => {
                return Some(format!(
                    "unnamed parameter: parameter {} has no name",
                    i + 1
                ))
            }
            Some(n) if n.starts_with(GENERATED_PREFIX) => {
                return Some(format!(
                    "reserved parameter name: `{n}` uses the prefix `{GENERATED_PREFIX}`"
                ))
            }
            _ => {}
        }
    }
    None
}

fn has_directive(c: &Source, d: &FunctionDef) -> bool {
    crate::parse::tokens::lex(&c.text, d.start..d.head.declarator_end)
        .map(|t| {
            t.iter()
                .any(|t| t.kind == crate::parse::tokens::Kind::Directive)
        })
        .unwrap_or(true)
}

pub(crate) fn skeleton(c: &Source) -> Result<Skeleton, Diagnostic> {
    let (defs, scan) = c::all_definitions(c);
    if let Some(at) = scan.instrumented_at {
        return Err(c.error(at, ALREADY));
    }
    let mut sk = Skeleton {
        found: defs.len(),
        ..Skeleton::default()
    };
    let mut out = format!(
        "/* A starter .ic for {} (invite-precompile --skeleton): one pre block and one empty\n   test, probability 1, per function. Write checks in the tests, add post blocks, and lower\n   the probabilities before running in production. */\n",
        c.name
    );
    // Heads by name: a function defined in several #if branches gets one block when every
    // branch's head is the same text.
    let mut by_name: BTreeMap<&str, Vec<&FunctionDef>> = BTreeMap::new();
    for d in defs.iter().flatten() {
        by_name.entry(&d.name).or_default().push(d);
    }
    let head = |d: &FunctionDef| c.text[d.start..d.head.declarator_end].to_vec();
    // Heads compared token by token, parameter names aside (`const void *p` and `const void *ptr`
    // declare the same function).
    let shape = |d: &FunctionDef| -> Vec<Vec<u8>> {
        let names: Vec<&[u8]> = d
            .head
            .params
            .iter()
            .filter_map(|p| p.name.as_deref().map(str::as_bytes))
            .collect();
        crate::parse::tokens::lex(&c.text, d.start..d.head.declarator_end)
            .unwrap_or_default()
            .iter()
            .map(|t| c.text[t.start..t.end].to_vec())
            .filter(|w| !names.contains(&w.as_slice()))
            .collect()
    };
    let mut done = std::collections::HashSet::new();
    for d in &defs {
        let d = match d {
            Ok(d) => d,
            Err(u) => {
                let (name, line) = match &u.name {
                    Some((at, name)) => (name.clone(), c.line(*at)),
                    None => ("?".to_string(), c.line(u.at)),
                };
                out.push_str(&format!(
                    "\n/* skipped {name} (line {line}): {} */\n",
                    u.why
                ));
                sk.skipped.push((name, line, u.why.clone()));
                continue;
            }
        };
        let line = c.line(d.head.name.start);
        let same = &by_name[d.name.as_str()];
        let why = refusal(c, d).or_else(|| {
            (same.iter().any(|o| shape(o) != shape(d)))
                .then(|| "defined differently in several #if branches: one .ic prototype cannot match all".to_string())
        });
        if let Some(why) = why {
            out.push_str(&format!(
                "\n/* skipped {} (line {line}): {why} */\n",
                d.name
            ));
            sk.skipped.push((d.name.clone(), line, why));
            continue;
        }
        sk.instrumented += 1;
        if !done.insert(d.name.clone()) {
            continue;
        }
        let proto = String::from_utf8_lossy(&head(d)).into_owned();
        let params = c.str(d.head.params_range.start + 1..d.head.params_range.end - 1);
        out.push_str(&format!(
            "\n{proto} pre\nvoid {}_skeleton({params}) 1 {{ }}\n",
            d.name
        ));
    }
    sk.text = out.into_bytes();
    Ok(sk)
}

/// The error for an input that is an output of the precompiler.
pub const ALREADY: &str =
    "this file is already instrumented (output of invite-precompile); use the original source";
