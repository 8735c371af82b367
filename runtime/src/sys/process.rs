//! Processes: fork, exit, wait, signals to others, privileges, limits, clocks, environment.

use super::{check, check_long};
use std::ffi::CStr;
use std::io;
use std::os::fd::RawFd;

pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and skips atexit handlers and stdio flushing on purpose: a
    // forked copy must not flush the host's buffers or run the host's exit handlers.
    unsafe { libc::_exit(code) }
}

/// Wait for a child; returns (pid, wait status, rusage). `pid` -1 waits for any.
pub fn wait4(
    pid: libc::pid_t,
    flags: libc::c_int,
) -> io::Result<(libc::pid_t, libc::c_int, libc::rusage)> {
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid out-parameter.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: status and ru are valid out-parameters.
        let r = unsafe { libc::wait4(pid, &mut status, flags, &mut ru) };
        if r >= 0 {
            return Ok((r, status, ru));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

pub fn kill(pid: libc::pid_t, sig: libc::c_int) {
    // SAFETY: plain syscall.
    unsafe { libc::kill(pid, sig) };
}

/// Whether process `pid` exists (a zombie not yet reaped included).
pub fn alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

pub fn getpid() -> libc::pid_t {
    // SAFETY: always succeeds.
    unsafe { libc::getpid() }
}

pub fn getppid() -> libc::pid_t {
    // SAFETY: always succeeds.
    unsafe { libc::getppid() }
}

pub fn geteuid() -> libc::uid_t {
    // SAFETY: always succeeds.
    unsafe { libc::geteuid() }
}

pub fn getegid() -> libc::gid_t {
    // SAFETY: always succeeds.
    unsafe { libc::getegid() }
}

pub fn setsid() {
    // SAFETY: plain syscall; failure (already a leader) is harmless.
    unsafe { libc::setsid() };
}

pub fn prctl(option: libc::c_int, arg: libc::c_ulong) -> io::Result<()> {
    // SAFETY: the options used take integer arguments only.
    check(unsafe {
        libc::prctl(
            option,
            arg,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    })
    .map(drop)
}

/// Start a detached thread that runs `run` with every signal blocked (so the host's signals go to
/// the host's own threads, whatever mask they set later; glibc keeps its own `setxid` and
/// cancellation signals deliverable), on a stack of `stack` bytes: one `pthread_create`, no allocation (what `std::thread::spawn` adds to it, its
/// handles, name and signal stack, costs the starting thread another ~10 µs, and the new thread's
/// signal stack a mapping while the host may be forking). Rust code runs there as on any thread
/// (thread-locals included); `run` must not unwind (wrap it in `catch_unwind`), and has no
/// stack-overflow message (the guard page still stops it).
pub fn spawn_thread(
    run: extern "C" fn(*mut libc::c_void) -> *mut libc::c_void,
    stack: usize,
) -> io::Result<()> {
    // SAFETY: zeroed storage for `pthread_attr_init`, which initializes it; destroyed below.
    let mut attr: libc::pthread_attr_t = unsafe { std::mem::zeroed() };
    // The new thread inherits the mask in force at `pthread_create`: all blocked for that moment
    // (no signal can reach it before its first step), the caller's restored right after.
    // SAFETY: zeroed storage for sigset_t, filled by sigfillset/pthread_sigmask.
    let (mut all, mut old): (libc::sigset_t, libc::sigset_t) =
        unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
    // SAFETY: `attr` is valid storage, initialized first; `tid` is written by pthread_create;
    // `run` is a plain function taking a null argument; the sets are valid storage.
    let err = unsafe {
        libc::pthread_attr_init(&mut attr);
        libc::pthread_attr_setstacksize(&mut attr, stack.max(libc::PTHREAD_STACK_MIN));
        libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED);
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let mut tid: libc::pthread_t = 0;
        let err = libc::pthread_create(&mut tid, &attr, run, std::ptr::null_mut());
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        libc::pthread_attr_destroy(&mut attr);
        err
    };
    match err {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

pub fn set_name(name: &CStr) {
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
}

/// Drop every capability: effective, permitted, inheritable and ambient.
///
/// The bounding set is left as it is: it only limits what an `execve` could add, and under
/// `no_new_privs` (set before this) an exec never adds to an empty permitted set — the kernel
/// intersects the new set with the old one (commoncap.c, `cap_bprm_creds_from_file`). Emptying
/// it costs one `PR_CAPBSET_DROP` per capability, ~100 µs per pod here, for no protection. A new
/// user namespace (which would come with a full set of its own) cannot be made from a chroot.
pub fn drop_capabilities() -> io::Result<()> {
    // SAFETY: integer-only prctl.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    capset(&[CapData::default(); 2])
}

/// Turn this process's effective capabilities off (`on`: back to its permitted ones), so that
/// what it does on a pod's behalf is checked as the pod's own calls are (the pod has none).
pub fn effective_caps(on: bool) -> io::Result<()> {
    let mut data = [CapData::default(); 2];
    // SAFETY: header and a two-element data array, as _LINUX_CAPABILITY_VERSION_3 requires.
    check_long(unsafe {
        libc::syscall(
            libc::SYS_capget,
            &CAP_HEADER as *const CapHeader,
            data.as_mut_ptr(),
        )
    })?;
    for d in &mut data {
        d.effective = if on { d.permitted } else { 0 };
    }
    capset(&data)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// _LINUX_CAPABILITY_VERSION_3, this process.
const CAP_HEADER: CapHeader = CapHeader {
    version: 0x2008_0522,
    pid: 0,
};

fn capset(data: &[CapData; 2]) -> io::Result<()> {
    // SAFETY: header and a two-element data array, as _LINUX_CAPABILITY_VERSION_3 requires.
    let r = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &CAP_HEADER as *const CapHeader,
            data.as_ptr(),
        )
    };
    check_long(r).map(drop)
}

pub fn setrlimit(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> io::Result<()> {
    let rl = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: rl is a valid rlimit.
    check(unsafe { libc::setrlimit(resource, &rl) }).map(drop)
}

pub fn getrlimit(resource: libc::__rlimit_resource_t) -> (u64, u64) {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: rl is a valid out-parameter.
    unsafe { libc::getrlimit(resource, &mut rl) };
    (rl.rlim_cur, rl.rlim_max)
}

/// Background priority (nice 19) and give the CPU back now: a freshly forked supervisor must not
/// preempt the host it was forked from (its setup would count in the host's pause).
pub fn background_and_yield() {
    // SAFETY: integer-only calls; failures only leave the priority higher.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 19);
        libc::sched_yield();
    }
}

pub fn lowest_priority() {
    // SAFETY: integer-only calls; failures only leave the priority higher.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 19);
        let p = libc::sched_param { sched_priority: 0 };
        libc::sched_setscheduler(0, libc::SCHED_IDLE, &p);
    }
}

/// How long process `pid` has been ready to run and waited for a CPU, in all (its kernel run
/// queue delay, `/proc/PID/schedstat`'s second field); `None` where it cannot be read.
pub fn run_delay_ns(pid: libc::pid_t) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}

/// The CPU time `pid`'s descendants have used: the running ones' (their main threads' run time,
/// `schedstat`, found through each thread's `children`), and the reaped ones' (`pid`'s
/// `cutime` + `cstime`). At most `MAX_VISITED` processes are looked at. No `opendir` (which
/// allocates through the program's `malloc`): a fork's copy calls this.
pub fn descendants_cpu_ns(pid: libc::pid_t) -> u64 {
    const MAX_VISITED: usize = 4096;
    let mut total = reaped_children_ns(pid).unwrap_or(0);
    let (mut todo, mut visited) = (vec![pid], 0);
    while let Some(p) = todo.pop() {
        let Ok(tasks) = super::cstring(&format!("/proc/{p}/task")).map(|d| super::dir_entries(&d))
        else {
            continue;
        };
        let mut kids = String::new();
        for (tid, _) in tasks.unwrap_or_default() {
            let path = format!("/proc/{p}/task/{}/children", tid.to_string_lossy());
            kids.push_str(&std::fs::read_to_string(path).unwrap_or_default());
            kids.push(' ');
        }
        for kid in kids.split_whitespace().filter_map(|k| k.parse().ok()) {
            visited += 1;
            if visited > MAX_VISITED {
                return total;
            }
            total += run_ns(kid).unwrap_or(0);
            todo.push(kid);
        }
    }
    total
}

/// A process's main thread's time on a CPU (`schedstat`'s first field).
fn run_ns(pid: libc::pid_t) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// The CPU time of `pid`'s children it has reaped (`stat`'s `cutime` and `cstime`).
fn reaped_children_ns(pid: libc::pid_t) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command's closing parenthesis: state is field 3, cutime 16, cstime 17.
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace().skip(13);
    let ticks: u64 = fields.next()?.parse::<u64>().ok()? + fields.next()?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(ticks * 1_000_000_000 / hz)
}

pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// CPU time of the calling thread.
pub fn thread_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-parameter.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The CPU the calling thread runs on now (-1: unknown).
pub fn current_cpu() -> i32 {
    // SAFETY: no argument; reads the CPU number (vDSO or system call).
    unsafe { libc::sched_getcpu() }
}

/// In the child of a host's fork, first: if it runs on the CPU the host forked it from (`cpu`,
/// read just before the fork), the kernel placed it there and let it take the CPU from the host
/// before the host's fork returned, so the host's pause would last as long as the child's first
/// work (a pod's setup: up to a time slice on a loaded machine). The child gives the CPU back at
/// once, and the host's pause ends first. On another CPU it goes on: no one waits for it there.
/// Async-signal-safe.
pub fn host_first(cpu: i32) {
    if cpu >= 0 && current_cpu() == cpu {
        // SAFETY: no argument; only yields the CPU.
        unsafe { libc::sched_yield() };
    }
}

/// Register a function to run when the process exits normally.
pub fn at_exit(f: extern "C" fn()) {
    // SAFETY: f is a plain extern "C" function with no arguments, valid for the process lifetime.
    unsafe { libc::atexit(f) };
}

/// Register a function to run when the process exits normally, given the status `exit()` was
/// called with (glibc's `on_exit`). `false` where the C library has none (then `at_exit`).
pub fn at_exit_with_status(f: extern "C" fn(libc::c_int, *mut libc::c_void)) -> bool {
    #[cfg(target_env = "gnu")]
    {
        extern "C" {
            fn on_exit(
                f: extern "C" fn(libc::c_int, *mut libc::c_void),
                arg: *mut libc::c_void,
            ) -> libc::c_int;
        }
        // SAFETY: f is a plain extern "C" function valid for the process lifetime; its argument
        // is unused (null).
        unsafe { on_exit(f, std::ptr::null_mut()) == 0 }
    }
    #[cfg(not(target_env = "gnu"))]
    {
        let _ = f;
        false
    }
}

