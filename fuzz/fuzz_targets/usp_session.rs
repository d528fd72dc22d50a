//! See `checks.rs`: usp_session.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::usp_session::check(data));
