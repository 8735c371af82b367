//! Step 4, `emit`: write the output atomically — a temporary file beside the target, then a
//! rename — so a failed run never leaves a partial or stale-looking output file.
//!
//! Only regular files are written: a directory, device, FIFO or socket at the output path is
//! refused, never replaced (as root, renaming over `/dev/null` would break it for the whole
//! system). The one exception is `/dev/null` itself, the "just check it" idiom: the output is
//! written to it, like any program's, with no temporary file and no rename. An output that is the
//! same file as an input (also through a link) is refused.

use crate::error::{Error, Result};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// What a non-regular file is, for messages.
fn kind(ft: fs::FileType) -> &'static str {
    if ft.is_dir() {
        "a directory"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

fn refused(path: &Path, what: String) -> Error {
    Error::io(
        path,
        "refusing to write the output",
        std::io::Error::other(what),
    )
}

/// `/dev/null`, the character device (not some file that happens to be named so).
fn is_dev_null(path: &Path) -> bool {
    let Ok(m) = fs::metadata(path) else {
        return false;
    };
    let null = fs::metadata("/dev/null");
    m.file_type().is_char_device()
        && null.is_ok_and(|n| n.file_type().is_char_device() && n.rdev() == m.rdev())
}

/// Check that `path` may be replaced by a regular file: it does not exist, or it is a regular
/// file (or a link to one) that is not one of `inputs`; or it is `/dev/null`.
pub fn check_output(path: &Path, inputs: &[&Path]) -> Result<()> {
    if is_dev_null(path) {
        return Ok(());
    }
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A dangling link or nothing: the rename replaces the name only.
            return Ok(());
        }
        Err(e) => return Err(Error::io(path, "cannot inspect the output path", e)),
    };
    if !meta.file_type().is_file() {
        return Err(refused(
            path,
            format!(
                "it is {}; invite-precompile writes only regular files",
                kind(meta.file_type())
            ),
        ));
    }
    for input in inputs {
        if let Ok(m) = fs::metadata(input) {
            if m.dev() == meta.dev() && m.ino() == meta.ino() {
                return Err(refused(
                    path,
                    format!("it is the input {}", input.display()),
                ));
            }
        }
    }
    Ok(())
}

/// Write `bytes` to `path` (see the module docs), refusing to write over any of `inputs`.
pub fn write_output(path: &Path, bytes: &[u8], inputs: &[&Path]) -> Result<()> {
    write_output_with(path, inputs, &mut |w| w.write_all(bytes))
}

/// [`write_output`] of what `fill` writes, as it writes it (a large output never sits in
/// memory whole). A failure of `fill` leaves no output file.
pub fn write_output_with(path: &Path, inputs: &[&Path], fill: Fill) -> Result<()> {
    if is_dev_null(path) {
        return fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|mut f| fill(&mut f))
            .map_err(|e| Error::io(path, "cannot write the output file", e));
    }
    check_output(path, inputs)?;
    replace(path, fill, inputs)
}

/// What writes an output into the file it is given.
pub type Fill<'a> = &'a mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>;

/// [`write_output`] with no inputs to protect.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_output(path, bytes, &[])
}

fn replace(path: &Path, fill: Fill, inputs: &[&Path]) -> Result<()> {
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
    let result = fill(&mut file)
        .and_then(|_| file.flush())
        .map_err(|e| Error::io(path, "cannot write the output file", e))
        // Checked again right before the rename: what is there now is what gets replaced.
        .and_then(|_| match is_dev_null(path) {
            true => Err(refused(path, "it became /dev/null".into())),
            false => check_output(path, inputs),
        })
        .and_then(|_| {
            fs::rename(&tmp, path)
                .map_err(|e| Error::io(path, "cannot move the output into place", e))
        });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
