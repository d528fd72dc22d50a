//! `radar cluster add-shard`: a new shard joins and the partitions the next ring gives it move
//! there with their twins, while devices keep being served (the protocol is in
//! `radar_twin::moving`):
//!
//! 1. the metadata group adds the shard, not serving yet; its voters open replicas;
//! 2. per source shard, its leader freezes the moving partitions and copies their twins into
//!    the new shard (`MovePartitions`); writes for those devices wait meanwhile;
//! 3. the metadata group activates the shard: from that layout version on, the new shard owns
//!    the partitions, and the waiting writes go there;
//! 4. per source shard, its leader deletes the moved twins (`MovePartitions` with `release`).
//!
//! Each step is idempotent, so running `add-shard` again finishes an interrupted move.

use super::meta::{MetaError, MetaGroup};
use crate::core::NodeCore;
use crate::raft::network::MAX_MESSAGE_BYTES;
use crate::shard::ProposeError;
use radar_core::{LayoutCommand, ShardId, Timestamp};
use radar_proto::cluster::cluster_client::ClusterClient;
use radar_proto::cluster::{MoveReply, PartitionMove};
use radar_twin::{ShardControl, TwinCommand};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tracing::info;

/// Twins copied concurrently into the receiving shard (group commit batches them).
const COPY_CONCURRENCY: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum RebalanceError {
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error("shard {0} has no leader")]
    NoLeader(ShardId),
    #[error("moving partitions out of shard {shard}: {message}")]
    Move { shard: ShardId, message: String },
    #[error("no node {0} in the cluster")]
    UnknownNode(u64),
}

#[derive(Debug, Serialize)]
pub struct AddShardReport {
    pub shard: u32,
    pub voters: Vec<u64>,
    pub partitions_moved: usize,
    pub twins_moved: u64,
    pub layout_version: u64,
    pub seconds: f64,
}

pub async fn add_shard(
    meta: &MetaGroup,
    patience: Duration,
) -> Result<AddShardReport, RebalanceError> {
    let started = std::time::Instant::now();
    let layout = meta
        .propose_patiently(LayoutCommand::AddShard, patience)
        .await?;
    let Some(target) = layout.receiving().cloned() else {
        return Err(MetaError::Refused("no shard is receiving partitions".into()).into());
    };
    let current = layout
        .ring()
        .map_err(|e| MetaError::Refused(e.to_string()))?;
    let next = layout
        .target_ring()
        .map_err(|e| MetaError::Refused(e.to_string()))?;
    let mut by_source: BTreeMap<ShardId, Vec<u32>> = BTreeMap::new();
    for (partition, from, _) in current.moves_to(&next) {
        by_source.entry(from).or_default().push(partition.0);
    }
    info!(shard = %target.id, voters = ?target.voters, sources = by_source.len(), "adding a shard");
    wait_for_leader(meta, target.id, patience).await?;
    let mut twins_moved = 0;
    for (source, partitions) in &by_source {
        let step = PartitionMove {
            source: source.0,
            target: target.id.0,
            partition_count: layout.partitions,
            partitions: partitions.clone(),
            release: false,
        };
        twins_moved += run_step(meta, *source, step, patience).await?;
    }
    let layout = meta
        .propose_patiently(LayoutCommand::ActivateShard(target.id), patience)
        .await?;
    // A node still on the previous layout would list the moved devices at their source: the
    // source keeps them until every node routes by this version.
    wait_for_nodes_at(meta, layout.version, patience).await;
    for (source, partitions) in &by_source {
        let step = PartitionMove {
            source: source.0,
            target: target.id.0,
            partition_count: layout.partitions,
            partitions: partitions.clone(),
            release: true,
        };
        run_step(meta, *source, step, patience).await?;
    }
    let report = AddShardReport {
        shard: target.id.0,
        voters: target.voters.clone(),
        partitions_moved: by_source.values().map(Vec::len).sum(),
        twins_moved,
        layout_version: layout.version,
        seconds: started.elapsed().as_secs_f64(),
    };
    info!(
        shard = report.shard,
        twins = report.twins_moved,
        partitions = report.partitions_moved,
        seconds = report.seconds,
        "shard added"
    );
    Ok(report)
}

