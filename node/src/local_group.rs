//! Replicas of one shard group in this process, each with its own data directory, `RaftHost`
//! and tonic server on a loopback port: real Raft over real gRPC without separate processes.
//! For the replication tests and the B8 benchmark.

use crate::metrics::Metrics;
use crate::raft::network::PeerChannels;
use crate::raft::service::RaftHost;
use crate::raft::RaftSettings;
use crate::shard::{LogBackend, OpenError, ReplicaContext, Shard};
use openraft::BasicNode;
use radar_core::ShardId;
use radar_store::SledDatabase;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub struct LocalReplica {
    pub id: u64,
    pub addr: String,
    pub shard: Arc<Shard>,
    pub host: Arc<RaftHost>,
    pub peers: Arc<PeerChannels>,
    pub server: tokio::task::JoinHandle<()>,
}

/// Which log engine a replica uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sled,
    Redb,
}

/// Opens replica `id` of shard 0 with its data under `dir` and serves its Raft RPCs.
pub async fn start_replica(
    id: u64,
    dir: &Path,
    settings: &RaftSettings,
    engine: Engine,
    max_batch: usize,
) -> Result<LocalReplica, OpenError> {
    let db = SledDatabase::open(&dir.join("twins.sled"))?;
    let logs = match engine {
        Engine::Sled => LogBackend::Sled,
        Engine::Redb => LogBackend::Redb(radar_store::raft::redb_log::RedbLogs::open(
            &dir.join("raft-log"),
        )?),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| OpenError::Raft(e.to_string()))?;
    let addr = listener
        .local_addr()
        .map_err(|e| OpenError::Raft(e.to_string()))?
        .to_string();
    let host = RaftHost::new();
    let peers = PeerChannels::new(Duration::from_secs(1), None).expect("no tls to read");
    let shard = Shard::open(
        ShardId(0),
        ReplicaContext {
            db: &db,
            logs,
            node_id: id,
            settings,
            peers: peers.clone(),
            host: host.clone(),
            max_batch,
            metrics: Arc::new(Metrics::new()),
            indexed_paths: &[],
        },
    )
    .await?;
    let service = host.service();
    let server = tokio::spawn(async move {
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let _ = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming)
            .await;
    });
    Ok(LocalReplica {
        id,
        addr,
        shard,
        host,
        peers,
        server,
    })
}

/// Forms the group from `replicas` (the first one initializes) and waits for a leader.
pub async fn bootstrap(replicas: &[&LocalReplica], wait: Duration) -> Result<(), OpenError> {
    let voters: BTreeMap<u64, BasicNode> = replicas
        .iter()
        .map(|r| (r.id, BasicNode::new(r.addr.clone())))
        .collect();
    let first = replicas.first().map(|r| r.id);
    let boots = replicas.iter().map(|r| {
        r.shard
            .bootstrap(voters.clone(), Some(r.id) == first, wait / 10, wait)
    });
    for result in futures_util::future::join_all(boots).await {
        result?;
    }
    Ok(())
}
