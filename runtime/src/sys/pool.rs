//! The runtime's own heap in the host (the C library's, `heap`): memory that never comes from the
//! program's `malloc`, reused as a long-running host needs, and usable at any instant by any
//! process the host forks.
//!
//! The host's threads share it: the sampled call on its way to the fork, the runtime's thread
//! lending blanks and writing records while that call may hold the program's allocator's lock.
//! It takes no lock of its own: every change is one compare-and-swap, so a fork (the runtime's,
//! the program's, one from a signal handler) at any instant leaves the child a heap it can use —
//! an operation a vanished thread had begun has changed nothing, or leaked the one block it
//! was freeing.
//!
//! - Small blocks (up to 64 KiB): power-of-two classes, each a free list (a stack whose head
//!   carries a tag, so that a block taken and given back meanwhile fails a stale swap), carved
//!   from 4 MiB regions by a bump pointer. A freed block goes back on its class's list for the
//!   next allocation of that class; regions are never unmapped (a free list's next word may be
//!   read from a block just taken by another thread: stale, and its swap fails).
//! - Large blocks: a mapping each, unmapped when freed, grown with `mremap`.

use std::alloc::Layout;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

const MIN_SHIFT: u32 = 4;
const MAX_SHIFT: u32 = 16;
const CLASSES: usize = (MAX_SHIFT - MIN_SHIFT + 1) as usize;
/// Small blocks are carved from mappings of this size.
const REGION: usize = 4 << 20;

/// A list head: the first free block's address shifted right by `MIN_SHIFT` (every small block
/// is aligned to 16 at least; user addresses are below 2^48) in the low bits, a tag counting
/// the head's changes in the other 20.
const ADDR_BITS: u32 = 44;
const ADDR_MASK: u64 = (1 << ADDR_BITS) - 1;

static FREE: [AtomicU64; CLASSES] = [const { AtomicU64::new(0) }; CLASSES];

/// The start of the region being carved: its own first words (`Region`).
static CARVING: AtomicPtr<Region> = AtomicPtr::new(ptr::null_mut());

/// A region's header, at its start.
struct Region {
    /// The next byte not yet carved.
    next: AtomicUsize,
    /// One past the region's last byte.
    end: usize,
}

fn pack(addr: usize, tag: u64) -> u64 {
    ((addr as u64) >> MIN_SHIFT) | (tag << ADDR_BITS)
}

fn unpack(head: u64) -> (usize, u64) {
    (
        ((head & ADDR_MASK) << MIN_SHIFT) as usize,
        head >> ADDR_BITS,
    )
}

/// The class of a small layout (`None`: large), and its blocks' size.
fn class(layout: Layout) -> Option<(usize, usize)> {
    let size = layout.size().max(layout.align()).max(1 << MIN_SHIFT);
    if size > 1 << MAX_SHIFT {
        return None;
    }
    let shift = size.next_power_of_two().trailing_zeros();
    Some(((shift - MIN_SHIFT) as usize, 1 << shift))
}

/// A fresh private anonymous mapping of `len` bytes (null: none).
fn map(len: usize) -> *mut u8 {
    // SAFETY: a new mapping; no existing memory is touched.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        ptr::null_mut()
    } else {
        p.cast()
    }
}

/// Unmap `[p, p + len)`, which this module mapped and no one uses.
fn unmap(p: *mut u8, len: usize) {
    if len > 0 {
        // SAFETY: pages of a mapping of this module's that nothing refers to any more.
        unsafe { libc::munmap(p.cast(), len) };
    }
}

fn page() -> usize {
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    let mut p = PAGE.load(Ordering::Relaxed);
    if p == 0 {
        // SAFETY: sysconf has no preconditions.
        p = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        PAGE.store(p, Ordering::Relaxed);
    }
    p
}

/// A block for `layout` (null: out of memory).
pub fn alloc(layout: Layout) -> *mut u8 {
    match class(layout) {
        Some((c, size)) => pop(c).unwrap_or_else(|| carve(size)),
        None => alloc_large(layout),
    }
}

/// As `alloc`, zeroed.
pub fn alloc_zeroed(layout: Layout) -> *mut u8 {
    if class(layout).is_none() {
        // A fresh mapping is zero.
        return alloc_large(layout);
    }
    let p = alloc(layout);
    if !p.is_null() {
        // SAFETY: `p` is a block of at least `layout.size()` bytes, ours until freed.
        unsafe { ptr::write_bytes(p, 0, layout.size()) };
    }
    p
}

/// Give back a block `alloc` made for `layout`.
///
/// # Safety
///
/// `p` came from this module's `alloc`, `alloc_zeroed` or `realloc` with `layout`, and is not
/// used after this.
pub unsafe fn dealloc(p: *mut u8, layout: Layout) {
    match class(layout) {
        Some((c, _)) => push(c, p),
        None => unmap(p, layout.size()),
    }
}

