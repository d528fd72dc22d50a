//! Connection requests (TR-069 §3.2.2): an HTTP GET to the device's own ConnectionRequestURL
//! with Digest authentication, asking it to open a session now. Only the URL the device reported
//! is ever contacted, redirects are not followed, and requests are rate-limited per device and
//! in total so an operator mass-write cannot flood a network.

use crate::config::{ConnectionRequestConfig, Credential};
use crate::metrics::Metrics;
use radar_core::DeviceKey;
use radar_cwmp::http_auth::{base64_encode, digest_authorization};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{debug, warn};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestResult {
    Sent,
    RateLimited,
    NoUrl,
    /// The device refused the credentials Radar holds (or Radar holds none): 401.
    Unauthorized(String),
    /// No HTTP answer at all (connection refused, timeout, TLS failure): often a NAT.
    Unreachable(String),
    Failed(String),
}

impl RequestResult {
    pub fn label(&self) -> &'static str {
        match self {
            RequestResult::Sent => "sent",
            RequestResult::RateLimited => "rate_limited",
            RequestResult::NoUrl => "no_url",
            RequestResult::Unauthorized(_) => "unauthorized",
            RequestResult::Unreachable(_) => "unreachable",
            RequestResult::Failed(_) => "failed",
        }
    }

    /// What the twin records; `None` for results that say nothing about the device.
    pub fn outcome(&self) -> Option<(&'static str, String)> {
        match self {
            RequestResult::Sent => Some(("sent", String::new())),
            RequestResult::Unauthorized(d)
            | RequestResult::Unreachable(d)
            | RequestResult::Failed(d) => Some((self.label(), d.clone())),
            RequestResult::RateLimited | RequestResult::NoUrl => None,
        }
    }
}

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

pub struct ConnectionRequester {
    config: ConnectionRequestConfig,
    client: reqwest::Client,
    last_per_device: Mutex<HashMap<DeviceKey, Instant>>,
    /// Devices with a deferred request waiting for their interval to pass.
    deferred: Mutex<std::collections::HashSet<DeviceKey>>,
    bucket: Mutex<(f64, Instant)>,
    metrics: Arc<Metrics>,
    warnings: crate::log_limit::LogLimiter,
}

impl ConnectionRequester {
    /// Fails on unusable TLS settings (an unreadable CA bundle): better at startup than at the
    /// first https connection request.
    pub fn new(config: ConnectionRequestConfig, metrics: Arc<Metrics>) -> Result<Self, String> {
        let client = build_client(&config)?;
        let burst = f64::from(config.global_per_second.max(1));
        Ok(Self {
            config,
            client,
            last_per_device: Mutex::new(HashMap::new()),
            deferred: Mutex::new(Default::default()),
            bucket: Mutex::new((burst, Instant::now())),
            metrics,
            warnings: crate::log_limit::LogLimiter::new(Duration::from_secs(300)),
        })
    }

    pub fn recently_seen_window(&self) -> Duration {
        self.config.recently_seen
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// How long until `device` may be contacted again.
    fn per_device_wait(&self, device: &DeviceKey) -> Duration {
        let last = self
            .last_per_device
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        last.get(device)
            .map(|prev| {
                self.config
                    .per_device_interval
                    .saturating_sub(prev.elapsed())
            })
            .unwrap_or(Duration::ZERO)
    }

    /// Takes a rate-limit slot for `device`, or says why not.
    fn admit(&self, device: &DeviceKey) -> bool {
        let now = Instant::now();
        {
            let mut last = self
                .last_per_device
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(prev) = last.get(device) {
                if now.duration_since(*prev) < self.config.per_device_interval {
                    return false;
                }
            }
            // Bound the map: forget devices whose interval has long passed.
            if last.len() > 100_000 {
                let interval = self.config.per_device_interval;
                last.retain(|_, t| now.duration_since(*t) < interval);
            }
            last.insert(device.clone(), now);
        }
        let rate = f64::from(self.config.global_per_second.max(1));
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, at) = *bucket;
        let refilled = (tokens + now.duration_since(at).as_secs_f64() * rate).min(rate);
        if refilled < 1.0 {
            *bucket = (refilled, now);
            return false;
        }
        *bucket = (refilled - 1.0, now);
        true
    }

