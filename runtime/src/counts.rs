//! Exact call counts under many threads. Each thread counts its calls in a block of its own, one
//! slot per site (the site's registration index): the countdown that the fast path counts down
//! (a relaxed load, compare and store that no other thread writes, so no call is lost) and the
//! number of calls at which that countdown ends. A thread's calls of a site so far are
//! `end - countdown`. When a thread exits its counts are folded into the sites' totals
//! (`SiteStats::calls`) and its block is free for the next thread; the summary adds the totals
//! and the blocks of the threads still running.
//!
//! Blocks live in pages of the runtime's own and are never unmapped. The fast path of Rust sites
//! finds its block through a thread-local table (`COUNTDOWNS`: a table of zeros until the
//! thread's first slow path, so the first call of each site takes the slow path; a fixed size,
//! so the slot is found with a mask, not a bounds check), that of C sites through a `long long *` thread-local of `invite.h` whose
//! address the slow path is given, noted in the block, and cleared when the thread exits.
//!
//! With testing off, or in a pod, threads count down a shared table (`NEVER_TABLE`) whose slots
//! never run out: no block, no allocation, and the fast path stays a load and a store.

use crate::registry;
use crate::site::Site;
use crate::sys;
use std::cell::Cell;
use std::sync::atomic::{fence, Ordering};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize};
use std::sync::Mutex;

/// Slots per block: the site with index n counts in slot n (1 ..); slot 0 stays 0, so the fast
/// path of a site without an index takes the slow path (`registry::slot`).
pub use registry::SLOTS;

/// A countdown that never runs out (testing off, probability 0, in a pod).
pub const NEVER: i64 = i64::MAX;

/// C thread-local pointers one thread may have (one per shared object that inlines the fast
/// path; usually one): a further one stays null, and its calls take the slow path.
const C_VARS: usize = 8;

/// One thread's counts.
pub struct Block {
    countdown: &'static Table,
    end: &'static [AtomicU64],
    /// Odd while the owner changes a slot's (end, countdown) pair on its slow path.
    seq: AtomicU64,
    /// Owned by a running thread.
    live: AtomicBool,
    /// One past the highest slot the owner used.
    top: AtomicUsize,
    /// Addresses of the owner's C thread-local pointers that point at `countdown`.
    c_vars: [AtomicUsize; C_VARS],
    /// The next block made (every block, in a list that only grows).
    next: AtomicPtr<Block>,
}

static ALL: AtomicPtr<Block> = AtomicPtr::new(std::ptr::null_mut());
static PAGES: Mutex<sys::OwnPages> = Mutex::new(sys::OwnPages::new());
/// Held while counts move from blocks to totals (a thread's exit, a fork) and while the summary
/// reads them, so that no call is counted twice or missed.
static FOLD: SpinLock = SpinLock::new();
/// Where calls go when testing is off or in a pod: slots set to `NEVER` (racy stores of nearly
/// `NEVER` by several threads lose nothing anyone reads).
static NEVER_TABLE: Table = [const { AtomicI64::new(0) }; SLOTS];
/// The table of a thread without a block: never written, all zero (pages of zeros).
static ZEROS: Table = [const { AtomicI64::new(0) }; SLOTS];

/// A thread's countdowns, one per slot.
pub type Table = [AtomicI64; SLOTS];
/// The key whose destructor folds a thread's block at its exit (`None`: none could be made).
static EXIT_KEY: std::sync::OnceLock<Option<libc::pthread_key_t>> = std::sync::OnceLock::new();

thread_local! {
    /// This thread's countdowns: what the Rust fast path counts down (`Site::due`).
    pub(crate) static COUNTDOWNS: Cell<&'static Table> = const { Cell::new(&ZEROS) };
    static BLOCK: Cell<Option<&'static Block>> = const { Cell::new(None) };
    /// Set when this thread's block was folded at its exit: later calls count on the slow path.
    static EXITED: Cell<bool> = const { Cell::new(false) };
}

/// A C fast path's thread-local pointer (its address), or none for a Rust site.
#[derive(Clone, Copy)]
pub struct CVar(pub usize);

/// What a call on the slow path is, for the caller's sampling.
pub enum Count {
    /// Counted in the thread's block; `true`: this call ends its countdown (it is sampled).
    Counted(bool),
    /// The thread has no block (exiting, or no memory): the caller counts it in the totals.
    NoBlock,
}

