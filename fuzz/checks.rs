//! The fuzz targets' checks, one module per target, shared by the cargo-fuzz binaries
//! (`fuzz_targets/*.rs`, nightly) and by a stable test that runs every seed in `fuzz/seeds/`
//! through them (`crates/radar/tests/fuzz_seeds.rs`), so CI exercises each decoder with deep and
//! long inputs even where nightly is missing. `cargo fuzz run <target> fuzz/corpus/<target>
//! fuzz/seeds/<target>` starts from the seeds.

#![allow(dead_code)]

/// Any bytes a device can send must decode to a message or a typed error, never a panic; and
/// whatever decodes must survive an encode/decode round trip unchanged.
pub mod soap_decode {
    use radar_cwmp::Envelope;

    pub fn check(data: &[u8]) {
        if let Ok(envelope) = Envelope::decode(data) {
            let encoded = envelope.encode();
            let again = Envelope::decode(encoded.as_bytes()).expect("our own encoding decodes");
            assert_eq!(again.message, envelope.message);
        }
    }
}

/// A session fed arbitrary POST bodies (split on a separator byte) never panics and answers each
/// POST with at most one reply.
pub mod acs_session {
    use radar_core::Timestamp;
    use radar_cwmp::message::CwmpMessage;
    use radar_cwmp::rpc::get_parameter_values::GetParameterValues;
    use radar_cwmp::session::{AcsSession, Input, Origin, Output, SessionConfig, Task};

    /// Work of every shape, so the CPE's (fuzzed) answers meet each kind of outstanding request:
    /// a tree read that carries an operation, a GetParameterValues of an object path, a discovery.
    fn work() -> Vec<Task> {
        vec![
            Task::ReadTree {
                prefix: "Device.ManagementServer.".into(),
                origin: Some(Origin::Operation(1)),
            },
            Task::Rpc {
                origin: Origin::Operation(2),
                message: CwmpMessage::GetParameterValues(GetParameterValues {
                    names: vec!["Device.DeviceInfo.".into()],
                }),
            },
            Task::Discover {
                prefix: "Device.".into(),
            },
        ]
    }

    pub fn check(data: &[u8]) {
        let now = Timestamp(1_000_000);
        let mut session = AcsSession::new(
            SessionConfig {
                gpv_batch_size: 2,
                ..Default::default()
            },
            now,
        );
        let mut given = false;
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
                        let tasks = if std::mem::replace(&mut given, true) {
                            Vec::new()
                        } else {
                            work()
                        };
                        let _ = session.handle(now, Input::Work(tasks));
                    }
                    _ => {}
                }
            }
            assert!(replies <= 1, "one reply per POST");
        }
    }
}

/// Operator query text never panics the parser; errors carry a position inside the input.
pub mod query_parse {

    pub fn check(data: &[u8]) {
        if let Ok(text) = std::str::from_utf8(data) {
            if let Err(e) = radar_twin::query::parse(text) {
                assert!(e.position <= text.len());
            }
        }
    }
}

/// Any bytes an agent can send decode to a Record or a typed error, never a panic; a decoded
/// message re-encodes and decodes to the same value.
pub mod usp_record {
    use radar_usp::record::{decode, encode_message, RecordKind};

    pub fn check(data: &[u8]) {
        if let Ok(record) = decode(data, "self::radar", 1 << 20) {
            if let RecordKind::Message(msg) = record.kind {
                let bytes = encode_message("self::radar", &record.from_id, &msg);
                let again =
                    decode(&bytes, "self::radar", 1 << 20).expect("our own encoding decodes");
                assert_eq!(again.kind, RecordKind::Message(msg));
            }
        }
    }
}

/// Any sequence of Msgs an agent can send, in any order, drives the controller's agent session
/// without a panic: responses with unknown ids, wrong types, malformed bodies, notifies of every
/// kind, and timeouts in between.
pub mod usp_session {
    use prost::Message;
    use radar_core::Timestamp;
    use radar_usp::proto::msg::Msg;
    use radar_usp::request::Request;
    use radar_usp::session::{AgentSession, Input, OutgoingOperation, Output, SessionConfig, Sync};
    use std::sync::Arc;

