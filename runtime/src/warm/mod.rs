//! Warm pods: the fast way into a pod, as root.
//!
//! A cold pod (`snapshot` → `supervise` → `pod::build`) forks a supervisor, which builds the
//! pod's mounts and forks the test: two forks of the host image and half a dozen mounts between
//! `ckpt()` and the test's first line. A warm pod moves all of that out of the way:
//!
//! ```text
//! watcher thread ──ask──▶ helper (forked once at start-up, see `helper`): mount namespaces
//!        ▲                 with the pod's overlays, ahead of time (sent back as descriptors:
//!        │ pidfd, pipes    the "blanks" of the stock)
//! host thread ──unshare(PID) + fork──▶ test: PID 1 of a new PID namespace; joins a blank,
//!                                      private copy of it, fresh /proc, IPC/UTS/net, hygiene
//! ```
//!
//! - The host forks the test itself (one fork, glibc's), with its thread's PID namespace for
//!   children switched to a new one around the fork, so the test is PID 1 of its own.
//! - The test joins a blank: a mount namespace the builder prepared with the same steps as a
//!   cold pod (`pod::prepare_blank`). The host holds blanks as descriptors; one taken is one
//!   atomic swap, no lock and no syscall.
//! - The watcher thread (`reap`) supervises the test as a cold pod's supervisor would: deadline,
//!   output tail, verdict frames, wait status and rusage, changed files (read from the blank's
//!   scratch through a descriptor), the record.
//! - A blank whose upper layers the test left exactly as they were is put back in the stock (its
//!   pod's mounts, /proc and namespaces were private copies and died with it); any other is
//!   dropped and the builder makes a new one.
//! - If the host dies, its tests die (parent-death signal; as PID 1 they take their pod with
//!   them), and the blanks, held only by the host's descriptors, vanish with it. The builder,
//!   told of each running pod by the watcher, journals those `error` (`orphan`).
//!
//! A call that must wait for a slot (`queue`) is forked the same way, waits in its own PID
//! namespace, and takes a blank from the stock itself when its turn comes, or through the
//! watcher when none is ready (`lend`).
//!
//! Not root: a thread cannot switch PID namespaces without CAP_SYS_ADMIN in the host's user
//! namespace, so rootless pods stay cold. `INVITE_WARM=off` turns warm pods off, `wait` makes
//! `ckpt()` wait for a blank instead of building a cold pod when the stock is empty.

mod helper;
mod lend;
mod orphan;
mod outlive;
mod stock;
mod watch;

pub use helper::{
    ask_netns_early, netns as helper_netns, same_view as helper_same_view, start as start_helper,
    started as helper_started,
};
pub use outlive::guard_this_thread as guard_loading_thread;
pub use watch::Watcher;

use crate::config::{Isolation, Warm as WarmMode};
use crate::kind::{Ckpt, PodKind};
use crate::ownfd::Own;
use crate::plan::Plan;
use crate::pod::{self, Channels, PodSpec, WarmEntry};
use crate::record::PodInfo;
use crate::runtime::Runtime;
use crate::sys;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// The watcher is a duty of the reaper thread, which knows it only by this.
impl crate::reap::Duty for Watcher {
    fn prepare(&mut self, fds: &mut Vec<RawFd>) -> Option<i32> {
        Watcher::prepare(self, fds)
    }

    fn handle(&mut self, rev: &[i16]) {
        Watcher::handle(self, rev)
    }
}

/// The per-process state of warm pods, made once.
struct Warm {
    /// The host's own PID namespace, to switch the forking thread back after each fork.
    orig_pidns: Own,
    /// Rung by each warm test once it is isolated, so the watcher picks it up (the host
    /// registered it right after the fork): no wake-up competes with the test's setup, and no
    /// system call is added to the host's pause.
    doorbell: Own,
    /// The host's own pidfd, which its tests poll to learn it has died.
    host_pidfd: Own,
    root: CString,
    has_proc: bool,
    wait: bool,
    /// Blanks kept ready.
    target: usize,
    /// The watcher's end of the socket waiting copies borrow blanks through (`lend`), and
    /// theirs (inherited at their fork).
    lend: OwnedFd,
    lend_peer: OwnedFd,
}

static WARM: OnceLock<Option<Warm>> = OnceLock::new();

/// Set in a process forked from the host (a worker of its own, a live checkpoint): the stock's
/// descriptors and its watcher belong to the host, so pods started here are cold.
static FORGOTTEN: AtomicBool = AtomicBool::new(false);

/// In a fresh fork of the host: no warm pods here (async-signal-safe: stores only).
pub fn disown_stock() {
    FORGOTTEN.store(true, Ordering::Relaxed);
    outlive::clear_owners();
}

