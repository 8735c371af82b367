//! The process-wide state of the runtime, built lazily on first use, and the exit handler that
//! drains running pods and writes the summary record.
//!
//! The host owns: the configuration, the journal descriptor, the site registry, the id counter,
//! and the `ledger` on a page shared with its supervisors. Inside a pod the same state is
//! re-pointed: ids restart at 1 under the pod's path, records travel to the pod's supervisor
//! instead of the journal file (`record::write`), and no site tests start.
//!
//! This module holds state and calls nothing above it: what else a forked child must let go of
//! is done by the fork sites (`afterfork`, `live`), not from here.

use crate::config::{Config, Isolation};
use crate::journal;
use crate::ledger::Ledger;
use crate::plan::Plan;
use crate::sys;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;

pub use crate::registry::SiteStats;

mod journal_file;
mod page;
mod prepared;
mod settings;
mod summary;
mod ticker;

use journal_file::{JOURNAL_TO_CREATE, NO_JOURNAL};
pub use page::premake_ledger;
use page::{new_ledger, PREMADE_LEDGER, SHARED_MAPPED};
pub use prepared::{probe_host, probe_plan, set_premade_netns, set_prepared_plan, with_namespaces};
use prepared::{reprobe, PLAN_STILL_VALID, PREPARED_PLAN};
pub use settings::{
    capture_start_cwd, check_early, initializing, settings, started_ns, switched_on,
};
use settings::{read_settings, INITIALIZING, JOURNAL_OK_AT_LOAD, SETTINGS};

pub struct Runtime {
    /// `None` when in vivo testing is off because of a bad configuration or an unusable journal.
    pub config: Option<Config>,
    pub host: String,
    /// The process whose pods these are: the one that built the runtime, or a forked child of
    /// it once it samples a call (`adopt_fork`).
    pid: AtomicI32,
    plan: OnceLock<Result<Plan, String>>,
    /// The plan probed again once the process left the mounts `plan` was made for.
    replan: OnceLock<Result<Plan, String>>,
    /// The journal's descriptor, `NO_JOURNAL`, or `JOURNAL_TO_CREATE` (`journal`).
    journal_fd: AtomicI32,
    /// The journal could not be created when first written: testing is off from then on.
    journal_failed: AtomicBool,
    /// The checked `INVITE_POD_DIR` (-1: no pod is kept).
    keep_fd: AtomicI32,
    /// The ledger, on a page shared with the supervisors (`ledger`).
    ledger: AtomicPtr<Ledger>,
    next_id: AtomicU32,
    /// The host's minor faults and finished pods at the last admission (copy-on-write charge).
    pub last_minor_faults: AtomicU64,
    pub last_pods_finished: AtomicU64,
    pub last_pod_seen_ns: AtomicU64,
    /// The pod path prefix of pods started here ("" in the host, "2/" in pod 2). Changed only
    /// in a freshly forked, single-threaded pod, so no lock (which a fork could leave held).
    prefix: AtomicPtr<String>,
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
static IN_POD: AtomicBool = AtomicBool::new(false);
/// How long the exit drain waited.
static DRAIN_NS: AtomicU64 = AtomicU64::new(0);

pub fn get() -> &'static Runtime {
    // The pure core is unit-tested without the process-wide runtime (which reads the
    // environment, opens the journal and registers exit and fork handlers).
    if cfg!(test) {
        panic!("a unit test started the global runtime");
    }
    RUNTIME.get_or_init(Runtime::init)
}

/// The runtime if it is built (by the library's constructor when testing is on, or by a
/// `ckpt()`), without building it: a sampled call may come from inside the program's allocator
/// with its lock held, where building would allocate through it.
pub fn built() -> Option<&'static Runtime> {
    RUNTIME.get()
}

pub fn in_pod() -> bool {
    IN_POD.load(Ordering::Relaxed)
}

