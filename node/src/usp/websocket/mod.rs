//! The USP WebSocket MTP (TR-369 §6.4): `GET /usp?eid=…` with subprotocol `v1.usp`, binary
//! frames carrying one Record each, pings answered and sent, one live connection per endpoint id.
//! Over TLS (`wss://`) when `[usp] tls` names a certificate.

use super::agent::{AgentLink, Flow};
use super::registry::{Mailbox, Signal};
use crate::core::NodeCore;
use futures_util::{SinkExt, StreamExt};
use radar_core::DeviceKey;
use radar_usp::record::{self, RecordError};
use radar_usp::websocket::{endpoint_id, offers_usp, HandshakeError, SUBPROTOCOL};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tracing::{debug, warn};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct UspWebSocketServer {
    core: Arc<NodeCore>,
    connections: Arc<AtomicUsize>,
    tls: Option<Arc<crate::tls::ReloadableTls>>,
    /// `[usp] max_connections_per_address`.
    per_address: Arc<radar_core::source_limit::PerAddress>,
}

impl UspWebSocketServer {
    pub fn new(core: Arc<NodeCore>, tls: Option<Arc<crate::tls::ReloadableTls>>) -> Self {
        let per_address = core
            .config
            .connections_per_address(core.config.usp.max_connections_per_address);
        Self {
            core,
            connections: Arc::new(AtomicUsize::new(0)),
            tls,
            per_address,
        }
    }

    pub async fn serve(self, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        warn!(error = %e, "usp accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = shutdown.changed() => return,
            };
            let core = self.core.clone();
            let connections = self.connections.clone();
            let shutdown = shutdown.clone();
            let tls = self
                .tls
                .as_ref()
                .map(|tls| (tls.acceptor(), tls.verifies_clients()));
            let _ = stream.set_nodelay(true);
            let slot = self.per_address.try_acquire(peer.ip());
            if slot.is_none() {
                core.metrics
                    .usp_rejected
                    .with_label_values(&["per_address"])
                    .inc();
            }
            tokio::spawn(async move {
                // Held while the connection lives; none: refused at the handshake.
                let over_address_limit = slot.is_none();
                let _slot = slot;
                connections.fetch_add(1, Ordering::Relaxed);
                match tls {
                    None => {
                        serve_connection(
                            core,
                            stream,
                            peer,
                            None,
                            over_address_limit,
                            shutdown,
                            &connections,
                        )
                        .await
                    }
                    Some((acceptor, verifies_clients)) => {
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                        {
                            Ok(Ok(stream)) => {
                                let certified = verifies_clients.then(|| {
                                    stream
                                        .get_ref()
                                        .1
                                        .peer_certificates()
                                        .and_then(|chain| chain.first())
                                        .map(|leaf| crate::tls::usp_endpoint_ids(leaf))
                                        .unwrap_or_default()
                                });
                                serve_connection(
                                    core,
                                    stream,
                                    peer,
                                    certified,
                                    over_address_limit,
                                    shutdown,
                                    &connections,
                                )
                                .await
                            }
                            _ => {
                                core.metrics
                                    .usp_rejected
                                    .with_label_values(&["tls_handshake"])
                                    .inc();
                            }
                        }
                    }
                }
                connections.fetch_sub(1, Ordering::Relaxed);
            });
        }
    }
}

fn refuse(status: StatusCode, message: &str) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(format!(
        "{{\"error\":{{\"code\":\"usp_handshake\",\"message\":{}}}}}",
        serde_json::Value::String(message.into())
    )));
    *response.status_mut() = status;
    response
}

/// The TR-369 handshake checks, in the tungstenite callback.
// The error type is tungstenite's callback signature, not ours to shrink.
#[allow(clippy::result_large_err)]
fn check_handshake(
    request: &Request,
    mut response: Response,
    busy: Option<&str>,
    certified: Option<&[String]>,
    eid: &mut Option<String>,
) -> Result<Response, ErrorResponse> {
    if let Some(reason) = busy {
        return Err(refuse(StatusCode::SERVICE_UNAVAILABLE, reason));
    }
    let header_values = |name: &str| -> Vec<&str> {
        request
            .headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    };
    let bad = |e: HandshakeError| refuse(StatusCode::BAD_REQUEST, &e.to_string());
    offers_usp(&header_values("sec-websocket-protocol")).map_err(bad)?;
    let target = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let id = endpoint_id(target, &header_values("sec-websocket-extensions")).map_err(bad)?;
    DeviceKey::parse(&id).map_err(|e| refuse(StatusCode::BAD_REQUEST, &format!("bad eid: {e}")))?;
    // With agent certificates required, an agent connects only as the endpoint its
    // certificate names (issue 13; TR-369 Security: the certificate's subjectAltName URI
    // urn:bbf:usp:id:<eid>), so every record on the link is from that endpoint.
    match certified {
        Some([]) => return Err(refuse(
            StatusCode::FORBIDDEN,
            "the client certificate names no USP Endpoint ID (subjectAltName URI urn:bbf:usp:id:…)",
        )),
        Some(names) if !names.contains(&id) => {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                &format!(
                    "the client certificate is for {}, not {id}",
                    names.join(", ")
                ),
            ))
        }
        _ => {}
    }
    *eid = Some(id);
    // Echo the subprotocol, or real agents drop the connection (TR-369 R-WS.3).
    response.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    Ok(response)
}

