//! The devices' connection-request listener (TR-069 §3.2.2): `GET /cr/<serial>` with HTTP Digest
//! authentication. An authenticated request makes the device start a session with
//! `6 CONNECTION REQUEST`; anything else gets 401 or 404, as from a real CPE.

use crate::device::{SimDevice, Trigger};
use bytes::Bytes;
use http_body_util::Full;
use radar_cwmp::http_auth::{md5_hex, parse_auth_params};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpListener;

const REALM: &str = "radar-sim-cpe";

/// TLS for an `https://` ConnectionRequestURL, from a PEM certificate chain and key.
pub fn tls_acceptor(cert_pem: &[u8], key_pem: &[u8]) -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("certificate: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("key: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

pub struct Listener {
    devices: BTreeMap<String, Arc<SimDevice>>,
    credentials: (String, String),
    nonce: String,
}

impl Listener {
    pub fn new(
        devices: BTreeMap<String, Arc<SimDevice>>,
        credentials: (String, String),
    ) -> Arc<Self> {
        Arc::new(Self {
            devices,
            credentials,
            nonce: hex::encode(rand::random::<[u8; 16]>()),
        })
    }

    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let this = self.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let this = this.clone();
                    async move { Ok::<_, Infallible>(this.handle(req)) }
                });
                let http = hyper::server::conn::http1::Builder::new();
                match tls {
                    Some(acceptor) => {
                        // A client that refuses the certificate ends the handshake: nothing to serve.
                        if let Ok(stream) = acceptor.accept(stream).await {
                            let _ = http
                                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                .await;
                        }
                    }
                    None => {
                        let _ = http
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await;
                    }
                }
            });
        }
    }

    fn handle(&self, req: hyper::Request<hyper::body::Incoming>) -> hyper::Response<Full<Bytes>> {
        let respond = |status: u16| {
            hyper::Response::builder()
                .status(status)
                .body(Full::new(Bytes::new()))
                .expect("valid")
        };
        let path = req.uri().path().to_owned();
        let Some(device) = path.strip_prefix("/cr/").and_then(|s| self.devices.get(s)) else {
            return respond(404);
        };
        if !device.online.load(std::sync::atomic::Ordering::Relaxed) {
            return respond(503);
        }
        let authorized = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|h| self.verify(device, req.method().as_str(), h));
        if !authorized {
            let mut r = respond(401);
            let challenge = format!(
                "Digest realm=\"{REALM}\", qop=\"auth\", nonce=\"{}\", algorithm=MD5",
                self.nonce
            );
            r.headers_mut().insert(
                hyper::header::WWW_AUTHENTICATE,
                challenge.parse().expect("valid header"),
            );
            return r;
        }
        device.trigger(Trigger::ConnectionRequest);
        respond(200)
    }

    /// Checks Digest credentials: the device's own (ManagementServer.ConnectionRequestUsername
    /// and Password, once an ACS set them) or else the fleet's factory defaults.
    fn verify(&self, device: &SimDevice, method: &str, header: &str) -> bool {
        let Some(rest) = header.strip_prefix("Digest ") else {
            return false;
        };
        let f = parse_auth_params(rest);
        let (user, pass) = device_credentials(device, &self.credentials);
        let (user, pass) = (&user, &pass);
        let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
        if get("username") != user || get("nonce") != self.nonce || get("realm") != REALM {
            return false;
        }
        let ha1 = md5_hex(&format!("{user}:{REALM}:{pass}"));
        let ha2 = md5_hex(&format!("{method}:{}", get("uri")));
        let expected = md5_hex(&format!(
            "{ha1}:{}:{}:{}:auth:{ha2}",
            get("nonce"),
            get("nc"),
            get("cnonce")
        ));
        get("response") == expected
    }
}

/// The credentials a device checks connection requests against: its own
/// ManagementServer.ConnectionRequestUsername and Password once an ACS set them, else the
/// fleet's factory defaults.
pub(crate) fn device_credentials(
    device: &SimDevice,
    defaults: &(String, String),
) -> (String, String) {
    let own_user = device
        .param("Device.ManagementServer.ConnectionRequestUsername")
        .unwrap_or_default();
    if own_user.is_empty() {
        return defaults.clone();
    }
    (
        own_user,
        device
            .param("Device.ManagementServer.ConnectionRequestPassword")
            .unwrap_or_default(),
    )
}
