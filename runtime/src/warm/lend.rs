//! Warm pods for calls that waited for a slot: the waiting copy is forked as a warm test is
//! (PID 1 of a PID namespace of its own, a child of the host), waits there, and when its turn
//! comes borrows a blank from the host's stock, then enters it as any warm test does. Its pod
//! then costs what a warm pod costs (a recycled blank, no mounts, one fork), not a cold pod's
//! second fork and mounts.
//!
//! ```text
//! host thread ──unshare(PID) + fork──▶ waiter: sleeps on its queue bell (`Ledger::wait_turn`)
//!   │ register(pid, ticket)              │ its turn: takes a ready blank from the shared
//!   ▼                                    ▼ slots, its descriptors with pidfd_getfd, leaves its key
//! watcher: finds the key in the slot (`stock::borrowed`), adopts the waiter as the blank's
//!          warm pod (`watch::register`); the waiter enters the blank meanwhile
//! ```
//!
//! No blank ready (or the slots are not shared, or the descriptors cannot be copied): the
//! waiter asks the watcher instead, "L slot key" and a reply socket over the lend socket
//! (inherited from the host); the watcher answers "B" and the blank's descriptors when one is
//! ready, and supervises the waiter from then on.
//!
//! - The watcher also looks at each waiter's pidfd until it borrows (every `LOOK_NS`, not in
//!   each of its polls): a waiter that ends without a pod (displaced, or killed) is reaped
//!   there, and its place in the queue freed. A waiter
//!   sees other waiters' pids only from its own PID namespace, where they do not exist: it
//!   counts them all alive, and relies on the host to free the place of a dead one.
//! - No blank within `ASK_NS` (a pod's set-up allowance: on a busy machine the builder is slow
//!   too), or the builder failed: the watcher answers "N" and the
//!   waiter gives its slot back and ends; its sample is journaled as not started.
//! - A waiter whose turn came at once may ask before the host, back from its fork, has
//!   registered it: the ask is kept until the waiter is picked up (told "N" after `ASK_NS`).
//! - The waiter's thread in the host is guarded as for any warm pod (`outlive`): a thread that
//!   ends waits for its pods at most `INVITE_DRAIN_MS`.

use super::stock::{self, Taken};
use crate::ownfd;
use crate::queue::{Key, Ticket, SLOTS as QUEUE_SLOTS};
use crate::runtime::Runtime;
use crate::sys;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

/// How long a borrowing waiter may wait for a blank before it is told there is none.
const ASK_NS: u64 = crate::deadline::MAX_STRETCH_NS;

/// Waiters forked by the host and not yet picked up by the watcher (displaced ones may still be
/// waiting to end beside the one that took their place: twice the queue's slots).
struct Reg {
    pid: AtomicI32,
    tid: AtomicI32,
    id: AtomicU32,
    slot: AtomicU32,
    key: AtomicU64,
}

static REGS: [Reg; 2 * QUEUE_SLOTS] = [const {
    Reg {
        pid: AtomicI32::new(0),
        tid: AtomicI32::new(0),
        id: AtomicU32::new(0),
        slot: AtomicU32::new(0),
        key: AtomicU64::new(0),
    }
}; 2 * QUEUE_SLOTS];

/// In the host, right after forking waiter `pid` for `t` on this thread (no lock, no
/// allocation). False if the table is full: the caller reaps it the plain way.
pub fn register(pid: libc::pid_t, t: Ticket, id: u32) -> bool {
    super::outlive::guard_this_thread();
    for r in &REGS {
        if r.pid
            .compare_exchange(0, -1, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            r.tid.store(sys::gettid(), Ordering::Relaxed);
            r.id.store(id, Ordering::Relaxed);
            r.slot.store(t.slot as u32, Ordering::Relaxed);
            r.key.store(t.key.raw(), Ordering::Relaxed);
            r.pid.store(pid, Ordering::Release);
            return true;
        }
    }
    false
}

