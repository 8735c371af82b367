//! Step 2: each `x.c` the command compiles that has an `x.ic` beside it is rewritten into a
//! private scratch directory (never beside the sources, so a Makefile's `*.c` wildcard does not
//! see it) under the same file name, and the command compiles that file instead. `#line`
//! directives keep the original names in diagnostics, `__FILE__` and debug line tables;
//! `-iquote` keeps `#include "x.h"` finding the headers beside the original.

use crate::args::{ic_of, Invocation};
use crate::error::{Error, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// One source compiled in its instrumented form.
#[derive(Debug, Clone)]
pub struct Instrumented {
    /// As the command line named it.
    pub original: PathBuf,
    /// The file the compiler reads instead.
    pub generated: PathBuf,
}

/// Rewrite every instrumentable source into `scratch`; returns the command's new arguments
/// (extra options appended, so the user's own `-I` come first) and what was rewritten.
pub fn instrument(
    inv: &Invocation,
    scratch: &Path,
    include_dir: &Path,
) -> Result<(Vec<OsString>, Vec<Instrumented>)> {
    let mut args = inv.args.clone();
    let mut done = Vec::new();
    let mut extra: Vec<OsString> = vec![format!("-I{}", include_dir.display()).into()];
    for (n, i) in inv.instrumentable().into_iter().enumerate() {
        let original = PathBuf::from(&inv.args[i]);
        let dir = scratch.join(n.to_string());
        std::fs::create_dir(&dir).map_err(|source| Error::Io {
            what: "cannot create",
            path: dir.clone(),
            source,
        })?;
        let name = original.file_name().expect("a .c file has a name");
        let generated = dir.join(name);
        invite_instrumenter::instrument_file(&original, Some(&ic_of(&original)), &generated)?;
        let src_dir = match original.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        extra.push("-iquote".into());
        extra.push(src_dir.clone().into());
        let mut map = OsString::from("-fdebug-prefix-map=");
        map.push(&dir);
        map.push("=");
        map.push(&src_dir);
        extra.push(map);
        args[i] = generated.clone().into();
        done.push(Instrumented {
            original,
            generated,
        });
    }
    args.extend(extra);
    Ok((args, done))
}
