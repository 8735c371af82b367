//! Admission: whether a sampled call starts a pod now, waits for a slot, or is turned away.
//! Turned-away calls are counted per reason for the summary, never journaled one by one.
//!
//! - (No site tests start inside a pod: `sample` turns them away before admission.)
//! - Coverage first: a (site, test) that has not run yet in this process is not held to either
//!   budget, goes ahead of every repeat in the wait queue, and may displace a waiting repeat
//!   when the queue is full. A hot site cannot starve a cold one.
//! - The host's budget (`INVITE_MAX_OVERHEAD`, percent): what testing costs the host stays at or
//!   below this share of its elapsed time: its pauses (the fork), its copy-on-write faults while
//!   pods live or wait (minor faults since the last admission at the measured cost of one), and
//!   the exit drain (estimated while pods wait: the queue's backlog at the mean pod's duration).
//! - The pods' own CPU (`INVITE_MAX_POD_CPU`, percent): finished pods' CPU time plus running and
//!   waiting ones at the mean stay at or below this share of the machine's CPUs (`cpus`: a cgroup
//!   quota counts) over the host's elapsed time.
//! - At most `INVITE_MAX_CONCURRENT` pods run at once; admission reserves the slot. Past it, a
//!   call takes its snapshot and waits (`queue`) while the queue has room: at most
//!   `INVITE_MAX_QUEUE` waiters, and memory for a frozen copy of the host each (`headroom`).
//! - The host's cgroup must have room for every running pod's memory and processes and this
//!   one's (`headroom`), else the pod is turned away (`cgroup`).

use crate::ledger::Ledger;
use crate::queue::{Claim, Key, Ticket};
use crate::runtime::{Runtime, SiteStats};
use crate::site::Site;
use crate::sys;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a sampled call starts no pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// Every slot taken and no queue (`INVITE_MAX_QUEUE=0`).
    Concurrency,
    Cgroup,
    /// The host's budget.
    Budget,
    /// The pods' own CPU bound.
    PodCpu,
    /// The queue is full (or memory for one more waiting copy is short), or a never-run test
    /// took this waiter's place.
    Queue,
}

/// The limits admission applies (from the configuration).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_concurrent: u32,
    /// Percent of the host's elapsed time; `None`: no budget.
    pub max_overhead: Option<f64>,
    /// Percent of the machine's CPUs; `None`: no bound.
    pub max_pod_cpu: Option<f64>,
    pub max_queue: u32,
}

/// The sampled call: whether its (site, test) has run in this process, and its site's index.
#[derive(Clone, Copy, Debug)]
pub struct Call {
    pub first_run: bool,
    pub site: u32,
}

/// The host's elapsed time and the CPUs its pods may share.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    pub elapsed_ns: u64,
    pub cpus: f64,
}

/// A call let in: it runs now, or waits in the queue (having displaced a repeat, whose key is
/// given).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admitted {
    Run,
    Wait(Ticket, Option<Key>),
}

/// How the decision sees the world, so that it can be tested without one.
pub struct World<R, Q, C, A> {
    /// Whether the host's cgroups have room for `n` running pods.
    pub room: R,
    /// Whether memory allows `n` waiting copies of the host beside the running pods.
    pub queue_room: Q,
    pub clock: C,
    /// Whether a waiter's supervisor still lives.
    pub alive: A,
}

/// What admission tells the snapshot of the call it let in, on the same thread.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pass {
    /// The call waits for a slot with this ticket.
    pub ticket: Option<Ticket>,
    /// A never-run test: its pause is not charged to the budget.
    pub first_run: bool,
}

thread_local! {
    static PASS: Cell<Pass> = const { Cell::new(Pass { ticket: None, first_run: false }) };
    /// The snapshot being taken on this thread is a never-run test's (`charge_pause`).
    static EXEMPT: Cell<bool> = const { Cell::new(false) };
    /// This thread's CPU time when its snapshot began (`charge_pause`).
    static CPU_AT_START: Cell<u64> = const { Cell::new(0) };
}

