//! Whatever an XMPP server (or anyone on the path) sends, split anywhere, the client session
//! never panics and never buffers without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use radar_cwmp::xmpp::{framing::MAX_STANZA, ClientConfig, XmppClient};

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let mut client = XmppClient::new(ClientConfig {
        local: "radar".into(),
        domain: "localhost".into(),
        password: "p".into(),
        resource: "acs".into(),
        tls_available: split & 1 == 1,
        allow_plaintext_auth: true,
    });
    let chunk = usize::from(split).max(1);
    for piece in rest.chunks(chunk) {
        if client.feed(piece).is_err() {
            break;
        }
        while client.poll_event().is_some() {}
        assert!(client.take_transmit().len() <= 2 * MAX_STANZA);
    }
});
