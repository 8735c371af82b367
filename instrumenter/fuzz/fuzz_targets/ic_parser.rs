//! The `.ic` parser never panics, whatever the bytes; errors point inside the file.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    invite_instrumenter::fuzzing::ic_parser(data);
});
