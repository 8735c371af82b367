//! Deadlocks: a pod's test that can never run again, named at once instead of at its deadline.
//!
//! Only the thread that called `ckpt()` exists in a pod, so a lock another thread of the host held
//! at the checkpoint stays locked for ever, and so does a recursive lock the calling thread held
//! (the pod's thread has another TID, so it is not its own). A test that takes such a lock waits
//! until its deadline. The rule, checked by the pod's supervisor every `PERIOD_NS` once the test
//! has started:
//!
//! - every thread of the test's process sleeps (state `S`) in a `futex` wait without a timeout
//!   (`FUTEX_WAIT`, `FUTEX_WAIT_BITSET`, `FUTEX_LOCK_PI`, `FUTEX_LOCK_PI2`,
//!   `FUTEX_WAIT_REQUEUE_PI`), read from `/proc/PID/task/TID/{stat,syscall}`;
//! - each futex is one only that process can wake: a private futex (`FUTEX_PRIVATE_FLAG`), or one
//!   in a private mapping (the pod made the host's shared mappings private; a shared one the test
//!   mapped itself could be woken by another process, so it is never called a deadlock);
//! - the process has no POSIX timer (`/proc/PID/timers`) that could signal it;
//! - and two looks in a row see the same waits with no thread having run in between
//!   (`/proc/PID/task/TID/schedstat`), so a thread that woke and slept again is not missed.
//!
//! A test that sleeps, polls, reads, or waits for a child of its own is in another system call,
//! and never matches. The message says where the wait is (`deadlock::describe`).

mod elf;
mod lock;

use std::fs;

/// How often a started test is looked at: a deadlock is named within about two periods.
pub const PERIOD_NS: u64 = 25_000_000;

/// The host thread a pod came from, to tell whose lock a wait is for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    pub host_pid: i32,
    /// The thread that called `ckpt()` (or the instrumented function).
    pub caller_tid: i32,
}

/// One thread's wait, as seen in one look.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Wait {
    tid: i32,
    addr: u64,
    op: u64,
    /// The thread's run time so far (`schedstat`), to see that it has not run between looks.
    ran_ns: Option<u64>,
}

/// The looks at one pod's test.
#[derive(Default)]
pub struct Watch {
    next_ns: u64,
    last: Option<Vec<Wait>>,
}

impl Watch {
    /// Looks start one period after `start_ns`, when the test began.
    pub fn new(start_ns: u64) -> Watch {
        Watch {
            next_ns: start_ns + PERIOD_NS,
            last: None,
        }
    }

    /// When the next look is due (monotonic ns).
    pub fn due_ns(&self) -> u64 {
        self.next_ns
    }

    /// Look at the test's process `pid` if a look is due: the record's message once it is seen
    /// deadlocked twice in a row.
    pub fn look(&mut self, pid: i32, now: u64, origin: Origin) -> Option<String> {
        if now < self.next_ns {
            return None;
        }
        self.next_ns = now + PERIOD_NS;
        let waits = stuck_waits(pid);
        match (waits, self.last.take()) {
            (Some(w), Some(prev)) if w == prev => Some(describe(pid, &w, origin)),
            (w, _) => {
                self.last = w;
                None
            }
        }
    }
}

/// The futex commands that wait (without a timeout, they wait for ever).
const WAITS: [u64; 5] = [
    0,  // FUTEX_WAIT
    6,  // FUTEX_LOCK_PI
    9,  // FUTEX_WAIT_BITSET
    11, // FUTEX_WAIT_REQUEUE_PI
    13, // FUTEX_LOCK_PI2
];
const FUTEX_PRIVATE_FLAG: u64 = 128;
const FUTEX_CLOCK_REALTIME: u64 = 256;