pub fn secure_getenv_str(name: &str) -> Option<String> {
    super::secure_getenv_os(name).map(|v| v.to_string_lossy().into_owned())
}

pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buf is valid for writes of its length.
    unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The calling thread's nice value.
pub fn nice() -> libc::c_int {
    // SAFETY: integer-only call (-1 is also a valid value: a failure reads as nice -1).
    unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
}

/// Set the calling thread's nice value (raising it back needs CAP_SYS_NICE: a failure leaves
/// it as it was).
pub fn set_nice(nice: libc::c_int) {
    // SAFETY: integer-only call.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
}

/// Lower the calling thread's priority by `nice` steps (Linux nice values are per thread).
pub fn lower_thread_priority(nice: libc::c_int) {
    // SAFETY: integer-only calls; a failure only leaves the priority as it was.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        let now = libc::getpriority(libc::PRIO_PROCESS, tid);
        libc::setpriority(libc::PRIO_PROCESS, tid, (now + nice).min(19));
    }
}

/// Send `sig` to the process a pidfd refers to (never to a process that reused its pid).
pub fn pidfd_kill(pidfd: RawFd, sig: libc::c_int) {
    if pidfd < 0 {
        return;
    }
    // SAFETY: plain syscall; a null siginfo means "as kill() would".
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd,
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
}

/// The calling thread's id.
pub fn gettid() -> libc::pid_t {
    // SAFETY: always succeeds.
    unsafe { libc::gettid() }
}

/// Clock ticks per second of the times in /proc (`USER_HZ`, 100 on Linux).
pub fn clock_ticks_per_s() -> u64 {
    // SAFETY: sysconf reads a constant of the system; no memory is involved.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as u64
    } else {
        100
    }
}

/// A thread-specific key whose `at_exit` runs when a thread that set a non-null value for it
/// exits (`pthread_key_create`: no allocation, unlike the destructors of Rust's thread-locals,
/// which a thread registers through `malloc`). `None` when the process has no key left.
pub fn thread_exit_key(
    at_exit: unsafe extern "C" fn(*mut libc::c_void),
) -> Option<libc::pthread_key_t> {
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: `key` is a valid out-parameter; `at_exit` is a function for the process's life.
    let r = unsafe { libc::pthread_key_create(&mut key, Some(at_exit)) };
    (r == 0).then_some(key)
}

/// Set the calling thread's value for `key` (made by `thread_exit_key`).
pub fn set_thread_value(key: libc::pthread_key_t, value: *const libc::c_void) {
    // SAFETY: a key made by `thread_exit_key`; the value is only handed back to its destructor.
    unsafe { libc::pthread_setspecific(key, value) };
}