    /// Sends a connection request now (rate limits permitting) and reports the result.
    ///
    /// `target` gives the device's ConnectionRequestURL and credentials; it is asked when the
    /// request actually leaves, since a deferred request may wait several seconds, during which
    /// the device can report a new URL (a restart on another port) or new credentials.
    pub async fn request(
        &self,
        device: &DeviceKey,
        target: impl FnOnce() -> Option<(String, Option<Credential>)>,
    ) -> RequestResult {
        let result = self.request_inner(device, target).await;
        self.metrics
            .connection_requests
            .with_label_values(&[result.label()])
            .inc();
        match &result {
            RequestResult::Failed(e)
            | RequestResult::Unauthorized(e)
            | RequestResult::Unreachable(e)
                if self.warnings.allow(device, "connection_request") =>
            {
                warn!(device = %device, result = result.label(), error = %e, "connection request failed")
            }
            other => debug!(device = %device, result = ?other, "connection request"),
        }
        result
    }

    async fn request_inner(
        &self,
        device: &DeviceKey,
        target: impl FnOnce() -> Option<(String, Option<Credential>)>,
    ) -> RequestResult {
        // Within the per-device interval, one deferred request waits for the interval to pass
        // (later ones coalesce into it), so a queued operation is still delivered promptly.
        let wait = self.per_device_wait(device);
        if !wait.is_zero() {
            if !self
                .deferred
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(device.clone())
            {
                return RequestResult::RateLimited;
            }
            tokio::time::sleep(wait).await;
            self.deferred
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(device);
        }
        if !self.admit(device) {
            return RequestResult::RateLimited;
        }
        let Some((url, credentials)) = target() else {
            return RequestResult::NoUrl;
        };
        let url = url.as_str();
        if url.is_empty() {
            return RequestResult::NoUrl;
        }
        if !url.starts_with("http://") && !url.starts_with("https://") {
            return RequestResult::Failed(format!("connection request url {url:?} is not http"));
        }
        let credentials = credentials.or_else(|| self.config.default_credentials.clone());
        let first = match self.client.get(url).send().await {
            Ok(r) => r,
            Err(e) => return RequestResult::Unreachable(error_chain(&e)),
        };
        if first.status().is_success() {
            return RequestResult::Sent;
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
        let authorization = challenges
            .iter()
            .find_map(|c| digest_authorization(c, "GET", &uri, &username, &password, &cnonce))
            .or_else(|| {
                challenges
                    .iter()
                    .any(|c| c.trim_start().to_ascii_lowercase().starts_with("basic"))
                    .then(|| {
                        format!(
                            "Basic {}",
                            base64_encode(format!("{username}:{password}").as_bytes())
                        )
                    })
            });
        let Some(authorization) = authorization else {
            return RequestResult::Failed("device offered no usable authentication scheme".into());
        };
        match self
            .client
            .get(url)
            .header(reqwest::header::AUTHORIZATION, authorization)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => RequestResult::Sent,
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

    #[test]
    fn per_device_and_global_limits() {
        let config = ConnectionRequestConfig {
            per_device_interval: Duration::from_secs(60),
            global_per_second: 2,
            ..Default::default()
        };
        let r = ConnectionRequester::new(config, Arc::new(Metrics::new())).unwrap();
        let a = DeviceKey::parse("a").unwrap();
        assert!(r.admit(&a));
        assert!(!r.admit(&a), "same device within its interval");
        assert!(r.admit(&DeviceKey::parse("b").unwrap()));
        assert!(
            !r.admit(&DeviceKey::parse("c").unwrap()),
            "global bucket of 2 is empty"
        );
    }
}
