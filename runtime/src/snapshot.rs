//! The snapshot: the fork of the host, the only pause the host sees.
//!
//! The host forks once (`sys::fork`: the runtime's own atfork handlers, not the program's) and
//! goes on. The child becomes the pod's supervisor, builds the pod below itself and never returns,
//! except in the pod's test process, which returns from `ckpt()` with its id.

pub(crate) use crate::kind::fail;
pub use crate::kind::{last_error, Ckpt, CkptError, PodKind};
use crate::record::{self, PodInfo};
use crate::runtime::{self, Runtime};
use crate::site::Site;
use crate::supervise;
use crate::sys;

/// Checkpoint the calling process into an isolated pod.
///
/// Returns `Ckpt::Original` in the original, `Ckpt::Pod(k)` in the k-th pod. The pod is
/// supervised like an in vivo test (deadline `INVITE_TIMEOUT_MS`, journal record with phase
/// `manual`); it ends when its code exits: status 0 is `pass`, another status `fail`.
///
/// Held to `INVITE_MAX_CONCURRENT`: with every slot taken, an error with `EAGAIN` that names
/// the setting (call it again when a pod has ended).
///
/// ```no_run
/// let mut cache = vec![1, 2, 3];
/// if let Ok(invite::Ckpt::Pod(_)) = invite::ckpt() {
///     // Only the pod's copy changes; the host's `cache` is untouched.
///     cache.clear();
///     std::process::exit(if cache.is_empty() { 0 } else { 1 });
/// }
/// assert_eq!(cache.len(), 3);
/// ```
#[track_caller]
pub fn ckpt() -> Result<Ckpt, CkptError> {
    let loc = std::panic::Location::caller();
    let r = start(PodKind::Manual {
        file: loc.file(),
        line: loc.line(),
        function: "ckpt",
    });
    if let Ok(Ckpt::Pod(_)) = r {
        crate::pod::begin_test(true);
    }
    r
}

/// The call-site entry: start a pod for a site already admitted by `Site::sample`.
pub fn enter_site(site: &'static Site, owner: Option<&'static str>) -> bool {
    let _inside = crate::inside::Inside::enter();
    match start(PodKind::Site { site, owner }) {
        Ok(Ckpt::Pod(_)) => true,
        Ok(Ckpt::Original) => false,
        Err(e) => {
            record::journal_start_failure(site, owner, &e.message);
            false
        }
    }
}

pub fn start(kind: PodKind) -> Result<Ckpt, CkptError> {
    // The runtime's own work (forked children, the supervisor and the pod's setup, inherit it).
    let _inside = crate::inside::Inside::enter();
    let r = snapshot(kind);
    if !matches!(r, Ok(Ckpt::Pod(_))) {
        // The runtime's thread, if it is wanted before any pod: started once the host's pause
        // is over (a pod's fork has started it already).
        crate::reap::start_wanted();
    }
    r
}

