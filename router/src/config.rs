//! Router configuration (`radar print-config router`): one serde struct, unknown keys refused.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouterConfig {
    /// Cluster gRPC addresses of nodes to learn the layout from (any of them will do).
    pub seeds: Vec<String>,
    pub listen: RouterListen,
    /// How often the leader table is refreshed from the nodes (also refreshed at once when a
    /// node refuses a connection or leadership is unknown).
    #[serde(with = "humantime_serde")]
    pub leader_refresh: Duration,
    /// Largest first request (headers and body) read to find the device; larger is 413.
    pub max_first_request_bytes: usize,
    /// How long a client has to send its first request.
    #[serde(with = "humantime_serde")]
    pub first_request_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Mutual TLS on the cluster gRPC port: the same CA as the nodes, and this router's own
    /// certificate.
    pub tls: Option<radar_core::cluster_tls::ClusterTls>,
    /// Connections one source address may hold open at once, CWMP and USP together (0: no
    /// limit); more get 503 with Retry-After. Generous: many CPEs share an address behind a
    /// carrier-grade NAT.
    pub max_connections_per_address: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouterListen {
    /// CWMP (HTTP) front door.
    pub cwmp: SocketAddr,
    /// USP WebSocket front door.
    pub usp: SocketAddr,
    /// `/metrics`, `/healthz`, `/readyz`.
    pub api: SocketAddr,
}

impl Default for RouterListen {
    fn default() -> Self {
        Self {
            cwmp: "0.0.0.0:7547".parse().expect("valid literal"),
            usp: "0.0.0.0:7548".parse().expect("valid literal"),
            api: "127.0.0.1:7558".parse().expect("valid literal"),
        }
    }
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            seeds: Vec::new(),
            listen: RouterListen::default(),
            leader_refresh: Duration::from_millis(500),
            max_first_request_bytes: 256 * 1024,
            first_request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(3),
            tls: None,
            max_connections_per_address: 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_and_unknown_keys_are_refused() {
        let text = toml::to_string(&RouterConfig::default()).unwrap();
        let back: RouterConfig = toml::from_str(&text).unwrap();
        assert_eq!(back.max_first_request_bytes, 256 * 1024);
        assert!(toml::from_str::<RouterConfig>("bogus = 1").is_err());
    }
}
