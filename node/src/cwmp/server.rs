//! The ACS HTTP endpoint. Each POST is fed to the device's sans-IO session; session events are
//! committed to the twin before the reply that acknowledges them is sent.
//!
//! Sessions are found by the `radar_session` cookie, and, for CPEs that never echo cookies, by
//! the TCP connection the session started on. Cookies are parsed tolerantly: RFC 2109
//! `$Version="0"; …; $Path=/` forms, several cookies joined with `, `, and stale cookies (a new
//! Inform always starts a new session).

use super::auth::{AuthResult, Authenticator};
use super::translate::{event_commands, session_tasks, SessionMemory};
use crate::core::NodeCore;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use radar_core::Timestamp;
use radar_cwmp::session::identity::BoundIdentity;
use radar_cwmp::session::{AcsSession, CloseReason, Input, Output, SessionConfig, SessionEvent};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{debug, info, warn, Instrument};

pub use radar_cwmp::cookie::SESSION_COOKIE;

struct Slot {
    id: String,
    session: AcsSession,
    memory: SessionMemory,
}

pub struct AcsServer {
    core: Arc<NodeCore>,
    auth: Authenticator,
    sessions: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
    /// The open session of each device, so a device's new session ends its unfinished older
    /// one at once (a CPE that died mid-session comes back on a new connection, and without
    /// cookies nothing else ties the two).
    by_device: Mutex<HashMap<radar_core::DeviceKey, String>>,
    active: AtomicUsize,
    session_config: SessionConfig,
    tls: Option<Arc<crate::tls::ReloadableTls>>,
    /// `[cwmp] max_connections_per_address`.
    per_address: Arc<radar_core::source_limit::PerAddress>,
}

/// The identity a CPE's verified client certificate gives (issue 13): its subject's common
/// name, read like a device credential's username (`OUI-SerialNumber`,
/// `OUI-ProductClass-SerialNumber`, the serial number or the device key), so the CPE informs
/// only as that device.
fn certificate_identity(
    tls: &tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
) -> Option<BoundIdentity> {
    let leaf = tls.get_ref().1.peer_certificates()?.first()?;
    let name = crate::tls::subject_common_name(leaf)?;
    Some(BoundIdentity {
        username: name,
        device: None,
    })
}

/// Per TCP connection: the session last used on it, for CPEs that do not echo cookies.
#[derive(Default)]
struct Connection {
    session: Mutex<Option<String>>,
    /// The device the CPE's verified TLS client certificate names (`[cwmp] tls.client_ca`).
    certificate: Option<BoundIdentity>,
}

type Reply = Response<Full<Bytes>>;

