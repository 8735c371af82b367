//! Admission: whether a sampled call may start a pod now. Turned-away calls are counted per
//! reason for the summary, never journaled one by one.
//!
//! - (No site tests start inside a pod: `sample` turns them away before admission.)
//! - At most `INVITE_MAX_CONCURRENT` pods run at once; admission reserves the slot.
//! - CPU budget: host pauses plus pods' CPU time (finished pods measured by rusage, running pods
//!   estimated by the mean so far) stay at or below `INVITE_MAX_OVERHEAD` percent of the process's
//!   own CPU time.

use crate::runtime::{Runtime, SiteStats};
use crate::sys;
use std::sync::atomic::Ordering;

pub fn admit(rt: &Runtime, stats: &SiteStats) -> bool {
    let Some(cfg) = rt.config.as_ref() else {
        return false;
    };
    let shared = rt.shared();
    let running = shared.running.fetch_add(1, Ordering::AcqRel) + 1;
    if running > cfg.max_concurrent {
        shared.running.fetch_sub(1, Ordering::AcqRel);
        stats.skipped_concurrency.fetch_add(1, Ordering::Relaxed);
        return false;
    }
    if let Some(max) = cfg.max_overhead {
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
