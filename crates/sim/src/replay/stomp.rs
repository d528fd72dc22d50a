//! The scripted agent over a STOMP broker, as obuspa used it (see `tests/fixtures/usp/
//! SOURCES.md`): the `STOMP` command with `endpoint-id` (colons escaped, as obuspa sends it),
//! SUBSCRIBE to the destination its recorded STOMPConnect record names, that record to the
//! controller's destination with `reply-to-dest`, and each request answered from the recording
//! at the request's `reply-to-dest`. A `Device.Reboot()` ends the connection.

use super::{first_records, reply, run_sessions, Identity, Recording};
use radar_usp::proto::msg::Msg;
use radar_usp::record::{self, RecordKind};
use radar_usp::stomp::{self, Decoder, Event, Frame};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Clone)]
pub struct ReplayAgent {
    pub endpoint_id: String,
    pub controller_id: String,
    /// The broker's STOMP listener, `host:port`; guest/guest on virtual host `/`.
    pub server: String,
    /// The controller's destination (obuspa's `Controller.1.MTP.1.STOMP.Destination`).
    pub controller_destination: String,
    pub reboot_delay: Duration,
}

/// Runs until the task is dropped.
pub async fn run(agent: ReplayAgent, recording: Arc<Mutex<Recording>>) {
    let delay = agent.reboot_delay;
    run_sessions(recording.clone(), delay, |connect, boot| {
        let agent = agent.clone();
        let recording = recording.clone();
        async move { session(&agent, &recording, connect, boot).await }
    })
    .await
}

/// One broker connection; `Some(command key)` when it ended with a reboot.
async fn session(
    agent: &ReplayAgent,
    recording: &Mutex<Recording>,
    connect: Option<Vec<u8>>,
    boot: Option<Msg>,
) -> Option<String> {
    let identity = Identity {
        endpoint_id: agent.endpoint_id.clone(),
        controller_id: agent.controller_id.clone(),
    };
    let own = connect
        .as_deref()
        .and_then(|bytes| record::decode(bytes, &agent.controller_id, usize::MAX).ok())
        .and_then(|r| match r.kind {
            RecordKind::StompConnect {
                subscribed_destination,
            } => Some(subscribed_destination),
            _ => None,
        })?;
    let mut stream = TcpStream::connect(&agent.server).await.ok()?;
    // obuspa's connect frame, as recorded.
    let hello = format!(
        "STOMP\naccept-version:1.2\nhost:/\nheart-beat:0,0\nendpoint-id:{}\nlogin:guest\npasscode:guest\n\n\0",
        agent.endpoint_id.replace(':', "\\c")
    );
    stream.write_all(hello.as_bytes()).await.ok()?;
    let mut decoder = Decoder::new(8 * 1024 * 1024);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        decoder.push(&buf[..n]);
        let mut out = Vec::new();
        while let Ok(Some(event)) = decoder.next_event() {
            let Event::Frame(frame) = event else { continue };
            match frame.command.as_str() {
                "CONNECTED" => {
                    out.extend(
                        Frame::new("SUBSCRIBE")
                            .header("id", "0")
                            .header("destination", &own)
                            .header("ack", "auto")
                            .encode(),
                    );
                    for r in first_records(&identity, &connect, &boot) {
                        out.extend(stomp::usp_send(&agent.controller_destination, &own, r));
                    }
                }
                "MESSAGE" => {
                    let reply_to = frame
                        .get(stomp::REPLY_TO_DEST)
                        .unwrap_or(&agent.controller_destination)
                        .to_owned();
                    let reply = reply(&identity, recording, &frame.body);
                    if let Some(bytes) = reply.answer {
                        out.extend(stomp::usp_send(&reply_to, &own, bytes));
                    }
                    if reply.reboot.is_some() {
                        let _ = stream.write_all(&out).await;
                        let _ = stream.write_all(&Frame::new("DISCONNECT").encode()).await;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        return reply.reboot;
                    }
                }
                _ => {}
            }
        }
        if !out.is_empty() {
            stream.write_all(&out).await.ok()?;
        }
    }
}
