//! The Raft log and vote of one group on redb: the second implementation of openraft's log
//! storage, beside [`super::log_store::SledLogStore`], chosen with `storage.raft_log = "redb"`
//! and compared in B8. Every group of a node shares one redb file (`raft-log.redb`), with two
//! tables per group. A write transaction committed with redb's default durability is fsynced
//! before `commit` returns, so an append is acknowledged to openraft only after that.

use super::log_store::LogConfig;
use super::{io_error, ShardRaft, StorageError};
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{Entry, LogId, LogState, RaftLogReader, StorageIOError, Vote};
use redb::{Database, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const LAST_PURGED: &str = "last_purged";

/// The node's redb file for Raft logs.
#[derive(Clone)]
pub struct RedbLogs {
    db: Arc<Database>,
}

impl RedbLogs {
    pub fn open(dir: &Path) -> Result<Self, crate::StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| crate::StoreError::Engine(e.to_string()))?;
        let db = Database::create(dir.join("raft-log.redb"))
            .map_err(|e| crate::StoreError::Engine(e.to_string()))?;
        Ok(Self { db: Arc::new(db) })
    }

    pub fn group<C>(&self, group: u64) -> RedbLogStore<C> {
        RedbLogStore {
            db: self.db.clone(),
            log_name: format!("raft-{group}-log"),
            meta_name: format!("raft-{group}-meta"),
            _config: PhantomData,
        }
    }
}

pub struct RedbLogStore<C = ShardRaft> {
    db: Arc<Database>,
    log_name: String,
    meta_name: String,
    _config: PhantomData<fn() -> C>,
}

impl<C> Clone for RedbLogStore<C> {
    fn clone(&self) -> Self {
        Self {
            db: self.db.clone(),
            log_name: self.log_name.clone(),
            meta_name: self.meta_name.clone(),
            _config: PhantomData,
        }
    }
}

type Failure = fn(openraft::AnyError) -> StorageIOError<u64>;

impl<C> RedbLogStore<C> {
    fn log_table(&self) -> TableDefinition<'_, u64, &'static [u8]> {
        TableDefinition::new(&self.log_name)
    }

    fn meta_table(&self) -> TableDefinition<'_, &'static str, &'static [u8]> {
        TableDefinition::new(&self.meta_name)
    }

    fn read_meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StorageError> {
        let read = |e: String| io_error(StorageIOError::read_logs, e);
        let txn = self.db.begin_read().map_err(|e| read(e.to_string()))?;
        let table = match txn.open_table(self.meta_table()) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(read(e.to_string())),
        };
        match table.get(key).map_err(|e| read(e.to_string()))? {
            Some(bytes) => postcard::from_bytes(bytes.value())
                .map(Some)
                .map_err(|e| read(e.to_string())),
            None => Ok(None),
        }
    }

    /// Runs `change` in one write transaction and commits it (fsynced unless `durable` is off).
    async fn write(
        &self,
        durable: bool,
        failure: Failure,
        change: impl FnOnce(&Self, &redb::WriteTransaction) -> Result<(), String> + Send + 'static,
    ) -> Result<(), StorageError>
    where
        C: 'static,
    {
        let store = self.clone();
        let done = tokio::task::spawn_blocking(move || -> Result<(), String> {
            let mut txn = store.db.begin_write().map_err(|e| e.to_string())?;
            if !durable {
                txn.set_durability(redb::Durability::Eventual);
            }
            change(&store, &txn)?;
            txn.commit().map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| io_error(failure, e))?;
        done.map_err(|e| io_error(failure, e))
    }

    fn put_meta<T: Serialize>(
        &self,
        txn: &redb::WriteTransaction,
        key: &str,
        value: &T,
    ) -> Result<(), String> {
        let bytes = postcard::to_allocvec(value).map_err(|e| e.to_string())?;
        let mut table = txn
            .open_table(self.meta_table())
            .map_err(|e| e.to_string())?;
        table
            .insert(key, bytes.as_slice())
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    fn last_entry_id(&self) -> Result<Option<LogId<u64>>, StorageError>
    where
        C: LogConfig,
        Entry<C>: DeserializeOwned,
    {
        let read = |e: String| io_error(StorageIOError::read_logs, e);
        let txn = self.db.begin_read().map_err(|e| read(e.to_string()))?;
        let table = match txn.open_table(self.log_table()) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(read(e.to_string())),
        };
        let last = table.last().map_err(|e| read(e.to_string()))?;
        let id = match last {
            Some((_, bytes)) => {
                let entry: Entry<C> =
                    postcard::from_bytes(bytes.value()).map_err(|e| read(e.to_string()))?;
                Some(entry.log_id)
            }
            None => None,
        };
        Ok(id)
    }
}

