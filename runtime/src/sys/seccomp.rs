//! Seccomp and keyrings: install a classic-BPF syscall filter, catch the calls it refuses
//! (`SECCOMP_RET_TRAP` raises SIGSYS) and make them return `-EPERM`, or hand the calls it traps
//! with data (`SECCOMP_RET_TRAP | data`) to a hook and then make them through the gate (the one
//! `syscall` instruction a filter may let through by its address); join a fresh session keyring.

use super::{check, check_long};
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One BPF instruction, as `struct sock_filter`.
pub type Insn = libc::sock_filter;

/// A pod's system call filter as the plan holds it, made before any fork (by `pod::seccomp`):
/// alone (`plain`), and with the lazy copy-up checks folded into its search (`lazy_head`), which
/// the test completes with its own lazy descriptors. Here, below both, so that the plan holds it
/// without importing the pod.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub plain: Vec<Insn>,
    pub lazy_head: Vec<Insn>,
    /// Whether it notifies the pod's supervisor of `connect` (installed with a listener).
    pub notify: bool,
}

/// Install `prog` as this thread's seccomp filter (no_new_privs must be set, or
/// CAP_SYS_ADMIN held). The kernel copies the program; `prog` may be dropped afterwards.
pub fn install_filter(prog: &[Insn]) -> io::Result<()> {
    install_with(prog, 0).map(drop)
}

/// `install_filter` with more `flags` (`SECCOMP_FILTER_FLAG_*`); what the call returns.
pub(super) fn install_with(prog: &[Insn], flags: libc::c_ulong) -> io::Result<libc::c_long> {
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
            SECCOMP_FILTER_FLAG_SPEC_ALLOW | flags,
            &fprog as *const libc::sock_fprog,
        )
    };
    check_long(r)
}

/// What SIGSYS calls with the number of the refused system call (async-signal-safe code only).
static ON_REFUSED: AtomicUsize = AtomicUsize::new(0);

/// What SIGSYS calls for a call trapped with data: `fn(data, nr, args) -> Option<errno>`.
static ON_TRAPPED: AtomicUsize = AtomicUsize::new(0);

/// What `on_trapped` calls: the trap's data, the call's number and arguments. It returns an
/// errno for the call to fail with, or `None` to have the call made as it was, through the gate.
pub type TrapHook = fn(u32, i64, &[u64; 6]) -> Option<i32>;

/// From now on a call trapped with data (`SECCOMP_RET_TRAP | data`, data > 0) is handed to
/// `hook` in the SIGSYS handler, then made through the gate (see `gate_address`) unless the hook
/// says it fails. `refuse_trapped_calls` must have installed the handler.
///
/// # Safety
///
/// `hook` runs in a SIGSYS handler, in the middle of any code: it must be async-signal-safe.
pub unsafe fn on_trapped(hook: TrapHook) {
    ON_TRAPPED.store(hook as usize, Ordering::Relaxed);
}

/// Make a system call through the gate: the one `syscall` instruction whose address (that of
/// the instruction after it, as seccomp sees it) `gate_address` gives, so that a filter may let
/// it through while it traps the same call made from anywhere else.
#[cfg(target_arch = "x86_64")]
#[inline(never)]
fn gate(nr: i64, a: &[u64; 6]) -> (i64, u64) {
    let ret: i64;
    let after: u64;
    // SAFETY: a system call with the caller's number and arguments, as the program made it
    // (a trapped call handed back); the instruction clobbers rcx and r11 only, and touches no
    // stack.
    unsafe {
        core::arch::asm!(
            "lea {after}, [rip + 2f]",
            "syscall",
            "2:",
            after = out(reg) after,
            inlateout("rax") nr => ret,
            in("rdi") a[0],
            in("rsi") a[1],
            in("rdx") a[2],
            in("r10") a[3],
            in("r8") a[4],
            in("r9") a[5],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    (ret, after)
}

/// The address seccomp sees as the instruction pointer of a call made through the gate.
#[cfg(target_arch = "x86_64")]
pub fn gate_address() -> u64 {
    gate(libc::SYS_getpid, &[0; 6]).1
}

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
    // SA_NODEFER: a call the handler makes through the gate may be an `execve`, and the new
    // program must not start with SIGSYS blocked.
    sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_NODEFER;
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
extern "C" fn on_sigsys(_sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid ucontext_t to an SA_SIGINFO handler; after a seccomp
    // trap the saved RAX holds the system call's number (the call was rolled back), and what
    // the handler leaves there is the call's return value when the thread resumes.
    let gregs = unsafe { &mut (*(ctx as *mut libc::ucontext_t)).uc_mcontext.gregs };
    let nr = gregs[libc::REG_RAX as usize];
    // SAFETY: a valid siginfo_t from the kernel; for SIGSYS from seccomp, si_errno holds the
    // filter's data.
    let data = unsafe { (*info).si_errno } as u32;
    let hook = ON_TRAPPED.load(Ordering::Relaxed);
    if data != 0 && hook != 0 {
        use libc::{REG_R10, REG_R8, REG_R9, REG_RDI, REG_RDX, REG_RSI};
        let args =
            [REG_RDI, REG_RSI, REG_RDX, REG_R10, REG_R8, REG_R9].map(|r| gregs[r as usize] as u64);
        // SAFETY: only ever stored from a `TrapHook` in `on_trapped`.
        let hook: TrapHook = unsafe { std::mem::transmute::<usize, TrapHook>(hook) };
        gregs[libc::REG_RAX as usize] = match hook(data, nr, &args) {
            Some(errno) => -(errno as i64),
            None => gate(nr, &args).0,
        };
        return;
    }
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
