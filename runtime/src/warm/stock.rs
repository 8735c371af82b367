//! The stock of blanks: mount namespaces prepared ahead of time for warm pods.
//!
//! Shared between the host's threads and the watcher by a static array of slots whose state
//! moves EMPTY → BUILDING → READY → TAKEN → (READY again, or EMPTY): the host takes a READY slot
//! with one compare-and-swap; everything else (building, recycling, dropping) is the watcher's.
//! A slot publishes what the test needs (the mount namespace and the write ends of its two
//! pipes); the watcher keeps the rest (`Blank`).
//!
//! The slots live on a page shared with the host's forks (made with the warm state, `share`):
//! a waiting copy (`lend`) whose turn has come takes a READY blank there itself, with the same
//! compare-and-swap, copies its descriptors out of the host with `pidfd_getfd`, and leaves its
//! queue key in the slot (`borrowed`), by which the watcher adopts it as the blank's pod. Going
//! through the watcher instead (an ask over a socket, a reply with the descriptors) cost each
//! queued pod two wake-ups of the watcher's thread, a sleep of its own, and ~50 us.

use crate::ownfd::{self, Own};
use crate::plan::Plan;
use crate::pod::{self, Scratch};
use crate::runtime::Runtime;
use crate::sys;
use std::os::fd::{AsFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU64, AtomicU8, Ordering};

/// Most blanks kept at once (each holds a mount namespace and a scratch tmpfs).
pub const MAX_BLANKS: usize = 16;

/// Pods one blank serves at most: each leaves its /proc mounted below the next one's (a path
/// through /proc walks the stack; a dead /proc holds a little memory until the blank goes).
pub const MAX_USES: u32 = 64;

const EMPTY: u8 = 0;
const BUILDING: u8 = 1;
const READY: u8 = 2;
const TAKEN: u8 = 3;

struct Slot {
    state: AtomicU8,
    mnt: AtomicI32,
    ipc: AtomicI32,
    uts: AtomicI32,
    out_w: AtomicI32,
    st_w: AtomicI32,
    /// The queue key of the waiting copy that took the blank itself (0: none, or adopted).
    borrower: AtomicU64,
}

type Slots = [Slot; MAX_BLANKS];

/// The slots until `share` moves them to a shared page (and for good where it cannot).
static PRIVATE: Slots = [const {
    Slot {
        state: AtomicU8::new(EMPTY),
        mnt: AtomicI32::new(-1),
        ipc: AtomicI32::new(-1),
        uts: AtomicI32::new(-1),
        out_w: AtomicI32::new(-1),
        st_w: AtomicI32::new(-1),
        borrower: AtomicU64::new(0),
    }
}; MAX_BLANKS];

static SHARED: AtomicPtr<Slots> = AtomicPtr::new(std::ptr::null_mut());

fn slots() -> &'static Slots {
    let p = SHARED.load(Ordering::Acquire);
    if p.is_null() {
        &PRIVATE
    } else {
        // SAFETY: a shared page made by `share`, never unmapped, zeroed by the kernel (all-zero
        // bytes are valid atomics, EMPTY slots) and large enough for `Slots`.
        unsafe { &*p }
    }
}

/// With the warm state, before the stock holds a blank and before any waiting copy is forked:
/// the slots move to a page the host's forks share. Without it, waiting copies borrow through
/// the watcher only.
pub fn share() {
    const { assert!(std::mem::size_of::<Slots>() <= 4096) };
    if !SHARED.load(Ordering::Acquire).is_null() || sys::page_size() < 4096 {
        return;
    }
    if let Ok(p) = sys::map_shared_page(sys::page_size()) {
        // A pod replaces it with a private zero page rather than copy it.
        pod::zero_in_pods(p as usize);
        SHARED.store(p.cast(), Ordering::Release);
    }
}

/// A blank taken by the host for one pod.
#[derive(Clone, Copy)]
pub struct Taken {
    pub index: usize,
    pub mnt: RawFd,
    pub ipc: RawFd,
    pub uts: RawFd,
    pub out_w: RawFd,
    pub st_w: RawFd,
}

/// Take a ready blank: one compare-and-swap, no lock, no syscall.
pub fn take() -> Option<Taken> {
    slots().iter().enumerate().find_map(|(index, s)| {
        s.state
            .compare_exchange(READY, TAKEN, Ordering::AcqRel, Ordering::Relaxed)
            .ok()
            .map(|_| Taken {
                index,
                mnt: s.mnt.load(Ordering::Relaxed),
                ipc: s.ipc.load(Ordering::Relaxed),
                uts: s.uts.load(Ordering::Relaxed),
                out_w: s.out_w.load(Ordering::Relaxed),
                st_w: s.st_w.load(Ordering::Relaxed),
            })
    })
}

