//! What runs when the library is loaded, before `main`, while the process is small and has one
//! thread. With `INVITE=off` only the switch is read, and nothing else happens. Otherwise: the
//! exit handler is registered (the summary), the working directory is remembered, the
//! configuration is read (so that a site's first call need not allocate to read it), the
//! warm pods' helper is started (blanks and the pods' network namespace then come from it,
//! never from a fork of the host), and the runtime's one thread (`reap`), which waits on its
//! doorbell until the first pod: no `ckpt()` pays a thread's start.

use crate::{runtime, warm};

extern "C" fn at_load() {
    if !runtime::switched_on() {
        return;
    }
    // What the constructor does (the working directory, the configuration, the helper's fork)
    // allocates: instrumented calls it makes are not tested, nor are the helper's.
    let _inside = crate::inside::Inside::enter();
    runtime::arm_exit();
    runtime::capture_start_cwd();
    let on = matches!(runtime::settings(), Some(Some(c)) if c.enabled);
    if on {
        runtime::check_early();
    }
    runtime::set_premade_netns(warm::helper_netns);
    warm::start_helper();
    if warm::helper_started() {
        prepare();
    }
    if on {
        build_ahead();
        // Last: the helper and the namespaces' makers were forked while the process had one
        // thread.
        crate::reap::start_early();
    }
}

/// What a sampled call would otherwise build on its way to the fork: the runtime itself, the
/// host's cgroup levels and CPUs (admission), and where pods are warm the isolation plan made
/// at start-up (`prepare`), the pods' cgroup and the warm pods' state. A sampled call may run
/// inside the program's allocator with its lock held (jemalloc calls instrumented functions
/// under its mutexes): from the call to the fork, and in the host until the call returns, the
/// runtime allocates nothing and takes no lock the program could hold, so all of it is made
/// here, and a call sampled before (from an earlier constructor, or the allocator's own
/// start-up) is not tested. Without the helper (not root, or warm pods off) the plan is still
/// probed by the first pod, as before: probed here, a program that drops root in `main` would
/// get root's plan (tests/tests/hostile.rs).
fn build_ahead() {
    if cfg!(test) {
        return; // the unit tests never build the process-wide runtime (`runtime::get`)
    }
    let rt = runtime::get();
    let _ = crate::headroom::own();
    let _ = crate::cpus::machine();
    if rt.isolation() == crate::config::Isolation::Pod && warm::helper_started() {
        if let (Ok(plan), Some(c)) = (rt.plan(), rt.config.as_ref()) {
            crate::podgroup::ensure(c.max_concurrent, !crate::pod::pid_max_per_ns());
            warm::make_state(rt, plan);
        }
    }
}

/// Where pods will be warm (the helper runs): what the first `ckpt()` would otherwise do while
/// the host waits, and which no one can see done early: the host's cgroup levels and their
/// limits, the kernel probes, the isolation plan (the mount table, the system call filter, the
/// pods' network namespace, the ledger's page). The namespace is asked of the helper first, which
/// makes it while the rest is done. The journal is still created by the first call that needs it.
fn prepare() {
    warm::ask_netns_early();
    warm::guard_loading_thread();
    crate::headroom::read_early();
    runtime::probe_host();
    runtime::premake_ledger();
    let plan = runtime::probe_plan().and_then(runtime::with_namespaces);
    runtime::set_prepared_plan(plan, warm::helper_same_view);
}

#[used]
#[link_section = ".init_array"]
static AT_LOAD: extern "C" fn() = at_load;
