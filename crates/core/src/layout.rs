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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Layout {
    /// 0 until the cluster is initialized; bumped by every change.
    pub version: u64,
    pub partitions: u32,
    pub replicas: u32,
    pub nodes: BTreeMap<u64, NodeInfo>,
    pub shards: Vec<ShardLayout>,
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
    },
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
            } => self.init(*partitions, *shards, *replicas),
        }
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
            })
            .collect();
        self.partitions = partitions;
        self.replicas = replicas;
        self.version += 1;
        Ok(())
    }

    /// The partition → shard ring of this version.
    pub fn ring(&self) -> Result<Ring, RingError> {
        let shards: Vec<ShardId> = self.shards.iter().map(|s| s.id).collect();
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
        let before = layout.clone();
        layout.apply(&init(3, 3)).unwrap();
        assert_eq!(layout, before, "a repeated init changes nothing");
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
}
