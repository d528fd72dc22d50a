//! The HTTP connection request of TR-069 §3.2.2: a GET to the device's own
//! ConnectionRequestURL with Digest authentication (Basic only when `allow_basic` is set: it
//! sends the password in clear). Only the URL the device reported is ever contacted, and
//! redirects are not followed.

use super::{Mechanism, RequestResult, Target};
use crate::config::{ConnectionRequestConfig, Credential};
use radar_cwmp::http_auth::{base64_encode, digest_authorization};
use std::future::Future;
use std::pin::Pin;

/// The HTTP client for connection requests: no redirects, no pooling, and TLS as configured
/// for `https://` URLs.
fn build_client(config: &ConnectionRequestConfig) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(config.timeout)
        .pool_max_idle_per_host(0)
        .tls_built_in_root_certs(false);
    if let Some(path) = &config.tls_ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            format!(
                "reading connection_request.tls_ca_file {}: {e}",
                path.display()
            )
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("connection_request.tls_ca_file {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "connection_request.tls_ca_file {} holds no PEM certificate",
                path.display()
            ));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if config.tls_accept_self_signed {
        builder = builder.danger_accept_invalid_certs(true);
    }
    builder.build().map_err(|e| e.to_string())
}

pub struct HttpMechanism {
    client: reqwest::Client,
    allow_basic: bool,
}

impl HttpMechanism {
    /// Fails on unusable TLS settings (an unreadable CA bundle).
    pub fn new(config: &ConnectionRequestConfig) -> Result<Self, String> {
        Ok(Self {
            client: build_client(config)?,
            allow_basic: config.allow_basic,
        })
    }

    async fn request(&self, url: &str, credentials: Option<Credential>) -> RequestResult {
        if !url.starts_with("http://") && !url.starts_with("https://") {
            return RequestResult::Failed(format!("connection request url {url:?} is not http"));
        }
        let first = match self.client.get(url).send().await {
            Ok(r) => r,
            Err(e) => return RequestResult::Unreachable(error_chain(&e)),
        };
        if first.status().is_success() {
            return RequestResult::Sent("http");
        }
        if first.status() != reqwest::StatusCode::UNAUTHORIZED {
            return RequestResult::Failed(format!("device answered {}", first.status()));
        }
        let Some(Credential { username, password }) = credentials else {
            return RequestResult::Unauthorized(
                "device asks for credentials and none are known".into(),
            );
        };
        let challenges: Vec<String> = first
            .headers()
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        let uri = reqwest::Url::parse(url)
            .map(|u| match u.query() {
                Some(q) => format!("{}?{q}", u.path()),
                None => u.path().to_owned(),
            })
            .unwrap_or_else(|_| "/".into());
        let cnonce = hex::encode(rand::random::<[u8; 8]>());
        let basic_offered = challenges
            .iter()
            .any(|c| c.trim_start().to_ascii_lowercase().starts_with("basic"));
        let authorization = match challenges
            .iter()
            .find_map(|c| digest_authorization(c, "GET", &uri, &username, &password, &cnonce))
        {
            Some(digest) => digest,
            None if basic_offered && self.allow_basic => format!(
                "Basic {}",
                base64_encode(format!("{username}:{password}").as_bytes())
            ),
            None if basic_offered => {
                return RequestResult::Failed(
                    "device offered only Basic authentication, which would send its password in clear (set connection_request.allow_basic = true to allow it)".into(),
                )
            }
            None => {
                return RequestResult::Failed(
                    "device offered no usable authentication scheme".into(),
                )
            }
        };
        match self
            .client
            .get(url)
            .header(reqwest::header::AUTHORIZATION, authorization)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => RequestResult::Sent("http"),
            Ok(r) if r.status() == reqwest::StatusCode::UNAUTHORIZED => {
                RequestResult::Unauthorized(format!(
                    "device refused the credentials of {username} (401)"
                ))
            }
            Ok(r) => RequestResult::Failed(format!(
                "device answered {} to the authenticated request",
                r.status()
            )),
            Err(e) => RequestResult::Unreachable(error_chain(&e)),
        }
    }
}

impl Mechanism for HttpMechanism {
    fn name(&self) -> &'static str {
        "http"
    }

    fn applies(&self, target: &Target) -> bool {
        !target.url.is_empty()
    }

    fn send<'a>(
        &'a self,
        target: &'a Target,
    ) -> Pin<Box<dyn Future<Output = RequestResult> + Send + 'a>> {
        Box::pin(self.request(&target.url, target.credentials.clone()))
    }
}

/// reqwest's top-level message ("error sending request") hides the cause (refused, timed
/// out, certificate unknown): keep the whole chain.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A CPE's connection-request listener that challenges with Basic only, and reports the
    /// Authorization header of each request it gets.
    async fn basic_only_cpe() -> (String, tokio::sync::mpsc::UnboundedReceiver<Option<String>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/cr", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = vec![0u8; 4096];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                let authorization = text
                    .lines()
                    .find_map(|l| l.strip_prefix("authorization: "))
                    .map(str::to_owned);
                let answer = if authorization.is_some() {
                    "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
                } else {
                    "HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Basic realm=\"cpe\"\r\ncontent-length: 0\r\n\r\n"
                };
                let _ = tx.send(authorization);
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        (url, rx)
    }

    fn credentials() -> Option<Credential> {
        Some(Credential {
            username: "cr".into(),
            password: "secret".into(),
        })
    }

    #[tokio::test]
    async fn basic_is_answered_only_when_the_config_allows_it() {
        let (url, mut seen) = basic_only_cpe().await;
        let strict = HttpMechanism::new(&ConnectionRequestConfig::default()).unwrap();
        let RequestResult::Failed(why) = strict.request(&url, credentials()).await else {
            panic!("a Basic-only device was sent the password")
        };
        assert!(why.contains("allow_basic"), "{why}");
        assert_eq!(seen.recv().await, Some(None));
        assert!(
            seen.try_recv().is_err(),
            "no second request with the password"
        );

        let lenient = HttpMechanism::new(&ConnectionRequestConfig {
            allow_basic: true,
            ..Default::default()
        })
        .unwrap();
        assert!(matches!(
            lenient.request(&url, credentials()).await,
            RequestResult::Sent("http")
        ));
        assert_eq!(seen.recv().await, Some(None));
        assert_eq!(
            seen.recv().await,
            Some(Some(format!("Basic {}", base64_encode(b"cr:secret"))))
        );
    }
}
