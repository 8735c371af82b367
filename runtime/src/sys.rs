//! The one room where `unsafe` lives: thin wrappers over the system calls that build and run pods.
//!
//! Everything returns `io::Result` (the OS error intact); callers add the step's name. Nothing here
//! decides policy. Functions taking paths take `&CStr` so the child never allocates to call them.

#![allow(clippy::missing_safety_doc)]

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::RawFd;

mod socket;
pub use socket::peer_cred;

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn check_long(r: libc::c_long) -> io::Result<libc::c_long> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

pub fn cstring(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Which side of a fork we are on.
pub enum Forked {
    Parent(libc::pid_t),
    Child,
}

/// glibc's fork: runs the atfork handlers, so malloc and stdio locks are reset in the child.
pub fn fork() -> io::Result<Forked> {
    // SAFETY: fork has no memory-safety preconditions; the child is single-threaded and only
    // continues on the calling thread, which the callers account for.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        p => Ok(Forked::Parent(p)),
    }
}

pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and skips atexit handlers and stdio flushing on purpose: a
    // forked copy must not flush the host's buffers or run the host's exit handlers.
    unsafe { libc::_exit(code) }
}

pub fn unshare(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: plain syscall on integer flags.
    check(unsafe { libc::unshare(flags) }).map(drop)
}

pub fn setns(fd: RawFd, nstype: libc::c_int) -> io::Result<()> {
    // SAFETY: plain syscall; an invalid fd is reported as EBADF.
    check(unsafe { libc::setns(fd, nstype) }).map(drop)
}

pub fn mount(
    src: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> io::Result<()> {
    let p = |s: Option<&CStr>| s.map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: every pointer is null or a valid NUL-terminated string that outlives the call.
    check(unsafe { libc::mount(p(src), target.as_ptr(), p(fstype), flags, p(data).cast()) })
        .map(drop)
}

/// `mount_setattr(AT_RECURSIVE)` to make a whole bind tree read-only (Linux 5.12+).
pub fn make_tree_readonly(target: &CStr) -> io::Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    const AT_RECURSIVE: libc::c_int = 0x8000;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: the path is a valid C string and attr a valid struct of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            target.as_ptr(),
            AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    check_long(r).map(drop)
}

pub fn chroot(path: &CStr) -> io::Result<()> {
    // SAFETY: valid C string.
    check(unsafe { libc::chroot(path.as_ptr()) }).map(drop)
}

pub fn chdir(path: &CStr) -> io::Result<()> {
    // SAFETY: valid C string.
    check(unsafe { libc::chdir(path.as_ptr()) }).map(drop)
}

pub fn mkdir(path: &CStr, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: valid C string.
    match check(unsafe { libc::mkdir(path.as_ptr(), mode) }) {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
        r => r.map(drop),
    }
}

pub fn mknod_file(path: &CStr) -> io::Result<()> {
    // SAFETY: valid C string; creates an empty regular file as a bind-mount target.
    let fd = check(unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
            0o644,
        )
    })?;
    close(fd);
    Ok(())
}

pub fn mknod_char(path: &CStr, mode: libc::mode_t, major: u32, minor: u32) -> io::Result<()> {
    // SAFETY: valid C string; creates a character device node (needs CAP_MKNOD).
    check(unsafe {
        libc::mknod(
            path.as_ptr(),
            libc::S_IFCHR | mode,
            libc::makedev(major, minor),
        )
    })?;
    // SAFETY: valid C string; the umask may have narrowed the mode given to mknod.
    check(unsafe { libc::chmod(path.as_ptr(), mode) }).map(drop)
}

pub fn symlink(target: &CStr, link: &CStr) -> io::Result<()> {
    // SAFETY: valid C strings.
    check(unsafe { libc::symlink(target.as_ptr(), link.as_ptr()) }).map(drop)
}

pub fn open(path: &CStr, flags: libc::c_int, mode: libc::mode_t) -> io::Result<RawFd> {
    // SAFETY: valid C string.
    check(unsafe { libc::open(path.as_ptr(), flags, mode as libc::c_uint) })
}

pub fn close(fd: RawFd) {
    // SAFETY: closing an fd we own (or a stale number, which only returns EBADF).
    unsafe { libc::close(fd) };
}

/// Close every descriptor >= `from` except those in `keep` (sorted or not).
pub fn close_all_except(from: RawFd, keep: &[RawFd]) {
    let mut ks: Vec<RawFd> = keep.iter().copied().filter(|k| *k >= from).collect();
    ks.sort_unstable();
    ks.dedup();
    let mut lo = from as libc::c_uint;
    for k in ks {
        if (k as libc::c_uint) > lo {
            close_range(lo, k as libc::c_uint - 1);
        }
        lo = k as libc::c_uint + 1;
    }
    close_range(lo, libc::c_uint::MAX);
}

