//! See `checks.rs`: acs_session.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::acs_session::check(data));
