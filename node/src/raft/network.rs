//! openraft's network over tonic. A node keeps one lazily-connected, reused gRPC channel per
//! peer node and shares it between every Raft group it hosts (multi-raft): each RPC carries its
//! group id, never a channel of its own. HTTP/2 multiplexes the groups' RPCs on the channel.

use super::codec::{decode, encode};
use super::GroupId;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, RaftTypeConfig};
use radar_proto::raft::raft_transport_client::RaftTransportClient;
use radar_proto::raft::RaftMessage;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// Largest gRPC message a node sends or accepts: a snapshot chunk or a batch of log entries.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// One channel per peer node, created on first use and reused by every group and RPC.
#[derive(Default)]
pub struct PeerChannels {
    channels: Mutex<HashMap<u64, (String, Channel)>>,
    connect_timeout: Duration,
    /// Mutual TLS to every peer, when the cluster uses it (`[cluster] tls`): its files, and
    /// the client configuration last read from them.
    tls: Option<(
        radar_core::cluster_tls::ClusterTls,
        std::sync::RwLock<tonic::transport::ClientTlsConfig>,
    )>,
}

impl crate::tls::Reload for PeerChannels {
    fn reload(&self) -> Result<(), String> {
        self.reload_tls()
    }

    fn describe(&self) -> String {
        match &self.tls {
            Some((files, _)) => format!("{} (cluster client)", files.cert.display()),
            None => "cluster client".into(),
        }
    }
}

impl PeerChannels {
    pub fn new(
        connect_timeout: Duration,
        tls: Option<radar_core::cluster_tls::ClusterTls>,
    ) -> Result<Arc<Self>, String> {
        let tls = match tls {
            Some(files) => {
                let config = radar_proto::tls::client(&files.ca, &files.cert, &files.key)?;
                Some((files, std::sync::RwLock::new(config)))
            }
            None => None,
        };
        Ok(Arc::new(Self {
            channels: Mutex::default(),
            connect_timeout,
            tls,
        }))
    }

    /// Reads the client certificate again (SIGHUP): calls from now on present it. Channels
    /// are made again, lazily; calls already under way finish on the old ones.
    pub fn reload_tls(&self) -> Result<(), String> {
        let Some((files, current)) = &self.tls else {
            return Ok(());
        };
        let fresh = radar_proto::tls::client(&files.ca, &files.cert, &files.key)?;
        *current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        self.channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        Ok(())
    }

    /// The channel to `node` at `addr` (a `host:port` gRPC address). A node that moved to a new
    /// address gets a new channel; otherwise the existing one is shared.
    pub fn channel(&self, node: u64, addr: &str) -> Result<Channel, String> {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((known, channel)) = channels.get(&node) {
            if known == addr {
                return Ok(channel.clone());
            }
        }
        let channel = self
            .endpoint(addr)?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_while_idle(true)
            .connect_lazy();
        channels.insert(node, (addr.to_owned(), channel.clone()));
        Ok(channel)
    }

    /// An endpoint for `addr` (a `host:port` gRPC address), with mutual TLS when the cluster
    /// uses it: every node-to-node call is made from one of these.
    pub fn endpoint(&self, addr: &str) -> Result<Endpoint, String> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))
            .map_err(|e| format!("bad peer address {addr:?}: {e}"))?;
        match &self.tls {
            Some((_, tls)) => {
                let tls = tls.read().unwrap_or_else(|e| e.into_inner()).clone();
                endpoint
                    .tls_config(tls)
                    .map_err(|e| format!("tls to {addr}: {e}"))
            }
            None => Ok(endpoint),
        }
    }

    /// How many peer channels exist (each peer has at most one).
    pub fn len(&self) -> usize {
        self.channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Makes the per-target clients of one group.
pub struct GroupNetwork<C> {
    group: GroupId,
    peers: Arc<PeerChannels>,
    _config: PhantomData<fn() -> C>,
}

impl<C> GroupNetwork<C> {
    pub fn new(group: GroupId, peers: Arc<PeerChannels>) -> Self {
        Self {
            group,
            peers,
            _config: PhantomData,
        }
    }
}

impl<C> RaftNetworkFactory<C> for GroupNetwork<C>
where
    C: RaftTypeConfig<NodeId = u64, Node = BasicNode>,
    C::D: Serialize + DeserializeOwned,
    C::R: Serialize + DeserializeOwned,
{
    type Network = PeerClient<C>;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> Self::Network {
        PeerClient {
            group: self.group,
            target,
            channel: self.peers.channel(target, &node.addr),
            _config: PhantomData,
        }
    }
}

/// One group's RPCs to one peer, over the peer's shared channel.
pub struct PeerClient<C> {
    group: GroupId,
    target: u64,
    channel: Result<Channel, String>,
    _config: PhantomData<fn() -> C>,
}

#[derive(Clone, Copy)]
enum Rpc {
    Append,
    Vote,
    Snapshot,
}

impl<C> PeerClient<C> {
    /// Sends one request and decodes the peer's `Result<Resp, E>`. Transport failures are
    /// `Unreachable` (openraft backs off), undecodable answers are network errors.
    async fn call<Req, Resp, E>(
        &self,
        rpc: Rpc,
        request: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<u64, BasicNode, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let channel = self
            .channel
            .clone()
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&StringError(e))))?;
        let body = encode(request).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let message = RaftMessage {
            group: self.group.0,
            body,
        };
        let mut client = RaftTransportClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let call = async {
            match rpc {
                Rpc::Append => client.append_entries(message).await,
                Rpc::Vote => client.vote(message).await,
                Rpc::Snapshot => client.install_snapshot(message).await,
            }
        };
        let reply = match tokio::time::timeout(option.hard_ttl(), call).await {
            Err(_) => {
                return Err(RPCError::Unreachable(Unreachable::new(&StringError(
                    format!(
                        "no answer from node {} within {:?}",
                        self.target,
                        option.hard_ttl()
                    ),
                ))))
            }
            Ok(Err(status)) => return Err(RPCError::Unreachable(Unreachable::new(&status))),
            Ok(Ok(reply)) => reply.into_inner(),
        };
        let answer: Result<Resp, E> =
            decode(&reply.body).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        answer.map_err(|e| RPCError::RemoteError(openraft::error::RemoteError::new(self.target, e)))
    }
}

impl<C> RaftNetwork<C> for PeerClient<C>
where
    C: RaftTypeConfig<NodeId = u64, Node = BasicNode>,
    C::D: Serialize + DeserializeOwned,
    C::R: Serialize + DeserializeOwned,
{
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<C>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.call(Rpc::Append, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<C>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
    > {
        self.call(Rpc::Snapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.call(Rpc::Vote, &rpc, &option).await
    }
}

#[derive(Debug)]
struct StringError(String);

impl std::fmt::Display for StringError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StringError {}
