//! Any datagram at the STUN server decodes without a panic; every Binding Request it accepts
//! gets a response that decodes to the address it came from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use radar_cwmp::stun;

fuzz_target!(|data: &[u8]| {
    let Ok(message) = stun::decode(data) else {
        return;
    };
    if message.is_binding_request() {
        let from = "192.0.2.1:3478".parse().unwrap();
        let response = stun::decode(&stun::binding_response(&message, from)).expect("our response decodes");
        assert_eq!(response.mapped, Some(from));
        assert_eq!(response.transaction, message.transaction);
    }
});
