//! What runs when the library is loaded, before `main`, while the process is small and has one
//! thread: the working directory is remembered, and the warm pods' helper is started (blanks and
//! the pods' network namespace then come from it, never from a fork of the host).

use crate::{runtime, warm};

extern "C" fn at_load() {
    runtime::capture_start_cwd();
    runtime::set_premade_netns(warm::helper_netns);
    warm::start_helper();
}

#[used]
#[link_section = ".init_array"]
static AT_LOAD: extern "C" fn() = at_load;
