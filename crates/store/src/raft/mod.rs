//! A shard's Raft storage for openraft (0.9, storage v2) on sled: the log and the vote
//! ([`log_store`]) and the state machine ([`state_machine`]), whose state is the shard's twins,
//! changed only by the pure `twin::apply`. Snapshots are files of Radar's own format
//! ([`snapshot_file`]), in `raft-snapshots/` beside sled's files.
//!
//! sled trees per group `g`: `raft-g-log` (index → entry), `raft-g-meta` (vote, committed, last
//! purged), `raft-g-sm` (applied log id, membership, an install in progress, the audit records
//! under `audit/`) and the shard's own twin
//! trees (see [`crate::sled_store`]).

// openraft's traits fix the error type (`StorageError`, over 200 bytes); our helpers return it too.
#![allow(clippy::result_large_err)]

pub mod audit_log;
#[cfg(test)]
mod audit_tests;
pub mod log_store;
pub mod meta;
pub mod redb_log;
pub mod snapshot_file;
pub mod state_machine;
#[cfg(test)]
mod tests;

use radar_twin::{ApplyError, ApplyOutcome, TwinCommand};
use serde::{Deserialize, Serialize};

/// A Raft entry's payload: the commands of one group commit, or shard-level commands of a
/// partition move (`control`, applied after `commands`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwinBatch {
    pub commands: Vec<TwinCommand>,
    pub control: Vec<radar_twin::ShardControl>,
}

/// What applying a batch gave each command: the operation it created, or why it did not apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchOutcome {
    pub results: Vec<Result<ApplyOutcome, ApplyError>>,
}

openraft::declare_raft_types!(
    /// The type configuration of a shard's Raft group.
    pub ShardRaft:
        D = TwinBatch,
        R = BatchOutcome,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<ShardRaft>,
        SnapshotData = snapshot_file::SnapshotFile,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type StorageError = openraft::StorageError<u64>;

fn io_error(
    make: impl FnOnce(openraft::AnyError) -> openraft::StorageIOError<u64>,
    e: impl std::fmt::Display,
) -> StorageError {
    StorageError::IO {
        source: make(openraft::AnyError::error(e)),
    }
}

/// Makes everything written to sled so far durable, off the async runtime.
async fn flush(db: &sled::Db) -> Result<(), String> {
    let db = db.clone();
    tokio::task::spawn_blocking(move || db.flush().map(|_| ()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}
