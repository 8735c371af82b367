//! The pod: the isolation steps, run in the child after the fork, in order. Each step has a name;
//! a step that fails stops the pod before user code runs, and the supervisor journals the step
//! and the OS error as outcome `error`.
//!
//! Process tree (isolation `pod`, a cold pod; a warm pod is the host's own child and joins a
//! mount namespace prepared by `prepare_blank`, see `warm`):
//!
//! ```text
//! host ──fork──▶ supervisor ──fork──▶ test (PID 1 of the pod)
//!                 host PID ns,          new PID/mount/IPC/UTS namespaces, the shared
//!                 private mount ns      empty network namespace; chroot into the overlay
//!                 with the scratch
//! ```
//!
//! Steps, checkable against the isolation table in README.md:
//!
//! | where | step |
//! |---|---|
//! | supervisor | join the user namespace (not root), join the empty network namespace |
//! | supervisor | clone the host's files open for writing where the file system has reflinks (`clones`) |
//! | supervisor | unshare mount, IPC, UTS, PID namespaces; make every mount private |
//! | supervisor | mount the scratch tmpfs; overlay every mount (`nodev`; read-only ones read-only); minimal /dev; sysfs bound read-only with its OCI masks; the clones bound over their paths |
//! | test | OOM score (through the host's /proc); fresh /proc, pid_max through it, then read-only, OCI masks; chroot into the overlay, same working directory |
//! | test | as PID 1, report default-action signals (PID 1 would ignore them) |
//! | test | new session; stdin /dev/null, stdout/stderr to the capture pipe |
//! | test | send the state of the host's files open for writing at the checkpoint (`files`) |
//! | test | reopen inherited files by path in the overlay (those open for writing read-only, until their first write: `lazy`); cut sockets, pipes, event fds |
//! | test | remap every MAP_SHARED mapping private with its contents |
//! | test | limits (CPU, address space, processes, core 0), OOM first |
//! | test | a fresh session keyring; no_new_privs, drop every capability (effective, permitted, inheritable, ambient) |
//! | test | the system call filter (`seccomp`), last, with the lazy copy-up traps in it if any file is lazy (`lazy`); where the pod sees a host's tree bound whole, with a listener for `connect`, named to the supervisor (`unotify`) |
//! | test | a warm test rings the watcher's doorbell, set up at last (or failed), then closes it |
//! | test | lowest priority (nice 19, `SCHED_IDLE`), the very last step: the setup is not kept waiting behind the machine's other work, the test's first line is not run above it |

mod bpf;
mod clones;
mod dev;
mod fds;
mod files;
mod freeze;
mod inert;
mod lazy;
mod limits;
mod mounts;
mod ns;
mod pid1;
mod scratch;
mod seccomp;
mod shm;
pub use shm::zero_in_pods;
mod stdio;
mod step;
mod unotify;

pub use fds::{scan as scan_fds, FdPlan};
pub use files::Watch;
pub use inert::{make as make_inert, plan as plan_inert, Inert};
pub use limits::oom_first;
pub use ns::make_namespaces;
pub use seccomp::plan as seccomp_filter;
pub(crate) use step::{fault_injected, Step};
pub use step::{read_fault_injection, SetupError};

use crate::config::Isolation;
use crate::plan::Plan;
use crate::sys;
use std::io;
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::sync::atomic::Ordering;

/// The supervisor's ends of the pod's channels, and the pod's.
pub struct Channels {
    pub status_r: RawFd,
    pub status_w: RawFd,
    pub out_r: RawFd,
    pub out_w: RawFd,
}

impl Channels {
    pub fn new() -> io::Result<Channels> {
        let (status_r, status_w) = sys::pipe()?;
        let (out_r, out_w) = sys::pipe()?;
        // Their owners across the forks are the supervisor and the test (`supervise`).
        Ok(Channels {
            status_r: status_r.into_raw_fd(),
            status_w: status_w.into_raw_fd(),
            out_r: out_r.into_raw_fd(),
            out_w: out_w.into_raw_fd(),
        })
    }
}

/// What the pod's test needs to know.
pub struct PodSpec<'a> {
    pub isolation: Isolation,
    pub plan: Option<&'a Plan>,
    pub fds: &'a FdPlan,
    pub cwd: Option<std::ffi::CString>,
    pub timeout_ms: u64,
    /// The host's signal dispositions and mask, which the test gets back (`None`: the test
    /// inherited them untouched, as a warm test does).
    pub signals: Option<&'a sys::SignalState>,
    /// The runtime's own shared page, which the pod unmaps instead of copying.
    pub own_page: usize,
}