/// In the child of any fork of the host: the watcher and the stock stayed in the parent.
extern "C" fn after_fork() {
    disown_stock();
}

fn state() -> Option<&'static Warm> {
    if FORGOTTEN.load(Ordering::Relaxed) {
        return None;
    }
    WARM.get().and_then(Option::as_ref)
}

/// The warm state, made now if it is not yet (its descriptors: tens of microseconds).
fn get(rt: &Runtime, plan: &Plan) -> Option<&'static Warm> {
    if FORGOTTEN.load(Ordering::Relaxed) {
        return None;
    }
    WARM.get_or_init(|| {
        // SAFETY: `after_fork` only stores to atomics (`disown_stock`): async-signal-safe.
        unsafe { sys::at_fork_child(after_fork) };
        init(rt, plan)
    })
    .as_ref()
}

/// The warm state, made ahead (`start::build_ahead`), while nothing can hold a lock it needs.
pub fn make_state(rt: &Runtime, plan: &Plan) {
    let _ = get(rt, plan);
}

/// The warm state for a pod starting now, if it was made (never here: a sampled call may hold
/// the program's allocator's lock, and making it allocates, or waits for the runtime's thread
/// making it, which may wait for that lock). The first pods of a process find the stock empty
/// and start cold anyway: they only hand the watcher its duty, and the runtime's thread (started
/// at load, `reap::start_early`) fills the stock, off the host's pause. Only `wait`, which waits
/// for a blank, wakes it now.
fn for_pod(rt: &Runtime) -> Option<&'static Warm> {
    crate::reap::set_duty(crate::reap::DutyKind::Warm, || {
        // Made by the runtime's thread once a pod has started, before the stock holds a blank:
        // whether the host writes files only a cold pod can hold it still for
        // (`pod::host_is_writing_clonable_files`), looked at here, off the host's pause, and
        // not at load (the warm state is made then), before the program opened its files.
        pod::look_for_clonable_writes();
        Box::new(Watcher::new())
    });
    // Blanks are made in the mounts the host saw at start, as root: a host that has since moved
    // to another mount namespace or root, or dropped root, gets cold pods. Not looked at here
    // (two statx of "/" on every pause, ~7 us): the warm test looks before it enters its blank
    // (`host_unmoved`), and builds its pod cold if the host moved; the host's later calls see
    // that on the ledger.
    if rt.ledger().moved() {
        return None;
    }
    let w = state()?;
    if rt.config.as_ref()?.warm == WarmMode::Wait {
        let _ = crate::reap::ensure();
    }
    Some(w)
}

fn init(rt: &Runtime, plan: &Plan) -> Option<Warm> {
    let cfg = rt.config.as_ref()?;
    if cfg.warm == WarmMode::Off
        || plan.userns_fd.is_some()
        || !crate::plan::is_root()
        || !helper::available()
    {
        return None;
    }
    let orig_pidns = sys::open(c"/proc/self/ns/pid", libc::O_RDONLY | libc::O_CLOEXEC, 0).ok()?;
    let doorbell = sys::eventfd().ok()?;
    let host_pidfd = sys::pidfd_open(sys::getpid()).ok()?;
    let root = CString::new(pod::root_of(plan)).ok()?;
    let (lend, lend_peer) = sys::seqpacket_pair().ok()?;
    stock::share();
    crate::ownfd::mark(lend.as_raw_fd());
    crate::ownfd::mark(lend_peer.as_raw_fd());
    // The process's warm state holds them for its life.
    Some(Warm {
        lend,
        lend_peer,
        orig_pidns: Own::new(orig_pidns),
        doorbell: Own::new(doorbell),
        host_pidfd: Own::new(host_pidfd),
        root,
        has_proc: pod::has_proc(plan),
        wait: cfg.warm == WarmMode::Wait,
        // Two spare blanks, so a blank being rebuilt does not send a pod the cold way; two more
        // with a wait queue, whose copies are rung as a slot frees, before its pod's blank is
        // back in the stock, and wait for one when none is ready (a slot idle meanwhile).
        target: (cfg.max_concurrent as usize + if cfg.max_queue > 0 { 4 } else { 2 })
            .clamp(1, stock::MAX_BLANKS),
    })
}