/// Every thread's wait, if every thread of `pid` is in a futex wait nothing outside the process
/// can end; `None` as soon as one is not (or the process cannot be read).
fn stuck_waits(pid: i32) -> Option<Vec<Wait>> {
    if !fs::read(format!("/proc/{pid}/timers")).map_or(true, |t| t.is_empty()) {
        return None;
    }
    // Not `read_dir`: its `opendir` calls the program's `malloc` (`sys::dir_entries`).
    let mut tids: Vec<i32> =
        crate::sys::dir_entries(&crate::sys::cstring(&format!("/proc/{pid}/task")).ok()?)
            .ok()?
            .iter()
            .filter_map(|(name, _)| name.to_str()?.parse().ok())
            .collect();
    tids.sort_unstable();
    let mut maps: Option<String> = None;
    let mut waits = Vec::with_capacity(tids.len());
    for tid in tids {
        let task = format!("/proc/{pid}/task/{tid}");
        if thread_state(&fs::read_to_string(format!("{task}/stat")).ok()?)? != 'S' {
            return None;
        }
        let (addr, op) = untimed_futex_wait(&fs::read_to_string(format!("{task}/syscall")).ok()?)?;
        if op & FUTEX_PRIVATE_FLAG == 0 {
            let maps = maps.get_or_insert_with(|| {
                fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default()
            });
            if !in_private_mapping(maps, addr) {
                return None;
            }
        }
        let ran_ns = fs::read_to_string(format!("{task}/schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok());
        waits.push(Wait {
            tid,
            addr,
            op,
            ran_ns,
        });
    }
    (!waits.is_empty()).then_some(waits)
}

/// Whether thread `tid` of process `pid` sleeps in a futex wait without a timeout.
pub fn waits_for_ever(pid: i32, tid: i32) -> bool {
    let task = format!("/proc/{pid}/task/{tid}");
    let asleep = fs::read_to_string(format!("{task}/stat"))
        .ok()
        .and_then(|s| thread_state(&s))
        == Some('S');
    asleep
        && fs::read_to_string(format!("{task}/syscall"))
            .ok()
            .and_then(|s| untimed_futex_wait(&s))
            .is_some()
}

/// The state letter of a `/proc/PID/task/TID/stat` line (after the command's closing paren,
/// which may itself hold spaces and parens).
fn thread_state(stat: &str) -> Option<char> {
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// The futex address and operation of a `/proc/.../syscall` line that is a futex wait without a
/// timeout: `NR ARG1 ... ARG6 SP PC`, in hex after the number.
fn untimed_futex_wait(syscall: &str) -> Option<(u64, u64)> {
    let mut f = syscall.split_whitespace();
    if f.next()?.parse::<i64>().ok()? != libc::SYS_futex {
        return None;
    }
    let hex = |s: Option<&str>| u64::from_str_radix(s?.trim_start_matches("0x"), 16).ok();
    let (addr, op, _val, timeout) = (hex(f.next())?, hex(f.next())?, f.next(), hex(f.next())?);
    let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    (WAITS.contains(&cmd) && timeout == 0).then_some((addr, op))
}

/// Whether `addr` lies in a private mapping of a `/proc/PID/maps` text (`rw-p`, not `rw-s`).
fn in_private_mapping(maps: &str, addr: u64) -> bool {
    maps.lines().any(|l| {
        let mut f = l.split_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else {
            return false;
        };
        let Some((a, b)) = range.split_once('-') else {
            return false;
        };
        let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) else {
            return false;
        };
        (a..b).contains(&addr) && perms.ends_with('p')
    })
}

/// The record's message for a deadlocked test: where it waits (the address, the lock's name
/// from the ELF symbol table when the address is a named object), and whose the lock is when the
/// lock word says (`lock::owner`).
fn describe(pid: i32, waits: &[Wait], origin: Origin) -> String {
    let w = waits.iter().find(|w| w.tid == pid).unwrap_or(&waits[0]);
    let cmd = w.op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    let name = elf::symbol_at(pid, origin.host_pid, w.addr)
        .map(|(sym, file)| format!(" (`{sym}` in {file})"))
        .unwrap_or_default();
    let threads = match waits.len() {
        1 => "its only thread waits".to_string(),
        n => format!("all {n} of its threads wait"),
    };
    let place = format!(
        "{threads} without a timeout on the futex at {:#x}{name}, which nothing in the pod can release",
        w.addr
    );
    match lock::owner(pid, w.addr, cmd == 6 || cmd == 13, origin) {
        lock::Owner::Caller(tid) => format!(
            "deadlocked on a lock held when the checkpoint was taken: {place}; it was held by the \
             calling thread itself (TID {tid}), so this is a re-entrant call (a recursive mutex \
             the caller already held is not the pod's thread's own); the site option `outermost` \
             samples only the outermost call of a function"
        ),
        lock::Owner::HostThread(tid) => format!(
            "deadlocked on a lock held when the checkpoint was taken: {place}; it was held by \
             another thread of the host (TID {tid}), which does not exist in the pod"
        ),
        lock::Owner::Unknown => format!(
            "deadlocked, on a lock held when the checkpoint was taken or taken twice by the \
             test: {place}"
        ),
    }
}

#[cfg(test)]
mod tests;
