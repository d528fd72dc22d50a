//! Connection requests: asking a CPE to open a CWMP session now. Three mechanisms, one module
//! each behind [`Mechanism`]:
//! - [`http`]: TR-069 §3.2.2, a GET to the ConnectionRequestURL with Digest authentication;
//! - [`udp`]: Annex G, a signed datagram to the `UDPConnectionRequestAddress` a CPE behind a
//!   NAT learnt through STUN;
//! - [`xmpp`]: Annex K, an IQ through an XMPP server to the CPE's `ConnReqJabberID`.
//!
//! HTTP goes first unless the device reports a way around its NAT and either says it is behind
//! one (`NATDetected`) or reports a private URL; a mechanism that cannot reach the device hands
//! over to the next. Requests are
//! rate-limited per device and in total so an operator mass-write cannot flood a network.

pub mod http;
pub mod udp;
pub mod xmpp;

use crate::config::{ConnectionRequestConfig, Credential};
use crate::metrics::Metrics;
use radar_core::DeviceKey;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{debug, warn};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestResult {
    /// Delivered by the named mechanism (for UDP: sent, since datagrams are not acknowledged).
    Sent(&'static str),
    RateLimited,
    NoUrl,
    /// The device refused the credentials Radar holds (or Radar holds none): 401.
    Unauthorized(String),
    /// No answer at all (connection refused, timeout, TLS failure): often a NAT.
    Unreachable(String),
    Failed(String),
}

impl RequestResult {
    pub fn label(&self) -> &'static str {
        match self {
            RequestResult::Sent(_) => "sent",
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
            RequestResult::Sent(mechanism) => Some(("sent", format!("via {mechanism}"))),
            RequestResult::Unauthorized(d)
            | RequestResult::Unreachable(d)
            | RequestResult::Failed(d) => Some((self.label(), d.clone())),
            RequestResult::RateLimited | RequestResult::NoUrl => None,
        }
    }
}

/// Everything the twin knows about reaching a device, read when the request leaves.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// `ManagementServer.ConnectionRequestURL`.
    pub url: String,
    pub credentials: Option<Credential>,
    /// `ManagementServer.UDPConnectionRequestAddress` (`host:port` or `host`).
    pub udp_address: String,
    /// `ManagementServer.NATDetected`.
    pub nat_detected: bool,
    /// `ManagementServer.ConnReqJabberID`.
    pub jabber_id: String,
}

/// One way of asking a device to connect.
pub trait Mechanism: Send + Sync {
    fn name(&self) -> &'static str;
    /// Whether the device told Radar enough to try this way.
    fn applies(&self, target: &Target) -> bool;
    fn send<'a>(
        &'a self,
        target: &'a Target,
    ) -> Pin<Box<dyn Future<Output = RequestResult> + Send + 'a>>;
}

/// Private, shared (RFC 6598 carrier-grade NAT) and link-local addresses: a URL with one is
/// the CPE's LAN side, which only reaches Radar when the operator's network routes to it.
fn is_private_host(url: &str) -> bool {
    let Some(host) = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_owned()))
    else {
        return false;
    };
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => {
            let [a, b, ..] = v4.octets();
            v4.is_private() || v4.is_link_local() || (a == 100 && (64..128).contains(&b))
        }
        // fc00::/7 unique local, fe80::/10 link local.
        Ok(IpAddr::V6(v6)) => {
            let first = v6.segments()[0];
            (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
        Err(_) => false,
    }
}

/// The mechanisms to try, in order: HTTP first, except when the device also reports a way
/// through its NAT (Annex G: the UDP address it learnt with STUN, or Annex K: its Jabber ID)
/// and either says it is behind one (NATDetected) or reports a private URL; then XMPP, which is
/// acknowledged; then UDP, which is not.
fn attempt_order<'a>(
    mechanisms: &'a [Box<dyn Mechanism>],
    target: &Target,
) -> Vec<&'a dyn Mechanism> {
    let applicable: Vec<&dyn Mechanism> = mechanisms
        .iter()
        .map(|m| m.as_ref())
        .filter(|m| m.applies(target))
        .collect();
    let has_alternative = applicable.iter().any(|m| m.name() != "http");
    // The CPE says it is behind a NAT (NATDetected, from STUN), or its URL is a LAN address:
    // HTTP would only time out.
    let skip_http = has_alternative && (target.nat_detected || is_private_host(&target.url));
    let rank = |name: &str| match name {
        "http" => 0,
        "xmpp" => 1,
        _ => 2,
    };
    let mut order: Vec<&dyn Mechanism> = applicable
        .into_iter()
        .filter(|m| !(skip_http && m.name() == "http"))
        .collect();
    order.sort_by_key(|m| rank(m.name()));
    order
}

