//! Trees cut into pieces. Not as root, a tree with a mount below it cannot be an overlay's lower
//! layer (the mount is locked), and a read-only bind of it whole lets a pod open the host's
//! FIFOs and reach its sockets (`EROFS` stops neither). Instead the tree is cut along the ways
//! to the mounts below it:
//!
//! - a directory on the way to a mount, a mount point, and a directory the pod could not search
//!   anyway become empty directories of the pod's own (`Piece::Dir`), holding the pieces below;
//! - every other directory is a read-only overlay of its own (`Piece::Tree`), through which a
//!   socket or FIFO is the overlay's inode, which no host process listens on or holds open;
//! - a regular file is bound read-only (`Piece::File`; checked to be one when the pod is made),
//!   a symbolic link recreated (`Piece::Link`);
//! - sockets, FIFOs and device nodes beside the ways are left out.
//!
//! Each piece costs a mount per pod, so a tree with more than `Plan::max_pieces`
//! (`INVITE_MAX_PIECES`, 128 by default) stays bound whole; a pod allows twice as many (the
//! tree grew since), and past that the tree is hidden from it (`MountAction::Hide`).
//! A tree bound whole is scanned (see `scan`). The pieces are listed again for every pod: what the host added or removed
//! since start-up shows, and a FIFO it made beside a way is left out like the others.

use crate::sys;

/// What a pod makes of one entry of a cut tree.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Piece {
    /// An empty directory of the pod's own.
    Dir,
    /// A directory with no mount below: a read-only overlay.
    Tree,
    /// A regular file: bound read-only.
    File,
    /// A symbolic link to this target, recreated.
    Link(String),
}

/// The pieces of `tree` (paths, parents first, `tree` itself not included), given every path
/// that is a mount point in the host or a mount of the pod's own (`points`). An error saying
/// why when there are more than `max`, or a directory on a way cannot be listed (what it holds
/// could not be placed).
pub fn cut(tree: &str, points: &[String], max: usize) -> Result<Vec<(String, Piece)>, String> {
    let mut out = Vec::new();
    let mut todo = vec![tree.to_string()];
    while let Some(dir) = todo.pop() {
        let entries = match sys::dir_entries_of(std::path::Path::new(&dir)) {
            Ok(e) => e,
            // The pod, with the same credentials, could not reach below it either.
            Err(_) if !super::scan::searchable(std::path::Path::new(&dir)) => continue,
            Err(e) => return Err(format!("cannot list {dir}: {e}")),
        };
        for (name, kind) in entries {
            let Some(name) = name.to_str() else {
                continue; // not UTF-8: left out
            };
            let path = format!("{}/{name}", dir.trim_end_matches('/'));
            let piece = if points.contains(&path) {
                Piece::Dir
            } else if points.iter().any(|p| super::is_under(p, &path)) {
                todo.push(path.clone());
                Piece::Dir
            } else {
                match of_kind(&path, kind) {
                    Some(p) => p,
                    None => continue,
                }
            };
            out.push((path, piece));
            if out.len() > max {
                return Err(format!("more than {max} pieces"));
            }
        }
    }
    out.sort_by_key(|(p, _)| p.matches('/').count());
    Ok(out)
}

/// The piece an entry that leads to no mount makes, from its `d_type` (`lstat` where the file
/// system does not say); `None` for sockets, FIFOs and device nodes.
fn of_kind(path: &str, kind: u8) -> Option<Piece> {
    let kind = match kind {
        libc::DT_UNKNOWN => {
            let ft = std::fs::symlink_metadata(path).ok()?.file_type();
            if ft.is_dir() {
                libc::DT_DIR
            } else if ft.is_file() {
                libc::DT_REG
            } else if ft.is_symlink() {
                libc::DT_LNK
            } else {
                return None;
            }
        }
        k => k,
    };
    match kind {
        libc::DT_DIR => Some(Piece::Tree),
        libc::DT_REG => Some(Piece::File),
        libc::DT_LNK => {
            let target = std::fs::read_link(path).ok()?;
            Some(Piece::Link(target.to_str()?.to_string()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_is_cut_along_the_ways_to_its_mounts() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().to_str().unwrap().to_string();
        for dir in ["way/to/point", "way/beside", "other/deep"] {
            std::fs::create_dir_all(format!("{t}/{dir}")).unwrap();
        }
        std::fs::write(format!("{t}/way/file"), "x").unwrap();
        std::os::unix::fs::symlink("other", format!("{t}/link")).unwrap();
        let sock = format!("{t}/way/host.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let fifo = format!("{t}/way/to/host.fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success());
        let points = vec![format!("{t}/way/to/point"), "/elsewhere".to_string()];
        let mut got = cut(&t, &points, 100).unwrap();
        got.sort();
        let p = |s: &str| format!("{t}/{s}");
        let mut want = vec![
            (p("link"), Piece::Link("other".into())),
            (p("other"), Piece::Tree),
            (p("way"), Piece::Dir),
            (p("way/beside"), Piece::Tree),
            (p("way/file"), Piece::File),
            (p("way/to"), Piece::Dir),
            (p("way/to/point"), Piece::Dir),
        ];
        want.sort();
        assert_eq!(got, want, "the socket and the FIFO are left out");
        // Seven pieces: a cut into six fails, saying why.
        assert!(cut(&t, &points, 7).is_ok());
        let err = cut(&t, &points, 6).unwrap_err();
        assert!(err.contains("more than 6 pieces"), "{err}");
        // Parents come before children.
        let got = cut(&t, &points, 100).unwrap();
        let at = |s: &str| got.iter().position(|(x, _)| *x == p(s)).unwrap();
        assert!(at("way") < at("way/to") && at("way/to") < at("way/to/point"));
    }
}
