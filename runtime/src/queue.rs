//! The wait queue: sampled calls past `INVITE_MAX_CONCURRENT` running pods. Such a call still
//! takes its snapshot (the fork, a frozen copy of the host at the call) and its supervisor waits
//! here for a slot instead of the sample being dropped.
//!
//! The queue lives in the ledger, on the page the host shares with its supervisors: a fixed
//! array of slots, each holding a waiter's key (0: free) and its supervisor's pid.
//!
//! - A key orders the waiters: a test that has not run yet in this process before a repeat
//!   (coverage first), then by arrival. The host writes it when it admits the call
//!   (`enqueue`); the waiting supervisor takes a running slot only when no live waiter is
//!   ahead of it (`claim`), and frees its queue slot in the same step.
//! - When the queue is full, a never-run test may take the slot of the newest waiting repeat
//!   (`displace`): the host swaps the key, and the repeat's supervisor, seeing a key that is no
//!   longer its own, ends without a pod.
//! - A waiter whose supervisor died (the OOM killer) is skipped, so it holds nobody up.
//! - As root with warm pods, a waiting copy is forked as a warm test is (`warm::lend`: PID 1 of
//!   a PID namespace of its own) and borrows a blank from the host's stock at its turn; else
//!   (rootless, or before the stock is made) it builds its pod cold. Its pod's deadline runs from
//!   its slot. Under a machine load above ~60 some pods used to be journaled as timeouts: not the
//!   queue's doing (pods without the queue had them too), but their supervisors', which, starved
//!   of CPU, judged the deadline before reading the pod's word, and counted time the machine kept
//!   the pod waiting for a CPU (`deadline`).
//! - No polling: each slot has a bell, a futex word on the same shared page. A waiting
//!   supervisor reads its bell, tries to claim, and sleeps on the bell while it still reads the
//!   same (`Ledger::wait_turn`). Whoever frees a running slot (`Ledger::release`) rings the bell
//!   of the first live waiter, the one a claim would let through; a waiter that got a slot, was
//!   displaced or gave up rings the next one, so a slot freed while the first waiter was busy
//!   is not lost. A sleep lasts at most `BACKSTOP_NS`, after which the waiter looks again: for a
//!   waiter ahead that died without a word, and for its host's death.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Slots in the queue: the most `INVITE_MAX_QUEUE` may allow.
pub const SLOTS: usize = 64;

const REPEAT: u64 = 1 << 62;
const SITE_BITS: u32 = 20;

/// A waiter's key: its priority (never-run first), arrival, and site (for the host's count of a
/// displaced repeat).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key(u64);

impl Key {
    #[cfg(test)]
    pub fn repeat(self) -> bool {
        self.0 & REPEAT != 0
    }

    /// The key as stored, to be passed to another process (`from_raw`).
    pub fn raw(self) -> u64 {
        self.0
    }

    pub fn from_raw(raw: u64) -> Key {
        Key(raw)
    }

    /// The site's index in the registry (1-based; 0 when it did not fit).
    pub fn site(self) -> u32 {
        (self.0 & ((1 << SITE_BITS) - 1)) as u32
    }
}

/// A queued call: its slot and key, handed from admission to the supervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    pub slot: usize,
    pub key: Key,
}

/// What a waiting supervisor learns when it tries to take a running slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// A running slot is reserved for it: build the pod.
    Run,
    /// Someone is ahead, or every running slot is taken: wait.
    Wait,
    /// A never-run test took its place: end without a pod.
    Displaced,
}

/// Longest sleep of a waiter between two looks at the queue when nobody rings.
pub const BACKSTOP_NS: u64 = 50_000_000;

#[repr(C)]
pub struct Queue {
    keys: [AtomicU64; SLOTS],
    pids: [AtomicU32; SLOTS],
    /// Each slot's bell: a futex word its waiter sleeps on, bumped to wake it.
    bells: [AtomicU32; SLOTS],
    arrivals: AtomicU64,
}

impl Default for Queue {
    fn default() -> Queue {
        Queue::new()
    }
}

impl Queue {
    pub const fn new() -> Queue {
        Queue {
            keys: [const { AtomicU64::new(0) }; SLOTS],
            pids: [const { AtomicU32::new(0) }; SLOTS],
            bells: [const { AtomicU32::new(0) }; SLOTS],
            arrivals: AtomicU64::new(0),
        }
    }

    /// A new key for a call at site `site` (1-based index), after every key made so far.
    pub fn key(&self, repeat: bool, site: u32) -> Key {
        let arrival = self.arrivals.fetch_add(1, Ordering::Relaxed) + 1;
        let site = if site < 1 << SITE_BITS {
            site as u64
        } else {
            0
        };
        Key((if repeat { REPEAT } else { 0 }) | (arrival << SITE_BITS) | site)
    }

