//! A minimal HTTP/1.1 client over one kept-alive TCP connection, as a CPE uses for a session:
//! cookies are remembered (or deliberately not echoed, like some real devices), and a 401 is
//! answered once with Digest or Basic credentials.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use radar_cwmp::http_auth::{base64_encode, digest_authorization};
use tokio::net::TcpStream;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    #[error("bad url {0:?}")]
    BadUrl(String),
    #[error("server refused our credentials")]
    Unauthorized,
    /// The simulated device died mid-session, as some firmware does (see `CpeState`).
    #[error("device crashed on {0}")]
    Crashed(&'static str),
    #[error("tls: {0}")]
    Tls(String),
}

#[derive(Debug, Clone)]
pub struct Url {
    /// `host:port`, with the scheme's default port filled in.
    pub authority: String,
    pub host: String,
    pub path: String,
    pub tls: bool,
}

impl Url {
    pub fn parse(url: &str) -> Result<Self, HttpError> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(HttpError::BadUrl(url.into()));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(HttpError::BadUrl(url.into()));
        }
        let (host, authority) = match authority.rsplit_once(':') {
            Some((host, port)) if port.parse::<u16>().is_ok() => {
                (host.to_owned(), authority.to_owned())
            }
            _ => (
                authority.to_owned(),
                format!("{authority}:{}", if tls { 443 } else { 80 }),
            ),
        };
        Ok(Self {
            authority,
            host,
            path: path.into(),
            tls,
        })
    }
}

/// Opens a connection to the URL's server, with TLS for `https` URLs.
async fn connect(
    url: &Url,
    tls: Option<&std::sync::Arc<rustls::ClientConfig>>,
) -> Result<SendRequest<Full<Bytes>>, HttpError> {
    let stream = TcpStream::connect(&url.authority)
        .await
        .map_err(|source| HttpError::Connect {
            addr: url.authority.clone(),
            source,
        })?;
    if !url.tls {
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        return Ok(sender);
    }
    let config =
        tls.ok_or_else(|| HttpError::Tls("https url but no trusted ca configured".into()))?;
    let name = rustls_pki_types::ServerName::try_from(url.host.clone())
        .map_err(|e| HttpError::Tls(e.to_string()))?;
    let stream = tokio_rustls::TlsConnector::from(config.clone())
        .connect(name, stream)
        .await
        .map_err(|e| HttpError::Tls(e.to_string()))?;
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// A client configuration trusting exactly the CA certificates in `pem`.
pub fn client_config(pem: &[u8]) -> Result<std::sync::Arc<rustls::ClientConfig>, HttpError> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| HttpError::Tls(e.to_string()))?;
        roots.add(cert).map_err(|e| HttpError::Tls(e.to_string()))?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(std::sync::Arc::new(config))
}

pub struct Response {
    pub status: u16,
    pub body: Bytes,
}

pub struct Client {
    url: Url,
    sender: Option<SendRequest<Full<Bytes>>>,
    cookie: Option<String>,
    echo_cookies: bool,
    credentials: Option<(String, String)>,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl Client {
    pub fn new(
        url: Url,
        echo_cookies: bool,
        credentials: Option<(String, String)>,
        tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    ) -> Self {
        Self {
            url,
            sender: None,
            cookie: None,
            echo_cookies,
            credentials,
            tls,
        }
    }

    async fn sender(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, HttpError> {
        let reusable = match &mut self.sender {
            Some(s) => s.ready().await.is_ok(),
            None => false,
        };
        if !reusable {
            self.sender = Some(connect(&self.url, self.tls.as_ref()).await?);
        }
        Ok(self.sender.as_mut().expect("connected above"))
    }

    pub async fn post(&mut self, body: String) -> Result<Response, HttpError> {
        let mut authorization = None;
        for _ in 0..2 {
            let mut builder = hyper::Request::post(self.url.path.as_str())
                .header(hyper::header::HOST, self.url.authority.as_str())
                .header("SOAPAction", "");
            if !body.is_empty() {
                builder =
                    builder.header(hyper::header::CONTENT_TYPE, "text/xml; charset=\"utf-8\"");
            }
            if let (Some(cookie), true) = (&self.cookie, self.echo_cookies) {
                builder = builder.header(hyper::header::COOKIE, cookie.as_str());
            }
            if let Some(a) = &authorization {
                builder = builder.header(hyper::header::AUTHORIZATION, a);
            }
            let request = builder
                .body(Full::new(Bytes::from(body.clone())))
                .expect("valid request");
            let response = self.sender().await?.send_request(request).await?;
            let status = response.status().as_u16();
            if let Some(set) = response
                .headers()
                .get(hyper::header::SET_COOKIE)
                .and_then(|v| v.to_str().ok())
            {
                self.cookie = set.split(';').next().map(str::to_owned);
            }
            let challenges: Vec<String> = response
                .headers()
                .get_all(hyper::header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_owned))
                .collect();
            let body_bytes = response.into_body().collect().await?.to_bytes();
            if status == 401 && authorization.is_none() {
                let Some((user, pass)) = &self.credentials else {
                    return Err(HttpError::Unauthorized);
                };
                let cnonce = hex::encode(rand::random::<[u8; 8]>());
                authorization = challenges
                    .iter()
                    .find_map(|c| {
                        digest_authorization(c, "POST", &self.url.path, user, pass, &cnonce)
                    })
                    .or_else(|| {
                        Some(format!(
                            "Basic {}",
                            base64_encode(format!("{user}:{pass}").as_bytes())
                        ))
                    });
                continue;
            }
            if status == 401 {
                return Err(HttpError::Unauthorized);
            }
            return Ok(Response {
                status,
                body: body_bytes,
            });
        }
        Err(HttpError::Unauthorized)
    }
}

/// A one-shot GET, as a CPE performs a firmware download. Returns the status and body size.
pub async fn get(url: &str) -> Result<(u16, usize), HttpError> {
    let url = Url::parse(url)?;
    let mut sender = connect(&url, None).await?;
    let request = hyper::Request::get(url.path.as_str())
        .header(hyper::header::HOST, url.authority.as_str())
        .body(Full::new(Bytes::new()))
        .expect("valid request");
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body.len()))
}

/// A one-shot PUT of `body`, as a CPE uploads a configuration or log file. Returns the status.
pub async fn put(url: &str, body: Vec<u8>) -> Result<u16, HttpError> {
    let url = Url::parse(url)?;
    let mut sender = connect(&url, None).await?;
    let request = hyper::Request::put(url.path.as_str())
        .header(hyper::header::HOST, url.authority.as_str())
        .body(Full::new(Bytes::from(body)))
        .expect("valid request");
    let response = sender.send_request(request).await?;
    Ok(response.status().as_u16())
}
