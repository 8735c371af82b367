//! ptrace, only to hold a process's threads still for a moment (`pod::freeze`): seize, interrupt,
//! wait for the stop, detach. No register or memory of the tracee is read or written.

use super::{check, check_long};
use std::io;
use std::os::fd::RawFd;

/// Take the exclusive `flock` on `fd` if no one holds it (`LOCK_EX | LOCK_NB`): whether it was
/// taken. Used on a process's `/proc` directory, so that one tracer at a time holds it still.
pub fn try_lock(fd: RawFd) -> bool {
    // SAFETY: flock takes no memory.
    unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// Attach to thread `tid` without stopping it (`PTRACE_SEIZE`: no signal is sent, the tracee
/// and its parent see nothing).
pub fn ptrace_seize(tid: libc::pid_t) -> io::Result<()> {
    // SAFETY: PTRACE_SEIZE takes no memory (address and options are 0).
    check_long(unsafe { libc::ptrace(libc::PTRACE_SEIZE, tid, 0usize, 0usize) }).map(drop)
}

/// Stop a seized thread (`PTRACE_INTERRUPT`): at once if it runs in user space; a system call
/// it sleeps in is interrupted and restarted when it goes on; one that cannot be interrupted
/// (a write to a file) ends first.
pub fn ptrace_interrupt(tid: libc::pid_t) -> io::Result<()> {
    // SAFETY: PTRACE_INTERRUPT takes no memory.
    check_long(unsafe { libc::ptrace(libc::PTRACE_INTERRUPT, tid, 0usize, 0usize) }).map(drop)
}

/// Let a stopped, seized thread go on and stop tracing it, delivering `signal` (the one its stop
/// held back, or 0).
pub fn ptrace_detach(tid: libc::pid_t, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: PTRACE_DETACH takes the signal as its data argument; no memory.
    check_long(unsafe { libc::ptrace(libc::PTRACE_DETACH, tid, 0usize, signal as usize) }).map(drop)
}

/// What a traced thread did, if it did something yet (`waitpid(tid, WNOHANG | __WALL)`).
pub enum TraceStop {
    /// Nothing yet.
    Running,
    /// Stopped; with the signal its stop held back (0 for the stop asked for).
    Stopped(libc::c_int),
    /// Gone (exited or killed).
    Gone,
}

pub fn trace_poll(tid: libc::pid_t) -> io::Result<TraceStop> {
    let mut status = 0;
    // SAFETY: status is a valid, writable int.
    let r = check(unsafe { libc::waitpid(tid, &mut status, libc::WNOHANG | libc::__WALL) })?;
    Ok(if r == 0 {
        TraceStop::Running
    } else if libc::WIFSTOPPED(status) {
        // A seized thread's event stops (the interrupt, a group stop) have `status >> 16` set
        // and hold no signal back; a signal-delivery stop holds its signal, whichever it is.
        let event = status >> 16 != 0;
        TraceStop::Stopped(if event { 0 } else { libc::WSTOPSIG(status) })
    } else {
        TraceStop::Gone
    })
}
