//! This node's replica of the metadata group, and layout proposals: applied by the leader, and
//! forwarded there over gRPC from any other node.

use crate::raft::network::{GroupNetwork, PeerChannels, MAX_MESSAGE_BYTES};
use crate::raft::service::RaftHost;
use crate::raft::{GroupId, RaftSettings};
use openraft::error::{ClientWriteError, RaftError};
use openraft::Raft;
use radar_core::{Layout, LayoutCommand, NodeInfo};
use radar_proto::cluster::cluster_client::ClusterClient;
use radar_proto::cluster::{GetLayoutRequest, LayoutProposal};
use radar_store::raft::meta::MetaRaft;
use radar_store::SledDatabase;
use std::sync::Arc;
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("the metadata group has no leader yet (is the cluster initialized?)")]
    NoLeader,
    #[error("layout refused: {0}")]
    Refused(String),
    #[error("metadata group: {0}")]
    Raft(String),
    #[error("node {node} unreachable: {message}")]
    Unreachable { node: String, message: String },
}

pub struct MetaGroup {
    pub raft: Raft<MetaRaft>,
    pub layout: watch::Receiver<Layout>,
    pub peers: Arc<PeerChannels>,
    pub info: NodeInfo,
}

impl MetaGroup {
    pub async fn open(
        db: &SledDatabase,
        info: NodeInfo,
        settings: &RaftSettings,
        peers: Arc<PeerChannels>,
        host: &RaftHost,
    ) -> Result<Arc<Self>, crate::shard::OpenError> {
        let (log, state_machine) = db.raft_meta(GroupId::META.0)?;
        let layout = state_machine.subscribe();
        let config = settings.openraft_config("meta")?;
        let raft = Raft::new(
            info.id,
            Arc::new(config),
            GroupNetwork::new(GroupId::META, peers.clone()),
            log,
            state_machine,
        )
        .await
        .map_err(|e| crate::shard::OpenError::Raft(e.to_string()))?;
        host.register(GroupId::META, Arc::new(raft.clone()));
        Ok(Arc::new(Self {
            raft,
            layout,
            peers,
            info,
        }))
    }

    pub fn current(&self) -> Layout {
        self.layout.borrow().clone()
    }

    pub fn leader(&self) -> Option<u64> {
        self.raft.metrics().borrow().current_leader
    }

    /// Commits a layout command through the metadata leader and returns the layout after it.
    /// `forwarded` commands came from another node and are not forwarded again.
    pub async fn propose(
        &self,
        command: LayoutCommand,
        forwarded: bool,
    ) -> Result<Layout, MetaError> {
        match self.raft.client_write(command.clone()).await {
            Ok(written) => match written.data.0 {
                Ok(_) => Ok(self.layout_at_least(written.log_id.index).await),
                Err(refused) => Err(MetaError::Refused(refused.to_string())),
            },
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) if !forwarded => {
                let node = f.leader_node.ok_or(MetaError::NoLeader)?;
                self.forward(&node.addr, f.leader_id.unwrap_or(0), &command)
                    .await
            }
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                Err(MetaError::NoLeader)
            }
            Err(e) => Err(MetaError::Raft(e.to_string())),
        }
    }

    /// `propose`, retried while the group has no reachable leader (an election, e.g. right
    /// after a membership change removed the leader) for up to `patience`.
    pub async fn propose_patiently(
        &self,
        command: LayoutCommand,
        patience: std::time::Duration,
    ) -> Result<Layout, MetaError> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            match self.propose(command.clone(), false).await {
                Err(MetaError::NoLeader | MetaError::Unreachable { .. })
                    if tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                other => return other,
            }
        }
    }

    /// The layout once this replica has applied `index` (the caller's own write).
    async fn layout_at_least(&self, index: u64) -> Layout {
        let _ = self
            .raft
            .wait(Some(std::time::Duration::from_secs(5)))
            .applied_index_at_least(Some(index), "layout applied")
            .await;
        self.current()
    }

    async fn forward(
        &self,
        addr: &str,
        leader: u64,
        command: &LayoutCommand,
    ) -> Result<Layout, MetaError> {
        let unreachable = |message: String| MetaError::Unreachable {
            node: addr.to_owned(),
            message,
        };
        let channel = self.peers.channel(leader, addr).map_err(unreachable)?;
        let mut client = ClusterClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES);
        let command = postcard::to_allocvec(command).map_err(|e| unreachable(e.to_string()))?;
        let reply = client
            .propose_layout(LayoutProposal { command })
            .await
            .map_err(|s| unreachable(s.message().to_owned()))?
            .into_inner();
        if !reply.error.is_empty() {
            return Err(MetaError::Refused(reply.error));
        }
        let layout = postcard::from_bytes(&reply.layout).map_err(|e| unreachable(e.to_string()))?;
        // Wait until this replica has caught up, so what follows sees the new layout here too.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            let mut rx = self.layout.clone();
            while rx.borrow_and_update().version < reply.version {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        })
        .await;
        Ok(layout)
    }

    /// A linearizable layout: from the leader, confirmed with a quorum.
    pub async fn read_layout(&self) -> Result<Layout, MetaError> {
        match self.raft.ensure_linearizable().await {
            Ok(_) => Ok(self.current()),
            Err(RaftError::APIError(openraft::error::CheckIsLeaderError::ForwardToLeader(f))) => {
                let node = f.leader_node.ok_or(MetaError::NoLeader)?;
                let unreachable = |message: String| MetaError::Unreachable {
                    node: node.addr.clone(),
                    message,
                };
                let channel = self
                    .peers
                    .channel(f.leader_id.unwrap_or(0), &node.addr)
                    .map_err(unreachable)?;
                let reply = ClusterClient::new(channel)
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .get_layout(GetLayoutRequest { stale: false })
                    .await
                    .map_err(|s| unreachable(s.message().to_owned()))?
                    .into_inner();
                postcard::from_bytes(&reply.layout).map_err(|e| unreachable(e.to_string()))
            }
            Err(e) => Err(MetaError::Raft(e.to_string())),
        }
    }
}
