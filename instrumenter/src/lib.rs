//! `invite-precompile`: rewrite C so the functions named in a `.ic` file run in vivo tests.
//!
//! The steps, one module each: `parse` (a lexical scan of the `.c` file and a reader of the
//! function heads it needs, which takes unknown identifiers for macros; a small parser for the
//! `.ic` format) → `plan` (which definitions, which tests, which phase; every refusal) →
//! `rewrite` (the instrumented translation unit, with `#line` into both inputs) → `emit`
//! (atomic write of a regular file, never over an input). [`skeleton`] writes a starter `.ic`. [`runtime`] locates the runtime's header and library for `--cflags`,
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
//!
//! # In memory
//!
//! ```
//! let c = b"int inc(int a) { return a + 1; }\n".to_vec();
//! let ic = b"int inc(int a) both\nint inc_grows(int a, int r) post 1.0 { return r > a; }\n".to_vec();
//! let out = invite_instrumenter::instrument("inc.c", c, "inc.ic", ic).unwrap();
//! assert!(String::from_utf8(out).unwrap().contains("#include \"invite.h\""));
//! ```

#![warn(missing_docs)]

pub mod docgen;
mod emit;
pub mod error;
mod parse;
mod plan;
mod rewrite;
pub mod runtime;
pub mod skeleton;

pub use error::{Diagnostic, Error, Location, Result};
pub use runtime::{write_header, Runtime};

/// For the fuzz targets in instrumenter/fuzz; not part of the API.
#[doc(hidden)]
pub mod fuzzing {
    /// Parses `data` as a `.ic` file alone. Panics if an error points outside the file.
    pub fn ic_parser(data: &[u8]) {
        let src = crate::parse::Source::new("f.ic", data.to_vec());
        if let Err(d) = crate::parse::ic::parse(&src) {
            assert!(d.location.line >= 1 && d.location.column >= 1);
            assert!(d.location.line <= data.iter().filter(|&&b| b == b'\n').count() + 1);
        }
    }
}

use parse::Source;
use std::path::{Path, PathBuf};

/// Instrument C source text with the tests of a `.ic` file; the names are used in diagnostics,
/// `#line` directives and journal sites. Returns the new translation unit.
///
/// ```
/// let c = b"int twice(int a) { return 2 * a; }\n".to_vec();
/// let bad = b"int twice(int a) sometimes\n".to_vec();
/// let e = invite_instrumenter::instrument("twice.c", c, "twice.ic", bad).unwrap_err();
/// assert!(e.to_string().starts_with("twice.ic:1:"), "{e}");
/// ```
pub fn instrument(
    c_name: &str,
    c_text: Vec<u8>,
    ic_name: &str,
    ic_text: Vec<u8>,
) -> Result<Vec<u8>> {
    let job = Job::plan(Source::new(c_name, c_text), Source::new(ic_name, ic_text))?;
    let mut out = Vec::with_capacity(job.c.text.len() + 2 * job.ic_src.text.len());
    job.write_to(&mut out)
        .map_err(|e| Error::io(c_name, "cannot write the output", e))?;
    Ok(out)
}

/// A `.c` and a `.ic` file, planned: everything that can be wrong with them has been found, and
/// the output can be written as it is produced.
struct Job {
    c: Source,
    ic_src: Source,
    ic: parse::ic::IcFile,
    plan: plan::Plan,
}

impl Job {
    fn plan(c: Source, ic_src: Source) -> Result<Job> {
        let ic = parse::ic::parse(&ic_src)?;
        let plan = plan::plan(&c, &ic_src, &ic)?;
        Ok(Job {
            c,
            ic_src,
            ic,
            plan,
        })
    }

    /// Reads `c` and its `.ic` (`ic`, or the sibling) and plans.
    fn read(c: &Path, ic: Option<&Path>) -> Result<Job> {
        let ic = ic
            .map(Path::to_path_buf)
            .unwrap_or_else(|| default_ic_path(c));
        let c_src = Source::new(c.to_string_lossy(), read(c)?);
        Job::plan(c_src, Source::new(ic.to_string_lossy(), read(&ic)?))
    }

