//! Partitions → shards: a static consistent-hash ring per layout version, built with the
//! `consistent_hash` crate (the product card's choice), so adding a shard moves about 1/N of the
//! partitions — all of them to the new shard — and nothing else.
//!
//! The ring's hash is xxh3 with a fixed seed over explicit little-endian bytes, never `std`'s
//! `RandomState` or a `Hash` impl whose bytes could change between Rust releases: a ring that
//! changed between builds would re-home devices. A golden-vector test pins it.

use crate::partition::{PartitionId, ShardId};
use consistent_hash::{Node, RingHash, StaticHashRing};
use std::hash::{Hash, Hasher};

const RING_SEED: u64 = 0x5241_4441_5252; // "RADARR"

/// Virtual nodes per shard: enough for an even spread over a few thousand partitions.
pub const DEFAULT_VNODES: usize = 128;

/// A `Hasher` that only takes what the ring feeds it (u32 partition ids, u32 shard ids and u64
/// virtual-node numbers) as little-endian bytes into xxh3.
struct RingHasher(xxhash_rust::xxh3::Xxh3);

impl Hasher for RingHasher {
    fn finish(&self) -> u64 {
        self.0.digest()
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn write_u32(&mut self, v: u32) {
        self.0.update(&v.to_le_bytes());
    }
    fn write_u64(&mut self, v: u64) {
        self.0.update(&v.to_le_bytes());
    }
    fn write_usize(&mut self, v: usize) {
        self.0.update(&(v as u64).to_le_bytes());
    }
}

struct FixedHash;

impl RingHash for FixedHash {
    fn hash_item<T: Hash>(&self, item: &T) -> u64 {
        let mut h = RingHasher(xxhash_rust::xxh3::Xxh3::with_seed(RING_SEED));
        item.hash(&mut h);
        h.finish()
    }

    fn hash_vnode<K: Hash>(&self, node_key: &K, vnode_seq: usize) -> u64 {
        let mut h = RingHasher(xxhash_rust::xxh3::Xxh3::with_seed(RING_SEED ^ 0xFFFF));
        node_key.hash(&mut h);
        h.write_u64(vnode_seq as u64);
        h.finish()
    }
}

/// The partition → shard table of one layout version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ring {
    shards: Vec<ShardId>,
    owner: Vec<ShardId>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RingError {
    #[error("a ring needs at least one shard")]
    NoShards,
    #[error("a ring needs at least one partition")]
    NoPartitions,
}

impl Ring {
    /// Builds the ring for `shards` and resolves every partition once, so lookups are an index.
    pub fn new(partitions: u32, shards: &[ShardId], vnodes: usize) -> Result<Self, RingError> {
        if shards.is_empty() {
            return Err(RingError::NoShards);
        }
        if partitions == 0 {
            return Err(RingError::NoPartitions);
        }
        let nodes = shards
            .iter()
            .map(|s| Node::new(s.0).quantity(vnodes.max(1)));
        let ring = StaticHashRing::new(FixedHash, nodes);
        let owner = (0..partitions)
            .map(|p| {
                let node = ring
                    .calc_candidates(&p)
                    .next()
                    .expect("a ring with shards has a candidate");
                ShardId(node.key)
            })
            .collect();
        let mut shards = shards.to_vec();
        shards.sort();
        shards.dedup();
        Ok(Self { shards, owner })
    }

    pub fn partitions(&self) -> u32 {
        self.owner.len() as u32
    }

    pub fn shards(&self) -> &[ShardId] {
        &self.shards
    }

    pub fn shard_of(&self, partition: PartitionId) -> ShardId {
        self.owner[partition.0 as usize % self.owner.len()]
    }

    /// The shard of a device key.
    pub fn shard_for_key(&self, key: &str) -> ShardId {
        self.shard_of(crate::partition_of(key, self.partitions()))
    }

    /// Partitions whose shard differs in `next`, with their old and new shard: what a layout
    /// change has to move.
    pub fn moves_to(&self, next: &Ring) -> Vec<(PartitionId, ShardId, ShardId)> {
        self.owner
            .iter()
            .zip(&next.owner)
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .map(|(p, (a, b))| (PartitionId(p as u32), *a, *b))
            .collect()
    }

    /// Partitions per shard.
    pub fn load(&self) -> Vec<(ShardId, u32)> {
        self.shards
            .iter()
            .map(|s| (*s, self.owner.iter().filter(|o| *o == s).count() as u32))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shards(n: u32) -> Vec<ShardId> {
        (0..n).map(ShardId).collect()
    }

    /// Golden vectors: if these change, a new build would re-home devices.
    #[test]
    fn ring_is_stable_across_builds() {
        let ring = Ring::new(4096, &shards(3), DEFAULT_VNODES).unwrap();
        let golden: Vec<u32> = [0u32, 1, 1744, 2285, 4095]
            .iter()
            .map(|p| ring.shard_of(PartitionId(*p)).0)
            .collect();
        assert_eq!(golden, GOLDEN_3_SHARDS, "partitions 0, 1, 1744, 2285, 4095");
        assert_eq!(
            ring.shard_for_key("os::00147F-CP0644JTHJ4"),
            ring.shard_of(PartitionId(1744))
        );
    }

    const GOLDEN_3_SHARDS: [u32; 5] = [1, 2, 2, 0, 2];

    #[test]
    fn partitions_spread_evenly() {
        let ring = Ring::new(4096, &shards(4), DEFAULT_VNODES).unwrap();
        for (shard, count) in ring.load() {
            assert!(
                (700..=1400).contains(&count),
                "shard {shard} has {count} of 4096 partitions"
            );
        }
    }

    #[test]
    fn adding_a_shard_moves_about_one_nth_and_only_to_it() {
        let before = Ring::new(4096, &shards(3), DEFAULT_VNODES).unwrap();
        let after = Ring::new(4096, &shards(4), DEFAULT_VNODES).unwrap();
        let moves = before.moves_to(&after);
        assert!(
            (700..=1400).contains(&moves.len()),
            "{} partitions moved",
            moves.len()
        );
        assert!(moves.iter().all(|(_, _, to)| *to == ShardId(3)));
        // Rebuilding the same layout moves nothing; the order shards are given in is irrelevant.
        let again = Ring::new(4096, &[ShardId(2), ShardId(0), ShardId(1)], DEFAULT_VNODES).unwrap();
        assert!(before.moves_to(&again).is_empty());
        assert_eq!(Ring::new(4096, &[], 8), Err(RingError::NoShards));
    }
}