fn snapshot(kind: PodKind) -> Result<Ckpt, CkptError> {
    let rt = runtime::get();
    // The runtime's thread's duties; in the host's own worker, the runtime becomes its own.
    rt.adopt_fork();
    let site = matches!(kind, PodKind::Site { .. });
    // Admitted to wait for a slot (`admit`): the snapshot is taken now, the pod built later.
    let ticket = crate::admit::take_pass(site).ticket;
    // Give back what admission gave (a site's, until a direct ckpt() is admitted below).
    let give_back = |rt: &Runtime, ticket: Option<crate::queue::Ticket>| match ticket {
        Some(t) => {
            rt.ledger().queue().leave(t);
        }
        None => rt.ledger().release(),
    };
    let release = |rt: &Runtime| {
        if site {
            give_back(rt, ticket);
        }
    };
    let Some(cfg) = rt.config.as_ref() else {
        release(rt);
        return Err(fail(
            libc::ECANCELED,
            "in vivo testing is off: bad configuration (see stderr)".into(),
        ));
    };
    if !cfg.enabled {
        release(rt);
        return Err(fail(
            libc::ECANCELED,
            "in vivo testing is off (INVITE=off)".into(),
        ));
    }
    if rt.journal_failed() {
        release(rt);
        return Err(fail(
            libc::ECANCELED,
            "in vivo testing is off: the journal cannot be created (see stderr)".into(),
        ));
    }
    if cfg.max_overhead == Some(0.0) {
        release(rt);
        return Err(fail(
            libc::ECANCELED,
            "no pod is started: INVITE_MAX_OVERHEAD=0 leaves testing no budget".into(),
        ));
    }
    match kind {
        PodKind::Site { .. } => {}
        // A direct ckpt() is held to the cap too: it runs now or is refused.
        PodKind::Manual { .. } => {
            crate::admit::admit_direct(rt).map_err(|m| fail(libc::EAGAIN, m))?;
        }
        // A live checkpoint's branches count on the checkpoint's own page, bounded by the
        // number of live checkpoints; only the cgroup's room is checked.
        PodKind::Branch { .. } => {
            let running = rt.ledger().running() as u64;
            if let Some(why) = crate::headroom::no_room(running + 1) {
                return Err(fail(libc::EAGAIN, format!("no pod is started: {why}")));
            }
            rt.ledger().reserve_any();
        }
    }
    // From here on every kind holds a running slot or a place in the queue.
    let release = |rt: &Runtime| give_back(rt, ticket);
    // Inside a pod, a nested pod is a fork within the pod's own isolation (its namespaces and
    // overlay), which already separates it from the host.
    let plan = match cfg.isolation {
        _ if runtime::in_pod() => None,
        crate::config::Isolation::Pod => match rt.plan() {
            Ok(p) => Some(p),
            Err(m) => {
                release(rt);
                return Err(fail(libc::ENOTSUP, m));
            }
        },
        crate::config::Isolation::Fork => None,
    };
    if plan.is_some() {
        crate::podgroup::ensure(cfg.max_concurrent, !crate::pod::pid_max_per_ns());
    }
    // Nothing is allocated here: whatever the host writes between the fork and its return is
    // copied on write while the supervisor lives, so the pod's description is built in the child.
    let id = rt.next_pod_id();
    let origin = record::Origin {
        host_pid: sys::getpid(),
        caller_tid: sys::gettid(),
    };
    let started = match (plan, ticket) {
        (Some(p), None) => crate::warm::try_start(rt, p, kind, id, origin),
        (Some(p), Some(t)) => crate::warm::start_waiting(rt, p, kind, id, origin, t),
        (None, _) => None,
    };
    if let Some(warm) = started {
        return warm.map_err(|e| {
            release(rt);
            let errno = e.raw_os_error().unwrap_or(libc::EIO);
            fail(errno, format!("fork: {e}"))
        });
    }
    let t0 = sys::monotonic_ns();
    let cpu = sys::current_cpu();
    // SAFETY: the child is the pod's supervisor: it uses the runtime's lock-free state and
    // system calls, and its test runs the host's code as the design's trade-off (README,
    // limitations: only the calling thread); the pod's steps close the runtime's descriptors.
    match unsafe { sys::fork() } {
        Err(e) => {
            release(rt);
            let errno = e.raw_os_error().unwrap_or(libc::EIO);
            Err(fail(errno, format!("fork: {e}")))
        }
        Ok(sys::Forked::Parent(pid)) => {
            let pause = sys::monotonic_ns() - t0;
            crate::admit::charge_pause(rt.ledger(), pause);
            if let Some(t) = ticket {
                rt.ledger().queue().set_pid(t, pid as u32);
            }
            // The runtime's thread is started here by the first pod, after its fork: a thread
            // of the host during the fork makes the fork itself slower (the other CPU's view of
            // the address space is flushed), and it starts no work that would compete with the
            // rest of this pause (see `reap`).
            crate::reap::reap_when_over(pid);
            Ok(Ckpt::Original)
        }
        Ok(sys::Forked::Child) => {
            sys::host_first(cpu);
            // The call may hold the program's allocator's lock, held for ever here.
            sys::use_own_pages();
            // Supervisor: returns only in the pod's test process.
            let t0 = match ticket {
                Some(t) => {
                    crate::admit::wait_for_slot(rt, t, origin.host_pid);
                    sys::monotonic_ns()
                }
                None => t0,
            };
            let info = PodInfo::new(rt, kind, rt.pod_path(id), origin, t0);
            supervise::supervisor(rt, plan, info, supervise::Host::Parent);
            Ok(Ckpt::Pod(id))
        }
    }
}
