//! The agent's WebSocket MTP, as obuspa does it: `GET /usp?eid=<percent-encoded id>` with
//! `Sec-WebSocket-Protocol: v1.usp` (and the connection dropped if the controller does not echo
//! it), a WebSocketConnect record first, then the Boot! Event, then requests and notifications.
//! Lost connections are retried with backoff.

use super::agent::{run_effects, AgentInputs, BootReason, Ending, SimAgent};
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tracing::debug;

/// `ws://HOST:PORT/usp?eid=…` for an endpoint id (R-WS.10b: percent-encoded).
pub fn url(controller: &str, endpoint_id: &str) -> String {
    let mut eid = String::new();
    for b in endpoint_id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            eid.push(b as char);
        } else {
            eid.push_str(&format!("%{b:02X}"));
        }
    }
    format!("ws://{controller}/usp?eid={eid}")
}

/// Runs the agent against `ws_url` until the task is dropped.
pub async fn run(agent: Arc<SimAgent>, ws_url: String, mut inputs: AgentInputs) {
    let mut boot = Some(BootReason::default());
    let mut backoff = Duration::from_millis(100);
    loop {
        if !inputs.until_online(&agent, boot.is_some()).await {
            return;
        }
        match session(&agent, &ws_url, &mut inputs, boot.take()).await {
            Ok(Ending::Boot(reason)) => {
                tokio::time::sleep(agent.reboot_delay).await;
                boot = Some(reason);
                backoff = Duration::from_millis(100);
            }
            Ok(Ending::Offline) => backoff = Duration::from_millis(100),
            Ok(Ending::Lost) | Err(_) => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn session(
    agent: &Arc<SimAgent>,
    ws_url: &str,
    inputs: &mut AgentInputs,
    boot: Option<BootReason>,
) -> Result<Ending, String> {
    let mut request = ws_url.into_client_request().map_err(|e| e.to_string())?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("v1.usp"));
    let (mut ws, response) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| e.to_string())?;
    // obuspa drops a connection whose handshake does not echo v1.usp (TR-369 R-WS.3).
    if response
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        != Some("v1.usp")
    {
        let _ = ws.close(None).await;
        return Err("controller did not echo v1.usp".into());
    }
    agent.count_connect();
    let mut first = vec![agent.core().websocket_connect()];
    if let Some(b) = &boot {
        first.extend(
            agent
                .core()
                .boot(&b.cause, &b.command_key, b.firmware_updated),
        );
    }
    for r in first {
        ws.send(Message::Binary(r.into()))
            .await
            .map_err(|e| e.to_string())?;
    }
    loop {
        tokio::select! {
            frame = ws.next() => match frame {
                Some(Ok(Message::Binary(bytes))) => {
                    let replies = agent.core().handle_record(&bytes);
                    for r in replies {
                        ws.send(Message::Binary(r.into())).await.map_err(|e| e.to_string())?;
                    }
                    if let Some(reason) = run_effects(agent) {
                        debug!(agent = %agent.endpoint_id, cause = %reason.cause, "agent rebooting");
                        let _ = ws.close(None).await;
                        return Ok(Ending::Boot(reason));
                    }
                }
                Some(Ok(Message::Close(_))) | None => return Ok(Ending::Lost),
                Some(Err(e)) => return Err(e.to_string()),
                Some(Ok(_)) => {}
            },
            records = inputs.local.recv() => {
                let Some(records) = records else { return Ok(Ending::Lost) };
                for r in records {
                    ws.send(Message::Binary(r.into())).await.map_err(|e| e.to_string())?;
                }
            }
            changed = inputs.online.changed() => {
                if changed.is_err() || !*inputs.online.borrow() {
                    let _ = ws.close(None).await;
                    return Ok(Ending::Offline);
                }
            }
        }
    }
}