    fn write_to(&self, sink: &mut dyn std::io::Write) -> std::io::Result<()> {
        rewrite::rewrite(&self.c, &self.ic_src, &self.ic, &self.plan, sink)
    }
}

/// The `.ic` file that goes with a `.c` file: same path, extension `.ic`.
///
/// ```
/// use std::path::Path;
/// let ic = invite_instrumenter::default_ic_path(Path::new("src/bank.c"));
/// assert_eq!(ic, Path::new("src/bank.ic"));
/// ```
pub fn default_ic_path(c: &Path) -> PathBuf {
    c.with_extension("ic")
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, "cannot read", e))
}

/// Instrument `c` (with `ic`, or the sibling `.ic`) and write the result to `out` atomically.
/// `out` must not be an input, nor anything but a regular file (or `/dev/null`).
///
/// ```no_run
/// use std::path::Path;
/// // Reads src/bank.c and src/bank.ic.
/// invite_instrumenter::instrument_file(Path::new("src/bank.c"), None, Path::new("build/bank.c"))
///     .unwrap_or_else(|e| panic!("{e}"));
/// ```
pub fn instrument_file(c: &Path, ic: Option<&Path>, out: &Path) -> Result<()> {
    let ic = ic
        .map(Path::to_path_buf)
        .unwrap_or_else(|| default_ic_path(c));
    emit::check_output(out, &[c, &ic])?;
    let job = Job::read(c, Some(&ic))?;
    emit::write_output_with(out, &[c, &ic], &mut |w| job.write_to(w))
}

/// Like [`instrument_file`], returning the output instead of writing it.
///
/// ```no_run
/// let c = invite_instrumenter::instrument_to_vec("src/bank.c".as_ref(), None).unwrap();
/// std::io::Write::write_all(&mut std::io::stdout(), &c).unwrap();
/// ```
pub fn instrument_to_vec(c: &Path, ic: Option<&Path>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    instrument_to_writer(c, ic, &mut out, "<memory>")?;
    Ok(out)
}

/// Like [`instrument_file`], writing the output to `sink` as it is produced (nothing is written
/// when the input has an error); a failure to write names the sink `sink_name`.
///
/// ```no_run
/// let stdout = std::io::stdout();
/// invite_instrumenter::instrument_to_writer("src/bank.c".as_ref(), None, &mut stdout.lock(), "<stdout>")
///     .unwrap();
/// ```
pub fn instrument_to_writer(
    c: &Path,
    ic: Option<&Path>,
    sink: &mut dyn std::io::Write,
    sink_name: &str,
) -> Result<()> {
    let job = Job::read(c, ic)?;
    job.write_to(sink)
        .and_then(|_| sink.flush())
        .map_err(|e| Error::io(sink_name, "cannot write", e))
}

/// A starter `.ic` for the C file `c` (see [`skeleton`]).
///
/// ```no_run
/// let sk = invite_instrumenter::skeleton_of("src/bank.c".as_ref()).unwrap();
/// println!("{} of {} definitions instrumented", sk.instrumented, sk.found);
/// ```
pub fn skeleton_of(c: &Path) -> Result<skeleton::Skeleton> {
    let src = Source::new(c.to_string_lossy(), read(c)?);
    src.check_text("C")?;
    Ok(skeleton::skeleton(&src)?)
}

/// Write the skeleton of `c` to `out`. An existing `out` is never replaced (it may hold tests
/// someone wrote), except `/dev/null`.
///
/// ```no_run
/// invite_instrumenter::skeleton_file("src/bank.c".as_ref(), "src/bank.ic".as_ref()).unwrap();
/// ```
pub fn skeleton_file(c: &Path, out: &Path) -> Result<skeleton::Skeleton> {
    emit::check_output(out, &[c])?;
    if out.symlink_metadata().is_ok() && std::fs::metadata(out).is_ok_and(|m| m.is_file()) {
        return Err(Error::io(
            out,
            "refusing to write the skeleton",
            std::io::Error::other(
                "the file exists (a skeleton never replaces a .ic; move it away first)",
            ),
        ));
    }
    let sk = skeleton_of(c)?;
    emit::write_output(out, &sk.text, &[c])?;
    Ok(sk)
}

