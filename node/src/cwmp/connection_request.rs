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
    Failed(String),
}

impl RequestResult {
    fn label(&self) -> &'static str {
        match self {
            RequestResult::Sent => "sent",
            RequestResult::RateLimited => "rate_limited",
            RequestResult::NoUrl => "no_url",
            RequestResult::Failed(_) => "failed",
        }
    }
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
    pub fn new(config: ConnectionRequestConfig, metrics: Arc<Metrics>) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .pool_max_idle_per_host(0)
            .build()
            .unwrap_or_default();
        let burst = f64::from(config.global_per_second.max(1));
        Self {
            config,
            client,
            last_per_device: Mutex::new(HashMap::new()),
            deferred: Mutex::new(Default::default()),
            bucket: Mutex::new((burst, Instant::now())),
            metrics,
            warnings: crate::log_limit::LogLimiter::new(Duration::from_secs(300)),
        }
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
    pub async fn request(
        &self,
        device: &DeviceKey,
        url: &str,
        credentials: Option<Credential>,
    ) -> RequestResult {
        let result = self.request_inner(device, url, credentials).await;
        self.metrics
            .connection_requests
            .with_label_values(&[result.label()])
            .inc();
        match &result {
            RequestResult::Failed(e) if self.warnings.allow(device, "connection_request") => {
                warn!(device = %device, error = %e, "connection request failed")
            }
            other => debug!(device = %device, result = ?other, "connection request"),
        }
        result
    }

    async fn request_inner(
        &self,
        device: &DeviceKey,
        url: &str,
        credentials: Option<Credential>,
    ) -> RequestResult {
        if url.is_empty() {
            return RequestResult::NoUrl;
        }
        if !url.starts_with("http://") && !url.starts_with("https://") {
            return RequestResult::Failed(format!("connection request url {url:?} is not http"));
        }
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
        let credentials = credentials.or_else(|| self.config.default_credentials.clone());
        let first = match self.client.get(url).send().await {
            Ok(r) => r,
            Err(e) => return RequestResult::Failed(e.to_string()),
        };
        if first.status().is_success() {
            return RequestResult::Sent;
        }
        if first.status() != reqwest::StatusCode::UNAUTHORIZED {
            return RequestResult::Failed(format!("device answered {}", first.status()));
        }
        let Some(Credential { username, password }) = credentials else {
            return RequestResult::Failed("device asks for credentials and none are known".into());
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
            Ok(r) => RequestResult::Failed(format!(
                "device answered {} to the authenticated request",
                r.status()
            )),
            Err(e) => RequestResult::Failed(e.to_string()),
        }
    }
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
        let r = ConnectionRequester::new(config, Arc::new(Metrics::new()));
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
