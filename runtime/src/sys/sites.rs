//! The sites compiled into the object the runtime is linked into (the program, or a shared
//! library that links `libinvite.a`): each instrumented function's site has a pointer to it in
//! the `invite_sites` section (the precompiler's wrappers and `#[in_vivo]` put it there), and the
//! linker gathers them between `__start_invite_sites` and `__stop_invite_sites`.
//!
//! Read only when the summary is written: nothing registers at load, so a site's fast path is
//! unchanged. The entries are pointers, all 8 bytes and 8-aligned, so the linker has nothing to
//! pad between them; the runtime's own entry is null and is skipped.

use crate::site::Site;

/// The runtime's own entry: the section exists in every object that links the runtime, so its
/// bounds are always defined (a program without sites links).
#[used]
#[link_section = "invite_sites"]
static NONE: Option<&Site> = None;

extern "C" {
    static __start_invite_sites: Option<&'static Site>;
    static __stop_invite_sites: Option<&'static Site>;
}

/// Every compiled-in site of this object, in link order.
pub fn compiled_sites() -> impl Iterator<Item = &'static Site> {
    // Referencing `NONE` keeps its object file (and so the section) in the link.
    let _ = std::hint::black_box(&NONE);
    let start = std::ptr::addr_of!(__start_invite_sites);
    let stop = std::ptr::addr_of!(__stop_invite_sites);
    // SAFETY: the linker defines both bounds of the one `invite_sites` section of this object,
    // whose every entry is an `Option<&'static Site>` (a null or a pointer to a static site, as
    // `invite_site *` in `invite.h`): an 8-aligned array of `stop - start` entries that lives
    // as long as the object, and no one writes to it after relocation.
    let entries = unsafe {
        let n = usize::try_from(stop.offset_from(start)).unwrap_or(0);
        std::slice::from_raw_parts(start, n)
    };
    entries.iter().filter_map(|e| *e)
}
