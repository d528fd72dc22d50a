//! Indexes operators add while the node runs (`POST /api/v1/indexes`): carriers query by their
//! own fields (a customer id their OSS writes, a region, a line profile). The field is added to
//! every shard replica on this node at once, `apply` keeps it current from then on, and a
//! background pass adds every other twin a few hundred at a time (cold ones read from disk),
//! then marks it ready; queries use it only once it is (see `FieldIndex::add_field`). Added
//! fields are kept in `<data dir>/indexed-paths.json` and indexed at every start after, with
//! the configured `[twin] indexed_paths`.

use crate::shard::Shard;
use radar_core::DeviceKey;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tracing::{info, warn};

const FILE: &str = "indexed-paths.json";
/// Twins indexed per hold of a shard's state lock: short enough that applies barely wait.
const STEP: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum IndexAdminError {
    #[error("{0:?} is not an indexable field: give a parameter path (Device.… or InternetGatewayDevice.…, no wildcard, not ending in '.') or a meta field ({1})")]
    NotIndexable(String, String),
    #[error("storing the added index: {0}")]
    Io(#[from] std::io::Error),
}

/// A field's build on this node.
#[derive(Debug, Clone, Serialize)]
pub struct Build {
    pub field: String,
    /// `building`, `ready` or `failed`.
    pub state: &'static str,
    pub twins_done: u64,
    pub twins_total: u64,
    pub error: Option<String>,
}

struct Progress {
    done: AtomicU64,
    total: AtomicU64,
    outcome: Mutex<Option<Result<(), String>>>,
}

pub struct IndexAdmin {
    file: PathBuf,
    builds: Mutex<BTreeMap<String, Arc<Progress>>>,
}

/// Fields added online on an earlier run.
pub fn added_fields(data_dir: &Path) -> Vec<String> {
    std::fs::read(data_dir.join(FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

fn indexable(field: &str) -> bool {
    let is_path = (field.starts_with("Device.") || field.starts_with("InternetGatewayDevice."))
        && !field.ends_with('.')
        && !field.contains(['*', ' ', '"', '{', '}'])
        && field.len() <= 256;
    is_path || radar_twin::index::INDEXED_META_FIELDS.contains(&field)
}

impl IndexAdmin {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            file: data_dir.join(FILE),
            builds: Mutex::new(BTreeMap::new()),
        }
    }

    /// Starts indexing `field` on every replica `shards` holds; answers at once with the
    /// build's state (already `ready` when every replica indexes it).
    pub fn add(
        self: &Arc<Self>,
        field: &str,
        shards: Vec<Arc<Shard>>,
    ) -> Result<Build, IndexAdminError> {
        if !indexable(field) {
            return Err(IndexAdminError::NotIndexable(
                field.to_owned(),
                radar_twin::index::INDEXED_META_FIELDS.join(", "),
            ));
        }
        if let Some(build) = self.status(field) {
            if build.state != "failed" {
                return Ok(build);
            }
        }
        self.remember(field)?;
        let progress = Arc::new(Progress {
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            outcome: Mutex::new(None),
        });
        self.builds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(field.to_owned(), progress.clone());
        let name = field.to_owned();
        let field = field.to_owned();
        let running = progress.clone();
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let outcome = shards
                .iter()
                .try_for_each(|shard| build_on(shard, &field, &running));
            match &outcome {
                Ok(()) => info!(
                    field,
                    twins = running.done.load(Ordering::Relaxed),
                    seconds = started.elapsed().as_secs_f64(),
                    "index built"
                ),
                Err(e) => warn!(field, error = %e, "index build failed"),
            }
            *running.outcome.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
        });
        Ok(self.status_of(&progress, name))
    }

    /// The state of every field added on this node since it started.
    pub fn builds(&self) -> Vec<Build> {
        let builds = self.builds.lock().unwrap_or_else(|e| e.into_inner());
        builds
            .iter()
            .map(|(field, p)| self.status_of(p, field.clone()))
            .collect()
    }

    pub fn status(&self, field: &str) -> Option<Build> {
        let builds = self.builds.lock().unwrap_or_else(|e| e.into_inner());
        builds
            .get(field)
            .map(|p| self.status_of(p, field.to_owned()))
    }

    fn status_of(&self, progress: &Progress, field: String) -> Build {
        let outcome = progress
            .outcome
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Build {
            field,
            state: match &outcome {
                None => "building",
                Some(Ok(())) => "ready",
                Some(Err(_)) => "failed",
            },
            twins_done: progress.done.load(Ordering::Relaxed),
            twins_total: progress.total.load(Ordering::Relaxed),
            error: outcome.and_then(|o| o.err()),
        }
    }

    /// Adds `field` to the file of added fields (written whole, then renamed into place).
    fn remember(&self, field: &str) -> std::io::Result<()> {
        let dir = self.file.parent().unwrap_or(Path::new("."));
        let mut fields = added_fields(dir);
        if fields.iter().any(|f| f == field) {
            return Ok(());
        }
        fields.push(field.to_owned());
        let temporary = self.file.with_extension("json.tmp");
        std::fs::write(&temporary, serde_json::to_vec_pretty(&fields)?)?;
        std::fs::rename(&temporary, &self.file)
    }
}

/// Builds `field` on one replica (see the module comment).
fn build_on(shard: &Shard, field: &str, progress: &Progress) -> Result<(), String> {
    if !shard.with_state_mut(|state| state.index.add_field(field)) {
        // Indexed already (configured, or added before): nothing to build.
        return Ok(());
    }
    let keys: Vec<DeviceKey> = shard.read().twins.keys().cloned().collect();
    progress
        .total
        .fetch_add(keys.len() as u64, Ordering::Relaxed);
    for chunk in keys.chunks(STEP) {
        shard.with_state_mut(|state| {
            let radar_twin::ShardState {
                twins, index, dict, ..
            } = state;
            for key in chunk {
                let Some(number) = twins.number(key) else {
                    continue; // removed since
                };
                let twin = twins
                    .get(key)
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("twin {key} vanished"))?;
                index.add_twin_value(field, number, &twin, dict);
            }
            Ok::<(), String>(())
        })?;
        progress
            .done
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
    }
    shard.with_state_mut(|state| state.index.mark_ready(field));
    Ok(())
}
