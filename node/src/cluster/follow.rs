//! Follows the layout: when a committed layout makes this node a voter of a shard it does not
//! host yet, the replica is opened and its group bootstrapped with the layout's voters (every
//! voter proposes the same first membership, which openraft accepts once); then the fleet
//! switches to the new version's ring and replicas.

use super::meta::MetaGroup;
use crate::fleet::{Fleet, FleetView};
use crate::metrics::Metrics;
use crate::raft::network::PeerChannels;
use crate::raft::service::RaftHost;
use crate::raft::RaftSettings;
use crate::shard::{ReplicaContext, Shard};
use openraft::BasicNode;
use radar_core::Layout;
use radar_store::SledDatabase;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{error, info, warn};

/// What opening a replica needs; owned, because replicas open long after startup.
pub struct ReplicaFactory {
    pub db: SledDatabase,
    pub logs: crate::shard::LogBackend,
    pub node_id: u64,
    pub settings: RaftSettings,
    pub peers: Arc<PeerChannels>,
    pub host: Arc<RaftHost>,
    pub max_batch: usize,
    pub metrics: Arc<Metrics>,
    /// The configured indexed paths; fields added online since start are read from
    /// `data_dir` when a replica opens (`crate::index_admin`).
    pub indexed_paths: Vec<String>,
    pub data_dir: std::path::PathBuf,
}

impl ReplicaFactory {
    /// The configured paths and every field added online so far, on this node or sent to it
    /// by another: a replica that opens later indexes them as it opens.
    pub fn indexed_paths_now(&self) -> Vec<String> {
        let mut paths = self.indexed_paths.clone();
        for field in crate::index_admin::added_fields(&self.data_dir) {
            if !paths.contains(&field) {
                paths.push(field);
            }
        }
        paths
    }

    pub fn context<'a>(&'a self, indexed_paths: &'a [String]) -> ReplicaContext<'a> {
        ReplicaContext {
            db: &self.db,
            logs: self.logs.clone(),
            node_id: self.node_id,
            settings: &self.settings,
            peers: self.peers.clone(),
            host: self.host.clone(),
            max_batch: self.max_batch,
            metrics: self.metrics.clone(),
            indexed_paths,
        }
    }
}

/// Runs until `shutdown`: applies every layout version to this node's fleet.
pub async fn follow_layout(
    meta: Arc<MetaGroup>,
    factory: ReplicaFactory,
    core: Arc<crate::core::NodeCore>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut layouts = meta.layout.clone();
    loop {
        let layout = layouts.borrow_and_update().clone();
        if layout.is_initialized() {
            if let Err(e) = apply_layout(&layout, &factory, &core).await {
                error!(version = layout.version, error = %e, "could not apply the layout");
            }
        }
        tokio::select! {
            changed = layouts.changed() => if changed.is_err() { return },
            _ = shutdown.changed() => return,
        }
    }
}

async fn apply_layout(
    layout: &Layout,
    factory: &ReplicaFactory,
    core: &Arc<crate::core::NodeCore>,
) -> Result<(), String> {
    let fleet: &Fleet = &core.fleet;
    let ring = layout.ring().map_err(|e| e.to_string())?;
    let current = fleet.view();
    let mut replicas = current.replicas.clone();
    for shard in layout.hosted_by(factory.node_id) {
        if replicas.contains_key(&shard.id) {
            continue;
        }
        let indexed_paths = factory.indexed_paths_now();
        let replica = Shard::open(shard.id, factory.context(&indexed_paths))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(close_links_when_leadership_moves(
            core.clone(),
            replica.clone(),
        ));
        replicas.insert(shard.id, replica.clone());
        if !shard.voters.contains(&factory.node_id) {
            // A learner waits for the leader to feed it (add-node, remove-node).
            info!(shard = %shard.id, "opened shard replica as a learner");
            continue;
        }
        let voters: BTreeMap<u64, BasicNode> = shard
            .voters
            .iter()
            .filter_map(|id| {
                layout
                    .nodes
                    .get(id)
                    .map(|n| (*id, BasicNode::new(n.grpc.clone())))
            })
            .collect();
        info!(shard = %shard.id, voters = ?shard.voters, "opened shard replica");
        let wait = factory.settings.election_timeout_max * 20;
        let patience = factory.settings.election_timeout_max * 5;
        let preferred = shard.voters.first() == Some(&factory.node_id);
        tokio::spawn(async move {
            if let Err(e) = replica.bootstrap(voters, preferred, patience, wait).await {
                warn!(shard = %replica.id, error = %e, "shard bootstrap");
            }
        });
    }
    // Replicas of shards this node no longer hosts (its voter was replaced, or it was drained)
    // stop; the group's membership no longer counts them.
    let gone: Vec<_> = replicas
        .keys()
        .filter(|id| !layout.hosted_by(factory.node_id).any(|s| s.id == **id))
        .copied()
        .collect();
    for id in gone {
        if let Some(replica) = replicas.remove(&id) {
            info!(shard = %id, "this node no longer hosts the shard; closing its replica");
            replica.shutdown(&factory.host).await;
        }
    }
    let previous = current.ring.clone();
    fleet.install(FleetView {
        layout_version: layout.version,
        ring: Some(ring.clone()),
        replicas,
    });
    // Partitions that changed shards (add-shard): their USP agents reconnect through the
    // router, which sends them to the new owner's leader.
    if let Some(previous) = previous.filter(|p| *p != ring) {
        let moved = core.usp_agents.move_away(|device| {
            previous.shard_for_key(device.as_str()) != ring.shard_for_key(device.as_str())
        });
        if moved > 0 {
            info!(
                version = layout.version,
                agents = moved,
                "partitions changed shards; agents told to reconnect"
            );
        }
    }
    Ok(())
}

/// Announces this node's addresses to the metadata group once it has a leader (nodes that
/// restart with new addresses update the layout). Retries until it succeeds or `shutdown`.
pub async fn announce(meta: Arc<MetaGroup>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let known = meta.current().nodes.get(&meta.info.id) == Some(&meta.info);
        if known {
            return;
        }
        if meta.leader().is_some() {
            let command = radar_core::LayoutCommand::RegisterNode(meta.info.clone());
            match meta.propose(command, false).await {
                Ok(_) => return,
                Err(e) => warn!(error = %e, "announcing this node"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// When this replica stops leading its shard, the USP agents connected here for that shard are
/// told to reconnect, so the router sends them to the new leader (their sessions would
/// otherwise keep reading this replica, which no longer takes writes).
async fn close_links_when_leadership_moves(core: Arc<crate::core::NodeCore>, shard: Arc<Shard>) {
    let mut metrics = shard.raft().metrics();
    let mut was_leader = false;
    loop {
        let is_leader = metrics.borrow_and_update().state == openraft::ServerState::Leader;
        if was_leader && !is_leader {
            let moved = core
                .usp_agents
                .move_away(|device| core.fleet.shard_id_for(device) == Some(shard.id));
            info!(shard = %shard.id, agents = moved, "lost shard leadership; agents told to reconnect");
        }
        was_leader = is_leader;
        if metrics.changed().await.is_err() {
            return;
        }
    }
}
