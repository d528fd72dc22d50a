//! sled 0.34 implementation of [`ShardStore`]. A write is durable only after `flush` (sled's
//! background fsync runs every 500 ms, far too late to acknowledge a device), so the node flushes
//! each group commit before it answers anyone.

use crate::{Batch, LoadedShard, ShardStore, StoreError};
use std::path::Path;

fn engine(e: sled::Error) -> StoreError {
    StoreError::Engine(e.to_string())
}

/// One sled database per node, shared by its shards.
#[derive(Clone)]
pub struct SledDatabase {
    db: sled::Db,
    dir: std::path::PathBuf,
    /// The node's memory budget for resident twins, shared by its shards' state machines.
    budget: std::sync::Arc<radar_twin::table::MemoryBudget>,
}

/// sled's page cache by default.
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// The encoding of twins (`format.rs`) and of Raft entries (`TwinCommand`, postcard) this
/// build reads and writes. postcard has no field names, so a new field or command changes the
/// format: bump this with it. Format 1 was unmarked (before the field-interop work); format 3
/// added the layout's cluster secret (issue 13).
pub const STORAGE_FORMAT: u32 = 3;
const FORMAT_KEY: &[u8] = b"radar-storage-format";

/// Marks a new database with this build's format, and refuses one written in another, before
/// anything is decoded (a decode error deep in a shard would read as corruption).
fn check_format(db: &sled::Db) -> Result<(), StoreError> {
    let found = match db.get(FORMAT_KEY).map_err(engine)? {
        Some(v) => <[u8; 4]>::try_from(v.as_ref())
            .map(u32::from_be_bytes)
            .unwrap_or(0),
        // Only sled's default tree: a new database.
        None if db.tree_names().len() <= 1 => {
            db.insert(FORMAT_KEY, &STORAGE_FORMAT.to_be_bytes())
                .map_err(engine)?;
            db.flush().map_err(engine)?;
            return Ok(());
        }
        None => 1,
    };
    if found == STORAGE_FORMAT {
        Ok(())
    } else {
        Err(StoreError::Format {
            found,
            expected: STORAGE_FORMAT,
        })
    }
}

impl SledDatabase {
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(dir, DEFAULT_CACHE_BYTES)
    }

    /// Opens with sled's page cache capped at `cache_bytes` (it counts in the process RSS).
    pub fn open_with_cache(dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .flush_every_ms(None)
            .open()
            .map_err(engine)?;
        check_format(&db)?;
        Ok(Self {
            db,
            dir: dir.to_path_buf(),
            budget: std::sync::Arc::new(radar_twin::table::MemoryBudget::unlimited()),
        })
    }

    /// Sets the memory budget the shards opened from now on share (none by default).
    pub fn with_memory_budget(mut self, limit_bytes: u64) -> Self {
        self.budget = std::sync::Arc::new(radar_twin::table::MemoryBudget::new(limit_bytes));
        self
    }

    pub fn memory_budget(&self) -> &std::sync::Arc<radar_twin::table::MemoryBudget> {
        &self.budget
    }

    /// Makes every write so far durable.
    pub fn flush_all(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(engine)
    }

    /// The Raft log and vote of group `group`.
    pub fn raft_log(&self, group: u64) -> Result<crate::raft::log_store::SledLogStore, StoreError> {
        crate::raft::log_store::SledLogStore::open(&self.db, group)
    }

    /// The metadata group's log and state machine (the cluster layout).
    pub fn raft_meta(
        &self,
        group: u64,
    ) -> Result<
        (
            crate::raft::log_store::SledLogStore<crate::raft::meta::MetaRaft>,
            crate::raft::meta::MetaStateMachine,
        ),
        StoreError,
    > {
        crate::raft::meta::open(&self.db, group)
    }

    /// The Raft state machine of group `group`, over shard `shard`'s twins.
    pub fn raft_state_machine(
        &self,
        shard: u32,
        group: u64,
    ) -> Result<crate::raft::state_machine::ShardStateMachine, StoreError> {
        crate::raft::state_machine::ShardStateMachine::open(
            self.shard(shard)?,
            group,
            self.budget.clone(),
        )
    }

    pub fn shard(&self, shard: u32) -> Result<SledShardStore, StoreError> {
        Ok(SledShardStore {
            db: self.db.clone(),
            dir: self.dir.clone(),
            twins: self
                .db
                .open_tree(format!("shard-{shard}-twins"))
                .map_err(engine)?,
            params: self
                .db
                .open_tree(format!("shard-{shard}-params"))
                .map_err(engine)?,
            paths: self
                .db
                .open_tree(format!("shard-{shard}-paths"))
                .map_err(engine)?,
        })
    }
}

