//! The `.ic` parser never panics, whatever the bytes; errors point inside the file.
#![no_main]
use invite_instrumenter::parse::{ic, Source};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = Source::new("f.ic", data.to_vec());
    if let Err(d) = ic::parse(&src) {
        assert!(d.location.line >= 1 && d.location.column >= 1);
        assert!(d.location.line <= data.iter().filter(|&&b| b == b'\n').count() + 1);
    }
});