/// Which process returned from `build`.
pub enum Side {
    /// The supervisor, with its direct child (the test) and the scratch whose upper layers list
    /// the changed files.
    Supervisor {
        child: libc::pid_t,
        scratch: Option<Scratch>,
    },
    /// The test process, fully isolated.
    Test,
}

pub use clones::{host_is_writing_clonable_files, look_for_clonable_writes};
pub use mounts::{has_proc, pid_max_per_ns, probe_kernel, root_of};
pub use scratch::Scratch;

/// Build the pod below the calling supervisor. Returns in the supervisor and in the test.
pub fn build(spec: &PodSpec, ch: &Channels) -> Result<Side, SetupError> {
    let Some(plan) = spec.plan.filter(|_| spec.isolation == Isolation::Pod) else {
        // SAFETY: the supervisor is single-threaded (a fork of one host thread, which started
        // no thread since); the child becomes the test (`in_test`), then runs the host's code
        // as a pod, the design's trade-off (README, limitations: only the calling thread).
        return match unsafe { sys::fork() }.step("fork the test")? {
            sys::Forked::Parent(child) => Ok(Side::Supervisor {
                child,
                scratch: None,
            }),
            sys::Forked::Child => {
                set_report_fd(ch.status_w);
                in_test(|| test_steps(spec, ch, false, None, &spec.fds.watch));
                Ok(Side::Test)
            }
        };
    };
    if let Some(userns) = plan.userns_fd {
        sys::setns(userns, libc::CLONE_NEWUSER).step("join the user namespace")?;
    }
    sys::setns(plan.netns_fd, libc::CLONE_NEWNET).step("join the network namespace")?;
    sys::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS | libc::CLONE_NEWPID)
        .step("unshare mount, IPC, UTS and PID namespaces")?;
    // First, as close to the fork as can be: the files the host is writing, as they are (in the
    // mount namespace they are bound in: a clone is bound from the mount it was made on).
    let clones = clones::take(&spec.fds.watch);
    limits::bound_ipc(c"/proc")?;
    let mut scratch = mounts::prepare(plan)?;
    scratch.clones = match clones {
        Some(c) => clones::bind(c, &scratch.root.to_string_lossy())?,
        None => None,
    };
    let watch = match &scratch.clones {
        Some(c) => spec.fds.watch.cloned(c.consistent, &c.late),
        None => spec.fds.watch.clone(),
    };
    // SAFETY: as above, the supervisor is single-threaded.
    match unsafe { sys::fork() }.step("fork the test")? {
        sys::Forked::Parent(child) => Ok(Side::Supervisor {
            child,
            scratch: Some(scratch),
        }),
        sys::Forked::Child => {
            set_report_fd(ch.status_w);
            in_test(|| {
                sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong)
                    .step("set the parent-death signal")?;
                mounts::enter_root(plan, &scratch, spec.cwd.as_deref())?;
                test_steps(spec, ch, true, None, &watch)
            });
            Ok(Side::Test)
        }
    }
}

/// In the builder of warm pods: new mount, IPC and UTS namespaces, the mounts prepared as a cold
/// pod's would be, and the IPC namespace's POSIX message queues mounted at `MQUEUE_DIR` of the
/// scratch (outside the pod root) so the watcher can see whether a pod left one behind.
pub fn prepare_blank(plan: &Plan) -> Result<Scratch, SetupError> {
    sys::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS)
        .step("unshare mount, IPC and UTS namespaces")?;
    limits::bound_ipc(c"/proc")?;
    let scratch = mounts::prepare(plan)?;
    let mq = sys::cstring(&format!(
        "{}/{}",
        plan.scratch_mountpoint,
        MQUEUE_DIR.to_string_lossy()
    ))
    .step("path with a NUL byte")?;
    sys::mkdir(&mq, 0o700).step("create the message queue directory")?;
    sys::mount(
        Some(c"mqueue"),
        &mq,
        Some(c"mqueue"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        None,
    )
    .step("mount the message queues")?;
    Ok(scratch)
}

/// Where a blank's scratch shows its IPC namespace's POSIX message queues.
pub const MQUEUE_DIR: &std::ffi::CStr = c"mq";

