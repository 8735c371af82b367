//! Step 4, `emit`: write the output atomically — a temporary file beside the target, then a
//! rename — so a failed run never leaves a partial or stale-looking output file.

use crate::error::{Error, Result};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let mut attempt = 0u32;
    let (tmp, mut file) = loop {
        let tmp = dir.join(format!(
            ".{base}.invite-tmp-{}-{attempt}",
            std::process::id()
        ));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1
            }
            Err(e) => return Err(Error::io(path, "cannot create the output file", e)),
        }
    };
    let result = file
        .write_all(bytes)
        .and_then(|_| file.flush())
        .map_err(|e| Error::io(path, "cannot write the output file", e))
        .and_then(|_| {
            fs::rename(&tmp, path)
                .map_err(|e| Error::io(path, "cannot move the output into place", e))
        });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
