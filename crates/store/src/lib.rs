//! Durable storage of shard state. sled is named only here, behind [`ShardStore`], so another
//! engine can replace it (openraft and Garage both left sled over its disk-space behaviour).
//!
//! Modules:
//! - [`sled_store`]: the sled implementation: one database per node, two trees per shard
//!   (`twins`: device key → postcard twin; `paths`: template id → template).

pub mod sled_store;

use radar_core::DeviceKey;
use radar_twin::Twin;

pub use sled_store::{SledDatabase, SledShardStore};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage engine error: {0}")]
    Engine(String),
    #[error("corrupt record for {key}: {message}")]
    Corrupt { key: String, message: String },
}

/// Everything one shard persisted.
#[derive(Debug, Default)]
pub struct LoadedShard {
    pub templates: Vec<Box<str>>,
    pub twins: Vec<Twin>,
}

/// One group commit: dictionary growth plus the twins it touched, already encoded (so the
/// caller can encode under its lock and write outside it, without cloning twins).
#[derive(Debug, Default)]
pub struct Batch<'a> {
    /// Templates with ids `first_template_id..`, appended in id order.
    pub first_template_id: u32,
    pub new_templates: &'a [Box<str>],
    pub twins: Vec<EncodedTwin>,
    pub deleted: Vec<DeviceKey>,
}

/// A twin in its storage encoding.
#[derive(Debug)]
pub struct EncodedTwin {
    pub key: DeviceKey,
    pub bytes: Vec<u8>,
}

/// Encodes a twin for storage (postcard: compact, varint integers, no field names).
pub fn encode_twin(twin: &Twin) -> Result<EncodedTwin, StoreError> {
    let bytes = postcard::to_allocvec(twin).map_err(|e| StoreError::Corrupt {
        key: twin.key.to_string(),
        message: e.to_string(),
    })?;
    Ok(EncodedTwin {
        key: twin.key.clone(),
        bytes,
    })
}

/// The storage of one shard.
pub trait ShardStore: Send + Sync + 'static {
    fn load(&self) -> Result<LoadedShard, StoreError>;
    /// Writes a batch; it is durable only once [`ShardStore::flush`] returns.
    fn write(&self, batch: &Batch<'_>) -> Result<(), StoreError>;
    /// Makes every write so far durable (fsync).
    fn flush(&self) -> Result<(), StoreError>;
    /// Bytes on disk of the whole database, for space-amplification measurements.
    fn size_on_disk(&self) -> Result<u64, StoreError>;
}