pub struct SledShardStore {
    db: sled::Db,
    /// sled's directory.
    dir: std::path::PathBuf,
    pub(crate) twins: sled::Tree,
    pub(crate) params: sled::Tree,
    paths: sled::Tree,
}

impl SledShardStore {
    pub(crate) fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Where the shard's Raft snapshots are kept (files, beside sled's own).
    pub(crate) fn snapshot_dir(&self) -> std::path::PathBuf {
        self.dir.join("raft-snapshots")
    }

    /// Removes every record of the shard (before a snapshot's twins are written). Not atomic:
    /// the caller marks the install first.
    pub(crate) fn clear(&self) -> Result<(), StoreError> {
        for tree in [&self.twins, &self.params, &self.paths] {
            tree.clear().map_err(engine)?;
        }
        Ok(())
    }

    /// Writes a batch and `extra` (e.g. the Raft state machine's applied log id) in one sled
    /// transaction: after a crash either all of it is there or none, so an entry is never applied
    /// twice nor half-applied.
    pub(crate) fn write_atomically(
        &self,
        batch: &Batch<'_>,
        extra_tree: &sled::Tree,
        extra: &[(&[u8], Vec<u8>)],
    ) -> Result<(), StoreError> {
        use sled::transaction::{ConflictableTransactionError, TransactionError};
        use sled::Transactional;
        // Deleted twins (partitions handed to another shard): their header and every chunk.
        let mut deleted: Vec<(u8, sled::IVec)> = Vec::new();
        for key in &batch.deleted {
            deleted.push((2, key.as_str().as_bytes().into()));
            let mut prefix = key.as_str().as_bytes().to_vec();
            prefix.push(crate::format::KEY_END);
            for item in self.params.scan_prefix(&prefix).keys() {
                deleted.push((1, item.map_err(engine)?));
            }
        }
        let result: Result<(), TransactionError<()>> =
            (&self.paths, &self.params, &self.twins, extra_tree).transaction(
                |(paths, params, twins, extra_tx)| {
                    for (tag, key) in &deleted {
                        match tag {
                            0 => paths.remove(key.clone())?,
                            1 => params.remove(key.clone())?,
                            _ => twins.remove(key.clone())?,
                        };
                    }
                    for (offset, template) in batch.new_templates.iter().enumerate() {
                        let id = batch.first_template_id + offset as u32;
                        paths.insert(&id.to_be_bytes(), template.as_bytes())?;
                    }
                    for twin in &batch.twins {
                        if let Some(header) = &twin.header {
                            twins.insert(twin.key.as_str().as_bytes(), header.as_slice())?;
                        }
                        for (key, value) in &twin.put {
                            params.insert(key.as_slice(), value.as_slice())?;
                        }
                        for key in &twin.removed {
                            params.remove(key.as_slice())?;
                        }
                    }
                    for (key, value) in extra {
                        extra_tx.insert(*key, value.as_slice())?;
                    }
                    Ok::<(), ConflictableTransactionError<()>>(())
                },
            );
        result.map_err(|e| StoreError::Engine(format!("{e:?}")))
    }
}

