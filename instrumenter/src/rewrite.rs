//! Step 3, `rewrite`: produce the instrumented translation unit.
//!
//! Output shape, for each wrapped function `foo`:
//! 1. Where `foo` was defined: a declaration made from the definition's own head, then the `.ic`
//!    prototype under `#line` into the `.ic` (a type mismatch is a "conflicting types" error at
//!    the `.ic` line), then the definition itself, renamed `_foo` and made `static`. A definition
//!    inside `#if` also defines a marker macro, so code at the end sees whether it was compiled.
//! 2. At the end of the file (tests see file-static state): `#include "invite.h"` (here, not at
//!    the top: the header includes system headers, which must not come before the file's own
//!    feature macros such as `_GNU_SOURCE`), the `.ic` code and tests, `static`, with
//!    `-Wunused-parameter` silenced; then the wrapper `foo` with the original head.
//!
//! Every piece carries `#line` so diagnostics and debuggers point at the `.c` and `.ic` lines.

use crate::parse::c::{FunctionDef, ORIGINAL_PREFIX as ORIGINAL};
use crate::parse::ic::{IcFile, Item, Phase};
use crate::parse::scan::MARKER;
use crate::parse::Source;
use crate::plan::{Plan, Target};
use std::fmt::Write as _;
use std::io::Write;

