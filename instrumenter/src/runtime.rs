//! Where the runtime is, for builds: `--cflags`, `--libs`, `--pkg-config` and build scripts.
//!
//! Search order (the first that exists wins):
//! - header `invite.h`: `$INVITE_INCLUDE_DIR`; `<exe dir>/../include` (an installed prefix);
//!   `<exe dir>/../../runtime/include` (a `target/<profile>/` inside the workspace); the
//!   runtime package this crate was built with.
//! - library `libinvite.a`: `$INVITE_LIB_DIR`; the executable's own directory (the same
//!   `target/<profile>/`), its parent (test binaries live in `target/<profile>/deps/`);
//!   `<exe dir>/../lib`; then `target/release/` and `target/debug/` beside it; then the cache
//!   where [`Runtime::build_library`] puts it.
//!
//! A precompiler installed alone (`cargo install invite-instrumenter`) has its header (embedded,
//! and in the runtime package it was built with) but no library beside it: `--libs`,
//! `--pkg-config` and `invite-cc` then build `libinvite.a` once, on first use, from the source
//! of the runtime package this precompiler was built with (in cargo's registry), into
//! `$XDG_CACHE_HOME/invite/<version>/` (default `~/.cache/invite/<version>/`).

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// What a C program that links the Rust staticlib `libinvite.a` also needs (from
/// `rustc --print native-static-libs` on linux-gnu).
pub const NATIVE_LIBS: &str = "-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc";

/// The runtime's call-site header, as this precompiler was built with it.
pub const HEADER: &str = include_str!(env!("INVITE_HEADER"));

/// Write `invite.h` into `dir` (for build scripts: add `dir` to the include path).
pub fn write_header(dir: &Path) -> Result<PathBuf> {
    let path = dir.join("invite.h");
    crate::emit::write_atomic(&path, HEADER.as_bytes())?;
    Ok(path)
}

/// The runtime's header and library as found on this machine, for compiling and linking
/// instrumented C.
///
/// ```no_run
/// let rt = invite_instrumenter::Runtime::locate().unwrap();
/// println!("cc $CFLAGS {} -c bank.c", rt.cflags());
/// println!("cc bank.o {}", rt.libs().unwrap());
/// ```
#[derive(Debug, Clone)]
pub struct Runtime {
    /// The directory that holds `invite.h` (for `-I`).
    pub include_dir: PathBuf,
    /// `libinvite.a`, when it has been built.
    pub library: Option<PathBuf>,
    /// Where the library was looked for, for the error message.
    searched: Vec<PathBuf>,
}