impl Runtime {
    fn init() -> Runtime {
        INITIALIZING.store(true, Ordering::Relaxed);
        BUILT_BY.store(sys::getpid(), Ordering::Relaxed);
        let mut config = SETTINGS.get_or_init(read_settings).clone();
        let mut journal_fd = NO_JOURNAL;
        if let Some(c) = config.as_ref().filter(|c| c.enabled) {
            // Checked now (unless it passed at load), created by the first write (`journal`):
            // off the first pause.
            let at_load = JOURNAL_OK_AT_LOAD.load(Ordering::Relaxed);
            match if at_load {
                Ok(())
            } else {
                journal::check(&c.journal)
            } {
                Ok(()) => journal_fd = JOURNAL_TO_CREATE,
                Err(e) => {
                    eprintln!(
                        "invite: INVITE_JOURNAL: cannot use {}: {e}; in vivo testing is off",
                        c.journal.display()
                    );
                    config = None;
                }
            }
        }
        // Before any fork of the runtime's (`sys::fork`).
        sys::set_fork_via(config.as_ref().map_or(sys::ForkVia::Auto, |c| c.fork));
        let keep_fd = open_pod_dir(config.as_mut());
        let premade = PREMADE_LEDGER.swap(std::ptr::null_mut(), Ordering::AcqRel);
        let ledger = if premade.is_null() {
            new_ledger()
        } else {
            premade
        };
        probe_host();
        arm_exit();
        // SAFETY: `forked` only stores to an atomic.
        unsafe { sys::at_fork_child(forked) };
        // A fork waits for the journal's creation in progress (`journal_file`).
        journal_file::register_fork_handlers();
        INITIALIZING.store(false, Ordering::Relaxed);
        Runtime {
            config,
            host: sys::hostname(),
            pid: AtomicI32::new(sys::getpid()),
            plan: OnceLock::new(),
            replan: OnceLock::new(),
            journal_fd: AtomicI32::new(journal_fd),
            journal_failed: AtomicBool::new(false),
            keep_fd: AtomicI32::new(keep_fd),
            ledger: AtomicPtr::new(ledger),
            next_id: AtomicU32::new(0),
            prefix: AtomicPtr::new(std::ptr::null_mut()),
            last_minor_faults: AtomicU64::new(0),
            last_pods_finished: AtomicU64::new(0),
            last_pod_seen_ns: AtomicU64::new(0),
        }
    }

    /// The process whose pods these are (`pid` of records and summaries).
    pub fn pid(&self) -> i32 {
        self.pid.load(Ordering::Relaxed)
    }

    /// On a sampled call, a `ckpt()` or at exit: in a process forked by the host's own code (a
    /// worker), the runtime becomes the child's: its records and summaries carry the child's
    /// pid, its pods count on a ledger of its own (its slots, budget, queue and exit drain; the
    /// host's page stays mapped, shared with the host's supervisors, and unused here), and it
    /// writes periodic summaries of its own (the thread that wrote them did not survive the
    /// fork). Its counts started from zero at the fork (`counts`). Not in a pod.
    pub fn adopt_fork(&self) {
        self.start_ticker();
        if !FORKED.swap(false, Ordering::Relaxed) || in_pod() {
            return;
        }
        self.pid.store(sys::getpid(), Ordering::Relaxed);
        self.ledger.store(new_ledger(), Ordering::Relaxed);
        if EXITING.load(Ordering::Relaxed) {
            return;
        }
        if let Some(c) = self.config.as_ref().filter(|c| c.enabled) {
            if self.journal_fd() != NO_JOURNAL {
                // The runtime's thread did not survive the fork: asked for again (its duty is
                // registered already), it makes the ticker anew, owned by this process.
                ticker::start(c.summary_s);
            }
        }
    }

    /// On the first sampled call or `ckpt()`, not when the runtime is built (at load): the
    /// runtime's thread then creates the journal, and a program that drops root in `main` must
    /// find it its own. Stores only (a duty's maker, a flag): no allocation on a sampled call's
    /// path. Built by the exit handler (nothing was sampled before), its summary is the last, and
    /// no thread is asked for to write more.
    pub fn start_ticker(&self) {
        static STARTED: AtomicBool = AtomicBool::new(false);
        if EXITING.load(Ordering::Relaxed) || STARTED.swap(true, Ordering::Relaxed) {
            return;
        }
        if let Some(c) = self
            .config
            .as_ref()
            .filter(|c| c.enabled && self.journal_fd() != NO_JOURNAL)
        {
            ticker::start(c.summary_s);
        }
    }

    pub fn ledger(&self) -> &Ledger {
        // SAFETY: the pointer is a live MAP_SHARED page for the life of the process (replaced,
        // never unmapped, when a pod re-points its state).
        unsafe { &*self.ledger.load(Ordering::Relaxed) }
    }

