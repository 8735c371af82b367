//! The code of the objects the dynamic linker has loaded (the program, its libraries, the vDSO),
//! as the linker knows it (`dl_iterate_phdr`): read from its own list in user space, no system
//! call, where asking the kernel costs a `PROCMAP_QUERY` per executable mapping (~30 µs in a
//! freshly forked process). Code the linker did not load (a JIT's anonymous executable pages) is
//! not in it. Nothing here allocates: it runs in the host's `ckpt()`, whose caller may hold the
//! program's allocator's lock.

use std::ffi::{c_int, c_void};

/// The linker's counts of objects loaded and unloaded so far: they change whenever the loaded
/// code may have. `None` where the C library does not keep them.
pub fn loaded_objects_generation() -> Option<(u64, u64)> {
    let mut out: Option<(u64, u64)> = None;
    unsafe extern "C" fn first(
        info: *mut libc::dl_phdr_info,
        size: usize,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: the C library passes a valid info of `size` bytes for the call's duration, and
        // `data` is the `Option` below, alive and not otherwise used while the iteration runs.
        unsafe {
            let out = &mut *data.cast::<Option<(u64, u64)>>();
            if size >= std::mem::offset_of!(libc::dl_phdr_info, dlpi_subs) + 8 {
                *out = Some(((*info).dlpi_adds, (*info).dlpi_subs));
            }
        }
        1 // the counts are the same in every object's info: the first is enough
    }
    // SAFETY: `first` only reads the info it is given and writes `out`, which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(first), (&mut out as *mut Option<(u64, u64)>).cast()) };
    out
}

/// The executable segments of every loaded object, as (start, end) page ranges, into `out`; how
/// many. `None` when `out` cannot hold them all.
pub fn loaded_code(out: &mut [(u64, u64)]) -> Option<usize> {
    struct Into<'a> {
        out: &'a mut [(u64, u64)],
        n: usize,
        overflow: bool,
        page: u64,
    }
    unsafe extern "C" fn each(info: *mut libc::dl_phdr_info, _: usize, data: *mut c_void) -> c_int {
        // SAFETY: as in `loaded_objects_generation`; `dlpi_phdr` points at `dlpi_phnum` program
        // headers of a loaded object, valid while the call runs.
        unsafe {
            let into = &mut *data.cast::<Into>();
            let info = &*info;
            let headers: &[libc::Elf64_Phdr] = if info.dlpi_phdr.is_null() {
                &[]
            } else {
                std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize)
            };
            let page = into.page;
            for h in headers {
                if h.p_type != libc::PT_LOAD || h.p_flags & libc::PF_X == 0 || h.p_memsz == 0 {
                    continue;
                }
                let start = info.dlpi_addr.wrapping_add(h.p_vaddr);
                let end = start.wrapping_add(h.p_memsz);
                let Some(slot) = into.out.get_mut(into.n) else {
                    into.overflow = true;
                    return 1;
                };
                *slot = (start & !(page - 1), end.next_multiple_of(page));
                into.n += 1;
            }
        }
        0
    }
    let mut into = Into {
        out,
        n: 0,
        overflow: false,
        page: super::page_size() as u64,
    };
    // SAFETY: `each` only reads the infos it is given and writes `into`, which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(each), (&mut into as *mut Into).cast()) };
    (!into.overflow).then_some(into.n)
}