impl Runtime {
    /// Find the header and the library in the search order of the module docs; an error when
    /// no `invite.h` is found. A missing library is not an error here ([`Runtime::library`] is
    /// `None`; [`Runtime::build_library`] and [`Runtime::libs`] build it).
    pub fn locate() -> Result<Runtime> {
        let exe_dir = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf));
        let env_dir = |name: &str| std::env::var_os(name).map(PathBuf::from);
        let mut includes: Vec<PathBuf> = env_dir("INVITE_INCLUDE_DIR").into_iter().collect();
        let mut libs: Vec<PathBuf> = env_dir("INVITE_LIB_DIR").into_iter().collect();
        if let Some(d) = &exe_dir {
            includes.push(d.join("../include"));
            includes.push(d.join("../../runtime/include"));
            libs.push(d.clone());
            libs.push(d.join(".."));
            libs.push(d.join("../lib"));
            for profile in ["release", "debug"] {
                libs.push(d.join("..").join(profile));
                libs.push(d.join("../..").join(profile));
            }
        }
        includes.push(PathBuf::from(env!("INVITE_INCLUDE_DIR_BUILT")));
        libs.extend(cache_dir().map(|c| c.join("target/release")));
        let include_dir = includes
            .iter()
            .find(|d| d.join("invite.h").is_file())
            .map(|d| clean(d))
            .ok_or_else(|| {
                Error::Runtime(format!(
                    "invite.h not found (looked in {}); set INVITE_INCLUDE_DIR",
                    list(&includes)
                ))
            })?;
        let library = libs
            .iter()
            .find(|d| d.join("libinvite.a").is_file())
            .map(|d| clean(&d.join("libinvite.a")));
        Ok(Runtime {
            include_dir,
            library,
            searched: libs,
        })
    }

    /// The library, built now into the cache if it was not found (see the module docs): cargo
    /// builds the runtime package this precompiler was built with; its output goes to stderr.
    pub fn build_library(&mut self) -> Result<&Path> {
        if self.library.is_none() {
            let source = Path::new(env!("INVITE_INCLUDE_DIR_BUILT")).join("..");
            let manifest = source.join("Cargo.toml");
            let cache = cache_dir().ok_or_else(|| {
                Error::Runtime("libinvite.a not found, and neither XDG_CACHE_HOME nor HOME is set to build it in".into())
            })?;
            if !manifest.is_file() {
                return Err(Error::Runtime(format!(
                    "libinvite.a not found (looked in {}), and the runtime's source it would be built from is gone ({}); reinstall, or set INVITE_LIB_DIR",
                    list(&self.searched),
                    clean(&manifest).display()
                )));
            }
            let target = cache.join("target");
            eprintln!(
                "invite: building libinvite.a {} into {} (first use only)",
                env!("CARGO_PKG_VERSION"),
                target.display()
            );
            // The library is a crate of its own (its global allocator is the C library's), whose
            // root travels in the runtime's package.
            let clib = cache.join("clib");
            std::fs::create_dir_all(&clib)
                .and_then(|()| std::fs::write(clib.join("Cargo.toml"), clib_manifest(&source)))
                .map_err(|e| {
                    Error::Runtime(format!(
                        "libinvite.a not found, and {} cannot be written to build it: {e}",
                        clib.display()
                    ))
                })?;
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = std::process::Command::new(&cargo)
                .args(["build", "--release", "--lib", "--manifest-path"])
                .arg(clib.join("Cargo.toml"))
                .arg("--target-dir")
                .arg(&target)
                .stdout(std::process::Stdio::null())
                .status()
                .map_err(|e| {
                    Error::Runtime(format!(
                        "libinvite.a not found, and cargo ({}) cannot be run to build it: {e}",
                        Path::new(&cargo).display()
                    ))
                })?;
            let lib = target.join("release/libinvite.a");
            if !status.success() || !lib.is_file() {
                return Err(Error::Runtime(format!(
                    "building libinvite.a from {} failed ({status}); set INVITE_LIB_DIR to a built one",
                    clean(&source).display()
                )));
            }
            self.library = Some(lib);
        }
        Ok(self.library.as_deref().expect("set above"))
    }

    /// Flags to compile instrumented C: `-I<include dir>`.
    pub fn cflags(&self) -> String {
        format!("-I{}", self.include_dir.display())
    }

    /// Flags to link (statically) against the runtime; they go after the objects.
    pub fn libs(&self) -> Result<String> {
        let lib = self.library.as_ref().ok_or_else(|| {
            Error::Runtime(format!(
                "libinvite.a not found (looked in {}); build it with `cargo build -p invite-clib --release` or set INVITE_LIB_DIR",
                list(&self.searched)
            ))
        })?;
        Ok(format!("{} {NATIVE_LIBS}", lib.display()))
    }

    /// An `invite.pc` for pkg-config (`pkg-config --cflags --libs invite`).
    pub fn pkg_config(&self) -> Result<String> {
        let lib = self.libs()?;
        Ok(format!(
            "includedir={}\n\nName: invite\nDescription: In vivo testing for C: the invite runtime (static)\nVersion: {}\nCflags: -I${{includedir}}\nLibs: {lib}\n",
            self.include_dir.display(),
            env!("CARGO_PKG_VERSION"),
        ))
    }
}

/// The manifest of the C library's crate (as `runtime/clib/Cargo.toml` in the workspace), built
/// from the runtime package at `source`.
fn clib_manifest(source: &Path) -> String {
    let source = clean(source);
    let root = toml_string(&source.join("c_library.rs").display().to_string());
    let source = toml_string(&source.display().to_string());
    let version = env!("CARGO_PKG_VERSION");
    format!(
        r#"# Written by invite-precompile: the C library, built from the runtime's package.
[package]
name = "invite-clib"
version = "{version}"
edition = "2021"
publish = false

[lib]
name = "invite"
path = {root}
crate-type = ["staticlib"]

[dependencies]
invite = {{ package = "invite-rt", path = {source} }}

[profile.release.package.invite-rt]
codegen-units = 1

[workspace]
"#
    )
}

/// `s` as a TOML basic string.
fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `$XDG_CACHE_HOME/invite/<version>`, else `~/.cache/invite/<version>`.
fn cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| Path::new(d).is_absolute())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))?;
    Some(base.join("invite").join(env!("CARGO_PKG_VERSION")))
}

fn clean(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| clean(p).display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
