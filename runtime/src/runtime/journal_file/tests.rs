//! The journal's creation racing forks of the same process: what a child sees.

use super::{create_in, creation, JOURNAL_TO_CREATE};
use crate::sys::{self, Forked};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;

/// In a freshly forked child (async-signal-safe calls only): 0 if the number in `slot` is an
/// open descriptor of the journal, and every descriptor of the journal it holds is the
/// runtime's (marked, so no pod inherits it); else what is wrong.
fn child_verdict(slot: &AtomicI32, ino: u64) -> i32 {
    let fd = slot.load(Ordering::Acquire);
    if fd >= 0 {
        match sys::fstat(fd) {
            Ok(st) if st.st_ino == ino => {}
            Ok(_) => return 2,  // the number is another object's
            Err(_) => return 3, // the number without the descriptor
        }
    }
    let mut listed = [0 as RawFd; 512];
    let n = sys::list_fds(&mut listed).unwrap_or(0);
    let stray = listed[..n]
        .iter()
        .any(|&f| sys::fstat(f).is_ok_and(|st| st.st_ino == ino) && !crate::ownfd::is_own(f));
    if stray {
        4 // the descriptor without its mark
    } else {
        0
    }
}

/// Forks while a thread creates the journal over and over (each fork waits for at most one
/// creation). Without the creation lock, hundreds of them see it half-created.
const FORKS: usize = 1000;

#[test]
fn a_fork_during_creation_sees_the_journal_whole_or_not_at_all() {
    super::register_fork_handlers();
    let dir = std::env::temp_dir().join(format!("invite-jrace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("invite.jsonl");
    std::fs::write(&path, b"").unwrap();
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap());
    let slot = Arc::new(AtomicI32::new(JOURNAL_TO_CREATE));
    let stop = Arc::new(AtomicBool::new(false));
    // A thread creates the journal over and over, as the runtime's thread does once.
    let creator = {
        let (slot, stop, path) = (slot.clone(), stop.clone(), path.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                create_in(&slot, || {
                    crate::journal::open_c(&crate::journal::c_path(&path).unwrap())
                })
                .unwrap();
                let _held = creation::Held::take();
                let fd = slot.swap(JOURNAL_TO_CREATE, Ordering::AcqRel);
                crate::ownfd::close(fd);
            }
        })
    };
    let mut bad = [0u32; 5];
    for _ in 0..FORKS {
        // SAFETY: the child only reads atomics, calls fstat and lists /proc/self/fd, then
        // _exit (async-signal-safe).
        match unsafe { sys::fork() }.unwrap() {
            Forked::Child => sys::exit_now(child_verdict(&slot, ino)),
            Forked::Parent(pid) => {
                let (_, status, _) = sys::wait4(pid, 0).unwrap();
                if let Some(n) = bad.get_mut(libc::WEXITSTATUS(status) as usize) {
                    *n += 1;
                }
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    creator.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let [_, failed, other, no_fd, unmarked] = bad;
    assert_eq!(
        (failed, other, no_fd, unmarked),
        (0, 0, 0, 0),
        "children of {FORKS} forks that saw the journal half-created: (a child that failed, its number another \
         object's, its number without the descriptor, the descriptor unmarked)"
    );
}
