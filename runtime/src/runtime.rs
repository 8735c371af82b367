//! The process-wide state of the runtime, built lazily on first use, and the exit handler that
//! drains running pods and writes the summary record.
//!
//! The host owns: the configuration, the journal descriptor, the site registry, the id counter,
//! and a shared page of counters that supervisors update (pods running, overhead spent). Inside a
//! pod the same state is re-pointed: ids restart at 1 under the pod's path, records travel to the
//! pod's supervisor instead of the journal file, and no site tests start.

use crate::config::{Config, Isolation};
use crate::journal;
use crate::plan::Plan;
use crate::site::Site;
use crate::sys;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// Counters shared (MAP_SHARED) between the host and its supervisors.
#[repr(C)]
pub struct Shared {
    /// Pods started and not yet finished (slots reserved by admission included).
    pub running: AtomicU32,
    /// Host pauses plus finished pods' CPU time, in nanoseconds.
    pub overhead_ns: AtomicU64,
    /// Finished pods and their total CPU time, for the estimate of a running pod's cost.
    pub pods_finished: AtomicU64,
    pub pod_cpu_ns: AtomicU64,
    /// The cost of one copy-on-write fault, measured once by the first supervisor (0: not yet).
    pub cow_fault_ns: AtomicU64,
    /// Records that could not be written to the journal (the summary's `lost`).
    pub lost: AtomicU64,
}

/// Per-site counters for the summary.
#[derive(Default)]
pub struct SiteStats {
    pub cycles_calls: AtomicU64,
    pub current_draw: AtomicU64,
    pub sampled: AtomicU64,
    pub started: AtomicU64,
    pub skipped_concurrency: AtomicU64,
    pub skipped_budget: AtomicU64,
    pub skipped_in_pod: AtomicU64,
    pub skipped_cgroup: AtomicU64,
    /// The `Self` type of a method's site, once known.
    pub owner: OnceLock<&'static str>,
}

pub struct Runtime {
    /// `None` when in vivo testing is off because of a bad configuration or an unusable journal.
    pub config: Option<Config>,
    pub host: String,
    pub pid: i32,
    pub sites: Mutex<Vec<(&'static Site, &'static SiteStats)>>,
    plan: OnceLock<Result<Plan, String>>,
    journal_fd: AtomicI32,
    /// The checked `INVITE_POD_DIR` (-1: no pod is kept).
    keep_fd: AtomicI32,
    shared: AtomicPtr<Shared>,
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
static START_CWD: OnceLock<PathBuf> = OnceLock::new();

/// Remember the working directory at start-up (default journal and pod paths are relative to it).
extern "C" fn capture_start_cwd() {
    if let Ok(cwd) = std::env::current_dir() {
        let _ = START_CWD.set(cwd);
    }
    // While the process is small: warm pods' blanks come from this helper, not a fork of the host.
    crate::warm::start_helper();
}

#[used]
#[link_section = ".init_array"]
static CAPTURE_CWD: extern "C" fn() = capture_start_cwd;

pub fn get() -> &'static Runtime {
    RUNTIME.get_or_init(Runtime::init)
}

pub fn in_pod() -> bool {
    IN_POD.load(Ordering::Relaxed)
}