/// Waits until every node of the layout reports `version` or newer (a node that does not answer
/// within `patience` is not waited for: it catches up before it serves again).
async fn wait_for_nodes_at(meta: &MetaGroup, version: u64, patience: Duration) {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let layout = meta.current();
        let asks = layout.nodes.values().map(|node| {
            let peers = meta.peers.clone();
            let node = node.clone();
            async move {
                let channel = peers.channel(node.id, &node.grpc).ok()?;
                let status = tokio::time::timeout(
                    Duration::from_secs(2),
                    ClusterClient::new(channel).status(radar_proto::cluster::StatusRequest {}),
                )
                .await
                .ok()?
                .ok()?;
                Some(status.into_inner().layout_version)
            }
        });
        let versions = futures_util::future::join_all(asks).await;
        if versions.iter().all(|v| v.is_some_and(|v| v >= version)) {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                version,
                ?versions,
                "not every node reached the layout; releasing anyway"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for_leader(
    meta: &MetaGroup,
    shard: ShardId,
    patience: Duration,
) -> Result<u64, RebalanceError> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        if let Some(leader) = super::status::find_leader(meta, shard).await {
            return Ok(leader);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(RebalanceError::NoLeader(shard));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs one step at the source shard's leader, finding it again if leadership moves.
async fn run_step(
    meta: &MetaGroup,
    source: ShardId,
    step: PartitionMove,
    patience: Duration,
) -> Result<u64, RebalanceError> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let leader = wait_for_leader(meta, source, patience).await?;
        let layout = meta.current();
        let error = match layout.nodes.get(&leader) {
            Some(node) => match meta.peers.channel(leader, &node.grpc) {
                Ok(channel) => {
                    let reply = ClusterClient::new(channel)
                        .max_decoding_message_size(MAX_MESSAGE_BYTES)
                        .move_partitions(step.clone())
                        .await;
                    match reply.map(|r| r.into_inner()) {
                        Ok(MoveReply { twins, error }) if error.is_empty() => return Ok(twins),
                        Ok(MoveReply { error, .. }) => error,
                        Err(status) => status.message().to_owned(),
                    }
                }
                Err(e) => e,
            },
            None => format!("node {leader} is not in the layout"),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(RebalanceError::Move {
                shard: source,
                message: error,
            });
        }
        tracing::warn!(shard = %source, error = %error, "partition move step failed; retrying");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Serves `MovePartitions` at the source shard's leader.
pub async fn handle_move(core: &Arc<NodeCore>, step: PartitionMove) -> Result<u64, String> {
    let source = ShardId(step.source);
    let replica = core
        .fleet
        .view()
        .replicas
        .get(&source)
        .cloned()
        .filter(|s| s.is_leader())
        .ok_or_else(|| "not leader".to_string())?;
    let partitions: BTreeSet<u32> = step.partitions.iter().copied().collect();
    let describe = |e: ProposeError| e.to_string();
    if step.release {
        let before = replica.read().twins.len();
        replica
            .propose_control(ShardControl::Release {
                partitions: step.partitions.clone(),
            })
            .await
            .map_err(describe)?;
        let after = replica.read().twins.len();
        info!(source = %source, twins = before.saturating_sub(after), "partitions released");
        return Ok(before.saturating_sub(after) as u64);
    }
    // After this entry is applied here, no command for these devices applies in the source,
    // so the copy read next is final.
    replica
        .propose_control(ShardControl::Freeze {
            partition_count: step.partition_count,
            partitions: step.partitions.clone(),
        })
        .await
        .map_err(describe)?;
    let twins =
        radar_twin::moving::export_partitions(&replica.read(), step.partition_count, &partitions)
            .map_err(|e| e.to_string())?;
    let count = twins.len() as u64;
    let target = ShardId(step.target);
    let at = Timestamp::now();
    let mut copies = tokio::task::JoinSet::new();
    for twin in twins {
        while copies.len() >= COPY_CONCURRENCY {
            join_one(&mut copies).await?;
        }
        let core = core.clone();
        copies.spawn(async move {
            let command = TwinCommand::ImportTwin {
                device: twin.key.clone(),
                at,
                twin: Box::new(twin),
            };
            core.propose_to(target, command).await
        });
    }
    while !copies.is_empty() {
        join_one(&mut copies).await?;
    }
    info!(source = %source, target = %target, twins = count, partitions = partitions.len(), "partitions copied");
    Ok(count)
}

async fn join_one(
    copies: &mut tokio::task::JoinSet<Result<radar_twin::ApplyOutcome, ProposeError>>,
) -> Result<(), String> {
    match copies.join_next().await {
        Some(Ok(Ok(_))) | None => Ok(()),
        Some(Ok(Err(e))) => Err(format!("copying a twin: {e}")),
        Some(Err(e)) => Err(format!("copying a twin: {e}")),
    }
}
