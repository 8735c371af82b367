//! Step 4: the runtime at link time. Every link gets it appended, after the user's own inputs:
//! `libinvite.a` is an archive, so the linker takes something from it only when an object needs
//! `ckpt` or an `invite_*` function. The installed `libinvite.a` (scripts/install.sh) defines
//! nothing else, so a link of objects none of which uses the runtime comes out byte for byte as
//! without the wrapper (the suite checks this).
//!
//! The runtime needs, beyond what every C link has (libc, and libgcc_s, which gcc and clang add
//! themselves, as needed), `log` from libm; `-lutil -lrt -lpthread -ldl` matter only on glibc
//! before 2.34, which had them outside libc. They are added `--as-needed`, so they are recorded
//! only when something uses them.

use std::ffi::OsString;
use std::path::Path;

const NEEDS: &[&str] = &["-lm", "-lutil", "-lrt", "-lpthread", "-ldl"];

pub fn runtime_args(library: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![library.into(), "-Wl,--push-state,--as-needed".into()];
    args.extend(NEEDS.iter().map(OsString::from));
    args.push("-Wl,--pop-state".into());
    args
}
