//! The journal reader and every output drawn from it never panic, whatever the bytes, and the
//! terminal outputs never carry a control character from the input.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    invite_cli::fuzzing::journal_reader(data);
});