/// Start a warm pod if one is ready. `None`: build it cold. In the host returns
/// `Ckpt::Original`; in the test, fully isolated, `Ckpt::Pod(id)`.
pub fn try_start(
    rt: &Runtime,
    plan: &Plan,
    kind: PodKind,
    id: u32,
    origin: crate::record::Origin,
) -> Option<io::Result<Ckpt>> {
    let w = for_pod(rt)?;
    let hold = rt.config.as_ref().is_none_or(|c| c.hold_host);
    // Asked only where the pod could be warm: the first look maps a page and lists the host's
    // descriptors (the runtime's thread makes it before the stock holds a blank), and the first
    // pods of a process, which find the stock empty, went through it on their pause.
    let ready = stock::take();
    if hold && (ready.is_some() || w.wait) && pod::host_is_writing_clonable_files() {
        if let Some(t) = ready {
            stock::put_back(t);
        }
        return None; // built cold, where the host can be held still for its clones
    }
    let taken = ready.or_else(|| w.wait.then(stock::wait_take).flatten())?;
    let t0 = sys::monotonic_ns();
    let Some((forked, _)) = fork_in_new_pidns(w, false) else {
        stock::put_back(taken);
        return None;
    };
    match forked {
        Err(e) => {
            stock::put_back(taken);
            Some(Err(e))
        }
        Ok(sys::Forked::Parent(pid)) => {
            let pause = sys::monotonic_ns() - t0;
            crate::admit::charge_pause(rt.ledger(), pause);
            // Tests: a host slower to register its pod than the test is to ring for it.
            if pod::fault_injected("register the warm pod") {
                std::thread::sleep(std::time::Duration::from_millis(300));
            }
            watch::register(pid, taken.index, id, t0);
            outlive::started(taken.index);
            Some(Ok(Ckpt::Original))
        }
        Ok(sys::Forked::Child) => {
            let info = PodInfo::new(rt, kind, rt.pod_path(id), origin, t0);
            if !host_unmoved(rt) {
                return Some(Ok(build_cold_instead(rt, plan, w, id, info, &taken)));
            }
            Some(Ok(enter(rt, plan, w, id, info, &taken)))
        }
    }
}

/// In a warm test (a fork of the host: its root, mount namespace and credentials), before it
/// enters its blank (or in the host, for a waiting copy): whether the host still sees the files
/// it saw at start-up, as root, which the blanks were made for. If not, the ledger says so: the
/// host's next calls are cold.
fn host_unmoved(rt: &Runtime) -> bool {
    let unmoved = helper::same_view() && crate::plan::is_root();
    if !unmoved {
        rt.ledger().note_moved();
    }
    unmoved
}

/// A warm test whose host moved since start-up (`host_unmoved`): its blank shows the host's old
/// view, so it builds the pod cold instead, as a cold pod's supervisor (with the plan probed
/// again). The watcher is told (`X`) to leave it be: it writes the record itself, and the
/// blank, untouched, goes back to the stock. Returns in the pod's test only.
fn build_cold_instead(
    rt: &Runtime,
    plan: &Plan,
    w: &Warm,
    id: u32,
    info: PodInfo,
    taken: &stock::Taken,
) -> Ckpt {
    pod::report_frame_on(taken.st_w, watch::WENT_COLD, &[]);
    let host = crate::supervise::Host::Pidfd(w.host_pidfd.raw());
    // Probed again there (`Runtime::plan_in_fork`), the host having moved.
    crate::supervise::supervisor(rt, Some(plan), info, host);
    Ckpt::Pod(id)
}

/// Fork with this thread's children born in a new PID namespace (the child is its PID 1); the
/// thread's later forks (the host's own) are born in the host's namespace again. `None`: no
/// new PID namespace here. Signals are blocked around the fork; with `blocked_in_child` the
/// child keeps them blocked (a waiting copy, which waits so) and is given the mask to put back.
fn fork_in_new_pidns(
    w: &Warm,
    blocked_in_child: bool,
) -> Option<(io::Result<sys::Forked>, libc::sigset_t)> {
    // No signal handler of the host may run (and fork) while this thread's children are born in
    // the pod's PID namespace.
    let mask = sys::block_all();
    if sys::unshare(libc::CLONE_NEWPID).is_err() {
        sys::set_mask(&mask);
        return None;
    }
    let cpu = sys::current_cpu();
    // SAFETY: the child is a warm pod's test, or a waiting copy that becomes one (`lend`): it
    // enters the blank with system calls and the runtime's lock-free state
    // (`pod::enter_warm`), then runs the host's code as a pod, the design's trade-off (README,
    // limitations: only the calling thread); signals are blocked meanwhile.
    let forked = unsafe { sys::fork() };
    if matches!(forked, Ok(sys::Forked::Child)) {
        sys::host_first(cpu);
        // The call may hold the program's allocator's lock, held for ever here.
        sys::use_own_pages();
    } else if let Err(e) = sys::setns(w.orig_pidns.raw(), libc::CLONE_NEWPID) {
        eprintln!("invite: cannot switch back to the host's PID namespace: {e}");
    }
    if !(blocked_in_child && matches!(forked, Ok(sys::Forked::Child))) {
        sys::set_mask(&mask);
    }
    Some((forked, mask))
}

