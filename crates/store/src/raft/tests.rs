//! openraft's own storage test suite, plus what it does not cover: normal entries applied to
//! twins, snapshots carrying twins to another replica, and crash/reopen keeping what was
//! flushed.

use super::log_store::SledLogStore;
use super::meta::{MetaRaft, MetaStateMachine};
use super::state_machine::ShardStateMachine;
use super::{ShardRaft, StorageError, TwinBatch};
use crate::SledDatabase;
use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftLogReader, RaftSnapshotBuilder};
use radar_core::{DeviceKey, Timestamp};
use radar_core::{LayoutCommand, NodeInfo};
use radar_twin::command::{Identity, ReportedParam};
use radar_twin::TwinCommand;
use tempfile::TempDir;

struct Builder;

impl StoreBuilder<ShardRaft, SledLogStore, ShardStateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, SledLogStore, ShardStateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = SledDatabase::open(dir.path()).expect("open");
        let log = db.raft_log(7).expect("log");
        let sm = db.raft_state_machine(0, 7).expect("state machine");
        Ok((dir, log, sm))
    }
}

#[test]
fn passes_openraft_storage_suite() {
    Suite::test_all(Builder).unwrap();
}

/// The redb log (B8's alternative) with the same state machine.
struct RedbBuilder;

impl StoreBuilder<ShardRaft, super::redb_log::RedbLogStore, ShardStateMachine, TempDir>
    for RedbBuilder
{
    async fn build(
        &self,
    ) -> Result<(TempDir, super::redb_log::RedbLogStore, ShardStateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = SledDatabase::open(&dir.path().join("sled")).expect("open");
        let logs = super::redb_log::RedbLogs::open(dir.path()).expect("redb");
        let sm = db.raft_state_machine(0, 7).expect("state machine");
        Ok((dir, logs.group(7), sm))
    }
}

#[test]
fn redb_log_passes_openraft_storage_suite() {
    Suite::test_all(RedbBuilder).unwrap();
}

struct MetaBuilder;

impl StoreBuilder<MetaRaft, SledLogStore<MetaRaft>, MetaStateMachine, TempDir> for MetaBuilder {
    async fn build(
        &self,
    ) -> Result<(TempDir, SledLogStore<MetaRaft>, MetaStateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = SledDatabase::open(dir.path()).expect("open");
        let (log, sm) = db.raft_meta(0).expect("meta group");
        Ok((dir, log, sm))
    }
}

#[test]
fn metadata_group_passes_openraft_storage_suite() {
    Suite::test_all(MetaBuilder).unwrap();
}

#[tokio::test]
async fn metadata_group_applies_layout_commands_and_keeps_them_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = SledDatabase::open(dir.path()).unwrap();
        let (_log, mut sm) = db.raft_meta(0).unwrap();
        let mut layout = sm.subscribe();
        let entries = [1u64, 2, 3]
            .into_iter()
            .map(|id| {
                LayoutCommand::RegisterNode(NodeInfo {
                    id,
                    ..Default::default()
                })
            })
            .chain([LayoutCommand::Init {
                partitions: 64,
                shards: 3,
                replicas: 3,
                cluster_secret: "s".into(),
            }])
            .enumerate()
            .map(|(i, command)| Entry {
                log_id: log_id(1, i as u64 + 1),
                payload: EntryPayload::Normal(command),
            });
        let outcomes = sm.apply(entries).await.unwrap();
        assert_eq!(outcomes.last().unwrap().0, Ok(4));
        assert!(layout.has_changed().unwrap());
        assert_eq!(layout.borrow_and_update().shards.len(), 3);
        db.flush_all().unwrap();
    }
    let db = reopen(dir.path());
    let (_log, mut sm) = db.raft_meta(0).unwrap();
    assert_eq!(sm.applied_state().await.unwrap().0, Some(log_id(1, 4)));
    let layout = sm.subscribe().borrow().clone();
    assert_eq!(layout.version, 4);
    assert_eq!(layout.shards[2].voters, vec![3, 1, 2]);
}

