//! The XMPP connection request of TR-069 Annex K: Radar keeps one session with the operator's
//! XMPP server as its own JID and sends the `connectionRequest` IQ to the device's
//! `ConnReqJabberID`; the server routes it over the connection the CPE itself keeps open, so
//! it crosses any NAT. Unlike UDP it is acknowledged: the CPE answers `result`, or an error
//! (`not-authorized` for wrong credentials).
//!
//! The XMPP session is sans-IO in `radar_cwmp::xmpp`; this is its socket loop, with STARTTLS
//! (rustls), reconnection with backoff, whitespace keepalives and a deadline per request.

use super::{Mechanism, RequestResult, Target};
use crate::config::XmppConfig;
use crate::metrics::Metrics;
use radar_cwmp::xmpp::{connection_request, ClientConfig, Event, IqType, XmppClient};
use rustls_pki_types::pem::PemObject;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, info, warn};

struct Request {
    to: String,
    username: String,
    password: String,
    reply: oneshot::Sender<RequestResult>,
}

pub struct XmppMechanism {
    requests: mpsc::Sender<Request>,
    connected: Arc<AtomicBool>,
}

impl XmppMechanism {
    /// Starts the XMPP session task (it reconnects for as long as the node runs). Fails on an
    /// unusable configuration.
    pub fn start(
        config: XmppConfig,
        timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<Self, String> {
        let (local, domain) = config
            .jid
            .split_once('@')
            .map(|(l, d)| (l.to_owned(), d.split('/').next().unwrap_or(d).to_owned()))
            .filter(|(l, d)| !l.is_empty() && !d.is_empty())
            .ok_or_else(|| {
                format!(
                    "connection_request.xmpp.jid {:?} is not a bare JID like radar@example.net",
                    config.jid
                )
            })?;
        let tls = match &config.tls_ca_file {
            Some(path) => Some(tls_connector(path)?),
            None => None,
        };
        let client = ClientConfig {
            local,
            domain,
            password: config.password.clone(),
            resource: config.resource.clone(),
            tls_available: tls.is_some(),
            allow_plaintext_auth: config.allow_plaintext_auth,
        };
        let (requests, rx) = mpsc::channel(1024);
        let connected = Arc::new(AtomicBool::new(false));
        let link = Link {
            config,
            client,
            tls,
            timeout,
            connected: connected.clone(),
            metrics,
        };
        tokio::spawn(link.run(rx));
        Ok(Self {
            requests,
            connected,
        })
    }

    async fn request(&self, target: &Target) -> RequestResult {
        if !self.connected.load(Ordering::Relaxed) {
            return RequestResult::Unreachable("xmpp: not connected to the server".into());
        }
        let Some(credentials) = &target.credentials else {
            return RequestResult::Failed(
                "an xmpp connection request carries the device's credentials, and none are known"
                    .into(),
            );
        };
        let (reply, answer) = oneshot::channel();
        let request = Request {
            to: target.jabber_id.clone(),
            username: credentials.username.clone(),
            password: credentials.password.clone(),
            reply,
        };
        if self.requests.send(request).await.is_err() {
            return RequestResult::Unreachable("xmpp: session task ended".into());
        }
        answer
            .await
            .unwrap_or_else(|_| RequestResult::Unreachable("xmpp: session lost".into()))
    }
}

impl Mechanism for XmppMechanism {
    fn name(&self) -> &'static str {
        "xmpp"
    }

    fn applies(&self, target: &Target) -> bool {
        !target.jabber_id.is_empty()
    }

    fn send<'a>(
        &'a self,
        target: &'a Target,
    ) -> Pin<Box<dyn Future<Output = RequestResult> + Send + 'a>> {
        Box::pin(self.request(target))
    }
}

fn tls_connector(path: &std::path::Path) -> Result<tokio_rustls::TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            format!(
                "connection_request.xmpp.tls_ca_file {}: {e}",
                path.display()
            )
        })?;
    for cert in certs {
        roots.add(cert).map_err(|e| {
            format!(
                "connection_request.xmpp.tls_ca_file {}: {e}",
                path.display()
            )
        })?;
    }
    if roots.is_empty() {
        return Err(format!(
            "connection_request.xmpp.tls_ca_file {} holds no certificate",
            path.display()
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Conn {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf).await,
            Conn::Tls(s) => s.read(buf).await,
        }
    }

    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.write_all(bytes).await,
            Conn::Tls(s) => s.write_all(bytes).await,
        }
    }
}

struct Link {
    config: XmppConfig,
    client: ClientConfig,
    tls: Option<tokio_rustls::TlsConnector>,
    timeout: Duration,
    connected: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
}