/// Writes the instrumented translation unit to `sink`, a chunk at a time.
pub fn rewrite(
    c: &Source,
    ic_src: &Source,
    ic: &IcFile,
    plan: &Plan,
    sink: &mut dyn Write,
) -> std::io::Result<()> {
    let mut out: Vec<u8> = Vec::with_capacity(CHUNK + 64 * 1024);
    let c_name = c_string(&c.name);
    let ic_name = c_string(&ic_src.name);
    out.extend_from_slice(format!("#line 1 {c_name}\n").as_bytes());

    let mut defs: Vec<(&Target, usize, &FunctionDef)> = plan
        .targets
        .iter()
        .flat_map(|t| t.defs.iter().enumerate().map(move |(k, d)| (t, k, d)))
        .collect();
    defs.sort_by_key(|(_, _, d)| d.start);
    let mut cursor = 0;
    for (target, k, def) in defs {
        if def.start < cursor {
            continue; // overlapping regions cannot happen for distinct definitions; be safe.
        }
        spill(&mut out, sink)?;
        copy(&mut out, sink, &c.text[cursor..def.start])?;
        if c.column(def.start) != 1 {
            out.push(b'\n');
        }
        let line = c.line(def.start);
        push_line(&mut out, line, &c_name);
        push_declaration(&mut out, c, def);
        out.extend_from_slice(b";\n");
        // The renamed original gets internal linkage from a declaration before it, whatever its
        // head says (its storage class may come from a macro): a later definition without
        // `static` takes the linkage of the earlier `static` declaration (C11 6.2.2p4-5).
        // (Naming the function must not warn if it is deprecated.)
        // The original is renamed `_foo` (legacy tests call it so) unless a header made `_foo`
        // a macro; then `invite_original_foo`.
        let n = target.name.as_bytes();
        let pieces: [&[u8]; 15] = [
            b"#ifndef ",
            ORIGINAL,
            n,
            b"\n#ifdef _",
            n,
            b"\n#define ",
            ORIGINAL,
            n,
            b" invite_original_",
            n,
            b"\n#else\n#define ",
            ORIGINAL,
            n,
            b" _",
            n,
        ];
        pieces.iter().for_each(|p| out.extend_from_slice(p));
        out.extend_from_slice(b"\n#endif\n#endif\n#pragma GCC diagnostic push\n#pragma GCC diagnostic ignored \"-Wdeprecated-declarations\"\nstatic __typeof__(");
        def.push_name_expr(&c.text, &mut out, false);
        out.extend_from_slice(b") ");
        def.push_name_expr(&c.text, &mut out, true);
        out.extend_from_slice(b";\n#pragma GCC diagnostic pop\n");
        for &b in &target.blocks {
            let Item::Block(block) = &ic.items[b] else {
                continue;
            };
            push_line(&mut out, ic_src.line(block.proto.start), &ic_name);
            out.extend_from_slice(&ic_src.text[block.proto.clone()]);
            out.extend_from_slice(b";\n");
        }
        push_line(&mut out, line, &c_name);
        pad(&mut out, c.column(def.start));
        out.extend_from_slice(&c.text[def.start..def.head.name.start]);
        out.extend_from_slice(ORIGINAL);
        out.extend_from_slice(target.name.as_bytes());
        copy(&mut out, sink, &c.text[def.head.name.end..def.end])?;
        cursor = def.end;
        if def.in_conditional {
            out.extend_from_slice(b"\n#define ");
            push_marker(&mut out, target, k);
            out.extend_from_slice(b" 1\n");
            push_line(&mut out, c.line(def.end), &c_name);
            pad(&mut out, c.column(def.end));
        }
    }
    copy(&mut out, sink, &c.text[cursor..])?;
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }

    // The .ic code and tests.
    out.push(b'\n');
    out.extend_from_slice(MARKER);
    out.extend_from_slice(b"\n#include \"invite.h\"\n#pragma GCC diagnostic push\n#pragma GCC diagnostic ignored \"-Wunused-parameter\"\n");
    let targets_of_tests: crate::parse::fx::FastMap<usize, &Target> = plan
        .targets
        .iter()
        .flat_map(|t| t.tests.iter().map(move |p| (p.item, t)))
        .collect();
    let test_target = |item: usize| targets_of_tests.get(&item).copied();
    for (i, item) in ic.items.iter().enumerate() {
        spill(&mut out, sink)?;
        match item {
            Item::Block(_) => {}
            Item::Code(range) => {
                push_line(&mut out, ic_src.line(range.start), &ic_name);
                pad(&mut out, ic_src.column(range.start));
                copy(&mut out, sink, &ic_src.text[range.clone()])?;
                out.push(b'\n');
            }
            Item::Test(test) => {
                let guard = test_target(i).is_some_and(|t| push_guard(&mut out, t));
                if !test.is_static {
                    out.extend_from_slice(b"static\n");
                }
                push_line(&mut out, ic_src.line(test.start), &ic_name);
                pad(&mut out, ic_src.column(test.start));
                out.extend_from_slice(&ic_src.text[test.start..test.params_end]);
                // The probability, phase and timeout are ours, not C: blank them, keep lines.
                out.extend(
                    ic_src.text[test.params_end..test.body.start]
                        .iter()
                        .map(|&b| if b == b'\n' { b'\n' } else { b' ' }),
                );
                out.extend_from_slice(&ic_src.text[test.body.clone()]);
                out.push(b'\n');
                if guard {
                    out.extend_from_slice(b"#endif\n");
                }
            }
        }
    }
    out.extend_from_slice(b"#pragma GCC diagnostic pop\n");

    for target in &plan.targets {
        for (k, def) in target.defs.iter().enumerate() {
            spill(&mut out, sink)?;
            let set_aside = [
                &b"#pragma push_macro(\""[..],
                target.name.as_bytes(),
                b"\")\n#undef ",
                target.name.as_bytes(),
                b"\n",
            ];
            if def.name_defined_later {
                set_aside.iter().for_each(|p| out.extend_from_slice(p));
            }
            wrapper(
                &mut out,
                (c, &c_name),
                (ic_src, &ic_name),
                ic,
                target,
                k,
                def,
            );
            if def.name_defined_later {
                let restore = [
                    &b"#pragma pop_macro(\""[..],
                    target.name.as_bytes(),
                    b"\")\n",
                ];
                restore.iter().for_each(|p| out.extend_from_slice(p));
            }
        }
    }
    sink.write_all(&out)
}

/// The output goes to its sink in pieces of about this size: a translation unit of tens of
/// megabytes never sits in memory whole (filling such a buffer costs a page fault per 4 KiB).
const CHUNK: usize = 256 * 1024;

/// Hands what `out` holds to `sink` once that is a chunk, but for its last byte (whether the
/// output so far ends a line decides where `#line` goes).
fn spill(out: &mut Vec<u8>, sink: &mut dyn Write) -> std::io::Result<()> {
    if out.len() >= CHUNK {
        let keep = out.len() - 1;
        sink.write_all(&out[..keep])?;
        out.drain(..keep);
    }
    Ok(())
}