/// `p` (of `layout`) grown or shrunk to `new_size`, moved if need be (null: out of memory, `p`
/// untouched).
///
/// # Safety
///
/// As for [`dealloc`]; `new_size` rounded up to `layout.align()` does not overflow.
pub unsafe fn realloc(p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
    let Ok(new) = Layout::from_size_align(new_size, layout.align()) else {
        return ptr::null_mut();
    };
    match (class(layout), class(new)) {
        (Some((a, _)), Some((b, _))) if a == b => return p,
        (None, None) if layout.align() <= page() => {
            // SAFETY: `p` is the start of a mapping of `layout.size()` bytes (rounded up to
            // pages) that only this block uses; the kernel moves it whole if it must.
            let q =
                unsafe { libc::mremap(p.cast(), layout.size(), new_size, libc::MREMAP_MAYMOVE) };
            return if q == libc::MAP_FAILED {
                ptr::null_mut()
            } else {
                q.cast()
            };
        }
        _ => {}
    }
    let q = alloc(new);
    if !q.is_null() {
        // SAFETY: `p` holds `layout.size()` bytes, `q` at least `new_size`, and they do not
        // overlap (`q` was free until now).
        unsafe { ptr::copy_nonoverlapping(p, q, layout.size().min(new_size)) };
        // SAFETY: the caller's block, copied and no longer used.
        unsafe { dealloc(p, layout) };
    }
    q
}

/// A block of class `c` from its free list.
fn pop(c: usize) -> Option<*mut u8> {
    let head = &FREE[c];
    let mut cur = head.load(Ordering::Acquire);
    loop {
        let (addr, tag) = unpack(cur);
        if addr == 0 {
            return None;
        }
        // SAFETY: `addr` is a small block of a region, mapped for ever. While it is free its
        // first word holds the next free block's address; if another thread took it since
        // `cur` was read, the word may be anything, and the swap below fails (the tag moved).
        let next = unsafe { (*(addr as *const AtomicUsize)).load(Ordering::Relaxed) };
        match head.compare_exchange_weak(
            cur,
            pack(next, tag.wrapping_add(1)),
            Ordering::Acquire,
            Ordering::Acquire,
        ) {
            Ok(_) => return Some(addr as *mut u8),
            Err(now) => cur = now,
        }
    }
}

/// Put block `p` of class `c` on its free list.
fn push(c: usize, p: *mut u8) {
    let head = &FREE[c];
    let mut cur = head.load(Ordering::Relaxed);
    loop {
        let (first, tag) = unpack(cur);
        // SAFETY: `p` is a free block of at least 16 bytes, aligned to 16, that only this
        // thread refers to until the swap publishes it.
        unsafe { (*(p as *const AtomicUsize)).store(first, Ordering::Relaxed) };
        match head.compare_exchange_weak(
            cur,
            pack(p as usize, tag.wrapping_add(1)),
            Ordering::Release,
            Ordering::Relaxed,
        ) {
            Ok(_) => return,
            Err(now) => cur = now,
        }
    }
}

/// A new block of `size` bytes (a power of two), aligned to `size`, from the region being
/// carved, or from a new one when it is used up.
fn carve(size: usize) -> *mut u8 {
    loop {
        let r = CARVING.load(Ordering::Acquire);
        if !r.is_null() {
            // SAFETY: a region's header, written before the region was published.
            let region = unsafe { &*r };
            let mut next = region.next.load(Ordering::Relaxed);
            loop {
                let start = next.next_multiple_of(size);
                if start + size > region.end {
                    break;
                }
                match region.next.compare_exchange_weak(
                    next,
                    start + size,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return start as *mut u8,
                    Err(now) => next = now,
                }
            }
        }
        let fresh = map(REGION);
        if fresh.is_null() {
            return fresh;
        }
        let header = fresh.cast::<Region>();
        // SAFETY: the start of a fresh mapping, aligned to a page, that no one else has seen.
        unsafe {
            header.write(Region {
                next: AtomicUsize::new(fresh as usize + size_of::<Region>()),
                end: fresh as usize + REGION,
            })
        };
        if CARVING
            .compare_exchange(r, header, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // Another thread put a region in first: carve from it.
            unmap(fresh, REGION);
        }
    }
}

/// A mapping of its own for a large block, aligned to `layout.align()`.
fn alloc_large(layout: Layout) -> *mut u8 {
    let page = page();
    if layout.align() <= page {
        return map(layout.size());
    }
    // Map more, and unmap what lies before and after the aligned block.
    let len = layout.size().next_multiple_of(page);
    let p = map(len + layout.align());
    if p.is_null() {
        return p;
    }
    let start = (p as usize).next_multiple_of(layout.align());
    unmap(p, start - p as usize);
    unmap(
        (start + len) as *mut u8,
        p as usize + len + layout.align() - (start + len),
    );
    start as *mut u8
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;
