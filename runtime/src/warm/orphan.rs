//! The record of a warm pod whose host ends while it runs.
//!
//! The watcher is a thread of the host and the test dies with the host (its parent-death
//! signal), so a host that ends without its exit drain (`_exit`, a signal) would take such a pod
//! and its record along. The builder of blanks (`helper`) outlives the host by one poll of its
//! pidfd: the watcher tells it of each pod it watches, with the pod's record as it would read were
//! the host to end now (`error`, "the host process exited while the pod ran") and the journal's
//! descriptor, and that the pod is over before it writes the pod's own record. The builder
//! journals the pods not over once it finds the host gone. A pod over in the instant between
//! that word and its record loses its record (as every warm pod did); none is journaled twice.

use crate::journal::{self, TestRecord};
use crate::record::{decide, pod_record, Ending, PodInfo};
use crate::runtime::Runtime;
use crate::sys;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

/// The watcher's words to the builder: a pod runs (its id, its record-if-orphaned; the journal's
/// descriptor with it), a pod is over (its id).
const RUNNING: u8 = b'P';
const OVER: u8 = b'O';

/// What the builder's note of such a record says.
const NOTE: &str = "journaled by the warm pods' builder after the host ended without its exit \
                    drain: the test was killed with it; its output, time and changed files are unknown";

/// In the watcher: pod `id` runs; were the host to end now, its record would be the one `info`
/// makes. False if the builder could not be told.
pub fn running(rt: &Runtime, id: u32, info: &PodInfo) -> bool {
    if !super::helper::started() {
        return false;
    }
    let mut msg = vec![RUNNING];
    msg.extend_from_slice(&id.to_le_bytes());
    msg.extend_from_slice(record_line(rt, info).as_bytes());
    let journal = rt.journal_fd();
    let fds: &[RawFd] = if journal >= 0 { &[journal] } else { &[] };
    super::helper::tell(&msg, fds)
}

/// In the watcher: pod `id` is over; its record is the watcher's to write.
pub fn over(id: u32) {
    let mut msg = vec![OVER];
    msg.extend_from_slice(&id.to_le_bytes());
    super::helper::tell(&msg, &[]);
}

/// The record of a pod killed with its host, as the watcher would have written it.
fn record_line(rt: &Runtime, info: &PodInfo) -> String {
    let ending = Ending {
        host_died: true,
        notes: vec![NOTE.to_string()],
        ..Ending::default()
    };
    let (outcome, exit_code, signal, message) = decide(info, &ending);
    TestRecord {
        outcome: outcome.as_str(),
        exit_code,
        signal: signal.as_deref(),
        message: message.as_deref(),
        notes: &ending.notes,
        ..pod_record(rt, info)
    }
    .to_line()
}

/// In the builder: the records of the host's running warm pods, and where to write them.
#[derive(Default)]
pub struct Orphans {
    journal: Option<OwnedFd>,
    lines: Vec<(u32, Vec<u8>)>,
}

impl Orphans {
    /// Take in one of the watcher's words (`msg`, `fds`); false if it is none of them.
    pub fn take(&mut self, msg: &[u8], fds: &mut Vec<OwnedFd>) -> bool {
        let (Some(&kind), Some(id)) = (msg.first(), msg.get(1..5)) else {
            return false;
        };
        let id = u32::from_le_bytes([id[0], id[1], id[2], id[3]]);
        match kind {
            RUNNING => {
                if let Some(fd) = fds.pop() {
                    self.journal = Some(fd);
                }
                self.lines.retain(|(i, _)| *i != id);
                self.lines.push((id, msg[5..].to_vec()));
            }
            OVER => self.lines.retain(|(i, _)| *i != id),
            _ => return false,
        }
        true
    }

    /// The host is gone: take in what it said last (still queued on `ctl`), then journal the
    /// pods it did not say were over, and end.
    pub fn host_gone(mut self, ctl: BorrowedFd, buf: &mut [u8]) -> ! {
        while let Ok((n, mut fds)) = sys::recv_fds(ctl, buf) {
            if n == 0 {
                break;
            }
            self.take(&buf[..n], &mut fds);
        }
        if let Some(j) = &self.journal {
            for line in self
                .lines
                .iter()
                .filter_map(|(_, l)| std::str::from_utf8(l).ok())
            {
                let _ = journal::append(j.as_raw_fd(), line);
            }
        }
        sys::exit_now(0)
    }
}
