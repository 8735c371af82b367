//! Memory: the shared counter page, privatizing shared mappings, stdio buffers.

use super::check;
use std::io;
use std::os::fd::RawFd;

/// A fresh anonymous read-write mapping (`MAP_SHARED` or `MAP_PRIVATE` in `share`).
fn map_anonymous(len: usize, share: libc::c_int) -> io::Result<*mut libc::c_void> {
    // SAFETY: a new anonymous mapping chosen by the kernel; no existing memory is touched.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            share | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        Err(io::Error::last_os_error())
    } else {
        Ok(p)
    }
}

/// A page of memory shared between the host and its supervisors (MAP_SHARED | MAP_ANONYMOUS).
/// Pods remap every shared mapping private, so a test cannot reach it.
pub fn map_shared_page(len: usize) -> io::Result<*mut u8> {
    map_anonymous(len, libc::MAP_SHARED).map(|p| p.cast())
}

/// Replace the shared mapping at `addr..addr+len` with a private anonymous one holding the same
/// bytes, read through `mem` (an fd of /proc/self/mem) so unreadable pages become zeros.
pub fn privatize_mapping(mem: RawFd, addr: usize, len: usize, prot: libc::c_int) -> io::Result<()> {
    let tmp = map_anonymous(len, libc::MAP_PRIVATE)?;
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

pub fn page_size() -> usize {
    // SAFETY: always succeeds.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// Minor page faults of this process so far.
pub fn minor_faults() -> u64 {
    // SAFETY: zeroed rusage is a valid out-parameter.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: ru is valid.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru.ru_minflt as u64
}

/// The cost of one copy-on-write fault here, in nanoseconds: write one byte into each of 256
/// resident pages while a forked child shares them. Forks once; for a supervisor, not the host.
pub fn measure_cow_fault_ns() -> Option<u64> {
    const PAGES: usize = 256;
    let page = page_size();
    let len = PAGES * page;
    let Ok(p) = map_anonymous(len, libc::MAP_PRIVATE) else {
        return None;
    };
    let base = p.cast::<u8>();
    // SAFETY: every offset written is inside the mapping.
    let touch = |v: u8| (0..PAGES).for_each(|i| unsafe { base.add(i * page).write_volatile(v) });
    touch(1);
    let result = match super::fork() {
        Ok(super::Forked::Child) => {
            // SAFETY: pause until killed; nothing else runs in this child.
            unsafe { libc::pause() };
            super::exit_now(0)
        }
        Ok(super::Forked::Parent(child)) => {
            let t0 = super::monotonic_ns();
            touch(2);
            let ns = (super::monotonic_ns() - t0) / PAGES as u64;
            super::kill(child, libc::SIGKILL);
            let _ = super::wait4(child, 0);
            Some(ns.max(1))
        }
        Err(_) => None,
    };
    // SAFETY: unmapping the mapping made above; nothing refers to it any more.
    unsafe { libc::munmap(p, len) };
    result
}
