//! Files reached relative to a checked directory descriptor (kept pods), the journal's record
//! lock and truncation, and what the process may trust of its environment (set-id, variables as
//! bytes).

use super::check;
use std::ffi::{CStr, CString, OsString};
use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;

pub fn openat(
    dir: RawFd,
    name: &CStr,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    // SAFETY: valid C string; `dir` is a descriptor or AT_FDCWD.
    super::fd::owned(
        unsafe { libc::openat(dir, name.as_ptr(), flags, mode as libc::c_uint) }.into(),
    )
}

pub fn mkdirat(dir: RawFd, name: &CStr, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: valid C string.
    check(unsafe { libc::mkdirat(dir, name.as_ptr(), mode) }).map(drop)
}

pub fn symlinkat(target: &CStr, dir: RawFd, name: &CStr) -> io::Result<()> {
    // SAFETY: valid C strings.
    check(unsafe { libc::symlinkat(target.as_ptr(), dir, name.as_ptr()) }).map(drop)
}

/// `stat` of `path` (followed). Async-signal-safe.
pub fn stat_path(path: &CStr) -> io::Result<libc::stat> {
    // SAFETY: zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid C string and writable stat.
    check(unsafe { libc::stat(path.as_ptr(), &mut st) })?;
    Ok(st)
}

/// `lstat` of `name` in `dir` (never follows a final symbolic link).
pub fn fstatat_nofollow(dir: RawFd, name: &CStr) -> io::Result<libc::stat> {
    // SAFETY: zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid C string and writable stat.
    check(unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(st)
}

/// Whether the effective user may create a file in `dir` (write and search permission, a
/// writable file system), as `open(O_CREAT)` there would find.
pub fn may_create_in(dir: &CStr) -> io::Result<()> {
    // SAFETY: valid C string; no memory is written.
    check(unsafe {
        libc::faccessat(
            libc::AT_FDCWD,
            dir.as_ptr(),
            libc::W_OK | libc::X_OK,
            libc::AT_EACCESS,
        )
    })
    .map(drop)
}

pub fn readlinkat(dir: RawFd, name: &CStr) -> io::Result<CString> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: buf is writable for its length.
    let n = unsafe { libc::readlinkat(dir, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    CString::new(buf).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

pub fn ftruncate(fd: RawFd, len: u64) -> io::Result<()> {
    // SAFETY: plain syscall on a descriptor.
    check(unsafe { libc::ftruncate(fd, len as libc::off_t) }).map(drop)
}

/// Take (`lock`) or release a whole-file POSIX write lock, waiting for it. POSIX record locks
/// belong to the process, so they exclude other processes (supervisors, other programs sharing a
/// journal) even when they share one open file description.
pub fn lock_whole_file(fd: RawFd, lock: bool) -> io::Result<()> {
    // SAFETY: zeroed flock is valid; fields set below.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = if lock { libc::F_WRLCK } else { libc::F_UNLCK } as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    loop {
        // SAFETY: fl is a valid flock.
        let r = unsafe { libc::fcntl(fd, libc::F_SETLKW, &fl) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Whether the process runs with other ids than its caller's: a setuid or setgid program that
/// has not dropped them (effective and real user or group ids differ).
pub fn set_id() -> bool {
    // SAFETY: these calls have no preconditions and cannot fail.
    unsafe { libc::getuid() != libc::geteuid() || libc::getgid() != libc::getegid() }
}

extern "C" {
    // glibc: getenv that returns NULL in set-uid/set-gid programs.
    fn secure_getenv(name: *const libc::c_char) -> *mut libc::c_char;
}

/// A variable as the bytes it holds (None when unset or AT_SECURE).
pub fn secure_getenv_os(name: &str) -> Option<OsString> {
    let c = CString::new(name).ok()?;
    // SAFETY: valid C string; the result is copied at once, before any setenv.
    let p = unsafe { secure_getenv(c.as_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: a non-null result is a NUL-terminated string.
    Some(OsString::from_vec(
        unsafe { CStr::from_ptr(p) }.to_bytes().to_vec(),
    ))
}

/// Call `f` with a variable's bytes read in place (no copy, no allocation): for the on/off switch,
/// read before anything else, possibly from inside the program's allocator.
pub fn with_secure_env<R>(name: &CStr, f: impl FnOnce(Option<&[u8]>) -> R) -> R {
    // SAFETY: valid C string; the bytes are read during this call only, before any setenv of
    // this thread.
    let p = unsafe { secure_getenv(name.as_ptr()) };
    if p.is_null() {
        return f(None);
    }
    // SAFETY: a non-null result is a NUL-terminated string.
    f(Some(unsafe { CStr::from_ptr(p) }.to_bytes()))
}
