//! Whose lock a deadlocked wait is for, when the lock word says: a priority-inheritance futex
//! holds its owner's TID itself; glibc's `pthread_mutex_t` (x86_64 and aarch64 layouts alike)
//! holds it at byte 8 (`__owner`), after the futex word (`__lock`) and the recursion count. Read
//! from the pod's memory (`/proc/PID/mem`) and believed only when the TID is the calling thread's
//! or that of a live thread of the host.

use super::Origin;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

pub enum Owner {
    /// The thread that made the pod: a re-entrant call.
    Caller(i32),
    /// Another thread of the host.
    HostThread(i32),
    Unknown,
}

/// The PI futex word's owner bits (`FUTEX_TID_MASK`).
const TID_MASK: u32 = 0x3fff_ffff;

pub fn owner(pid: i32, addr: u64, pi: bool, origin: Origin) -> Owner {
    let mut word = [0u8; 12];
    let read =
        File::open(format!("/proc/{pid}/mem")).and_then(|f| f.read_exact_at(&mut word, addr));
    if read.is_err() {
        return Owner::Unknown;
    }
    let at = |i: usize| u32::from_le_bytes([word[i], word[i + 1], word[i + 2], word[i + 3]]);
    let tid = if pi { at(0) & TID_MASK } else { at(8) } as i32;
    classify(tid, origin, |t| {
        Path::new(&format!("/proc/{}/task/{t}", origin.host_pid)).exists()
    })
}

fn classify(tid: i32, origin: Origin, host_has: impl Fn(i32) -> bool) -> Owner {
    if tid <= 0 {
        Owner::Unknown
    } else if tid == origin.caller_tid {
        Owner::Caller(tid)
    } else if origin.host_pid > 0 && host_has(tid) {
        Owner::HostThread(tid)
    } else {
        Owner::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_believed_only_when_they_are_the_callers_or_the_hosts() {
        let o = Origin {
            host_pid: 100,
            caller_tid: 105,
        };
        assert!(matches!(classify(105, o, |_| true), Owner::Caller(105)));
        assert!(matches!(
            classify(107, o, |t| t == 107),
            Owner::HostThread(107)
        ));
        assert!(matches!(classify(1, o, |_| false), Owner::Unknown));
        assert!(matches!(classify(0, o, |_| true), Owner::Unknown));
    }
}
