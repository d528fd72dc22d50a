//! The router's only state: a cached layout (followed with the nodes' `WatchLayout` stream,
//! from any seed) and a leader table (each node's `Status`, polled and refreshed at once when a
//! route fails). Both can be rebuilt from the nodes at any time, so routers are stateless and
//! several can run side by side.

use crate::metrics::RouterMetrics;
use radar_core::{Layout, NodeInfo, Ring, ShardId};
use radar_proto::cluster::cluster_client::ClusterClient;
use radar_proto::cluster::{GetLayoutRequest, StatusRequest};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tonic::transport::{Channel, Endpoint};
use tracing::{debug, info, warn};

#[derive(Default)]
pub struct Snapshot {
    pub layout: Layout,
    pub ring: Option<Ring>,
    /// Shard → (leader node, its term).
    pub leaders: BTreeMap<ShardId, (u64, u64)>,
}

pub struct Directory {
    snapshot: RwLock<Arc<Snapshot>>,
    refresh: Notify,
    channels: Mutex<HashMap<String, Channel>>,
    seeds: Vec<String>,
    connect_timeout: Duration,
    /// Mutual TLS to the nodes, when the cluster uses it.
    tls: Option<tonic::transport::ClientTlsConfig>,
    metrics: Arc<RouterMetrics>,
}

impl Directory {
    pub fn new(
        seeds: Vec<String>,
        connect_timeout: Duration,
        tls: Option<tonic::transport::ClientTlsConfig>,
        metrics: Arc<RouterMetrics>,
    ) -> Arc<Self> {
        Arc::new(Self {
            snapshot: RwLock::default(),
            refresh: Notify::new(),
            channels: Mutex::default(),
            seeds,
            connect_timeout,
            tls,
            metrics,
        })
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn update(&self, change: impl FnOnce(&mut Snapshot)) {
        let mut guard = self.snapshot.write().unwrap_or_else(|e| e.into_inner());
        let mut next = Snapshot {
            layout: guard.layout.clone(),
            ring: guard.ring.clone(),
            leaders: guard.leaders.clone(),
        };
        change(&mut next);
        *guard = Arc::new(next);
    }

    /// The node leading the shard that owns `key`, if known.
    pub fn leader_for_key(&self, key: &str) -> Option<NodeInfo> {
        let snapshot = self.snapshot();
        let shard = snapshot.ring.as_ref()?.shard_for_key(key);
        let (node, _) = snapshot.leaders.get(&shard)?;
        snapshot.layout.nodes.get(node).cloned()
    }

    /// Waits (refreshing) up to `patience` for the key's shard to have a known leader.
    pub async fn wait_leader_for_key(&self, key: &str, patience: Duration) -> Option<NodeInfo> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            if let Some(node) = self.leader_for_key(key) {
                return Some(node);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            self.refresh_now();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn node(&self, id: u64) -> Option<NodeInfo> {
        self.snapshot().layout.nodes.get(&id).cloned()
    }

    /// Some node, for requests no device can be read from (the node answers them properly).
    pub fn any_node(&self) -> Option<NodeInfo> {
        let snapshot = self.snapshot();
        let leading: Vec<u64> = snapshot.leaders.values().map(|(n, _)| *n).collect();
        leading
            .first()
            .and_then(|n| snapshot.layout.nodes.get(n))
            .or_else(|| snapshot.layout.nodes.values().next())
            .cloned()
    }

    /// A route failed (refused connection, unknown leader): refresh the leader table now.
    pub fn refresh_now(&self) {
        self.refresh.notify_one();
    }

    pub fn forget_leader_on(&self, node: u64) {
        self.update(|s| s.leaders.retain(|_, (n, _)| *n != node));
        self.refresh_now();
    }

    fn channel(&self, addr: &str) -> Option<Channel> {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = channels.get(addr) {
            return Some(c.clone());
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}")).ok()?;
        if let Some(tls) = &self.tls {
            endpoint = endpoint.tls_config(tls.clone()).ok()?;
        }
        let channel = endpoint
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .connect_lazy();
        channels.insert(addr.to_owned(), channel.clone());
        Some(channel)
    }

    /// Follows the layout from the seeds (and, once known, every node), one stream at a time.
    pub async fn follow_layout(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut next = 0usize;
        loop {
            let mut sources = self.seeds.clone();
            sources.extend(
                self.snapshot()
                    .layout
                    .nodes
                    .values()
                    .map(|n| n.grpc.clone()),
            );
            sources.dedup();
            let source = sources[next % sources.len().max(1)].clone();
            next += 1;
            let follow = self.follow_from(&source);
            tokio::select! {
                result = follow => {
                    debug!(source, error = ?result.err(), "layout stream ended");
                }
                _ = shutdown.changed() => return,
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(300)) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    async fn follow_from(&self, addr: &str) -> Result<(), String> {
        let channel = self.channel(addr).ok_or("bad seed address")?;
        let mut stream = ClusterClient::new(channel)
            .max_decoding_message_size(64 * 1024 * 1024)
            .watch_layout(GetLayoutRequest { stale: true })
            .await
            .map_err(|s| s.message().to_owned())?
            .into_inner();
        while let Some(reply) = stream.message().await.map_err(|s| s.message().to_owned())? {
            let layout: Layout = postcard::from_bytes(&reply.layout).map_err(|e| e.to_string())?;
            if layout.version < self.snapshot().layout.version {
                continue; // a lagging node's older view
            }
            let ring = if layout.is_initialized() {
                layout.ring().ok()
            } else {
                None
            };
            info!(version = layout.version, source = addr, "layout");
            self.metrics.layout_version.set(layout.version as i64);
            self.update(|s| {
                s.layout = layout;
                s.ring = ring;
            });
            self.refresh_now();
        }
        Ok(())
    }

    /// Keeps the leader table fresh: every `interval`, and at once on `refresh_now`.
    pub async fn poll_leaders(
        self: Arc<Self>,
        interval: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            self.poll_once().await;
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = self.refresh.notified() => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    async fn poll_once(&self) {
        let nodes: Vec<NodeInfo> = self.snapshot().layout.nodes.values().cloned().collect();
        let asks = nodes.into_iter().filter_map(|node| {
            let channel = self.channel(&node.grpc)?;
            Some(async move {
                let mut client = ClusterClient::new(channel);
                let answer =
                    tokio::time::timeout(Duration::from_secs(1), client.status(StatusRequest {}))
                        .await;
                match answer {
                    Ok(Ok(status)) => Some(status.into_inner()),
                    Ok(Err(e)) => {
                        debug!(node = node.id, error = %e.message(), "status");
                        None
                    }
                    Err(_) => None,
                }
            })
        });
        let mut leaders: BTreeMap<ShardId, (u64, u64)> = BTreeMap::new();
        for status in futures_util::future::join_all(asks)
            .await
            .into_iter()
            .flatten()
        {
            for shard in status.shards.iter().filter(|s| s.is_leader) {
                let entry = leaders
                    .entry(ShardId(shard.shard))
                    .or_insert((status.node, shard.term));
                if shard.term > entry.1 {
                    *entry = (status.node, shard.term);
                }
            }
        }
        let known = self.snapshot();
        if known.leaders != leaders {
            if !leaders.is_empty() {
                info!(?leaders, "shard leaders");
            } else {
                warn!("no shard leader reachable");
            }
            self.update(|s| s.leaders = leaders);
        }
    }
}
