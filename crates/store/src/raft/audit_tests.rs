//! Audit records in a shard's Raft state machine: committed with their change, kept across a
//! checkpoint and a reopen, carried by snapshots, filtered and paged, trimmed.

use super::audit_log::AuditFilter;
use super::state_machine::ShardStateMachine;
use super::{ShardRaft, TwinBatch};
use crate::SledDatabase;
use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftSnapshotBuilder};
use radar_core::{DeviceKey, Timestamp};
use radar_twin::audit::AuditRecord;
use radar_twin::command::{AuditedCommand, Identity};
use radar_twin::{ApplyError, TwinCommand};

fn key(serial: &str) -> DeviceKey {
    DeviceKey::from_oui_serial("00D09E", serial).unwrap()
}

fn entry(index: u64, commands: Vec<TwinCommand>) -> Entry<ShardRaft> {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(TwinBatch {
            commands,
            control: Vec::new(),
        }),
    }
}

fn record(at: u64, actor: &str, device: &str) -> Box<AuditRecord> {
    Box::new(AuditRecord {
        at: Timestamp(at),
        actor: actor.into(),
        role: "operator".into(),
        method: "POST".into(),
        route: "/api/v1/devices/{id}/operations".into(),
        device: device.into(),
        ..Default::default()
    })
}

fn audited(at: u64, actor: &str, serial: &str, command: TwinCommand) -> TwinCommand {
    TwinCommand::Audited {
        record: record(at, actor, key(serial).as_str()),
        command: AuditedCommand(Box::new(command)),
    }
}

fn event(serial: &str, at: u64) -> TwinCommand {
    TwinCommand::RecordEvent {
        device: key(serial),
        at: Timestamp(at),
        kind: "note".into(),
        detail: "x".into(),
    }
}

fn inform(serial: &str) -> TwinCommand {
    TwinCommand::Inform {
        device: key(serial),
        at: Timestamp(1),
        identity: Identity::default(),
        events: Vec::new(),
        params: Vec::new(),
    }
}

fn all(sm: &ShardStateMachine) -> Vec<(String, String)> {
    let page = sm
        .audit_reader()
        .read(&AuditFilter {
            limit: 100,
            max_scanned: 1000,
            ..Default::default()
        })
        .unwrap();
    page.records
        .into_iter()
        .map(|(_, r)| (r.actor, r.result))
        .collect()
}

/// A that informed, then: alice's audited event on A (entry 2), bob's record alone and
/// carol's audited event on an unknown device (entry 3).
async fn audited_replica(db: &SledDatabase) -> ShardStateMachine {
    let mut sm = db.raft_state_machine(0, 1).unwrap();
    let out = sm
        .apply([
            entry(1, vec![inform("A")]),
            entry(2, vec![audited(10, "alice", "A", event("A", 10))]),
            entry(
                3,
                vec![
                    TwinCommand::Audit {
                        key: key("A"),
                        record: record(20, "bob", ""),
                    },
                    audited(30, "carol", "B", event("B", 30)),
                ],
            ),
        ])
        .await
        .unwrap();
    assert_eq!(out[2].results[1], Err(ApplyError::UnknownDevice(key("B"))));
    sm
}

#[tokio::test]
async fn records_commit_with_their_change_and_travel_in_snapshots() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a_db = SledDatabase::open(a_dir.path()).unwrap();
    let mut a = audited_replica(&a_db).await;
    let expected = vec![
        (
            "carol".to_owned(),
            format!("device {} has no twin", key("B")),
        ),
        ("bob".to_owned(), String::new()),
        ("alice".to_owned(), "ok".to_owned()),
    ];
    // Read before any checkpoint (from memory), and the device's history shows its record.
    assert_eq!(all(&a), expected);
    {
        let state = a.state.read().unwrap();
        let twin = state.twins.get(&key("A")).unwrap().unwrap();
        let line = twin.events.iter().find(|e| e.kind == "audit").unwrap();
        assert!(line.detail.starts_with("alice (operator) POST"), "{line:?}");
    }
    let snapshot = a
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    assert_eq!(all(&a), expected, "written by the checkpoint");
    a_db.flush_all().unwrap();

    let b_db = SledDatabase::open(b_dir.path()).unwrap();
    let mut b = b_db.raft_state_machine(0, 1).unwrap();
    b.apply([entry(
        1,
        vec![TwinCommand::Audit {
            key: key("Z"),
            record: record(5, "mallory", ""),
        }],
    )])
    .await
    .unwrap();
    drop(b.get_snapshot_builder().await);
    b.install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await
        .unwrap();
    assert_eq!(all(&b), expected, "the snapshot's records replace B's own");
    b_db.flush_all().unwrap();
    drop(b);
    drop(b_db);
    let b_db = super::tests::reopen(b_dir.path());
    let b = b_db.raft_state_machine(0, 1).unwrap();
    assert_eq!(all(&b), expected);
}

#[tokio::test]
async fn records_not_checkpointed_come_back_when_their_entries_apply_again() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = SledDatabase::open(dir.path()).unwrap();
        let sm = audited_replica(&db).await;
        assert_eq!(all(&sm).len(), 3);
        db.flush_all().unwrap();
    }
    let db = super::tests::reopen(dir.path());
    let mut sm = db.raft_state_machine(0, 1).unwrap();
    assert!(all(&sm).is_empty(), "nothing was checkpointed");
    assert_eq!(sm.applied_state().await.unwrap().0, None);
    drop(sm);
    let sm = audited_replica(&db).await;
    assert_eq!(all(&sm).len(), 3);
}

#[tokio::test]
async fn reads_filter_page_and_trim() {
    let dir = tempfile::tempdir().unwrap();
    let db = SledDatabase::open(dir.path()).unwrap();
    let mut sm = audited_replica(&db).await;
    drop(sm.get_snapshot_builder().await);
    sm.apply([entry(4, vec![audited(40, "alice", "A", event("A", 40))])])
        .await
        .unwrap();
    let reader = sm.audit_reader();
    let read = |filter: AuditFilter| {
        reader
            .read(&AuditFilter {
                max_scanned: 1000,
                ..filter
            })
            .unwrap()
    };
    let alice = read(AuditFilter {
        actor: Some("alice".into()),
        limit: 10,
        ..Default::default()
    });
    let times: Vec<u64> = alice.records.iter().map(|(k, _)| k.at).collect();
    assert_eq!(times, [40, 10], "newest first, fresh and written merged");
    let on_a = read(AuditFilter {
        device: Some(key("A").as_str().into()),
        limit: 10,
        ..Default::default()
    });
    assert_eq!(on_a.records.len(), 2);
    let first = read(AuditFilter {
        limit: 2,
        ..Default::default()
    });
    assert!(first.more);
    let rest = read(AuditFilter {
        limit: 2,
        before: Some(first.records[1].0),
        ..Default::default()
    });
    assert!(!rest.more);
    let actors: Vec<&str> = first
        .records
        .iter()
        .chain(&rest.records)
        .map(|(_, r)| r.actor.as_str())
        .collect();
    assert_eq!(actors, ["alice", "carol", "bob", "alice"]);
    let since = read(AuditFilter {
        since: Some(Timestamp(20)),
        limit: 10,
        ..Default::default()
    });
    assert_eq!(since.records.len(), 3);
    let cut = reader
        .read(&AuditFilter {
            limit: 10,
            max_scanned: 1,
            ..Default::default()
        })
        .unwrap();
    assert!(cut.more && cut.records.len() == 1);
    assert_eq!(reader.trim(Timestamp(25)).unwrap(), 2);
    assert_eq!(all(&sm).len(), 2);
}
