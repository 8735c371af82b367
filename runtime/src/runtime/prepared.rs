//! The plan made ahead of the first pod (at start-up, `start::prepare`), and what it is made
//! from: the host's probe and the namespaces pods join, a network namespace made ahead of time
//! by the warm pods' helper where there is one. `Runtime::plan` takes it.

use crate::plan::Plan;
use std::os::fd::RawFd;
use std::sync::{Mutex, OnceLock};

/// Where the pods' empty network namespace comes from when something made it ahead of time (the
/// warm pods' helper, which registers itself at start-up), so no module below it reaches up.
static PREMADE_NETNS: OnceLock<fn() -> Option<RawFd>> = OnceLock::new();

/// At start-up: where the plan gets a network namespace made ahead of time (see `PREMADE_NETNS`).
pub fn set_premade_netns(source: fn() -> Option<RawFd>) {
    let _ = PREMADE_NETNS.set(source);
}

/// The plan made at start-up (`start::prepare`), with the check that it still describes what the
/// process sees; the first `Runtime::plan` takes it.
type PreparedPlan = (Result<Plan, String>, fn() -> bool);
pub(super) static PREPARED_PLAN: Mutex<Option<PreparedPlan>> = Mutex::new(None);

/// At start-up: the plan made ahead of its first use, used if `still_valid()` says then that the
/// process sees the same mounts.
pub fn set_prepared_plan(plan: Result<Plan, String>, still_valid: fn() -> bool) {
    *PREPARED_PLAN.lock().unwrap_or_else(|e| e.into_inner()) = Some((plan, still_valid));
}

/// The check of the prepared plan that the first `Runtime::plan` took (`set_prepared_plan`).
pub(super) static PLAN_STILL_VALID: OnceLock<fn() -> bool> = OnceLock::new();

/// A plan probed again for a process that no longer sees the mounts `stale` was made for, with
/// its namespaces.
pub(super) fn reprobe(stale: &Plan) -> Result<Plan, String> {
    probe_plan().and_then(|p| p.with_namespaces(|| Ok((stale.netns_fd, stale.userns_fd))))
}

/// Probe the host for the pods' isolation (`Plan::probe`, with the pods' system call filter);
/// no namespace yet.
pub fn probe_plan() -> Result<Plan, String> {
    Plan::probe(crate::pod::seccomp_filter, max_pieces())
}

/// `INVITE_MAX_PIECES`, or its default where the configuration is not read (yet, or bad).
fn max_pieces() -> usize {
    match super::settings() {
        Some(Some(c)) => c.max_pieces,
        _ => crate::config::DEFAULT_MAX_PIECES,
    }
}

/// Add the namespaces pods join: the helper's network namespace where it made one.
pub fn with_namespaces(plan: Plan) -> Result<Plan, String> {
    let premade = PREMADE_NETNS.get().and_then(|source| source());
    plan.with_namespaces(|| crate::pod::make_namespaces(premade))
}

/// What the runtime reads of the host once (the kernel's features, the fault injection of the
/// tests): at start-up where pods are warm (`start::prepare`), else with the runtime.
pub fn probe_host() {
    static PROBED: std::sync::Once = std::sync::Once::new();
    PROBED.call_once(|| {
        crate::pod::read_fault_injection();
        crate::pod::probe_kernel();
    });
}
