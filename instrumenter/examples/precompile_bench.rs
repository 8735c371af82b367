//! Benchmark (issue 4, Numbers): precompiling a multi-megabyte C file against
//! `gcc -fsyntax-only` on the same file, measured in the same run; prints both medians and the
//! ratio (the goal: at most 0.25). Timings never gate anything.
//!
//! ```text
//! cargo run --release -p invite-instrumenter --example precompile_bench            # generated 8 MB file
//! cargo run --release -p invite-instrumenter --example precompile_bench -- FILE.c [FILE.ic] [RUNS]
//! ```
//! Without arguments it writes a deterministic C file of about 8 MB (a few thousand functions
//! with loops, structs, switch statements and string literals) and a `.ic` that tests three of
//! them, one near the start, one in the middle and one at the end. With FILE.c (for example
//! sqlite3.c, 9 MB, from the `libsqlite3-sys` package), FILE.ic defaults to FILE.c's sibling.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = std::env::temp_dir().join(format!("invite-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (c, ic) = match args.first() {
        Some(c) => {
            let c = PathBuf::from(c);
            let ic = args
                .get(1)
                .filter(|a| a.ends_with(".ic"))
                .map(PathBuf::from)
                .unwrap_or_else(|| c.with_extension("ic"));
            (c, ic)
        }
        None => generate(&dir),
    };
    let runs: usize = args
        .iter()
        .filter_map(|a| a.parse().ok())
        .next()
        .unwrap_or(7);
    let precompile = precompile_exe();
    let out = dir.join("out.c");
    let size = std::fs::metadata(&c).unwrap().len();
    println!(
        "file: {} ({:.1} MB), {runs} runs each, interleaved",
        c.display(),
        size as f64 / 1e6
    );
    let mut ours = Vec::new();
    let mut gcc = Vec::new();
    for _ in 0..runs {
        ours.push(time(
            Command::new(&precompile)
                .arg(&c)
                .arg(&ic)
                .arg("-o")
                .arg(&out),
        ));
        gcc.push(time(
            Command::new("gcc").arg("-fsyntax-only").arg("-w").arg(&c),
        ));
    }
    let (o, g) = (median(&mut ours), median(&mut gcc));
    println!("invite-precompile: median {:.1} ms", o.as_secs_f64() * 1e3);
    println!(
        "gcc -fsyntax-only: median {:.1} ms (baseline)",
        g.as_secs_f64() * 1e3
    );
    println!(
        "ratio: {:.3} (goal: <= 0.25)",
        o.as_secs_f64() / g.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn precompile_exe() -> PathBuf {
    // The example lives in target/<profile>/examples/; the binary in target/<profile>/.
    let me = std::env::current_exe().unwrap();
    let bin = me
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("invite-precompile");
    assert!(
        bin.is_file(),
        "build the binary first: cargo build --release -p invite-instrumenter ({} missing)",
        bin.display()
    );
    bin
}

fn time(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let out = cmd.output().expect("run");
    let t = start.elapsed();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    t
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// A deterministic multi-megabyte C file and its `.ic`.
fn generate(dir: &Path) -> (PathBuf, PathBuf) {
    const FUNCTIONS: usize = 12_000;
    let mut c = String::from("#include <stdio.h>\n#include <string.h>\n#include <stdlib.h>\n\n");
    c.push_str("struct record { int id; double weight; char name[32]; struct record *next; };\n\n");
    for i in 0..FUNCTIONS {
        let _ = write!(
            c,
            "/* function {i}: walks a list and mixes its fields */\n\
             static int helper_{i}(const struct record *r, int depth)\n{{\n\
             \x20   int acc = {i};\n\
             \x20   while (r != NULL && depth-- > 0) {{\n\
             \x20       switch (r->id % 4) {{\n\
             \x20       case 0: acc += (int)(r->weight * 2.5); break;\n\
             \x20       case 1: acc ^= (int)strlen(r->name); break;\n\
             \x20       case 2: acc -= r->id; break;\n\
             \x20       default: acc = acc * 31 + {i}; break;\n\
             \x20       }}\n\
             \x20       r = r->next;\n\
             \x20   }}\n\
             \x20   if (acc < 0) {{ fprintf(stderr, \"negative %d in {i}\\n\", acc); }}\n\
             \x20   return acc;\n}}\n\n\
             int entry_{i}(struct record *r, int depth)\n{{\n\
             \x20   char label[] = \"entry {{ {i} }}\";\n\
             \x20   (void)label;\n\
             \x20   return helper_{i}(r, depth) + (r ? r->id : 0);\n}}\n\n"
        );
    }
    let mut ic = String::new();
    for i in [0, FUNCTIONS / 2, FUNCTIONS - 1] {
        let _ = write!(ic, "int entry_{i}(struct record *r, int depth) post\nint check_{i}(struct record *r, int depth, int ret) .1 {{ return ret >= 0; }}\n\n");
    }
    let (cp, icp) = (dir.join("big.c"), dir.join("big.ic"));
    std::fs::write(&cp, c).unwrap();
    std::fs::write(&icp, ic).unwrap();
    (cp, icp)
}