/// Appends `text`, a stretch of an input (a whole file at most), writing a long one straight to
/// `sink` rather than through `out`; `out` keeps its last byte.
fn copy(out: &mut Vec<u8>, sink: &mut dyn Write, text: &[u8]) -> std::io::Result<()> {
    match text.split_last() {
        Some((&last, most)) if out.len() + text.len() > CHUNK => {
            sink.write_all(out)?;
            sink.write_all(most)?;
            out.clear();
            out.push(last);
        }
        _ => out.extend_from_slice(text),
    }
    Ok(())
}

/// The macro a definition inside `#if` defines after itself.
fn push_marker(out: &mut Vec<u8>, target: &Target, k: usize) {
    out.extend_from_slice(b"INVITE_DEFINED_");
    out.extend_from_slice(target.name.as_bytes());
    out.push(b'_');
    push_number(out, k + 1);
}

/// The `#if` line under which the target's tests compile, when every definition is
/// conditional; whether it wrote one.
fn push_guard(out: &mut Vec<u8>, target: &Target) -> bool {
    if target.defs.iter().any(|d| !d.in_conditional) {
        return false;
    }
    out.extend_from_slice(b"#if ");
    for k in 0..target.defs.len() {
        if k > 0 {
            out.extend_from_slice(b" || ");
        }
        out.extend_from_slice(b"defined(");
        push_marker(out, target, k);
        out.push(b')');
    }
    out.push(b'\n');
    true
}

/// The wrapper of one definition; the sources come with their names as C string literals.
fn wrapper(
    out: &mut Vec<u8>,
    (c, c_name): (&Source, &str),
    (ic_src, ic_name): (&Source, &str),
    ic: &IcFile,
    target: &Target,
    k: usize,
    def: &FunctionDef,
) {
    if def.in_conditional {
        out.extend_from_slice(b"#ifdef ");
        push_marker(out, target, k);
        out.push(b'\n');
    }
    let line = c.line(def.head.name.start);
    push_line(out, c.line(def.start), c_name);
    pad(out, c.column(def.start));
    let head_at = out.len();
    out.extend_from_slice(&c.text[def.start..def.body_start]);
    blank_inline(&mut out[head_at..], def);
    out.extend_from_slice(b"{\n");
    let mut args = String::with_capacity(16 * def.head.params.len());
    for (i, p) in def.head.params.iter().enumerate() {
        if i > 0 {
            args.push_str(", ");
        }
        args.push_str(p.name.as_deref().unwrap_or(""));
    }
    let mut original = Vec::with_capacity(2 * target.name.len() + args.len() + 32);
    def.push_name_expr(&c.text, &mut original, true);
    original.push(b'(');
    original.extend_from_slice(args.as_bytes());
    original.push(b')');
    // Declarations first, then statements (C90 style, as `-Wdeclaration-after-statement` wants):
    // the sites, in the order their tests run, then `invite_ret`.
    let tests: Vec<(&crate::plan::PlannedTest, usize)> = [Phase::Pre, Phase::Post]
        .into_iter()
        .flat_map(|phase| target.tests.iter().filter(move |t| t.phase == phase))
        .enumerate()
        .map(|(site, t)| (t, site))
        .collect();
    push_line(out, line, c_name);
    let target_name = c_string(&target.name);
    for (t, site) in &tests {
        out.extend_from_slice(b"    static invite_site invite_site_");
        push_number(out, *site);
        out.extend_from_slice(b" = INVITE_SITE(");
        for piece in [&target_name, &c_string(&t.name), c_name] {
            out.extend_from_slice(piece.as_bytes());
            out.extend_from_slice(b", ");
        }
        push_number(out, line);
        out.extend_from_slice(if t.phase == Phase::Pre {
            b", INVITE_PRE, ".as_slice()
        } else {
            b", INVITE_POST, ".as_slice()
        });
        let _ = write!(out, "{:?}", t.probability);
        out.extend_from_slice(b", ");
        push_number(out, t.timeout_ms as usize);
        out.extend_from_slice(b");\n");
        // Listed, so that the summary has the site's row even if the function is never called.
        out.extend_from_slice(b"    static invite_site *invite_site_");
        push_number(out, *site);
        out.extend_from_slice(b"_listed INVITE_LISTED = &invite_site_");
        push_number(out, *site);
        out.extend_from_slice(b";\n");
    }
    // `outermost` tests: the thread's depth in this function, kept only when one asks for it.
    let depth = tests.iter().any(|(t, _)| t.outermost);
    if depth {
        out.extend_from_slice(b"    static __thread unsigned invite_depth;\n");
    }
    if !def.head.returns_void {
        out.extend_from_slice(b"    __typeof__(");
        out.extend_from_slice(&original);
        out.extend_from_slice(b") invite_ret;\n");
    }
    if depth {
        out.extend_from_slice(b"    invite_depth++;\n");
    }
    let run_tests = |out: &mut Vec<u8>, phase: Phase| {
        for (t, site) in tests.iter().filter(|(t, _)| t.phase == phase) {
            let Item::Test(test) = &ic.items[t.item] else {
                continue;
            };
            let ret = if phase == Phase::Post && !def.head.returns_void {
                if args.is_empty() {
                    "invite_ret"
                } else {
                    ", invite_ret"
                }
            } else {
                ""
            };
            push_line(out, ic_src.line(test.name_at), ic_name);
            out.extend_from_slice(if t.outermost {
                b"    if (invite_depth == 1 && invite_sample(&invite_site_".as_slice()
            } else {
                b"    if (invite_sample(&invite_site_".as_slice()
            });
            push_number(out, *site);
            out.extend_from_slice(b") && invite_pod_enter(&invite_site_");
            push_number(out, *site);
            out.extend_from_slice(if t.returns_int {
                b")) { invite_pod_exit(".as_slice()
            } else {
                b")) { ".as_slice()
            });
            for piece in [t.name.as_str(), "(", &args, ret, ")"] {
                out.extend_from_slice(piece.as_bytes());
            }
            out.extend_from_slice(if t.returns_int {
                b" != 0); }\n".as_slice()
            } else {
                b"; invite_pod_exit(1); }\n".as_slice()
            });
        }
    };
    run_tests(out, Phase::Pre);
    push_line(out, line, c_name);
    out.extend_from_slice(if def.head.returns_void {
        b"    ".as_slice()
    } else {
        b"    invite_ret = ".as_slice()
    });
    out.extend_from_slice(&original);
    out.extend_from_slice(b";\n");
    run_tests(out, Phase::Post);
    push_line(out, line, c_name);
    if depth {
        out.extend_from_slice(b"    invite_depth--;\n");
    }
    out.extend_from_slice(if def.head.returns_void {
        b"}\n".as_slice()
    } else {
        b"    return invite_ret;\n}\n".as_slice()
    });
    if def.in_conditional {
        out.extend_from_slice(b"#endif\n");
    }
}

