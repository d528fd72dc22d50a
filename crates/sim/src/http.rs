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
}

#[derive(Debug, Clone)]
pub struct Url {
    pub authority: String,
    pub path: String,
}

impl Url {
    pub fn parse(url: &str) -> Result<Self, HttpError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| HttpError::BadUrl(url.into()))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(HttpError::BadUrl(url.into()));
        }
        Ok(Self {
            authority: authority.into(),
            path: path.into(),
        })
    }
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
}

impl Client {
    pub fn new(url: Url, echo_cookies: bool, credentials: Option<(String, String)>) -> Self {
        Self {
            url,
            sender: None,
            cookie: None,
            echo_cookies,
            credentials,
        }
    }

    async fn sender(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, HttpError> {
        let reusable = match &mut self.sender {
            Some(s) => s.ready().await.is_ok(),
            None => false,
        };
        if !reusable {
            let stream = TcpStream::connect(&self.url.authority)
                .await
                .map_err(|source| HttpError::Connect {
                    addr: self.url.authority.clone(),
                    source,
                })?;
            let (sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
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
    let stream = TcpStream::connect(&url.authority)
        .await
        .map_err(|source| HttpError::Connect {
            addr: url.authority.clone(),
            source,
        })?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
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
    let stream = TcpStream::connect(&url.authority)
        .await
        .map_err(|source| HttpError::Connect {
            addr: url.authority.clone(),
            source,
        })?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let request = hyper::Request::put(url.path.as_str())
        .header(hyper::header::HOST, url.authority.as_str())
        .body(Full::new(Bytes::from(body)))
        .expect("valid request");
    let response = sender.send_request(request).await?;
    Ok(response.status().as_u16())
}
