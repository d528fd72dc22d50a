//! Any bytes an agent can send decode to a Record or a typed error, never a panic; a decoded
//! message re-encodes and decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use radar_usp::record::{decode, encode_message, RecordKind};

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = decode(data, "self::radar", 1 << 20) {
        if let RecordKind::Message(msg) = record.kind {
            let bytes = encode_message("self::radar", &record.from_id, &msg);
            let again = decode(&bytes, "self::radar", 1 << 20).expect("our own encoding decodes");
            assert_eq!(again.kind, RecordKind::Message(msg));
        }
    }
});
