//! Any datagram at a CPE's UDP connection-request port decodes without a panic; every request
//! it accepts re-encodes to one that decodes to the same fields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use radar_cwmp::udp_connection_request as udp;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = udp::decode(data) else {
        return;
    };
    let _ = request.signed_with("password");
    let again = udp::decode(&request.encode("192.0.2.1:7547"));
    if request.signature.bytes().all(|b| b.is_ascii_hexdigit()) && request.encode("192.0.2.1:7547").len() <= udp::MAX_MESSAGE {
        assert_eq!(again.expect("our encoding decodes"), request);
    }
});
