//! Twin commands for a shard this node does not lead go to the node that does, over gRPC
//! (`ProposeTwin`). The leader this node knows is tried first, then the shard's other voters;
//! a `NotLeader` answer naming the leader is followed once. Forwarding is never chained: the
//! receiving node only applies commands for shards it leads.

use super::meta::MetaGroup;
use crate::raft::network::MAX_MESSAGE_BYTES;
use crate::shard::ProposeError;
use radar_core::ShardId;
use radar_proto::cluster::cluster_client::ClusterClient;
use radar_proto::cluster::TwinProposal;
use radar_twin::{ApplyOutcome, TwinCommand};

pub async fn propose_remote(
    meta: &MetaGroup,
    shard: ShardId,
    leader_hint: Option<u64>,
    command: &TwinCommand,
) -> Result<ApplyOutcome, ProposeError> {
    let layout = meta.current();
    let voters = layout
        .shard(shard)
        .map(|s| s.voters.clone())
        .unwrap_or_default();
    let mut candidates: Vec<u64> = leader_hint.into_iter().collect();
    candidates.extend(voters.iter().filter(|v| Some(**v) != leader_hint));
    candidates.retain(|c| *c != meta.info.id);
    let body = postcard::to_allocvec(command).map_err(|e| ProposeError::Storage(e.to_string()))?;
    let mut last = ProposeError::NotLeader {
        leader: None,
        leader_addr: None,
    };
    let mut tried = Vec::new();
    let mut queue = candidates;
    while let Some(node) = (!queue.is_empty()).then(|| queue.remove(0)) {
        if tried.contains(&node) {
            continue;
        }
        tried.push(node);
        let Some(info) = layout.nodes.get(&node) else {
            continue;
        };
        let Ok(channel) = meta.peers.channel(node, &info.grpc) else {
            continue;
        };
        let reply = ClusterClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
            .propose_twin(TwinProposal {
                shard: shard.0,
                command: body.clone(),
            })
            .await;
        let outcome: Result<ApplyOutcome, ProposeError> = match reply {
            Ok(reply) => postcard::from_bytes(&reply.into_inner().outcome)
                .map_err(|e| ProposeError::Storage(format!("undecodable answer: {e}")))?,
            Err(status) => {
                last = ProposeError::Storage(format!("node {node}: {}", status.message()));
                continue;
            }
        };
        match outcome {
            Err(ProposeError::NotLeader {
                leader: Some(leader),
                ..
            }) if !tried.contains(&leader) => {
                queue.insert(0, leader);
            }
            Err(e @ ProposeError::NotLeader { .. }) => last = e,
            other => return other,
        }
    }
    Err(last)
}