/// Count this call of a registered site in the calling thread's block: `draw()` gives the
/// calls until the next sample when a countdown starts.
pub fn count(site: &Site, c_var: Option<CVar>, draw: impl Fn() -> i64) -> Count {
    let slot = site.index.load(Ordering::Relaxed) as usize;
    let Some(block) = thread_block(c_var).filter(|_| slot > 0 && slot < SLOTS) else {
        return Count::NoBlock;
    };
    block.top.fetch_max(slot + 1, Ordering::Relaxed);
    let mut c = block.countdown[slot].load(Ordering::Relaxed);
    if c <= 0 {
        // The thread's first call of the site: its first countdown, of which this call is the
        // first.
        let d = draw();
        let e = block.end[slot].load(Ordering::Relaxed);
        block.write(slot, e.wrapping_add(d as u64), d);
        c = d;
    }
    if c > 1 {
        block.countdown[slot].store(c - 1, Ordering::Relaxed);
        return Count::Counted(false);
    }
    // Sampled: this call ends the countdown; the next one starts.
    let d = draw();
    let e = block.end[slot].load(Ordering::Relaxed);
    block.write(slot, e.wrapping_add(d as u64), d);
    Count::Counted(true)
}

/// Testing is off, or this is a pod: the site's calls on this thread count down a table that
/// never runs out (the site gets its slot without being registered).
pub fn never(site: &Site, c_var: Option<CVar>) {
    let slot = registry::slot(site) as usize;
    if slot == 0 || slot >= SLOTS {
        return; // every call takes the slow path, which does nothing more
    }
    NEVER_TABLE[slot].store(NEVER, Ordering::Relaxed);
    point_at(&NEVER_TABLE, c_var);
}

/// Calls of `site` so far, exact for every thread that is not running a call of it now:
/// the totals plus what the running threads' blocks hold. With the summary's fold lock
/// (`reading`).
pub fn calls(_reading: &Reading, site: &Site, folded: u64) -> u64 {
    let slot = site.index.load(Ordering::Relaxed) as usize;
    if slot == 0 || slot >= SLOTS {
        return folded;
    }
    blocks()
        .filter(|b| b.live.load(Ordering::Acquire))
        .fold(folded, |n, b| n.wrapping_add(b.pending(slot)))
}

/// The fold lock, held while the summary reads the counts.
pub struct Reading(());

impl Reading {
    pub fn start() -> Reading {
        FOLD.lock();
        Reading(())
    }

    /// Threads other than the caller whose blocks are live: they may count calls meanwhile.
    pub fn threads_running(&self) -> u64 {
        let me = BLOCK.with(Cell::get).map(std::ptr::from_ref);
        blocks()
            .filter(|b| b.live.load(Ordering::Acquire) && Some(std::ptr::from_ref(*b)) != me)
            .count() as u64
    }
}

impl Drop for Reading {
    fn drop(&mut self) {
        FOLD.unlock();
    }
}

impl Block {
    /// Set a slot's countdown and end, so that a reader never sees one without the other.
    fn write(&self, slot: usize, end: u64, countdown: i64) {
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        self.end[slot].store(end, Ordering::Relaxed);
        self.countdown[slot].store(countdown, Ordering::Relaxed);
        self.seq.store(s + 2, Ordering::Release);
    }

    /// Calls of `slot` this block counted and the totals do not hold yet.
    fn pending(&self, slot: usize) -> u64 {
        loop {
            let s1 = self.seq.load(Ordering::Acquire);
            let e = self.end[slot].load(Ordering::Relaxed);
            let c = self.countdown[slot].load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if s1 % 2 == 0 && self.seq.load(Ordering::Relaxed) == s1 {
                return if c > 0 { e.wrapping_sub(c as u64) } else { e };
            }
            std::hint::spin_loop();
        }
    }
}

/// The calling thread's block, claimed on its first slow path (with the exit fold armed); the C
/// thread-local pointer `c_var`, if new, is pointed at it.
fn thread_block(c_var: Option<CVar>) -> Option<&'static Block> {
    let block = match BLOCK.with(Cell::get) {
        Some(b) => b,
        None => {
            let key = exit_key()?;
            if EXITED.with(Cell::get) {
                return None;
            }
            let b = claim()?;
            BLOCK.with(|c| c.set(Some(b)));
            sys::set_thread_value(key, std::ptr::from_ref(b).cast());
            b
        }
    };
    point_at(block.countdown, c_var);
    if let Some(CVar(var)) = c_var {
        let known = block
            .c_vars
            .iter()
            .any(|v| v.load(Ordering::Relaxed) == var);
        if !known {
            if let Some(free) = block.c_vars.iter().find(|v| v.load(Ordering::Relaxed) == 0) {
                free.store(var, Ordering::Relaxed);
            } else {
                // No room to clear it at exit: it stays null, and its calls take the slow path.
                // SAFETY: `var` is this thread's own C thread-local pointer (`CVar`).
                unsafe { sys::store_c_thread_ptr(var, std::ptr::null()) };
            }
        }
    }
    Some(block)
}

/// Point this thread's fast paths (the Rust one, and the C one at `c_var`) at `table`.
fn point_at(table: &'static Table, c_var: Option<CVar>) {
    COUNTDOWNS.with(|c| c.set(table));
    if let Some(CVar(var)) = c_var {
        // SAFETY: `var` is the address of the calling thread's own `long long *` thread-local,
        // passed by the C fast path of `invite.h` on this thread (`CVar`).
        unsafe { sys::store_c_thread_ptr(var, table.as_ptr().cast()) };
    }
}

