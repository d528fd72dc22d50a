//! The cluster layout: which nodes exist, which shards exist, which nodes are each shard's
//! voters, and the fixed partition count from which the ring is built. It is the state of the
//! metadata Raft group, changed only by [`Layout::apply`] of committed [`LayoutCommand`]s, and
//! every change bumps `version`.

use crate::partition::ShardId;
use crate::ring::{Ring, RingError, DEFAULT_VNODES};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A node's addresses, as it announces them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct NodeInfo {
    pub id: u64,
    /// Cluster gRPC (`host:port`): Raft, scatter-gather, admin.
    pub grpc: String,
    pub api: String,
    pub cwmp: String,
    pub usp: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardLayout {
    pub id: ShardId,
    /// Node ids of the shard's Raft voters.
    pub voters: Vec<u64>,
    /// False while a new shard receives its partitions (`add-shard`): it is not in the ring yet.
    pub serving: bool,
    /// Nodes catching up to replace a voter (`add-node`, `remove-node`): they host a replica
    /// that the shard's leader feeds as a Raft learner.
    pub learners: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Layout {
    /// 0 until the cluster is initialized; bumped by every change.
    pub version: u64,
    pub partitions: u32,
    pub replicas: u32,
    pub nodes: BTreeMap<u64, NodeInfo>,
    pub shards: Vec<ShardLayout>,
    /// The cluster's own API credential (issue 13): a node that proxies a request to another
    /// authenticates with it, naming the caller it already authenticated, instead of replaying
    /// the caller's token. Set once, at init; never shown, and blanked in what is sent to routers.
    pub cluster_secret: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LayoutCommand {
    /// A node announces itself (or new addresses). Known nodes with the same addresses are a
    /// no-op, so nodes announce on every start.
    RegisterNode(NodeInfo),
    /// Forms the cluster: `shards` shards of `replicas` voters each over the registered nodes.
    /// Repeating it with the same parameters is a no-op (`radar cluster init` is idempotent).
    Init {
        partitions: u32,
        shards: u32,
        replicas: u32,
        /// Made by the node that proposes the init; kept from the first init only.
        cluster_secret: String,
    },
    /// Adds a shard that does not serve yet: its voters open replicas and it receives the
    /// partitions the next ring gives it. While one is receiving, repeating this is a no-op.
    AddShard,
    /// The receiving shard has its partitions: it joins the ring (the partitions change owner
    /// at this version).
    ActivateShard(ShardId),
    /// `node` opens a replica of `shard` to catch up as a learner.
    AddLearner { shard: ShardId, node: u64 },
    /// The shard's Raft membership changed to `voters`; learners among them are voters now and
    /// the others stop hosting it.
    SetVoters { shard: ShardId, voters: Vec<u64> },
    /// A drained node leaves the cluster (refused while it still hosts a replica).
    RemoveNode(u64),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum LayoutError {
    #[error("the cluster is already initialized with {shards} shards × {replicas} replicas over {partitions} partitions")]
    AlreadyInitialized {
        partitions: u32,
        shards: u32,
        replicas: u32,
    },
    #[error(
        "{replicas} replicas need at least {replicas} registered nodes; {nodes} are registered"
    )]
    NotEnoughNodes { replicas: u32, nodes: u32 },
    #[error("invalid layout request: {0}")]
    Invalid(String),
    #[error("the cluster is not initialized")]
    NotInitialized,
}

impl Layout {
    pub fn is_initialized(&self) -> bool {
        !self.shards.is_empty()
    }

    /// Applies one committed command. An `Err` leaves the layout unchanged.
    pub fn apply(&mut self, command: &LayoutCommand) -> Result<(), LayoutError> {
        match command {
            LayoutCommand::RegisterNode(info) => {
                if self.nodes.get(&info.id) != Some(info) {
                    self.nodes.insert(info.id, info.clone());
                    self.version += 1;
                }
                Ok(())
            }
            LayoutCommand::Init {
                partitions,
                shards,
                replicas,
                cluster_secret,
            } => {
                let first = !self.is_initialized();
                self.init(*partitions, *shards, *replicas)?;
                if first {
                    self.cluster_secret = cluster_secret.clone();
                }
                Ok(())
            }
            LayoutCommand::AddShard => self.add_shard(),
            LayoutCommand::AddLearner { shard, node } => {
                if !self.nodes.contains_key(node) {
                    return Err(LayoutError::Invalid(format!("no node {node}")));
                }
                let shard = self.shard_mut(*shard)?;
                if !shard.voters.contains(node) && !shard.learners.contains(node) {
                    shard.learners.push(*node);
                    self.version += 1;
                }
                Ok(())
            }
            LayoutCommand::SetVoters { shard, voters } => {
                if voters.is_empty() || voters.iter().any(|v| !self.nodes.contains_key(v)) {
                    return Err(LayoutError::Invalid(format!(
                        "voters {voters:?} are not all registered nodes"
                    )));
                }
                let shard = self.shard_mut(*shard)?;
                if shard.voters != *voters || !shard.learners.is_empty() {
                    shard.voters = voters.clone();
                    shard.learners.clear();
                    self.version += 1;
                }
                Ok(())
            }
            LayoutCommand::RemoveNode(node) => {
                if self.hosted_by(*node).next().is_some() {
                    return Err(LayoutError::Invalid(format!(
                        "node {node} still hosts replicas; drain it first"
                    )));
                }
                if self.nodes.remove(node).is_some() {
                    self.version += 1;
                }
                Ok(())
            }
            LayoutCommand::ActivateShard(id) => {
                let shard = self.shard_mut(*id)?;
                if !shard.serving {
                    shard.serving = true;
                    self.version += 1;
                }
                Ok(())
            }
        }
    }

    fn shard_mut(&mut self, id: ShardId) -> Result<&mut ShardLayout, LayoutError> {
        self.shards
            .iter_mut()
            .find(|s| s.id == id)
            .ok_or_else(|| LayoutError::Invalid(format!("no shard {id}")))
    }

    /// The shards `node` hosts a replica of: as a voter or as a learner.
    pub fn hosted_by(&self, node: u64) -> impl Iterator<Item = &ShardLayout> {
        self.shards
            .iter()
            .filter(move |s| s.voters.contains(&node) || s.learners.contains(&node))
    }

    /// Replicas per registered node (voters and learners).
    pub fn replica_counts(&self) -> BTreeMap<u64, usize> {
        self.nodes
            .keys()
            .map(|n| (*n, self.hosted_by(*n).count()))
            .collect()
    }

    fn add_shard(&mut self) -> Result<(), LayoutError> {
        if !self.is_initialized() {
            return Err(LayoutError::NotInitialized);
        }
        if self.receiving().is_some() {
            return Ok(());
        }
        if self.shards.len() as u32 >= self.partitions {
            return Err(LayoutError::Invalid(format!(
                "{} partitions cannot take another shard",
                self.partitions
            )));
        }
        if (self.nodes.len() as u32) < self.replicas {
            return Err(LayoutError::NotEnoughNodes {
                replicas: self.replicas,
                nodes: self.nodes.len() as u32,
            });
        }
        // The voters are the nodes hosting the fewest replicas (lowest id first on a tie), so
        // replicas stay spread as shards are added.
        let mut nodes: Vec<(usize, u64)> = self
            .nodes
            .keys()
            .map(|n| (self.hosted_by(*n).count(), *n))
            .collect();
        nodes.sort();
        let id = ShardId(self.shards.iter().map(|s| s.id.0 + 1).max().unwrap_or(0));
        self.shards.push(ShardLayout {
            id,
            voters: nodes
                .iter()
                .take(self.replicas as usize)
                .map(|(_, n)| *n)
                .collect(),
            serving: false,
            learners: Vec::new(),
        });
        self.version += 1;
        Ok(())
    }

    /// The shard receiving partitions, if an `add-shard` is under way.
    pub fn receiving(&self) -> Option<&ShardLayout> {
        self.shards.iter().find(|s| !s.serving)
    }

    /// The ring once the receiving shard serves (the ring itself when none is receiving).
    pub fn target_ring(&self) -> Result<Ring, RingError> {
        let shards: Vec<ShardId> = self.shards.iter().map(|s| s.id).collect();
        Ring::new(self.partitions, &shards, DEFAULT_VNODES)
    }

    fn init(&mut self, partitions: u32, shards: u32, replicas: u32) -> Result<(), LayoutError> {
        if self.is_initialized() {
            let same = self.partitions == partitions
                && self.shards.len() as u32 == shards
                && self.replicas == replicas;
            return if same {
                Ok(())
            } else {
                Err(LayoutError::AlreadyInitialized {
                    partitions: self.partitions,
                    shards: self.shards.len() as u32,
                    replicas: self.replicas,
                })
            };
        }
        if partitions == 0 || shards == 0 || replicas == 0 {
            return Err(LayoutError::Invalid(
                "partitions, shards and replicas must be positive".into(),
            ));
        }
        if shards > partitions {
            return Err(LayoutError::Invalid(format!(
                "{shards} shards cannot share {partitions} partitions"
            )));
        }
        let nodes: Vec<u64> = self.nodes.keys().copied().collect();
        if (nodes.len() as u32) < replicas {
            return Err(LayoutError::NotEnoughNodes {
                replicas,
                nodes: nodes.len() as u32,
            });
        }
        // Round-robin placement: shard i starts at node i, so leaders-to-be and replicas spread
        // evenly over the nodes.
        self.shards = (0..shards)
            .map(|i| ShardLayout {
                id: ShardId(i),
                voters: (0..replicas as usize)
                    .map(|r| nodes[(i as usize + r) % nodes.len()])
                    .collect(),
                serving: true,
                learners: Vec::new(),
            })
            .collect();
        self.partitions = partitions;
        self.replicas = replicas;
        self.version += 1;
        Ok(())
    }

    /// The partition → shard ring of this version (serving shards only).
    pub fn ring(&self) -> Result<Ring, RingError> {
        let shards: Vec<ShardId> = self
            .shards
            .iter()
            .filter(|s| s.serving)
            .map(|s| s.id)
            .collect();
        Ring::new(self.partitions, &shards, DEFAULT_VNODES)
    }

    pub fn shard(&self, id: ShardId) -> Option<&ShardLayout> {
        self.shards.iter().find(|s| s.id == id)
    }

    /// The shards node `node` is a voter of.
    pub fn shards_of(&self, node: u64) -> impl Iterator<Item = &ShardLayout> {
        self.shards.iter().filter(move |s| s.voters.contains(&node))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u64) -> LayoutCommand {
        LayoutCommand::RegisterNode(NodeInfo {
            id,
            grpc: format!("127.0.0.1:{}", 7560 + id),
            ..Default::default()
        })
    }

    fn init(shards: u32, replicas: u32) -> LayoutCommand {
        LayoutCommand::Init {
            partitions: 4096,
            shards,
            replicas,
            cluster_secret: format!("secret-{shards}-{replicas}"),
        }
    }

    #[test]
    fn init_places_each_shards_replicas_on_distinct_nodes_round_robin() {
        let mut layout = Layout::default();
        for id in [1, 2, 3] {
            layout.apply(&node(id)).unwrap();
        }
        let registered = layout.version;
        layout.apply(&init(3, 3)).unwrap();
        assert_eq!(layout.version, registered + 1);
        assert_eq!(layout.shards[0].voters, vec![1, 2, 3]);
        assert_eq!(layout.shards[1].voters, vec![2, 3, 1]);
        assert_eq!(layout.shards[2].voters, vec![3, 1, 2]);
        assert_eq!(layout.shards_of(2).count(), 3);
        let ring = layout.ring().unwrap();
        assert_eq!(ring.shards().len(), 3);
    }

    #[test]
    fn init_is_idempotent_and_refuses_a_different_shape() {
        let mut layout = Layout::default();
        for id in [1, 2, 3] {
            layout.apply(&node(id)).unwrap();
        }
        layout.apply(&init(3, 3)).unwrap();
        assert_eq!(layout.cluster_secret, "secret-3-3");
        let before = layout.clone();
        layout.apply(&init(3, 3)).unwrap();
        assert_eq!(layout, before, "a repeated init changes nothing");
        // Another node repeats the init with a secret of its own: the first one stays.
        layout
            .apply(&LayoutCommand::Init {
                partitions: 4096,
                shards: 3,
                replicas: 3,
                cluster_secret: "another".into(),
            })
            .unwrap();
        assert_eq!(layout, before, "the cluster secret is set once");
        assert!(matches!(
            layout.apply(&init(4, 3)),
            Err(LayoutError::AlreadyInitialized { shards: 3, .. })
        ));
        assert_eq!(layout, before);
    }

    #[test]
    fn init_needs_as_many_nodes_as_replicas() {
        let mut layout = Layout::default();
        layout.apply(&node(1)).unwrap();
        assert_eq!(
            layout.apply(&init(2, 3)),
            Err(LayoutError::NotEnoughNodes {
                replicas: 3,
                nodes: 1
            })
        );
        assert!(!layout.is_initialized());
    }

    #[test]
    fn re_registering_the_same_addresses_does_not_bump_the_version() {
        let mut layout = Layout::default();
        layout.apply(&node(1)).unwrap();
        let v = layout.version;
        layout.apply(&node(1)).unwrap();
        assert_eq!(layout.version, v);
    }

    #[test]
    fn an_added_shard_receives_before_it_serves_and_only_gains_partitions() {
        let mut layout = Layout::default();
        for id in [1, 2, 3, 4] {
            layout.apply(&node(id)).unwrap();
        }
        layout.apply(&init(3, 2)).unwrap();
        let before = layout.ring().unwrap();
        let v = layout.version;
        layout.apply(&LayoutCommand::AddShard).unwrap();
        assert_eq!(layout.version, v + 1);
        let added = layout.receiving().unwrap().clone();
        assert_eq!(added.id, ShardId(3));
        // Node 4 hosted nothing, so it is a voter of the new shard.
        assert!(added.voters.contains(&4));
        assert_eq!(added.voters.len(), 2);
        // Receiving: the ring is unchanged; repeating is a no-op.
        assert_eq!(layout.ring().unwrap(), before);
        layout.apply(&LayoutCommand::AddShard).unwrap();
        assert_eq!(layout.version, v + 1);
        let target = layout.target_ring().unwrap();
        let moves = before.moves_to(&target);
        assert!(!moves.is_empty());
        assert!(moves.iter().all(|(_, _, to)| *to == ShardId(3)));
        layout
            .apply(&LayoutCommand::ActivateShard(ShardId(3)))
            .unwrap();
        assert_eq!(layout.version, v + 2);
        assert_eq!(layout.ring().unwrap(), target);
        assert!(layout.receiving().is_none());
    }

    #[test]
    fn a_voter_is_replaced_through_a_learner_and_a_drained_node_leaves() {
        let mut layout = Layout::default();
        for id in [1, 2, 3] {
            layout.apply(&node(id)).unwrap();
        }
        layout.apply(&init(2, 3)).unwrap();
        layout.apply(&node(4)).unwrap();
        assert_eq!(layout.hosted_by(4).count(), 0);
        let refused = layout.apply(&LayoutCommand::RemoveNode(1));
        assert!(refused.is_err(), "node 1 hosts replicas");
        let shard = ShardId(0);
        layout
            .apply(&LayoutCommand::AddLearner { shard, node: 4 })
            .unwrap();
        assert_eq!(layout.hosted_by(4).count(), 1);
        assert_eq!(layout.shards_of(4).count(), 0, "a learner is not a voter");
        let voters: Vec<u64> = layout.shards[0]
            .voters
            .iter()
            .map(|v| if *v == 1 { 4 } else { *v })
            .collect();
        layout
            .apply(&LayoutCommand::SetVoters {
                shard,
                voters: voters.clone(),
            })
            .unwrap();
        assert_eq!(layout.shards[0].voters, voters);
        assert!(layout.shards[0].learners.is_empty());
        assert_eq!(layout.replica_counts()[&4], 1);
        // Node 1 is still a voter of shard 1.
        assert!(layout.apply(&LayoutCommand::RemoveNode(1)).is_err());
        let voters: Vec<u64> = layout.shards[1]
            .voters
            .iter()
            .map(|v| if *v == 1 { 4 } else { *v })
            .collect();
        layout
            .apply(&LayoutCommand::SetVoters {
                shard: ShardId(1),
                voters,
            })
            .unwrap();
        let v = layout.version;
        layout.apply(&LayoutCommand::RemoveNode(1)).unwrap();
        assert_eq!(layout.version, v + 1);
        assert!(!layout.nodes.contains_key(&1));
    }
}
