//! A pod's deadline (`INVITE_TIMEOUT_MS`, or its site's): how long its test may take, from its
//! start stamp. What counts is the time the test ran or slept, not the time it was ready to run
//! and a busy machine gave the CPUs to others (the test runs at the lowest priority,
//! `SCHED_IDLE`): that time, the kernel's run-queue delay of the pod's process
//! (`/proc/PID/schedstat`), moves the deadline back, by at most `MAX_STRETCH_NS` of the wall
//! clock. So a test that loops for ever still ends, and a trivial test on a machine whose every
//! core is busy with other work is not called a timeout.
//!
//! Until the test starts, the pod's set-up (the runtime's own steps, no code of the test's) has
//! the deadline and the whole stretch: on a busy machine the kernel's part of it (mounts,
//! namespaces: RCU grace periods, whose kernel threads wait for the CPU too) can take seconds
//! that no run-queue delay of the pod shows. A set-up past that is the pod's failure, not its
//! test's: the record says so (an `error`), not `timeout`.
//!
//! Both supervisors use it: a cold pod's (`supervise`) and the watcher of warm pods
//! (`warm::watch`). The delay is read only once the plain deadline has passed.

use crate::sys;

/// The most the deadline moves back for time spent waiting for a CPU.
pub const MAX_STRETCH_NS: u64 = 60_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    /// Since when it runs (the pod's start, then its test's).
    pub from: u64,
    pub timeout_ns: u64,
    /// Whether the test has started (`from` is its start stamp).
    pub test: bool,
}

/// What a look at the deadline found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// Not yet: look again at this time, at the latest.
    At(u64),
    /// Past it, the time it waited for a CPU taken into account (`waited_ns`).
    Over { waited_ns: u64 },
}

impl Deadline {
    pub fn new(from: u64, timeout_ms: u64) -> Deadline {
        Deadline {
            from,
            timeout_ns: timeout_ms.saturating_mul(1_000_000),
            test: false,
        }
    }

    /// The test started at `from`: its own time runs from there.
    pub fn test_started(&mut self, from: u64) {
        self.from = from;
        self.test = true;
    }

    /// The plain deadline: the earliest it can be over.
    pub fn plain(&self) -> u64 {
        self.from.saturating_add(self.timeout_ns)
    }

    /// At `now`, for the pod whose process is `pid` (its run-queue delay read only once the
    /// plain deadline has passed).
    pub fn look(&self, now: u64, pid: libc::pid_t) -> Due {
        if now < self.plain() {
            return Due::At(self.plain());
        }
        let waited = match self.test {
            true => own_wait(
                sys::run_delay_ns(pid).unwrap_or(0),
                sys::descendants_cpu_ns(pid),
            ),
            false => MAX_STRETCH_NS,
        };
        self.judge(now, waited)
    }

    /// `waited_ns`: how long the pod has waited for a CPU in all (its set-up's share counts as
    /// well: a busy machine slowed it the same way).
    pub fn judge(&self, now: u64, waited_ns: u64) -> Due {
        let stretch = waited_ns.min(MAX_STRETCH_NS);
        let due = self.plain().saturating_add(stretch);
        if now < due {
            Due::At(due)
        } else {
            Due::Over { waited_ns: stretch }
        }
    }
}

/// The test's wait for a CPU that the machine, not the pod, made it wait: less the CPU time its
/// own processes used (a test that forks keeps its CPU busy itself; a fork bomb, its children
/// taking every CPU, would otherwise move its deadline back by the whole stretch).
pub fn own_wait(run_delay_ns: u64, descendants_cpu_ns: u64) -> u64 {
    run_delay_ns.saturating_sub(descendants_cpu_ns)
}

/// The set-up error of a pod killed before its test started.
pub fn setup_error(timeout_ms: u64) -> String {
    format!(
        "the pod's set-up did not finish within its deadline ({timeout_ms} ms) and {} s more (a busy machine?): the test never started",
        MAX_STRETCH_NS / 1_000_000_000
    )
}

/// The record's note for a pod killed at a deadline that time spent waiting for a CPU had moved.
pub fn note(waited_ns: u64) -> Option<String> {
    (waited_ns >= 1_000_000).then(|| {
        format!(
            "its deadline was moved back by the {} ms it waited for a CPU (a busy machine), {} s at most",
            waited_ns / 1_000_000,
            MAX_STRETCH_NS / 1_000_000_000
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_its_own_processes_took_is_not_a_wait_the_machine_made() {
        assert_eq!(own_wait(3_000_000, 0), 3_000_000);
        assert_eq!(own_wait(3_000_000, 1_000_000), 2_000_000);
        assert_eq!(own_wait(3_000_000, 9_000_000), 0);
    }

    #[test]
    fn a_process_s_descendants_cpu_is_counted() {
        // A child that spins: its CPU time shows while it runs.
        let me = sys::getpid();
        let before = sys::descendants_cpu_ns(me);
        let mut kid = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        let t = std::time::Instant::now();
        while sys::descendants_cpu_ns(me) <= before && t.elapsed().as_secs() < 20 {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let after = sys::descendants_cpu_ns(me);
        kid.kill().unwrap();
        kid.wait().unwrap();
        assert!(after > before, "a running child's CPU is not seen");
    }

    #[test]
    fn time_spent_waiting_for_a_cpu_moves_the_deadline_back_up_to_a_bound() {
        let mut d = Deadline::new(0, 5);
        d.test_started(1_000);
        assert_eq!(d.plain(), 5_001_000);
        assert_eq!(d.judge(5_000_999, 0), Due::At(5_001_000));
        assert_eq!(d.judge(5_001_000, 0), Due::Over { waited_ns: 0 });
        // It waited 3 ms for a CPU: 3 ms more.
        assert_eq!(d.judge(5_001_000, 3_000_000), Due::At(8_001_000));
        assert_eq!(
            d.judge(8_001_000, 3_000_000),
            Due::Over {
                waited_ns: 3_000_000
            }
        );
        // A pod that waits for ever still ends.
        let late = d.plain() + MAX_STRETCH_NS;
        assert_eq!(
            d.judge(late, u64::MAX),
            Due::Over {
                waited_ns: MAX_STRETCH_NS
            }
        );
    }

    #[test]
    fn a_pod_s_set_up_has_the_whole_stretch() {
        let d = Deadline::new(1_000, 5);
        let late = d.plain() + MAX_STRETCH_NS;
        assert_eq!(d.look(late - 1, -1), Due::At(late));
        assert_eq!(
            d.look(late, -1),
            Due::Over {
                waited_ns: MAX_STRETCH_NS
            }
        );
    }

    #[test]
    fn a_process_s_run_queue_delay_is_read() {
        assert!(sys::run_delay_ns(sys::getpid()).is_some());
        assert_eq!(sys::run_delay_ns(-1), None);
    }
}
