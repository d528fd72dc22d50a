//! `radar cluster add-node` and `remove-node`: replicas move between nodes through Raft
//! membership changes, one voter at a time, while the shard keeps serving.
//!
//! Replacing voter `out` of a group by node `new`:
//! 1. the layout lists `new` as a learner of the shard, so `new` opens an empty replica;
//! 2. the group's leader adds `new` as a learner and waits until it has caught up (log or
//!    snapshot), then changes the voters to `voters - out + new` (openraft's joint consensus);
//! 3. the layout lists the new voters; `out` closes its replica.
//!
//! The metadata group changes the same way, without the layout steps: a node added to the
//! cluster becomes a metadata voter first (so it follows the layout), and a drained node stops
//! being one last.

use super::meta::{MetaError, MetaGroup};
use super::rebalance::RebalanceError;
use crate::core::NodeCore;
use crate::raft::network::MAX_MESSAGE_BYTES;
use crate::raft::GroupId;
use openraft::{BasicNode, Raft, RaftTypeConfig};
use radar_core::{LayoutCommand, ShardId};
use radar_proto::cluster::cluster_client::ClusterClient;
use radar_proto::cluster::{VoterChange, VoterReply};
use serde::Serialize;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tracing::info;

/// One replica that moved.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicaMove {
    pub shard: u32,
    pub from: Option<u64>,
    pub to: u64,
}

#[derive(Debug, Serialize)]
pub struct MembershipReport {
    pub node: u64,
    pub moves: Vec<ReplicaMove>,
    pub layout_version: u64,
    pub seconds: f64,
}

/// Adds the node listening for cluster gRPC at `address`: registers it, makes it a metadata
/// voter, asks it to index the fields added online (`indexes`, so its replicas open indexed),
/// then moves replicas to it from the nodes that host the most until it hosts its share.
pub async fn add_node(
    meta: &MetaGroup,
    address: &str,
    indexes: &[String],
    patience: Duration,
) -> Result<MembershipReport, RebalanceError> {
    let started = std::time::Instant::now();
    let info = super::init::hello(&meta.peers, address, Duration::from_secs(3)).await?;
    if info.id == 0 {
        return Err(MetaError::Refused(format!("the node at {address} has id 0")).into());
    }
    let node = info.id;
    meta.propose_patiently(LayoutCommand::RegisterNode(info.clone()), patience)
        .await?;
    change_voters(meta, GroupId::META, Some(node), None, patience).await?;
    for field in indexes {
        let answer = super::indexes::add_on_node(meta, &info, field).await;
        if let Some(error) = &answer.error {
            // Answers stay right without it, only slower there; an operator can add it again.
            tracing::warn!(
                node,
                field,
                state = answer.state,
                error,
                "index not added on the new node"
            );
        }
    }
    let mut moves = Vec::new();
    loop {
        let layout = meta.current();
        let counts = layout.replica_counts();
        let total: usize = layout.shards.iter().map(|s| s.voters.len()).sum();
        let share = total / counts.len().max(1);
        if counts.get(&node).copied().unwrap_or(0) >= share {
            break;
        }
        // From the node hosting the most replicas, one of its shards the new node lacks.
        let candidate = counts
            .iter()
            .filter(|(n, _)| **n != node)
            .max_by_key(|(n, c)| (**c, std::cmp::Reverse(**n)))
            .and_then(|(busiest, count)| {
                (*count > share).then_some(*busiest).and_then(|busiest| {
                    layout
                        .shards
                        .iter()
                        .find(|s| s.voters.contains(&busiest) && !s.voters.contains(&node))
                        .map(|s| (s.id, busiest))
                })
            });
        let Some((shard, from)) = candidate else {
            break;
        };
        replace_voter(meta, shard, Some(from), node, patience).await?;
        moves.push(ReplicaMove {
            shard: shard.0,
            from: Some(from),
            to: node,
        });
    }
    Ok(finish(meta, node, moves, started, "node added"))
}

/// Drains `node` (each of its replicas replaced by one on the node hosting the fewest), then
/// removes it from the metadata group and from the layout.
pub async fn remove_node(
    meta: &MetaGroup,
    node: u64,
    patience: Duration,
) -> Result<MembershipReport, RebalanceError> {
    let started = std::time::Instant::now();
    if !meta.current().nodes.contains_key(&node) {
        return Err(RebalanceError::UnknownNode(node));
    }
    let mut moves = Vec::new();
    loop {
        let layout = meta.current();
        let Some(shard) = layout.shards.iter().find(|s| s.voters.contains(&node)) else {
            break;
        };
        let counts = layout.replica_counts();
        let to = counts
            .iter()
            .filter(|(n, _)| **n != node && !shard.voters.contains(n))
            .min_by_key(|(n, c)| (**c, **n))
            .map(|(n, _)| *n)
            .ok_or_else(|| {
                MetaError::Refused(format!(
                    "no node can take node {node}'s replica of shard {}: every other node hosts it",
                    shard.id
                ))
            })?;
        replace_voter(meta, shard.id, Some(node), to, patience).await?;
        moves.push(ReplicaMove {
            shard: shard.id.0,
            from: Some(node),
            to,
        });
    }
    // Out of the metadata group while the layout still has its address (it may lead the
    // group; it steps down once the change commits), then out of the layout.
    change_voters(meta, GroupId::META, None, Some(node), patience).await?;
    meta.propose_patiently(LayoutCommand::RemoveNode(node), patience)
        .await?;
    Ok(finish(meta, node, moves, started, "node removed"))
}

