//! # invite — in vivo testing for C and Rust
//!
//! In vivo testing runs tests *inside a deployed program*, against the live state it reached in real
//! use. Now and then, when an instrumented function is called, the program checkpoints itself into
//! an isolated **pod** (a copy-on-write fork inside fresh Linux namespaces, with an overlay over every
//! writable file system), runs the test there, journals the outcome, and the original goes on as if
//! nothing happened.
//!
//! The flow of one test, a module per step (the modules import each other in no cycle; the
//! README's "Architecture" lists them in import order):
//!
//! ```text
//! site ─▶ sample ─▶ admit ─▶ snapshot (fork) ─▶ pod (isolate) ─▶ run ─▶ supervise ─▶ record ─▶ journal
//! ```
//!
//! * [`site`] — the static record of a call site.
//! * `sample` — the site's one-nanosecond fast path, the probability countdown.
//! * `admit` — coverage first, the host's budget, the pods' CPU, the cap and the wait `queue`,
//!   cgroup room, over the `ledger` of shared counters.
//! * `snapshot` — the fork of the host (the only pause it sees) and the supervisor.
//! * `warm` — as root, the fast way in: the host forks the test itself into a mount namespace
//!   built ahead of time (a "blank"), supervised by the watcher, a duty of the reaper (`reap`).
//! * `pod` — the isolation steps run in the child, planned beforehand by `plan`.
//! * `supervise` — the supervisor process of a cold pod: deadline, output capture, changed files.
//! * `record` — the outcome and the journal line, for both kinds of supervisor.
//! * `ownfd` — the runtime's own descriptors, which no pod inherits.
//! * `journal` — JSON Lines records, one `write` each, in `invite_vocab`'s words.
//! * `live` — named live checkpoints ([`checkpoint()`]) that an operator branches into pods later.
//!
//! Rust code uses [`ckpt()`] directly or the [`in_vivo`] attribute; C code uses `invite.h`
//! (implemented in `capi`).

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

mod admit;
mod afterfork;
mod capi;
mod config;
mod counts;
mod cpus;
mod deadline;
mod deadlock;
mod elf;
mod executor;
mod headroom;
mod inside;
mod journal;
mod keep;
mod kind;
mod ledger;
mod live;
mod outcome;
mod ownfd;
mod plan;
mod pod;
mod podgroup;
mod post;
mod queue;
mod reap;
mod record;
mod registry;
mod relay;
mod runtime;
mod sample;
#[doc(hidden)]
pub mod site;
mod snapshot;
mod start;
mod supervise;
mod sys;
mod test_api;
mod test_kind;
mod warm;

pub use invite_macros::in_vivo;
pub use kind::{Ckpt, CkptError};
pub use live::checkpoint;
pub use outcome::Outcome;
pub use runtime::flush_summary;
pub use snapshot::ckpt;
pub use test_api::{fail, in_pod, TestResult};

/// The call-site API used by code that `#[in_vivo]` generates. Not for direct use; it may change
/// without notice between versions.
#[doc(hidden)]
pub mod __private {
    pub use crate::post::PostTest;
    pub use crate::sample::Outermost;
    pub use crate::site::{Phase, Site};
    /// The C library's global allocator (`runtime/clib`).
    pub use crate::sys::CHeap;
    pub use crate::test_api::{enter, run_test, TestResult};
    pub use crate::test_kind::{probe, Verdict, ViaDisplay, ViaFuture, ViaTestResult, ViaValue};
}