impl Link {
    async fn run(self, mut requests: mpsc::Receiver<Request>) {
        let mut backoff = Duration::from_millis(500);
        let mut outage = crate::log_limit::RetryLog::new(Duration::from_secs(600));
        loop {
            let started = Instant::now();
            let result = self.session(&mut requests).await;
            if self.connected.swap(false, Ordering::Relaxed) {
                // Losing a working session is news, whatever came before.
                outage.recovered();
            }
            self.metrics.xmpp_connected.set(0);
            // A session that lasted a while was healthy: start the backoff over.
            if started.elapsed() > Duration::from_secs(60) {
                backoff = Duration::from_millis(500);
            }
            match result {
                Ok(()) => return,
                Err(e) if outage.failed() => {
                    warn!(server = %self.config.server, error = %e, "xmpp session ended")
                }
                Err(e) => {
                    debug!(server = %self.config.server, error = %e, "xmpp session ended again")
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.config.max_reconnect_backoff);
        }
    }

    /// One connection, until it fails. `Ok` only when the request channel closed (shutdown).
    async fn session(&self, requests: &mut mpsc::Receiver<Request>) -> Result<(), String> {
        let tcp = tokio::time::timeout(self.timeout, TcpStream::connect(&self.config.server))
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| format!("connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let mut conn = Some(Conn::Plain(tcp));
        let mut client = XmppClient::new(self.client.clone());
        let mut pending: HashMap<String, (oneshot::Sender<RequestResult>, Instant)> =
            HashMap::new();
        let mut keepalive = tokio::time::interval(self.config.keepalive);
        let mut expiry = tokio::time::interval(Duration::from_millis(250));
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let out = client.take_transmit();
            let stream = conn.as_mut().ok_or("connection lost during TLS upgrade")?;
            if !out.is_empty() {
                stream
                    .write_all(&out)
                    .await
                    .map_err(|e| format!("write: {e}"))?;
            }
            tokio::select! {
                read = stream.read(&mut buf) => {
                    let n = read.map_err(|e| format!("read: {e}"))?;
                    if n == 0 {
                        return Err("server closed the connection".into());
                    }
                    client.feed(&buf[..n]).map_err(|e| e.to_string())?;
                }
                request = requests.recv(), if client.is_ready() => {
                    let Some(request) = request else {
                        client.close();
                        let out = client.take_transmit();
                        let _ = stream.write_all(&out).await;
                        return Ok(());
                    };
                    let id = client.send_iq(
                        &request.to,
                        IqType::Get,
                        &connection_request::payload(&request.username, &request.password),
                    );
                    pending.insert(id, (request.reply, Instant::now() + self.timeout));
                }
                _ = keepalive.tick() => client.keepalive(),
                _ = expiry.tick() => {
                    let now = Instant::now();
                    let expired: Vec<String> = pending
                        .iter()
                        .filter(|(_, (_, deadline))| *deadline <= now)
                        .map(|(id, _)| id.clone())
                        .collect();
                    for id in expired {
                        if let Some((reply, _)) = pending.remove(&id) {
                            let _ = reply.send(RequestResult::Unreachable(
                                "xmpp: the device did not answer in time".into(),
                            ));
                        }
                    }
                }
            }
            while let Some(event) = client.poll_event() {
                match event {
                    Event::StartTls => {
                        let (Some(Conn::Plain(tcp)), Some(tls)) = (conn.take(), &self.tls) else {
                            return Err(
                                "STARTTLS without a plain connection or TLS settings".into()
                            );
                        };
                        let host = self
                            .config
                            .server
                            .rsplit_once(':')
                            .map(|(h, _)| h)
                            .unwrap_or(&self.config.server);
                        // The certificate names the XMPP domain (RFC 6120 §13.7).
                        let name =
                            rustls_pki_types::ServerName::try_from(self.client.domain.clone())
                                .or_else(|_| {
                                    rustls_pki_types::ServerName::try_from(host.to_owned())
                                })
                                .map_err(|e| format!("tls server name: {e}"))?;
                        let stream = tls
                            .connect(name, tcp)
                            .await
                            .map_err(|e| format!("tls: {e}"))?;
                        conn = Some(Conn::Tls(Box::new(stream)));
                        client.tls_established();
                    }
                    Event::Ready { jid } => {
                        info!(jid = %jid, server = %self.config.server, "xmpp session for connection requests up");
                        self.connected.store(true, Ordering::Relaxed);
                        self.metrics.xmpp_connected.set(1);
                    }
                    Event::Iq(iq) => match iq.kind {
                        IqType::Result | IqType::Error => {
                            if let Some((reply, _)) = pending.remove(&iq.id) {
                                let _ = reply.send(outcome(iq.kind, iq.error_condition.as_deref()));
                            }
                        }
                        // RFC 6120 §8.2.3: every get/set is answered; Radar offers no services.
                        IqType::Get | IqType::Set => {
                            client.reply_error(&iq, "cancel", "service-unavailable")
                        }
                    },
                }
            }
        }
    }
}

/// What the device's answer means for the connection request.
fn outcome(kind: IqType, condition: Option<&str>) -> RequestResult {
    match (kind, condition) {
        (IqType::Result, _) => RequestResult::Sent("xmpp"),
        (_, Some("not-authorized")) => RequestResult::Unauthorized(
            "device refused the connection-request credentials (xmpp not-authorized)".into(),
        ),
        // TR-069 Annex K: a CPE that refuses for another reason (not allowed, throttled) says
        // service-unavailable; the server says so too for an offline JID.
        (_, condition) => RequestResult::Unreachable(format!(
            "xmpp: {}",
            condition.unwrap_or("error without a condition")
        )),
    }
}