/// What `--dir` did: the files it wrote, and the entries it left out and why.
#[derive(Debug, Default)]
pub struct DirReport {
    /// The instrumented files, under the output directory.
    pub written: Vec<PathBuf>,
    /// Entries of the source directory left out, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Every `x.c` under `src` that has an `x.ic` beside it, instrumented into the same relative
/// path under `dst`. Other files are not copied. Returns the files written; all failures are
/// reported together (each file is written whole or not at all).
///
/// ```no_run
/// for f in invite_instrumenter::instrument_dir("src".as_ref(), "build/src".as_ref()).unwrap() {
///     println!("wrote {}", f.display());
/// }
/// ```
pub fn instrument_dir(src: &Path, dst: &Path) -> Result<Vec<PathBuf>> {
    instrument_dir_report(src, dst).map(|r| r.written)
}

/// [`instrument_dir`], also saying which entries were skipped and why: symbolic links (not
/// followed), `.c`/`.ic` names that are not regular files, a `.ic` without its `.c`, and `dst`
/// itself when it lies inside `src`. `dst` equal to `src` is refused (every output would
/// overwrite its input).
///
/// ```no_run
/// let r = invite_instrumenter::instrument_dir_report("src".as_ref(), "build/src".as_ref()).unwrap();
/// for (path, why) in &r.skipped {
///     eprintln!("skipped {}: {why}", path.display());
/// }
/// ```
pub fn instrument_dir_report(src: &Path, dst: &Path) -> Result<DirReport> {
    std::fs::create_dir_all(dst).map_err(|e| Error::io(dst, "cannot create directory", e))?;
    let src_real = src
        .canonicalize()
        .map_err(|e| Error::io(src, "cannot read the directory", e))?;
    let dst_real = dst.canonicalize().ok();
    if dst_real.as_deref() == Some(src_real.as_path()) {
        return Err(Error::io(
            dst,
            "refusing to write the output",
            std::io::Error::other(format!(
                "--out is the --dir {}: every output would overwrite its input",
                src.display()
            )),
        ));
    }
    let mut report = DirReport::default();
    let mut errors = Vec::new();
    let mut walk = walkdir::WalkDir::new(src).sort_by_file_name().into_iter();
    while let Some(entry) = walk.next() {
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
        let ft = entry.file_type();
        if ft.is_dir() {
            if entry.depth() > 0 && path.canonicalize().ok() == dst_real {
                report
                    .skipped
                    .push((path.to_path_buf(), "the --out directory".into()));
                walk.skip_current_dir();
            }
            continue;
        }
        let ext = path.extension().and_then(|x| x.to_str());
        if !matches!(ext, Some("c" | "ic")) {
            continue;
        }
        if ft.is_symlink() && ext == Some("c") {
            report.skipped.push((
                path.to_path_buf(),
                "a symbolic link (not followed; instrument its target)".into(),
            ));
            continue;
        }
        if !ft.is_file() && !ft.is_symlink() {
            report
                .skipped
                .push((path.to_path_buf(), "not a regular file".into()));
            continue;
        }
        if ext == Some("ic") {
            if !path.with_extension("c").exists() && ft.is_file() {
                report
                    .skipped
                    .push((path.to_path_buf(), "no .c file beside it".into()));
            }
            continue;
        }
        let ic = default_ic_path(path);
        if !ic.exists() {
            continue; // a plain C file: nothing to instrument.
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
            Ok(()) => report.written.push(out),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(report)
    } else {
        Err(Error::Several(errors))
    }
}