/// An agent's connection, plain or TLS: generic, so a plain one costs nothing more (B5).
async fn serve_connection<S>(
    core: Arc<NodeCore>,
    stream: S,
    peer: SocketAddr,
    certified: Option<Vec<String>>,
    over_address_limit: bool,
    shutdown: watch::Receiver<bool>,
    connections: &AtomicUsize,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let usp = &core.config.usp;
    let config = WebSocketConfig::default()
        .read_buffer_size(usp.ws_read_buffer_bytes.max(256))
        .write_buffer_size(0)
        .max_message_size(Some(usp.max_record_bytes))
        .max_frame_size(Some(usp.max_record_bytes));
    let busy = if connections.load(Ordering::Relaxed) > usp.max_connections {
        Some("too many usp connections")
    } else if over_address_limit {
        Some("too many usp connections from this address ([usp] max_connections_per_address)")
    } else {
        None
    };
    let mut eid = None;
    #[allow(clippy::result_large_err)]
    let handshake = tokio_tungstenite::accept_hdr_async_with_config(
        stream,
        |req: &Request, resp: Response| {
            check_handshake(req, resp, busy, certified.as_deref(), &mut eid)
        },
        Some(config),
    );
    // Boxed, like the link below: the task's own allocation is as large as its largest state,
    // and the handshake's state is large and short-lived.
    let ws = match tokio::time::timeout(HANDSHAKE_TIMEOUT, Box::pin(handshake)).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            core.metrics
                .usp_rejected
                .with_label_values(&["handshake"])
                .inc();
            debug!(%peer, error = %e, "usp websocket handshake refused");
            return;
        }
        Err(_) => {
            core.metrics
                .usp_rejected
                .with_label_values(&["handshake_timeout"])
                .inc();
            return;
        }
    };
    let Some(device) = eid.and_then(|e| DeviceKey::parse(&e).ok()) else {
        return;
    };
    Box::pin(run_link(core, ws, device, shutdown)).await;
}

async fn close<S>(ws: &mut WebSocketStream<S>, code: CloseCode, reason: &str)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = CloseFrame {
        code,
        reason: reason.chars().take(120).collect::<String>().into(),
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(Some(frame))).await;
}

