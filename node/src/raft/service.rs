//! The gRPC side of the Raft transport: one `RaftTransport` service per node, dispatching each
//! message to the group it names. Groups register when the node opens their replica and leave
//! when it drops it; a message for a group this node does not host is `NOT_FOUND`, which the
//! sender treats as unreachable and retries with backoff.

use super::codec::{decode, encode};
use super::network::MAX_MESSAGE_BYTES;
use super::GroupId;
use openraft::{BasicNode, Raft, RaftTypeConfig};
use radar_proto::raft::raft_transport_server::{RaftTransport, RaftTransportServer};
use radar_proto::raft::RaftMessage;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use tonic::{Request, Response, Status};

type Answer<'a> = Pin<Box<dyn Future<Output = Result<Vec<u8>, Status>> + Send + 'a>>;

/// A Raft group as the transport sees it: encoded requests in, encoded results out.
pub trait HostedGroup: Send + Sync + 'static {
    fn append_entries(&self, body: Vec<u8>) -> Answer<'_>;
    fn vote(&self, body: Vec<u8>) -> Answer<'_>;
    fn install_snapshot(&self, body: Vec<u8>) -> Answer<'_>;
}

fn bad_body(e: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("undecodable raft message: {e}"))
}

impl<C> HostedGroup for Raft<C>
where
    C: RaftTypeConfig<NodeId = u64, Node = BasicNode>,
    C::D: Serialize + DeserializeOwned,
    C::R: Serialize + DeserializeOwned,
{
    fn append_entries(&self, body: Vec<u8>) -> Answer<'_> {
        Box::pin(async move {
            let request = decode(&body).map_err(bad_body)?;
            encode(&self.append_entries(request).await).map_err(|e| Status::internal(e.to_string()))
        })
    }

    fn vote(&self, body: Vec<u8>) -> Answer<'_> {
        Box::pin(async move {
            let request = decode(&body).map_err(bad_body)?;
            encode(&self.vote(request).await).map_err(|e| Status::internal(e.to_string()))
        })
    }

    fn install_snapshot(&self, body: Vec<u8>) -> Answer<'_> {
        Box::pin(async move {
            let request = decode(&body).map_err(bad_body)?;
            encode(&self.install_snapshot(request).await)
                .map_err(|e| Status::internal(e.to_string()))
        })
    }
}

/// The groups this node hosts, by id.
#[derive(Default)]
pub struct RaftHost {
    groups: RwLock<HashMap<GroupId, Arc<dyn HostedGroup>>>,
}

impl RaftHost {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn register(&self, group: GroupId, raft: Arc<dyn HostedGroup>) {
        self.groups
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(group, raft);
    }

    pub fn unregister(&self, group: GroupId) {
        self.groups
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&group);
    }

    fn group(&self, id: u64) -> Result<Arc<dyn HostedGroup>, Status> {
        self.groups
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&GroupId(id))
            .cloned()
            .ok_or_else(|| {
                Status::not_found(format!("raft group {} is not hosted here", GroupId(id)))
            })
    }

    /// The tonic service to add to the node's gRPC server.
    pub fn service(self: &Arc<Self>) -> RaftTransportServer<RaftService> {
        RaftTransportServer::new(RaftService { host: self.clone() })
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }
}

pub struct RaftService {
    host: Arc<RaftHost>,
}

fn reply(group: u64, body: Vec<u8>) -> Response<RaftMessage> {
    Response::new(RaftMessage { group, body })
}

#[tonic::async_trait]
impl RaftTransport for RaftService {
    async fn append_entries(
        &self,
        request: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let RaftMessage { group, body } = request.into_inner();
        let answer = self.host.group(group)?.append_entries(body).await?;
        Ok(reply(group, answer))
    }

    async fn vote(&self, request: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let RaftMessage { group, body } = request.into_inner();
        let answer = self.host.group(group)?.vote(body).await?;
        Ok(reply(group, answer))
    }

    async fn install_snapshot(
        &self,
        request: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let RaftMessage { group, body } = request.into_inner();
        let answer = self.host.group(group)?.install_snapshot(body).await?;
        Ok(reply(group, answer))
    }
}
