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
//!   them), and the blanks, held only by the host's descriptors, vanish with it.
//!
//! Not root: a thread cannot switch PID namespaces without CAP_SYS_ADMIN in the host's user
//! namespace, so rootless pods stay cold. `INVITE_WARM=off` turns warm pods off, `wait` makes
//! `ckpt()` wait for a blank instead of building a cold pod when the stock is empty.

mod helper;
mod outlive;
mod stock;
mod watch;

pub use helper::{
    ask_netns_early, available as helper_available, netns as helper_netns, start as start_helper,
    started as helper_started,
};
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
use std::os::fd::RawFd;
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

/// The warm state for a pod starting now. The first pods of a process find the stock empty and
/// start cold anyway: they only hand the watcher its duty, and the runtime's thread (started
/// right after the first pod's fork, `reap::reap_when_over`) makes the state and fills the stock,
/// off the host's pause. Only `wait`, which waits for a blank, needs it all now.
fn for_pod(rt: &Runtime, plan: &Plan) -> Option<&'static Warm> {
    if WARM.get().is_none() {
        crate::reap::set_duty(crate::reap::DutyKind::Warm, || Box::new(Watcher::new()));
        if rt.config.as_ref()?.warm != WarmMode::Wait {
            return None;
        }
        let _ = crate::reap::ensure();
    }
    get(rt, plan)
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
    // The process's warm state holds them for its life.
    Some(Warm {
        orig_pidns: Own::new(orig_pidns),
        doorbell: Own::new(doorbell),
        host_pidfd: Own::new(host_pidfd),
        root,
        has_proc: pod::has_proc(plan),
        wait: cfg.warm == WarmMode::Wait,
        // Two spare blanks, so a blank being rebuilt does not send a pod the cold way.
        target: (cfg.max_concurrent as usize + 2).clamp(1, stock::MAX_BLANKS),
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
    let w = for_pod(rt, plan)?;
    if pod::host_is_writing_clonable_files() {
        return None; // built cold, where the host can be held still for its clones
    }
    let taken = stock::take().or_else(|| w.wait.then(stock::wait_take).flatten())?;
    let t0 = sys::monotonic_ns();
    // No signal handler of the host may run (and fork) while this thread's children are born in
    // the pod's PID namespace.
    let mask = sys::block_all();
    if sys::unshare(libc::CLONE_NEWPID).is_err() {
        sys::set_mask(&mask);
        stock::put_back(taken);
        return None;
    }
    // SAFETY: the child is the pod's test: it enters the blank with system calls and the
    // runtime's lock-free state (`pod::enter_warm`), then runs the host's code as a pod, the
    // design's trade-off (README, limitations: only the calling thread); signals are blocked meanwhile.
    let forked = unsafe { sys::fork() };
    if !matches!(forked, Ok(sys::Forked::Child)) {
        // Later forks of this thread (the host's own) must be born in the host's namespace.
        if let Err(e) = sys::setns(w.orig_pidns.raw(), libc::CLONE_NEWPID) {
            eprintln!("invite: cannot switch back to the host's PID namespace: {e}");
        }
    }
    sys::set_mask(&mask);
    match forked {
        Err(e) => {
            stock::put_back(taken);
            Some(Err(e))
        }
        Ok(sys::Forked::Parent(pid)) => {
            let pause = sys::monotonic_ns() - t0;
            crate::admit::charge_pause(rt.ledger(), pause);
            watch::register(pid, taken.index, id, t0);
            outlive::started(taken.index);
            Some(Ok(Ckpt::Original))
        }
        Ok(sys::Forked::Child) => {
            let info = PodInfo::new(rt, kind, rt.pod_path(id), origin, t0);
            pod::report_frame_on(taken.st_w, b'I', &info.encode());
            let fds = pod::scan_fds(&[], t0);
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
            Some(Ok(Ckpt::Pod(id)))
        }
    }
}
