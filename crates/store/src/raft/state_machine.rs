//! The state machine of a shard's Raft group: the shard's twins, changed only by the pure
//! `twin::apply` of committed batches.
//!
//! Applied entries change the twins in memory at once; their storage is checkpointed: every
//! [`CHECKPOINT_ENTRIES`] entries or [`CHECKPOINT_INTERVAL`], and before every snapshot, the
//! twins touched since the last checkpoint and the applied log id are written in one sled
//! transaction. The log already holds every committed entry durably, so after a crash openraft
//! re-applies exactly the entries after the last checkpoint (their effects were never written),
//! and a twin a busy device changes many times between checkpoints is written once. The log is
//! purged only up to a snapshot, and a snapshot is taken only after a checkpoint, so the
//! entries a restart needs are always there. Snapshots are Radar's own encoding of the whole
//! shard.
//!
//! Twins need not be resident (see `radar_twin::table`): the shard's keys are read at open and
//! each twin is read from this state machine's own trees when a command first needs it. After
//! each checkpoint, when disk holds every twin as memory does, twins are evicted while the
//! node's resident twins exceed its memory budget; a budget overrun also makes a checkpoint
//! due. USP agents that are connected stay resident. Snapshots are encoded from the twins as a
//! scan over disk yields them, not from a copy of the state.

use super::{flush, io_error, BatchOutcome, ShardRaft, StorageError};
use crate::format::encode_changes;
use crate::sled_store::SledShardStore;
use crate::{Batch, ShardStore};
use openraft::storage::RaftStateMachine;
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, RaftSnapshotBuilder, Snapshot, SnapshotMeta,
    StorageIOError, StoredMembership,
};
use radar_twin::table::{ColdTwins, MemoryBudget, TwinTable};
use radar_twin::{apply, ApplyError, PathDict, ShardState, Twin};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::io::Cursor;
use std::sync::{Arc, RwLock};

const APPLIED: &[u8] = b"applied";

/// Entries applied between two checkpoints, at most.
pub const CHECKPOINT_ENTRIES: u64 = 512;
/// Time between two checkpoints, at most (checked when entries are applied).
pub const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);
const SNAPSHOT: &[u8] = b"snapshot";

type Membership = StoredMembership<u64, BasicNode>;

#[derive(Serialize, Deserialize, Default)]
struct Applied {
    last_applied: Option<LogId<u64>>,
    membership: Membership,
    /// Partitions being handed over; stored with the applied id, since twins are.
    frozen: radar_twin::moving::Frozen,
}

/// The snapshot body, postcard-encoded in this order: the applied state, the path dictionary's
/// templates, the number of twins, then each twin (the encoding of a struct of these fields
/// with `twins: Vec<Twin>`, written and read one twin at a time).
#[derive(Serialize, Deserialize)]
struct SnapshotHead {
    applied: Applied,
    templates: Vec<Box<str>>,
}

#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<u64, BasicNode>,
    data: Vec<u8>,
}

pub struct ShardStateMachine {
    store: Arc<SledShardStore>,
    budget: Arc<MemoryBudget>,
    sm: sled::Tree,
    /// Shared with readers (API, queries); written only here.
    pub state: Arc<RwLock<ShardState>>,
    applied: Applied,
    snapshots_built: u64,
    /// Twins changed in memory since the last checkpoint.
    dirty: BTreeSet<radar_core::DeviceKey>,
    /// The first path template not yet written.
    first_unwritten_template: u32,
    entries_since_checkpoint: u64,
    last_checkpoint: std::time::Instant,
    /// The node's resident bytes when eviction last could not get under the budget (every
    /// resident twin in use or pinned): budget pressure makes a checkpoint due again only once
    /// memory has grown past this, so pinned twins do not cost a checkpoint per entry.
    evict_stuck_at: Option<u64>,
}

impl ShardStateMachine {
    /// Opens group `group`'s state machine over the shard store (its twins).
    pub fn open(
        store: SledShardStore,
        group: u64,
        budget: Arc<MemoryBudget>,
    ) -> Result<Self, crate::StoreError> {
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
        let loaded = store.load_keys()?;
        let store = Arc::new(store);
        let state = ShardState {
            dict: PathDict::from_templates(loaded.templates),
            frozen: applied.frozen.clone(),
            twins: cold_table(&store, loaded.keys, &budget),
            ..Default::default()
        };
        let first_unwritten_template = state.dict.len() as u32;
        Ok(Self {
            store,
            budget,
            sm,
            state: Arc::new(RwLock::new(state)),
            applied,
            snapshots_built: 0,
            dirty: BTreeSet::new(),
            first_unwritten_template,
            entries_since_checkpoint: 0,
            last_checkpoint: std::time::Instant::now(),
            evict_stuck_at: None,
        })
    }

