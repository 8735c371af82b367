//! `invite-precompile`: rewrite C so the functions named in a `.ic` file run in vivo tests.
//!
//! The steps, one module each: [`parse`] (tree-sitter-c for the `.c` file, a small parser for
//! the `.ic` format) → [`plan`] (which definitions, which tests, which phase; every refusal) →
//! [`rewrite`] (the instrumented translation unit, with `#line` into both inputs) → [`emit`]
//! (atomic write). [`runtime`] locates the runtime's header and library for `--cflags`,
//! `--libs` and pkg-config. This crate knows nothing about pods: the generated code calls the
//! runtime's call-site API in `invite.h` and nothing else.
//!
//! # In a build script (with the `cc` crate)
//!
//! ```no_run
//! let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
//! invite_instrumenter::instrument_file("src/bank.c".as_ref(), None, &out.join("bank.c")).unwrap();
//! invite_instrumenter::write_header(&out).unwrap();
//! // cc::Build::new().file(out.join("bank.c")).include(&out).include("src").compile("bank");
//! println!("cargo:rerun-if-changed=src/bank.c");
//! println!("cargo:rerun-if-changed=src/bank.ic");
//! ```
//! The Rust program links the runtime by depending on the `invite` crate.

pub mod docgen;
pub mod emit;
pub mod error;
pub mod parse;
pub mod plan;
pub mod rewrite;
pub mod runtime;

pub use error::{Diagnostic, Error, Location, Result};
pub use runtime::{write_header, Runtime};

use parse::Source;
use std::path::{Path, PathBuf};

/// Instrument C source text with the tests of a `.ic` file; the names are used in diagnostics,
/// `#line` directives and journal sites. Returns the new translation unit.
pub fn instrument(
    c_name: &str,
    c_text: Vec<u8>,
    ic_name: &str,
    ic_text: Vec<u8>,
) -> Result<Vec<u8>> {
    let c = Source::new(c_name, c_text);
    let ic_src = Source::new(ic_name, ic_text);
    let ic = parse::ic::parse(&ic_src)?;
    let plan = plan::plan(&c, &ic_src, &ic)?;
    Ok(rewrite::rewrite(&c, &ic_src, &ic, &plan))
}

/// The `.ic` file that goes with a `.c` file: same path, extension `.ic`.
pub fn default_ic_path(c: &Path) -> PathBuf {
    c.with_extension("ic")
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, "cannot read", e))
}

/// Instrument `c` (with `ic`, or the sibling `.ic`) and write the result to `out` atomically.
pub fn instrument_file(c: &Path, ic: Option<&Path>, out: &Path) -> Result<()> {
    let bytes = instrument_to_vec(c, ic)?;
    emit::write_atomic(out, &bytes)
}

/// Like [`instrument_file`], returning the output instead of writing it.
pub fn instrument_to_vec(c: &Path, ic: Option<&Path>) -> Result<Vec<u8>> {
    let ic = ic
        .map(Path::to_path_buf)
        .unwrap_or_else(|| default_ic_path(c));
    let c_text = read(c)?;
    let ic_text = read(&ic)?;
    instrument(&c.to_string_lossy(), c_text, &ic.to_string_lossy(), ic_text)
}

/// Every `x.c` under `src` that has an `x.ic` beside it, instrumented into the same relative
/// path under `dst`. Other files are not copied. Returns the files written; all failures are
/// reported together (each file is written whole or not at all).
pub fn instrument_dir(src: &Path, dst: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let mut errors = Vec::new();
    let mut entries: Vec<_> = walkdir::WalkDir::new(src)
        .sort_by_file_name()
        .into_iter()
        .collect();
    entries.retain(|e| !matches!(e, Ok(e) if !e.file_type().is_file()));
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let path = e
                    .path()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| src.to_path_buf());
                errors.push(Error::io(path, "cannot walk", e.into()));
                continue;
            }
        };
        let path = entry.path();
        if path.extension().is_none_or(|x| x != "c") || !default_ic_path(path).is_file() {
            continue;
        }
        let rel = path.strip_prefix(src).unwrap_or(path);
        let out = dst.join(rel);
        let result = (|| {
            if let Some(parent) = out.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| Error::io(parent, "cannot create directory", e))?;
            }
            instrument_file(path, None, &out)
        })();
        match result {
            Ok(()) => written.push(out),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(written)
    } else {
        Err(Error::Several(errors))
    }
}