pub struct ConnectionRequester {
    config: ConnectionRequestConfig,
    mechanisms: Vec<Box<dyn Mechanism>>,
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
    ///
    /// UDP requests leave from `stun_socket` when Radar runs the STUN server: a NAT that
    /// filters by address and port (RFC 4787 §5) lets in only what comes from where the CPE's
    /// Binding Requests went.
    pub fn new(
        config: ConnectionRequestConfig,
        metrics: Arc<Metrics>,
        stun_socket: Option<Arc<tokio::net::UdpSocket>>,
    ) -> Result<Self, String> {
        let burst = f64::from(config.global_per_second.max(1));
        let mut mechanisms: Vec<Box<dyn Mechanism>> = vec![
            Box::new(http::HttpMechanism::new(&config)?),
            Box::new(udp::UdpMechanism::new(&config, stun_socket)),
        ];
        if let Some(xmpp) = &config.xmpp {
            mechanisms.push(Box::new(xmpp::XmppMechanism::start(
                xmpp.clone(),
                config.timeout,
                metrics.clone(),
            )?));
        }
        Ok(Self {
            config,
            mechanisms,
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
    /// `target` says how the device can be reached; it is asked when the request actually
    /// leaves, since a deferred request may wait several seconds, during which the device can
    /// report a new URL (a restart on another port), a new NAT binding or new credentials.
    pub async fn request(
        &self,
        device: &DeviceKey,
        target: impl FnOnce() -> Option<Target>,
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
        target: impl FnOnce() -> Option<Target>,
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
        let Some(mut target) = target() else {
            return RequestResult::NoUrl;
        };
        if target.credentials.is_none() {
            target.credentials = self.config.default_credentials.clone();
        }
        let order = attempt_order(&self.mechanisms, &target);
        if order.is_empty() {
            return RequestResult::NoUrl;
        }
        let mut failures = Vec::new();
        for mechanism in order {
            let result = mechanism.send(&target).await;
            self.metrics
                .connection_request_attempts
                .with_label_values(&[mechanism.name(), result.label()])
                .inc();
            match result {
                RequestResult::Sent(_) => return result,
                // The device answered and refused: another way in would be refused the same.
                RequestResult::Unauthorized(_) => return result,
                RequestResult::Unreachable(detail) => {
                    failures.push((true, format!("{}: {detail}", mechanism.name())))
                }
                RequestResult::Failed(detail) => {
                    failures.push((false, format!("{}: {detail}", mechanism.name())))
                }
                RequestResult::RateLimited | RequestResult::NoUrl => {}
            }
        }
        let detail = failures
            .iter()
            .map(|(_, d)| d.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        if failures.iter().all(|(unreachable, _)| *unreachable) {
            RequestResult::Unreachable(detail)
        } else {
            RequestResult::Failed(detail)
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
        let r = ConnectionRequester::new(config, Arc::new(Metrics::new()), None).unwrap();
        let a = DeviceKey::parse("a").unwrap();
        assert!(r.admit(&a));
        assert!(!r.admit(&a), "same device within its interval");
        assert!(r.admit(&DeviceKey::parse("b").unwrap()));
        assert!(
            !r.admit(&DeviceKey::parse("c").unwrap()),
            "global bucket of 2 is empty"
        );
    }

    fn order(target: &Target) -> Vec<&'static str> {
        let r =
            ConnectionRequester::new(Default::default(), Arc::new(Metrics::new()), None).unwrap();
        attempt_order(&r.mechanisms, target)
            .iter()
            .map(|m| m.name())
            .collect()
    }

    #[test]
    fn http_first_and_a_private_url_skipped_when_the_nat_can_be_crossed() {
        let public = Target {
            url: "http://203.0.113.7:7547/cr".into(),
            udp_address: "203.0.113.7:40001".into(),
            ..Default::default()
        };
        assert_eq!(order(&public), ["http", "udp"]);
        let behind_nat = Target {
            url: "http://192.168.1.10:7547/cr".into(),
            ..public.clone()
        };
        assert_eq!(order(&behind_nat), ["udp"]);
        let says_so = Target {
            nat_detected: true,
            ..public.clone()
        };
        assert_eq!(order(&says_so), ["udp"]);
        for lan in [
            "http://10.0.0.2/",
            "http://172.16.5.5/",
            "http://100.64.0.9/",
            "http://169.254.1.1/",
            "http://[fd00::1]:7547/",
            "http://[fe80::1]/",
        ] {
            assert!(is_private_host(lan), "{lan}");
        }
        for wan in [
            "http://203.0.113.7/",
            "http://[2001:db8::1]/",
            "http://cpe.example/",
        ] {
            assert!(!is_private_host(wan), "{wan}");
        }
        // A private URL with no way around the NAT is still tried: carriers' management
        // networks are often private address space.
        let managed = Target {
            url: "http://10.20.30.40:7547/".into(),
            ..Default::default()
        };
        assert_eq!(order(&managed), ["http"]);
        assert!(order(&Target::default()).is_empty());
    }

    #[tokio::test]
    async fn an_unreachable_url_hands_over_to_udp() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/cr", closed.local_addr().unwrap());
        drop(closed);
        let cpe = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let metrics = Arc::new(Metrics::new());
        let r = ConnectionRequester::new(Default::default(), metrics.clone(), None).unwrap();
        let target = Target {
            url,
            udp_address: cpe.local_addr().unwrap().to_string(),
            credentials: Some(Credential {
                username: "u".into(),
                password: "p".into(),
            }),
            ..Default::default()
        };
        let device = DeviceKey::parse("nat").unwrap();
        assert_eq!(
            r.request(&device, || Some(target)).await,
            RequestResult::Sent("udp")
        );
        let mut buf = [0u8; 1024];
        let (n, _) = cpe.recv_from(&mut buf).await.unwrap();
        assert!(radar_cwmp::udp_connection_request::decode(&buf[..n])
            .unwrap()
            .signed_with("p"));
        let attempts = |m: &str, r: &str| {
            metrics
                .connection_request_attempts
                .with_label_values(&[m, r])
                .get()
        };
        assert_eq!(attempts("http", "unreachable"), 1);
        assert_eq!(attempts("udp", "sent"), 1);
    }
}
