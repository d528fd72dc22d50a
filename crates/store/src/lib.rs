//! Durable storage of shard state. sled is named only here, behind [`ShardStore`], so another
//! engine can replace it (openraft and Garage both left sled over its disk-space behaviour).
//!
//! Modules:
//! - [`cold`]: reading twins back from disk, for the twin cache and streaming scans.
//! - [`format`]: the storage encoding: a twin is one header record (meta, operations, event
//!   log) plus one record per parameter, so a periodic inform rewrites a few small records,
//!   not the whole twin.
//! - [`raft`]: openraft log, vote and state machine storage for a shard's Raft group.
//! - [`sled_store`]: the sled implementation: one database per node, three trees per shard
//!   (`twins`, `params`, `paths`).

#[cfg(test)]
mod cache_tests;
pub mod cold;
pub mod format;
pub mod raft;
pub mod sled_store;

use radar_core::DeviceKey;

pub use format::{encode_changes, encode_full, TwinWrite};
pub use sled_store::{SledDatabase, SledShardStore, DEFAULT_CACHE_BYTES};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage engine error: {0}")]
    Engine(String),
    #[error("corrupt record for {key}: {message}")]
    Corrupt { key: String, message: String },
    /// The data directory was written by a Radar whose encoding this one cannot read.
    #[error("the data directory holds storage format {found}; this Radar reads format {expected} and cannot migrate it (use the Radar version that wrote it, or an empty data directory)")]
    Format { found: u32, expected: u32 },
}

/// What a shard keeps in memory from its storage at open: its path dictionary and the keys of
/// its twins (the twins themselves stay on disk until used).
#[derive(Debug, Default)]
pub struct LoadedShard {
    pub templates: Vec<Box<str>>,
    pub keys: Vec<DeviceKey>,
}

/// One group commit: dictionary growth plus the changes of the twins it touched, already
/// encoded (the caller encodes under its lock and writes outside it).
#[derive(Debug, Default)]
pub struct Batch<'a> {
    /// Templates with ids `first_template_id..`, appended in id order.
    pub first_template_id: u32,
    pub new_templates: &'a [Box<str>],
    pub twins: Vec<TwinWrite>,
    pub deleted: Vec<DeviceKey>,
}

/// The storage of one shard.
pub trait ShardStore: Send + Sync + 'static {
    /// The dictionary and the twins' keys (not the twins).
    fn load_keys(&self) -> Result<LoadedShard, StoreError>;
    /// Writes a batch; it is durable only once [`ShardStore::flush`] returns.
    fn write(&self, batch: &Batch<'_>) -> Result<(), StoreError>;
    /// Makes every write so far durable (fsync).
    fn flush(&self) -> Result<(), StoreError>;
    /// Bytes on disk of the whole database, for space-amplification measurements.
    fn size_on_disk(&self) -> Result<u64, StoreError>;
}