/// Reopens a database just closed in this process: sled's background flusher may hold the
/// directory lock for a moment after the last handle is dropped.
pub(super) fn reopen(dir: &std::path::Path) -> SledDatabase {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match SledDatabase::open(dir) {
            Ok(db) => return db,
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("reopen {}: {e}", dir.display()),
        }
    }
}

fn log_id(term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn inform(serial: &str, version: &str) -> TwinCommand {
    TwinCommand::Inform {
        device: DeviceKey::from_oui_serial("00D09E", serial).unwrap(),
        at: Timestamp(1),
        identity: Identity {
            oui: "00D09E".into(),
            product_class: "HG".into(),
            serial: serial.into(),
            manufacturer: "Acme".into(),
        },
        events: vec![("1 BOOT".into(), String::new())],
        params: vec![ReportedParam {
            path: "Device.DeviceInfo.SoftwareVersion".into(),
            value: version.into(),
            ty: None,
            writable: Some(false),
        }],
    }
}

fn normal(index: u64, commands: Vec<TwinCommand>) -> Entry<ShardRaft> {
    Entry {
        log_id: log_id(1, index),
        payload: EntryPayload::Normal(TwinBatch {
            commands,
            control: Vec::new(),
        }),
    }
}

fn version_of(sm: &ShardStateMachine, serial: &str) -> Option<String> {
    let state = sm.state.read().unwrap();
    let key = DeviceKey::from_oui_serial("00D09E", serial).unwrap();
    state
        .twins
        .get(&key)
        .unwrap()
        .map(|t| t.meta.software_version.clone())
}

#[tokio::test]
async fn applied_batches_are_checkpointed_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = SledDatabase::open(dir.path()).unwrap();
        let mut sm = db.raft_state_machine(0, 1).unwrap();
        let out = sm
            .apply([
                normal(1, vec![inform("A", "1.0"), inform("B", "1.0")]),
                normal(2, vec![inform("A", "2.0")]),
            ])
            .await
            .unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].results.len(), 2);
        assert_eq!(version_of(&sm, "A").as_deref(), Some("2.0"));
        db.flush_all().unwrap();
    }
    // Not checkpointed yet: storage is still at the start and says so, so openraft re-applies
    // both entries from the log.
    let db = reopen(dir.path());
    let mut sm = db.raft_state_machine(0, 1).unwrap();
    assert_eq!(sm.applied_state().await.unwrap().0, None);
    assert_eq!(version_of(&sm, "A"), None);
    sm.apply([
        normal(1, vec![inform("A", "1.0"), inform("B", "1.0")]),
        normal(2, vec![inform("A", "2.0")]),
    ])
    .await
    .unwrap();
    // Once the checkpoint interval has passed, the next apply writes everything so far.
    tokio::time::sleep(super::state_machine::CHECKPOINT_INTERVAL).await;
    sm.apply([normal(3, vec![inform("C", "3.0")])])
        .await
        .unwrap();
    db.flush_all().unwrap();
    drop(sm);
    drop(db);
    let db = reopen(dir.path());
    let mut sm = db.raft_state_machine(0, 1).unwrap();
    assert_eq!(sm.applied_state().await.unwrap().0, Some(log_id(1, 3)));
    assert_eq!(version_of(&sm, "A").as_deref(), Some("2.0"));
    assert_eq!(version_of(&sm, "B").as_deref(), Some("1.0"));
    assert_eq!(version_of(&sm, "C").as_deref(), Some("3.0"));
    // A snapshot checkpoints first, so the log it lets openraft purge is never needed again.
    sm.apply([normal(4, vec![inform("A", "4.0")])])
        .await
        .unwrap();
    drop(sm.get_snapshot_builder().await);
    db.flush_all().unwrap();
    drop(sm);
    drop(db);
    let db = reopen(dir.path());
    let mut sm = db.raft_state_machine(0, 1).unwrap();
    assert_eq!(sm.applied_state().await.unwrap().0, Some(log_id(1, 4)));
    assert_eq!(version_of(&sm, "A").as_deref(), Some("4.0"));
}