impl AcsServer {
    pub fn new(core: Arc<NodeCore>, tls: Option<Arc<crate::tls::ReloadableTls>>) -> Arc<Self> {
        let cfg = &core.config.cwmp;
        let session_config = SessionConfig {
            idle_timeout: cfg.session_idle_timeout,
            gpv_batch_size: cfg.gpv_batch_size,
            ..Default::default()
        };
        let per_address = core
            .config
            .connections_per_address(cfg.max_connections_per_address);
        Arc::new(Self {
            auth: Authenticator::new(cfg),
            core,
            sessions: Mutex::new(HashMap::new()),
            by_device: Mutex::new(HashMap::new()),
            active: AtomicUsize::new(0),
            per_address,
            session_config,
            tls,
        })
    }

    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let reaper = tokio::spawn(self.clone().reap_idle_sessions());
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        warn!(error = %e, "cwmp accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = shutdown.changed() => break,
            };
            let server = self.clone();
            let slot = self.per_address.try_acquire(peer.ip());
            tokio::spawn(async move {
                let _slot = slot.as_ref();
                match server.tls.as_ref().map(|tls| tls.acceptor()) {
                    None if slot.is_none() => server.refuse_busy(stream, peer).await,
                    None => server.serve_connection_as(stream, peer, None).await,
                    Some(acceptor) => {
                        // A handshake that stalls must not hold a task forever.
                        match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                            .await
                        {
                            Ok(Ok(tls)) if slot.is_none() => server.refuse_busy(tls, peer).await,
                            Ok(Ok(tls)) => {
                                let certificate = certificate_identity(&tls);
                                server.serve_connection_as(tls, peer, certificate).await
                            }
                            Ok(Err(e)) => debug!(peer = %peer, error = %e, "tls handshake failed"),
                            Err(_) => debug!(peer = %peer, "tls handshake timed out"),
                        }
                    }
                }
            });
        }
        reaper.abort();
    }

    /// A connection over `[cwmp] max_connections_per_address`: its request gets 503 with
    /// Retry-After (TR-069 §3.4.1 lets the ACS turn a CPE away so), then the connection closes.
    async fn refuse_busy<I>(&self, mut io: I, peer: std::net::SocketAddr)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        self.core
            .metrics
            .cwmp_rejected
            .with_label_values(&["per_address"])
            .inc();
        debug!(peer = %peer, "cwmp connection over the per-address limit");
        // Read what the client sent first, so closing does not reset the connection.
        let mut request = vec![0u8; 16 * 1024];
        let _ = tokio::time::timeout(Duration::from_secs(2), io.read(&mut request)).await;
        let body = "too many connections from this address\n";
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.core.config.cwmp.retry_after_seconds,
            body.len()
        );
        let _ = io.write_all(answer.as_bytes()).await;
        let _ = io.shutdown().await;
    }

    async fn serve_connection_as<I>(
        self: Arc<Self>,
        io: I,
        peer: std::net::SocketAddr,
        certificate: Option<BoundIdentity>,
    ) where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let connection = Arc::new(Connection {
            session: Mutex::new(None),
            certificate,
        });
        let service = hyper::service::service_fn(move |req| {
            let server = self.clone();
            let connection = connection.clone();
            async move { Ok::<_, Infallible>(server.handle(req, &connection).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(Duration::from_secs(30))
            .serve_connection(hyper_util::rt::TokioIo::new(io), service);
        if let Err(e) = conn.await {
            debug!(peer = %peer, error = %e, "cwmp connection ended with an error");
        }
    }

    async fn handle(&self, req: Request<Incoming>, connection: &Connection) -> Reply {
        if req.method() != hyper::Method::POST {
            return plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "the cwmp endpoint accepts POST only\n",
            );
        }
        let cap = self.core.config.cwmp.max_body_bytes;
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|len| len > cap as u64) {
            // Refuse before reading: a body size is never trusted.
            self.core
                .metrics
                .cwmp_rejected
                .with_label_values(&["too_large"])
                .inc();
            let mut r = plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body exceeds the configured maximum\n",
            );
            r.headers_mut()
                .insert("connection", HeaderValue::from_static("close"));
            return r;
        }
        let cookie_session = session_cookie(req.headers());
        let authorization = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = match Limited::new(req.into_body(), cap).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    self.core
                        .metrics
                        .cwmp_rejected
                        .with_label_values(&["too_large"])
                        .inc();
                    return plain(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "request body exceeds the configured maximum\n",
                    );
                }
                return plain(StatusCode::BAD_REQUEST, "could not read the request body\n");
            }
        };

        let existing = {
            let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            let by_connection = connection
                .session
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            cookie_session
                .and_then(|id| sessions.get(&id).cloned())
                .or_else(|| by_connection.and_then(|id| sessions.get(&id).cloned()))
        };
        let slot = match existing {
            Some(slot) => slot,
            None => {
                let checked = match &connection.certificate {
                    // TLS verified the certificate: it authenticates the CPE, as its device.
                    Some(certified) => AuthResult::Allowed {
                        username: Some(certified.username.clone()),
                        identity: Some(certified.clone()),
                    },
                    None => self.auth.check("POST", authorization.as_deref()),
                };
                let identity = match checked {
                    AuthResult::Allowed { identity, .. } => identity,
                    AuthResult::Challenge(challenges) => {
                        self.core
                            .metrics
                            .cwmp_rejected
                            .with_label_values(&["unauthorized"])
                            .inc();
                        let mut r = plain(StatusCode::UNAUTHORIZED, "authentication required\n");
                        for c in challenges {
                            if let Ok(v) = HeaderValue::from_str(&c) {
                                r.headers_mut().append(hyper::header::WWW_AUTHENTICATE, v);
                            }
                        }
                        return r;
                    }
                };
                if self.active.load(Ordering::Relaxed) >= self.core.config.cwmp.max_sessions {
                    self.core
                        .metrics
                        .cwmp_rejected
                        .with_label_values(&["overloaded"])
                        .inc();
                    let mut r = plain(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "too many sessions in flight\n",
                    );
                    let retry = self.core.config.cwmp.retry_after_seconds.to_string();
                    r.headers_mut().insert(
                        "retry-after",
                        HeaderValue::from_str(&retry).unwrap_or(HeaderValue::from_static("30")),
                    );
                    return r;
                }
                let id = radar_cwmp::cookie::new_session_id(
                    self.core.config.node_id,
                    rand::random::<[u8; 16]>(),
                );
                let mut session = AcsSession::new(self.session_config.clone(), Timestamp::now());
                if let Some(identity) = identity {
                    session.bind_identity(identity);
                }
                let slot = Arc::new(tokio::sync::Mutex::new(Slot {
                    id: id.clone(),
                    session,
                    memory: SessionMemory::default(),
                }));
                self.active.fetch_add(1, Ordering::Relaxed);
                self.core.metrics.cwmp_sessions_active.inc();
                self.sessions
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id, slot.clone());
                slot
            }
        };

        let mut slot = slot.lock().await;
        let now = Timestamp::now();
        if let Err(e) = slot.session.handle(now, Input::Post(&body)) {
            warn!(error = %e, "cwmp session refused input");
        }
        let span = session_span(&slot);
        let reply = self.drive(&mut slot).instrument(span).await;
        let id = slot.id.clone();
        if slot.session.is_closed() {
            self.forget_device_session(&slot);
            self.remove(&id);
            *connection.session.lock().unwrap_or_else(|e| e.into_inner()) = None;
        } else {
            *connection.session.lock().unwrap_or_else(|e| e.into_inner()) = Some(id.clone());
        }
        let mut response = match reply {
            Some(r) if r.status == 204 => Response::builder()
                .status(204)
                .body(Full::new(Bytes::new()))
                .expect("valid response"),
            Some(r) => Response::builder()
                .status(r.status)
                .header(CONTENT_TYPE, "text/xml; charset=\"utf-8\"")
                .body(Full::new(Bytes::from(r.body)))
                .expect("valid response"),
            None => plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "the twin store is unavailable; retry later\n",
            ),
        };
        if !slot.session.is_closed() {
            if let Ok(v) =
                HeaderValue::from_str(&format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly"))
            {
                response.headers_mut().insert(hyper::header::SET_COOKIE, v);
            }
        }
        response
    }

    /// Drains session outputs: commits events, plans work, and returns the HTTP reply. `None`
    /// means an event could not be committed, so the device must not be acknowledged.
    async fn drive(&self, slot: &mut Slot) -> Option<radar_cwmp::session::Reply> {
        let mut reply = None;
        while let Some(output) = slot.session.poll_output() {
            match output {
                Output::Event(event) => {
                    if let SessionEvent::Inform { device, inform } = &event {
                        let codes: Vec<&str> =
                            inform.events.iter().map(|e| e.code.as_str()).collect();
                        // Debug, not info: a carrier fleet informs millions of times a day.
                        tracing::debug!(device = %device, events = ?codes, "inform");
                        let previous = self
                            .by_device
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(device.clone(), slot.id.clone());
                        if let Some(previous) = previous.filter(|p| *p != slot.id) {
                            Box::pin(self.supersede(&previous)).await;
                        }
                    }
                    if let SessionEvent::RpcResult {
                        result: radar_cwmp::session::RpcResult::Fault(f),
                        ..
                    } = &event
                    {
                        self.core
                            .metrics
                            .cwmp_faults
                            .with_label_values(&[&f.code.to_string()])
                            .inc();
                    }
                    let Some(device) = slot.session.device().cloned() else {
                        continue;
                    };
                    for command in event_commands(&device, &event, Timestamp::now(), &slot.memory) {
                        if let Err(e) = self.core.propose(command).await {
                            match e {
                                crate::shard::ProposeError::Apply(apply) => {
                                    debug!(error = %apply, "twin command not applied")
                                }
                                other => {
                                    warn!(error = %other, "could not commit session event; not acknowledging");
                                    self.close_slot(slot);
                                    return None;
                                }
                            }
                        }
                    }
                }
                Output::NeedWork => {
                    let tasks = match slot.session.device() {
                        Some(device) => {
                            let planned = self.core.plan(device, Timestamp::now());
                            let memory = &mut slot.memory;
                            self.core
                                .fleet
                                .with_twin(device, |twin, dict| {
                                    session_tasks(planned, twin, dict, self.core.model, memory)
                                })
                                .unwrap_or_default()
                        }
                        None => Vec::new(),
                    };
                    if let Err(e) = slot.session.handle(Timestamp::now(), Input::Work(tasks)) {
                        warn!(error = %e, "session refused work");
                    }
                }
                Output::Reply(r) => reply = Some(r),
                Output::Close(reason) => {
                    self.core
                        .metrics
                        .cwmp_sessions
                        .with_label_values(&[close_label(reason)])
                        .inc();
                    // The one line per session (its span names the device).
                    info!(outcome = close_label(reason), "cwmp session ended");
                }
            }
        }
        for method in slot.session.take_sent_methods() {
            self.core
                .metrics
                .cwmp_rpcs
                .with_label_values(&[method])
                .inc();
        }
        reply
    }

    fn close_slot(&self, slot: &mut Slot) {
        // Drop the session: the device retries the whole session, which is safe because every
        // committed command is idempotent or keyed.
        let _ = slot.session.handle(Timestamp(u64::MAX), Input::Timeout);
        while slot.session.poll_output().is_some() {}
    }

    /// Ends a device's older, unfinished session: what it had outstanding is abandoned (and
    /// re-queued) before the new session plans its work.
    async fn supersede(&self, id: &str) {
        let slot = self
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned();
        let Some(slot) = slot else { return };
        // Busy with a request right now: the idle reaper ends it later.
        let Ok(mut slot) = slot.try_lock() else {
            return;
        };
        let _ = slot.session.handle(Timestamp(u64::MAX), Input::Timeout);
        let span = session_span(&slot);
        let _ = self.drive(&mut slot).instrument(span).await;
        self.remove(id);
    }

    fn forget_device_session(&self, slot: &Slot) {
        if let Some(device) = slot.session.device() {
            let mut by_device = self.by_device.lock().unwrap_or_else(|e| e.into_inner());
            if by_device.get(device) == Some(&slot.id) {
                by_device.remove(device);
            }
        }
    }

    fn remove(&self, id: &str) {
        if self
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)
            .is_some()
        {
            self.active.fetch_sub(1, Ordering::Relaxed);
            self.core.metrics.cwmp_sessions_active.dec();
        }
    }

    /// Expires sessions whose CPE went quiet, re-queueing anything they had outstanding.
    async fn reap_idle_sessions(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tick.tick().await;
            let slots: Vec<_> = self
                .sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .cloned()
                .collect();
            let now = Timestamp::now();
            for slot in slots {
                let Ok(mut slot) = slot.try_lock() else {
                    continue;
                };
                if slot.session.poll_timeout().is_some_and(|t| t <= now) || slot.session.is_closed()
                {
                    let _ = slot.session.handle(now, Input::Timeout);
                    let span = session_span(&slot);
                    let _ = self.drive(&mut slot).instrument(span).await;
                    self.forget_device_session(&slot);
                    debug!(
                        device = slot.session.device().map(|d| d.as_str()).unwrap_or("-"),
                        "cwmp session timed out"
                    );
                    let id = slot.id.clone();
                    self.remove(&id);
                }
            }
        }
    }
}

