//! Admission: whether a sampled call may start a pod now. Turned-away calls are counted per
//! reason for the summary, never journaled one by one.
//!
//! - (No site tests start inside a pod: `sample` turns them away before admission.)
//! - At most `INVITE_MAX_CONCURRENT` pods run at once; admission reserves the slot.
//! - The host's cgroup must have room for every running pod's memory and processes and this
//!   one's (`headroom`), else the pod is turned away (`cgroup`).
//! - CPU budget: host pauses plus pods' CPU time (finished pods measured by rusage, running pods
//!   estimated by the mean so far) plus the host's copy-on-write faults stay at or below
//!   `INVITE_MAX_OVERHEAD` percent of the process's own CPU time. While a pod lives, every page
//!   the host writes is copied: that is the host's own CPU time, but caused by testing, so minor
//!   faults taken while pods ran are charged at the measured cost of one copy-on-write fault.

use crate::ledger::Ledger;
use crate::runtime::{Runtime, SiteStats};
use crate::sys;
use std::sync::atomic::Ordering;

/// Why a sampled call starts no pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    Concurrency,
    Cgroup,
    Budget,
}

/// The limits admission applies (from the configuration).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_concurrent: u32,
    /// Percent of the process's own CPU time; `None`: no budget.
    pub max_overhead: Option<f64>,
}

pub fn admit(rt: &Runtime, stats: &SiteStats) -> bool {
    let Some(cfg) = rt.config.as_ref() else {
        return false;
    };
    charge_cow_faults(rt);
    let limits = Limits {
        max_concurrent: cfg.max_concurrent,
        max_overhead: cfg.max_overhead,
    };
    let verdict = decide(
        rt.ledger(),
        limits,
        |running| crate::headroom::no_room(running).is_none(),
        sys::process_cpu_ns,
    );
    let counter = match verdict {
        Ok(()) => &stats.started,
        Err(Skip::Concurrency) => &stats.skipped_concurrency,
        Err(Skip::Cgroup) => &stats.skipped_cgroup,
        Err(Skip::Budget) => &stats.skipped_budget,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    verdict.is_ok()
}

/// Reserve a slot in `ledger` for one more pod, or say why not (nothing reserved then).
/// `room(n)`: whether the host's cgroups have room for `n` pods; `process_cpu_ns`: the
/// process's own CPU time so far (read only when a budget applies).
pub fn decide(
    ledger: &Ledger,
    limits: Limits,
    room: impl FnOnce(u64) -> bool,
    process_cpu_ns: impl FnOnce() -> u64,
) -> Result<(), Skip> {
    let running = ledger
        .reserve(limits.max_concurrent)
        .ok_or(Skip::Concurrency)?;
    let refuse = |why| {
        ledger.release();
        Err(why)
    };
    if !room(running as u64) {
        return refuse(Skip::Cgroup);
    }
    if let Some(max) = limits.max_overhead {
        if max == 0.0 {
            // No budget at all: no pod, however idle the host.
            return refuse(Skip::Budget);
        }
        let spent = ledger.overhead_ns() + ledger.mean_pod_cpu_ns() * running as u64;
        let allowed = process_cpu_ns() as f64 * max / 100.0;
        if spent as f64 > allowed {
            return refuse(Skip::Budget);
        }
    }
    Ok(())
}

/// Charge the host's minor faults since the last admission to the budget when a pod lived
/// within the last `COW_WINDOW_NS` (copies while it shares the host's pages, and the faults
/// that re-own each page after it ends). Faults of the host's own are charged too in that
/// window: the budget errs on the side of testing less.
fn charge_cow_faults(rt: &Runtime) {
    let ledger = rt.ledger();
    let now = sys::monotonic_ns();
    let faults = sys::minor_faults();
    let finished = ledger.pods_finished();
    let prev_faults = rt.last_minor_faults.swap(faults, Ordering::Relaxed);
    let prev_finished = rt.last_pods_finished.swap(finished, Ordering::Relaxed);
    if ledger.running() > 0 || finished != prev_finished {
        rt.last_pod_seen_ns.store(now, Ordering::Relaxed);
    }
    let recent = now.saturating_sub(rt.last_pod_seen_ns.load(Ordering::Relaxed)) < COW_WINDOW_NS;
    if prev_faults > 0 && recent {
        let per_fault = ledger.cow_fault_ns().unwrap_or(DEFAULT_COW_FAULT_NS);
        ledger.charge(faults.saturating_sub(prev_faults) * per_fault);
    }
}

const COW_WINDOW_NS: u64 = 1_000_000_000;

/// Until the first supervisor has measured it: a copy-on-write fault costs about this much.
const DEFAULT_COW_FAULT_NS: u64 = 1_000;

#[cfg(test)]
mod tests {
    use super::*;

    const CAP_2: Limits = Limits {
        max_concurrent: 2,
        max_overhead: None,
    };

    fn no_cpu() -> u64 {
        panic!("the process's CPU time is read only under a budget")
    }

    #[test]
    fn the_concurrency_cap_turns_the_third_pod_away() {
        let ledger = Ledger::new();
        assert_eq!(decide(&ledger, CAP_2, |_| true, no_cpu), Ok(()));
        assert_eq!(decide(&ledger, CAP_2, |_| true, no_cpu), Ok(()));
        assert_eq!(
            decide(&ledger, CAP_2, |_| true, no_cpu),
            Err(Skip::Concurrency)
        );
        assert_eq!(ledger.running(), 2);
        ledger.release();
        assert_eq!(decide(&ledger, CAP_2, |_| true, no_cpu), Ok(()));
    }

    #[test]
    fn no_room_in_the_cgroup_reserves_nothing_and_asks_for_all_pods() {
        let ledger = Ledger::new();
        ledger.reserve_any();
        let mut asked = 0;
        let verdict = decide(
            &ledger,
            CAP_2,
            |n| {
                asked = n;
                false
            },
            no_cpu,
        );
        assert_eq!(verdict, Err(Skip::Cgroup));
        assert_eq!(asked, 2, "room for the running pod and this one");
        assert_eq!(ledger.running(), 1);
    }

    #[test]
    fn the_budget_counts_spent_time_and_running_pods_at_their_mean() {
        let budget = |pct| Limits {
            max_concurrent: 10,
            max_overhead: Some(pct),
        };
        let ledger = Ledger::new();
        assert_eq!(
            decide(&ledger, budget(0.0), |_| true, no_cpu),
            Err(Skip::Budget),
            "a budget of 0 starts nothing"
        );
        ledger.pod_ended(1_000); // spent 1000, mean 1000
                                 // 10% of 20 µs = 2000 ns allowed; spent 1000 + one running (this one) at 1000.
        assert_eq!(decide(&ledger, budget(10.0), |_| true, || 20_000), Ok(()));
        // Now 2 running at 1000 each + 1000 spent = 3000 > 2000.
        assert_eq!(
            decide(&ledger, budget(10.0), |_| true, || 20_000),
            Err(Skip::Budget)
        );
        assert_eq!(ledger.running(), 1, "the refused pod left no reservation");
    }

    #[test]
    fn a_copy_on_write_fault_has_a_measurable_cost() {
        let ns = crate::sys::measure_cow_fault_ns().expect("measured");
        assert!((1..1_000_000).contains(&ns), "{ns} ns per fault");
        eprintln!("cow fault: {ns} ns");
    }
}
