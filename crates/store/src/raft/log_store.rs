//! The Raft log and vote of one group on sled. An append is acknowledged to openraft
//! (`LogFlushed::log_io_completed`) only after sled has flushed it.

use super::{flush, io_error, ShardRaft, StorageError};
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::RaftTypeConfig;
use openraft::{Entry, LogId, LogState, RaftLogReader, StorageIOError, Vote};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const LAST_PURGED: &[u8] = b"last_purged";

/// The log of one group, for any of Radar's Raft type configurations (shards and the metadata
/// group share it).
pub struct SledLogStore<C = ShardRaft> {
    db: sled::Db,
    log: sled::Tree,
    meta: sled::Tree,
    _config: PhantomData<fn() -> C>,
}

impl<C> Clone for SledLogStore<C> {
    fn clone(&self) -> Self {
        Self {
            db: self.db.clone(),
            log: self.log.clone(),
            meta: self.meta.clone(),
            _config: PhantomData,
        }
    }
}

/// What the log needs of a Raft type configuration: u64 node ids and serde entries.
pub trait LogConfig: RaftTypeConfig<NodeId = u64, Entry = Entry<Self>> + Sized + 'static {}

impl<C> LogConfig for C
where
    C: RaftTypeConfig<NodeId = u64, Entry = Entry<C>>,
    Entry<C>: Serialize + DeserializeOwned,
{
}

impl<C> SledLogStore<C> {
    pub fn open(db: &sled::Db, group: u64) -> Result<Self, crate::StoreError> {
        let engine = |e: sled::Error| crate::StoreError::Engine(e.to_string());
        Ok(Self {
            db: db.clone(),
            log: db.open_tree(format!("raft-{group}-log")).map_err(engine)?,
            meta: db.open_tree(format!("raft-{group}-meta")).map_err(engine)?,
            _config: PhantomData,
        })
    }

    fn read_meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, StorageError> {
        let read = |e: String| io_error(StorageIOError::read_logs, e);
        match self.meta.get(key).map_err(|e| read(e.to_string()))? {
            Some(bytes) => postcard::from_bytes(&bytes)
                .map(Some)
                .map_err(|e| read(e.to_string())),
            None => Ok(None),
        }
    }

    fn write_meta<T: serde::Serialize>(
        &self,
        key: &[u8],
        value: &T,
        make: fn(openraft::AnyError) -> StorageIOError<u64>,
    ) -> Result<(), StorageError> {
        let bytes = postcard::to_allocvec(value).map_err(|e| io_error(make, e))?;
        self.meta
            .insert(key, bytes)
            .map_err(|e| io_error(make, e))?;
        Ok(())
    }

    fn last_entry_id(&self) -> Result<Option<LogId<u64>>, StorageError>
    where
        C: LogConfig,
        Entry<C>: DeserializeOwned,
    {
        let read = |e: String| io_error(StorageIOError::read_logs, e);
        match self.log.last().map_err(|e| read(e.to_string()))? {
            Some((_, bytes)) => {
                let entry: Entry<C> =
                    postcard::from_bytes(&bytes).map_err(|e| read(e.to_string()))?;
                Ok(Some(entry.log_id))
            }
            None => Ok(None),
        }
    }
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

impl<C: LogConfig> RaftLogReader<C> for SledLogStore<C>
where
    Entry<C>: Serialize + DeserializeOwned,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<C>>, StorageError> {
        let read = |e: String| io_error(StorageIOError::read_logs, e);
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let mut out = Vec::new();
        for item in self.log.range(index_key(start)..) {
            let (key, bytes) = item.map_err(|e| read(e.to_string()))?;
            let index = u64::from_be_bytes(
                key.as_ref()
                    .try_into()
                    .map_err(|_| read("bad log key".into()))?,
            );
            if !range.contains(&index) {
                break;
            }
            out.push(postcard::from_bytes(&bytes).map_err(|e| read(e.to_string()))?);
        }
        Ok(out)
    }
}

impl<C: LogConfig> RaftLogStorage<C> for SledLogStore<C>
where
    Entry<C>: Serialize + DeserializeOwned,
{
    type LogReader = SledLogStore<C>;

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
        self.write_meta(VOTE, vote, StorageIOError::write_vote)?;
        flush(&self.db)
            .await
            .map_err(|e| io_error(StorageIOError::write_vote, e))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError> {
        self.read_meta(VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId<u64>>) -> Result<(), StorageError> {
        // Not flushed: a lost committed index is recovered from the leader (openraft's contract).
        self.write_meta(COMMITTED, &committed, StorageIOError::write_logs)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, StorageError> {
        Ok(self.read_meta::<Option<LogId<u64>>>(COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<C>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry<C>> + Send,
        I::IntoIter: Send,
    {
        let write = |e: String| io_error(StorageIOError::write_logs, e);
        let mut batch = sled::Batch::default();
        for entry in entries {
            let bytes = postcard::to_allocvec(&entry).map_err(|e| write(e.to_string()))?;
            batch.insert(&index_key(entry.log_id.index), bytes);
        }
        self.log
            .apply_batch(batch)
            .map_err(|e| write(e.to_string()))?;
        // Durable before openraft may count it (DESIGN §5b: log_io_completed after the flush).
        let flushed = flush(&self.db).await;
        callback.log_io_completed(flushed.clone().map_err(std::io::Error::other));
        flushed.map_err(write)
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError> {
        let write = |e: String| io_error(StorageIOError::write_logs, e);
        let mut batch = sled::Batch::default();
        for key in self.log.range(index_key(log_id.index)..).keys() {
            batch.remove(key.map_err(|e| write(e.to_string()))?);
        }
        self.log
            .apply_batch(batch)
            .map_err(|e| write(e.to_string()))?;
        flush(&self.db).await.map_err(write)
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError> {
        let write = |e: String| io_error(StorageIOError::write_logs, e);
        // Record the purge point first: a crash in between leaves extra entries, never a gap.
        self.write_meta(LAST_PURGED, &log_id, StorageIOError::write_logs)?;
        let mut batch = sled::Batch::default();
        for key in self.log.range(..=index_key(log_id.index)).keys() {
            batch.remove(key.map_err(|e| write(e.to_string()))?);
        }
        self.log
            .apply_batch(batch)
            .map_err(|e| write(e.to_string()))?;
        flush(&self.db).await.map_err(write)
    }
}
