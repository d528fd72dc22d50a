//! Any bytes a device can send must decode to a message or a typed error, never a panic; and
//! whatever decodes must survive an encode/decode round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use radar_cwmp::Envelope;

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = Envelope::decode(data) {
        let encoded = envelope.encode();
        let again = Envelope::decode(encoded.as_bytes()).expect("our own encoding decodes");
        assert_eq!(again.message, envelope.message);
    }
});
