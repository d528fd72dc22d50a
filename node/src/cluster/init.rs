//! Forming the cluster (`radar cluster init`): ask every seed who it is, make the seeds the
//! voters of the metadata group (once; a formed group refuses a second initialization and that
//! counts as done), register every node, then commit the initial layout. Each step is
//! idempotent, so init can be repeated, on any node, after a partial failure.

use super::meta::{MetaError, MetaGroup};
use crate::raft::network::MAX_MESSAGE_BYTES;
use openraft::error::RaftError;
use openraft::BasicNode;
use radar_core::{Layout, LayoutCommand, NodeInfo};
use radar_proto::cluster::cluster_client::ClusterClient;
use radar_proto::cluster::HelloRequest;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, Copy, serde::Deserialize, utoipa::ToSchema)]
pub struct InitRequest {
    pub shards: u32,
    pub replicas: u32,
    #[serde(default)]
    pub partitions: Option<u32>,
}

/// Who listens at a seed's gRPC address.
pub async fn hello(
    peers: &crate::raft::network::PeerChannels,
    addr: &str,
    timeout: Duration,
) -> Result<NodeInfo, MetaError> {
    let unreachable = |message: String| MetaError::Unreachable {
        node: addr.to_owned(),
        message,
    };
    let channel = peers
        .endpoint(addr)
        .map_err(unreachable)?
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect()
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let info = ClusterClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .hello(HelloRequest {})
        .await
        .map_err(|s| unreachable(s.message().to_owned()))?
        .into_inner();
    Ok(NodeInfo {
        id: info.id,
        grpc: info.grpc,
        api: info.api,
        cwmp: info.cwmp,
        usp: info.usp,
    })
}

pub async fn init_cluster(
    meta: &MetaGroup,
    seeds: &[String],
    default_partitions: u32,
    request: InitRequest,
    wait: Duration,
) -> Result<Layout, MetaError> {
    let mut nodes = BTreeMap::new();
    nodes.insert(meta.info.id, meta.info.clone());
    for seed in seeds {
        let info = hello(&meta.peers, seed, Duration::from_secs(3)).await?;
        nodes.insert(info.id, info);
    }
    if !meta
        .raft
        .is_initialized()
        .await
        .map_err(|e| MetaError::Raft(e.to_string()))?
    {
        let voters: BTreeMap<u64, BasicNode> = nodes
            .values()
            .map(|n| (n.id, BasicNode::new(n.grpc.clone())))
            .collect();
        match meta.raft.initialize(voters).await {
            Ok(()) | Err(RaftError::APIError(_)) => {}
            Err(e) => return Err(MetaError::Raft(e.to_string())),
        }
    }
    meta.raft
        .wait(Some(wait))
        .metrics(|m| m.current_leader.is_some(), "metadata leader")
        .await
        .map_err(|_| MetaError::NoLeader)?;
    for info in nodes.into_values() {
        if meta.current().nodes.get(&info.id) != Some(&info) {
            meta.propose(LayoutCommand::RegisterNode(info), false)
                .await?;
        }
    }
    meta.propose(
        LayoutCommand::Init {
            partitions: request.partitions.unwrap_or(default_partitions),
            shards: request.shards,
            replicas: request.replicas,
            cluster_secret: hex::encode(rand::random::<[u8; 32]>()),
        },
        false,
    )
    .await
}
