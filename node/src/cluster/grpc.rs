//! The `Cluster` gRPC service of a node.

use super::meta::{MetaError, MetaGroup};
use crate::core::NodeCore;
use crate::raft::network::MAX_MESSAGE_BYTES;
use crate::shard::ProposeError;
use radar_core::{Layout, LayoutCommand, ShardId};
use radar_proto::cluster::cluster_server::{Cluster, ClusterServer};
use radar_proto::cluster::{
    ForwardReply, GetLayoutRequest, HelloRequest, IndexReply, IndexRequest, LayoutProposal,
    LayoutReply, MoveReply, NodeInfo, NodeStatus, PartitionMove, StatusRequest, TwinProposal,
    TwinReply, UspRecord, VoterChange, VoterReply,
};
use radar_twin::{ApplyOutcome, TwinCommand};
use std::pin::Pin;
use std::sync::Arc;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

pub struct ClusterService {
    core: Arc<NodeCore>,
    meta: Arc<MetaGroup>,
}

pub fn service(core: Arc<NodeCore>, meta: Arc<MetaGroup>) -> ClusterServer<ClusterService> {
    ClusterServer::new(ClusterService { core, meta })
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

fn layout_reply(layout: &Layout, meta_leader: Option<u64>) -> Result<LayoutReply, Status> {
    // Routers and followers asking for the layout do not need the cluster's API credential.
    let shown = Layout {
        cluster_secret: String::new(),
        ..layout.clone()
    };
    Ok(LayoutReply {
        version: layout.version,
        layout: postcard::to_allocvec(&shown).map_err(|e| Status::internal(e.to_string()))?,
        error: String::new(),
        meta_leader: meta_leader.unwrap_or(0),
    })
}

fn status_of(e: MetaError) -> Status {
    match e {
        MetaError::NoLeader => Status::unavailable(e.to_string()),
        MetaError::Unreachable { .. } => Status::unavailable(e.to_string()),
        MetaError::Refused(_) | MetaError::Raft(_) => Status::failed_precondition(e.to_string()),
    }
}

type LayoutStream = Pin<Box<dyn Stream<Item = Result<LayoutReply, Status>> + Send>>;

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn hello(&self, _: Request<HelloRequest>) -> Result<Response<NodeInfo>, Status> {
        let info = &self.meta.info;
        Ok(Response::new(NodeInfo {
            id: info.id,
            grpc: info.grpc.clone(),
            api: info.api.clone(),
            cwmp: info.cwmp.clone(),
            usp: info.usp.clone(),
        }))
    }

    async fn propose_layout(
        &self,
        request: Request<LayoutProposal>,
    ) -> Result<Response<LayoutReply>, Status> {
        let command: LayoutCommand = postcard::from_bytes(&request.into_inner().command)
            .map_err(|e| Status::invalid_argument(format!("undecodable layout command: {e}")))?;
        match self.meta.propose(command, true).await {
            Ok(layout) => Ok(Response::new(layout_reply(&layout, self.meta.leader())?)),
            Err(MetaError::Refused(reason)) => {
                let mut reply = layout_reply(&self.meta.current(), self.meta.leader())?;
                reply.error = reason;
                Ok(Response::new(reply))
            }
            Err(e) => Err(status_of(e)),
        }
    }

    async fn get_layout(
        &self,
        request: Request<GetLayoutRequest>,
    ) -> Result<Response<LayoutReply>, Status> {
        let layout = if request.into_inner().stale {
            self.meta.current()
        } else {
            self.meta.read_layout().await.map_err(status_of)?
        };
        Ok(Response::new(layout_reply(&layout, self.meta.leader())?))
    }

    type WatchLayoutStream = LayoutStream;

    async fn watch_layout(
        &self,
        _: Request<GetLayoutRequest>,
    ) -> Result<Response<LayoutStream>, Status> {
        let mut layouts = self.meta.layout.clone();
        let meta = self.meta.clone();
        let stream = async_stream(move |tx| async move {
            loop {
                let layout = layouts.borrow_and_update().clone();
                if tx.send(layout_reply(&layout, meta.leader())).await.is_err() {
                    return;
                }
                if layouts.changed().await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }

    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<NodeStatus>, Status> {
        Ok(Response::new(super::status::local_status(
            &self.core, &self.meta,
        )))
    }

    async fn propose_twin(
        &self,
        request: Request<TwinProposal>,
    ) -> Result<Response<TwinReply>, Status> {
        let proposal = request.into_inner();
        let command: TwinCommand = postcard::from_bytes(&proposal.command)
            .map_err(|e| Status::invalid_argument(format!("undecodable twin command: {e}")))?;
        let replica = self
            .core
            .fleet
            .view()
            .replicas
            .get(&ShardId(proposal.shard))
            .cloned();
        let outcome: Result<ApplyOutcome, ProposeError> = match replica {
            // Only a local leader applies a forwarded command: forwarding is never chained.
            Some(shard) => shard.propose(command).await,
            None => Err(ProposeError::NotLeader {
                leader: None,
                leader_addr: None,
            }),
        };
        Ok(Response::new(TwinReply {
            outcome: postcard::to_allocvec(&outcome)
                .map_err(|e| Status::internal(e.to_string()))?,
        }))
    }

    async fn forward_usp_record(
        &self,
        request: Request<UspRecord>,
    ) -> Result<Response<ForwardReply>, Status> {
        let accepted =
            self.core
                .usp_mtps
                .accept_forwarded(&self.core, "mqtt", request.into_inner());
        Ok(Response::new(ForwardReply { accepted }))
    }

    async fn move_partitions(
        &self,
        request: Request<PartitionMove>,
    ) -> Result<Response<MoveReply>, Status> {
        let reply = match super::rebalance::handle_move(&self.core, request.into_inner()).await {
            Ok(twins) => MoveReply {
                twins,
                error: String::new(),
            },
            Err(error) => MoveReply { twins: 0, error },
        };
        Ok(Response::new(reply))
    }

    async fn add_index(
        &self,
        request: Request<IndexRequest>,
    ) -> Result<Response<IndexReply>, Status> {
        let field = request.into_inner().field;
        let reply = match self.core.indexes.add(&field, self.core.fleet.shards()) {
            Ok(build) => IndexReply {
                state: build.state.to_owned(),
                twins_done: build.twins_done,
                twins_total: build.twins_total,
                error: build.error.unwrap_or_default(),
            },
            Err(e) => IndexReply {
                state: String::new(),
                error: e.to_string(),
                ..Default::default()
            },
        };
        Ok(Response::new(reply))
    }

    async fn change_voters(
        &self,
        request: Request<VoterChange>,
    ) -> Result<Response<VoterReply>, Status> {
        let change = request.into_inner();
        let reply =
            match super::membership::handle_change_voters(&self.core, &self.meta, change).await {
                Ok(voters) => VoterReply {
                    voters,
                    error: String::new(),
                },
                Err(error) => VoterReply {
                    voters: Vec::new(),
                    error,
                },
            };
        Ok(Response::new(reply))
    }
}

/// A stream fed by a task through a small channel.
fn async_stream<F, Fut>(produce: F) -> LayoutStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<LayoutReply, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(produce(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}