/// Building blanks failed: no use waiting for one.
static FAILED: AtomicBool = AtomicBool::new(false);

/// Whether building blanks failed (none will come).
pub fn failed() -> bool {
    FAILED.load(Ordering::Acquire)
}

/// `INVITE_WARM=wait`: wait up to a second for a blank.
pub fn wait_take() -> Option<Taken> {
    let deadline = sys::monotonic_ns() + 1_000_000_000;
    loop {
        if let Some(t) = take() {
            return Some(t);
        }
        if sys::monotonic_ns() > deadline || FAILED.load(Ordering::Acquire) {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}

/// The fork failed: the blank was not used.
pub fn put_back(t: Taken) {
    slots()[t.index].state.store(READY, Ordering::Release);
}

/// In a waiting copy whose turn has come: take a ready blank from the host's stock itself and
/// copy its descriptors out of the host (`host_pidfd`), leaving `key` for the watcher to adopt
/// the pod by. `None`: no ready blank, the slots are not shared, or the descriptors could not
/// be copied (the blank goes back): ask the watcher.
pub fn borrow(host_pidfd: RawFd, key: u64) -> Option<Taken> {
    if SHARED.load(Ordering::Acquire).is_null() || key == 0 {
        return None;
    }
    let t = take()?;
    let copy = |fd: RawFd| {
        sys::pidfd_getfd(host_pidfd, fd)
            .ok()
            .map(|fd| ownfd::own(std::os::fd::IntoRawFd::into_raw_fd(fd)))
    };
    let mut fds = [-1; 5];
    for (out, fd) in fds.iter_mut().zip([t.mnt, t.ipc, t.uts, t.out_w, t.st_w]) {
        match copy(fd) {
            Some(c) => *out = c,
            None => {
                fds.into_iter().filter(|fd| *fd >= 0).for_each(ownfd::close);
                put_back(t);
                return None;
            }
        }
    }
    // From here the watcher adopts it (`borrowed`); a copy killed between the take and this
    // store leaves the blank taken, as a host killed between its take and its fork would.
    slots()[t.index].borrower.store(key, Ordering::Release);
    let [mnt, ipc, uts, out_w, st_w] = fds;
    Some(Taken {
        index: t.index,
        mnt,
        ipc,
        uts,
        out_w,
        st_w,
    })
}

/// In the watcher: the blanks waiting copies took themselves, with their keys, not adopted yet.
pub fn borrowed() -> impl Iterator<Item = (usize, u64)> {
    slots().iter().enumerate().filter_map(|(i, s)| {
        let key = s.borrower.load(Ordering::Acquire);
        (key != 0 && s.state.load(Ordering::Acquire) == TAKEN).then_some((i, key))
    })
}

/// The watcher supervises blank `i`'s borrower from now on.
pub fn adopted(i: usize) {
    slots()[i].borrower.store(0, Ordering::Release);
}

/// The watcher's side of one blank.
pub struct Blank {
    /// The mount, IPC and UTS namespaces.
    ns: [RawFd; 3],
    scratch_fd: RawFd,
    /// The directories of the upper layers as the builder left them, relative to `scratch_fd`.
    dirs: Vec<std::ffi::CString>,
    /// The pods' output and status pipes, kept for the blank's life: every pod's test writes
    /// them, the watcher drains them after it ends (the host's write ends stay open, so they
    /// never reach end of file; the watcher learns the end from the pidfd).
    pub out_r: RawFd,
    pub st_r: RawFd,
    out_w: RawFd,
    st_w: RawFd,
    /// Upper layers named through `scratch_fd`.
    pub scratch: Scratch,
    baseline: Baseline,
    uses: u32,
}

/// A blank as the builder left it: the scratch's free inodes and blocks (every entry a pod
/// creates or copies up, every byte it writes, every xattr takes some) and the stamps of the
/// directories already in the upper layers (a chmod of a mount's root is copied up in place; an
/// entry added or removed without a new inode, a hard link, changes its directory's times).
/// What a pod cannot change there — the /dev nodes it gets are nobody's — needs no look.
#[derive(PartialEq)]
struct Baseline {
    free: (u64, u64),
    dirs: Vec<[u64; 5]>,
}

impl Baseline {
    fn of(scratch_fd: RawFd, dirs: &[std::ffi::CString]) -> Option<Baseline> {
        Some(Baseline {
            free: sys::free_inodes_and_blocks(scratch_fd).ok()?,
            dirs: dirs
                .iter()
                .map(|d| sys::dir_stamp_at(scratch_fd, d))
                .collect::<Result<_, _>>()
                .ok()?,
        })
    }
}

/// Every directory below the upper layers `uppers` (relative to the scratch at `base`). On the
/// runtime's thread, while a sampled call may hold the program's allocator's lock: no
/// `std::fs::read_dir` (its `opendir` would call that allocator, `sys::heap`).
fn upper_dirs(base: &str, uppers: Vec<String>) -> Vec<std::ffi::CString> {
    let mut out = Vec::new();
    let mut todo = uppers;
    while let Some(rel) = todo.pop() {
        let path = format!("{base}/{rel}");
        for (name, kind) in sys::dir_entries_of(path.as_ref()).unwrap_or_default() {
            let child = format!("{rel}/{}", name.to_string_lossy());
            let is_dir = match kind {
                libc::DT_DIR => true,
                libc::DT_UNKNOWN => {
                    std::fs::symlink_metadata(format!("{base}/{child}")).is_ok_and(|m| m.is_dir())
                }
                _ => false,
            };
            if is_dir {
                todo.push(child);
            }
        }
        out.extend(std::ffi::CString::new(rel).ok());
    }
    out
}

impl Blank {
    /// Did the pod leave the scratch as the builder made it, and no message queue?
    pub fn pristine(&self) -> bool {
        let no_queues = sys::dir_is_empty_at(self.scratch_fd, pod::MQUEUE_DIR).unwrap_or(false);
        no_queues && Baseline::of(self.scratch_fd, &self.dirs).as_ref() == Some(&self.baseline)
    }
}

/// The helper's reply socket for the blanks being built.
struct Builder {
    sock: super::helper::Reply,
}

/// The watcher's stock.
pub struct Stock {
    blanks: Vec<Option<Blank>>,
    target: usize,
    builder: Option<Builder>,
    /// Building failed (the message says why): warm pods stay off, cold pods report the error.
    failed: bool,
    /// Builders in a row that delivered nothing (killed, say): after `MAX_BARREN` warm pods
    /// stay off.
    barren: u32,
}

const MAX_BARREN: u32 = 3;

impl Stock {
    pub fn new(target: usize) -> Stock {
        Stock {
            blanks: (0..MAX_BLANKS).map(|_| None).collect(),
            target: target.min(MAX_BLANKS),
            builder: None,
            failed: false,
            barren: 0,
        }
    }

    /// Start a builder for the empty slots, unless one is at work.
    pub fn maintain(&mut self) {
        if self.builder.is_some() || self.failed {
            return;
        }
        let empty: Vec<usize> = (0..self.target)
            .filter(|&i| slots()[i].state.load(Ordering::Acquire) == EMPTY)
            .collect();
        if empty.is_empty() {
            return;
        }
        // The helper builds them: nothing is forked here, the host does not pause.
        match super::helper::request_blanks(empty.len()) {
            Some(sock) => {
                for i in empty {
                    slots()[i].state.store(BUILDING, Ordering::Release);
                }
                self.builder = Some(Builder { sock });
            }
            // The helper is gone: no blanks any more, pods are cold.
            None => self.fail(),
        }
    }

    fn fail(&mut self) {
        self.failed = true;
        FAILED.store(true, Ordering::Release);
    }

    pub fn builder_fd(&self) -> Option<RawFd> {
        self.builder.as_ref().map(|b| b.sock.raw())
    }

    /// Take in what the helper sent; at its end, its worker's CPU time (which counts against the
    /// budget) and the cost of a copy-on-write fault, for admission.
    pub fn on_builder(&mut self, rt: &Runtime, plan: &Plan) {
        let Some(b) = self.builder.take() else {
            return;
        };
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match sys::recv_fds(b.sock.as_fd(), &mut buf) {
                Ok((n, fds)) if n > 0 && buf[0] == b'B' && fds.len() == 4 => {
                    let text = String::from_utf8_lossy(&buf[1..n]).into_owned();
                    // The runtime's own from here (`ownfd`): no pod forked meanwhile keeps them.
                    let own: Vec<Own> = fds.into_iter().map(Own::new).collect();
                    if let Ok([mnt, ipc, uts, scratch]) = <[Own; 4]>::try_from(own) {
                        self.fill(plan, [mnt, ipc, uts], scratch, &text);
                    }
                }
                Ok((n, _unused_fds_closed_here)) if n > 0 => match buf[0] {
                    b'E' => self.fail(),
                    b'D' => charge(rt, &String::from_utf8_lossy(&buf[1..n])),
                    _ => {}
                },
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.builder = Some(b);
                    return;
                }
                _ => break, // end of file: the builder is done
            }
        }
        // End of file, or an error: the builder is done (its socket closes with `b`).
        drop(b);
        let mut unfilled = 0;
        for s in slots() {
            unfilled += s
                .state
                .compare_exchange(BUILDING, EMPTY, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok() as u32;
        }
        self.barren = if unfilled > 0 { self.barren + 1 } else { 0 };
        if self.barren >= MAX_BARREN {
            self.fail();
        }
    }

    /// Take a new blank in (a descriptor not taken in is closed on the way out); from the stock
    /// on, a freshly forked test reads their numbers from its atomics.
    fn fill(&mut self, plan: &Plan, ns: [Own; 3], scratch_own: Own, text: &str) {
        let slot = (0..MAX_BLANKS).find(|&i| slots()[i].state.load(Ordering::Acquire) == BUILDING);
        let (Some(i), Some(mut scratch)) = (slot, Scratch::decode(text)) else {
            return;
        };
        let scratch_fd = scratch_own.raw();
        let prefix = format!("{}/", plan.scratch_mountpoint);
        let uppers: Vec<String> = scratch
            .uppers
            .iter()
            .filter_map(|(_, u)| Some(u.strip_prefix(&prefix)?.to_string()))
            .collect();
        let dirs = upper_dirs(&format!("/proc/self/fd/{scratch_fd}"), uppers);
        scratch.rebase(
            &plan.scratch_mountpoint,
            &format!("/proc/self/fd/{scratch_fd}"),
        );
        let baseline = Baseline::of(scratch_fd, &dirs);
        let pipes = (sys::pipe(), sys::pipe());
        let (Some(baseline), (Ok((out_r, out_w)), Ok((st_r, st_w)))) = (baseline, pipes) else {
            return;
        };
        let [out_r, out_w, st_r, st_w] =
            [out_r, out_w, st_r, st_w].map(|fd| Own::new(fd).into_raw());
        let _ = sys::set_nonblock(out_r);
        let _ = sys::set_nonblock(st_r);
        self.blanks[i] = Some(Blank {
            ns: ns.map(Own::into_raw),
            scratch_fd: scratch_own.into_raw(),
            dirs,
            out_r,
            st_r,
            out_w,
            st_w,
            scratch,
            baseline,
            uses: 0,
        });
        self.arm(i);
    }

    /// Publish the blank for the host's next pod.
    fn arm(&mut self, i: usize) {
        let Some(b) = self.blanks[i].as_ref() else {
            return;
        };
        let s = &slots()[i];
        s.mnt.store(b.ns[0], Ordering::Relaxed);
        s.ipc.store(b.ns[1], Ordering::Relaxed);
        s.uts.store(b.ns[2], Ordering::Relaxed);
        s.out_w.store(b.out_w, Ordering::Relaxed);
        s.st_w.store(b.st_w, Ordering::Relaxed);
        s.borrower.store(0, Ordering::Relaxed);
        s.state.store(READY, Ordering::Release);
    }

    /// Whether the host took a blank for a pod that `watched` does not know of (yet). A blank
    /// a waiting copy took itself is not counted: the watcher adopts it when its pod rings, or
    /// when it looks at the waiters (`lend`).
    pub fn taken_unwatched(&self, watched: impl Fn(usize) -> bool) -> bool {
        (0..self.blanks.len()).any(|i| {
            self.blanks[i].is_some()
                && slots()[i].state.load(Ordering::Acquire) == TAKEN
                && slots()[i].borrower.load(Ordering::Acquire) == 0
                && !watched(i)
        })
    }

    pub fn blank(&self, i: usize) -> Option<&Blank> {
        self.blanks.get(i)?.as_ref()
    }

    /// The pod in blank `i` is over: back in the stock if it left the blank pristine.
    pub fn release(&mut self, i: usize, recycle: bool) {
        let Some(b) = self.blanks.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        b.uses += 1;
        if recycle && b.uses < MAX_USES {
            self.arm(i);
        } else {
            self.drop_blank(i);
        }
    }

    fn drop_blank(&mut self, i: usize) {
        if let Some(b) = self.blanks[i].take() {
            [b.out_r, b.st_r, b.out_w, b.st_w]
                .into_iter()
                .for_each(ownfd::close);
            b.ns.into_iter().for_each(ownfd::close);
            ownfd::close(b.scratch_fd);
        }
        slots()[i].state.store(EMPTY, Ordering::Release);
    }
}

/// `D<cpu_ns> <cow_ns>`: what building cost (the pods' CPU), and what a copy-on-write fault costs.
fn charge(rt: &Runtime, text: &str) {
    let mut it = text.split(' ').map(|v| v.parse::<u64>().unwrap_or(0));
    let (cpu, cow) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    rt.ledger().charge_pod_cpu(cpu);
    rt.ledger().cow_fault_measured(cow);
}

#[cfg(test)]
#[path = "stock_tests.rs"]
mod tests;