#[tokio::test]
async fn snapshots_carry_twins_to_another_replica() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a_db = SledDatabase::open(a_dir.path()).unwrap();
    let mut a = a_db.raft_state_machine(0, 1).unwrap();
    a.apply([normal(1, vec![inform("A", "3.1"), inform("C", "0.9")])])
        .await
        .unwrap();
    a_db.flush_all().unwrap();
    let snapshot = a
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    {
        let b_db = SledDatabase::open(b_dir.path()).unwrap();
        let mut b = b_db.raft_state_machine(0, 1).unwrap();
        // B had a twin of its own that the snapshot does not know: it must go.
        b.apply([normal(1, vec![inform("Z", "9")])]).await.unwrap();
        b.install_snapshot(&snapshot.meta, snapshot.snapshot)
            .await
            .unwrap();
        assert_eq!(version_of(&b, "A").as_deref(), Some("3.1"));
        assert_eq!(version_of(&b, "Z"), None);
    }
    let b_db = reopen(b_dir.path());
    let mut b = b_db.raft_state_machine(0, 1).unwrap();
    assert_eq!(version_of(&b, "C").as_deref(), Some("0.9"));
    assert_eq!(version_of(&b, "Z"), None);
    assert_eq!(b.applied_state().await.unwrap().0, Some(log_id(1, 1)));
    assert!(b.get_current_snapshot().await.unwrap().is_some());
    assert!(
        b_dir
            .path()
            .join("raft-snapshots/group-1.snapshot")
            .is_file(),
        "the installed snapshot is kept as a file"
    );
}

/// A snapshot `a` built of twins A (3.1) and C (0.9) at entry 1, and its file.
async fn built_snapshot(
    dir: &std::path::Path,
) -> (openraft::Snapshot<ShardRaft>, std::path::PathBuf) {
    let db = SledDatabase::open(dir).unwrap();
    let mut a = db.raft_state_machine(0, 1).unwrap();
    a.apply([normal(1, vec![inform("A", "3.1"), inform("C", "0.9")])])
        .await
        .unwrap();
    let snapshot = a
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    (snapshot, dir.join("raft-snapshots/group-1.snapshot"))
}

/// A replica that applied Z (entry 1) and Y (entry 2), both checkpointed.
async fn replica_with_z_and_y(dir: &std::path::Path) -> (SledDatabase, ShardStateMachine) {
    let db = SledDatabase::open(dir).unwrap();
    let mut b = db.raft_state_machine(0, 1).unwrap();
    b.apply([normal(1, vec![inform("Z", "9")])]).await.unwrap();
    tokio::time::sleep(super::state_machine::CHECKPOINT_INTERVAL).await;
    b.apply([normal(2, vec![inform("Y", "8")])]).await.unwrap();
    (db, b)
}