    /// Pods waiting now.
    pub fn waiting(&self) -> u32 {
        self.keys
            .iter()
            .filter(|k| k.load(Ordering::Acquire) != 0)
            .count() as u32
    }

    /// Whether a live waiter is ahead of `key` (all of them for `None`).
    pub fn ahead_of(&self, key: Option<Key>, alive: impl Fn(u32) -> bool) -> bool {
        (0..SLOTS).any(|i| {
            let k = self.keys[i].load(Ordering::Acquire);
            k != 0 && key.is_none_or(|key| k < key.0) && self.live(i, &alive)
        })
    }

    /// Take a free slot among the first `max` for `key`.
    pub fn enqueue(&self, key: Key, max: u32) -> Option<Ticket> {
        if self.waiting() >= max {
            return None;
        }
        (0..SLOTS.min(max as usize)).find_map(|slot| {
            self.keys[slot]
                .compare_exchange(0, key.0, Ordering::AcqRel, Ordering::Relaxed)
                .ok()?;
            // (Until its supervisor says its pid, a waiter counts as alive.)
            self.pids[slot].store(0, Ordering::Relaxed);
            Some(Ticket { slot, key })
        })
    }

    /// Give the newest waiting repeat's slot to `key` (a never-run test's): the ticket, and
    /// the key that was there.
    pub fn displace(&self, key: Key) -> Option<(Ticket, Key)> {
        loop {
            let (slot, old) = (0..SLOTS)
                .map(|i| (i, self.keys[i].load(Ordering::Acquire)))
                .filter(|(_, k)| k & REPEAT != 0)
                .max_by_key(|(_, k)| *k)?;
            if self.keys[slot]
                .compare_exchange(old, key.0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                self.pids[slot].store(0, Ordering::Relaxed);
                return Some((Ticket { slot, key }, Key(old)));
            }
        }
    }

    /// In the waiting supervisor (`pid`): take a running slot through `reserve` when none is
    /// ahead, freeing the queue slot; `release` gives the running slot back if the queue slot
    /// was taken meanwhile. `alive(pid)`: whether another waiter's supervisor still lives.
    pub fn claim(
        &self,
        t: Ticket,
        pid: u32,
        reserve: impl FnOnce() -> bool,
        release: impl FnOnce(),
        alive: impl Fn(u32) -> bool,
    ) -> Claim {
        if self.keys[t.slot].load(Ordering::Acquire) != t.key.0 {
            return Claim::Displaced;
        }
        if pid != 0 {
            self.pids[t.slot].store(pid, Ordering::Relaxed);
        }
        if self.ahead_of(Some(t.key), alive) || !reserve() {
            return Claim::Wait;
        }
        if self.leave(t) {
            Claim::Run
        } else {
            release();
            Claim::Displaced
        }
    }

    /// The host says which process waits with `t` (its supervisor, just forked).
    pub fn set_pid(&self, t: Ticket, pid: u32) {
        if self.keys[t.slot].load(Ordering::Acquire) == t.key.0 {
            self.pids[t.slot].store(pid, Ordering::Relaxed);
        }
    }

