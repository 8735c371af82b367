//! Supervising warm pods from the watcher thread: what a cold pod's supervisor process does, for
//! tests that are the host's own children. Each pod is watched through its pidfd and the read
//! ends of its two pipes; the loop itself is `reap`'s.

use super::orphan;
use super::stock::{self, Stock};
use crate::config::Keep;
use crate::deadline::{Deadline, Due};
use crate::deadlock;
use crate::ownfd::Own;
use crate::record::{self, read_frames, read_output, Ending, PodInfo};
use crate::runtime::{self, Runtime};
use crate::sys;
use std::os::fd::{AsFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

/// Pods started by the host and not yet picked up by the watcher (more than blanks can exist).
struct Reg {
    pid: AtomicI32,
    slot: AtomicU32,
    id: AtomicU32,
    t0: AtomicU64,
}

static REGS: [Reg; 2 * stock::MAX_BLANKS] = [const {
    Reg {
        pid: AtomicI32::new(0),
        slot: AtomicU32::new(0),
        id: AtomicU32::new(0),
        t0: AtomicU64::new(0),
    }
}; 2 * stock::MAX_BLANKS];

/// In the host, right after the fork: hand the pod to the watcher (no lock, no allocation).
pub fn register(pid: libc::pid_t, slot: usize, id: u32, t0: u64) {
    for r in &REGS {
        if r.pid
            .compare_exchange(0, -1, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            r.slot.store(slot as u32, Ordering::Relaxed);
            r.id.store(id, Ordering::Relaxed);
            r.t0.store(t0, Ordering::Relaxed);
            r.pid.store(pid, Ordering::Release);
            return;
        }
    }
}

/// The first frame of a warm test that builds its pod cold instead (its host moved since
/// start-up, `super::build_cold_instead`): it supervises that pod and writes its record itself;
/// the watcher only reaps it, and puts its blank, untouched, back.
pub const WENT_COLD: u8 = b'X';

/// How long the watcher looks for a pod the host took a blank for (`registration_due`).
const REGISTRATION_NS: u64 = 2_000_000_000;

/// The watcher's first and longest look for a pod that never rang (`Watcher::backstop`).
const BACKSTOP_MIN_MS: i32 = 200;
const BACKSTOP_MAX_MS: i32 = 3_200;

/// How long a new pod's pipes stay out of the poll set.
const QUIET_NS: u64 = 5_000_000;

/// One running warm pod.
struct Pod {
    pid: libc::pid_t,
    /// `None`: the host's own wait() reaped it first.
    pidfd: Option<Own>,
    slot: usize,
    id: u32,
    t0: u64,
    info: Option<PodInfo>,
    ending: Ending,
    frames: Vec<u8>,
    out_r: RawFd,
    st_r: RawFd,
    out_open: bool,
    st_open: bool,
    exited: bool,
    /// Where this pod's descriptors are in the poll set: the first (its pidfd) and how many.
    polled: (usize, usize),
    /// Looks for a deadlock, from the test's start on.
    watch: Option<deadlock::Watch>,
    /// When the test started (its `S` stamp, clamped), from which its deadline runs.
    test_t0: Option<u64>,
    /// Whether the builder was told this pod is over (`orphan`).
    told_over: bool,
}

/// The watcher's state for warm pods.
pub struct Watcher {
    stock: Option<Stock>,
    /// Where the doorbell and the builder's socket are in the poll set.
    polled: (usize, Option<usize>),
    pods: Vec<Pod>,
    keep: Option<(i32, Keep)>,
    keep_opened: bool,
    /// Since when a blank was taken for a pod not registered yet (`registration_due`).
    unregistered_since: Option<u64>,
    /// The next look while nothing happens (`backstop`).
    backstop_ms: i32,
    /// The waiting copies that will borrow blanks (`lend`).
    lender: super::lend::Lender,
}

impl Default for Watcher {
    fn default() -> Self {
        Self::new()
    }
}

impl Watcher {
    pub fn new() -> Watcher {
        Watcher {
            stock: None,
            polled: (0, None),
            pods: Vec::new(),
            keep: None,
            keep_opened: false,
            unregistered_since: None,
            backstop_ms: BACKSTOP_MIN_MS,
            lender: Default::default(),
        }
    }

    /// Pick up new pods, keep the stock full, and list what to poll. Returns the poll timeout
    /// this side needs (the nearest deadline), in milliseconds.
    pub fn prepare(&mut self, fds: &mut Vec<RawFd>) -> Option<i32> {
        let rt = runtime::get();
        let w = super::get(rt, rt.plan().ok()?)?;
        if self.stock.is_none() {
            self.stock = Some(Stock::new(w.target));
        }
        // Waiters that took a blank themselves first: registered as pods, picked up next.
        self.lender.take_in();
        self.pick_up();
        self.stock.as_mut()?.maintain();
        self.polled.0 = fds.len();
        fds.push(w.doorbell.raw());
        self.polled.1 = self.stock.as_ref().and_then(Stock::builder_fd).map(|fd| {
            fds.push(fd);
            fds.len() - 1
        });
        let mut timeout: Option<i32> = self.lender.prepare(w.lend.as_fd(), fds);
        let now = sys::monotonic_ns();
        for p in &mut self.pods {
            let first = fds.len();
            fds.push(p.pidfd());
            // A young pod's pipes are left alone: most pods end within QUIET_NS, their output
            // fits the pipes, and the watcher reads it all once, when the pidfd says they ended.
            let quiet_until = p.t0 + QUIET_NS;
            if now >= quiet_until {
                if p.out_open {
                    fds.push(p.out_r);
                }
                if p.st_open {
                    fds.push(p.st_r);
                }
            } else {
                let ms = ((quiet_until - now) / 1_000_000).max(1) as i32;
                timeout = Some(timeout.map_or(ms, |t: i32| t.min(ms)));
            }
            p.polled = (first, fds.len() - first);
            p.look_for_deadlock(now);
            let deadline = p.enforce_deadline(rt, now);
            let ms = if p.ending.cut() {
                50
            } else {
                let next = p
                    .watch
                    .as_ref()
                    .map_or(deadline, |w| w.due_ns().min(deadline));
                (next.saturating_sub(now) / 1_000_000).clamp(1, 1000) as i32
            };
            timeout = Some(timeout.map_or(ms, |t: i32| t.min(ms)));
        }
        if self.registration_due(now) {
            timeout = Some(1);
        }
        self.backstop(timeout)
    }

    /// A test rings once its setup is done; one that dies before (the OOM killer) never rings,
    /// and one stuck in its setup would never meet its deadline. So while blanks can be taken,
    /// the watcher also looks now and then when nothing else wakes it: after `BACKSTOP_MIN_MS`,
    /// then twice as long each quiet time up to `BACKSTOP_MAX_MS` (an idle host: a wake-up every
    /// few seconds), and soon again after any pod.
    fn backstop(&mut self, timeout: Option<i32>) -> Option<i32> {
        if timeout.is_some() || !self.pods.is_empty() {
            self.backstop_ms = BACKSTOP_MIN_MS;
            return timeout;
        }
        self.stock.as_ref()?;
        let ms = self.backstop_ms;
        self.backstop_ms = (ms * 2).min(BACKSTOP_MAX_MS);
        Some(ms)
    }

    /// A test rings the doorbell once isolated, and the host registers it right after its fork;
    /// on a busy machine the ring can come first, and nothing else would wake the watcher (it
    /// sleeps until there is work): while a blank is taken for a pod not registered yet, look
    /// again every millisecond, for up to `REGISTRATION_NS`.
    fn registration_due(&mut self, now: u64) -> bool {
        let pods = &self.pods;
        let waiting = self
            .stock
            .as_ref()
            .is_some_and(|s| s.taken_unwatched(|i| pods.iter().any(|p| p.slot == i)));
        self.unregistered_since = waiting.then(|| self.unregistered_since.unwrap_or(now));
        self.unregistered_since
            .is_some_and(|t0| now.saturating_sub(t0) < REGISTRATION_NS)
    }

    fn pick_up(&mut self) {
        let rt = runtime::get();
        for r in &REGS {
            let pid = r.pid.load(Ordering::Acquire);
            if pid <= 0 {
                continue;
            }
            let slot = r.slot.load(Ordering::Relaxed) as usize;
            let id = r.id.load(Ordering::Relaxed);
            let t0 = r.t0.load(Ordering::Relaxed);
            r.pid.store(0, Ordering::Release);
            let Some(stock) = self.stock.as_mut() else {
                continue;
            };
            let Some(blank) = stock.blank(slot) else {
                continue;
            };
            let (out_r, st_r) = (blank.out_r, blank.st_r);
            // None: already reaped by the host's own wait(): finished below.
            let pidfd = sys::pidfd_open(pid).ok().map(Own::new);
            self.pods.push(Pod {
                pid,
                exited: pidfd.is_none(),
                pidfd,
                slot,
                id,
                t0,
                info: None,
                ending: Ending::default(),
                frames: Vec::new(),
                out_r,
                st_r,
                out_open: true,
                st_open: true,
                polled: (0, 0),
                watch: None,
                test_t0: None,
                told_over: false,
            });
            // The builder keeps its record in case the host ends while it runs (`orphan`): the
            // journal must be there to be handed over.
            let _ = rt.journal();
            if let Some(p) = self.pods.last_mut() {
                p.pump(rt);
                if p.info.is_none() && !p.told_over {
                    orphan::running(rt, p.id, &p.fallback_info(rt));
                }
            }
        }
    }

    /// After the poll (`rev`: the events of the whole poll set): read what the pods wrote, finish
    /// the pods that are over. Only what polled ready is looked at.
    pub fn handle(&mut self, rev: &[i16]) {
        let Some(w) = super::state() else { return };
        let ready = |i: usize| rev.get(i).is_some_and(|r| *r != 0);
        let cpu0 = sys::thread_cpu_ns();
        if ready(self.polled.0) {
            let mut buf = [0u8; 8];
            let _ = sys::read(w.doorbell.raw(), &mut buf);
        }
        let rt = runtime::get();
        let Ok(plan) = rt.plan() else { return };
        if let (Some(s), Some(i)) = (self.stock.as_mut(), self.polled.1) {
            if ready(i) {
                s.on_builder(rt, plan);
            }
        }
        self.lender.handle(w.lend.as_fd(), rev);
        if !self.keep_opened {
            self.keep = record::keep_dir(rt);
            self.keep_opened = true;
        }
        let mut i = 0;
        while i < self.pods.len() {
            let p = &mut self.pods[i];
            let (first, n) = p.polled;
            if (first..first + n).any(ready) {
                p.pump(rt);
            }
            if !p.exited && ready(first) {
                match sys::wait4(p.pid, libc::WNOHANG) {
                    Ok((0, _, _)) => {}
                    Ok((_, status, ru)) => {
                        p.exited = true;
                        p.ending.ended_ns.get_or_insert_with(sys::monotonic_ns);
                        p.ending.status = Some(status);
                        p.ending.cpu_ns =
                            crate::pod::tv_ns(ru.ru_utime) + crate::pod::tv_ns(ru.ru_stime);
                    }
                    Err(_) => p.exited = true, // reaped by the host's own wait()
                }
            }
            if p.exited {
                let p = self.pods.swap_remove(i);
                self.close_pod(rt, p);
            } else {
                i += 1;
            }
        }
        // The watcher works for the pods: its CPU time counts against the budget.
        let spent = sys::thread_cpu_ns().saturating_sub(cpu0);
        rt.ledger().charge(spent);
    }

    fn close_pod(&mut self, rt: &Runtime, mut p: Pod) {
        p.pump(rt);
        // Before its record: told after, a host ending in between would journal it twice.
        if !p.told_over {
            orphan::over(p.id);
        }
        p.pidfd = None; // closed
        if p.went_cold() {
            if let Some(stock) = self.stock.as_mut() {
                stock.release(p.slot, true);
            }
            super::outlive::ended(p.slot);
            return;
        }
        let info = p.info.take().unwrap_or_else(|| p.fallback_info(rt));
        let mut ending = std::mem::take(&mut p.ending);
        let dirty = record::parse_frames(&p.frames).iter().any(|f| f.0 == b'D');
        ending.apply_frames(rt, &info, &p.frames);
        if ending.status.is_none() && ending.verdict.is_some() {
            ending.status = Some(0); // reaped elsewhere after it reported: it exited normally
        }
        let Some(stock) = self.stock.as_mut() else {
            return;
        };
        let (mut changed, pristine) = match stock.blank(p.slot) {
            // Left as the builder made it: nothing changed, and the blank goes back.
            Some(b) if !dirty && b.pristine() => (Vec::new(), true),
            Some(b) => (b.scratch.changed(), false),
            None => (Vec::new(), false),
        };
        changed.extend(ending.clones_changed());
        changed.sort();
        record::record_end(
            rt,
            &info,
            ending,
            &changed,
            stock.blank(p.slot).map(|b| &b.scratch),
            self.keep,
        );
        stock.release(p.slot, pristine);
        super::outlive::ended(p.slot);
    }
}

impl Pod {
    /// Whether the test builds its pod cold instead (`WENT_COLD`, its first frame).
    fn went_cold(&self) -> bool {
        record::parse_frames(&self.frames)
            .first()
            .is_some_and(|f| f.0 == WENT_COLD)
    }

    /// The pod's pidfd, -1 once it is gone (poll skips it, a kill through it does nothing).
    fn pidfd(&self) -> RawFd {
        self.pidfd.as_ref().map_or(-1, Own::raw)
    }

    /// Once the test has started (its `S` frame read), look at it for a deadlock when due.
    fn look_for_deadlock(&mut self, now: u64) {
        if self.exited || self.ending.cut() {
            return;
        }
        if let (None, Some(t)) = (&self.watch, record::test_started_ns(&self.frames)) {
            // The test's own time is bounded from here on (see `supervise::await_end`).
            let start = t.clamp(self.t0, now);
            self.test_t0 = Some(start);
            self.watch = Some(deadlock::Watch::new(start));
        }
        let origin = self.info.as_ref().map(PodInfo::origin).unwrap_or_default();
        if let Some(m) = self
            .watch
            .as_mut()
            .and_then(|w| w.look(self.pid, now, origin))
        {
            self.ending.deadlock = Some(m);
            self.ending.ended_ns = Some(now);
            sys::pidfd_kill(self.pidfd(), libc::SIGKILL);
        }
    }

    /// Kill the pod if it is past its deadline, judged on its latest word: a watcher starved of
    /// CPU on a busy machine may not have read its start, or its end, since. Returns when to
    /// look again.
    fn enforce_deadline(&mut self, rt: &Runtime, now: u64) -> u64 {
        let plain = self.deadline(rt).plain();
        let ending = self.ending.cut();
        if ending || now < plain {
            return plain;
        }
        self.pump(rt);
        if self.went_cold() {
            return u64::MAX; // its own supervisor's deadline holds
        }
        self.look_for_deadlock(now);
        let over = sys::poll_in(&[self.pidfd()], 0, &mut [0]).unwrap_or(0) > 0;
        if over || self.ending.deadlock.is_some() {
            return now; // over: reaped after the poll, its pidfd being ready
        }
        match self.deadline(rt).look(now, self.pid) {
            Due::At(t) => t,
            Due::Over { waited_ns } => {
                self.ending.ended_ns = Some(now);
                let d = self.deadline(rt);
                if d.test {
                    self.ending.timed_out = true;
                    self.ending.notes.extend(crate::deadline::note(waited_ns));
                } else {
                    let ms = d.timeout_ns / 1_000_000;
                    self.ending.setup_error = Some(crate::deadline::setup_error(ms));
                }
                // Through the pidfd: if the host's own wait() reaped the test, its pid may be
                // someone else's by now.
                sys::pidfd_kill(self.pidfd(), libc::SIGKILL);
                now
            }
        }
    }

    fn deadline(&self, rt: &Runtime) -> Deadline {
        let ms = self.info.as_ref().map_or_else(
            || {
                rt.config
                    .as_ref()
                    .map_or(crate::config::DEFAULT_TIMEOUT_MS, |c| c.timeout_ms)
            },
            |i| i.timeout_ms,
        );
        let mut d = Deadline::new(self.t0, ms);
        if let Some(t) = self.test_t0 {
            d.test_started(t);
        }
        d
    }

    /// Read what the pod wrote; learn who it is from its first frame.
    fn pump(&mut self, rt: &Runtime) {
        if self.out_open {
            self.out_open = !read_output(
                self.out_r,
                &mut self.ending.output,
                &mut self.ending.output_cut,
            );
        }
        if self.st_open {
            self.st_open = !read_frames(
                self.st_r,
                &mut self.frames,
                &mut self.ending.frames_discarded,
            );
        }
        if self.info.is_none() && !self.told_over {
            match record::parse_frames(&self.frames).first() {
                Some((b'I', payload)) => {
                    self.info = PodInfo::decode(payload, rt.isolation(), rt.pid(), self.t0);
                    if let Some(info) = &self.info {
                        orphan::running(rt, self.id, info);
                    }
                }
                // Its own supervisor journals it.
                Some((WENT_COLD, _)) => {
                    orphan::over(self.id);
                    self.told_over = true;
                }
                _ => {}
            }
        }
    }

    /// A pod that died before it said who it was.
    fn fallback_info(&self, rt: &Runtime) -> PodInfo {
        PodInfo {
            manual: true,
            path: rt.pod_path(self.id),
            function: "?".into(),
            test: "?".into(),
            site: "?".into(),
            phase: "manual",
            timeout_ms: 0,
            isolation: rt.isolation(),
            host_pid: rt.pid(),
            caller_tid: 0,
            started_ns: self.t0,
        }
    }
}
