//! The registry of call sites: every site called at least once, in the order of first calls,
//! with its summary counters (and, for the summary, the compiled-in sites never called). Part of
//! the sampling step: a site registers on its first call, before anything decides whether that
//! call is tested.
//!
//! Registering never goes through the program's allocator (entries live in pages of the
//! runtime's own, `sys::OwnPages`), so a site's first call may come from inside `malloc`, as
//! jemalloc's start-up calls `os_overcommits_proc`. The one lock is held only to append an
//! entry; readers walk the list without it (entries are published with release stores and are
//! never freed).

use crate::site::Site;
use crate::sys::OwnPages;
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// Per-site counters for the summary.
#[derive(Default)]
pub struct SiteStats {
    /// Calls of threads that exited, and calls counted on the slow path (`counts`): the
    /// running threads' calls are in their blocks.
    pub calls: AtomicU64,
    pub sampled: AtomicU64,
    pub started: AtomicU64,
    pub skipped_concurrency: AtomicU64,
    pub skipped_budget: AtomicU64,
    pub skipped_in_pod: AtomicU64,
    pub skipped_cgroup: AtomicU64,
    pub skipped_pod_cpu: AtomicU64,
    pub skipped_queue: AtomicU64,
    /// Started calls that waited in the queue first.
    pub queued: AtomicU64,
    /// The `Self` type of a method's site, once known.
    pub owner: OnceLock<&'static str>,
}

impl SiteStats {
    /// Every count back to zero (in a fork's child, which counts its own).
    pub fn reset(&self) {
        for c in [
            &self.calls,
            &self.sampled,
            &self.started,
            &self.skipped_concurrency,
            &self.skipped_budget,
            &self.skipped_in_pod,
            &self.skipped_cgroup,
            &self.skipped_pod_cpu,
            &self.skipped_queue,
            &self.queued,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

/// A registered site and its counters.
pub struct Entry {
    pub site: &'static Site,
    pub stats: SiteStats,
    next: AtomicPtr<Entry>,
}

/// The entries' pages; the lock also orders appends to the list.
static PAGES: Mutex<OwnPages> = Mutex::new(OwnPages::new());
static HEAD: AtomicPtr<Entry> = AtomicPtr::new(ptr::null_mut());
static TAIL: AtomicPtr<Entry> = AtomicPtr::new(ptr::null_mut());
static COUNT: AtomicU32 = AtomicU32::new(0);

/// The site's entry, if it is registered.
pub fn entry(site: &'static Site) -> Option<&'static Entry> {
    let p = site.next.load(Ordering::Acquire).cast::<Entry>();
    // SAFETY: `site.next` is runtime-owned: null, or an entry published by `register` (a
    // release store after the entry was written), which lives for the whole process.
    unsafe { p.cast_const().as_ref() }
}

/// The site's entry, registering it on its first call. `None` only when the runtime cannot map
/// a page for it (the site is then never tested).
pub fn register(site: &'static Site) -> Option<&'static Entry> {
    if let Some(e) = entry(site) {
        return Some(e);
    }
    let pages = PAGES.lock().unwrap_or_else(|e| e.into_inner());
    append(site, pages)
}

/// `register` without waiting: `None` when another thread holds the lock (or held it at a fork).
/// For calls made from inside the runtime, which must not wait on any of its locks.
pub fn register_nowait(site: &'static Site) -> Option<&'static Entry> {
    if let Some(e) = entry(site) {
        return Some(e);
    }
    let pages = match PAGES.try_lock() {
        Ok(p) => p,
        Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => return None,
    };
    append(site, pages)
}

/// Add the site's entry under the lock (`pages`), unless another thread did meanwhile.
fn append(
    site: &'static Site,
    mut pages: std::sync::MutexGuard<'_, OwnPages>,
) -> Option<&'static Entry> {
    if let Some(e) = entry(site) {
        return Some(e); // registered by another thread meanwhile
    }
    let e: &'static Entry = pages
        .put(Entry {
            site,
            stats: SiteStats::default(),
            next: AtomicPtr::new(ptr::null_mut()),
        })
        .ok()?;
    let raw = ptr::from_ref(e).cast_mut();
    slot(site);
    site.next.store(raw.cast::<c_void>(), Ordering::Release);
    match tail() {
        Some(t) => t.next.store(raw, Ordering::Release),
        None => HEAD.store(raw, Ordering::Release),
    }
    TAIL.store(raw, Ordering::Release);
    Some(e)
}

/// Slots in each thread's counts (`counts`): indices go up to `SLOTS - 1`; sites past them keep
/// index 0, whose calls take the slow path (counted there; tested, in the queue, as one site).
pub const SLOTS: usize = 1 << 15;

/// The site's index (1, 2, ...: its slot in the threads' counts), given on first need, without
/// a lock: also to sites never registered (testing off). Two threads may race to give one; the
/// loser's number is left unused.
pub fn slot(site: &Site) -> u32 {
    let i = site.index.load(Ordering::Relaxed);
    if i != 0 || COUNT.load(Ordering::Relaxed) as usize >= SLOTS - 1 {
        return i;
    }
    let n = COUNT.fetch_add(1, Ordering::Relaxed) + 1;
    if n as usize >= SLOTS {
        return 0;
    }
    match site
        .index
        .compare_exchange(0, n, Ordering::Relaxed, Ordering::Relaxed)
    {
        Ok(_) => n,
        Err(other) => other,
    }
}

fn tail() -> Option<&'static Entry> {
    // SAFETY: null or a published, never-freed entry (see `entry`).
    unsafe { TAIL.load(Ordering::Acquire).cast_const().as_ref() }
}

/// Every registered site with its counters, in the order of first calls.
pub fn entries() -> impl Iterator<Item = &'static Entry> {
    // SAFETY: null or a published, never-freed entry (see `entry`).
    let first = unsafe { HEAD.load(Ordering::Acquire).cast_const().as_ref() };
    std::iter::successors(first, |e| {
        // SAFETY: as above: `next` is null or a published entry.
        unsafe { e.next.load(Ordering::Acquire).cast_const().as_ref() }
    })
}

/// Every compiled-in site, with its counters once it is registered: those called so far in the
/// order of first calls, then the others (`None`), which this reads and never registers (their
/// fast path stays as it is). A site registered meanwhile is one of the others: each site is
/// here once, whichever loaded object (the program, a shared library) it was compiled into.
pub fn every_site() -> Vec<(&'static Site, Option<&'static SiteStats>)> {
    let mut all: Vec<_> = entries().map(|e| (e.site, Some(&e.stats))).collect();
    let seen: std::collections::HashSet<*const Site> =
        all.iter().map(|(s, _)| ptr::from_ref(*s)).collect();
    all.extend(
        crate::sys::compiled_sites()
            .into_iter()
            .filter(|s| !seen.contains(&ptr::from_ref(*s)))
            .map(|s| (s, None)),
    );
    all
}

/// Whether any site was called.
pub fn any() -> bool {
    !HEAD.load(Ordering::Acquire).is_null()
}
