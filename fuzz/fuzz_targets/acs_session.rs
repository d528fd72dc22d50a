//! A session fed arbitrary POST bodies (split on a separator byte) never panics and answers each
//! POST with at most one reply.
#![no_main]

use libfuzzer_sys::fuzz_target;
use radar_core::Timestamp;
use radar_cwmp::session::{AcsSession, Input, Output, SessionConfig};

fuzz_target!(|data: &[u8]| {
    let now = Timestamp(1_000_000);
    let mut session = AcsSession::new(SessionConfig::default(), now);
    for body in data.split(|&b| b == 0xFF) {
        if session.is_closed() {
            break;
        }
        let _ = session.handle(now, Input::Post(body));
        let mut replies = 0;
        while let Some(output) = session.poll_output() {
            match output {
                Output::Reply(_) => replies += 1,
                Output::NeedWork => {
                    let _ = session.handle(now, Input::Work(Vec::new()));
                }
                _ => {}
            }
        }
        assert!(replies <= 1, "one reply per POST");
    }
});