/// What a warm test enters: a mount namespace built ahead of time with the pod root at `root`.
pub struct WarmEntry<'a> {
    pub mnt: RawFd,
    pub ipc: RawFd,
    pub uts: RawFd,
    pub root: &'a std::ffi::CStr,
    pub has_proc: bool,
    pub netns: RawFd,
    /// The host's pidfd: readable once the host has exited.
    pub host_pidfd: RawFd,
    /// The watcher's doorbell, rung once the namespaces are entered.
    pub doorbell: RawFd,
}

/// In the test process of a warm pod (the host's own child, PID 1 of a new PID namespace): die
/// with the host, join the prepared mount namespace (this pod is the only one in it until it
/// ends), new IPC and UTS namespaces, the shared network namespace, a fresh /proc, then the
/// steps of every test. A failing step is reported and the process exits before user code runs.
pub fn enter_warm(spec: &PodSpec, ch: &Channels, w: &WarmEntry) {
    set_report_fd(ch.status_w);
    DOORBELL.store(w.doorbell, Ordering::Relaxed);
    in_test(|| {
        sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong)
            .step("set the parent-death signal")?;
        if sys::poll_in(&[w.host_pidfd], 0, &mut [0]).unwrap_or(0) > 0 {
            sys::exit_now(0); // the host died before the parent-death signal was armed
        }
        // As close to the fork as can be, in the host's mount namespace, where the paths are
        // the host's: the files the host is writing, as they are.
        let clones = clones::take(&spec.fds.watch).and_then(|mut c| c.stage().then_some(c));
        sys::setns(w.mnt, libc::CLONE_NEWNS).step("join the pod's mount namespace")?;
        if clones.is_some() {
            // The clones' binds must die with this pod, not stay in the blank for the next.
            sys::unshare(libc::CLONE_NEWNS).step("unshare the pod's mount namespace")?;
        }
        sys::setns(w.uts, libc::CLONE_NEWUTS).step("join the pod's UTS namespace")?;
        sys::setns(w.ipc, libc::CLONE_NEWIPC).step("join the pod's IPC namespace")?;
        if !sys::sysv_ipc_empty() {
            // An earlier pod of this blank left SysV objects: a fresh namespace, and the
            // watcher drops the blank afterwards.
            sys::unshare(libc::CLONE_NEWIPC).step("unshare the IPC namespace")?;
            limits::bound_ipc(c"/proc")?;
            report_frame(b'D', b"");
        }
        sys::setns(w.netns, libc::CLONE_NEWNET).step("join the network namespace")?;
        // What goes through /proc is done here, through the host's /proc (still reachable before
        // chroot, its entries long made) rather than the pod's fresh one (each entry made anew):
        // these files act on the calling task and its PID namespace, whichever /proc names them.
        // (Without a host /proc there, they happen after chroot as in a cold test.) pid_max is
        // written through the fresh one (`enter_root_at`).
        let done = shm::privatize(spec.own_page).ok();
        if done.is_some() {
            limits::oom_first();
        }
        // This pod's /proc goes on top of those of the blank's earlier pods (detaching them
        // would wait for an RCU grace period, ~150 µs here; the stock bounds the stack).
        let plan = spec.plan.ok_or(SetupError {
            step: "enter the pod root",
            err: io::Error::from_raw_os_error(libc::EINVAL),
        })?;
        let clones = match clones {
            Some(c) => clones::bind(c, &w.root.to_string_lossy())?,
            None => None,
        };
        let watch = match &clones {
            Some(c) => {
                clones::remember(c);
                spec.fds.watch.cloned(c.consistent, &c.late)
            }
            None => spec.fds.watch.clone(),
        };
        mounts::enter_root_at(
            plan,
            w.root,
            w.has_proc,
            done.is_none(),
            spec.cwd.as_deref(),
        )?;
        test_steps(spec, ch, true, done, &watch)
    });
}

/// Run setup steps in a child: on failure, tell the supervisor which step failed and exit.
fn in_test<T>(steps: impl FnOnce() -> Result<T, SetupError>) -> T {
    match steps() {
        Ok(t) => t,
        Err(e) => {
            report_frame(b'E', e.to_string().as_bytes());
            ring_doorbell();
            sys::exit_now(127)
        }
    }
}

pub fn tv_ns(tv: libc::timeval) -> u64 {
    tv.tv_sec as u64 * 1_000_000_000 + tv.tv_usec as u64 * 1_000
}

