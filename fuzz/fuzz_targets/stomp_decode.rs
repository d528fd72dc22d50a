//! Any bytes from a STOMP broker, split anywhere, decode without a panic or unbounded buffering;
//! every frame decoded re-encodes to one that decodes to the same command and body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use radar_usp::stomp::{Decoder, Event};

const MAX: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map(|b| usize::from(*b).max(1)).unwrap_or(1);
    let mut decoder = Decoder::new(MAX);
    'feed: for chunk in data.get(1..).unwrap_or_default().chunks(split) {
        decoder.push(chunk);
        loop {
            match decoder.next_event() {
                // (The encoder adds a content-length header, so a frame already at the header
                // cap is not re-encoded.)
                Ok(Some(Event::Frame(frame))) if frame.headers.len() < 60 => {
                    let mut again = Decoder::new(MAX * 2);
                    again.push(&frame.encode());
                    match again.next_event() {
                        Ok(Some(Event::Frame(f))) => {
                            assert_eq!(f.command, frame.command);
                            assert_eq!(f.body, frame.body);
                        }
                        other => panic!("re-encoded frame did not decode: {other:?}"),
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => break 'feed,
            }
        }
    }
});