struct Waiter {
    pid: libc::pid_t,
    tid: libc::pid_t,
    pidfd: RawFd,
    id: u32,
    ticket: Ticket,
}

struct Ask {
    waiter: usize,
    reply: OwnedFd,
    since: u64,
}

/// An ask whose waiter the host has not registered yet: a waiter whose turn came at once asks
/// before the host, back from its fork, registers it. Kept until the waiter is picked up (or
/// `ASK_NS` passes: a waiter the host could not register is told there is no blank).
struct Early {
    slot: usize,
    key: u64,
    reply: OwnedFd,
    since: u64,
}

/// How often the watcher looks at the waiters' pidfds for one that ended without a pod.
const LOOK_NS: u64 = 100_000_000;

/// The watcher's side: waiters being watched, and their asks for a blank.
#[derive(Default)]
pub struct Lender {
    waiters: Vec<Waiter>,
    asks: Vec<Ask>,
    early: Vec<Early>,
    /// Where the lend socket and the first waiter's pidfd are in the poll set (the waiters'
    /// only at a look: `usize::MAX` between looks).
    polled: (usize, usize),
    /// When the waiters' pidfds are next polled.
    next_look: u64,
}

impl Lender {
    /// Pick up new waiters, answer what can be answered, and add the lend socket to `fds`, and
    /// the waiters' pidfds every `LOOK_NS`. Returns the poll timeout this side needs (the next
    /// look, while waiters wait), in milliseconds.
    ///
    /// The waiters' pidfds are not in every poll: a full queue's 32 made each of the watcher's
    /// rounds (several per pod) that much longer, the largest part of what the queue cost a
    /// pod. A waiter that ends without a pod (displaced: its place is another's already; or
    /// killed) is reaped, and its place freed, within `LOOK_NS`; one that borrows is the
    /// watcher's pod from its ask on.
    pub fn prepare(&mut self, lend: BorrowedFd, fds: &mut Vec<RawFd>) -> Option<i32> {
        self.take_in();
        self.serve();
        self.polled = (fds.len(), usize::MAX);
        fds.push(lend.as_raw_fd());
        if !self.early.is_empty() {
            // The host registers the waiter within microseconds of its fork.
            return Some(1);
        }
        if self.waiters.is_empty() {
            return None;
        }
        let now = sys::monotonic_ns();
        if now >= self.next_look {
            self.next_look = now + LOOK_NS;
            self.polled.1 = fds.len();
            fds.extend(self.waiters.iter().map(|w| w.pidfd));
        }
        Some((self.next_look.saturating_sub(now) / 1_000_000).max(1) as i32)
    }

    fn pick_up(&mut self) {
        for r in &REGS {
            let pid = r.pid.load(Ordering::Acquire);
            if pid <= 0 {
                continue;
            }
            let ticket = Ticket {
                slot: r.slot.load(Ordering::Relaxed) as usize,
                key: Key::from_raw(r.key.load(Ordering::Relaxed)),
            };
            let (id, tid) = (r.id.load(Ordering::Relaxed), r.tid.load(Ordering::Relaxed));
            r.pid.store(0, Ordering::Release);
            match sys::pidfd_open(pid) {
                Ok(fd) => self.waiters.push(Waiter {
                    pid,
                    tid,
                    pidfd: ownfd::own(fd.into_raw_fd()),
                    id,
                    ticket,
                }),
                // Already reaped by the host's own wait().
                Err(_) => forget(ticket),
            }
        }
    }