async fn run_link<S>(
    core: Arc<NodeCore>,
    mut ws: WebSocketStream<S>,
    device: DeviceKey,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mailbox = Mailbox::new();
    let generation = core.usp_agents.register(&device, mailbox.clone());
    let mut link = AgentLink::new(core.clone(), device.clone(), "websocket");
    let ping_interval = core.config.usp.ping_interval;
    let mut ping =
        tokio::time::interval_at(tokio::time::Instant::now() + ping_interval, ping_interval);
    let mut last_heard = Instant::now();
    let nudge_after = core.config.usp.ws_nudge_after;
    let mut last_nudge = Instant::now();
    let controller_id = core.config.usp.controller_id.clone();
    let max = core.config.usp.max_record_bytes;
    let mut out: Vec<Vec<u8>> = Vec::new();
    let reason = loop {
        // One timer for both the session's deadlines and the nudge: an idle connection parks
        // on this future, so every arm costs memory (B5).
        let timeout = link.next_timeout();
        let nudge = (link.awaiting_answers() && !nudge_after.is_zero()).then(|| {
            (last_heard.max(last_nudge) + nudge_after).saturating_duration_since(Instant::now())
        });
        let wake = match (timeout, nudge) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let flow = tokio::select! {
            frame = ws.next() => {
                last_heard = Instant::now();
                match frame {
                    None => break "connection closed".to_string(),
                    // An agent that stops (a reboot, a power cut, a lost line) drops the TCP
                    // connection without a close handshake: ordinary for a CPE, so counted and
                    // not logged above debug.
                    Some(Err(tokio_tungstenite::tungstenite::Error::Protocol(
                        tokio_tungstenite::tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                    ))) => {
                        core.metrics.usp_ws_events.with_label_values(&["reset"]).inc();
                        break "connection reset without closing handshake".to_string();
                    }
                    Some(Err(e)) => {
                        let (reason, code) = match &e {
                            tokio_tungstenite::tungstenite::Error::Capacity(_) => ("oversize", CloseCode::Size),
                            tokio_tungstenite::tungstenite::Error::Protocol(_) => ("protocol", CloseCode::Protocol),
                            _ => ("io", CloseCode::Abnormal),
                        };
                        core.metrics.usp_rejected.with_label_values(&[reason]).inc();
                        if code != CloseCode::Abnormal {
                            Box::pin(close(&mut ws, code, &e.to_string())).await;
                        }
                        break format!("websocket error: {e}");
                    }
                    Some(Ok(Message::Binary(bytes))) => {
                        match record::decode(&bytes, &controller_id, max) {
                            Ok(record) if record.from_id != device.as_str() => {
                                core.metrics.usp_rejected.with_label_values(&["from_id"]).inc();
                                if core.log_limit.allow(&device, "usp_from_id") {
                                    warn!(device = %device, from_id = %record.from_id.chars().take(64).collect::<String>(), "record from another endpoint on this connection ignored");
                                }
                                Flow::Continue
                            }
                            // Boxed: the resting state of an idle connection (B5) should not
                            // carry the largest transient future.
                            Ok(record) => Box::pin(link.on_record(record, &mut out)).await,
                            Err(RecordError::WrongRecipient { to_id }) => {
                                // Not for us: ignored, as agents ignore records not for them.
                                core.metrics.usp_rejected.with_label_values(&["to_id"]).inc();
                                if core.log_limit.allow(&device, "usp_to_id") {
                                    warn!(device = %device, %to_id, "record for another controller ignored");
                                }
                                Flow::Continue
                            }
                            Err(e) => {
                                core.metrics.usp_rejected.with_label_values(&["record"]).inc();
                                warn!(device = %device, error = %e, "undecodable usp record; closing");
                                Box::pin(close(&mut ws, CloseCode::Invalid, &e.to_string())).await;
                                break format!("bad record: {e}");
                            }
                        }
                    }
                    Some(Ok(Message::Text(_))) => {
                        core.metrics.usp_rejected.with_label_values(&["text_frame"]).inc();
                        Box::pin(close(&mut ws, CloseCode::Unsupported, "usp records travel in binary frames")).await;
                        break "text frame".to_string();
                    }
                    Some(Ok(Message::Close(_))) => break "agent closed".to_string(),
                    // Pings are answered by tungstenite on the next read or write.
                    Some(Ok(_)) => Flow::Continue,
                }
            }
            signal = mailbox.recv() => match signal {
                Signal::Wake => Box::pin(link.on_wake(&mut out)).await,
                Signal::Record { record, .. } => Box::pin(link.on_record(*record, &mut out)).await,
                Signal::Replaced => {
                    Box::pin(close(&mut ws, CloseCode::Policy, "replaced by a newer connection")).await;
                    break "replaced by a newer connection".to_string();
                }
                Signal::Moved => {
                    // 1013 Try Again Later: the agent reconnects, through the router, to the
                    // shard's new leader.
                    Box::pin(close(&mut ws, CloseCode::Again, "shard leadership moved; reconnect")).await;
                    break "shard leadership moved".to_string();
                }
            },
            _ = sleep_opt(wake) => {
                if nudge.is_some_and(|n| Some(n) == wake) {
                    // A ping makes the agent's WebSocket stack service the connection, and
                    // with it the answers waiting in its send queue (see `ws_nudge_after`).
                    last_nudge = Instant::now();
                    core.metrics.usp_ws_events.with_label_values(&["nudge"]).inc();
                    if Box::pin(ws.send(Message::Ping(Default::default()))).await.is_err() {
                        break "ping failed".to_string();
                    }
                    Flow::Continue
                } else {
                    Box::pin(link.on_timeout(&mut out)).await
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > ping_interval * 2 {
                    core.metrics.usp_rejected.with_label_values(&["dead_peer"]).inc();
                    break "no traffic for two ping intervals".to_string();
                }
                if Box::pin(ws.send(Message::Ping(Default::default()))).await.is_err() {
                    break "ping failed".to_string();
                }
                Flow::Continue
            }
            _ = shutdown.changed() => {
                Box::pin(close(&mut ws, CloseCode::Away, "controller shutting down")).await;
                break "controller shutting down".to_string();
            }
        };
        let mut failed = false;
        for bytes in out.drain(..) {
            if ws.feed(Message::Binary(bytes.into())).await.is_err() {
                failed = true;
                break;
            }
        }
        if failed || ws.flush().await.is_err() {
            break "write failed".to_string();
        }
        if let Flow::Close(reason) = flow {
            Box::pin(close(&mut ws, CloseCode::Normal, &reason)).await;
            break reason;
        }
        link.compact();
        if out.capacity() > 4 {
            out = Vec::new();
        }
    };
    mailbox.close();
    Box::pin(link.disconnected(&reason)).await;
    core.usp_agents.unregister(&device, generation);
}

use super::sleep_opt;

#[cfg(test)]
mod tests {
    fn future_size<A, B, C, D, F: std::future::Future>(_: impl Fn(A, B, C, D) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// An idle connection is parked on this future: keep it small (B5 budgets 8 KB in all).
    #[test]
    fn an_idle_link_future_stays_small() {
        use tokio::net::TcpStream;
        let plain = future_size(super::run_link::<TcpStream>);
        let tls = future_size(super::run_link::<tokio_rustls::server::TlsStream<TcpStream>>);
        eprintln!("run_link future: {plain} bytes, {tls} over TLS");
        assert!(plain < 2048, "run_link future is {plain} bytes");
        // Over TLS the rustls connection state lives inline (~2.4 KB): a wss agent costs that
        // wherever it is kept.
        assert!(
            tls < plain + 3072,
            "run_link future over TLS is {tls} bytes"
        );
    }
}
