//! The mounts a pod makes, in order, parents first, each with the descriptor of its source
//! opened before the scratch is mounted (which may cover its path).

use super::c;
use crate::plan::{cut, MountAction, Piece, Plan};
use crate::pod::SetupError;
use crate::sys;
use std::os::fd::{AsRawFd, IntoRawFd};

/// One mount of the pod.
pub(super) struct PodStep {
    pub path: String,
    pub action: MountAction,
    /// Descriptor of an overlay's lower layer or a bind's source.
    pub source: Option<i32>,
}

/// The mounts to make. As root, `/` is one overlay. In a user namespace the host's `/` has
/// locked submounts and cannot be an overlay's lower layer, so the pod root is the scratch
/// itself, with each top-level directory of the host overlaid, and top-level links recreated;
/// a tree with a mount below is cut into pieces (`plan::split`), bound whole where it could not
/// be at start-up, or hidden where it grew past twice the pieces since.
pub(super) fn steps(plan: &Plan) -> Result<Vec<PodStep>, SetupError> {
    let mut out = Vec::new();
    let per_entry = plan.userns_fd.is_some();
    for m in &plan.mounts {
        if per_entry && m.path == "/" {
            for e in plan.root_entries.iter().filter(|e| e.is_dir) {
                // Links and files: see `root_links`.
                let path = format!("/{}", e.name);
                if !plan.mounts.iter().any(|p| p.path == path) {
                    out.push(step(path, MountAction::Overlay));
                }
            }
            continue;
        }
        // As root, an empty /dev/shm needs no overlay: the pod gets an empty directory in its
        // /dev (made in the root overlay's upper layer), whose files are the pod's own anyway.
        if !per_entry && m.path == "/dev/shm" && dir_is_empty(&m.path) {
            continue;
        }
        out.push(step(m.path.clone(), m.action.clone()));
    }
    let mut pieces = Vec::new();
    for s in out.iter_mut().filter(|s| plan.bound.contains(&s.path)) {
        if !plan.split.contains(&s.path) {
            // Hidden: a tree the start-up scan could not walk fully.
            s.action = match plan.hidden.contains(&s.path) {
                true => MountAction::Hide,
                false => MountAction::BindReadOnly,
            };
            continue;
        }
        match cut(&s.path, &plan.points, 2 * plan.max_pieces) {
            Ok(p) => {
                s.action = MountAction::Dir;
                pieces.extend(p);
            }
            Err(_) => s.action = MountAction::Hide,
        }
    }
    for (path, piece) in pieces {
        if !out.iter().any(|s| s.path == path) {
            out.push(step(path, action_of(piece)));
        }
    }
    out.sort_by_key(|s| {
        if s.path == "/" {
            0
        } else {
            s.path.matches('/').count()
        }
    });
    for s in out.iter_mut() {
        let path = c(&s.path)?;
        // A path that cannot be opened is left out of the pod below.
        let source = match s.action {
            // A copy of the tree taken now, before the scratch is mounted (which may sit on a
            // directory of the tree, and would show up in a recursive bind taken later).
            MountAction::BindReadOnly => sys::open_tree_clone(&path).ok(),
            MountAction::Overlay | MountAction::OverlayReadOnly => {
                sys::open(&path, libc::O_PATH | libc::O_CLOEXEC, 0).ok()
            }
            MountAction::File => regular_file(&path),
            MountAction::Proc
            | MountAction::Dev
            | MountAction::Dir
            | MountAction::Link(_)
            | MountAction::Hide => None,
        };
        // Closed once every step is done (`prepare`).
        s.source = source.map(IntoRawFd::into_raw_fd);
    }
    Ok(out)
}

fn step(path: String, action: MountAction) -> PodStep {
    PodStep {
        path,
        action,
        source: None,
    }
}

fn action_of(piece: Piece) -> MountAction {
    match piece {
        Piece::Dir => MountAction::Dir,
        Piece::Tree => MountAction::OverlayReadOnly,
        Piece::File => MountAction::File,
        Piece::Link(target) => MountAction::Link(target),
    }
}

/// `path`, opened without following a link, if it is a regular file now: the listing saw one,
/// but the host may have put a FIFO or socket there since, which a bind would reach.
fn regular_file(path: &std::ffi::CStr) -> Option<std::os::fd::OwnedFd> {
    let fd = sys::open(path, libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC, 0).ok()?;
    let st = sys::fstat(fd.as_raw_fd()).ok()?;
    (st.st_mode & libc::S_IFMT == libc::S_IFREG).then_some(fd)
}

fn dir_is_empty(path: &str) -> bool {
    sys::cstring(path)
        .and_then(|p| sys::dir_entries(&p))
        .is_ok_and(|d| d.is_empty())
}
