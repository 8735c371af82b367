//! Step 2, `plan`: decide what to wrap and how, and refuse everything that cannot work.
//!
//! Each `.ic` block is matched with the definitions in the `.c` file by name and parameter
//! count; each test gets its phase (contract: a `pre` block makes pre tests, a `post` block post
//! tests, and in a `both` block a test with one parameter more than the function is post, else
//! pre — a void function's tests in a `both` block need an explicit `pre`/`post`). Types are not
//! compared here: the rewrite declares the `.ic` prototype under `#line`, so the compiler
//! reports a mismatch at the `.ic` line.

mod names;

use crate::error::Diagnostic;
use crate::parse::c::{self, FunctionDef};
use crate::parse::fx::FastMap as HashMap;
use crate::parse::ic::{BlockKind, IcFile, Item, Phase};
use crate::parse::Source;

/// A function to wrap: its definitions (one per `#if` branch) and its tests.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub defs: Vec<FunctionDef>,
    /// Indices of its blocks in the `.ic` items (their prototypes are declared before the
    /// definitions).
    pub blocks: Vec<usize>,
    pub tests: Vec<PlannedTest>,
}

#[derive(Debug, Clone)]
pub struct PlannedTest {
    /// Index of the test in the `.ic` items.
    pub item: usize,
    pub name: String,
    pub phase: Phase,
    pub returns_int: bool,
    pub probability: f64,
    pub timeout_ms: u32,
    /// From an `outermost` block: sampled only at the thread's outermost call of the function.
    pub outermost: bool,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub targets: Vec<Target>,
}

/// Identifiers the generated wrapper declares; a parameter may not use them.
pub const GENERATED_PREFIX: &str = "invite_";