/// Every line of a session names its device.
fn session_span(slot: &Slot) -> tracing::Span {
    tracing::info_span!(
        "cwmp",
        proto = "cwmp",
        device = slot.session.device().map(|d| d.as_str()).unwrap_or("-")
    )
}

fn close_label(reason: CloseReason) -> &'static str {
    match reason {
        CloseReason::Done => "done",
        CloseReason::IdleTimeout => "idle_timeout",
        CloseReason::ProtocolError => "protocol_error",
        CloseReason::Superseded => "superseded",
        CloseReason::IdentityMismatch => "identity_mismatch",
        CloseReason::TooManyRpcs => "too_many_rpcs",
    }
}

fn plain(status: StatusCode, text: &'static str) -> Reply {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from_static(text.as_bytes())))
        .expect("valid response")
}

/// Finds our session id among the request's cookies, tolerating RFC 2109 attributes
/// (`$Version`, `$Path`), `;` and `, ` separators, quotes, and several Cookie headers.
pub fn session_cookie(headers: &hyper::HeaderMap) -> Option<String> {
    radar_cwmp::cookie::session_cookie(
        headers
            .get_all(hyper::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> hyper::HeaderMap {
        let mut h = hyper::HeaderMap::new();
        for v in values {
            h.append(hyper::header::COOKIE, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn cookies_in_every_form_real_cpes_send() {
        assert_eq!(
            session_cookie(&headers(&["radar_session=abc"])),
            Some("abc".into())
        );
        assert_eq!(
            session_cookie(&headers(&[
                "$Version=\"0\"; radar_session=\"abc\"; $Path=/"
            ])),
            Some("abc".into())
        );
        assert_eq!(
            session_cookie(&headers(&["ID=37, DeviceId=x, radar_session=abc, task=1"])),
            Some("abc".into())
        );
        assert_eq!(
            session_cookie(&headers(&["a=1", "radar_session=abc"])),
            Some("abc".into())
        );
        assert_eq!(session_cookie(&headers(&["other=1"])), None);
    }
}
