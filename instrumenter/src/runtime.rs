//! Where the runtime is, for builds: `--cflags`, `--libs`, `--pkg-config` and build scripts.
//!
//! Search order (the first that exists wins):
//! - header `invite.h`: `$INVITE_INCLUDE_DIR`; `<exe dir>/../include` (an installed prefix);
//!   `<exe dir>/../../runtime/include` (a `target/<profile>/` inside the workspace); the
//!   workspace this crate was built from.
//! - library `libinvite.a`: `$INVITE_LIB_DIR`; the executable's own directory (the same
//!   `target/<profile>/`), its parent (test binaries live in `target/<profile>/deps/`);
//!   `<exe dir>/../lib`; then `target/release/` and `target/debug/` beside it.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// What a C program that links the Rust staticlib `libinvite.a` also needs (from
/// `rustc --print native-static-libs` on linux-gnu).
pub const NATIVE_LIBS: &str = "-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc";

/// The runtime's call-site header, as this precompiler was built with it.
pub const HEADER: &str = include_str!("../../runtime/include/invite.h");

/// Write `invite.h` into `dir` (for build scripts: add `dir` to the include path).
pub fn write_header(dir: &Path) -> Result<PathBuf> {
    let path = dir.join("invite.h");
    crate::emit::write_atomic(&path, HEADER.as_bytes())?;
    Ok(path)
}

#[derive(Debug, Clone)]
pub struct Runtime {
    pub include_dir: PathBuf,
    /// `libinvite.a`, when it has been built.
    pub library: Option<PathBuf>,
    /// Where the library was looked for, for the error message.
    searched: Vec<PathBuf>,
}

impl Runtime {
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
        includes.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/include"));
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

    /// Flags to compile instrumented C: `-I<include dir>`.
    pub fn cflags(&self) -> String {
        format!("-I{}", self.include_dir.display())
    }

    /// Flags to link (statically) against the runtime; they go after the objects.
    pub fn libs(&self) -> Result<String> {
        let lib = self.library.as_ref().ok_or_else(|| {
            Error::Runtime(format!(
                "libinvite.a not found (looked in {}); build it with `cargo build -p invite --release` or set INVITE_LIB_DIR",
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
