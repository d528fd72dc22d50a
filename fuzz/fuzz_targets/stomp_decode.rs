//! See `checks.rs`: stomp_decode.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::stomp_decode::check(data));
