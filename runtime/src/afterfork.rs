//! What a freshly forked pod's test must let go of: the fork sites (`supervise` for a cold pod,
//! `warm` for a warm one) call this, so that `runtime` holds state and calls nothing above it.
//! (A live checkpoint lets go of its own in `live`; the reaper's and the warm watcher's atfork
//! handlers cover every other fork.)

use crate::runtime::Runtime;

/// In the test process of a new pod: re-point the runtime at the pod; the host's reaper thread
/// and pods' group stay the host's.
pub fn pod_test(rt: &Runtime, path: &str) {
    rt.become_pod(path);
    crate::reap::drop_pending();
    crate::podgroup::disown();
}