fn finish(
    meta: &MetaGroup,
    node: u64,
    moves: Vec<ReplicaMove>,
    started: std::time::Instant,
    what: &str,
) -> MembershipReport {
    let report = MembershipReport {
        node,
        moves,
        layout_version: meta.current().version,
        seconds: started.elapsed().as_secs_f64(),
    };
    info!(
        node,
        moves = report.moves.len(),
        seconds = report.seconds,
        "{what}"
    );
    report
}

/// Replaces voter `out` (or adds one, when `None`) of `shard` by `new`.
async fn replace_voter(
    meta: &MetaGroup,
    shard: ShardId,
    out: Option<u64>,
    new: u64,
    patience: Duration,
) -> Result<(), RebalanceError> {
    info!(shard = %shard, from = ?out, to = new, "moving a replica");
    meta.propose_patiently(LayoutCommand::AddLearner { shard, node: new }, patience)
        .await?;
    let voters = change_voters(meta, GroupId::shard(shard), Some(new), out, patience).await?;
    // The layout keeps its voter order (the first voter bootstraps new groups), with `new` in
    // the place of `out`.
    let layout = meta.current();
    let mut ordered: Vec<u64> = layout
        .shard(shard)
        .map(|s| {
            s.voters
                .iter()
                .map(|v| if Some(*v) == out { new } else { *v })
                .collect()
        })
        .unwrap_or_default();
    ordered.dedup();
    if ordered.iter().copied().collect::<BTreeSet<_>>() != voters {
        ordered = voters.into_iter().collect();
    }
    meta.propose_patiently(
        LayoutCommand::SetVoters {
            shard,
            voters: ordered,
        },
        patience,
    )
    .await?;
    Ok(())
}

/// Runs a voter change at the group's leader, finding it again if leadership moves. Returns
/// the group's voters after the change.
async fn change_voters(
    meta: &MetaGroup,
    group: GroupId,
    add: Option<u64>,
    remove: Option<u64>,
    patience: Duration,
) -> Result<BTreeSet<u64>, RebalanceError> {
    let deadline = tokio::time::Instant::now() + patience;
    let change = VoterChange {
        group: group.0,
        add: add.unwrap_or(0),
        remove: remove.unwrap_or(0),
    };
    loop {
        let leader = if group == GroupId::META {
            meta.leader()
        } else {
            super::status::find_leader(meta, ShardId((group.0 - 1) as u32)).await
        };
        let error = match leader.and_then(|l| meta.current().nodes.get(&l).cloned()) {
            Some(node) => match meta.peers.channel(node.id, &node.grpc) {
                Ok(channel) => {
                    let reply = ClusterClient::new(channel)
                        .max_decoding_message_size(MAX_MESSAGE_BYTES)
                        .change_voters(change)
                        .await;
                    match reply.map(|r| r.into_inner()) {
                        Ok(VoterReply { error, voters }) if error.is_empty() => {
                            return Ok(voters.into_iter().collect())
                        }
                        Ok(VoterReply { error, .. }) => error,
                        Err(status) => status.message().to_owned(),
                    }
                }
                Err(e) => e,
            },
            None => format!("group {} has no known leader", group.0),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(MetaError::Unreachable {
                node: format!("leader of group {}", group.0),
                message: error,
            }
            .into());
        }
        tracing::warn!(group = group.0, error = %error, "voter change failed; retrying");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Serves `ChangeVoters` at a group's leader.
pub async fn handle_change_voters(
    core: &Arc<NodeCore>,
    meta: &MetaGroup,
    change: VoterChange,
) -> Result<Vec<u64>, String> {
    let layout = meta.current();
    let add = (change.add != 0)
        .then(|| {
            layout
                .nodes
                .get(&change.add)
                .map(|n| (n.id, BasicNode::new(n.grpc.clone())))
                .ok_or_else(|| format!("node {} is not registered", change.add))
        })
        .transpose()?;
    let remove = (change.remove != 0).then_some(change.remove);
    let group = GroupId(change.group);
    if group == GroupId::META {
        return apply_change(&meta.raft, add, remove).await;
    }
    let shard = ShardId((group.0.saturating_sub(1)) as u32);
    let replica = core
        .fleet
        .view()
        .replicas
        .get(&shard)
        .cloned()
        .ok_or_else(|| "not leader".to_string())?;
    apply_change(replica.raft(), add, remove).await
}

async fn apply_change<C>(
    raft: &Raft<C>,
    add: Option<(u64, BasicNode)>,
    remove: Option<u64>,
) -> Result<Vec<u64>, String>
where
    C: RaftTypeConfig<
        NodeId = u64,
        Node = BasicNode,
        Responder = openraft::impls::OneshotResponder<C>,
    >,
{
    if raft.metrics().borrow().state != openraft::ServerState::Leader {
        return Err("not leader".into());
    }
    let mut voters: BTreeSet<u64> = raft
        .metrics()
        .borrow()
        .membership_config
        .membership()
        .voter_ids()
        .collect();
    let done = add.as_ref().is_none_or(|(id, _)| voters.contains(id))
        && remove.is_none_or(|id| !voters.contains(&id));
    if done {
        return Ok(voters.into_iter().collect());
    }
    if let Some((id, node)) = add {
        // Blocking: answers once the learner has caught up, so the voter change below does not
        // wait on a replica that is still far behind.
        raft.add_learner(id, node, true)
            .await
            .map_err(|e| format!("adding learner {id}: {e}"))?;
        voters.insert(id);
    }
    if let Some(id) = remove {
        voters.remove(&id);
    }
    raft.change_membership(voters.clone(), false)
        .await
        .map_err(|e| format!("changing voters to {voters:?}: {e}"))?;
    Ok(voters.into_iter().collect())
}