/// The test's own steps, after init has entered the pod's root.
/// `done`: the address-space size when the /proc steps (shared memory, pid_max, OOM score) are
/// done already (a warm test). `watch`: the host's files open for writing at the checkpoint.
fn test_steps(
    spec: &PodSpec,
    ch: &Channels,
    isolated: bool,
    done: Option<u64>,
    watch: &Watch,
) -> Result<(), SetupError> {
    if let Some(signals) = spec.signals {
        sys::restore_signal_state(signals);
    }
    // A session of its own: out of the host's process group, without its terminal, and (where
    // the kernel has scheduler autogroups) in a CPU group of its own, which keeps a pod's fork
    // bomb from starving the pods beside it. That group costs its way in ~20 us of CPU and, on a
    // busy machine, ~70 us of waiting for the CPU (the test is placed anew among the runnable
    // tasks); a process group of its own (setpgid + TIOCNOTTY) was tried and made the rogue
    // tests of admission.rs time out.
    sys::setsid();
    let null = sys::open(c"/dev/null", libc::O_RDWR | libc::O_CLOEXEC, 0).step("open /dev/null")?;
    stdio::purge_host_c_output();
    // SAFETY: the test is a single-threaded fork before any of its code runs; its standard
    // streams and inherited descriptors are its own to replace (and, below, to close but what it
    // keeps).
    unsafe {
        sys::dup2(null.as_raw_fd(), 0).step("stdin from /dev/null")?;
        sys::dup2(ch.out_w, 1).step("stdout to the capture pipe")?;
        sys::dup2(ch.out_w, 2).step("stderr to the capture pipe")?;
    }
    let mut keep = spec.fds.kept();
    let mut lazy = Vec::new();
    if isolated {
        // Before any code of the test's: what the host's files were at the checkpoint.
        report_frame(b'F', &watch.encode());
        crate::podgroup::join();
        let no_dgram = spec.plan.is_some_and(|p| p.seccomp.notify);
        let (held, lazies) = fds::apply(spec.fds, null.as_raw_fd(), watch, no_dgram)?;
        keep.extend(held);
        lazy = lazies;
    }
    drop(null);
    keep.push(ch.status_w);
    keep.push(DOORBELL.load(Ordering::Relaxed));
    // SAFETY: see above.
    unsafe { sys::close_all_except(3, &keep) };
    if isolated {
        pid1::report_default_signals(spec.signals).step("install PID 1 signal reporting")?;
        let address_space = match done {
            Some(size) => size,
            None => shm::privatize(spec.own_page)?,
        };
        limits::apply(spec.timeout_ms, address_space)?;
        sys::join_fresh_session_keyring().step("join a fresh session keyring")?;
        sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1).step("set no_new_privs")?;
        sys::drop_capabilities().step("drop capabilities")?;
        if let Some(plan) = spec.plan {
            let filter = lazy::filter(lazy, &spec.fds.lazy_code, &plan.seccomp);
            let listener = seccomp::install(&filter, plan.seccomp.notify)
                .step("install the system call filter")?;
            if let Some(l) = listener {
                unotify::announce(l);
            }
        }
    }
    ring_doorbell();
    // Last, right before the test's first line (the filters allow it).
    limits::lower_priority();
    Ok(())
}

static REPORT_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// A warm test's doorbell (the watcher's eventfd), held through its setup and rung at its end,
/// or at a failed step: the watcher, which wakes to pick the pod up, takes no CPU from the setup
/// (it did, rung before; a pod that dies without ringing is picked up at the watcher's next
/// wake-up). Closed once rung.
static DOORBELL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

fn ring_doorbell() {
    let fd = DOORBELL.swap(-1, Ordering::Relaxed);
    if fd >= 0 {
        sys::ring(fd);
        sys::close(fd);
    }
}

fn set_report_fd(fd: RawFd) {
    REPORT_FD.store(fd, std::sync::atomic::Ordering::Relaxed);
}

/// In a pod: the descriptor on which it reports to its supervisor (-1 elsewhere).
pub fn report_fd() -> RawFd {
    REPORT_FD.load(std::sync::atomic::Ordering::Relaxed)
}

fn report_frame(tag: u8, payload: &[u8]) {
    report_frame_on(
        REPORT_FD.load(std::sync::atomic::Ordering::Relaxed),
        tag,
        payload,
    );
}

/// From a signal handler: the test died of `sig` (see `pid1`). One `write` of a fixed frame on
/// the stack: async-signal-safe.
pub fn report_signal(sig: libc::c_int) {
    let fd = REPORT_FD.load(std::sync::atomic::Ordering::Relaxed);
    let b = (sig as u32).to_le_bytes();
    let frame = [b'K', 4, 0, 0, 0, b[0], b[1], b[2], b[3]];
    if fd >= 0 {
        let _ = sys::write(fd, &frame);
    }
}

