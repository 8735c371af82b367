//! Seccomp and keyrings: install a classic-BPF syscall filter, catch the calls it refuses
//! (`SECCOMP_RET_TRAP` raises SIGSYS) and make them return `-EPERM`, join a fresh session keyring.

use super::{check, check_long};
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One BPF instruction, as `struct sock_filter`.
pub type Insn = libc::sock_filter;

/// Install `prog` as this thread's seccomp filter (no_new_privs must be set, or
/// CAP_SYS_ADMIN held). The kernel copies the program; `prog` may be dropped afterwards.
pub fn install_filter(prog: &[Insn]) -> io::Result<()> {
    let fprog = libc::sock_fprog {
        len: prog.len() as libc::c_ushort,
        filter: prog.as_ptr() as *mut Insn,
    };
    // Without SPEC_ALLOW the kernel turns on its speculative store bypass mitigation for the
    // filtered task (a cost at each context switch on affected CPUs). It guards secrets in a
    // process against code sandboxed in that same process; a pod is a copy of the host's whole
    // memory, whose code is the host's own.
    const SECCOMP_FILTER_FLAG_SPEC_ALLOW: libc::c_ulong = 1 << 2;
    // SAFETY: fprog points at `prog.len()` valid instructions that outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            &fprog as *const libc::sock_fprog,
        )
    };
    check_long(r).map(drop)
}

/// What SIGSYS calls with the number of the refused system call (async-signal-safe code only).
static ON_REFUSED: AtomicUsize = AtomicUsize::new(0);

/// From now on a system call the filter traps returns `-EPERM` to its caller, and `report`
/// is called with its number, in the signal handler.
///
/// # Safety
///
/// `report` runs in a SIGSYS handler, in the middle of any code: it must be async-signal-safe.
pub unsafe fn refuse_trapped_calls(report: fn(i64)) -> io::Result<()> {
    ON_REFUSED.store(report as usize, Ordering::Relaxed);
    // SAFETY: zeroed sigaction is valid (empty mask).
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = on_sigsys;
    sa.sa_sigaction = handler as usize;
    sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
    // SAFETY: a valid action whose handler only calls `report` and writes the saved context.
    check(unsafe { libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut()) })?;
    // A blocked SIGSYS would make the kernel reset the action and kill the process instead.
    // SAFETY: a zeroed set with one signal added; only this thread's mask changes.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigaddset(&mut set, libc::SIGSYS);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
    Ok(())
}

#[cfg(target_arch = "x86_64")]
extern "C" fn on_sigsys(_sig: libc::c_int, _info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid ucontext_t to an SA_SIGINFO handler; after a seccomp
    // trap the saved RAX holds the system call's number (the call was rolled back), and what
    // the handler leaves there is the call's return value when the thread resumes.
    let gregs = unsafe { &mut (*(ctx as *mut libc::ucontext_t)).uc_mcontext.gregs };
    let nr = gregs[libc::REG_RAX as usize];
    gregs[libc::REG_RAX as usize] = -(libc::EPERM as i64);
    let f = ON_REFUSED.load(Ordering::Relaxed);
    if f != 0 {
        // SAFETY: only ever stored from a `fn(i64)` in `refuse_trapped_calls`.
        let report: fn(i64) = unsafe { std::mem::transmute::<usize, fn(i64)>(f) };
        report(nr);
    }
}

#[cfg(not(target_arch = "x86_64"))]
extern "C" fn on_sigsys(_sig: libc::c_int, _info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {}

/// A new anonymous session keyring for the calling process (the host's stays the host's).
pub fn join_fresh_session_keyring() -> io::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: a null name asks for an anonymous keyring; no pointer is dereferenced.
    let r = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        )
    };
    check_long(r).map(drop)
}