/// Installing writes twins in batches, not one transaction: a node that crashed with the
/// shard half replaced (here: the install marked, the received file staged, every record
/// gone) finishes the install when it opens, and comes up at the snapshot's state.
#[tokio::test]
async fn an_install_cut_short_by_a_crash_is_finished_at_open() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_snapshot, file) = built_snapshot(a_dir.path()).await;
    {
        let (db, b) = replica_with_z_and_y(b_dir.path()).await;
        db.flush_all().unwrap();
        assert_eq!(version_of(&b, "Z").as_deref(), Some("9"));
        // The crash: staged and marked, then the shard's records cleared.
        std::fs::copy(
            &file,
            b_dir.path().join("raft-snapshots/group-1.installing"),
        )
        .unwrap();
        b.sm_tree().insert(b"installing", &[]).unwrap();
        db.shard(0).unwrap().clear().unwrap();
        db.flush_all().unwrap();
    }
    let db = reopen(b_dir.path());
    let mut b = db.raft_state_machine(0, 1).unwrap();
    assert_eq!(b.applied_state().await.unwrap().0, Some(log_id(1, 1)));
    assert_eq!(version_of(&b, "A").as_deref(), Some("3.1"));
    assert_eq!(version_of(&b, "C").as_deref(), Some("0.9"));
    assert_eq!(version_of(&b, "Z"), None);
    let current = b.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta.last_log_id, Some(log_id(1, 1)));
    assert!(!b_dir
        .path()
        .join("raft-snapshots/group-1.installing")
        .exists());
    // Finished: the marker is gone, so the next open does not install again.
    b.apply([normal(2, vec![inform("A", "3.2")])])
        .await
        .unwrap();
    drop(b.get_snapshot_builder().await);
    db.flush_all().unwrap();
    drop(b);
    drop(db);
    let db = reopen(b_dir.path());
    let b = db.raft_state_machine(0, 1).unwrap();
    assert_eq!(version_of(&b, "A").as_deref(), Some("3.2"));
}

/// A damaged received file is refused before anything of the shard is touched.
#[tokio::test]
async fn a_damaged_snapshot_file_installs_nothing() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (snapshot, file) = built_snapshot(a_dir.path()).await;
    {
        let (db, mut b) = replica_with_z_and_y(b_dir.path()).await;
        let mut received = b.begin_receiving_snapshot().await.unwrap();
        let mut bytes = std::fs::read(&file).unwrap();
        bytes.truncate(bytes.len() - 3);
        tokio::io::AsyncWriteExt::write_all(&mut received, &bytes)
            .await
            .unwrap();
        let err = b.install_snapshot(&snapshot.meta, received).await;
        assert!(err.is_err());
        assert_eq!(version_of(&b, "Z").as_deref(), Some("9"));
        db.flush_all().unwrap();
    }
    let db = reopen(b_dir.path());
    let mut b = db.raft_state_machine(0, 1).unwrap();
    assert_eq!(b.applied_state().await.unwrap().0, Some(log_id(1, 2)));
    assert_eq!(version_of(&b, "Z").as_deref(), Some("9"));
    assert_eq!(version_of(&b, "A"), None);
    assert!(b.get_current_snapshot().await.unwrap().is_none());
}

/// Builds before snapshot files kept the snapshot as one sled value: it becomes a file at open,
/// and installs like any other.
#[tokio::test]
async fn a_snapshot_kept_in_sled_by_an_older_build_moves_to_a_file() {
    #[derive(serde::Serialize)]
    struct Legacy {
        meta: openraft::SnapshotMeta<u64, openraft::BasicNode>,
        data: Vec<u8>,
    }
    let (a_dir, b_dir, c_dir) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let (snapshot, file) = built_snapshot(a_dir.path()).await;
    // The old body: the applied state and templates, the count, the twins, unframed.
    let (head, twins) =
        super::snapshot_file::SnapshotReader::open::<super::state_machine::Applied>(&file).unwrap();
    let mut data = postcard::to_allocvec(&(head.applied, head.templates)).unwrap();
    data = postcard::to_extend(&(head.twins as usize), data).unwrap();
    for twin in twins {
        data = postcard::to_extend(&twin.unwrap(), data).unwrap();
    }
    {
        let db = SledDatabase::open(b_dir.path()).unwrap();
        let b = db.raft_state_machine(0, 1).unwrap();
        let legacy = Legacy {
            meta: snapshot.meta.clone(),
            data,
        };
        b.sm_tree()
            .insert(b"snapshot", postcard::to_allocvec(&legacy).unwrap())
            .unwrap();
        db.flush_all().unwrap();
    }
    let db = reopen(b_dir.path());
    let mut b = db.raft_state_machine(0, 1).unwrap();
    let migrated = b.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(migrated.meta, snapshot.meta);
    assert!(b.sm_tree().get(b"snapshot").unwrap().is_none());
    let c_db = SledDatabase::open(c_dir.path()).unwrap();
    let mut c = c_db.raft_state_machine(0, 1).unwrap();
    let mut received = c.begin_receiving_snapshot().await.unwrap();
    let mut sent = migrated.snapshot;
    tokio::io::copy(&mut sent, &mut received).await.unwrap();
    c.install_snapshot(&migrated.meta, received).await.unwrap();
    assert_eq!(version_of(&c, "A").as_deref(), Some("3.1"));
    assert_eq!(version_of(&c, "C").as_deref(), Some("0.9"));
}

