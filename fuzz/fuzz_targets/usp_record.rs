//! See `checks.rs`: usp_record.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::usp_record::check(data));
