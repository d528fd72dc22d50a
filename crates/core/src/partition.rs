//! Device key → partition. The hash is xxh3 with a fixed seed over the raw key bytes, never
//! `std`'s `RandomState`: a hash that changed between builds would re-home every device.

use serde::{Deserialize, Serialize};

const PARTITION_SEED: u64 = 0x5241_4441_5231; // "RADAR1"

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PartitionId(pub u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ShardId(pub u32);

impl std::fmt::Display for ShardId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

pub fn partition_of(key: &str, partitions: u32) -> PartitionId {
    assert!(
        partitions > 0,
        "partition count is fixed at cluster creation and never zero"
    );
    let hash = xxhash_rust::xxh3::xxh3_64_with_seed(key.as_bytes(), PARTITION_SEED);
    PartitionId((hash % u64::from(partitions)) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden vectors: if these change, every stored device moves partition.
    #[test]
    fn partition_hash_is_stable_across_builds() {
        assert_eq!(
            partition_of("os::00147F-CP0644JTHJ4", 4096),
            PartitionId(GOLDEN_A)
        );
        assert_eq!(
            partition_of("os::E48D8C-XXXXXXXXXXXX", 4096),
            PartitionId(GOLDEN_B)
        );
    }

    const GOLDEN_A: u32 = 1744;
    const GOLDEN_B: u32 = 2285;

    #[test]
    fn partitions_spread_over_the_range() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..10_000 {
            let p = partition_of(&format!("os::000000-SN{i}"), 64);
            assert!(p.0 < 64);
            seen.insert(p);
        }
        assert_eq!(seen.len(), 64);
    }
}