/// The definition's head as a declaration of the original name: K&R parameter names become
/// `()` (a declaration may not list names without types); a non-static `inline` is blanked.
fn push_declaration(out: &mut Vec<u8>, c: &Source, def: &FunctionDef) {
    let at = out.len();
    out.extend_from_slice(&c.text[def.start..def.head.declarator_end]);
    blank_inline(&mut out[at..], def);
    if def.head.kr {
        let r =
            def.head.params_range.start - def.start + 1..def.head.params_range.end - def.start - 1;
        out.drain(at + r.start..at + r.end);
    }
}

/// A non-static `inline` wrapper could not hold its `static` sites (C99 6.7.4p3), so the
/// wrapper and its declaration drop `inline`; the renamed original keeps it.
fn blank_inline(head: &mut [u8], def: &FunctionDef) {
    if def.head.is_static {
        return;
    }
    for r in &def.head.inline_kw {
        if r.end <= def.start + head.len() {
            head[r.start - def.start..r.end - def.start].fill(b' ');
        }
    }
}

fn push_line(out: &mut Vec<u8>, line: usize, file: &str) {
    if !out.ends_with(b"\n") && !out.is_empty() {
        out.push(b'\n');
    }
    out.extend_from_slice(b"#line ");
    push_number(out, line);
    out.push(b' ');
    out.extend_from_slice(file.as_bytes());
    out.push(b'\n');
}

/// Decimal digits without going through `fmt` (the rewrite writes a `#line` for every piece).
fn push_number(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Spaces that put the next byte in `column` (1-based), so columns in diagnostics stay right.
fn pad(out: &mut Vec<u8>, column: usize) {
    out.extend(std::iter::repeat_n(b' ', column.saturating_sub(1)));
}

/// A C string literal for a file or function name.
pub fn c_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    if !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(s);
        out.push('"');
        return out;
    }
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\{:03o}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
