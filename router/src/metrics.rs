//! Prometheus metrics of a router.

use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

pub struct RouterMetrics {
    pub registry: Registry,
    /// Connections accepted, by protocol (`cwmp`, `usp_ws`).
    pub connections: IntCounterVec,
    /// Connections proxied to a node, by protocol and how the node was chosen
    /// (`leader`, `cookie`, `any`).
    pub forwarded: IntCounterVec,
    /// Connections refused, by protocol and reason.
    pub refused: IntCounterVec,
    /// Routes retried on another node after the chosen one refused the connection.
    pub redirects: IntCounterVec,
    pub active: IntGaugeVec,
    pub layout_version: IntGauge,
}

impl RouterMetrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let connections = counter(
            "radar_router_connections_total",
            "Connections accepted",
            &["protocol"],
        );
        let forwarded = counter(
            "radar_router_forwarded_total",
            "Connections proxied to a node",
            &["protocol", "by"],
        );
        let refused = counter(
            "radar_router_refused_total",
            "Connections refused",
            &["protocol", "reason"],
        );
        let redirects = counter(
            "radar_router_redirects_total",
            "Routes retried after a node refused",
            &["protocol"],
        );
        let active = IntGaugeVec::new(
            Opts::new("radar_router_active_connections", "Connections open"),
            &["protocol"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(active.clone()))
            .expect("unique metric");
        let layout_version =
            IntGauge::new("radar_router_layout_version", "Layout version in use").expect("valid");
        registry
            .register(Box::new(layout_version.clone()))
            .expect("unique metric");
        Self {
            registry,
            connections,
            forwarded,
            refused,
            redirects,
            active,
            layout_version,
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let encoder = prometheus::TextEncoder::new();
        let _ = encoder.encode_utf8(&self.registry.gather(), &mut out);
        out
    }
}

impl Default for RouterMetrics {
    fn default() -> Self {
        Self::new()
    }
}