impl ShardStore for SledShardStore {
    fn load_keys(&self) -> Result<LoadedShard, StoreError> {
        let mut loaded = LoadedShard::default();
        for (i, item) in self.paths.iter().enumerate() {
            let (key, value) = item.map_err(engine)?;
            let id =
                u32::from_be_bytes(key.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                    key: format!("{key:?}"),
                    message: "path id is not 4 bytes".into(),
                })?);
            if id as usize != i {
                return Err(StoreError::Corrupt {
                    key: id.to_string(),
                    message: format!("expected path id {i}"),
                });
            }
            let template = std::str::from_utf8(&value).map_err(|e| StoreError::Corrupt {
                key: id.to_string(),
                message: e.to_string(),
            })?;
            loaded.templates.push(template.into());
        }
        loaded.keys = self.twin_keys().collect::<Result<_, _>>()?;
        Ok(loaded)
    }

    fn write(&self, batch: &Batch<'_>) -> Result<(), StoreError> {
        let mut paths = sled::Batch::default();
        for (offset, template) in batch.new_templates.iter().enumerate() {
            let id = batch.first_template_id + offset as u32;
            paths.insert(&id.to_be_bytes(), template.as_bytes());
        }
        let mut twins = sled::Batch::default();
        let mut params = sled::Batch::default();
        for twin in &batch.twins {
            if let Some(header) = &twin.header {
                twins.insert(twin.key.as_str().as_bytes(), header.as_slice());
            }
            for (key, value) in &twin.put {
                params.insert(key.as_slice(), value.as_slice());
            }
            for key in &twin.removed {
                params.remove(key.as_slice());
            }
        }
        for key in &batch.deleted {
            twins.remove(key.as_str().as_bytes());
            let mut prefix = key.as_str().as_bytes().to_vec();
            prefix.push(crate::format::KEY_END);
            for item in self.params.scan_prefix(&prefix).keys() {
                params.remove(item.map_err(engine)?);
            }
        }
        // Paths first: a twin must never reference a template that is not on disk.
        self.paths.apply_batch(paths).map_err(engine)?;
        self.params.apply_batch(params).map_err(engine)?;
        self.twins.apply_batch(twins).map_err(engine)?;
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(engine)?;
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.db.size_on_disk().map_err(engine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use radar_core::{DeviceKey, Timestamp};
    use radar_twin::{apply, ShardState, TwinCommand};

    /// A data directory of another format is refused with a message that says so, not read as
    /// corrupt twins; a new one is marked; reopening one of this format works.
    #[test]
    fn databases_carry_their_storage_format() {
        let dir = tempfile::tempdir().unwrap();
        drop(SledDatabase::open(dir.path()).unwrap());
        drop(SledDatabase::open(dir.path()).unwrap());

        // Written before formats were marked: trees with data, no marker.
        let old = tempfile::tempdir().unwrap();
        {
            let db = sled::open(old.path()).unwrap();
            db.open_tree("twins").unwrap().insert("k", "v").unwrap();
            db.flush().unwrap();
        }
        let err = reopen_error(old.path());
        assert!(
            matches!(
                err,
                StoreError::Format {
                    found: 1,
                    expected: STORAGE_FORMAT
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("cannot migrate"), "{err}");

        let newer = tempfile::tempdir().unwrap();
        {
            let db = sled::open(newer.path()).unwrap();
            db.insert(FORMAT_KEY, &99u32.to_be_bytes()).unwrap();
            db.flush().unwrap();
        }
        assert!(matches!(
            reopen_error(newer.path()),
            StoreError::Format { found: 99, .. }
        ));
    }

    /// sled's flusher may hold the directory lock briefly after a close.
    fn reopen(dir: &Path) -> SledDatabase {
        for _ in 0..50 {
            match SledDatabase::open(dir) {
                Err(StoreError::Engine(e)) if e.contains("lock") => {
                    std::thread::sleep(std::time::Duration::from_millis(100))
                }
                other => return other.unwrap(),
            }
        }
        panic!("the database stayed locked");
    }

    fn reopen_error(dir: &Path) -> StoreError {
        for _ in 0..50 {
            match SledDatabase::open(dir) {
                Err(StoreError::Engine(e)) if e.contains("lock") => {
                    std::thread::sleep(std::time::Duration::from_millis(100))
                }
                Err(e) => return e,
                Ok(_) => panic!("opened a database of another format"),
            }
        }
        panic!("the database stayed locked");
    }

    #[test]
    fn batches_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let key = DeviceKey::parse("os::000000-SN").unwrap();
        let mut state = ShardState::default();
        let cmd = TwinCommand::Inform {
            device: key.clone(),
            at: Timestamp(5),
            identity: Default::default(),
            events: vec![("1 BOOT".into(), String::new())],
            params: vec![radar_twin::ReportedParam {
                path: "Device.A.1.B".into(),
                value: "v".into(),
                ty: None,
                writable: Some(true),
            }],
        };
        apply(&mut state, &cmd).unwrap();
        {
            let db = SledDatabase::open(dir.path()).unwrap();
            let store = db.shard(0).unwrap();
            let batch = Batch {
                first_template_id: 0,
                new_templates: state.dict.templates(),
                twins: vec![crate::encode_full(&state.twins[&key]).unwrap()],
                deleted: vec![],
            };
            store.write(&batch).unwrap();
            store.flush().unwrap();
        }
        let db = reopen(dir.path());
        let loaded = db.shard(0).unwrap().load_twins().unwrap();
        assert_eq!(
            db.shard(0).unwrap().load_keys().unwrap().templates,
            state.dict.templates()
        );
        assert_eq!(loaded, vec![state.twins[&key].clone()]);
        assert!(
            db.shard(1).unwrap().load_twins().unwrap().is_empty(),
            "shards are separate"
        );
    }

    #[test]
    fn only_changes_are_written_and_removed_parameters_disappear() {
        let dir = tempfile::tempdir().unwrap();
        let key = DeviceKey::parse("os::000000-SN").unwrap();
        let mut state = ShardState::default();
        let p = |path: &str, value: &str| radar_twin::ReportedParam {
            path: path.into(),
            value: value.into(),
            ty: None,
            writable: None,
        };
        let inform = |at, params| TwinCommand::Inform {
            device: key.clone(),
            at: Timestamp(at),
            identity: Default::default(),
            events: vec![],
            params,
        };
        apply(
            &mut state,
            &inform(
                1,
                vec![
                    p("Device.Hosts.Host.1.IP", "a"),
                    p("Device.Hosts.Host.2.IP", "b"),
                    p("Device.X", "1"),
                ],
            ),
        )
        .unwrap();
        let db = SledDatabase::open(dir.path()).unwrap();
        let store = db.shard(0).unwrap();
        let write = |state: &mut ShardState, first: u32| {
            let twin = state.twins.get_mut(&key).unwrap().unwrap();
            let w = crate::encode_changes(twin).unwrap();
            let put = w.put.len();
            let templates = state.dict.templates()[first as usize..].to_vec();
            store
                .write(&Batch {
                    first_template_id: first,
                    new_templates: &templates,
                    twins: vec![w],
                    deleted: vec![],
                })
                .unwrap();
            store.flush().unwrap();
            put
        };
        assert_eq!(write(&mut state, 0), 1, "three parameters, one chunk");
        let templates = state.dict.len() as u32;
        // A periodic inform touching one parameter rewrites one chunk.
        apply(&mut state, &inform(2, vec![p("Device.X", "2")])).unwrap();
        assert_eq!(write(&mut state, templates), 1);
        // Rediscovery without Host.1 deletes its record.
        let names = vec![
            ("Device.Hosts.Host.2.IP".to_string(), false),
            ("Device.X".to_string(), true),
        ];
        apply(
            &mut state,
            &TwinCommand::ReportNames {
                device: key.clone(),
                at: Timestamp(3),
                prefix: "Device.".into(),
                names,
            },
        )
        .unwrap();
        write(&mut state, templates);
        let loaded = db.shard(0).unwrap().load_twins().unwrap();
        assert_eq!(loaded, vec![state.twins[&key].clone()]);
        let paths: Vec<String> = loaded[0]
            .params
            .iter()
            .map(|(id, _)| state.dict.render(id))
            .collect();
        assert_eq!(paths.len(), 2);
        assert!(
            !paths.contains(&"Device.Hosts.Host.1.IP".to_string()),
            "{paths:?}"
        );
    }
}