pub fn plan(c_src: &Source, ic_src: &Source, ic: &IcFile) -> Result<Plan, Diagnostic> {
    c_src.check_text("C")?;
    check_duplicate_tests(ic_src, ic)?;
    let mut names: Vec<&str> = Vec::new();
    let mut seen = crate::parse::fx::Names::default();
    for (_, b) in ic.blocks() {
        if seen.insert(b.name.as_bytes()) {
            names.push(&b.name);
        }
    }
    let defined = names::defined(ic_src, ic);
    let watched: Vec<&str> = defined.iter().map(|(n, _)| n.as_str()).collect();
    let found = c::find_definitions(c_src, &names, &watched);
    if let Some(at) = found.scan.instrumented_at {
        return Err(c_src.error(at, crate::skeleton::ALREADY));
    }
    names::check(c_src, ic_src, &defined, &names, &found.scan)?;
    // Definitions by index until every block is checked; then each moves into its target.
    let mut defs_by_name: HashMap<&str, Vec<usize>> = HashMap::default();
    for (i, d) in found.defs.iter().enumerate() {
        defs_by_name.entry(d.name.as_str()).or_default().push(i);
    }
    let def = |i: usize| &found.defs[i];
    let mut targets: Vec<Target> = Vec::new();
    let mut picked: Vec<Vec<usize>> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::default();
    for (index, block) in ic.blocks() {
        if block.variadic {
            return Err(ic_src.error(block.name_at, format!("`{}` is variadic: the wrapper cannot forward `...`, so it cannot be tested in vivo", block.name)));
        }
        let all: &[usize] = defs_by_name
            .get(block.name.as_str())
            .map_or(&[], Vec::as_slice);
        if all.is_empty() {
            if let Some((_, at, what)) = found.unparsed.iter().find(|(n, ..)| *n == block.name) {
                return Err(c_src.error(
                    *at,
                    format!("cannot read the head of `{}`: {what}", block.name),
                ));
            }
            if let Some((at, what)) = &found.scan.problem {
                return Err(c_src.error(
                    *at,
                    format!("{what}; cannot find the definition of `{}`", block.name),
                ));
            }
            return Err(ic_src.error(
                block.name_at,
                format!("`{}` is not defined in {}", block.name, c_src.name),
            ));
        }
        if let Some(d) = all.iter().map(|&i| def(i)).find(|d| d.head.variadic) {
            return Err(c_src.error(d.head.name.start, format!("`{}` is variadic: the wrapper cannot forward `...`, so it cannot be tested in vivo", block.name)));
        }
        let matching: Vec<usize> = all
            .iter()
            .copied()
            .filter(|&i| def(i).head.params.len() == block.params)
            .collect();
        if matching.is_empty() {
            let d = def(all[0]);
            return Err(ic_src
                .error(
                    block.name_at,
                    format!(
                        "`{}` takes {} parameter(s) in {}, but the .ic prototype has {}",
                        block.name,
                        d.head.params.len(),
                        c_src.name,
                        block.params
                    ),
                )
                .note(c_src.location(d.head.name.start), "the definition is here"));
        }
        for &i in &matching {
            check_definition(c_src, def(i))?;
        }
        let slot = *by_name.entry(block.name.clone()).or_insert_with(|| {
            targets.push(Target {
                name: block.name.clone(),
                defs: Vec::new(),
                blocks: Vec::new(),
                tests: Vec::new(),
            });
            picked.push(matching);
            targets.len() - 1
        });
        targets[slot].blocks.push(index);
    }
    for (item, it) in ic.items.iter().enumerate() {
        let Item::Test(test) = it else { continue };
        let Item::Block(block) = &ic.items[test.block] else {
            unreachable!("a test's block is a block")
        };
        let n = block.params;
        let phase = match (block.kind, test.marker) {
            (BlockKind::Pre, Some((Phase::Post, at)))
            | (BlockKind::Post, Some((Phase::Pre, at))) => {
                return Err(ic_src.error(
                    at,
                    format!(
                        "test `{}` is marked with a phase its `{}` block does not allow",
                        test.name,
                        kind_word(block.kind)
                    ),
                ));
            }
            (_, Some((phase, _))) => phase,
            (BlockKind::Pre, None) => Phase::Pre,
            (BlockKind::Post, None) => Phase::Post,
            (BlockKind::Both, None) if block.returns_void => {
                return Err(ic_src.error(test.name_at, format!("`{}` returns void, so in a `both` block test `{}` needs an explicit phase: write `pre` or `post` before its probability", block.name, test.name)));
            }
            (BlockKind::Both, None) if test.params == n + 1 => Phase::Post,
            (BlockKind::Both, None) => Phase::Pre,
        };
        let expected = if phase == Phase::Post && !block.returns_void {
            n + 1
        } else {
            n
        };
        if test.params != expected {
            let what = match (phase, block.returns_void) {
                (Phase::Post, false) => "the parameters of the function and its return value",
                _ => "the parameters of the function",
            };
            return Err(ic_src.error(
                test.name_at,
                format!(
                    "{} test `{}` takes {} parameter(s); expected {expected} ({what} `{}`)",
                    if phase == Phase::Pre { "pre" } else { "post" },
                    test.name,
                    test.params,
                    block.name
                ),
            ));
        }
        let slot = by_name[&block.name];
        targets[slot].tests.push(PlannedTest {
            item,
            name: test.name.clone(),
            phase,
            returns_int: test.returns_int,
            probability: test.probability,
            timeout_ms: test.timeout_ms,
            outermost: block.outermost,
        });
    }
    // Each definition has one name, so it is picked by one target at most.
    let mut defs: Vec<Option<FunctionDef>> = found.defs.into_iter().map(Some).collect();
    for (target, picks) in targets.iter_mut().zip(picked) {
        target.defs = picks.into_iter().filter_map(|i| defs[i].take()).collect();
    }
    Ok(Plan { targets })
}

fn kind_word(kind: BlockKind) -> &'static str {
    match kind {
        BlockKind::Pre => "pre",
        BlockKind::Post => "post",
        BlockKind::Both => "both",
    }
}

fn check_duplicate_tests(ic_src: &Source, ic: &IcFile) -> Result<(), Diagnostic> {
    let mut seen: HashMap<&str, usize> = HashMap::default();
    for t in ic.tests() {
        if let Some(&first) = seen.get(t.name.as_str()) {
            return Err(ic_src
                .error(t.name_at, format!("duplicate test `{}`", t.name))
                .note(ic_src.location(first), "first defined here"));
        }
        seen.insert(&t.name, t.name_at);
    }
    Ok(())
}

fn check_definition(c_src: &Source, d: &FunctionDef) -> Result<(), Diagnostic> {
    for (i, p) in d.head.params.iter().enumerate() {
        match &p.name {
            None => {
                return Err(c_src.error(
                    p.at,
                    format!(
                        "parameter {} of `{}` has no name; the wrapper must pass it on",
                        i + 1,
                        d.name
                    ),
                ));
            }
            Some(name) if name.starts_with(GENERATED_PREFIX) => {
                return Err(c_src.error(p.at, format!("parameter `{name}` of `{}` uses the prefix `{GENERATED_PREFIX}` reserved for generated code", d.name)));
            }
            _ => {}
        }
    }
    Ok(())
}
