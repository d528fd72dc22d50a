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
//! entries a restart needs are always there. Snapshots are files of Radar's own encoding of the
//! whole shard (see [`super::snapshot_file`]).
//!
//! Twins need not be resident (see `radar_twin::table`): the shard's keys are read at open and
//! each twin is read from this state machine's own trees when a command first needs it. After
//! each checkpoint, when disk holds every twin as memory does, twins are evicted while the
//! node's resident twins exceed its memory budget; a budget overrun also makes a checkpoint
//! due. USP agents that are connected stay resident.
//!
//! Snapshots never copy the state into memory. One is written to a file twin by twin as a scan
//! over the twins yields them (cold ones from disk), while apply waits, and fsynced and
//! published by openraft's builder task. A received snapshot streams into a file; installing it
//! replaces the shard's records in batches, not one transaction (millions of twins would not
//! fit one), so an [`INSTALLING`] marker is written first and cleared with the new applied
//! state: a node that crashed mid-install finds the marker at open and installs again from the
//! file, which was made the current snapshot before the first twin was replaced.

use super::snapshot_file::{FileHead, SnapshotDir, SnapshotFile, SnapshotReader, SnapshotWriter};
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
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

const APPLIED: &[u8] = b"applied";

/// Entries applied between two checkpoints, at most.
pub const CHECKPOINT_ENTRIES: u64 = 512;
/// Time between two checkpoints, at most (checked when entries are applied).
pub const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);
/// Present while a received snapshot replaces the shard's records (see the module comment).
const INSTALLING: &[u8] = b"installing";
/// Where builds before snapshot files kept the current snapshot, whole, as one sled value;
/// moved to a file at open.
const LEGACY_SNAPSHOT: &[u8] = b"snapshot";
/// Twins written per batch while a snapshot installs.
const INSTALL_BATCH: usize = 512;

type Membership = StoredMembership<u64, BasicNode>;

#[derive(Serialize, Deserialize, Default, Clone)]
pub(super) struct Applied {
    last_applied: Option<LogId<u64>>,
    membership: Membership,
    /// Partitions being handed over; stored with the applied id, since twins are.
    frozen: radar_twin::moving::Frozen,
}

type Head = FileHead<Applied>;