    /// In a process of one of the host's pods (a supervisor, a waiting copy) that found the host
    /// gone: until when the host's pods may still run and be journaled. The exit drain's grace
    /// (`INVITE_DRAIN_MS`), from the host's end: the start of its exit drain, or, for a host that
    /// ended without it (`_exit`, a signal), the first time one of its pods' processes saw it gone.
    pub fn host_gone_until(&self) -> u64 {
        let drain_ns = self.config.as_ref().map_or(0, |c| c.drain_ms) * 1_000_000;
        let ledger = self.ledger();
        ledger
            .host_ended(sys::monotonic_ns())
            .saturating_add(drain_ns)
    }

    /// The journal's descriptor as it is now, for the lists of descriptors a fork keeps or
    /// closes (negative: none open in this process).
    pub fn journal_fd(&self) -> RawFd {
        self.journal_fd.load(Ordering::Acquire)
    }

    /// The kept-pods directory, when pods are kept.
    pub fn keep_fd(&self) -> Option<RawFd> {
        Some(self.keep_fd.load(Ordering::Relaxed)).filter(|fd| *fd >= 0)
    }

    /// The isolation plan, built once (the start-up probe). `Err` names the missing piece.
    ///
    /// The plan made at start-up is taken at load (`start::build_ahead`); a host that has since
    /// moved to another mount namespace or root gets one probed again once a fork of it found
    /// that (`plan_in_fork`; allocating, on that first pod only: a sampled call inside the
    /// program's allocator is not safe there).
    pub fn plan(&self) -> Result<&Plan, String> {
        let first = self.plan.get_or_init(|| {
            let prepared = PREPARED_PLAN
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            match prepared {
                Some((plan, still_valid)) if still_valid() => {
                    let _ = PLAN_STILL_VALID.set(still_valid);
                    plan
                }
                // Made before the process entered another mount namespace or root: probed
                // again, with the same namespaces.
                Some((Ok(stale), _)) => reprobe(&stale),
                _ => probe_plan().and_then(with_namespaces),
            }
        });
        // Looked at only once a fork of the host found it moved (`plan_in_fork`): a statx of
        // "/" is ~3.5 us, twice on every pause before.
        let plan = match (first, PLAN_STILL_VALID.get()) {
            (Ok(stale), Some(still_valid)) if self.ledger().moved() && !still_valid() => {
                self.replan.get_or_init(|| reprobe(stale))
            }
            _ => first,
        };
        plan.as_ref().map_err(Clone::clone)
    }

    /// In a pod's first process (a fork of the host: its root, mounts and credentials), the
    /// plan for its pod. The host's calls take the plan made at load for theirs without a system
    /// call (`Ledger::moved`); this process looks, and if the host has since moved to another
    /// mount namespace or root, it says so on the ledger (the host's next calls then look for
    /// themselves) and probes the plan again for its own pod (allocating: on its own pages).
    pub fn plan_in_fork(&self) -> Result<&Plan, String> {
        let moved = PLAN_STILL_VALID
            .get()
            .is_some_and(|still_valid| !still_valid());
        if moved {
            self.ledger().note_moved();
        }
        self.plan()
    }

    pub fn isolation(&self) -> Isolation {
        self.config.as_ref().map_or(Isolation::Pod, |c| c.isolation)
    }

    /// The next pod's id.
    pub fn next_pod_id(&self) -> u32 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// A pod's path (`"3"`, or `"2/1"` inside pod 2).
    pub fn pod_path(&self, id: u32) -> String {
        let p = self.prefix.load(Ordering::Acquire);
        // SAFETY: null or a leaked, never-freed String (set in `become_pod`).
        let prefix = unsafe { p.as_ref() }.map_or("", String::as_str);
        format!("{prefix}{id}")
    }

    /// In the test process of a new pod: re-point the runtime at the pod.
    pub fn become_pod(&self, path: &str) {
        IN_POD.store(true, Ordering::Relaxed);
        self.journal_fd.store(NO_JOURNAL, Ordering::Relaxed);
        self.keep_fd.store(-1, Ordering::Relaxed);
        // The host's page of counters was left shared (not copied) by the pod's setup: it goes.
        let host_page_mapped = SHARED_MAPPED.load(Ordering::Relaxed);
        let host_page = self.ledger.swap(new_ledger(), Ordering::Relaxed);
        if host_page_mapped {
            // SAFETY: the host's counter page, mapped by `new_shared`; `self.shared` points to
            // the new one now and this single-threaded pod holds no other pointer into it.
            unsafe { sys::unmap_page(host_page.cast(), sys::page_size()) };
        }
        self.next_id.store(0, Ordering::Relaxed);
        self.prefix.store(
            Box::into_raw(Box::new(format!("{path}/"))),
            Ordering::Release,
        );
    }

