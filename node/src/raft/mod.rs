//! Raft in the node: the tonic transport ([`network`], [`service`]) shared by every group the
//! node hosts, and the timing settings every group uses.
//!
//! Group ids: group 0 is the metadata group (the cluster layout); shard `s` is group `s + 1`.

pub mod codec;
pub mod network;
pub mod service;

use radar_core::ShardId;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(pub u64);

impl GroupId {
    pub const META: GroupId = GroupId(0);

    pub fn shard(shard: ShardId) -> Self {
        GroupId(u64::from(shard.0) + 1)
    }

    /// The shard this group replicates, or `None` for the metadata group.
    pub fn as_shard(self) -> Option<ShardId> {
        (self.0 > 0)
            .then(|| u32::try_from(self.0 - 1).ok().map(ShardId))
            .flatten()
    }
}

impl std::fmt::Display for GroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.as_shard() {
            Some(shard) => write!(f, "shard-{shard}"),
            None => f.write_str("meta"),
        }
    }
}

/// Raft timing, the same for every group of a node. openraft's guidance: the election timeout
/// is at least 10× a log append's latency (an fsync here, tens of milliseconds under load), and
/// the heartbeat interval is below half the election timeout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RaftSettings {
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub election_timeout_min: Duration,
    #[serde(with = "humantime_serde")]
    pub election_timeout_max: Duration,
    /// Log entries between snapshots; the log before a snapshot is purged.
    pub snapshot_every_entries: u64,
    /// Entries kept in the log after a snapshot, so a briefly lagging replica catches up from
    /// the log instead of a whole snapshot.
    pub keep_after_snapshot: u64,
    /// Most entries in one AppendEntries RPC.
    pub max_entries_per_append: u64,
    /// Snapshot chunk size: a snapshot streams to a replica in chunks of this size.
    pub snapshot_chunk_bytes: u64,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Where shard Raft logs live: `sled` (the default, in the twins' database) or `redb` (a
    /// separate `raft-log.redb` file). B8 in BENCHMARKS.md compares them.
    pub log_engine: LogEngine,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogEngine {
    #[default]
    Sled,
    Redb,
}

impl Default for RaftSettings {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_millis(200),
            election_timeout_min: Duration::from_millis(1000),
            election_timeout_max: Duration::from_millis(2000),
            snapshot_every_entries: 20_000,
            keep_after_snapshot: 2_000,
            max_entries_per_append: 64,
            snapshot_chunk_bytes: 4 * 1024 * 1024,
            connect_timeout: Duration::from_secs(2),
            log_engine: LogEngine::Sled,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid raft settings: {0}")]
pub struct SettingsError(String);

impl RaftSettings {
    /// The openraft configuration of one group (`name` shows in openraft's own logs).
    pub fn openraft_config(&self, name: &str) -> Result<openraft::Config, SettingsError> {
        let millis = |d: Duration| d.as_millis().max(1) as u64;
        if self.heartbeat_interval * 2 >= self.election_timeout_min {
            return Err(SettingsError(format!(
                "heartbeat_interval ({:?}) must be below half of election_timeout_min ({:?})",
                self.heartbeat_interval, self.election_timeout_min
            )));
        }
        let config = openraft::Config {
            cluster_name: name.to_owned(),
            heartbeat_interval: millis(self.heartbeat_interval),
            election_timeout_min: millis(self.election_timeout_min),
            election_timeout_max: millis(self.election_timeout_max),
            max_payload_entries: self.max_entries_per_append.max(1),
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(
                self.snapshot_every_entries.max(1),
            ),
            max_in_snapshot_log_to_keep: self.keep_after_snapshot,
            snapshot_max_chunk_size: self.snapshot_chunk_bytes.max(1024),
            ..Default::default()
        };
        config.validate().map_err(|e| SettingsError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids_separate_the_metadata_group_from_shards() {
        assert_eq!(GroupId::shard(ShardId(0)), GroupId(1));
        assert_eq!(GroupId(1).as_shard(), Some(ShardId(0)));
        assert_eq!(GroupId::META.as_shard(), None);
        assert_eq!(GroupId::shard(ShardId(7)).to_string(), "shard-7");
    }

    #[test]
    fn default_timing_follows_openraft_guidance() {
        let settings = RaftSettings::default();
        let config = settings.openraft_config("t").expect("defaults are valid");
        assert!(config.heartbeat_interval * 2 < config.election_timeout_min);
        let bad = RaftSettings {
            heartbeat_interval: Duration::from_millis(600),
            ..RaftSettings::default()
        };
        assert!(bad.openraft_config("t").is_err());
    }
}
