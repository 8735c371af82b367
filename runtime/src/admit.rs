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

use crate::runtime::{Runtime, SiteStats};
use crate::sys;
use std::sync::atomic::Ordering;

pub fn admit(rt: &Runtime, stats: &SiteStats) -> bool {
    let Some(cfg) = rt.config.as_ref() else {
        return false;
    };
    let shared = rt.shared();
    charge_cow_faults(rt);
    let running = shared.running.fetch_add(1, Ordering::AcqRel) + 1;
    if running > cfg.max_concurrent {
        shared.running.fetch_sub(1, Ordering::AcqRel);
        stats.skipped_concurrency.fetch_add(1, Ordering::Relaxed);
        return false;
    }
    if crate::headroom::no_room(running as u64).is_some() {
        shared.running.fetch_sub(1, Ordering::AcqRel);
        stats.skipped_cgroup.fetch_add(1, Ordering::Relaxed);
        return false;
    }
    if let Some(max) = cfg.max_overhead {
        if max == 0.0 {
            // No budget at all: no pod, however idle the host.
            shared.running.fetch_sub(1, Ordering::AcqRel);
            stats.skipped_budget.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let finished = shared.pods_finished.load(Ordering::Relaxed);
        let estimate = shared
            .pod_cpu_ns
            .load(Ordering::Relaxed)
            .checked_div(finished)
            .unwrap_or(0);
        let spent = shared.overhead_ns.load(Ordering::Relaxed) + estimate * running as u64;
        let allowed = sys::process_cpu_ns() as f64 * max / 100.0;
        if spent as f64 > allowed {
            shared.running.fetch_sub(1, Ordering::AcqRel);
            stats.skipped_budget.fetch_add(1, Ordering::Relaxed);
            return false;
        }
    }
    stats.started.fetch_add(1, Ordering::Relaxed);
    true
}

/// Charge the host's minor faults since the last admission to the budget when a pod lived
/// within the last `COW_WINDOW_NS` (copies while it shares the host's pages, and the faults
/// that re-own each page after it ends). Faults of the host's own are charged too in that
/// window: the budget errs on the side of testing less.
fn charge_cow_faults(rt: &Runtime) {
    let shared = rt.shared();
    let now = sys::monotonic_ns();
    let faults = sys::minor_faults();
    let finished = shared.pods_finished.load(Ordering::Relaxed);
    let prev_faults = rt.last_minor_faults.swap(faults, Ordering::Relaxed);
    let prev_finished = rt.last_pods_finished.swap(finished, Ordering::Relaxed);
    if shared.running.load(Ordering::Relaxed) > 0 || finished != prev_finished {
        rt.last_pod_seen_ns.store(now, Ordering::Relaxed);
    }
    let recent = now.saturating_sub(rt.last_pod_seen_ns.load(Ordering::Relaxed)) < COW_WINDOW_NS;
    if prev_faults > 0 && recent {
        let per_fault = match shared.cow_fault_ns.load(Ordering::Relaxed) {
            0 => DEFAULT_COW_FAULT_NS,
            ns => ns,
        };
        shared.overhead_ns.fetch_add(
            faults.saturating_sub(prev_faults) * per_fault,
            Ordering::Relaxed,
        );
    }
}

const COW_WINDOW_NS: u64 = 1_000_000_000;

/// Until the first supervisor has measured it: a copy-on-write fault costs about this much.
const DEFAULT_COW_FAULT_NS: u64 = 1_000;

#[cfg(test)]
mod tests {
    #[test]
    fn a_copy_on_write_fault_has_a_measurable_cost() {
        let ns = crate::sys::measure_cow_fault_ns().expect("measured");
        assert!((1..1_000_000).contains(&ns), "{ns} ns per fault");
        eprintln!("cow fault: {ns} ns");
    }
}
