//! Operator query text never panics the parser; errors carry a position inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = radar_twin::query::parse(text) {
            assert!(e.position <= text.len());
        }
    }
});
