//! The node as a cluster member: its replica of the metadata group (the layout), the follower
//! that opens this node's shard replicas as the layout assigns them, cluster formation
//! (`radar cluster init`), and the `Cluster` gRPC service other nodes and routers call.
//!
//! Modules:
//! - [`meta`]: the metadata group replica and layout proposals (forwarded to its leader).
//! - [`follow`]: layout changes → shard replicas opened and bootstrapped, fleet view switched.
//! - [`forward`]: twin commands sent to the shard leader's node.
//! - [`init`]: forming the cluster from the seed nodes.
//! - [`grpc`]: the `Cluster` service.
//! - [`status`]: the cluster-wide status `radar cluster` shows.

pub mod follow;
pub mod forward;
pub mod grpc;
pub mod indexes;
pub mod init;
pub mod membership;
pub mod meta;
pub mod rebalance;
pub mod status;

use serde::{Deserialize, Serialize};

/// `[cluster]` in node.toml: absent (no seeds) means the embedded single-node mode.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// The cluster gRPC addresses (`host:port`) of the nodes that form the cluster, this one
    /// included. Non-empty turns on the cluster mode.
    pub seeds: Vec<String>,
    /// The host other nodes, routers and devices use to reach this node when it listens on
    /// an unspecified address (0.0.0.0). Default: 127.0.0.1.
    pub advertise_host: Option<String>,
    /// Mutual TLS on the cluster gRPC port (Raft, layout, scatter, forwarding): nodes and
    /// routers must present a certificate the CA signed. Every member needs it, or none.
    pub tls: Option<radar_core::cluster_tls::ClusterTls>,
    /// Serve cluster gRPC to other hosts without `tls` (a lab, a private network the operator
    /// vouches for). Off: a node whose gRPC listener is not on loopback refuses to start without
    /// mutual TLS, since the port carries Raft, which can rewrite every twin.
    pub allow_plaintext: bool,
}

impl ClusterConfig {
    pub fn enabled(&self) -> bool {
        !self.seeds.is_empty()
    }
}

/// Refuses a cluster gRPC listener other hosts can reach without mutual TLS (issue 13), unless
/// the operator allowed it, and then says so at every start.
pub fn check_plaintext_exposure(
    config: &ClusterConfig,
    grpc: std::net::SocketAddr,
) -> Result<(), crate::NodeError> {
    if config.tls.is_some() || grpc.ip().is_loopback() {
        return Ok(());
    }
    if config.allow_plaintext {
        tracing::warn!(%grpc, "cluster gRPC is open to other hosts without TLS ([cluster] allow_plaintext): anyone who reaches it can speak Raft");
        return Ok(());
    }
    Err(crate::NodeError::Config(format!(
        "cluster gRPC on {grpc} would be reachable from other hosts without TLS: set [cluster] tls = {{ ca, cert, key }}, bind --grpc-listen to loopback, or accept the risk with [cluster] allow_plaintext = true"
    )))
}

/// The address to announce for a bound listener.
pub fn advertised(bound: std::net::SocketAddr, advertise_host: Option<&str>) -> String {
    if bound.ip().is_unspecified() {
        format!("{}:{}", advertise_host.unwrap_or("127.0.0.1"), bound.port())
    } else {
        bound.to_string()
    }
}