impl<C: LogConfig> RaftLogReader<C> for RedbLogStore<C>
where
    Entry<C>: Serialize + DeserializeOwned,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<C>>, StorageError> {
        let read = |e: String| io_error(StorageIOError::read_logs, e);
        let txn = self.db.begin_read().map_err(|e| read(e.to_string()))?;
        let table = match txn.open_table(self.log_table()) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(read(e.to_string())),
        };
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let mut out = Vec::new();
        for item in table.range(start..).map_err(|e| read(e.to_string()))? {
            let (index, bytes) = item.map_err(|e| read(e.to_string()))?;
            if !range.contains(&index.value()) {
                break;
            }
            out.push(postcard::from_bytes(bytes.value()).map_err(|e| read(e.to_string()))?);
        }
        Ok(out)
    }
}

impl<C: LogConfig> RaftLogStorage<C> for RedbLogStore<C>
where
    Entry<C>: Serialize + DeserializeOwned,
{
    type LogReader = RedbLogStore<C>;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError> {
        let last_purged: Option<LogId<u64>> = self.read_meta(LAST_PURGED)?;
        let last = self.last_entry_id()?.or(last_purged);
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError> {
        let vote = *vote;
        self.write(true, StorageIOError::write_vote, move |s, txn| {
            s.put_meta(txn, VOTE, &vote)
        })
        .await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError> {
        self.read_meta(VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId<u64>>) -> Result<(), StorageError> {
        // Not fsynced: a lost committed index is recovered from the leader (openraft's contract).
        self.write(false, StorageIOError::write_logs, move |s, txn| {
            s.put_meta(txn, COMMITTED, &committed)
        })
        .await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, StorageError> {
        Ok(self.read_meta::<Option<LogId<u64>>>(COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<C>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry<C>> + Send,
        I::IntoIter: Send,
    {
        let mut encoded = Vec::new();
        for entry in entries {
            let bytes = postcard::to_allocvec(&entry)
                .map_err(|e| io_error(StorageIOError::write_logs, e))?;
            encoded.push((entry.log_id.index, bytes));
        }
        let written = self
            .write(true, StorageIOError::write_logs, move |s, txn| {
                let mut table = txn.open_table(s.log_table()).map_err(|e| e.to_string())?;
                for (index, bytes) in &encoded {
                    table
                        .insert(index, bytes.as_slice())
                        .map_err(|e| e.to_string())?;
                }
                Ok(())
            })
            .await;
        // Durable (committed with fsync) before openraft may count it.
        callback.log_io_completed(
            written
                .as_ref()
                .map(|_| ())
                .map_err(|e| std::io::Error::other(e.to_string())),
        );
        written
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError> {
        self.write(true, StorageIOError::write_logs, move |s, txn| {
            let mut table = txn.open_table(s.log_table()).map_err(|e| e.to_string())?;
            table
                .retain_in(log_id.index.., |_, _| false)
                .map_err(|e| e.to_string())
        })
        .await
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError> {
        // The purge point and the removal in one transaction: never a gap, never extra.
        self.write(true, StorageIOError::write_logs, move |s, txn| {
            s.put_meta(txn, LAST_PURGED, &log_id)?;
            let mut table = txn.open_table(s.log_table()).map_err(|e| e.to_string())?;
            table
                .retain_in(..=log_id.index, |_, _| false)
                .map_err(|e| e.to_string())
        })
        .await
    }
}