    /// Writes the twins changed since the last checkpoint and the applied log id, atomically;
    /// then, with disk holding every twin, evicts while the node is over its memory budget.
    fn checkpoint(&mut self, state: &mut ShardState) -> Result<(), String> {
        let dirty = std::mem::take(&mut self.dirty);
        self.write(state, &dirty, self.first_unwritten_template)?;
        self.first_unwritten_template = state.dict.len() as u32;
        self.entries_since_checkpoint = 0;
        self.last_checkpoint = std::time::Instant::now();
        let budget = &self.budget;
        state
            .twins
            .evict(|| budget.is_exceeded(), |twin| !twin.meta.connected);
        self.evict_stuck_at = budget.is_exceeded().then(|| budget.stats.bytes());
        Ok(())
    }

    /// Whether the node's memory is over budget in a way a checkpoint (and the eviction after
    /// it) can help: not while it is still what eviction could not free last time.
    fn over_budget(&self) -> bool {
        if !self.budget.is_exceeded() {
            return false;
        }
        match self.evict_stuck_at {
            None => true,
            // Grown by 1/32 of the budget, or the stuck twins have had time to go idle.
            Some(stuck) => {
                self.budget.stats.bytes() > stuck.saturating_add(self.budget.limit / 32)
                    || self.last_checkpoint.elapsed() >= std::time::Duration::from_secs(1)
            }
        }
    }

    fn write(
        &self,
        state: &mut ShardState,
        touched: &BTreeSet<radar_core::DeviceKey>,
        first_template: u32,
    ) -> Result<(), String> {
        let mut twins = Vec::new();
        let mut deleted = Vec::new();
        for key in touched {
            // Changed twins are resident: eviction happens only after they are written.
            let exists = state.twins.contains_key(key);
            match state.twins.get_resident_mut(key) {
                Some(twin) => {
                    twins.push(encode_changes(twin).map_err(|e| e.to_string())?);
                }
                None if !exists => deleted.push(key.clone()),
                None => {
                    return Err(format!("twin {key} changed but is not resident"));
                }
            }
        }
        let new_templates = &state.dict.templates()[first_template as usize..];
        let batch = Batch {
            first_template_id: first_template,
            new_templates,
            twins,
            deleted,
        };
        let applied = postcard::to_allocvec(&self.applied).map_err(|e| e.to_string())?;
        self.store
            .write_atomically(&batch, &self.sm, &[(APPLIED, applied)], false)
            .map_err(|e| e.to_string())
    }
}

fn cold_table(
    store: &Arc<SledShardStore>,
    keys: impl IntoIterator<Item = radar_core::DeviceKey>,
    budget: &MemoryBudget,
) -> TwinTable {
    let cold: Arc<dyn ColdTwins> = store.clone();
    TwinTable::with_cold(cold, keys, budget.stats.clone())
}