#[tokio::test]
async fn appended_entries_and_the_vote_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = SledDatabase::open(dir.path()).unwrap();
        let mut log = db.raft_log(3).unwrap();
        log.save_vote(&openraft::Vote::new(2, 1)).await.unwrap();
        // `append` reports entries durable only after the flush; wait for that, as openraft does.
        log.blocking_append([
            normal(1, vec![inform("A", "1")]),
            normal(2, vec![inform("B", "1")]),
        ])
        .await
        .unwrap();
    }
    let db = SledDatabase::open(dir.path()).unwrap();
    let mut log = db.raft_log(3).unwrap();
    assert_eq!(
        log.read_vote().await.unwrap(),
        Some(openraft::Vote::new(2, 1))
    );
    let entries = log.try_get_log_entries(0..10).await.unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(
        log.get_log_state().await.unwrap().last_log_id,
        Some(log_id(1, 2))
    );
}

#[tokio::test]
async fn a_freeze_and_a_release_are_stored_the_released_twins_deleted_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let serials: Vec<String> = (0..30).map(|i| format!("M{i}")).collect();
    let partition = |serial: &str| {
        let key = DeviceKey::from_oui_serial("00D09E", serial).unwrap();
        radar_core::partition_of(key.as_str(), 16).0
    };
    let moving = partition(&serials[0]);
    let moved: Vec<&String> = serials.iter().filter(|s| partition(s) == moving).collect();
    let control = |index: u64, control: radar_twin::ShardControl| Entry {
        log_id: log_id(1, index),
        payload: EntryPayload::Normal(TwinBatch {
            commands: Vec::new(),
            control: vec![control],
        }),
    };
    {
        let db = SledDatabase::open(dir.path()).unwrap();
        let mut sm = db.raft_state_machine(0, 1).unwrap();
        let informs = serials.iter().map(|s| inform(s, "1.0")).collect();
        sm.apply([normal(1, informs)]).await.unwrap();
        let freeze = radar_twin::ShardControl::Freeze {
            partition_count: 16,
            partitions: vec![moving],
        };
        sm.apply([control(2, freeze)]).await.unwrap();
        // The frozen partition refuses writes; the freeze is checkpointed with the twins.
        let refused = sm
            .apply([normal(3, vec![inform(moved[0], "2.0")])])
            .await
            .unwrap();
        assert!(refused[0].results[0].is_err());
        drop(sm.get_snapshot_builder().await);
        db.flush_all().unwrap();
    }
    let db = reopen(dir.path());
    let mut sm = db.raft_state_machine(0, 1).unwrap();
    assert_eq!(version_of(&sm, moved[0]).as_deref(), Some("1.0"));
    let refused = sm
        .apply([normal(4, vec![inform(moved[0], "2.0")])])
        .await
        .unwrap();
    assert!(refused[0].results[0].is_err(), "the freeze survived reopen");
    let release = radar_twin::ShardControl::Release {
        partitions: vec![moving],
    };
    sm.apply([control(5, release)]).await.unwrap();
    drop(sm.get_snapshot_builder().await);
    db.flush_all().unwrap();
    drop(sm);
    drop(db);
    let db = reopen(dir.path());
    let sm = db.raft_state_machine(0, 1).unwrap();
    for serial in &serials {
        let expected = (partition(serial) != moving).then(|| "1.0".to_string());
        assert_eq!(version_of(&sm, serial), expected, "{serial}");
    }
}