    pub fn check(data: &[u8]) {
        let mut session = AgentSession::new(Arc::new(SessionConfig::default()), "f");
        let sync = if data.first().is_some_and(|b| b & 1 == 1) {
            Sync::Discover
        } else {
            Sync::Resync {
                subtrees: vec!["Device.WiFi.".into(), "Device.DeviceInfo.".into()],
            }
        };
        session.handle(Timestamp(0), Input::Connected(sync));
        let mut sent_ids = Vec::new();
        let mut now = 0u64;
        // Chunks: a length byte, then that many bytes of Msg.
        let mut rest = data.get(1..).unwrap_or_default();
        while let Some((&len, tail)) = rest.split_first() {
            let len = usize::from(len).min(tail.len());
            let (chunk, tail) = tail.split_at(len);
            rest = tail;
            now += 100;
            if let Ok(mut msg) = Msg::decode(chunk) {
                // Half the time, answer a request Radar really sent, so responses get interpreted.
                if let (Some(header), Some(id)) = (msg.header.as_mut(), sent_ids.pop()) {
                    if len % 2 == 0 {
                        header.msg_id = id;
                    }
                }
                session.handle(Timestamp(now), Input::Msg(msg));
            }
            if len % 7 == 0 {
                session.handle_timeout(Timestamp(now + 60_000));
            }
            if len % 11 == 3 {
                // A quiet MQTT agent's liveness probe.
                session.handle(Timestamp(now), Input::CheckAlive);
            }
            while let Some(out) = session.poll_output() {
                match out {
                    Output::Send(m) | Output::SendOperation { msg: m, .. } => {
                        if let Some(h) = m.header {
                            sent_ids.push(h.msg_id);
                        }
                    }
                    Output::NeedWork => session.handle(
                        Timestamp(now),
                        Input::Work(Some(OutgoingOperation {
                            id: now,
                            request: Request::Get {
                                paths: vec!["Device.".into()],
                                max_depth: 0,
                            },
                        })),
                    ),
                    _ => {}
                }
            }
        }
        session.handle(Timestamp(now), Input::Disconnected);
    }
}

/// Any bytes from a STOMP broker, split anywhere, decode without a panic or unbounded buffering;
/// every frame decoded re-encodes to one that decodes to the same command and body.
pub mod stomp_decode {
    use radar_usp::stomp::{Decoder, Event};

    const MAX: usize = 64 * 1024;

    pub fn check(data: &[u8]) {
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
    }
}

/// Any datagram at the STUN server decodes without a panic; every Binding Request it accepts
/// gets a response that decodes to the address it came from.
pub mod stun_decode {
    use radar_cwmp::stun;

    pub fn check(data: &[u8]) {
        let Ok(message) = stun::decode(data) else {
            return;
        };
        if message.is_binding_request() {
            let from = "192.0.2.1:3478".parse().unwrap();
            let response = stun::decode(&stun::binding_response(&message, from))
                .expect("our response decodes");
            assert_eq!(response.mapped, Some(from));
            assert_eq!(response.transaction, message.transaction);
        }
    }
}

/// Any datagram at a CPE's UDP connection-request port decodes without a panic; every request
/// it accepts re-encodes to one that decodes to the same fields.
pub mod udp_cr_decode {
    use radar_cwmp::udp_connection_request as udp;

    pub fn check(data: &[u8]) {
        let Ok(request) = udp::decode(data) else {
            return;
        };
        let _ = request.signed_with("password");
        let again = udp::decode(&request.encode("192.0.2.1:7547"));
        if request.signature.bytes().all(|b| b.is_ascii_hexdigit())
            && request.encode("192.0.2.1:7547").len() <= udp::MAX_MESSAGE
        {
            assert_eq!(again.expect("our encoding decodes"), request);
        }
    }
}

/// Whatever an XMPP server (or anyone on the path) sends, split anywhere, the client session
/// never panics and never buffers without bound.
pub mod xmpp_stream {
    use radar_cwmp::xmpp::{framing::MAX_STANZA, ClientConfig, XmppClient};

    pub fn check(data: &[u8]) {
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
    }
}