impl Runtime {
    fn init() -> Runtime {
        let cwd = START_CWD
            .get()
            .cloned()
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("/"));
        let mut config = if sys::set_id() {
            // A setuid or setgid program: its working directory is its caller's, where it would
            // create files the caller cannot remove, and secure_getenv hides every INVITE_*
            // variable, so nothing it may trust says where a journal may go: testing is off.
            eprintln!(
                "invite: a setuid/setgid process reads no INVITE_* variable and writes no \
                 journal: in vivo testing is off"
            );
            None
        } else {
            match Config::from_env(sys::secure_getenv_os, &cwd) {
                Ok(c) => Some(c),
                Err(e) => {
                    eprintln!("{e}");
                    None
                }
            }
        };
        let mut journal_fd = -1;
        if let Some(c) = config.as_ref().filter(|c| c.enabled) {
            match journal::open(&c.journal) {
                Ok(fd) => journal_fd = crate::ownfd::own(fd),
                Err(e) => {
                    eprintln!(
                        "invite: INVITE_JOURNAL: cannot use {}: {e}; in vivo testing is off",
                        c.journal.display()
                    );
                    config = None;
                }
            }
        }
        let keep_fd = open_pod_dir(config.as_mut());
        let shared = new_shared();
        crate::pod::read_fault_injection();
        crate::pod::probe_kernel();
        sys::at_exit(on_exit);
        Runtime {
            config,
            host: sys::hostname(),
            pid: sys::getpid(),
            sites: Mutex::new(Vec::new()),
            plan: OnceLock::new(),
            journal_fd: AtomicI32::new(journal_fd),
            keep_fd: AtomicI32::new(keep_fd),
            shared: AtomicPtr::new(shared),
            next_id: AtomicU32::new(0),
            prefix: AtomicPtr::new(std::ptr::null_mut()),
            last_minor_faults: AtomicU64::new(0),
            last_pods_finished: AtomicU64::new(0),
            last_pod_seen_ns: AtomicU64::new(0),
        }
    }

    pub fn shared(&self) -> &Shared {
        // SAFETY: the pointer is a live MAP_SHARED page for the life of the process (replaced,
        // never unmapped, when a pod re-points its state).
        unsafe { &*self.shared.load(Ordering::Relaxed) }
    }

    pub fn journal_fd(&self) -> RawFd {
        self.journal_fd.load(Ordering::Relaxed)
    }

    /// The kept-pods directory, when pods are kept.
    pub fn keep_fd(&self) -> Option<RawFd> {
        Some(self.keep_fd.load(Ordering::Relaxed)).filter(|fd| *fd >= 0)
    }

    /// The isolation plan, built once (the start-up probe). `Err` names the missing piece.
    pub fn plan(&self) -> Result<&Plan, String> {
        self.plan
            .get_or_init(Plan::build)
            .as_ref()
            .map_err(Clone::clone)
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
        self.journal_fd.store(-1, Ordering::Relaxed);
        self.keep_fd.store(-1, Ordering::Relaxed);
        // The host's page of counters was left shared (not copied) by the pod's setup: it goes.
        let host_page_mapped = SHARED_MAPPED.load(Ordering::Relaxed);
        let host_page = self.shared.swap(new_shared(), Ordering::Relaxed);
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
        crate::reap::forget();
        crate::podgroup::forget();
    }

    /// In a parked live checkpoint (`live`): pods branched from it count on a page of their own
    /// (not against the host's concurrency and budget), are numbered 1, 2, 3 under `NAME/`, and
    /// are reaped by the checkpoint, whose copy of the host's reaper pipe is dropped.
    pub fn become_checkpoint(&self, name: &str) {
        self.shared.store(new_shared(), Ordering::Relaxed);
        self.next_id.store(0, Ordering::Relaxed);
        self.prefix.store(
            Box::into_raw(Box::new(format!("{name}/"))),
            Ordering::Release,
        );
        crate::reap::forget();
        crate::warm::forget();
    }

    /// Write a finished test's record: to the journal file in the host, or to the pod's
    /// supervisor when this process is itself a pod (which relays it, see `relay`). A record the
    /// journal cannot take whole is counted in the summary's `lost`.
    pub fn write_test(&self, rec: &journal::TestRecord) {
        if self.journal_fd() >= 0 {
            self.write_line(&rec.to_line());
        } else if in_pod() {
            crate::pod::relay_record(&crate::relay::encode(rec));
        }
    }

    fn write_line(&self, line: &str) {
        if let Err(e) = journal::append(self.journal_fd(), line) {
            if self.shared().lost.fetch_add(1, Ordering::Relaxed) == 0 {
                eprintln!("invite: journal write failed: {e}; the summary counts lost records");
            }
        }
    }

    /// Wait up to `INVITE_DRAIN_MS` for running pods to finish.
    pub fn drain(&self) {
        let drain_ms = self.config.as_ref().map_or(0, |c| c.drain_ms);
        let deadline = sys::monotonic_ns() + drain_ms * 1_000_000;
        while self.shared().running.load(Ordering::Acquire) > 0 && sys::monotonic_ns() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    pub fn write_summary(&self) {
        if in_pod() || self.journal_fd() < 0 {
            return;
        }
        let sites = self.sites.lock().unwrap_or_else(|e| e.into_inner());
        let rows: Vec<journal::SiteSummary> = sites
            .iter()
            .map(|(site, st)| {
                let c = site.countdown.load(Ordering::Relaxed).max(0) as u64;
                let in_cycle = st.current_draw.load(Ordering::Relaxed).saturating_sub(c);
                journal::SiteSummary {
                    site: format!("{}:{}", site.file(), site.line),
                    function: crate::site::qualified(site.function(), st.owner.get().copied()),
                    test: site.test().to_string(),
                    calls: st.cycles_calls.load(Ordering::Relaxed) + in_cycle,
                    sampled: st.sampled.load(Ordering::Relaxed),
                    started: st.started.load(Ordering::Relaxed),
                    skipped_concurrency: st.skipped_concurrency.load(Ordering::Relaxed),
                    skipped_budget: st.skipped_budget.load(Ordering::Relaxed),
                    skipped_in_pod: st.skipped_in_pod.load(Ordering::Relaxed),
                    skipped_cgroup: st.skipped_cgroup.load(Ordering::Relaxed),
                }
            })
            .collect();
        let lost = self.shared().lost.load(Ordering::Relaxed);
        let line = journal::summary_line(journal::now_ns(), &self.host, self.pid, lost, &rows);
        self.write_line(&line);
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

/// Whether the current page of counters is a mapping of its own (not the fallback box).
static SHARED_MAPPED: AtomicBool = AtomicBool::new(false);

fn new_shared() -> *mut Shared {
    match sys::map_shared_page(sys::page_size()) {
        Ok(p) => {
            SHARED_MAPPED.store(true, Ordering::Relaxed);
            p.cast()
        }
        // Without a shared page supervisors cannot report back; a private page keeps the
        // counters coherent within the host at least.
        Err(_) => {
            SHARED_MAPPED.store(false, Ordering::Relaxed);
            Box::into_raw(Box::new(Shared {
                running: AtomicU32::new(0),
                overhead_ns: AtomicU64::new(0),
                pods_finished: AtomicU64::new(0),
                pod_cpu_ns: AtomicU64::new(0),
                cow_fault_ns: AtomicU64::new(0),
                lost: AtomicU64::new(0),
            }))
        }
    }
}

extern "C" fn on_exit() {
    let Some(rt) = RUNTIME.get() else { return };
    rt.drain();
    crate::podgroup::remove();
    rt.write_summary();
}

/// `invite_flush_summary()`.
pub fn flush_summary() {
    if let Some(rt) = RUNTIME.get() {
        rt.write_summary();
    }
}