fn close_range(lo: libc::c_uint, hi: libc::c_uint) {
    // SAFETY: close_range only closes descriptors; the caller owns the whole range.
    let r = unsafe { libc::syscall(libc::SYS_close_range, lo, hi, 0) };
    if r < 0 {
        for fd in lo..=hi.min(65535) {
            close(fd as RawFd);
        }
    }
}

pub fn dup2(from: RawFd, to: RawFd) -> io::Result<()> {
    if from == to {
        return Ok(());
    }
    // SAFETY: plain syscall on fds.
    check(unsafe { libc::dup2(from, to) }).map(drop)
}

pub fn get_fl(fd: RawFd) -> io::Result<libc::c_int> {
    // SAFETY: plain fcntl.
    check(unsafe { libc::fcntl(fd, libc::F_GETFL) })
}

pub fn get_fd_flags(fd: RawFd) -> io::Result<libc::c_int> {
    // SAFETY: plain fcntl.
    check(unsafe { libc::fcntl(fd, libc::F_GETFD) })
}

pub fn set_fd_flags(fd: RawFd, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: plain fcntl.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, flags) }).map(drop)
}

pub fn set_nonblock(fd: RawFd) -> io::Result<()> {
    let fl = get_fl(fd)?;
    // SAFETY: plain fcntl.
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) }).map(drop)
}

pub fn lseek(fd: RawFd, off: i64, whence: libc::c_int) -> io::Result<i64> {
    // SAFETY: plain syscall.
    let r = unsafe { libc::lseek(fd, off, whence) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

pub fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid, writable stat.
    check(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st)
}

pub fn pipe() -> io::Result<(RawFd, RawFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    Ok((fds[0], fds[1]))
}

pub fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: buf is valid for reads of its length.
        let r = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

pub fn write_all(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        let n = write(fd, buf)?;
        if n == 0 {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        buf = &buf[n..];
    }
    Ok(())
}

pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: buf is valid for writes of its length.
        let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

pub fn pidfd_open(pid: libc::pid_t) -> io::Result<RawFd> {
    // SAFETY: plain syscall.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    check_long(r).map(|fd| fd as RawFd)
}

/// Poll `fds` (events POLLIN) for up to `timeout_ms`; returns the revents per fd.
pub fn poll_in(fds: &[RawFd], timeout_ms: i32, revents: &mut [i16]) -> io::Result<usize> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: pfds is a valid array of the length passed.
    let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    for (o, p) in revents.iter_mut().zip(&pfds) {
        *o = p.revents;
    }
    Ok(r as usize)
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

pub fn set_name(name: &CStr) {
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
}

/// Drop every capability: effective, permitted, inheritable, ambient and the bounding set.
pub fn drop_capabilities() -> io::Result<()> {
    for cap in 0..64 {
        // SAFETY: integer-only prctl; EINVAL past the last capability ends the loop.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        if r < 0 {
            break;
        }
    }
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
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let hdr = Header {
        version: 0x2008_0522,
        pid: 0,
    };
    let data = [
        Data {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        },
        Data {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        },
    ];
    // SAFETY: header and a two-element data array, as _LINUX_CAPABILITY_VERSION_3 requires.
    let r = unsafe { libc::syscall(libc::SYS_capset, &hdr as *const Header, data.as_ptr()) };
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

pub fn lowest_priority() {
    // SAFETY: integer-only calls; failures only leave the priority higher.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 19);
        let p = libc::sched_param { sched_priority: 0 };
        libc::sched_setscheduler(0, libc::SCHED_IDLE, &p);
    }
}

pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

pub fn process_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID)
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

/// A page of memory shared between the host and its supervisors (MAP_SHARED | MAP_ANONYMOUS).
/// Pods remap every shared mapping private, so a test cannot reach it.
pub fn map_shared_page(len: usize) -> io::Result<*mut u8> {
    // SAFETY: anonymous mapping; no existing memory is touched.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        Err(io::Error::last_os_error())
    } else {
        Ok(p.cast())
    }
}

