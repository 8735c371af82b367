//! The C library: `libinvite.a` and `libinvite.so`, the runtime (the `invite` crate, whose C API
//! is its `capi` module and `include/invite.h`) with the C library's global allocator.
//!
//! The root of a crate of its own (`runtime/clib` in the workspace; a precompiler installed
//! alone builds it from the runtime's package, where this file travels), because a global
//! allocator is the final artifact's choice: Rust programs link the `invite` crate and keep their
//! own allocator. The C library's never calls the program's `malloc`: the runtime's own lock-free
//! heap in the host, and fresh pages of its own in the copy of the host that a sampled call forks
//! (the call may hold any lock: README, "The fork"); see `invite::__private::CHeap`.

#[global_allocator]
static HEAP: invite::__private::CHeap = invite::__private::CHeap;
