//! The ledger: the one owner of the counters that admission reads and the pods' supervisors
//! update (pods running and waiting, the host's cost, finished pods' CPU and wall time, lost
//! records).
//!
//! It lives on a page shared (MAP_SHARED) between the host and its supervisors, so it is a plain
//! `#[repr(C)]` block of atomics; every change goes through a verb here:
//!
//! - `reserve` / `release`: a pod's slot among `INVITE_MAX_CONCURRENT`, from admission (or the
//!   fork of an explicit `ckpt()`) to the record of its end;
//! - `queue`: the pods waiting for a slot (`queue`);
//! - `charge`: what testing costs the host (its pauses, its copy-on-write faults), in nanoseconds;
//! - `pod_ended`: a finished pod's CPU and wall time (the pods' own CPU bound, and the estimates
//!   of a running pod's CPU and of the exit drain);
//! - `record_lost`: a record the journal could not take;
//! - `host_ended`: when the host's end began (its exit drain, or its death as one of its pods'
//!   processes saw it), from which its pods' grace runs.
//!
//! A ledger in ordinary memory (`Ledger::new`) behaves the same: unit tests use one.

use crate::queue::{Claim, Queue, Ticket};
use crate::sys;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

#[repr(C)]
#[derive(Default)]
pub struct Ledger {
    /// Pods started and not yet finished (slots reserved by admission included).
    running: AtomicU32,
    /// What testing cost the host: its pauses plus its copy-on-write faults, in nanoseconds.
    overhead_ns: AtomicU64,
    /// The host's pauses for never-run tests, which the budget does not hold them to.
    exempt_ns: AtomicU64,
    /// Finished pods and their total CPU and wall time.
    pods_finished: AtomicU64,
    pod_cpu_ns: AtomicU64,
    pod_wall_ns: AtomicU64,
    /// The cost of one copy-on-write fault, measured once by the first supervisor (0: not yet).
    cow_fault_ns: AtomicU64,
    /// Records that could not be written to the journal (the summary's `lost`).
    lost: AtomicU64,
    /// Waiting repeats whose place a never-run test took.
    displaced: AtomicU64,
    /// Set by a pod's first process (a fork of the host) that found the host no longer sees the
    /// files it saw at start, or no longer root (`moved`).
    moved: AtomicBool,
    /// When the host's end began (monotonic ns; 0: it has not): see `host_ended`.
    host_end_ns: AtomicU64,
    /// Until when the host's budget stays spent (monotonic ns): see `shut_budget`.
    budget_shut_until_ns: AtomicU64,
    /// Pods waiting for a slot.
    queue: Queue,
}

impl Ledger {
    pub const fn new() -> Ledger {
        Ledger {
            running: AtomicU32::new(0),
            overhead_ns: AtomicU64::new(0),
            exempt_ns: AtomicU64::new(0),
            pods_finished: AtomicU64::new(0),
            pod_cpu_ns: AtomicU64::new(0),
            pod_wall_ns: AtomicU64::new(0),
            cow_fault_ns: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            displaced: AtomicU64::new(0),
            moved: AtomicBool::new(false),
            host_end_ns: AtomicU64::new(0),
            budget_shut_until_ns: AtomicU64::new(0),
            queue: Queue::new(),
        }
    }

    /// Reserve a pod's slot if fewer than `max` pods run: `Some(pods running, this one
    /// included)`, or `None` (nothing reserved).
    pub fn reserve(&self, max: u32) -> Option<u32> {
        let running = self.running.fetch_add(1, Ordering::AcqRel) + 1;
        if running > max {
            // Not a freed slot: nobody is rung, unless a racing reservation's try made this
            // one fail while a slot was free (a waiter may have missed it).
            let now = self.running.fetch_sub(1, Ordering::AcqRel) - 1;
            if now < max && self.queue.waiting() > 0 {
                self.queue.ring_first(alive);
            }
            return None;
        }
        Some(running)
    }

    /// Reserve a slot whatever the cap (a branch of a live checkpoint, which counts on the
    /// checkpoint's own page).
    pub fn reserve_any(&self) {
        self.running.fetch_add(1, Ordering::AcqRel);
    }