/// In a warm test, just forked (or a waiting copy that borrowed its blank): report who it is,
/// enter the blank, and become the pod. Returns `Ckpt::Pod(id)` in the pod, fully isolated.
fn enter(
    rt: &Runtime,
    plan: &Plan,
    w: &Warm,
    id: u32,
    info: PodInfo,
    taken: &stock::Taken,
) -> Ckpt {
    pod::report_frame_on(taken.st_w, b'I', &info.encode());
    let fds = pod::scan_fds(&[], info.started_ns);
    let cwd = std::env::current_dir()
        .ok()
        .and_then(|p| CString::new(p.into_os_string().into_encoded_bytes()).ok());
    let spec = PodSpec {
        isolation: Isolation::Pod,
        plan: Some(plan),
        fds: &fds,
        cwd,
        timeout_ms: info.timeout_ms,
        signals: None,
        own_page: rt.ledger() as *const _ as usize,
    };
    let ch = Channels {
        status_r: -1,
        status_w: taken.st_w,
        out_r: -1,
        out_w: taken.out_w,
    };
    let entry = WarmEntry {
        mnt: taken.mnt,
        ipc: taken.ipc,
        uts: taken.uts,
        root: &w.root,
        has_proc: w.has_proc,
        netns: plan.netns_fd,
        host_pidfd: w.host_pidfd.raw(),
        doorbell: w.doorbell.raw(),
    };
    pod::enter_warm(&spec, &ch, &entry);
    crate::afterfork::pod_test(rt, &info.path);
    Ckpt::Pod(id)
}

/// Fork a call's waiting copy the warm way (`lend`), if warm pods are on here: PID 1 of a PID
/// namespace of its own, it waits for its slot, borrows a blank and enters it. `None`: wait
/// the cold way. In the host returns `Ckpt::Original`; in the pod `Ckpt::Pod(id)`.
pub fn start_waiting(
    rt: &Runtime,
    plan: &Plan,
    kind: PodKind,
    id: u32,
    origin: crate::record::Origin,
    ticket: crate::queue::Ticket,
) -> Option<io::Result<Ckpt>> {
    let w = for_pod(rt)?;
    // A waiting copy borrows its blank later, through the watcher: the host looks now, as it did
    // for every warm pod before (calls past the cap only).
    if !host_unmoved(rt) {
        return None;
    }
    let t0 = sys::monotonic_ns();
    // The copy waits with every signal blocked (`admit::wait`): kept so from the fork on.
    let (forked, mask) = fork_in_new_pidns(w, true)?;
    match forked {
        Err(e) => Some(Err(e)),
        Ok(sys::Forked::Parent(pid)) => {
            let pause = sys::monotonic_ns() - t0;
            crate::admit::charge_pause(rt.ledger(), pause);
            rt.ledger().queue().set_pid(ticket, pid as u32);
            if lend::register(pid, ticket, id) {
                // Picked up at the watcher's next round: it has one due (a call waits only
                // while pods run, and their ends, rings and deadlines wake it), unless it
                // sleeps with nothing due. Woken for each waiting copy, it made one more
                // round per queued pod.
                crate::reap::nudge();
            } else {
                crate::reap::reap_when_over(pid);
            }
            Some(Ok(Ckpt::Original))
        }
        Ok(sys::Forked::Child) => {
            // The fork's handlers marked this copy as not the stock's owner; it borrows.
            let Some(w) = WARM.get().and_then(Option::as_ref) else {
                sys::set_mask(&mask);
                return None;
            };
            if !crate::admit::wait_in_own_pidns(rt, ticket, w.host_pidfd.raw(), mask) {
                sys::exit_now(0);
            }
            let Some(taken) = lend::borrow(rt, w.lend_peer.as_fd(), w.host_pidfd.raw(), ticket)
            else {
                if let PodKind::Site { site, owner } = kind {
                    crate::record::journal_start_failure(
                        site,
                        owner,
                        "the call waited for a slot, then no prepared blank came within 60 s, or building them failed (warm pods)",
                    );
                }
                sys::exit_now(0);
            };
            let info = PodInfo::new(rt, kind, rt.pod_path(id), origin, sys::monotonic_ns());
            Some(Ok(enter(rt, plan, w, id, info, &taken)))
        }
    }
}