/// The snapshot body of `state` (see [`SnapshotHead`]): resident twins as they are, cold ones
/// decoded from disk one at a time as the scan reaches them.
fn encode_snapshot(state: &ShardState, applied: &Applied) -> Result<Vec<u8>, String> {
    let head = SnapshotHead {
        applied: Applied {
            last_applied: applied.last_applied,
            membership: applied.membership.clone(),
            frozen: applied.frozen.clone(),
        },
        templates: state.dict.templates().to_vec(),
    };
    let mut out = postcard::to_extend(&head, Vec::new()).map_err(|e| e.to_string())?;
    out = postcard::to_extend(&state.twins.len(), out).map_err(|e| e.to_string())?;
    let mut written = 0;
    for twin in state.twins.iter() {
        let twin = twin.map_err(|e| e.to_string())?;
        out = postcard::to_extend(&*twin, out).map_err(|e| e.to_string())?;
        written += 1;
    }
    if written != state.twins.len() {
        return Err(format!(
            "snapshot found {written} twins of {}",
            state.twins.len()
        ));
    }
    Ok(out)
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
        let mut last = None;
        let state = self.state.clone();
        let mut state = state.write().unwrap_or_else(|e| e.into_inner());
        for entry in entries {
            last = Some(entry.log_id);
            self.applied.last_applied = Some(entry.log_id);
            self.entries_since_checkpoint += 1;
            let mut outcome = BatchOutcome::default();
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(batch) => {
                    for command in &batch.commands {
                        let result = apply(&mut state, command);
                        if let Err(ApplyError::Storage(e)) = &result {
                            // Another replica read its twin and applied: stop rather than
                            // answer differently.
                            return Err(io_error(|a| StorageIOError::apply(entry.log_id, a), e));
                        }
                        // A command that failed after its twin was loaded may still have
                        // changed it (operations expire first), so its twin is written too.
                        if state.twins.is_resident(command.device()) {
                            self.dirty.insert(command.device().clone());
                        }
                        outcome.results.push(result);
                    }
                    for control in &batch.control {
                        let deleted = radar_twin::moving::apply_control(&mut state, control);
                        self.dirty.extend(deleted);
                        self.applied.frozen = state.frozen.clone();
                    }
                }
                EntryPayload::Membership(m) => {
                    self.applied.membership = StoredMembership::new(Some(entry.log_id), m);
                }
            }
            outcomes.push(outcome);
        }
        let due = self.entries_since_checkpoint >= CHECKPOINT_ENTRIES
            || self.last_checkpoint.elapsed() >= CHECKPOINT_INTERVAL
            || self.over_budget();
        if due {
            // Not flushed: the entries are durable in the log (see the module comment).
            let log_id = last.unwrap_or_default();
            self.checkpoint(&mut state)
                .map_err(|e| io_error(|a| StorageIOError::apply(log_id, a), e))?;
        }
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        // The log is purged up to this snapshot, so storage must hold at least this state.
        let checkpointed = {
            let state = self.state.clone();
            let mut state = state.write().unwrap_or_else(|e| e.into_inner());
            self.checkpoint(&mut state)
        };
        let applied = Applied {
            last_applied: self.applied.last_applied,
            membership: self.applied.membership.clone(),
            frozen: self.applied.frozen.clone(),
        };
        let body = checkpointed.and_then(|()| {
            let state = self.state.read().unwrap_or_else(|e| e.into_inner());
            encode_snapshot(&state, &applied)
        });
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
        let (head, mut rest) =
            postcard::take_from_bytes::<SnapshotHead>(&data).map_err(|e| fail(e.to_string()))?;
        let (count, after) =
            postcard::take_from_bytes::<usize>(rest).map_err(|e| fail(e.to_string()))?;
        rest = after;
        let indexed: Vec<String> = {
            let current = self.state.read().unwrap_or_else(|e| e.into_inner());
            current.index.fields().to_vec()
        };
        let mut index = radar_twin::index::FieldIndex::empty(&indexed);
        let dict = PathDict::from_templates(head.templates);
        // Each twin is encoded for disk as it is decoded, so only one is ever whole in memory.
        let mut writes = Vec::with_capacity(count.min(1 << 20));
        let mut keys = Vec::with_capacity(count.min(1 << 20));
        let mut columns = Vec::with_capacity(count.min(1 << 20));
        for number in 0..count {
            let (twin, after) =
                postcard::take_from_bytes::<Twin>(rest).map_err(|e| fail(e.to_string()))?;
            rest = after;
            if keys.last().is_some_and(|last| *last >= twin.key) {
                return Err(fail(format!("snapshot twins out of order at {}", twin.key)));
            }
            // The cold table below numbers its keys in the order given, from 0.
            if !indexed.is_empty() {
                index.insert(number as u32, &twin, &dict);
            }
            writes.push(crate::format::encode_full(&twin).map_err(|e| fail(e.to_string()))?);
            columns.push(radar_twin::table::Columns::of(&twin, &dict));
            keys.push(twin.key);
        }
        self.applied = Applied {
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
            frozen: head.applied.frozen.clone(),
        };
        let batch = Batch {
            first_template_id: 0,
            new_templates: dict.templates(),
            twins: writes,
            deleted: Vec::new(),
        };
        let applied = postcard::to_allocvec(&self.applied).map_err(|e| fail(e.to_string()))?;
        self.store
            .write_atomically(&batch, &self.sm, &[(APPLIED, applied)], true)
            .map_err(|e| fail(e.to_string()))?;
        drop(batch);
        // Every installed twin starts cold.
        let mut twins = cold_table(&self.store, keys.iter().cloned(), &self.budget);
        for (key, c) in keys.iter().zip(columns) {
            twins.set_columns(key, c);
        }
        let state = ShardState {
            dict,
            twins,
            index,
            frozen: head.applied.frozen,
        };
        self.dirty.clear();
        self.first_unwritten_template = state.dict.len() as u32;
        self.entries_since_checkpoint = 0;
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
