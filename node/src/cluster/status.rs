//! Cluster status: each node reports the replicas it hosts; `GET /api/v1/cluster` (and so
//! `radar cluster`) asks every node of the layout in parallel, with a deadline, and merges.

use super::meta::MetaGroup;
use crate::core::NodeCore;
use crate::raft::network::MAX_MESSAGE_BYTES;
use radar_proto::cluster::cluster_client::ClusterClient;
use radar_proto::cluster::{NodeStatus, ShardStatus, StatusRequest};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// This node's replicas as `Status` reports them.
pub fn local_status(core: &NodeCore, meta: &MetaGroup) -> NodeStatus {
    let view = core.fleet.view();
    let layout = meta.current();
    let shards = view
        .replicas
        .values()
        .map(|shard| {
            let metrics = shard.raft().metrics().borrow().clone();
            ShardStatus {
                shard: shard.id.0,
                leader: metrics.current_leader.unwrap_or(0),
                is_leader: shard.is_leader(),
                voters: layout
                    .shard(shard.id)
                    .map(|s| s.voters.clone())
                    .unwrap_or_default(),
                devices: shard.read().twins.len() as u64,
                last_applied: metrics.last_applied.map(|l| l.index).unwrap_or(0),
                healthy: shard.healthy(),
                term: metrics.current_term,
            }
        })
        .collect();
    NodeStatus {
        node: meta.info.id,
        layout_version: view.layout_version,
        shards,
        meta_leader: meta.leader().unwrap_or(0),
    }
}

/// The whole cluster as `GET /api/v1/cluster` shows it.
pub async fn cluster_status(core: &NodeCore, meta: &MetaGroup, deadline: Duration) -> Value {
    let layout = meta.current();
    let asks = layout.nodes.values().map(|node| {
        let peers = meta.peers.clone();
        let local = (node.id == meta.info.id).then(|| local_status(core, meta));
        let node = node.clone();
        async move {
            if let Some(status) = local {
                return (node, Ok(status));
            }
            let ask = async {
                let channel = peers.channel(node.id, &node.grpc)?;
                ClusterClient::new(channel)
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .status(StatusRequest {})
                    .await
                    .map(|r| r.into_inner())
                    .map_err(|s| s.message().to_owned())
            };
            let status = match tokio::time::timeout(deadline, ask).await {
                Ok(result) => result,
                Err(_) => Err(format!("no answer within {deadline:?}")),
            };
            (node, status)
        }
    });
    let answers = futures_util::future::join_all(asks).await;
    let mut by_shard: BTreeMap<u32, Vec<(u64, ShardStatus)>> = BTreeMap::new();
    let mut nodes = Vec::new();
    for (node, status) in answers {
        let reachable = status.is_ok();
        let mut entry = json!({
            "id": node.id, "grpc": node.grpc, "api": node.api, "cwmp": node.cwmp,
            "usp": node.usp, "reachable": reachable,
        });
        match status {
            Ok(status) => {
                entry["layout_version"] = json!(status.layout_version);
                entry["replicas"] = json!(status.shards.len());
                entry["leads"] = json!(status
                    .shards
                    .iter()
                    .filter(|s| s.is_leader)
                    .map(|s| s.shard)
                    .collect::<Vec<_>>());
                for shard in status.shards {
                    by_shard
                        .entry(shard.shard)
                        .or_default()
                        .push((node.id, shard));
                }
            }
            Err(e) => entry["error"] = json!(e),
        }
        nodes.push(entry);
    }
    let shards: Vec<Value> = layout
        .shards
        .iter()
        .map(|shard| {
            let replicas = by_shard.remove(&shard.id.0).unwrap_or_default();
            let leader = replicas.iter().find(|(_, s)| s.is_leader);
            json!({
                "id": shard.id.0,
                "voters": shard.voters,
                "leader": leader.map(|(node, _)| *node),
                "devices": leader.map(|(_, s)| s.devices),
                "replicas": replicas.iter().map(|(node, s)| json!({"node": node, "devices": s.devices, "last_applied": s.last_applied, "healthy": s.healthy})).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "mode": "cluster",
        "initialized": layout.is_initialized(),
        "layout_version": layout.version,
        "partitions": layout.partitions,
        "replicas": layout.replicas,
        "meta_leader": meta.leader(),
        "shards": shards,
        "nodes": nodes,
    })
}

/// Asks the voters of a shard this node has no replica of which one leads it.
pub async fn find_leader(meta: &MetaGroup, shard: radar_core::ShardId) -> Option<u64> {
    let layout = meta.current();
    let voters = layout.shard(shard)?.voters.clone();
    let asks = voters.into_iter().filter_map(|id| {
        let node = layout.nodes.get(&id)?.clone();
        let peers = meta.peers.clone();
        Some(async move {
            let channel = peers.channel(node.id, &node.grpc).ok()?;
            let mut client = ClusterClient::new(channel);
            let status =
                tokio::time::timeout(Duration::from_secs(2), client.status(StatusRequest {}))
                    .await
                    .ok()?
                    .ok()?
                    .into_inner();
            status
                .shards
                .iter()
                .any(|s| s.shard == shard.0 && s.is_leader)
                .then_some(node.id)
        })
    });
    futures_util::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .next()
}
