//! The metadata Raft group: its state is the cluster [`Layout`], changed only by
//! `Layout::apply` of committed [`LayoutCommand`]s. The layout is small, so every apply stores
//! the whole of it (with the applied log id) as one sled value, and a snapshot is that value.
//! Every applied change is published on a watch channel, which the node follows to open and
//! close shard replicas.

use super::log_store::SledLogStore;
use super::{flush, io_error, StorageError};
use openraft::storage::RaftStateMachine;
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, RaftSnapshotBuilder, Snapshot, SnapshotMeta,
    StorageIOError, StoredMembership,
};
use radar_core::{Layout, LayoutCommand, LayoutError};
use serde::{Deserialize, Serialize};
use std::io::Cursor;
use tokio::sync::watch;

/// What a committed layout command gave: the layout version after it, or why it was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoutOutcome(pub Result<u64, LayoutError>);

openraft::declare_raft_types!(
    /// The type configuration of the metadata group.
    pub MetaRaft:
        D = LayoutCommand,
        R = LayoutOutcome,
        NodeId = u64,
        Node = BasicNode,
        Entry = Entry<MetaRaft>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

const STATE: &[u8] = b"state";
const SNAPSHOT: &[u8] = b"snapshot";

#[derive(Serialize, Deserialize, Default, Clone)]
struct MetaState {
    last_applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, BasicNode>,
    layout: Layout,
}

#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<u64, BasicNode>,
    data: Vec<u8>,
}

pub struct MetaStateMachine {
    db: sled::Db,
    tree: sled::Tree,
    state: MetaState,
    published: watch::Sender<Layout>,
    snapshots_built: u64,
}

/// The metadata group's log and state machine, opened from `db`.
pub fn open(
    db: &sled::Db,
    group: u64,
) -> Result<(SledLogStore<MetaRaft>, MetaStateMachine), crate::StoreError> {
    let engine = |e: sled::Error| crate::StoreError::Engine(e.to_string());
    let tree = db.open_tree(format!("raft-{group}-sm")).map_err(engine)?;
    let state = match tree.get(STATE).map_err(engine)? {
        Some(bytes) => postcard::from_bytes(&bytes).map_err(|e| crate::StoreError::Corrupt {
            key: "meta state".into(),
            message: e.to_string(),
        })?,
        None => MetaState::default(),
    };
    let (published, _) = watch::channel(state.layout.clone());
    let machine = MetaStateMachine {
        db: db.clone(),
        tree,
        state,
        published,
        snapshots_built: 0,
    };
    Ok((SledLogStore::open(db, group)?, machine))
}

impl MetaStateMachine {
    /// Follows the layout: the current one now, and every applied change after.
    pub fn subscribe(&self) -> watch::Receiver<Layout> {
        self.published.subscribe()
    }

    fn store(&self) -> Result<(), String> {
        let bytes = postcard::to_allocvec(&self.state).map_err(|e| e.to_string())?;
        self.tree
            .insert(STATE, bytes)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn publish(&self) {
        self.published.send_if_modified(|current| {
            let changed = *current != self.state.layout;
            if changed {
                *current = self.state.layout.clone();
            }
            changed
        });
    }
}

pub struct MetaSnapshotBuilder {
    data: Result<Vec<u8>, String>,
    meta: SnapshotMeta<u64, BasicNode>,
    tree: sled::Tree,
    db: sled::Db,
}

impl RaftSnapshotBuilder<MetaRaft> for MetaSnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<MetaRaft>, StorageError> {
        let fail = |e: String| io_error(|a| StorageIOError::write_snapshot(None, a), e);
        let data = self.data.clone().map_err(fail)?;
        let stored = StoredSnapshot {
            meta: self.meta.clone(),
            data: data.clone(),
        };
        let bytes = postcard::to_allocvec(&stored).map_err(|e| fail(e.to_string()))?;
        self.tree
            .insert(SNAPSHOT, bytes)
            .map_err(|e| fail(e.to_string()))?;
        flush(&self.db).await.map_err(fail)?;
        Ok(Snapshot {
            meta: self.meta.clone(),
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<MetaRaft> for MetaStateMachine {
    type SnapshotBuilder = MetaSnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, BasicNode>), StorageError> {
        Ok((self.state.last_applied, self.state.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<LayoutOutcome>, StorageError>
    where
        I: IntoIterator<Item = Entry<MetaRaft>> + Send,
        I::IntoIter: Send,
    {
        let mut outcomes = Vec::new();
        let mut last = LogId::default();
        for entry in entries {
            last = entry.log_id;
            self.state.last_applied = Some(entry.log_id);
            let outcome = match entry.payload {
                EntryPayload::Blank => Ok(self.state.layout.version),
                EntryPayload::Normal(command) => self
                    .state
                    .layout
                    .apply(&command)
                    .map(|()| self.state.layout.version),
                EntryPayload::Membership(m) => {
                    self.state.membership = StoredMembership::new(Some(entry.log_id), m);
                    Ok(self.state.layout.version)
                }
            };
            outcomes.push(LayoutOutcome(outcome));
        }
        self.store()
            .map_err(|e| io_error(|a| StorageIOError::apply(last, a), e))?;
        self.publish();
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.snapshots_built += 1;
        let last = self.state.last_applied;
        MetaSnapshotBuilder {
            data: postcard::to_allocvec(&self.state).map_err(|e| e.to_string()),
            meta: SnapshotMeta {
                last_log_id: last,
                last_membership: self.state.membership.clone(),
                snapshot_id: format!(
                    "meta-{}-{}",
                    last.map(|l| l.index).unwrap_or(0),
                    self.snapshots_built
                ),
            },
            tree: self.tree.clone(),
            db: self.db.clone(),
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
        let mut state: MetaState = postcard::from_bytes(&data).map_err(|e| fail(e.to_string()))?;
        state.last_applied = meta.last_log_id;
        state.membership = meta.last_membership.clone();
        self.state = state;
        self.store().map_err(fail)?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        let bytes = postcard::to_allocvec(&stored).map_err(|e| fail(e.to_string()))?;
        self.tree
            .insert(SNAPSHOT, bytes)
            .map_err(|e| fail(e.to_string()))?;
        flush(&self.db).await.map_err(fail)?;
        self.publish();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<MetaRaft>>, StorageError> {
        let fail = |e: String| io_error(|a| StorageIOError::read_snapshot(None, a), e);
        match self.tree.get(SNAPSHOT).map_err(|e| fail(e.to_string()))? {
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
