use super::*;
use std::sync::atomic::AtomicBool;

static PROGRAMS_PREPARE_RAN: AtomicBool = AtomicBool::new(false);
static OURS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn programs_prepare() {
    PROGRAMS_PREPARE_RAN.store(true, Ordering::SeqCst);
}

/// Prepare, parent and child add 1, 10 and 100 (the child's count is what the child saw).
extern "C" fn our_prepare() {
    OURS.fetch_add(1, Ordering::SeqCst);
}
extern "C" fn our_parent() {
    OURS.fetch_add(10, Ordering::SeqCst);
}
extern "C" fn our_child() {
    OURS.fetch_add(100, Ordering::SeqCst);
}

/// A direct fork runs the handlers the runtime registered, and not a program's own
/// `pthread_atfork` handler (which glibc's fork would run).
#[test]
fn a_direct_fork_runs_the_runtimes_handlers_and_not_the_programs() {
    // SAFETY: the handlers only touch atomics.
    unsafe {
        libc::pthread_atfork(Some(programs_prepare), None, None);
        at_fork(our_prepare, our_parent, our_child);
    }
    let before = OURS.load(Ordering::SeqCst);
    // SAFETY: the child only reads atomics and exits with `_exit`.
    match unsafe { fork_direct() }.unwrap() {
        Forked::Child => {
            let ok = OURS.load(Ordering::SeqCst) - before == 101
                && !PROGRAMS_PREPARE_RAN.load(Ordering::SeqCst);
            crate::sys::exit_now(if ok { 0 } else { 1 });
        }
        Forked::Parent(pid) => {
            let (_, status, _) = crate::sys::wait4(pid, 0).unwrap();
            assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        }
    }
    assert_eq!(OURS.load(Ordering::SeqCst) - before, 11);
    assert!(!PROGRAMS_PREPARE_RAN.load(Ordering::SeqCst));
}

#[test]
fn the_thread_count_is_read_past_a_command_name_with_spaces_and_parentheses() {
    let line =
        b"4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 7 0 123 4096 100";
    assert_eq!(parse_num_threads(line), Some(7));
    assert_eq!(parse_num_threads(b"4242 (x) S 1"), None);
    assert!(num_threads().unwrap() >= 1);
}