    /// From a fork of the host: the host has moved to another mount namespace or root, or
    /// dropped root, since start-up (what it had then is what warm pods and the plan made at
    /// load were made for). Its later calls look for themselves (`moved`).
    pub fn note_moved(&self) {
        self.moved.store(true, Ordering::Relaxed);
    }

    /// Whether a fork of the host found it moved (`note_moved`): until then the host takes its
    /// start-up view as its own without a system call on its pause; every pod's first process
    /// checks it (`warm::view_unchanged`) before it relies on it.
    pub fn moved(&self) -> bool {
        self.moved.load(Ordering::Relaxed)
    }

    /// Give back a slot: the pod did not start, or its end is recorded. The first waiter, if
    /// any, is woken to claim it.
    pub fn release(&self) {
        self.running.fetch_sub(1, Ordering::AcqRel);
        if self.queue.waiting() > 0 {
            self.queue.ring_first(alive);
        }
    }

    /// In a waiting call's supervisor (`me`; 0: the host said it): sleep until a running slot
    /// among `max` is this waiter's (`Claim::Run`) or a never-run test took its place
    /// (`Claim::Displaced`), or `gone()` says the host is gone (`Claim::Displaced`, its place
    /// given up). Woken by the bell of its slot (`Queue`), never polling faster than
    /// `queue::BACKSTOP_NS`. `seen_alive`: whether this process can tell other waiters' liveness
    /// by their pids (not from a PID namespace of its own: there they all count as alive, and
    /// the host frees a dead waiter's place when it reaps it).
    pub fn wait_turn(
        &self,
        t: Ticket,
        me: u32,
        max: u32,
        gone: impl Fn() -> bool,
        seen_alive: bool,
    ) -> Claim {
        let queue = &self.queue;
        let live = |pid: u32| !seen_alive || alive(pid);
        // Whether the last sleep ended by a ring: then the host is not asked about (it rang, or
        // a pod of its did), only at the first look and after a sleep that ran out.
        let mut rung = false;
        loop {
            // Read before the claim: a slot freed after the claim failed changes it, and the
            // sleep below then returns at once.
            let seen = queue.bell(t);
            let claim = queue.claim(
                t,
                me,
                || self.reserve(max).is_some(),
                || self.release(),
                live,
            );
            if claim == Claim::Wait && !rung && gone() && queue.leave(t) {
                queue.ring_first(live);
                return Claim::Displaced;
            }
            match claim {
                Claim::Wait => {
                    queue.sleep(t, seen);
                    rung = queue.bell(t) != seen;
                }
                // The bell this waiter heard may have been for a slot it did not take (it
                // took another, or left): the next waiter hears it.
                Claim::Run if self.running() < max => {
                    queue.ring_first(live);
                    return claim;
                }
                Claim::Displaced => {
                    queue.ring_first(live);
                    return claim;
                }
                Claim::Run => return claim,
            }
        }
    }