    /// After the poll: read the asks, reap the waiters that ended without a pod, answer.
    pub fn handle(&mut self, lend: BorrowedFd, rev: &[i16]) {
        let ready = |i: usize| rev.get(i).is_some_and(|r| *r != 0);
        if ready(self.polled.0) {
            self.read_asks(lend);
            self.match_asks();
        }
        let first = self.polled.1;
        let ended: Vec<libc::pid_t> = (0..self.waiters.len())
            .filter(|i| ready(first.saturating_add(*i)))
            .map(|i| self.waiters[i].pid)
            .collect();
        // A waiter that took its blank itself and then ended is the blank's pod: adopted first
        // (which moves waiters in the list: the ended are known by their pids).
        self.adopt();
        for pid in ended {
            let Some(i) = self.waiters.iter().position(|w| w.pid == pid) else {
                continue;
            };
            // A waiter that asked has just a running slot, not a place: it ended on its own.
            if self.asks.iter().any(|a| a.waiter == i) {
                continue;
            }
            let w = self.waiters.swap_remove(i);
            self.moved(self.waiters.len(), i);
            let _ = sys::wait4(w.pid, libc::WNOHANG);
            ownfd::close(w.pidfd);
            forget(w.ticket);
        }
        self.serve();
    }

    /// The asks waiting in the lend socket: "L", the queue slot and key, and a reply socket.
    fn read_asks(&mut self, lend: BorrowedFd) {
        loop {
            let mut buf = [0u8; 16];
            let Ok((n, mut fds)) = sys::recv_fds(lend, &mut buf) else {
                return;
            };
            if n == 0 {
                return;
            }
            let (Some(reply), true) = (fds.pop(), n == 13 && buf[0] == b'L') else {
                continue;
            };
            let slot = u32::from_le_bytes(buf[1..5].try_into().unwrap_or_default()) as usize;
            let key = u64::from_le_bytes(buf[5..13].try_into().unwrap_or_default());
            let since = sys::monotonic_ns();
            self.early.push(Early {
                slot,
                key,
                reply,
                since,
            });
        }
    }

    /// Match the asks to their waiters (picked up now, or since they asked); an ask whose
    /// waiter never shows up within `ASK_NS` is told there is no blank.
    fn match_asks(&mut self) {
        let now = sys::monotonic_ns();
        let mut i = 0;
        while i < self.early.len() {
            let e = &self.early[i];
            let found = self
                .waiters
                .iter()
                .position(|w| w.ticket.slot == e.slot && w.ticket.key.raw() == e.key);
            match found {
                Some(waiter) => {
                    let e = self.early.swap_remove(i);
                    self.asks.push(Ask {
                        waiter,
                        reply: e.reply,
                        since: e.since,
                    });
                }
                None if now >= e.since + ASK_NS => {
                    let e = self.early.swap_remove(i);
                    let _ = sys::send_fds(e.reply.as_fd(), b"N", &[]);
                }
                None => i += 1,
            }
        }
    }

    /// Lend a ready blank to each waiter that asked, or say there is none after `ASK_NS`.
    fn serve(&mut self) {
        let now = sys::monotonic_ns();
        let mut i = 0;
        while i < self.asks.len() {
            let ask = &self.asks[i];
            let taken = stock::take();
            if taken.is_none() && now < ask.since + ASK_NS && !stock::failed() {
                i += 1;
                continue;
            }
            let ask = self.asks.swap_remove(i);
            let w = &self.waiters[ask.waiter];
            let told = match taken {
                Some(t) if lend(ask.reply.as_fd(), &t).is_ok() => {
                    // The watcher's pods reap it from now on.
                    super::watch::register(w.pid, t.index, w.id, now);
                    super::outlive::started_by(t.index, w.tid);
                    None
                }
                Some(t) => {
                    stock::put_back(t);
                    Some(false)
                }
                // It gives its slot back itself when told.
                None => Some(sys::send_fds(ask.reply.as_fd(), b"N", &[]).is_ok()),
            };
            if let Some(told) = told {
                if !told {
                    // It died with its running slot: given back for it.
                    crate::runtime::get().ledger().release();
                }
                crate::reap::reap_when_over(w.pid);
            }
            // Lent (the watcher's pods have it now) or told: no longer a waiter.
            let last = self.waiters.len() - 1;
            let w = self.waiters.swap_remove(ask.waiter);
            ownfd::close(w.pidfd);
            self.moved(last, ask.waiter);
        }
    }

