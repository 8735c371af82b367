use super::*;

use std::cell::Cell;

// Per thread: the handlers run on the forking thread (and the child's copy of it), so forks that
// other tests make at the same time on other threads do not count here.
thread_local! {
    static PROGRAMS_PREPARE_RAN: Cell<bool> = const { Cell::new(false) };
    static OURS: Cell<u32> = const { Cell::new(0) };
}

extern "C" fn programs_prepare() {
    PROGRAMS_PREPARE_RAN.with(|r| r.set(true));
}

/// Prepare, parent and child add 1, 10 and 100 (the child's count is what the child saw).
fn add(n: u32) {
    OURS.with(|c| c.set(c.get() + n));
}
extern "C" fn our_prepare() {
    add(1);
}
extern "C" fn our_parent() {
    add(10);
}
extern "C" fn our_child() {
    add(100);
}

/// A direct fork runs the handlers the runtime registered, and not a program's own
/// `pthread_atfork` handler (which glibc's fork would run).
#[test]
fn a_direct_fork_runs_the_runtimes_handlers_and_not_the_programs() {
    // SAFETY: the handlers only touch thread-locals of const initializers (no allocation).
    unsafe {
        libc::pthread_atfork(Some(programs_prepare), None, None);
        at_fork(our_prepare, our_parent, our_child);
    }
    let before = OURS.with(Cell::get);
    // SAFETY: the child only reads thread-locals and exits with `_exit`.
    match unsafe { fork_direct() }.unwrap() {
        Forked::Child => {
            let ok = OURS.with(Cell::get) - before == 101 && !PROGRAMS_PREPARE_RAN.with(Cell::get);
            crate::sys::exit_now(if ok { 0 } else { 1 });
        }
        Forked::Parent(pid) => {
            let (_, status, _) = crate::sys::wait4(pid, 0).unwrap();
            assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        }
    }
    assert_eq!(OURS.with(Cell::get) - before, 11);
    assert!(!PROGRAMS_PREPARE_RAN.with(Cell::get));
}

extern "C" {
    static mut stderr: *mut libc::FILE;
    fn flockfile(f: *mut libc::FILE);
    fn funlockfile(f: *mut libc::FILE);
    fn ftrylockfile(f: *mut libc::FILE) -> libc::c_int;
}

/// A C stream another thread holds at the fork is free in the child, as after glibc's fork.
#[test]
fn a_stream_another_thread_holds_is_free_after_a_direct_fork() {
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        // SAFETY: glibc's `stderr` is a valid stream for the life of the process.
        unsafe { flockfile(stderr) };
        held_tx.send(()).unwrap();
        let _ = done_rx.recv();
        // SAFETY: locked above by this thread.
        unsafe { funlockfile(stderr) };
    });
    held_rx.recv().unwrap();
    // SAFETY: the child only tries the stream's lock and exits with `_exit`.
    let forked = unsafe { fork_direct() }.unwrap();
    if let Forked::Child = forked {
        // SAFETY: as above.
        let free = unsafe { ftrylockfile(stderr) } == 0;
        crate::sys::exit_now(if free { 0 } else { 1 });
    }
    done_tx.send(()).unwrap();
    holder.join().unwrap();
    let Forked::Parent(pid) = forked else {
        unreachable!()
    };
    let (_, status, _) = crate::sys::wait4(pid, 0).unwrap();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child status {status:#x}"
    );
}
