//! An index added through one node's API is added on every node of the cluster: each node
//! indexes its own replicas (`crate::index_admin`) and keeps the field across its restarts.

use super::meta::MetaGroup;
use crate::raft::network::MAX_MESSAGE_BYTES;
use radar_proto::cluster::cluster_client::ClusterClient;
use radar_proto::cluster::IndexRequest;
use serde::Serialize;

/// What one other node answered.
#[derive(Debug, Clone, Serialize)]
pub struct NodeIndex {
    pub node: u64,
    /// `building`, `ready`, `failed`, or `unreachable`.
    pub state: String,
    pub twins_done: u64,
    pub twins_total: u64,
    pub error: Option<String>,
}

/// Asks every other node of the layout to index `field`, concurrently.
pub async fn add_on_other_nodes(meta: &MetaGroup, field: &str) -> Vec<NodeIndex> {
    let layout = meta.current();
    let asks = layout
        .nodes
        .values()
        .filter(|n| n.id != meta.info.id)
        .map(|node| add_on_node(meta, node, field));
    futures_util::future::join_all(asks).await
}

/// Asks `node` to index `field`: the node keeps it across restarts and indexes every replica
/// it opens from then on.
pub async fn add_on_node(meta: &MetaGroup, node: &radar_core::NodeInfo, field: &str) -> NodeIndex {
    let failed = |state: &str, error: String| NodeIndex {
        node: node.id,
        state: state.into(),
        twins_done: 0,
        twins_total: 0,
        error: Some(error),
    };
    let channel = match meta.peers.channel(node.id, &node.grpc) {
        Ok(channel) => channel,
        Err(e) => return failed("unreachable", e),
    };
    let reply = ClusterClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .add_index(IndexRequest {
            field: field.to_owned(),
        })
        .await;
    match reply.map(|r| r.into_inner()) {
        Ok(r) if r.state.is_empty() => failed("failed", r.error),
        Ok(r) => NodeIndex {
            node: node.id,
            state: r.state,
            twins_done: r.twins_done,
            twins_total: r.twins_total,
            error: (!r.error.is_empty()).then_some(r.error),
        },
        Err(status) => failed("unreachable", status.message().to_owned()),
    }
}