    /// Free `t`'s slot if it still holds `t`'s key (a call that will not wait after all).
    pub fn leave(&self, t: Ticket) -> bool {
        self.keys[t.slot]
            .compare_exchange(t.key.0, 0, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// The bell of `t`'s slot as it reads now: read before a claim, slept on after it.
    pub fn bell(&self, t: Ticket) -> u32 {
        self.bells[t.slot].load(Ordering::Acquire)
    }

    /// Sleep on `t`'s bell while it still reads `seen`, at most `BACKSTOP_NS`.
    pub fn sleep(&self, t: Ticket, seen: u32) {
        crate::sys::futex_wait(&self.bells[t.slot], seen, BACKSTOP_NS);
    }

    /// Ring the bell of the first live waiter (none: nothing to do). Its slot may also hold a
    /// displaced waiter still asleep: both wake, and the displaced one ends.
    pub fn ring_first(&self, alive: impl Fn(u32) -> bool) {
        // Waiters in key order, each one's liveness asked only until a live one is found (one
        // `kill(pid, 0)` each: asking all of a full queue's on every freed slot was ~40 system
        // calls per pod).
        let mut after = 0;
        while let Some((i, k)) = (0..SLOTS)
            .map(|i| (i, self.keys[i].load(Ordering::Acquire)))
            .filter(|(_, k)| *k > after)
            .min_by_key(|(_, k)| *k)
        {
            if self.live(i, &alive) {
                self.bells[i].fetch_add(1, Ordering::AcqRel);
                crate::sys::futex_wake(&self.bells[i], i32::MAX);
                return;
            }
            after = k;
        }
    }

    /// Whether slot `i`'s waiter lives: unknown (its supervisor has not said its pid yet) counts
    /// as alive.
    fn live(&self, i: usize, alive: &impl Fn(u32) -> bool) -> bool {
        let pid = self.pids[i].load(Ordering::Relaxed);
        pid == 0 || alive(pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_alive(_: u32) -> bool {
        true
    }

    #[test]
    fn never_run_tests_go_ahead_of_repeats_then_by_arrival() {
        let q = Queue::new();
        let r1 = q.enqueue(q.key(true, 1), 8).unwrap();
        let n2 = q.enqueue(q.key(false, 2), 8).unwrap();
        let n3 = q.enqueue(q.key(false, 3), 8).unwrap();
        assert_eq!(q.waiting(), 3);
        let claim = |t| q.claim(t, 1, || true, || panic!("released"), all_alive);
        assert_eq!(claim(r1), Claim::Wait, "two never-run tests are ahead");
        assert_eq!(claim(n3), Claim::Wait, "n2 came first");
        assert_eq!(claim(n2), Claim::Run);
        assert_eq!(claim(n3), Claim::Run);
        assert_eq!(claim(r1), Claim::Run);
        assert_eq!(q.waiting(), 0);
    }

    #[test]
    fn a_full_queue_takes_no_more_and_a_never_run_test_displaces_the_newest_repeat() {
        let q = Queue::new();
        let old = q.enqueue(q.key(true, 7), 2).unwrap();
        let new = q.enqueue(q.key(true, 8), 2).unwrap();
        assert_eq!(q.enqueue(q.key(true, 9), 2), None, "full at 2");
        let (t, gone) = q.displace(q.key(false, 5)).unwrap();
        assert_eq!((t.slot, gone.site(), gone.repeat()), (new.slot, 8, true));
        assert_eq!(t.key.site(), 5);
        let claim = |t| q.claim(t, 1, || true, || (), all_alive);
        assert_eq!(claim(new), Claim::Displaced);
        assert_eq!(claim(old), Claim::Wait, "the never-run test goes first");
        assert_eq!(claim(t), Claim::Run);
        assert_eq!(claim(old), Claim::Run);
        assert!(q.displace(q.key(false, 6)).is_none(), "no repeat waits");
    }

    #[test]
    fn no_running_slot_means_wait_and_a_dead_waiter_holds_nobody_up() {
        let q = Queue::new();
        let first = q.enqueue(q.key(false, 1), 4).unwrap();
        let second = q.enqueue(q.key(false, 2), 4).unwrap();
        assert_eq!(q.claim(first, 100, || false, || (), all_alive), Claim::Wait);
        assert_eq!(q.claim(second, 200, || true, || (), all_alive), Claim::Wait);
        let dead_100 = |pid| pid != 100;
        assert_eq!(q.claim(second, 200, || true, || (), dead_100), Claim::Run);
        assert!(q.leave(first));
        assert!(!q.leave(first), "left once");
    }

    #[test]
    fn a_freed_slot_asks_the_liveness_of_the_first_waiters_only() {
        let q = Queue::new();
        let tickets: Vec<Ticket> = (0..32)
            .map(|i| {
                let t = q.enqueue(q.key(true, 1), 32).unwrap();
                q.set_pid(t, 100 + i);
                t
            })
            .collect();
        let asked = std::cell::Cell::new(0);
        // The first two waiters are dead: the third is rung, after three questions.
        let alive = |pid: u32| {
            asked.set(asked.get() + 1);
            pid >= 102
        };
        let bells: Vec<u32> = tickets.iter().map(|t| q.bell(*t)).collect();
        q.ring_first(alive);
        assert_eq!(asked.get(), 3, "not the liveness of all 32 waiters");
        let rung: Vec<usize> = (0..32)
            .filter(|i| q.bell(tickets[*i]) != bells[*i])
            .collect();
        assert_eq!(rung, vec![2], "the first live waiter, and only it, is rung");
    }

    #[test]
    fn a_slot_taken_between_the_check_and_the_claim_gives_the_running_slot_back() {
        let q = Queue::new();
        let t = q.enqueue(q.key(true, 1), 4).unwrap();
        let mut released = false;
        let verdict = q.claim(
            t,
            1,
            || {
                q.displace(q.key(false, 2)).unwrap();
                true
            },
            || released = true,
            all_alive,
        );
        assert_eq!(verdict, Claim::Displaced);
        assert!(released);
    }
}