    /// Charge `ns` of what testing cost the host to the budget.
    pub fn charge(&self, ns: u64) {
        self.overhead_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// The host's budget of `pct` percent of its elapsed time (from `started_ns`) refused a
    /// repeat. What it has spent (`overhead_ns`) never shrinks, so the budget cannot reopen
    /// before the elapsed time has caught up with it: until then `budget_shut` says so without
    /// a look at the clock's share, the faults or the machine (a host on every core samples
    /// thousands of calls a second that the budget turns away).
    pub fn shut_budget(&self, started_ns: u64, pct: f64) {
        if pct > 0.0 {
            let earned_at = self.overhead_ns() as f64 * 100.0 / pct;
            let until = started_ns.saturating_add(earned_at as u64);
            self.budget_shut_until_ns
                .fetch_max(until, Ordering::Relaxed);
        }
    }

    /// Whether the host's budget is still spent at `now` (monotonic ns): see `shut_budget`.
    pub fn budget_shut(&self, now: u64) -> bool {
        now < self.budget_shut_until_ns.load(Ordering::Relaxed)
    }

    /// The host paused `ns` for a never-run test's snapshot: a cost, outside the budget.
    pub fn charge_exempt(&self, ns: u64) {
        self.exempt_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Everything testing cost the host, the never-run tests' pauses included.
    pub fn host_cost_ns(&self) -> u64 {
        self.overhead_ns() + self.exempt_ns.load(Ordering::Relaxed)
    }

    /// CPU time spent for the pods outside them (the warm pods' helper building their blanks):
    /// counted with the pods' own CPU.
    pub fn charge_pod_cpu(&self, ns: u64) {
        self.pod_cpu_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// A pod ended having used `cpu_ns` of CPU over `wall_ns` from its start to its record.
    pub fn pod_ended(&self, cpu_ns: u64, wall_ns: u64) {
        self.pod_cpu_ns.fetch_add(cpu_ns, Ordering::Relaxed);
        self.pod_wall_ns.fetch_add(wall_ns, Ordering::Relaxed);
        self.pods_finished.fetch_add(1, Ordering::Relaxed);
    }

    /// The host's end began at `now` (its exit drain started, or one of its pods' processes
    /// found it gone): the instant its pods' grace runs from, the first one noted (a pod that
    /// sees a host end after its drain counts from the drain's start).
    pub fn host_ended(&self, now: u64) -> u64 {
        match self
            .host_end_ns
            .compare_exchange(0, now.max(1), Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => now.max(1),
            Err(first) => first,
        }
    }

    /// A never-run test took a waiting repeat's place.
    pub fn count_displaced(&self) {
        self.displaced.fetch_add(1, Ordering::Relaxed);
    }

    pub fn displaced(&self) -> u64 {
        self.displaced.load(Ordering::Relaxed)
    }

    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// A record the journal could not take; true for the first one (said once on stderr).
    pub fn record_lost(&self) -> bool {
        self.lost.fetch_add(1, Ordering::Relaxed) == 0
    }

    pub fn running(&self) -> u32 {
        self.running.load(Ordering::Acquire)
    }

    pub fn overhead_ns(&self) -> u64 {
        self.overhead_ns.load(Ordering::Relaxed)
    }

    pub fn pods_finished(&self) -> u64 {
        self.pods_finished.load(Ordering::Relaxed)
    }

    /// The finished pods' CPU time in all.
    pub fn pod_cpu_ns(&self) -> u64 {
        self.pod_cpu_ns.load(Ordering::Relaxed)
    }

    /// The mean CPU time of a finished pod (0 before the first).
    pub fn mean_pod_cpu_ns(&self) -> u64 {
        self.pod_cpu_ns()
            .checked_div(self.pods_finished())
            .unwrap_or(0)
    }

    /// The mean time from a pod's start to its record (0 before the first).
    pub fn mean_pod_wall_ns(&self) -> u64 {
        self.pod_wall_ns
            .load(Ordering::Relaxed)
            .checked_div(self.pods_finished())
            .unwrap_or(0)
    }

    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// The measured cost of one copy-on-write fault, if measured yet.
    pub fn cow_fault_ns(&self) -> Option<u64> {
        Some(self.cow_fault_ns.load(Ordering::Relaxed)).filter(|ns| *ns > 0)
    }

    /// A copy-on-write fault's cost measured elsewhere (the warm helper), kept if none is yet.
    pub fn cow_fault_measured(&self, ns: u64) {
        if ns > 0 {
            let _ = self
                .cow_fault_ns
                .compare_exchange(0, ns, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// The first supervisor measures what a copy-on-write fault costs, for the budget (before
    /// it enters the pod's PID namespace, where it could not fork again once the pod has ended).
    pub fn measure_cow_fault_once(&self) {
        if self.cow_fault_ns().is_none() {
            if let Some(ns) = sys::measure_cow_fault_ns() {
                self.cow_fault_ns.store(ns, Ordering::Relaxed);
            }
        }
    }
}

/// Whether a waiter's supervisor still lives.
fn alive(pid: u32) -> bool {
    sys::alive(pid as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_reserved_up_to_the_cap_and_given_back() {
        let l = Ledger::new();
        assert_eq!(l.reserve(2), Some(1));
        assert_eq!(l.reserve(2), Some(2));
        assert_eq!(l.reserve(2), None, "a third pod over a cap of two");
        assert_eq!(
            l.running(),
            2,
            "a refused reservation leaves nothing reserved"
        );
        l.release();
        assert_eq!(l.reserve(2), Some(2));
        l.reserve_any();
        assert_eq!(l.running(), 3, "a live checkpoint's branch is not capped");
    }

    #[test]
    fn an_ended_pod_is_averaged_and_not_charged_to_the_host() {
        let l = Ledger::new();
        assert_eq!(l.mean_pod_cpu_ns(), 0);
        l.charge(500);
        l.pod_ended(1_000, 10_000);
        l.pod_ended(3_000, 30_000);
        assert_eq!(l.overhead_ns(), 500, "the pods' CPU is bounded apart");
        assert_eq!(l.pods_finished(), 2);
        assert_eq!(l.pod_cpu_ns(), 4_000);
        assert_eq!(l.mean_pod_cpu_ns(), 2_000);
        assert_eq!(l.mean_pod_wall_ns(), 20_000);
    }

    /// The system call thread `tid` of this process is blocked in, once it blocks.
    fn blocked_in(tid: i32) -> i64 {
        loop {
            let path = format!("/proc/self/task/{tid}/syscall");
            let text = std::fs::read_to_string(path).unwrap();
            // "running", or the syscall number then its arguments.
            if let Some(nr) = text.split(' ').next().and_then(|n| n.parse::<i64>().ok()) {
                return nr;
            }
            std::thread::yield_now();
        }
    }

    /// A waiter on another thread (as a supervisor in another process would): `(tid, verdict)`.
    fn waiter(l: &'static Ledger, t: Ticket, max: u32) -> (i32, std::thread::JoinHandle<Claim>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let h = std::thread::spawn(move || {
            tx.send(sys::gettid()).unwrap();
            l.wait_turn(t, sys::gettid() as u32, max, || false, true)
        });
        (rx.recv().unwrap(), h)
    }

    #[test]
    fn a_waiter_sleeps_on_its_bell_and_a_freed_slot_wakes_it() {
        let l: &'static Ledger = Box::leak(Box::new(Ledger::new()));
        assert_eq!(l.reserve(1), Some(1));
        let t = l.queue().enqueue(l.queue().key(true, 1), 4).unwrap();
        let (tid, h) = waiter(l, t, 1);
        assert_eq!(
            blocked_in(tid),
            libc::SYS_futex,
            "the waiter sleeps on a futex, it does not poll"
        );
        l.release();
        assert_eq!(h.join().unwrap(), Claim::Run);
        assert_eq!((l.running(), l.queue().waiting()), (1, 0));
    }

    #[test]
    fn two_slots_freed_at_once_wake_two_waiters_in_turn() {
        let l: &'static Ledger = Box::leak(Box::new(Ledger::new()));
        assert_eq!(l.reserve(2), Some(1));
        assert_eq!(l.reserve(2), Some(2));
        let q = l.queue();
        let first = q.enqueue(q.key(true, 1), 4).unwrap();
        let second = q.enqueue(q.key(true, 2), 4).unwrap();
        let (tid2, h2) = waiter(l, second, 2);
        let (tid1, h1) = waiter(l, first, 2);
        assert_eq!(blocked_in(tid1), libc::SYS_futex);
        assert_eq!(blocked_in(tid2), libc::SYS_futex);
        // Both rings go to the first waiter; it takes one slot and passes the other on.
        l.release();
        l.release();
        assert_eq!(h1.join().unwrap(), Claim::Run);
        assert_eq!(h2.join().unwrap(), Claim::Run);
        assert_eq!((l.running(), q.waiting()), (2, 0));
    }

    #[test]
    fn a_waiter_whose_host_is_gone_gives_up_its_place() {
        let l = Ledger::new();
        assert_eq!(l.reserve(1), Some(1));
        let t = l.queue().enqueue(l.queue().key(true, 1), 4).unwrap();
        assert_eq!(l.wait_turn(t, 1, 1, || true, true), Claim::Displaced);
        assert_eq!(l.queue().waiting(), 0);
    }

    #[test]
    fn the_hosts_end_counts_from_the_first_to_note_it() {
        let l = Ledger::new();
        assert_eq!(l.host_ended(500), 500);
        assert_eq!(l.host_ended(900), 500);
    }

    #[test]
    fn the_ledger_fits_the_page_it_shares() {
        assert!(std::mem::size_of::<Ledger>() <= 4096);
    }

    #[test]
    fn only_the_first_lost_record_is_said() {
        let l = Ledger::new();
        assert!(l.record_lost());
        assert!(!l.record_lost());
        assert_eq!(l.lost(), 2);
    }
}