/// The key that folds a thread's block at its exit, made with the fork handler on first need;
/// `None` if the process has no key left (threads then count on the slow path).
fn exit_key() -> Option<libc::pthread_key_t> {
    *EXIT_KEY.get_or_init(|| {
        // SAFETY: `forked` only stores to atomics (async-signal-safe; no lock, no allocation).
        unsafe { sys::at_fork_child(forked) };
        sys::thread_exit_key(fold_at_exit)
    })
}

/// A free block (its slots zeroed), or a new one.
fn claim() -> Option<&'static Block> {
    let _fold = Reading::start(); // no fold or summary sees a half-claimed block
    for b in blocks() {
        if b.live
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            for slot in 1..b.top.swap(0, Ordering::Relaxed) {
                b.end[slot].store(0, Ordering::Relaxed);
                b.countdown[slot].store(0, Ordering::Relaxed);
            }
            for v in &b.c_vars {
                v.store(0, Ordering::Relaxed);
            }
            return Some(b);
        }
    }
    let block = Block {
        countdown: sys::map_zeroed(SLOTS).ok()?.try_into().ok()?,
        end: sys::map_zeroed(SLOTS).ok()?,
        seq: AtomicU64::new(0),
        live: AtomicBool::new(true),
        top: AtomicUsize::new(0),
        c_vars: [const { AtomicUsize::new(0) }; C_VARS],
        next: AtomicPtr::new(std::ptr::null_mut()),
    };
    let b = PAGES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .put(block)
        .ok()?;
    let mut head = ALL.load(Ordering::Acquire);
    loop {
        b.next.store(head, Ordering::Relaxed);
        match ALL.compare_exchange(
            head,
            std::ptr::from_ref(b).cast_mut(),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => return Some(b),
            Err(h) => head = h,
        }
    }
}

fn blocks() -> impl Iterator<Item = &'static Block> {
    // SAFETY: null or a block published by `claim` (a release CAS after it was written), in
    // pages that are never unmapped.
    let first = unsafe { ALL.load(Ordering::Acquire).cast_const().as_ref() };
    std::iter::successors(first, |b| {
        // SAFETY: as above: `next` is null or a published block.
        unsafe { b.next.load(Ordering::Acquire).cast_const().as_ref() }
    })
}

/// At the thread's exit (the destructor of `EXIT_KEY`, whose value is the block): its counts
/// go to the totals, its fast paths to the slow path (which then counts in the totals), its
/// block to the next thread.
unsafe extern "C" fn fold_at_exit(_block: *mut libc::c_void) {
    let Some(block) = BLOCK.with(Cell::get) else {
        return;
    };
    EXITED.with(|e| e.set(true));
    BLOCK.with(|b| b.set(None));
    COUNTDOWNS.with(|c| c.set(&ZEROS));
    for v in &block.c_vars {
        let var = v.swap(0, Ordering::Relaxed);
        if var != 0 {
            // SAFETY: noted by `thread_block` on this thread: its own C thread-local.
            unsafe { sys::store_c_thread_ptr(var, std::ptr::null()) };
        }
    }
    let _fold = Reading::start();
    let top = block.top.load(Ordering::Relaxed);
    for e in registry::entries() {
        let slot = e.site.index.load(Ordering::Relaxed) as usize;
        if slot > 0 && slot < top {
            e.stats
                .calls
                .fetch_add(block.pending(slot), Ordering::Relaxed);
        }
    }
    block.live.store(false, Ordering::Release);
}

/// In the child of a fork: only the forking thread is left. Its calls so far and every total
/// are the parent's, which counts them: the child counts from zero (a forked worker's summary is
/// its own), and the other threads' blocks are free. Atomic stores only.
extern "C" fn forked() {
    FOLD.reset();
    let me = BLOCK.with(Cell::get).map(std::ptr::from_ref);
    for b in blocks() {
        if Some(std::ptr::from_ref(b)) != me {
            b.live.store(false, Ordering::Relaxed);
            continue;
        }
        for slot in 1..b.top.load(Ordering::Relaxed) {
            let c = b.countdown[slot].load(Ordering::Relaxed);
            b.end[slot].store(c.max(0) as u64, Ordering::Relaxed);
        }
    }
    for e in registry::entries() {
        e.stats.reset();
    }
}

/// A lock that a fork's child can reset (the thread that held it is not there), taken only on
/// slow paths: a thread's first call, its exit, the summary.
struct SpinLock(AtomicU32);

impl SpinLock {
    const fn new() -> SpinLock {
        SpinLock(AtomicU32::new(0))
    }

    fn lock(&self) {
        while self
            .0
            .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::thread::yield_now();
        }
    }

    fn unlock(&self) {
        self.0.store(0, Ordering::Release);
    }

    fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }
}
