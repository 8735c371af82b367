//! What runs when the library is loaded, before `main`, while the process is small and has one
//! thread. With `INVITE=off` only the switch is read, and nothing else happens. Otherwise: the
//! exit handler is registered (the summary), the working directory is remembered, the
//! configuration is read (so that a site's first call need not allocate to read it), and the
//! warm pods' helper is started (blanks and the pods' network namespace then come from it,
//! never from a fork of the host).

use crate::{runtime, warm};

extern "C" fn at_load() {
    if !runtime::switched_on() {
        return;
    }
    runtime::arm_exit();
    runtime::capture_start_cwd();
    let _ = runtime::settings();
    runtime::set_premade_netns(warm::helper_netns);
    warm::start_helper();
}

#[used]
#[link_section = ".init_array"]
static AT_LOAD: extern "C" fn() = at_load;