pub fn admit(rt: &Runtime, site: &Site, stats: &SiteStats) -> bool {
    let Some(cfg) = rt.config.as_ref() else {
        return false;
    };
    let first_run = stats.started.load(Ordering::Relaxed) == 0;
    if !first_run && rt.ledger().budget_shut(sys::monotonic_ns()) {
        // As `decide` would say, which looks at the budget first for a repeat; the faults
        // meanwhile are charged at the next call that looks (the pods seen since included).
        stats.skipped_budget.fetch_add(1, Ordering::Relaxed);
        return false;
    }
    charge_cow_faults(rt);
    charge_crowded_pods(rt.ledger());
    let limits = Limits {
        max_concurrent: cfg.max_concurrent,
        max_overhead: cfg.max_overhead,
        max_pod_cpu: cfg.max_pod_cpu,
        max_queue: cfg.max_queue,
    };
    let call = Call {
        first_run,
        site: site.index.load(Ordering::Relaxed),
    };
    let world = World {
        room: |running| crate::headroom::no_room(running).is_none(),
        queue_room: crate::headroom::queue_room,
        clock: || Clock {
            elapsed_ns: sys::monotonic_ns().saturating_sub(crate::runtime::started_ns()),
            cpus: crate::cpus::machine(),
        },
        alive: |pid: u32| sys::alive(pid as i32),
    };
    let verdict = decide(rt.ledger(), limits, call, world);
    if let (Err(Skip::Budget), Some(pct)) = (verdict, limits.max_overhead) {
        rt.ledger().shut_budget(crate::runtime::started_ns(), pct);
    }
    let counter = match verdict {
        Ok(Admitted::Run) => {
            PASS.set(Pass {
                ticket: None,
                first_run,
            });
            &stats.started
        }
        Ok(Admitted::Wait(ticket, displaced)) => {
            stats.queued.fetch_add(1, Ordering::Relaxed);
            if let Some(key) = displaced {
                count_displaced(rt, key);
            }
            PASS.set(Pass {
                ticket: Some(ticket),
                first_run,
            });
            &stats.started
        }
        Err(Skip::Concurrency) => &stats.skipped_concurrency,
        Err(Skip::Cgroup) => &stats.skipped_cgroup,
        Err(Skip::Budget) => &stats.skipped_budget,
        Err(Skip::PodCpu) => &stats.skipped_pod_cpu,
        Err(Skip::Queue) => &stats.skipped_queue,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    verdict.is_ok()
}

/// A direct `ckpt()` (not a site's sample): held to `INVITE_MAX_CONCURRENT`, behind the waiting
/// calls as a never-run test is, and to no budget (it is what the program asked for). It never
/// waits in the queue: a pod built after its snapshot would copy the files it reads later than
/// its memory, and the program asked for a pod now. With every slot taken (or no room in the
/// cgroup) it is refused: the message says why and with which setting.
pub fn admit_direct(rt: &Runtime) -> Result<(), String> {
    let Some(cfg) = rt.config.as_ref() else {
        return Ok(());
    };
    let limits = Limits {
        max_concurrent: cfg.max_concurrent,
        max_overhead: None,
        max_pod_cpu: None,
        max_queue: 0,
    };
    let world = World {
        room: |running| crate::headroom::no_room(running).is_none(),
        queue_room: |_| false,
        clock: || Clock {
            elapsed_ns: 0,
            cpus: 1.0,
        },
        alive: |pid: u32| sys::alive(pid as i32),
    };
    let call = Call {
        first_run: true,
        site: 0,
    };
    let running = rt.ledger().running();
    match decide(rt.ledger(), limits, call, world) {
        Ok(_) => Ok(()),
        Err(Skip::Cgroup) => Err(format!(
            "no pod is started: {}",
            crate::headroom::no_room(u64::from(running) + 1).map_or_else(
                || "no room in the host's cgroup".to_string(),
                |why| why.to_string()
            )
        )),
        Err(_) => Err(format!(
            "no pod is started: every slot is taken (INVITE_MAX_CONCURRENT={}); try again \
             when a pod ends",
            cfg.max_concurrent
        )),
    }
}

/// What `admit` said of the call it let in on this thread, taken once by the snapshot of a site
/// (`site`); an explicit `ckpt()` takes nothing.
pub fn take_pass(site: bool) -> Pass {
    let pass = if site { PASS.take() } else { Pass::default() };
    EXEMPT.set(pass.first_run);
    CPU_AT_START.set(sys::thread_cpu_ns());
    pass
}

/// The host paused `_wall_ns` for the snapshot this thread took. Charged to the budget: the
/// thread's CPU time since `take_pass`, the setup before the fork included (on a busy machine
/// the wall-clock pause also counts the host's waits for a CPU, which are not testing's cost);
/// unless it is a never-run test's (a cost still, outside the budget).
pub fn charge_pause(ledger: &Ledger, _wall_ns: u64) {
    let ns = sys::thread_cpu_ns().saturating_sub(CPU_AT_START.get());
    if EXEMPT.take() {
        ledger.charge_exempt(ns);
    } else {
        ledger.charge(ns);
    }
}

/// A displaced waiter was counted started: it is skipped (`queue`) instead.
fn count_displaced(rt: &Runtime, key: Key) {
    rt.ledger().count_displaced();
    // Sites are numbered from 1 in the registry's order of registration.
    if let Some(stats) = (key.site() as usize)
        .checked_sub(1)
        .and_then(|i| crate::registry::entries().nth(i))
        .map(|e| &e.stats)
    {
        stats.started.fetch_sub(1, Ordering::Relaxed);
        stats.skipped_queue.fetch_add(1, Ordering::Relaxed);
    }
}

/// Let `call` run (a running slot reserved in `ledger`) or wait (a queue slot taken), or say
/// why not (nothing reserved then).
pub fn decide(
    ledger: &Ledger,
    limits: Limits,
    call: Call,
    world: World<
        impl FnOnce(u64) -> bool,
        impl FnOnce(u64) -> bool,
        impl FnOnce() -> Clock,
        impl Fn(u32) -> bool,
    >,
) -> Result<Admitted, Skip> {
    if limits.max_overhead == Some(0.0) {
        // No budget at all: no pod, however idle the host or new the test.
        return Err(Skip::Budget);
    }
    if !call.first_run {
        within_budgets(ledger, limits, (world.clock)())?;
    }
    let queue = ledger.queue();
    let key = queue.key(!call.first_run, call.site);
    // A free slot goes to the waiters ahead of this call first. With every slot taken there is
    // none to give: the waiters' liveness (a system call each) is not asked.
    if ledger.running() < limits.max_concurrent && !queue.ahead_of(Some(key), &world.alive) {
        if let Some(running) = ledger.reserve(limits.max_concurrent) {
            if !(world.room)(running as u64) {
                ledger.release();
                return Err(Skip::Cgroup);
            }
            return Ok(Admitted::Run);
        }
    }
    if limits.max_queue == 0 {
        return Err(Skip::Concurrency);
    }
    let room = (world.queue_room)(queue.waiting() as u64 + 1);
    if let Some(ticket) = room.then(|| queue.enqueue(key, limits.max_queue)).flatten() {
        return Ok(Admitted::Wait(ticket, None));
    }
    match call.first_run.then(|| queue.displace(key)).flatten() {
        Some((ticket, gone)) => Ok(Admitted::Wait(ticket, Some(gone))),
        None => Err(Skip::Queue),
    }
}

/// A repeat stays within the host's budget and the pods' CPU bound.
fn within_budgets(ledger: &Ledger, limits: Limits, clock: Clock) -> Result<(), Skip> {
    let running = ledger.running() as u64;
    let waiting = ledger.queue().waiting() as u64;
    let cap = limits.max_concurrent.max(1) as u64;
    if let Some(pct) = limits.max_overhead {
        // Were the host to exit now, the drain would wait for the queue's backlog.
        let backlog = waiting + u64::from(running >= cap);
        let drain = ledger.mean_pod_wall_ns() * backlog.div_ceil(cap);
        let spent = ledger.overhead_ns().saturating_add(drain);
        if spent as f64 > clock.elapsed_ns as f64 * pct / 100.0 {
            return Err(Skip::Budget);
        }
    }
    if let Some(pct) = limits.max_pod_cpu {
        let spent = ledger.pod_cpu_ns() + ledger.mean_pod_cpu_ns() * (running + waiting + 1);
        if spent as f64 > clock.elapsed_ns as f64 * clock.cpus * pct / 100.0 {
            return Err(Skip::PodCpu);
        }
    }
    Ok(())
}

/// In a waiting call's supervisor (a frozen fork of the host): wait, at the lowest priority,
/// until a running slot is this call's; end without a pod if a never-run test displaced it or
/// the host is gone past the grace its exit drain would have given its waiting pods
/// (`Runtime::host_gone_until`: a host that `_exit`s leaves them as much time as one that
/// drains).
pub fn wait_for_slot(rt: &Runtime, ticket: Ticket, host_pid: i32) {
    let me = sys::getpid() as u32;
    let gone = || sys::getppid() != host_pid && sys::monotonic_ns() >= rt.host_gone_until();
    let mask = sys::block_all();
    if !wait(rt, ticket, me, gone, true, &mask) {
        sys::exit_now(0);
    }
}

/// In a waiting copy forked into a PID namespace of its own (`warm::start_waiting`), where the
/// host and the other waiters have no pid: wait as `wait_for_slot` does, the host's death read
/// from its pidfd. False: no pod (displaced, or the host is gone). Every signal is blocked
/// already (since its fork); `mask` is the host's, put back for the pod.
pub fn wait_in_own_pidns(
    rt: &Runtime,
    ticket: Ticket,
    host_pidfd: i32,
    mask: libc::sigset_t,
) -> bool {
    let gone = || sys::poll_in(&[host_pidfd], 0, &mut [0]).unwrap_or(0) > 0;
    wait(rt, ticket, 0, gone, false, &mask)
}

/// Wait with every signal blocked: a signal to the host's process group must not run the host's
/// handlers in this copy while it waits. They stay installed, and the signals that came
/// meanwhile are dropped before the pod gets the host's `mask` back (one call where saving,
/// resetting and restoring each handler took ~70 per queued pod).
fn wait(
    rt: &Runtime,
    ticket: Ticket,
    me: u32,
    gone: impl Fn() -> bool,
    seen_alive: bool,
    mask: &libc::sigset_t,
) -> bool {
    // At the lowest priority until its turn, the host's pause and the running pods first (on a
    // busy machine, load ~15, the queue's throughput fell by about a quarter without it, in
    // alternated runs of bench/c/throughput.c; again at load 10-25 in session 9, 0.70-0.80 x,
    // likely because a copy rung at the host's priority takes the CPU from the watcher that
    // rang it, which ends every pod). Without yielding the CPU at once: the copy goes to sleep
    // on its bell in a few calls anyway, and the yield was one more switch per pod.
    let nice = sys::nice();
    sys::set_nice(19);
    let max = rt.config.as_ref().map_or(1, |c| c.max_concurrent);
    match rt.ledger().wait_turn(ticket, me, max, gone, seen_alive) {
        Claim::Run => {
            // Its pod's set-up runs as a fresh fork's would (a warm test's at the host's
            // priority until it isolates itself): at nice 19 on a busy machine it could starve
            // past its deadline, a slot held meanwhile (in alternated runs of
            // bench/c/throughput.c, a set-up left at nice 19 made 0.75-0.92 x the pods). First
            // thing, before the signals' calls: from its claim on, the slot is its own.
            sys::set_nice(nice);
            sys::drop_pending();
            sys::set_mask(mask);
            true
        }
        Claim::Displaced | Claim::Wait => false,
    }
}

/// Charge the host's minor faults since the last admission to the budget when a pod lived or
/// waited within the last `COW_WINDOW_NS` (copies while it shares the host's pages, and the
/// faults that re-own each page after it ends). Faults of the host's own are charged too in
/// that window: the budget errs on the side of testing less.
fn charge_cow_faults(rt: &Runtime) {
    let ledger = rt.ledger();
    let now = sys::monotonic_ns();
    let faults = sys::minor_faults();
    let finished = ledger.pods_finished();
    let prev_faults = rt.last_minor_faults.swap(faults, Ordering::Relaxed);
    let prev_finished = rt.last_pods_finished.swap(finished, Ordering::Relaxed);
    if ledger.running() > 0 || ledger.queue().waiting() > 0 || finished != prev_finished {
        rt.last_pod_seen_ns.store(now, Ordering::Relaxed);
    }
    let recent = now.saturating_sub(rt.last_pod_seen_ns.load(Ordering::Relaxed)) < COW_WINDOW_NS;
    if prev_faults > 0 && recent {
        let per_fault = ledger.cow_fault_ns().unwrap_or(DEFAULT_COW_FAULT_NS);
        ledger.charge(faults.saturating_sub(prev_faults) * per_fault);
    }
}

const COW_WINDOW_NS: u64 = 1_000_000_000;

/// Charge the host's budget with the pods' CPU time the machine had no idle time for: on a
/// machine whose every core is busy (with the host's threads, or anyone's), pods at
/// `SCHED_IDLE` still take CPU from the host (the kernel's work for their forks, mounts and
/// exits is not all at their priority). Settled over windows of at least `CROWD_WINDOW_NS`:
/// the pods' CPU finished in the window beyond the machine's idle time in it. It errs on the
/// side of testing less: idle time the pods themselves used is not seen as idle.
fn charge_crowded_pods(ledger: &Ledger) {
    static LAST_NS: AtomicU64 = AtomicU64::new(0);
    static LAST_IDLE_NS: AtomicU64 = AtomicU64::new(0);
    static LAST_POD_CPU_NS: AtomicU64 = AtomicU64::new(0);
    let now = sys::monotonic_ns();
    let last = LAST_NS.load(Ordering::Relaxed);
    if now.saturating_sub(last) < CROWD_WINDOW_NS
        || LAST_NS
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return; // not yet, or another thread settles this window
    }
    let Some(idle) = crate::cpus::idle_ns() else {
        return;
    };
    let pods = ledger.pod_cpu_ns();
    let prev_idle = LAST_IDLE_NS.swap(idle, Ordering::Relaxed);
    let prev_pods = LAST_POD_CPU_NS.swap(pods, Ordering::Relaxed);
    if last > 0 {
        ledger.charge(crowded(
            pods.saturating_sub(prev_pods),
            idle.saturating_sub(prev_idle),
        ));
    }
}

/// Of `pod_cpu_ns` spent in a window with `idle_ns` of machine idle time, what the host lost.
fn crowded(pod_cpu_ns: u64, idle_ns: u64) -> u64 {
    pod_cpu_ns.saturating_sub(idle_ns)
}

const CROWD_WINDOW_NS: u64 = 100_000_000;

/// Until the first supervisor has measured it: a copy-on-write fault costs about this much.
const DEFAULT_COW_FAULT_NS: u64 = 1_000;

#[cfg(test)]
mod tests;
