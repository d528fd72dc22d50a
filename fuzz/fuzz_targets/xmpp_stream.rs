//! See `checks.rs`: xmpp_stream.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::xmpp_stream::check(data));
