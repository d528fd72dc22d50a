//! The agent's STOMP MTP, as obuspa does it (v11.0.4 over RabbitMQ, see docs/interop.md):
//! CONNECT naming its endpoint id, SUBSCRIBE to its own destination (or the broker's
//! `subscribe-dest`), a STOMPConnect record to the controller's destination with
//! `reply-to-dest`, then the Boot! Event; requests are answered at their `reply-to-dest`.

use super::agent::{run_effects, AgentInputs, BootReason, Ending, SimAgent};
use radar_usp::stomp::{self, Decoder, Event, Frame};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Clone)]
pub struct Broker {
    /// `host:port` of the broker's STOMP listener.
    pub server: String,
    pub virtual_host: String,
    pub username: String,
    pub password: String,
    /// The controller's destination (`Controller.{i}.MTP.{i}.STOMP.Destination`).
    pub controller_destination: String,
}

/// The destination an agent subscribes to when the broker names none.
pub fn agent_destination(endpoint_id: &str) -> String {
    format!("/queue/usp.agent.{}", endpoint_id.replace("::", "-"))
}

/// Runs the agent against the broker until the task is dropped.
pub async fn run(agent: Arc<SimAgent>, broker: Broker, mut inputs: AgentInputs) {
    let mut boot = Some(BootReason::default());
    loop {
        if !inputs.until_online(&agent, boot.is_some()).await {
            return;
        }
        match session(&agent, &broker, &mut inputs, &mut boot).await {
            Ending::Boot(reason) => {
                tokio::time::sleep(agent.reboot_delay).await;
                boot = Some(reason);
            }
            Ending::Offline => {}
            Ending::Lost => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

async fn session(
    agent: &Arc<SimAgent>,
    broker: &Broker,
    inputs: &mut AgentInputs,
    boot: &mut Option<BootReason>,
) -> Ending {
    let Ok(mut stream) = TcpStream::connect(&broker.server).await else {
        return Ending::Lost;
    };
    let connect = Frame::new("CONNECT")
        .header("accept-version", "1.2")
        .header("host", &broker.virtual_host)
        .header("heart-beat", "0,0")
        .header(stomp::ENDPOINT_ID, &agent.endpoint_id)
        .header("login", &broker.username)
        .header("passcode", &broker.password);
    if stream.write_all(&connect.encode()).await.is_err() {
        return Ending::Lost;
    }
    let mut decoder = Decoder::new(8 * 1024 * 1024);
    let mut buf = vec![0u8; 64 * 1024];
    let mut own = agent_destination(&agent.endpoint_id);
    let mut subscribed = false;
    loop {
        let mut out: Vec<u8> = Vec::new();
        loop {
            let event = match decoder.next_event() {
                Ok(Some(event)) => event,
                Ok(None) => break,
                Err(_) => return Ending::Lost,
            };
            let Event::Frame(frame) = event else { continue };
            match frame.command.as_str() {
                "CONNECTED" if !subscribed => {
                    if let Some(dest) = frame.get(stomp::SUBSCRIBE_DEST).filter(|d| !d.is_empty()) {
                        own = dest.to_owned();
                    }
                    out.extend(
                        Frame::new("SUBSCRIBE")
                            .header("id", "0")
                            .header("destination", &own)
                            .header("ack", "auto")
                            .encode(),
                    );
                    subscribed = true;
                    agent.count_connect();
                    let mut first = vec![agent.core().stomp_connect(&own)];
                    if let Some(b) = boot.take() {
                        first.extend(agent.core().boot(
                            &b.cause,
                            &b.command_key,
                            b.firmware_updated,
                        ));
                    }
                    for r in first {
                        out.extend(stomp::usp_send(&broker.controller_destination, &own, r));
                    }
                }
                "MESSAGE" => {
                    let reply_to = frame
                        .get(stomp::REPLY_TO_DEST)
                        .unwrap_or(&broker.controller_destination)
                        .to_owned();
                    let replies = agent.core().handle_record(&frame.body);
                    for r in replies {
                        out.extend(stomp::usp_send(&reply_to, &own, r));
                    }
                    if let Some(reason) = run_effects(agent) {
                        let _ = stream.write_all(&out).await;
                        let _ = stream.write_all(&Frame::new("DISCONNECT").encode()).await;
                        return Ending::Boot(reason);
                    }
                }
                "ERROR" => return Ending::Lost,
                _ => {}
            }
        }
        if !out.is_empty() && stream.write_all(&out).await.is_err() {
            return Ending::Lost;
        }
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => return Ending::Lost,
                Ok(n) => decoder.push(&buf[..n]),
            },
            records = inputs.local.recv(), if subscribed => {
                let Some(records) = records else { return Ending::Lost };
                for r in records {
                    if stream.write_all(&stomp::usp_send(&broker.controller_destination, &own, r)).await.is_err() {
                        return Ending::Lost;
                    }
                }
            }
            changed = inputs.online.changed() => {
                if changed.is_err() || !*inputs.online.borrow() {
                    let bye = agent.core().disconnect_record("agent going offline");
                    let _ = stream.write_all(&stomp::usp_send(&broker.controller_destination, &own, bye)).await;
                    let _ = stream.write_all(&Frame::new("DISCONNECT").encode()).await;
                    return Ending::Offline;
                }
            }
        }
    }
}
