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
//! - `record_lost`: a record the journal could not take.
//!
//! A ledger in ordinary memory (`Ledger::new`) behaves the same: unit tests use one.

use crate::queue::Queue;
use crate::sys;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

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
            queue: Queue::new(),
        }
    }

    /// Reserve a pod's slot if fewer than `max` pods run: `Some(pods running, this one
    /// included)`, or `None` (nothing reserved).
    pub fn reserve(&self, max: u32) -> Option<u32> {
        let running = self.running.fetch_add(1, Ordering::AcqRel) + 1;
        if running > max {
            self.release();
            return None;
        }
        Some(running)
    }

    /// Reserve a slot whatever the cap (an explicit `ckpt()`, which admission does not gate).
    pub fn reserve_any(&self) {
        self.running.fetch_add(1, Ordering::AcqRel);
    }

    /// Give back a slot: the pod did not start, or its end is recorded.
    pub fn release(&self) {
        self.running.fetch_sub(1, Ordering::AcqRel);
    }

    /// Charge `ns` of what testing cost the host to the budget.
    pub fn charge(&self, ns: u64) {
        self.overhead_ns.fetch_add(ns, Ordering::Relaxed);
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
        assert_eq!(l.running(), 3, "an explicit ckpt() is not capped");
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