    /// In a parked live checkpoint (`live`): pods branched from it count on a page of their own
    /// (not against the host's concurrency and budget), are numbered 1, 2, 3 under `NAME/`, and
    /// are reaped by the checkpoint, whose copy of the host's reaper pipe is dropped.
    pub fn become_checkpoint(&self, name: &str) {
        // The runtime's own fork, not the program's: not a worker to adopt (`adopt_fork`).
        FORKED.store(false, Ordering::Relaxed);
        self.ledger.store(new_ledger(), Ordering::Relaxed);
        self.next_id.store(0, Ordering::Relaxed);
        self.prefix.store(
            Box::into_raw(Box::new(format!("{name}/"))),
            Ordering::Release,
        );
    }

    /// Append a line to the journal; a line it cannot take whole is counted in the summary's
    /// `lost`.
    pub fn write_line(&self, line: &str) {
        let fd = self.journal().unwrap_or(NO_JOURNAL);
        if let Err(e) = journal::append(fd, line) {
            if self.ledger().record_lost() {
                eprintln!("invite: journal write failed: {e}; the summary counts lost records");
            }
        }
    }
}

/// Open and check `INVITE_POD_DIR` when pods are to be kept; if it cannot be used, say so once
/// and keep nothing (testing goes on).
fn open_pod_dir(config: Option<&mut Config>) -> RawFd {
    let Some(c) = config.filter(|c| c.enabled && c.keep_pods != crate::config::Keep::None) else {
        return -1;
    };
    match crate::keep::open_dir(&c.pod_dir) {
        Ok(fd) => crate::ownfd::own(fd),
        Err(e) => {
            eprintln!(
                "invite: INVITE_POD_DIR: cannot keep pods in {}: {e}; no pod will be kept",
                c.pod_dir.display()
            );
            c.keep_pods = crate::config::Keep::None;
            -1
        }
    }
}

/// The runtime, if it was built or the program has sites (the summary counts their calls, and
/// lists those never called).
fn for_summary() -> Option<&'static Runtime> {
    RUNTIME.get().or_else(|| {
        (crate::registry::any() || sys::has_own_sites() || !sys::compiled_sites().is_empty())
            .then(get)
    })
}

/// Register the exit handler once: at load time when testing is on, else when the runtime is
/// built.
pub fn arm_exit() {
    static ARMED: AtomicBool = AtomicBool::new(false);
    if !ARMED.swap(true, Ordering::Relaxed) && !sys::at_exit_with_status(on_exit_with_status) {
        sys::at_exit(on_exit);
    }
}

/// Set when the exit handler runs.
static EXITING: AtomicBool = AtomicBool::new(false);
/// Set in the child of every fork (pods and supervisors included), until a sampled call of the
/// child adopts the runtime (`adopt_fork`).
static FORKED: AtomicBool = AtomicBool::new(false);
/// The process that built the runtime (its pods' group is its own to remove).
static BUILT_BY: AtomicI32 = AtomicI32::new(0);

extern "C" fn forked() {
    FORKED.store(true, Ordering::Relaxed);
}

extern "C" fn on_exit_with_status(status: libc::c_int, _: *mut libc::c_void) {
    exiting(Some(status));
}

extern "C" fn on_exit() {
    exiting(None);
}

/// The exit handler: in a pod, its test's end (`pod::test_exiting`); then, in the host and in a
/// pod that made pods of its own, their drain and the summary.
fn exiting(status: Option<i32>) {
    crate::pod::test_exiting(status);
    EXITING.store(true, Ordering::Relaxed);
    // For good: nothing after the exit handler starts is tested (a later handler's calls too).
    crate::inside::for_good();
    let Some(rt) = for_summary() else { return };
    rt.adopt_fork();
    rt.drain();
    if BUILT_BY.load(Ordering::Relaxed) == sys::getpid() {
        crate::podgroup::remove();
    }
    rt.write_summary();
}

/// Write a summary record now: per site, its calls, sampled calls, started tests and skips so
/// far. The runtime writes one at exit and every `INVITE_SUMMARY_S` seconds; call this before a
/// process ends in a way that skips exit handlers (`_exit`, a signal handler of its own). Does
/// nothing in a pod, before the runtime started, or when testing is off.
///
/// ```
/// invite::flush_summary();
/// ```
pub fn flush_summary() {
    if let Some(rt) = for_summary() {
        rt.write_summary();
    }
}
