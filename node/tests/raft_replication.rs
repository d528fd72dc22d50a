//! A shard replicated by Raft over real gRPC: three replicas, each with its own sled database
//! on disk, its own RaftHost and its own tonic server on a loopback port. Proves replication,
//! failover to a new leader with every acknowledged write kept, NotLeader answers from
//! followers, one channel per peer, and a new replica caught up by a streamed snapshot after
//! the log was purged.

use openraft::BasicNode;
use radar_core::{DeviceKey, Timestamp};
use radar_node::local_group::{start_replica, Engine, LocalReplica};
use radar_node::raft::RaftSettings;
use radar_node::shard::{Consistency, ProposeError};
use radar_twin::command::{Identity, ReportedParam};
use radar_twin::TwinCommand;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

struct TestNode {
    replica: LocalReplica,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for TestNode {
    type Target = LocalReplica;
    fn deref(&self) -> &LocalReplica {
        &self.replica
    }
}

fn settings() -> RaftSettings {
    RaftSettings {
        heartbeat_interval: Duration::from_millis(100),
        election_timeout_min: Duration::from_millis(400),
        election_timeout_max: Duration::from_millis(800),
        snapshot_every_entries: 50,
        keep_after_snapshot: 5,
        // Small chunks: the snapshot file is sent and received in many pieces.
        snapshot_chunk_bytes: 1024,
        ..RaftSettings::default()
    }
}

async fn start_node(id: u64) -> TestNode {
    let dir = tempfile::tempdir().unwrap();
    let replica = start_replica(id, dir.path(), &settings(), Engine::Sled, 64)
        .await
        .unwrap();
    TestNode { replica, _dir: dir }
}

fn key(serial: &str) -> DeviceKey {
    DeviceKey::from_oui_serial("00D09E", serial).unwrap()
}

fn inform(serial: &str, version: &str) -> TwinCommand {
    TwinCommand::Inform {
        device: key(serial),
        at: Timestamp(1),
        identity: Identity {
            oui: "00D09E".into(),
            product_class: "HG".into(),
            serial: serial.into(),
            manufacturer: "Acme".into(),
        },
        events: vec![("2 PERIODIC".into(), String::new())],
        params: vec![ReportedParam {
            path: "Device.DeviceInfo.SoftwareVersion".into(),
            value: version.into(),
            ty: None,
            writable: Some(false),
        }],
    }
}

fn version_on(node: &TestNode, serial: &str) -> Option<String> {
    node.shard
        .with_twin(&key(serial), |t, _| t.meta.software_version.clone())
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn leader_of(nodes: &[&TestNode]) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(n) = nodes.iter().find(|n| n.shard.is_leader()) {
            return n.id;
        }
        assert!(Instant::now() < deadline, "no leader elected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_three_replica_shard_replicates_fails_over_and_catches_up_by_snapshot() {
    let mut nodes = vec![
        start_node(1).await,
        start_node(2).await,
        start_node(3).await,
    ];
    let voters: BTreeMap<u64, BasicNode> = nodes
        .iter()
        .map(|n| (n.id, BasicNode::new(n.addr.clone())))
        .collect();
    let boots = nodes.iter().map(|n| {
        let preferred = n.id == 1;
        n.shard.bootstrap(
            voters.clone(),
            preferred,
            Duration::from_secs(2),
            Duration::from_secs(20),
        )
    });
    for result in futures_util::future::join_all(boots).await {
        result.expect("bootstrap");
    }
    let refs: Vec<&TestNode> = nodes.iter().collect();
    let leader_id = leader_of(&refs).await;
    let leader = nodes.iter().find(|n| n.id == leader_id).unwrap();

    // Writes on the leader are applied on every replica.
    let writes = (0..40).map(|i| leader.shard.propose(inform(&format!("A{i}"), "1.0")));
    for result in futures_util::future::join_all(writes).await {
        result.expect("committed");
    }
    for node in &nodes {
        eventually("replication to every replica", || {
            (0..40).all(|i| version_on(node, &format!("A{i}")).as_deref() == Some("1.0"))
        })
        .await;
    }

    // A follower refuses writes and linearizable reads, naming the leader.
    let follower = nodes.iter().find(|n| n.id != leader_id).unwrap();
    match follower.shard.propose(inform("F", "1.0")).await {
        Err(ProposeError::NotLeader { leader, .. }) => assert_eq!(leader, Some(leader_id)),
        other => panic!("follower accepted a write: {other:?}"),
    }
    assert!(matches!(
        follower.shard.read_barrier(Consistency::Linearizable).await,
        Err(ProposeError::NotLeader { .. })
    ));
    follower
        .shard
        .read_barrier(Consistency::Stale)
        .await
        .expect("stale reads are served anywhere");
    leader
        .shard
        .read_barrier(Consistency::Linearizable)
        .await
        .expect("the leader serves linearizable reads");

    // Every node has one channel per peer it talked to, however many RPCs it sent.
    for node in &nodes {
        assert!(
            node.peers.len() <= 2,
            "node {} has {} channels",
            node.id,
            node.peers.len()
        );
    }

    // Kill the leader: its gRPC server and its Raft stop.
    let index = nodes.iter().position(|n| n.id == leader_id).unwrap();
    let old = nodes.remove(index);
    old.server.abort();
    old.shard.shutdown(&old.host).await;
    let killed_at = Instant::now();
    let refs: Vec<&TestNode> = nodes.iter().collect();
    let new_leader_id = leader_of(&refs).await;
    assert_ne!(new_leader_id, leader_id);
    let new_leader = nodes.iter().find(|n| n.id == new_leader_id).unwrap();
    new_leader
        .shard
        .propose(inform("B0", "2.0"))
        .await
        .expect("the new leader commits with the surviving majority");
    println!(
        "failover: first commit on the new leader {:?} after the kill",
        killed_at.elapsed()
    );
    for i in 0..40 {
        assert_eq!(
            version_on(new_leader, &format!("A{i}")).as_deref(),
            Some("1.0"),
            "acknowledged write A{i} lost in failover"
        );
    }

    // Enough entries to take snapshots and purge the log, then a brand-new replica joins as a
    // learner: it can only catch up from a snapshot streamed over gRPC.
    for round in 0..3 {
        let writes = (0..40).map(|i| {
            new_leader
                .shard
                .propose(inform(&format!("C{i}"), &format!("3.{round}")))
        });
        for result in futures_util::future::join_all(writes).await {
            result.expect("committed");
        }
    }
    for i in 0..60 {
        new_leader
            .shard
            .propose(inform(&format!("D{i}"), "4.0"))
            .await
            .expect("committed");
    }
    eventually("a snapshot and a purged log", || {
        let m = new_leader.shard.raft().metrics().borrow().clone();
        m.snapshot.is_some() && m.purged.is_some()
    })
    .await;
    let fresh = start_node(4).await;
    new_leader
        .shard
        .raft()
        .add_learner(4, BasicNode::new(fresh.addr.clone()), true)
        .await
        .expect("learner added");
    eventually("the learner's state from the snapshot", || {
        version_on(&fresh, "A39").as_deref() == Some("1.0")
            && version_on(&fresh, "C0").as_deref() == Some("3.2")
            && version_on(&fresh, "D59").as_deref() == Some("4.0")
    })
    .await;
    let installed = fresh.shard.raft().metrics().borrow().snapshot;
    assert!(
        installed.is_some(),
        "the learner caught up without a snapshot"
    );
}
