//! See `checks.rs`: udp_cr_decode.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::udp_cr_decode::check(data));