/// With a budget smaller than one twin, twins are evicted at every checkpoint: commands to
/// cold twins read them back, a restart after an unflushed checkpoint re-applies exactly what
/// is missing, and a snapshot built from mostly cold twins installs on a replica whose twins
/// all start cold, which then applies to them.
#[tokio::test]
async fn a_tiny_memory_budget_loses_nothing() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let serials: Vec<String> = (0..40).map(|i| format!("T{i}")).collect();
    let a_db = SledDatabase::open(a_dir.path())
        .unwrap()
        .with_memory_budget(1);
    let mut a = a_db.raft_state_machine(0, 1).unwrap();
    for (round, version) in ["1.0", "2.0", "3.0"].iter().enumerate() {
        for (i, chunk) in serials.chunks(8).enumerate() {
            let index = (round * 5 + i + 1) as u64;
            let informs = chunk.iter().map(|s| inform(s, version)).collect();
            a.apply([normal(index, informs)]).await.unwrap();
        }
    }
    let stats = a_db.memory_budget().stats.clone();
    assert!(stats.loaded() <= 1, "{} resident", stats.loaded());
    assert!(stats.evictions.load(std::sync::atomic::Ordering::Relaxed) >= 80);
    assert!(stats.misses.load(std::sync::atomic::Ordering::Relaxed) >= 80);
    for serial in &serials {
        assert_eq!(version_of(&a, serial).as_deref(), Some("3.0"), "{serial}");
    }
    a_db.flush_all().unwrap();
    let snapshot = a
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let installed_at = snapshot.meta.last_log_id;
    assert_eq!(installed_at, Some(log_id(1, 15)));
    {
        let b_db = SledDatabase::open(b_dir.path())
            .unwrap()
            .with_memory_budget(1);
        let mut b = b_db.raft_state_machine(0, 1).unwrap();
        {
            // As the node does at open: the meta fields indexed.
            let mut state = b.state.write().unwrap();
            state.index = radar_twin::index::FieldIndex::build(&[], &state).unwrap();
        }
        b.install_snapshot(&snapshot.meta, snapshot.snapshot)
            .await
            .unwrap();
        assert_eq!(b_db.memory_budget().stats.loaded(), 0, "installed cold");
        for serial in &serials {
            assert_eq!(version_of(&b, serial).as_deref(), Some("3.0"), "{serial}");
        }
        let query = radar_twin::query::parse("software_version = \"3.0\"").unwrap();
        let matching = b.state.read().unwrap().index.exact(&query).map(|s| s.len());
        assert_eq!(
            matching,
            Some(serials.len() as u64),
            "the index holds the installed twins"
        );
        // Catch-up after the snapshot: entries to cold twins.
        b.apply([normal(20, vec![inform("T7", "4.0")])])
            .await
            .unwrap();
        assert_eq!(version_of(&b, "T7").as_deref(), Some("4.0"));
        assert_eq!(version_of(&b, "T8").as_deref(), Some("3.0"));
        // Not flushed: a crash here loses entry 20's checkpoint, which the log re-applies.
    }
    let b_db = reopen(b_dir.path());
    let mut b = b_db.raft_state_machine(0, 1).unwrap();
    let applied = b.applied_state().await.unwrap().0;
    assert!(
        applied == Some(log_id(1, 20)) || applied == installed_at,
        "{applied:?}"
    );
    if applied == installed_at {
        b.apply([normal(20, vec![inform("T7", "4.0")])])
            .await
            .unwrap();
    }
    assert_eq!(version_of(&b, "T7").as_deref(), Some("4.0"));
    for serial in serials.iter().filter(|s| *s != "T7") {
        assert_eq!(version_of(&b, serial).as_deref(), Some("3.0"), "{serial}");
    }
}