/// Replace the shared mapping at `addr..addr+len` with a private anonymous one holding the same
/// bytes, read through `mem` (an fd of /proc/self/mem) so unreadable pages become zeros.
pub fn privatize_mapping(mem: RawFd, addr: usize, len: usize, prot: libc::c_int) -> io::Result<()> {
    // SAFETY: a fresh anonymous private mapping.
    let tmp = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if tmp == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let page = page_size();
    let mut off = 0;
    while off < len {
        // SAFETY: tmp is mapped writable for `len` bytes; pread writes at most len - off there.
        let r = unsafe {
            libc::pread(
                mem,
                tmp.cast::<u8>().add(off).cast(),
                len - off,
                (addr + off) as libc::off_t,
            )
        };
        if r > 0 {
            off += r as usize;
        } else {
            // Unreadable page (past a file's end, or PROT_NONE): leave it zero, go on.
            off = (off / page + 1) * page;
        }
    }
    // SAFETY: MAP_FIXED over a range this process mapped; the runtime holds no references into
    // the host's shared mappings here (the pod's test code has not run yet).
    let p = unsafe {
        libc::mmap(
            addr as *mut libc::c_void,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        let e = io::Error::last_os_error();
        // SAFETY: releasing the temporary mapping made above.
        unsafe { libc::munmap(tmp, len) };
        return Err(e);
    }
    // SAFETY: both ranges are mapped and `len` long and disjoint; then the temporary is released
    // and the original protection restored on the new private range.
    unsafe {
        std::ptr::copy_nonoverlapping(tmp.cast::<u8>(), addr as *mut u8, len);
        libc::munmap(tmp, len);
    }
    // SAFETY: the range is ours, mapped just above.
    check(unsafe { libc::mprotect(addr as *mut libc::c_void, len, prot) }).map(drop)
}

/// `fflush(NULL)`: write out every C stdio buffer of this process.
pub fn flush_c_stdio() {
    // SAFETY: fflush(NULL) flushes all open output streams; no pointer is dereferenced by us.
    unsafe { libc::fflush(std::ptr::null_mut()) };
}

/// Install `handler` for `sig` if its disposition is the default (keeps the host's handlers and
/// ignored signals as they are). The handler runs on the current stack with the signal blocked.
pub fn handle_if_default(sig: libc::c_int, handler: extern "C" fn(libc::c_int)) -> io::Result<()> {
    // SAFETY: zeroed sigaction is valid (empty mask, no flags); we only read the old action.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only queries.
    check(unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) })?;
    if old.sa_sigaction != libc::SIG_DFL {
        return Ok(());
    }
    // SAFETY: as above.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = handler as usize;
    // SAFETY: sa is a valid action; `handler` is async-signal-safe (see pod::pid1).
    check(unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) }).map(drop)
}

/// The dispositions and mask of every signal, to give a pod the host's own.
pub struct SignalState {
    actions: Vec<(libc::c_int, libc::sigaction)>,
    mask: libc::sigset_t,
}

pub fn save_signal_state() -> SignalState {
    let mut actions = Vec::with_capacity(64);
    for sig in 1..=64 {
        // SAFETY: zeroed sigaction is a valid out-parameter; a null new action only queries.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) } == 0 {
            actions.push((sig, old));
        }
    }
    // SAFETY: zeroed sigset_t is valid; a null new set only queries.
    let mut mask: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, std::ptr::null(), &mut mask) };
    SignalState { actions, mask }
}

pub fn restore_signal_state(s: &SignalState) {
    for (sig, act) in &s.actions {
        // SAFETY: re-installing an action this process had (same handlers, same address space).
        unsafe { libc::sigaction(*sig, act, std::ptr::null_mut()) };
    }
    // SAFETY: a mask this process had.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, &s.mask, std::ptr::null_mut()) };
}

/// In a supervisor: every signal back to its default action (SIGPIPE ignored, so a write to a
/// closed pipe is an error, not death), none blocked.
pub fn reset_signal_handlers() {
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        let action = if sig == libc::SIGPIPE {
            libc::SIG_IGN
        } else {
            libc::SIG_DFL
        };
        // SAFETY: setting a disposition to SIG_DFL/SIG_IGN; invalid numbers return EINVAL.
        unsafe { libc::signal(sig, action) };
    }
    // SAFETY: an empty set, then unblocking everything.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

pub fn page_size() -> usize {
    // SAFETY: always succeeds.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// Register a function to run when the process exits normally.
pub fn at_exit(f: extern "C" fn()) {
    // SAFETY: f is a plain extern "C" function with no arguments, valid for the process lifetime.
    unsafe { libc::atexit(f) };
}

extern "C" {
    // glibc: getenv that returns NULL in set-uid/set-gid programs.
    fn secure_getenv(name: *const libc::c_char) -> *mut libc::c_char;
}

pub fn secure_getenv_str(name: &str) -> Option<String> {
    let c = CString::new(name).ok()?;
    // SAFETY: valid C string; the returned pointer is read at once, before any setenv.
    let p = unsafe { secure_getenv(c.as_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: non-null result of getenv is a NUL-terminated string.
    Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buf is valid for writes of its length.
    unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
