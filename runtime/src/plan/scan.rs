//! The start-up scan of the trees an unprivileged pod sees bound whole (see `bound_whole`): their
//! sockets and FIFOs, and the directories it may search but not list, to hide; or why the walk
//! could not see them all, to hide the whole tree.

/// Entries a tree walk visits at most (a tree bound whole is usually /run or /mnt); a tree
/// with more is hidden from pods.
const MAX_WALK: usize = 50_000;

/// What a pod must not reach in a tree bound whole: paths and whether each is a directory.
/// Sockets and FIFOs (a bound socket reaches its listener, a bound FIFO its reader), and the
/// directories this process may search but not list: what they hold is unknown, so they are
/// hidden whole (a pod with the same credentials could reach a socket in one by its name).
/// Not crossing into other file systems (their mounts are steps of their own). An error
/// saying why when the walk cannot see the tree: more than `MAX_WALK` entries, or the tree
/// itself unreadable. A directory it may not search is skipped: the pod, with the same
/// credentials, cannot reach below it either.
pub(super) fn sockets_and_fifos(tree: &str) -> Result<Vec<(String, bool)>, String> {
    walk_nodes(tree, MAX_WALK)
}

/// `sockets_and_fifos`, visiting at most `max` entries.
fn walk_nodes(tree: &str, max: usize) -> Result<Vec<(String, bool)>, String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = Vec::new();
    let dev = std::fs::symlink_metadata(tree)
        .map_err(|e| format!("cannot read {tree}: {e}"))?
        .dev();
    let mut todo = vec![std::path::PathBuf::from(tree)];
    let mut seen = 0;
    while let Some(dir) = todo.pop() {
        // Not `std::fs::read_dir`: its `opendir` calls the program's `malloc`, which a sampled
        // call may hold (the first pod probes the plan where pods are cold, `sys::heap`).
        let rd = match crate::sys::dir_entries_of(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // removed since
            Err(_) if !searchable(&dir) => continue,
            Err(e) if dir.as_os_str() == tree => return Err(format!("cannot list {tree}: {e}")),
            Err(e) => {
                warn_unlistable(&dir, &e);
                out.push((dir.to_string_lossy().into_owned(), true));
                continue;
            }
        };
        for (name, _) in rd {
            seen += 1;
            if seen > max {
                return Err(format!("more than {max} entries"));
            }
            let path = dir.join(name);
            let Ok(md) = std::fs::symlink_metadata(&path) else {
                continue; // gone, or `dir` not searchable
            };
            let ft = md.file_type();
            if ft.is_dir() && md.dev() == dev {
                todo.push(path);
            } else if ft.is_socket() || ft.is_fifo() {
                out.push((path.to_string_lossy().into_owned(), false));
            }
        }
    }
    Ok(out)
}

/// May this process look up names in `dir`? (A lookup of `dir/.` needs search permission.)
pub(super) fn searchable(dir: &std::path::Path) -> bool {
    !matches!(
        std::fs::symlink_metadata(dir.join(".")),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied
    )
}

/// Once per tree and process, on stderr: `tree` is hidden from pods, and why.
pub(super) fn warn_hidden(tree: &str, why: &str) {
    warn_once(&format!(
        "{tree} is hidden from pods (an empty directory there): a mount below it makes pods \
         see it whole, and its sockets and FIFOs could not all be found ({why})"
    ));
}

/// Once per tree and process, on stderr: `tree` could not be cut into pieces (`split`), and
/// why; pods see it bound whole, its sockets and FIFOs found now hidden.
pub(super) fn warn_whole(tree: &str, why: &str) {
    warn_once(&format!(
        "{tree} is bound whole in pods, read-only: a mount below it, and it cannot be cut \
         into pieces ({why}; INVITE_MAX_PIECES sets the limit); a FIFO the host makes there \
         after start-up is reachable from pods"
    ));
}

/// Once per directory and process, on stderr: `dir`, which this process may search but not
/// list, is hidden from pods.
fn warn_unlistable(dir: &std::path::Path, e: &std::io::Error) {
    warn_once(&format!(
        "{} is hidden from pods (an empty directory there): pods see the tree around it whole, \
         and what it holds cannot be listed to hide its sockets and FIFOs ({e})",
        dir.display()
    ));
}

/// `invite: {text}` on stderr, once per process.
fn warn_once(text: &str) {
    static WARNED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    if !warned.iter().any(|t| t == text) {
        warned.push(text.to_string());
        eprintln!("invite: {text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scan_finds_sockets_and_fifos_below_and_says_when_it_cannot_see_all() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        let sock = sub.join("s.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let fifo = d.path().join("a/f.fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success());
        std::fs::write(d.path().join("a/plain"), "x").unwrap();
        let tree = d.path().to_str().unwrap();
        let mut found = walk_nodes(tree, 100).unwrap();
        found.sort();
        let want = [sock, fifo].map(|p| (p.to_string_lossy().into_owned(), false));
        assert_eq!(found, want);
        // Five entries (a, a/b, a/f.fifo, a/plain, a/b/s.sock): a walk of four is incomplete.
        assert_eq!(walk_nodes(tree, 5).unwrap().len(), 2);
        let err = walk_nodes(tree, 4).unwrap_err();
        assert!(err.contains("more than 4 entries"), "{err}");
        assert!(walk_nodes(&format!("{tree}/absent"), 100).is_err());
    }
}
