//! The C library: `libinvite.a` and `libinvite.so`, the runtime (the `invite` crate, whose C API
//! is its `capi` module and `include/invite.h`) with the C library's global allocator.
//!
//! The root of a crate of its own (`runtime/clib` in the workspace; a precompiler installed
//! alone builds it from the runtime's package, where this file travels), because a global
//! allocator is the final artifact's choice: Rust programs link the `invite` crate and keep their
//! own allocator. The C library's is the program's `malloc`, except in the copy of the host that
//! a sampled call forks, which must not call it (the call may hold the allocator's lock: README,
//! "The fork"); see `invite::__private::CHeap`.

#[global_allocator]
static HEAP: invite::__private::CHeap = invite::__private::CHeap;
