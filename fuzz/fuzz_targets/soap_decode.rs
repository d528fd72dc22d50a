//! See `checks.rs`: soap_decode.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::soap_decode::check(data));
