//! The runtime's duty on its one thread (`reap`): the periodic summary (`INVITE_SUMMARY_S`), so a
//! process that never reaches its exit handler (killed, or `_exit`) leaves a recent summary; and,
//! first, the host's journal descriptor, created there rather than on the first `ckpt()`'s pause.
//! The thread does not survive a fork, and the summary is written only by the process that
//! registered the duty: pods and checkpoints write none.

use crate::reap::{self, Duty, DutyKind};
use crate::sys;
use std::os::fd::RawFd;

struct Ticker {
    /// 0: no periodic summary.
    period_ns: u64,
    next_ns: u64,
    owner: libc::pid_t,
}

impl Duty for Ticker {
    fn prepare(&mut self, _fds: &mut Vec<RawFd>) -> Option<i32> {
        if self.period_ns == 0 {
            return None;
        }
        let left = self.next_ns.saturating_sub(sys::monotonic_ns());
        Some(i32::try_from(left.div_ceil(1_000_000)).unwrap_or(i32::MAX))
    }

    fn handle(&mut self, _rev: &[i16]) {
        if self.period_ns == 0 || sys::monotonic_ns() < self.next_ns {
            return;
        }
        self.next_ns += self.period_ns;
        if sys::getpid() == self.owner {
            super::flush_summary();
        }
    }
}

fn make() -> Box<dyn Duty> {
    let rt = super::get();
    let _ = rt.journal();
    let period_s = rt.config.as_ref().map_or(0, |c| c.summary_s);
    let period_ns = period_s.saturating_mul(1_000_000_000);
    Box::new(Ticker {
        period_ns,
        next_ns: sys::monotonic_ns().saturating_add(period_ns),
        owner: rt.pid(),
    })
}

/// Register the duty, and ask for the thread if a periodic summary is due (else the first pod
/// starts it). It is started right after, outside any pause (`reap::start_wanted`).
pub fn start(period_s: u64) {
    reap::set_duty(DutyKind::Runtime, make);
    if period_s > 0 {
        reap::want();
    }
}