    /// Pick up the waiters the host forked, and adopt those that took a blank themselves.
    pub fn take_in(&mut self) {
        self.pick_up();
        self.adopt();
        self.match_asks();
    }

    /// The waiters that took a blank themselves (`stock::borrow`) are the blanks' pods now:
    /// the watcher's pods supervise and reap them. Picked up before the watcher's own pods
    /// (`Watcher::prepare`), so the blank is not long taken with nobody watching.
    fn adopt(&mut self) {
        for (index, key) in stock::borrowed() {
            let Some(i) = self.waiters.iter().position(|w| w.ticket.key.raw() == key) else {
                continue;
            };
            stock::adopted(index);
            let last = self.waiters.len() - 1;
            let w = self.waiters.swap_remove(i);
            self.asks.retain(|a| a.waiter != i);
            self.moved(last, i);
            super::watch::register(w.pid, index, w.id, sys::monotonic_ns());
            super::outlive::started_by(index, w.tid);
            ownfd::close(w.pidfd);
        }
    }

    /// Waiter `from` is now at index `to` (a `swap_remove`): asks follow it.
    fn moved(&mut self, from: usize, to: usize) {
        for a in &mut self.asks {
            if a.waiter == from {
                a.waiter = to;
            }
        }
    }
}

/// Send blank `t`'s descriptors to a waiter.
fn lend(reply: BorrowedFd, t: &Taken) -> std::io::Result<()> {
    sys::send_raw_fds(reply, b"B", &[t.mnt, t.ipc, t.uts, t.out_w, t.st_w])
}

/// A waiter is gone without a pod: its place goes (if still its own) to the next waiter.
fn forget(t: Ticket) {
    let ledger = crate::runtime::get().ledger();
    if ledger.queue().leave(t) {
        ledger.queue().ring_first(|pid| sys::alive(pid as i32));
    }
}

/// In the waiter, its turn come (a running slot is its own): borrow a blank. `None`: the host
/// is gone or has none; the slot is given back.
pub fn borrow(rt: &Runtime, lend: BorrowedFd, host_pidfd: RawFd, t: Ticket) -> Option<Taken> {
    let got = stock::borrow(host_pidfd, t.key.raw()).or_else(|| ask(lend, host_pidfd, t));
    if got.is_none() {
        rt.ledger().release();
    }
    got
}

fn ask(lend: BorrowedFd, host_pidfd: RawFd, t: Ticket) -> Option<Taken> {
    let (ours, theirs) = sys::seqpacket_pair().ok()?;
    let mut msg = [0u8; 13];
    msg[0] = b'L';
    msg[1..5].copy_from_slice(&(t.slot as u32).to_le_bytes());
    msg[5..13].copy_from_slice(&t.key.raw().to_le_bytes());
    sys::send_fds(lend, &msg, &[theirs.as_fd()]).ok()?;
    drop(theirs);
    let mut rev = [0i16; 2];
    loop {
        let n = sys::poll_in(&[ours.as_raw_fd(), host_pidfd], -1, &mut rev).unwrap_or(0);
        if rev[1] != 0 {
            return None; // the host died
        }
        if n > 0 && rev[0] != 0 {
            break;
        }
    }
    let mut buf = [0u8; 4];
    let (n, fds) = sys::recv_fds(ours.as_fd(), &mut buf).ok()?;
    let [mnt, ipc, uts, out_w, st_w] = <[OwnedFd; 5]>::try_from(fds).ok()?;
    (n == 1 && buf[0] == b'B').then(|| {
        let own = |fd: OwnedFd| ownfd::own(fd.into_raw_fd());
        Taken {
            index: 0,
            mnt: own(mnt),
            ipc: own(ipc),
            uts: own(uts),
            out_w: own(out_w),
            st_w: own(st_w),
        }
    })
}

#[cfg(test)]
#[path = "lend_tests.rs"]
mod tests;
