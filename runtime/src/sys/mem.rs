//! Memory: the shared counter page, privatizing shared mappings, stdio buffers.

use super::check;
use std::io;
use std::os::fd::{AsRawFd, RawFd};

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
///
/// # Safety
///
/// `addr..addr+len` must be a whole mapping of this process (page-aligned) that no other thread
/// uses meanwhile, and no Rust reference may point into it: for a moment it is replaced by fresh
/// memory, and the bytes are copied over without any synchronization.
pub unsafe fn privatize_mapping(
    mem: RawFd,
    addr: usize,
    len: usize,
    prot: libc::c_int,
) -> io::Result<()> {
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
    // SAFETY: a whole mapping of this process that nothing references (the caller's
    // obligation, see `# Safety`).
    if let Err(e) = unsafe { map_private_over(addr, len) } {
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

/// Replace `addr..addr+len`, a whole shared mapping of the runtime's own, by private zero-filled
/// memory in place: one `mmap`, no copy. What either side stores there afterwards no longer
/// reaches the other.
///
/// # Safety
///
/// The range must be a whole mapping of this process holding only atomics for which zero is a
/// valid value (`Zeroed`), which no other thread uses meanwhile: they read as zero afterwards.
pub unsafe fn zero_private(addr: usize, len: usize) -> io::Result<()> {
    // SAFETY: a whole mapping of the runtime's own (the caller's obligation): any reference
    // into it still points at mapped, zero-filled memory, a valid value of its atomics.
    unsafe { map_private_over(addr, len) }
}

/// Map fresh private zero-filled memory, readable and writable, over `addr..addr+len`.
///
/// # Safety
///
/// The range must be a whole mapping of this process that no other thread uses meanwhile; what
/// it held is gone.
unsafe fn map_private_over(addr: usize, len: usize) -> io::Result<()> {
    // SAFETY: MAP_FIXED over a whole mapping of this process (the caller's obligation).
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
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
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
    let parent = super::getpid();
    // SAFETY: the child only arms its parent-death signal, pauses and `_exit`s: async-signal-safe
    // calls and no state another thread could hold.
    let result = match unsafe { super::fork() } {
        Ok(super::Forked::Child) => {
            // Dies with its parent even if the parent is killed before it kills this child.
            let _ = super::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            if super::getppid() == parent {
                // SAFETY: pause until killed; nothing else runs in this child.
                unsafe { libc::pause() };
            }
            super::exit_now(0)
        }
        Ok(super::Forked::Parent(child)) => {
            // CPU time, not wall time: a supervisor runs at the lowest priority, and on a busy
            // machine the wall clock would count its waits for a CPU as the faults' cost.
            let t0 = super::thread_cpu_ns();
            touch(2);
            let ns = (super::thread_cpu_ns() - t0) / PAGES as u64;
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

/// `struct procmap_query` of Linux 6.11+ (uapi/linux/fs.h).
#[repr(C)]
#[derive(Default)]
struct ProcmapQuery {
    size: u64,
    query_flags: u64,
    query_addr: u64,
    vma_start: u64,
    vma_end: u64,
    vma_flags: u64,
    vma_page_size: u64,
    vma_offset: u64,
    inode: u64,
    dev_major: u32,
    dev_minor: u32,
    vma_name_size: u32,
    build_id_size: u32,
    vma_name_addr: u64,
    build_id_addr: u64,
}

const PROCMAP_QUERY: libc::c_ulong = 0xC068_6611;
const QUERY_VMA_READABLE: u64 = 0x01;
const QUERY_VMA_WRITABLE: u64 = 0x02;
const QUERY_VMA_EXECUTABLE: u64 = 0x04;
const QUERY_VMA_SHARED: u64 = 0x08;
const QUERY_COVERING_OR_NEXT_VMA: u64 = 0x10;

/// The MAP_SHARED mappings of this process as (address, length, protection), asked of the
/// kernel one by one (`PROCMAP_QUERY`, Linux 6.11+) instead of formatting and parsing all of
/// `/proc/self/maps`. `Ok(false)`: the kernel cannot answer; read the maps instead.
pub fn shared_mappings(out: &mut Vec<(usize, usize, libc::c_int)>) -> io::Result<bool> {
    each_mapping(QUERY_VMA_SHARED, |q| {
        let mut prot = 0;
        if q.vma_flags & QUERY_VMA_READABLE != 0 {
            prot |= libc::PROT_READ;
        }
        if q.vma_flags & QUERY_VMA_WRITABLE != 0 {
            prot |= libc::PROT_WRITE;
        }
        if q.vma_flags & QUERY_VMA_EXECUTABLE != 0 {
            prot |= libc::PROT_EXEC;
        }
        out.push((
            q.vma_start as usize,
            (q.vma_end - q.vma_start) as usize,
            prot,
        ));
    })
}

/// The executable mappings of this process as (start, end), asked of the kernel as
/// `shared_mappings` does. `None` where the kernel cannot answer.
pub fn executable_mappings() -> Option<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    let answered = each_mapping(QUERY_VMA_EXECUTABLE, |q| out.push((q.vma_start, q.vma_end)));
    answered.ok().filter(|&a| a).map(|_| out)
}

/// Each mapping with every property in `flags`, in address order, to `f` (`PROCMAP_QUERY`).
/// `Ok(false)`: the kernel cannot answer.
fn each_mapping(flags: u64, mut f: impl FnMut(&ProcmapQuery)) -> io::Result<bool> {
    let maps = super::open(c"/proc/self/maps", libc::O_RDONLY | libc::O_CLOEXEC, 0)?;
    let mut addr = 0u64;
    loop {
        let mut q = ProcmapQuery {
            size: std::mem::size_of::<ProcmapQuery>() as u64,
            query_flags: flags | QUERY_COVERING_OR_NEXT_VMA,
            query_addr: addr,
            ..ProcmapQuery::default()
        };
        // SAFETY: q is a valid, writable procmap_query whose size field says its size.
        let r =
            unsafe { libc::ioctl(maps.as_raw_fd(), PROCMAP_QUERY, &mut q as *mut ProcmapQuery) };
        if r < 0 {
            let e = io::Error::last_os_error();
            break match e.raw_os_error() {
                Some(libc::ENOENT) => Ok(true),
                Some(libc::ENOTTY) | Some(libc::EINVAL) => Ok(false),
                _ => Err(e),
            };
        }
        f(&q);
        if q.vma_end <= addr {
            break Ok(true);
        }
        addr = q.vma_end;
    }
}

/// The size of this process's address space in bytes (`/proc/self/statm`, first field).
pub fn address_space_size() -> Option<u64> {
    let fd = super::open(c"/proc/self/statm", libc::O_RDONLY | libc::O_CLOEXEC, 0).ok()?;
    let mut buf = [0u8; 128];
    let n = super::read(fd.as_raw_fd(), &mut buf).ok();
    let text = std::str::from_utf8(&buf[..n?]).ok()?;
    let pages: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(pages * page_size() as u64)
}

/// Unmap a page this process mapped itself (`map_shared_page`) and no longer uses.
///
/// # Safety
///
/// `addr..addr+len` must be a mapping `map_shared_page` returned that nothing (no reference, no
/// pointer another thread may follow) refers to any more.
pub unsafe fn unmap_page(addr: *mut u8, len: usize) {
    // SAFETY: the caller's obligation (see `# Safety`): a mapping of ours nothing refers to, so
    // unmapping it cannot affect other memory.
    unsafe { libc::munmap(addr.cast(), len) };
}

/// Memory of the runtime's own for values that live as long as the process, carved from private
/// anonymous pages instead of the program's allocator: the caller may be that allocator (an
/// instrumented function that `malloc` calls, under its own lock).
pub struct OwnPages {
    next: *mut u8,
    left: usize,
}

// SAFETY: `next` points into pages nothing else refers to until `put` hands out a part of them;
// moving the bump pointer to another thread moves only that right.
unsafe impl Send for OwnPages {}

impl OwnPages {
    pub const fn new() -> OwnPages {
        OwnPages {
            next: std::ptr::null_mut(),
            left: 0,
        }
    }

    /// Move `value` into these pages for the rest of the process (it is never dropped).
    pub fn put<T: Sync>(&mut self, value: T) -> io::Result<&'static T> {
        let (size, align) = (std::mem::size_of::<T>(), std::mem::align_of::<T>());
        let pad = self.next.align_offset(align);
        if self.next.is_null() || pad.saturating_add(size) > self.left {
            let len = size.max(page_size() * 16).next_multiple_of(page_size());
            self.next = map_anonymous(len, libc::MAP_PRIVATE)?.cast();
            self.left = len;
        }
        let pad = self.next.align_offset(align);
        // SAFETY: `pad + size <= left` (checked above; a fresh mapping is page-aligned and at
        // least `size` long), so the slot lies inside pages of ours that no one else uses, and
        // it is aligned for `T`. The pages are never unmapped, so the reference is 'static.
        unsafe {
            let slot = self.next.add(pad).cast::<T>();
            slot.write(value);
            self.next = self.next.add(pad + size);
            self.left -= pad + size;
            Ok(&*slot)
        }
    }
}

extern "C" {
    static mut stdout: *mut libc::FILE;
    static mut stderr: *mut libc::FILE;
    fn __fpurge(stream: *mut libc::FILE);
}

/// Drop what C's `stdout` and `stderr` buffers hold, unwritten (`__fpurge`).
///
/// # Safety
///
/// No other thread may use `stdout` or `stderr` meanwhile: `__fpurge` takes no lock (as in a
/// freshly forked child, whose only thread is the caller).
pub unsafe fn purge_c_std_streams() {
    // SAFETY: glibc's `stdout` and `stderr` are valid FILE pointers for the life of the process;
    // reading them copies the pointer; the caller excludes every other user of the streams.
    unsafe {
        __fpurge(stdout);
        __fpurge(stderr);
    }
}

/// Types for which all-zero bytes are a valid value (so fresh anonymous pages hold valid ones).
///
/// # Safety
///
/// The all-zero bit pattern must be a valid value of the type.
pub unsafe trait Zeroed: Sync {}

// SAFETY: an atomic integer of all-zero bytes is 0.
unsafe impl Zeroed for std::sync::atomic::AtomicI64 {}
// SAFETY: as above.
unsafe impl Zeroed for std::sync::atomic::AtomicU64 {}

/// `n` zeroed values of the runtime's own for the rest of the process: private anonymous pages
/// reserved without swap, so only the pages written to are ever backed.
pub fn map_zeroed<T: Zeroed>(n: usize) -> io::Result<&'static [T]> {
    let len = (n.max(1) * std::mem::size_of::<T>()).next_multiple_of(page_size());
    let p = map_anonymous(len, libc::MAP_PRIVATE | libc::MAP_NORESERVE)?;
    // SAFETY: a fresh, page-aligned (so aligned for T) mapping of at least `n` values, zero-
    // filled, which is a valid `T` (`Zeroed`); it is never unmapped, so it lives for 'static,
    // and nothing else refers to it.
    Ok(unsafe { std::slice::from_raw_parts(p.cast::<T>(), n) })
}

/// A zeroed value of the runtime's own on a page shared with the children forked after this
/// (`MAP_SHARED`), for the rest of the process.
pub fn map_zeroed_shared<T: Zeroed>() -> io::Result<&'static T> {
    let len = std::mem::size_of::<T>().next_multiple_of(page_size());
    let p = map_anonymous(len, libc::MAP_SHARED)?;
    // SAFETY: a fresh, page-aligned (so aligned for T) zero-filled mapping of at least one `T`,
    // a valid value (`Zeroed`); never unmapped, so it lives for 'static; shared only with
    // processes forked later, through atomics (`Zeroed` types are `Sync`).
    Ok(unsafe { &*p.cast::<T>() })
}

/// Store `value` into the C thread-local pointer at `var` (a countdown table for the inline fast
/// path of `invite.h`).
///
/// # Safety
///
/// `var` is the address of a `long long *` thread-local variable of the calling thread, which
/// the C fast path passed to the slow path on this same thread.
pub unsafe fn store_c_thread_ptr(var: usize, value: *const i64) {
    // SAFETY: the caller's promise: a live, aligned pointer variable of this thread; the C code
    // reads it only from this thread, so a plain store does not race.
    unsafe { (var as *mut *const i64).write(value) };
}

#[cfg(test)]
#[path = "mem_tests.rs"]
mod tests;
