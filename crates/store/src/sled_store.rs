//! sled 0.34 implementation of [`ShardStore`]. A write is durable only after `flush` (sled's
//! background fsync runs every 500 ms, far too late to acknowledge a device), so the node flushes
//! each group commit before it answers anyone.

use crate::{Batch, LoadedShard, ShardStore, StoreError};
use radar_twin::Twin;
use std::path::Path;

fn engine(e: sled::Error) -> StoreError {
    StoreError::Engine(e.to_string())
}

/// One sled database per node, shared by its shards.
#[derive(Clone)]
pub struct SledDatabase {
    db: sled::Db,
}

impl SledDatabase {
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(64 * 1024 * 1024)
            .flush_every_ms(None)
            .open()
            .map_err(engine)?;
        Ok(Self { db })
    }

    pub fn shard(&self, shard: u32) -> Result<SledShardStore, StoreError> {
        Ok(SledShardStore {
            db: self.db.clone(),
            twins: self
                .db
                .open_tree(format!("shard-{shard}-twins"))
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
    twins: sled::Tree,
    paths: sled::Tree,
}

impl ShardStore for SledShardStore {
    fn load(&self) -> Result<LoadedShard, StoreError> {
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
        for item in self.twins.iter() {
            let (key, value) = item.map_err(engine)?;
            let twin: Twin = postcard::from_bytes(&value).map_err(|e| StoreError::Corrupt {
                key: String::from_utf8_lossy(&key).into_owned(),
                message: e.to_string(),
            })?;
            loaded.twins.push(twin);
        }
        Ok(loaded)
    }

    fn write(&self, batch: &Batch<'_>) -> Result<(), StoreError> {
        let mut paths = sled::Batch::default();
        for (offset, template) in batch.new_templates.iter().enumerate() {
            let id = batch.first_template_id + offset as u32;
            paths.insert(&id.to_be_bytes(), template.as_bytes());
        }
        let mut twins = sled::Batch::default();
        for twin in &batch.twins {
            twins.insert(twin.key.as_str().as_bytes(), twin.bytes.as_slice());
        }
        for key in &batch.deleted {
            twins.remove(key.as_str().as_bytes());
        }
        // Paths first: a twin must never reference a template that is not on disk.
        self.paths.apply_batch(paths).map_err(engine)?;
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
                twins: vec![crate::encode_twin(&state.twins[&key]).unwrap()],
                deleted: vec![],
            };
            store.write(&batch).unwrap();
            store.flush().unwrap();
        }
        let db = SledDatabase::open(dir.path()).unwrap();
        let loaded = db.shard(0).unwrap().load().unwrap();
        assert_eq!(loaded.templates, state.dict.templates());
        assert_eq!(loaded.twins, vec![state.twins[&key].clone()]);
        assert!(
            db.shard(1).unwrap().load().unwrap().twins.is_empty(),
            "shards are separate"
        );
    }
}
