//! Prometheus metrics of the node, all named `radar_*`. A device id is never a label.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

pub struct Metrics {
    pub registry: Registry,
    pub cwmp_sessions: IntCounterVec,
    pub cwmp_sessions_active: IntGauge,
    pub cwmp_rpcs: IntCounterVec,
    pub cwmp_faults: IntCounterVec,
    pub cwmp_rejected: IntCounterVec,
    pub twin_commands: IntCounterVec,
    pub twin_commits: IntCounter,
    pub twin_batch_size: Histogram,
    pub twin_commit_seconds: Histogram,
    pub twins: IntGauge,
    pub cwmp_overdue: IntGauge,
    pub connection_requests: IntCounterVec,
    /// Each mechanism's attempts (`http`, `udp`, `xmpp`) by result.
    pub connection_request_attempts: IntCounterVec,
    /// STUN messages at the Annex G server, by kind.
    pub stun_messages: IntCounterVec,
    pub api_requests: IntCounterVec,
    /// API requests refused by the auth layer: `missing` or `unknown` token (401), a `role`
    /// too weak or an `unlisted` route (403).
    pub api_auth_denied: IntCounterVec,
    /// API requests refused by a limit: `body`, `rate`, `query_nesting`, `query_terms`.
    pub api_limit_hits: IntCounterVec,
    /// Audit records no shard took within a minute of their call (logged as errors).
    pub audit_lost: IntCounter,
    pub usp_connections: IntGauge,
    pub usp_mqtt_connected: IntGauge,
    pub usp_stomp_connected: IntGauge,
    /// 1 while the XMPP session for Annex K connection requests is up.
    pub xmpp_connected: IntGauge,
    pub usp_records: IntCounterVec,
    pub usp_rejected: IntCounterVec,
    /// WebSocket link events that are routine for CPEs (resets, nudges), counted not logged.
    pub usp_ws_events: IntCounterVec,
    /// MQTT records for agents led elsewhere: `sent` to the leader, or `handled_here`.
    pub usp_forwarded: IntCounterVec,
    pub usp_notifies: IntCounterVec,
    pub usp_requests: IntCounterVec,
    pub usp_errors: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
                .expect("valid metric");
            registry
                .register(Box::new(h.clone()))
                .expect("unique metric");
            h
        };
        let twin_commits =
            IntCounter::new("radar_twin_commits_total", "Group commits made durable")
                .expect("valid metric");
        registry
            .register(Box::new(twin_commits.clone()))
            .expect("unique metric");
        let audit_lost = IntCounter::new(
            "radar_audit_records_lost_total",
            "Audit records no shard committed within a minute of their API call",
        )
        .expect("valid metric");
        registry
            .register(Box::new(audit_lost.clone()))
            .expect("unique metric");
        Self {
            audit_lost,
            usp_connections: gauge(
                "radar_usp_connections",
                "USP agents connected (WebSocket connections and MQTT agents)",
            ),
            xmpp_connected: gauge(
                "radar_xmpp_connected",
                "1 while the XMPP session for connection requests is up",
            ),
            usp_stomp_connected: gauge(
                "radar_usp_stomp_connected",
                "1 while the STOMP MTP is connected and subscribed",
            ),
            usp_mqtt_connected: gauge(
                "radar_usp_mqtt_connected",
                "1 while the MQTT MTP is connected to its broker",
            ),
            usp_records: counter_vec(
                "radar_usp_records_total",
                "USP records by direction and MTP",
                &["direction", "mtp"],
            ),
            usp_rejected: counter_vec(
                "radar_usp_rejected_total",
                "USP handshakes, frames and records refused, by reason",
                &["reason"],
            ),
            usp_ws_events: counter_vec(
                "radar_usp_websocket_events_total",
                "Routine WebSocket link events: agents that dropped without a close handshake, pings sent to agents slow to answer",
                &["event"],
            ),
            usp_forwarded: counter_vec(
                "radar_usp_forwarded_total",
                "USP MQTT records for shards led by another node, by outcome",
                &["outcome"],
            ),
            usp_notifies: counter_vec(
                "radar_usp_notifies_total",
                "USP Notify messages received, by type",
                &["type"],
            ),
            usp_requests: counter_vec(
                "radar_usp_requests_total",
                "USP requests sent to agents, by message type",
                &["msg"],
            ),
            usp_errors: counter_vec(
                "radar_usp_errors_total",
                "USP Errors and failures received from agents, by code",
                &["code"],
            ),
            cwmp_sessions: counter_vec(
                "radar_cwmp_sessions_total",
                "CWMP sessions by how they ended",
                &["outcome"],
            ),
            cwmp_sessions_active: gauge("radar_cwmp_sessions_active", "CWMP sessions in flight"),
            cwmp_rpcs: counter_vec(
                "radar_cwmp_rpcs_total",
                "CWMP messages the ACS sent, by method",
                &["method"],
            ),
            cwmp_faults: counter_vec("radar_cwmp_faults_total", "CWMP faults by code", &["code"]),
            cwmp_rejected: counter_vec(
                "radar_cwmp_rejected_total",
                "CWMP requests refused before a session",
                &["reason"],
            ),
            twin_commands: counter_vec(
                "radar_twin_commands_total",
                "Twin commands applied by kind",
                &["kind"],
            ),
            twin_commits,
            twin_batch_size: histogram(
                "radar_twin_batch_size",
                "Commands per group commit",
                vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
            ),
            twin_commit_seconds: histogram(
                "radar_twin_commit_seconds",
                "Time to make a group commit durable",
                prometheus::exponential_buckets(0.0001, 2.0, 16).expect("valid buckets"),
            ),
            twins: gauge("radar_twins", "Twins held by this node"),
            cwmp_overdue: gauge(
                "radar_cwmp_overdue_devices",
                "CWMP devices of the shards this node leads that missed two periodic informs and the grace",
            ),
            connection_requests: counter_vec(
                "radar_connection_requests_total",
                "Connection requests by result",
                &["result"],
            ),
            connection_request_attempts: counter_vec(
                "radar_connection_request_attempts_total",
                "Connection-request attempts by mechanism and result",
                &["mechanism", "result"],
            ),
            stun_messages: counter_vec(
                "radar_stun_messages_total",
                "STUN messages at the TR-069 Annex G server by kind",
                &["kind"],
            ),
            api_requests: counter_vec(
                "radar_api_requests_total",
                "REST API requests by status class",
                &["status"],
            ),
            api_auth_denied: counter_vec(
                "radar_api_auth_denied_total",
                "API requests refused by authentication or role, by reason",
                &["reason"],
            ),
            api_limit_hits: counter_vec(
                "radar_api_limit_hits_total",
                "API requests refused by a configured limit, by limit",
                &["limit"],
            ),
            registry,
        }
    }

    pub fn render(&self) -> String {
        let encoder = prometheus::TextEncoder::new();
        encoder
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The twin cache's numbers (`radar_twin_cache_*`), read from the node's budget at each scrape.
struct TwinCacheCollector {
    budget: std::sync::Arc<radar_twin::table::MemoryBudget>,
    loaded: IntGauge,
    bytes: IntGauge,
    limit: IntGauge,
    hits: IntCounter,
    misses: IntCounter,
    evictions: IntCounter,
}

impl prometheus::core::Collector for TwinCacheCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        [
            self.loaded.desc(),
            self.bytes.desc(),
            self.limit.desc(),
            self.hits.desc(),
            self.misses.desc(),
            self.evictions.desc(),
        ]
        .concat()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        use std::sync::atomic::Ordering::Relaxed;
        let stats = &self.budget.stats;
        self.loaded.set(stats.loaded() as i64);
        self.bytes.set(stats.bytes() as i64);
        self.limit
            .set(i64::try_from(self.budget.limit).unwrap_or(i64::MAX));
        for (counter, value) in [
            (&self.hits, stats.hits.load(Relaxed)),
            (&self.misses, stats.misses.load(Relaxed)),
            (&self.evictions, stats.evictions.load(Relaxed)),
        ] {
            counter.reset();
            counter.inc_by(value);
        }
        [
            self.loaded.collect(),
            self.bytes.collect(),
            self.limit.collect(),
            self.hits.collect(),
            self.misses.collect(),
            self.evictions.collect(),
        ]
        .concat()
    }
}

impl Metrics {
    /// Reports the twin cache of `budget` (the node's shards share it).
    pub fn register_twin_cache(&self, budget: std::sync::Arc<radar_twin::table::MemoryBudget>) {
        let gauge = |name: &str, help: &str| IntGauge::new(name, help).expect("valid metric");
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("valid metric");
        let collector = TwinCacheCollector {
            budget,
            loaded: gauge("radar_twin_cache_loaded", "Twins resident in memory"),
            bytes: gauge(
                "radar_twin_cache_bytes",
                "Estimated bytes of the twins resident in memory",
            ),
            limit: gauge(
                "radar_twin_cache_budget_bytes",
                "The node's memory budget for resident twins ([store] memory_budget)",
            ),
            hits: counter(
                "radar_twin_cache_hits_total",
                "Uses of a twin that found it in memory",
            ),
            misses: counter(
                "radar_twin_cache_misses_total",
                "Uses of a twin that read it from disk",
            ),
            evictions: counter(
                "radar_twin_cache_evictions_total",
                "Twins evicted from memory to stay within the budget",
            ),
        };
        if let Err(e) = self.registry.register(Box::new(collector)) {
            tracing::warn!(error = %e, "twin cache metrics not registered");
        }
    }
}