fn store_error(e: impl std::fmt::Display) -> crate::StoreError {
    crate::StoreError::Engine(e.to_string())
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
    snapshots: SnapshotDir,
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
            .map_err(store_error)?;
        let store = Arc::new(store);
        let snapshots = SnapshotDir::open(store.snapshot_dir(), group).map_err(store_error)?;
        migrate_legacy_snapshot(&sm, &snapshots)?;
        let installing = snapshots.installing();
        if sm.get(INSTALLING).map_err(store_error)?.is_some() {
            // A crash mid-install: the twins are part old, part new. Install again.
            if installing.exists() {
                snapshots
                    .publish(&installing, None, false)
                    .map_err(store_error)?;
            }
            install_current(&store, &sm, &snapshots, &[], &budget).map_err(|message| {
                crate::StoreError::Corrupt {
                    key: format!("group {group} snapshot"),
                    message,
                }
            })?;
            store.db().flush().map_err(store_error)?;
        } else if installing.exists() {
            // Received but never started: the install is openraft's to retry.
            std::fs::remove_file(&installing).map_err(store_error)?;
        }
        if snapshots.current().exists() {
            let (head, _) =
                SnapshotReader::open::<Applied>(&snapshots.current()).map_err(store_error)?;
            snapshots.set_published(head.meta.last_log_id);
        }
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
            snapshots,
            evict_stuck_at: None,
        })
    }

    /// Reads this replica's audit records (see [`super::audit_log`]).
    pub fn audit_reader(&self) -> super::audit_log::AuditReader {
        super::audit_log::AuditReader {
            sm: self.sm.clone(),
            state: self.state.clone(),
        }
    }

    #[cfg(test)]
    pub(super) fn sm_tree(&self) -> &sled::Tree {
        &self.sm
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
        // A failed write stops the shard, so records taken here are never lost to a retry.
        let audit = super::audit_log::take_unwritten(&mut state.audit)?;
        let new_templates = &state.dict.templates()[first_template as usize..];
        let batch = Batch {
            first_template_id: first_template,
            new_templates,
            twins,
            deleted,
        };
        let mut extra: Vec<(&[u8], Vec<u8>)> = Vec::with_capacity(1 + audit.len());
        extra.push((
            APPLIED,
            postcard::to_allocvec(&self.applied).map_err(|e| e.to_string())?,
        ));
        extra.extend(audit.iter().map(|(k, v)| (k.as_slice(), v.clone())));
        self.store
            .write_atomically(&batch, &self.sm, &extra)
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

/// Writes the snapshot of `state` to a new temporary file: resident twins as they are, cold
/// ones decoded from disk one at a time as the scan reaches them.
fn write_snapshot(
    state: &ShardState,
    sm: &sled::Tree,
    snapshots: &SnapshotDir,
    head: &Head,
) -> Result<PathBuf, String> {
    let path = snapshots.temporary("building");
    let written = (|| {
        let mut writer = SnapshotWriter::create(path.clone(), head)?;
        for twin in state.twins.iter() {
            writer.push(&*twin.map_err(std::io::Error::other)?)?;
        }
        // A checkpoint came first: every record applied is written.
        for record in super::audit_log::scan(sm) {
            let (key, value) = record.map_err(std::io::Error::other)?;
            writer.push_audit(&key, &value)?;
        }
        writer.finish()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&path);
    }
    written.map_err(|e| e.to_string())
}

/// Reads every twin of a snapshot file, checking their order; its header.
fn verify_snapshot(path: &std::path::Path) -> Result<Head, String> {
    let (head, mut twins) = SnapshotReader::open::<Applied>(path).map_err(|e| e.to_string())?;
    let mut last: Option<radar_core::DeviceKey> = None;
    for twin in twins.by_ref() {
        let key = twin.map_err(|e| e.to_string())?.key;
        if last.as_ref().is_some_and(|last| *last >= key) {
            return Err(format!("snapshot twins out of order at {key}"));
        }
        last = Some(key);
    }
    for record in twins.audit_records() {
        record.map_err(|e| e.to_string())?;
    }
    Ok(head)
}

/// Replaces the shard's records with the twins of the current snapshot file, in batches, and
/// writes its applied state with the [`INSTALLING`] marker removed (not flushed). The state it
/// gives has every twin cold, with its columns and the `indexed` fields' index.
fn install_current(
    store: &Arc<SledShardStore>,
    sm: &sled::Tree,
    snapshots: &SnapshotDir,
    indexed: &[String],
    budget: &MemoryBudget,
) -> Result<(ShardState, Applied), String> {
    let (head, mut twins) =
        SnapshotReader::open::<Applied>(&snapshots.current()).map_err(|e| e.to_string())?;
    let dict = PathDict::from_templates(head.templates);
    store.clear().map_err(|e| e.to_string())?;
    super::audit_log::clear(sm)?;
    let mut index = radar_twin::index::FieldIndex::empty(indexed);
    let capacity = (head.twins as usize).min(1 << 20);
    let mut keys: Vec<radar_core::DeviceKey> = Vec::with_capacity(capacity);
    let mut columns = Vec::with_capacity(capacity);
    let mut pending = Vec::with_capacity(INSTALL_BATCH);
    let mut templates_written = false;
    let mut write = |pending: &mut Vec<crate::TwinWrite>| {
        let batch = Batch {
            first_template_id: 0,
            // The dictionary goes with the first batch: no twin before its templates.
            new_templates: if templates_written {
                &[]
            } else {
                dict.templates()
            },
            twins: std::mem::take(pending),
            deleted: Vec::new(),
        };
        templates_written = true;
        store.write(&batch).map_err(|e| e.to_string())
    };
    for (number, twin) in twins.by_ref().enumerate() {
        let twin = twin.map_err(|e| e.to_string())?;
        if keys.last().is_some_and(|last| *last >= twin.key) {
            return Err(format!("snapshot twins out of order at {}", twin.key));
        }
        // The cold table below numbers its keys in the order given, from 0.
        if !indexed.is_empty() {
            index.insert(number as u32, &twin, &dict);
        }
        pending.push(crate::format::encode_full(&twin).map_err(|e| e.to_string())?);
        columns.push(radar_twin::table::Columns::of(&twin, &dict));
        keys.push(twin.key);
        if pending.len() >= INSTALL_BATCH {
            write(&mut pending)?;
        }
    }
    write(&mut pending)?;
    for record in twins.audit_records() {
        let (key, value) = record.map_err(|e| e.to_string())?;
        super::audit_log::install(sm, &key, &value)?;
    }
    let applied = Applied {
        last_applied: head.meta.last_log_id,
        membership: head.meta.last_membership,
        frozen: head.applied.frozen,
    };
    let encoded = postcard::to_allocvec(&applied).map_err(|e| e.to_string())?;
    sm.transaction(|tx| {
        tx.insert(APPLIED, encoded.as_slice())?;
        tx.remove(INSTALLING)?;
        Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
    })
    .map_err(|e| format!("{e:?}"))?;
    let mut twins = cold_table(store, keys.iter().cloned(), budget);
    for (key, c) in keys.iter().zip(columns) {
        twins.set_columns(key, c);
    }
    let state = ShardState {
        frozen: applied.frozen.clone(),
        dict,
        twins,
        index,
        audit: Default::default(),
    };
    Ok((state, applied))
}

/// Moves a snapshot kept as one sled value (builds before snapshot files) to a file.
fn migrate_legacy_snapshot(
    sm: &sled::Tree,
    snapshots: &SnapshotDir,
) -> Result<(), crate::StoreError> {
    #[derive(Deserialize)]
    struct Legacy {
        meta: SnapshotMeta<u64, BasicNode>,
        data: Vec<u8>,
    }
    #[derive(Deserialize)]
    struct LegacyHead {
        applied: Applied,
        templates: Vec<Box<str>>,
    }
    let Some(bytes) = sm.get(LEGACY_SNAPSHOT).map_err(store_error)? else {
        return Ok(());
    };
    let corrupt = |e: &dyn std::fmt::Display| crate::StoreError::Corrupt {
        key: "snapshot".into(),
        message: e.to_string(),
    };
    let legacy: Legacy = postcard::from_bytes(&bytes).map_err(|e| corrupt(&e))?;
    let (head, rest) =
        postcard::take_from_bytes::<LegacyHead>(&legacy.data).map_err(|e| corrupt(&e))?;
    let (count, mut rest) = postcard::take_from_bytes::<usize>(rest).map_err(|e| corrupt(&e))?;
    let last = legacy.meta.last_log_id;
    let path = snapshots.temporary("migrating");
    let file_head = Head {
        meta: legacy.meta,
        applied: head.applied,
        templates: head.templates,
        twins: count as u64,
    };
    let mut writer = SnapshotWriter::create(path, &file_head).map_err(store_error)?;
    for _ in 0..count {
        let (twin, after) = postcard::take_from_bytes::<Twin>(rest).map_err(|e| corrupt(&e))?;
        rest = after;
        writer.push(&twin).map_err(store_error)?;
    }
    let path = writer.finish().map_err(store_error)?;
    snapshots.publish(&path, last, true).map_err(store_error)?;
    sm.remove(LEGACY_SNAPSHOT).map_err(store_error)?;
    sm.flush().map_err(store_error)?;
    Ok(())
}

/// Makes the snapshot written when the builder was made durable and current (off the apply
/// path: only the write itself held the state).
pub struct SnapshotBuilder {
    file: Result<PathBuf, String>,
    meta: SnapshotMeta<u64, BasicNode>,
    snapshots: SnapshotDir,
}

impl RaftSnapshotBuilder<ShardRaft> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<ShardRaft>, StorageError> {
        let fail = |e: String| io_error(|a| StorageIOError::write_snapshot(None, a), e);
        let path = self.file.clone().map_err(fail)?;
        let snapshots = self.snapshots.clone();
        let last = self.meta.last_log_id;
        tokio::task::spawn_blocking(move || snapshots.publish(&path, last, true))
            .await
            .map_err(|e| fail(e.to_string()))?
            .map_err(|e| fail(e.to_string()))?;
        // If a newer snapshot was installed meanwhile, this one was dropped for it.
        let (head, data) = SnapshotFile::open_with_head::<Applied>(self.snapshots.current())
            .await
            .map_err(|e| fail(e.to_string()))?;
        Ok(Snapshot {
            meta: head.meta,
            snapshot: Box::new(data),
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
                    state.audit.begin_entry(entry.log_id.index);
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
        self.snapshots_built += 1;
        let last = self.applied.last_applied;
        let meta = SnapshotMeta {
            last_log_id: last,
            last_membership: self.applied.membership.clone(),
            snapshot_id: format!(
                "{}-{}-{}",
                last.map(|l| l.leader_id.term).unwrap_or(0),
                last.map(|l| l.index).unwrap_or(0),
                self.snapshots_built
            ),
        };
        let file = checkpointed.and_then(|()| {
            let state = self.state.read().unwrap_or_else(|e| e.into_inner());
            let head = Head {
                meta: meta.clone(),
                applied: self.applied.clone(),
                templates: state.dict.templates().to_vec(),
                twins: state.twins.len() as u64,
            };
            write_snapshot(&state, &self.sm, &self.snapshots, &head)
        });
        SnapshotBuilder {
            file,
            meta,
            snapshots: self.snapshots.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotFile>, StorageError> {
        let file = SnapshotFile::create(self.snapshots.temporary("receiving"))
            .await
            .map_err(|e| io_error(|a| StorageIOError::write_snapshot(None, a), e))?;
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, BasicNode>,
        snapshot: Box<SnapshotFile>,
    ) -> Result<(), StorageError> {
        let fail = |e: String| {
            io_error(
                |a| StorageIOError::write_snapshot(Some(meta.signature()), a),
                e,
            )
        };
        let mut received = *snapshot;
        received.sync().await.map_err(|e| fail(e.to_string()))?;
        let received = received.path().to_owned();
        // Read through once before anything is replaced: a damaged file is refused here.
        let checked = verify_snapshot(&received).and_then(|head| {
            if head.meta.last_log_id != meta.last_log_id
                || head.meta.snapshot_id != meta.snapshot_id
            {
                return Err(format!(
                    "received snapshot {} but its file holds {}",
                    meta.snapshot_id, head.meta.snapshot_id
                ));
            }
            Ok(())
        });
        if let Err(e) = checked {
            let _ = std::fs::remove_file(&received);
            return Err(fail(e));
        }
        // The order matters for a crash at any point (see the module comment).
        self.snapshots
            .stage_install(&received)
            .map_err(|e| fail(e.to_string()))?;
        self.sm
            .insert(INSTALLING, &[])
            .map_err(|e| fail(e.to_string()))?;
        flush(self.store.db()).await.map_err(fail)?;
        self.snapshots
            .publish(&self.snapshots.installing(), meta.last_log_id, false)
            .map_err(|e| fail(e.to_string()))?;
        let indexed: Vec<String> = {
            let current = self.state.read().unwrap_or_else(|e| e.into_inner());
            current.index.fields().to_vec()
        };
        let (state, applied) = install_current(
            &self.store,
            &self.sm,
            &self.snapshots,
            &indexed,
            &self.budget,
        )
        .map_err(fail)?;
        flush(self.store.db()).await.map_err(fail)?;
        self.applied = applied;
        self.dirty.clear();
        self.first_unwritten_template = state.dict.len() as u32;
        self.entries_since_checkpoint = 0;
        *self.state.write().unwrap_or_else(|e| e.into_inner()) = state;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<ShardRaft>>, StorageError> {
        let current = self.snapshots.current();
        if !current.exists() {
            return Ok(None);
        }
        let (head, data) = SnapshotFile::open_with_head::<Applied>(current)
            .await
            .map_err(|e| io_error(|a| StorageIOError::read_snapshot(None, a), e))?;
        Ok(Some(Snapshot {
            meta: head.meta,
            snapshot: Box::new(data),
        }))
    }
}
