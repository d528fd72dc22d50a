//! TLS for every listener that serves it, from one place: the ACS (TR-069 §3.4.4: CPEs should
//! reach the ACS over TLS; Basic authentication is only acceptable over TLS) and the API.
//! rustls with the ring provider; the certificate chain and key are PEM files named in the
//! config, reloaded on SIGHUP ([`ReloadableTls`]).

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading certificates from {path}: {message}")]
    Certificates { path: String, message: String },
    #[error("reading the private key from {path}: {message}")]
    Key { path: String, message: String },
    #[error("tls configuration: {0}")]
    Config(#[from] rustls::Error),
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<_, _>>())
        .map_err(|e| TlsError::Certificates {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Certificates {
            path: path.display().to_string(),
            message: "no certificate found".into(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Key {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// A server's TLS configuration, offering `alpn`; with `client_ca`, clients must present a
/// certificate it signed.
fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
    alpn: &[Vec<u8>],
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs = read_certificates(cert)?;
    let key = read_key(key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in read_certificates(ca)? {
                roots.add(cert)?;
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .map_err(|e| TlsError::Certificates {
                        path: ca.display().to_string(),
                        message: e.to_string(),
                    })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key)?;
    config.alpn_protocols = alpn.to_vec();
    Ok(Arc::new(config))
}

/// The USP Endpoint IDs a certificate names: its subjectAltName URIs `urn:bbf:usp:id:<eid>`
/// (TR-369, Security: an Endpoint's certificate carries its Endpoint ID that way).
pub fn usp_endpoint_ids(certificate: &[u8]) -> Vec<String> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let Ok((_, parsed)) = X509Certificate::from_der(certificate) else {
        return Vec::new();
    };
    let Ok(Some(names)) = parsed.subject_alternative_name() else {
        return Vec::new();
    };
    names
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) => uri.strip_prefix("urn:bbf:usp:id:").map(str::to_owned),
            _ => None,
        })
        .collect()
}

/// A certificate's subject common name.
pub fn subject_common_name(certificate: &[u8]) -> Option<String> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, parsed) = X509Certificate::from_der(certificate).ok()?;
    let name = parsed
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_owned();
    Some(name)
}

/// The Endpoint IDs the leaf certificate of a PEM file names (see [`usp_endpoint_ids`]).
pub fn usp_endpoint_ids_of_file(cert: &Path) -> Result<Vec<String>, TlsError> {
    let certs = read_certificates(cert)?;
    Ok(usp_endpoint_ids(&certs[0]))
}

/// A TLS client configuration: trust the CAs in `ca` (PEM) and, given a certificate chain and
/// key, present them (mutual TLS).
pub fn client_config(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certificates(ca)? {
        roots.add(cert)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => {
            builder.with_client_auth_cert(read_certificates(cert)?, read_key(key)?)?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// A server certificate that SIGHUP reloads from its files (issue 13): handshakes after a
/// reload use the new one; connections already open keep theirs, so none is dropped. A reload
/// that fails (a half-written file) keeps the old certificate and says why.
pub struct ReloadableTls {
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
    /// Offered in the handshake (`h2` for gRPC).
    alpn: Vec<Vec<u8>>,
    current: RwLock<Arc<rustls::ServerConfig>>,
}

impl ReloadableTls {
    pub fn load(files: &crate::config::TlsFiles) -> Result<Arc<Self>, TlsError> {
        Self::load_with_alpn(files, Vec::new())
    }

    /// The cluster gRPC server's: HTTP/2 only, and a certificate of the cluster's CA required
    /// of every caller.
    pub fn load_for_grpc(tls: &radar_core::cluster_tls::ClusterTls) -> Result<Arc<Self>, TlsError> {
        let files = crate::config::TlsFiles {
            cert: tls.cert.clone(),
            key: tls.key.clone(),
            client_ca: Some(tls.ca.clone()),
        };
        Self::load_with_alpn(&files, vec![b"h2".to_vec()])
    }

    fn load_with_alpn(
        files: &crate::config::TlsFiles,
        alpn: Vec<Vec<u8>>,
    ) -> Result<Arc<Self>, TlsError> {
        let current = server_config(&files.cert, &files.key, files.client_ca.as_deref(), &alpn)?;
        Ok(Arc::new(Self {
            cert: files.cert.clone(),
            key: files.key.clone(),
            client_ca: files.client_ca.clone(),
            alpn,
            current: RwLock::new(current),
        }))
    }

    /// Whether clients must present a certificate.
    pub fn verifies_clients(&self) -> bool {
        self.client_ca.is_some()
    }

    /// The listener's certificate, when its config names one.
    pub fn configured(
        files: Option<&crate::config::TlsFiles>,
    ) -> Result<Option<Arc<Self>>, TlsError> {
        files.map(Self::load).transpose()
    }

    /// For the next handshake.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }

    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = server_config(&self.cert, &self.key, self.client_ca.as_deref(), &self.alpn)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }
}

/// Something SIGHUP reloads from its files.
pub trait Reload: Send + Sync {
    fn reload(&self) -> Result<(), String>;
    /// For the log: which files.
    fn describe(&self) -> String;
}

impl Reload for ReloadableTls {
    fn reload(&self) -> Result<(), String> {
        ReloadableTls::reload(self).map_err(|e| e.to_string())
    }

    fn describe(&self) -> String {
        self.cert.display().to_string()
    }
}

/// Reloads every listener's certificate (and the cluster client's) on each SIGHUP until
/// shutdown.
pub fn reload_on_sighup(
    certificates: Vec<Arc<dyn Reload>>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(mut hangups) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("cannot listen for SIGHUP: certificates will not be reloaded");
            return;
        };
        loop {
            tokio::select! {
                _ = hangups.recv() => {}
                _ = shutdown.changed() => return,
            }
            for tls in &certificates {
                match tls.reload() {
                    Ok(()) => tracing::info!(cert = %tls.describe(), "certificate reloaded"),
                    Err(e) => {
                        tracing::warn!(cert = %tls.describe(), error = %e, "certificate not reloaded; the old one stays")
                    }
                }
            }
        }
    })
}

/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TCP listener whose connections come out TLS, for `axum::serve`: each handshake runs in its
/// own task, so a slow or silent client delays nobody else.
pub struct TlsListener {
    ready: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    _accepting: AbortOnDrop,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl TlsListener {
    pub fn new(listener: TcpListener, tls: Arc<ReloadableTls>) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, ready) = tokio::sync::mpsc::channel(64);
        let accepting = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::debug!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let acceptor = tls.acceptor();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(peer = %peer, error = %e, "tls handshake failed")
                        }
                        Err(_) => tracing::debug!(peer = %peer, "tls handshake timed out"),
                    }
                });
            }
        });
        Ok(Self {
            ready,
            local,
            _accepting: AbortOnDrop(accepting),
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accept loop only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
