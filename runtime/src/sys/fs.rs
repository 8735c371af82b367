//! Namespaces, mounts and paths.

use super::fd::close;
use super::{check, check_long};
use std::ffi::CStr;
use std::io;
use std::os::fd::{OwnedFd, RawFd};

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

/// `mount_setattr(AT_RECURSIVE)` to make a whole bind tree read-only, `nodev` and `nosuid`
/// (Linux 5.12+).
pub fn make_tree_readonly(target: &CStr) -> io::Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    const MOUNT_ATTR_NOSUID: u64 = 0x2;
    const MOUNT_ATTR_NODEV: u64 = 0x4;
    const AT_RECURSIVE: libc::c_int = 0x8000;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
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

/// `open_tree(OPEN_TREE_CLONE | AT_RECURSIVE)`: a detached copy of the mount tree at `path`,
/// as it is now (Linux 5.2+).
pub fn open_tree_clone(path: &CStr) -> io::Result<OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    let flags = OPEN_TREE_CLONE | AT_RECURSIVE | libc::O_CLOEXEC as libc::c_uint;
    // SAFETY: a valid C string; the result is a new descriptor or an error.
    let r = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    super::fd::owned(r)
}

/// `move_mount` of a tree from `open_tree_clone` onto `target`.
pub fn move_mount_to(tree: RawFd, target: &CStr) -> io::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    // SAFETY: an empty C string names `tree` itself; `target` is a valid C string.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree,
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
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

/// Mark a directory in an overlay's upper layer opaque: the lower layers' entries do not show.
pub fn set_opaque(dir: &CStr) -> io::Result<()> {
    // SAFETY: valid C strings and a one-byte value buffer of the length passed.
    check(unsafe {
        libc::setxattr(
            dir.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            b"y".as_ptr().cast(),
            1,
            0,
        )
    })
    .map(drop)
}

/// `SHM_INFO` of <sys/shm.h> (not in the libc crate).
const SHM_INFO: libc::c_int = 14;

/// Whether this process's IPC namespace holds no SysV shared memory segment, message queue or
/// semaphore set (the `*_INFO` commands count them without naming one).
pub fn sysv_ipc_empty() -> bool {
    // The kernel fills these; only the counts are read (`used_ids`, `msgpool`, `semusz`), and
    // the buffers are larger than each struct.
    let mut shm = [0i64; 16];
    let mut msg = [0i32; 16];
    let mut sem = [0i32; 16];
    // SAFETY: each buffer is larger than the kernel's shm_info / msginfo / seminfo; the INFO
    // commands only write that struct.
    let (rs, rm, rsem) = unsafe {
        (
            libc::shmctl(0, SHM_INFO, shm.as_mut_ptr().cast()),
            libc::msgctl(0, libc::MSG_INFO, msg.as_mut_ptr().cast()),
            libc::semctl(0, 0, libc::SEM_INFO, sem.as_mut_ptr()),
        )
    };
    let used_shm = shm[0] as i32; // struct shm_info { int used_ids; ... }
    let used_msg = msg[0]; // struct msginfo { int msgpool; ... } (MSG_INFO: queues in use)
    let used_sem = sem[7]; // struct seminfo { ...; int semusz (8th); ... } (SEM_INFO: sets in use)
    rs >= 0 && rm >= 0 && rsem >= 0 && used_shm == 0 && used_msg == 0 && used_sem == 0
}

/// Free inodes and free blocks of the file system `fd` is on (`fstatvfs`).
pub fn free_inodes_and_blocks(fd: RawFd) -> io::Result<(u64, u64)> {
    // SAFETY: zeroed statvfs is a valid out-parameter.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid, writable statvfs.
    check(unsafe { libc::fstatvfs(fd, &mut st) })?;
    Ok((st.f_ffree as u64, st.f_bfree as u64))
}

/// What changes when a directory's attributes or entries change: mode, owner, group,
/// modification and change times (ns), of `path` relative to `dir` (not following a link).
pub fn dir_stamp_at(dir: RawFd, path: &CStr) -> io::Result<[u64; 5]> {
    // SAFETY: zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid C string; st is a valid, writable stat.
    check(unsafe { libc::fstatat(dir, path.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    let ns = |s: i64, n: i64| {
        (s as u64)
            .wrapping_mul(1_000_000_000)
            .wrapping_add(n as u64)
    };
    Ok([
        st.st_mode as u64,
        ((st.st_uid as u64) << 32) | st.st_gid as u64,
        ns(st.st_mtime, st.st_mtime_nsec),
        ns(st.st_ctime, st.st_ctime_nsec),
        st.st_ino,
    ])
}

/// Whether the directory `path` relative to `dir` has no entries.
pub fn dir_is_empty_at(dir: RawFd, path: &CStr) -> io::Result<bool> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
    // SAFETY: valid C string.
    let fd = check(unsafe { libc::openat(dir, path.as_ptr(), flags) })?;
    let mut entries = 0;
    let result = super::for_each_dirent(fd, |name| {
        entries += (name != b"." && name != b"..") as usize
    });
    close(fd);
    result.map(|()| entries == 0)
}

/// Give `fd` this mode and owner; whether both took.
pub fn fchmod_fchown(fd: RawFd, mode: libc::mode_t, uid: libc::uid_t, gid: libc::gid_t) -> bool {
    // SAFETY: plain calls on a descriptor; no memory is passed.
    unsafe { libc::fchown(fd, uid, gid) == 0 && libc::fchmod(fd, mode) == 0 }
}

/// Detach the mount at `target` (`umount2(MNT_DETACH)`), ignoring failure.
pub fn detach(target: &CStr) {
    // SAFETY: a valid C string.
    unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
}

/// Give the unnamed file `fd` (`O_TMPFILE`) the name `name` in the directory `dir` (`linkat`
/// through its `/proc/self/fd` entry, which needs no capability). Both must be on one mount.
pub fn name_unnamed(fd: RawFd, dir: RawFd, name: &CStr) -> io::Result<()> {
    let from = std::ffi::CString::new(format!("/proc/self/fd/{fd}"))
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: two valid C strings that outlive the call; `dir` is a descriptor or EBADF.
    check(unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            from.as_ptr(),
            dir,
            name.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    })
    .map(drop)
}

/// Remove the name `name` from the directory `dir`.
pub fn unlink_at(dir: RawFd, name: &CStr) -> io::Result<()> {
    // SAFETY: a valid C string; `dir` is a descriptor or EBADF.
    check(unsafe { libc::unlinkat(dir, name.as_ptr(), 0) }).map(drop)
}

/// What the process's root is: the mount it is reached through (its id, new for every copy of a
/// mount: a new mount namespace or another root changes it), its device and inode. One `statx`,
/// no /proc lookup.
pub fn root_identity() -> io::Result<(u64, u64, u64)> {
    // SAFETY: zeroed statx is a valid out-parameter.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: valid C string and writable statx.
    check(unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c"/".as_ptr(),
            0,
            libc::STATX_INO | libc::STATX_MNT_ID,
            &mut st,
        )
    })?;
    if st.stx_mask & libc::STATX_MNT_ID == 0 {
        return Err(io::Error::from_raw_os_error(libc::ENOSYS));
    }
    let dev = (u64::from(st.stx_dev_major) << 32) | u64::from(st.stx_dev_minor);
    Ok((st.stx_mnt_id, dev, st.stx_ino))
}
