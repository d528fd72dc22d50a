//! Any sequence of Msgs an agent can send, in any order, drives the controller's agent session
//! without a panic: responses with unknown ids, wrong types, malformed bodies, notifies of every
//! kind, and timeouts in between.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use radar_core::Timestamp;
use radar_usp::proto::msg::Msg;
use radar_usp::request::Request;
use radar_usp::session::{AgentSession, Input, OutgoingOperation, Output, SessionConfig, Sync};
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let mut session = AgentSession::new(Arc::new(SessionConfig::default()), "f");
    let sync = if data.first().is_some_and(|b| b & 1 == 1) {
        Sync::Discover
    } else {
        Sync::Resync { subtrees: vec!["Device.WiFi.".into(), "Device.DeviceInfo.".into()] }
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
                        request: Request::Get { paths: vec!["Device.".into()], max_depth: 0 },
                    })),
                ),
                _ => {}
            }
        }
    }
    session.handle(Timestamp(now), Input::Disconnected);
});
