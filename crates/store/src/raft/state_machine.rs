//! The state machine of a shard's Raft group: the shard's twins, changed only by the pure
//! `twin::apply` of committed batches. Each `apply` call writes the touched twins and the new
//! applied log id in one sled transaction, so a crash never applies an entry twice or half. Snapshots are Radar's own encoding of the whole shard.

use super::{flush, io_error, BatchOutcome, ShardRaft, StorageError};
use crate::format::encode_changes;
use crate::sled_store::SledShardStore;
use crate::{Batch, ShardStore};
use openraft::storage::RaftStateMachine;
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, RaftSnapshotBuilder, Snapshot, SnapshotMeta,
    StorageIOError, StoredMembership,
};
use radar_twin::{apply, PathDict, ShardState, Twin};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::io::Cursor;
use std::sync::{Arc, RwLock};

const APPLIED: &[u8] = b"applied";
const SNAPSHOT: &[u8] = b"snapshot";

type Membership = StoredMembership<u64, BasicNode>;

#[derive(Serialize, Deserialize, Default)]
struct Applied {
    last_applied: Option<LogId<u64>>,
    membership: Membership,
}

/// The snapshot body: the applied state and every twin with its path dictionary.
#[derive(Serialize, Deserialize)]
struct SnapshotBody {
    applied: Applied,
    templates: Vec<Box<str>>,
    twins: Vec<Twin>,
}

#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<u64, BasicNode>,
    data: Vec<u8>,
}

pub struct ShardStateMachine {
    store: Arc<SledShardStore>,
    sm: sled::Tree,
    /// Shared with readers (API, queries); written only here.
    pub state: Arc<RwLock<ShardState>>,
    applied: Applied,
    snapshots_built: u64,
}

impl ShardStateMachine {
    /// Opens group `group`'s state machine over the shard store (its twins).
    pub fn open(store: SledShardStore, group: u64) -> Result<Self, crate::StoreError> {
        let sm = store
            .db()
            .open_tree(format!("raft-{group}-sm"))
            .map_err(|e| crate::StoreError::Engine(e.to_string()))?;
        let applied = match sm
            .get(APPLIED)
            .map_err(|e| crate::StoreError::Engine(e.to_string()))?
        {
            Some(bytes) => {
                postcard::from_bytes(&bytes).map_err(|e| crate::StoreError::Corrupt {
                    key: "applied".into(),
                    message: e.to_string(),
                })?
            }
            None => Applied::default(),
        };
        let loaded = store.load()?;
        let mut state = ShardState {
            dict: PathDict::from_templates(loaded.templates),
            ..Default::default()
        };
        for twin in loaded.twins {
            state.twins.insert(twin.key.clone(), twin);
        }
        Ok(Self {
            store: Arc::new(store),
            sm,
            state: Arc::new(RwLock::new(state)),
            applied,
            snapshots_built: 0,
        })
    }

    fn write(
        &self,
        state: &mut ShardState,
        touched: &BTreeSet<radar_core::DeviceKey>,
        first_template: u32,
        replace_all: bool,
    ) -> Result<(), String> {
        let mut twins = Vec::new();
        for key in touched {
            if let Some(twin) = state.twins.get_mut(key) {
                let write = if replace_all {
                    crate::format::encode_full(twin)
                } else {
                    encode_changes(twin)
                };
                twins.push(write.map_err(|e| e.to_string())?);
            }
        }
        let new_templates = &state.dict.templates()[first_template as usize..];
        let batch = Batch {
            first_template_id: first_template,
            new_templates,
            twins,
            deleted: Vec::new(),
        };
        let applied = postcard::to_allocvec(&self.applied).map_err(|e| e.to_string())?;
        self.store
            .write_atomically(&batch, &self.sm, &[(APPLIED, applied)], replace_all)
            .map_err(|e| e.to_string())
    }
}

/// Builds a snapshot from the state as it was when the builder was made (already encoded, so
/// the live state is not held while the snapshot is stored).
pub struct SnapshotBuilder {
    body: Result<Vec<u8>, String>,
    applied: Applied,
    sm: sled::Tree,
    db: sled::Db,
    snapshot_id: String,
}