/// From a signal handler: a note for the record (at most 128 bytes). One `write` of a frame on
/// the stack: async-signal-safe.
pub fn report_note(note: &[u8]) {
    let fd = REPORT_FD.load(std::sync::atomic::Ordering::Relaxed);
    let note = &note[..note.len().min(128)];
    let mut frame = [0u8; 133];
    frame[0] = b'N';
    frame[1..5].copy_from_slice(&(note.len() as u32).to_le_bytes());
    frame[5..5 + note.len()].copy_from_slice(note);
    if fd >= 0 {
        let _ = sys::write(fd, &frame[..5 + note.len()]);
    }
}

/// One frame on the status pipe: tag, little-endian length, payload; one `write`.
pub fn report_frame_on(fd: RawFd, tag: u8, payload: &[u8]) {
    if fd < 0 {
        return;
    }
    let mut buf = Vec::with_capacity(5 + payload.len());
    push_frame(&mut buf, tag, payload);
    let _ = sys::write_all(fd, &buf);
}

/// A frame appended to `buf`: tag, little-endian length, payload.
fn push_frame(buf: &mut Vec<u8>, tag: u8, payload: &[u8]) {
    buf.push(tag);
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(payload);
}

/// In the pod, right before the test's first instruction: `rust` pods first make sure of Rust's
/// `stdout` (see `stdio`); then the start is stamped (`S`), from which the test's own time runs
/// and the supervisor looks for deadlocks. A pod that ends with `exit()` (a `ckpt()` pod's way)
/// is seen out by the runtime's exit handler (`test_exiting`), registered when the runtime was
/// built: registering one here would take the C library's exit-handler lock, which another host
/// thread may have held at the fork (in `dlopen`, `dlclose`, `atexit`), for ever.
pub fn begin_test(rust: bool) {
    if rust {
        stdio::take_rust_stdout();
    }
    BEGAN.store(sys::getpid(), Ordering::Relaxed);
    report_frame(b'S', &sys::monotonic_ns().to_le_bytes());
}

/// The process whose test began (`begin_test`), 0 before: a process the test forks inherits it,
/// and its own `exit()` says nothing of the test's.
static BEGAN: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// In the runtime's exit handler, in a pod whose test began and now calls `exit(status)`: stamp
/// its end (`T`), say the status (`X`: its verdict, should a handler after this one never return)
/// and flush what it printed (C stdio flushes only after the last handler). The handlers after
/// this one (registered before the runtime was built: the libraries' finalizers) may wait for a
/// lock another host thread held at the fork: the dynamic linker's, which the direct fork leaves
/// held where a thread was loading or unloading a library (`_dl_fini` takes it). `status`: `None`
/// where the C library does not give it.
pub fn test_exiting(status: Option<i32>) {
    if BEGAN.swap(0, Ordering::Relaxed) != sys::getpid() {
        return;
    }
    clones::report_changes();
    // One write for both frames (each write wakes the supervisor).
    let mut frames = Vec::with_capacity(2 * 5 + 8 + 4);
    push_frame(&mut frames, b'T', &sys::monotonic_ns().to_le_bytes());
    if let Some(s) = status {
        push_frame(&mut frames, b'X', &s.to_le_bytes());
    }
    let _ = sys::write_all(report_fd(), &frames);
    stdio::flush_test_output();
}

/// End the test in this pod with a verdict. Never returns. The end is stamped (`T`) and the
/// verdict sent before the test's buffered output is flushed: a flush that cannot finish leaves
/// the verdict standing (see `stdio` for which locks it may take).
pub fn end_test(passed: bool, message: Option<&str>) -> ! {
    report_frame(b'T', &sys::monotonic_ns().to_le_bytes());
    let mut payload = vec![passed as u8];
    if let Some(m) = message {
        payload.extend_from_slice(m.as_bytes());
    }
    if let Some(note) = stdio::left_unflushed() {
        report_frame(b'N', note.as_bytes());
    }
    clones::report_changes();
    report_frame(b'V', &payload);
    stdio::flush_test_output();
    sys::exit_now(0)
}

/// A record of a pod nested in this one (`relay::encode`), sent to this pod's supervisor.
pub fn relay_record(payload: &[u8]) {
    report_frame(b'R', payload);
}