impl RaftSnapshotBuilder<ShardRaft> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<ShardRaft>, StorageError> {
        let fail = |e: String| io_error(|a| StorageIOError::write_snapshot(None, a), e);
        let body = self.body.clone().map_err(fail)?;
        let meta = SnapshotMeta {
            last_log_id: self.applied.last_applied,
            last_membership: self.applied.membership.clone(),
            snapshot_id: self.snapshot_id.clone(),
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: body.clone(),
        };
        let bytes = postcard::to_allocvec(&stored).map_err(|e| fail(e.to_string()))?;
        self.sm
            .insert(SNAPSHOT, bytes)
            .map_err(|e| fail(e.to_string()))?;
        flush(&self.db).await.map_err(fail)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(body)),
        })
    }
}

impl RaftStateMachine<ShardRaft> for ShardStateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId<u64>>, Membership), StorageError> {
        Ok((self.applied.last_applied, self.applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<BatchOutcome>, StorageError>
    where
        I: IntoIterator<Item = Entry<ShardRaft>> + Send,
        I::IntoIter: Send,
    {
        let mut outcomes = Vec::new();
        let mut touched = BTreeSet::new();
        let mut last = None;
        let result = {
            let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
            let first_template = state.dict.len() as u32;
            for entry in entries {
                last = Some(entry.log_id);
                self.applied.last_applied = Some(entry.log_id);
                let mut outcome = BatchOutcome::default();
                match entry.payload {
                    EntryPayload::Blank => {}
                    EntryPayload::Normal(batch) => {
                        for command in &batch.commands {
                            touched.insert(command.device().clone());
                            outcome.results.push(apply(&mut state, command));
                        }
                    }
                    EntryPayload::Membership(m) => {
                        self.applied.membership = StoredMembership::new(Some(entry.log_id), m);
                    }
                }
                outcomes.push(outcome);
            }
            self.write(&mut state, &touched, first_template, false)
        };
        let log_id = last.unwrap_or_default();
        // Not flushed here: the entries are already durable in the log, and the applied log id
        // is written in the same transaction as the twins, so after a crash openraft re-applies
        // exactly the entries whose effects were lost. The next log flush persists this too.
        result.map_err(|e| io_error(|a| StorageIOError::apply(log_id, a), e))?;
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        let applied = Applied {
            last_applied: self.applied.last_applied,
            membership: self.applied.membership.clone(),
        };
        let body = {
            let state = self.state.read().unwrap_or_else(|e| e.into_inner());
            let body = SnapshotBody {
                applied: Applied {
                    last_applied: applied.last_applied,
                    membership: applied.membership.clone(),
                },
                templates: state.dict.templates().to_vec(),
                twins: state.twins.values().cloned().collect(),
            };
            postcard::to_allocvec(&body).map_err(|e| e.to_string())
        };
        self.snapshots_built += 1;
        let last = applied.last_applied;
        SnapshotBuilder {
            body,
            snapshot_id: format!(
                "{}-{}-{}",
                last.map(|l| l.leader_id.term).unwrap_or(0),
                last.map(|l| l.index).unwrap_or(0),
                self.snapshots_built
            ),
            applied,
            sm: self.sm.clone(),
            db: self.store.db().clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let fail = |e: String| {
            io_error(
                |a| StorageIOError::write_snapshot(Some(meta.signature()), a),
                e,
            )
        };
        let data = snapshot.into_inner();
        let body: SnapshotBody = postcard::from_bytes(&data).map_err(|e| fail(e.to_string()))?;
        let mut state = ShardState {
            dict: PathDict::from_templates(body.templates),
            ..Default::default()
        };
        let touched: BTreeSet<_> = body.twins.iter().map(|t| t.key.clone()).collect();
        for twin in body.twins {
            state.twins.insert(twin.key.clone(), twin);
        }
        self.applied = Applied {
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
        };
        self.write(&mut state, &touched, 0, true).map_err(fail)?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        let bytes = postcard::to_allocvec(&stored).map_err(|e| fail(e.to_string()))?;
        self.sm
            .insert(SNAPSHOT, bytes)
            .map_err(|e| fail(e.to_string()))?;
        flush(self.store.db()).await.map_err(fail)?;
        *self.state.write().unwrap_or_else(|e| e.into_inner()) = state;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<ShardRaft>>, StorageError> {
        let fail = |e: String| io_error(|a| StorageIOError::read_snapshot(None, a), e);
        match self.sm.get(SNAPSHOT).map_err(|e| fail(e.to_string()))? {
            Some(bytes) => {
                let stored: StoredSnapshot =
                    postcard::from_bytes(&bytes).map_err(|e| fail(e.to_string()))?;
                Ok(Some(Snapshot {
                    meta: stored.meta,
                    snapshot: Box::new(Cursor::new(stored.data)),
                }))
            }
            None => Ok(None),
        }
    }
}
