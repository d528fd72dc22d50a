//! The `Fleet` gRPC service: the shard half of scatter-gather queries, answered by a node for
//! a shard it leads (or has a replica of, for stale reads). Bad queries are INVALID_ARGUMENT, a
//! shard not hosted here NOT_FOUND, a replica that does not lead UNAVAILABLE.

use crate::core::NodeCore;
use crate::fleet::{count_shard, query_shard, DeviceQuery};
use crate::raft::network::MAX_MESSAGE_BYTES;
use crate::scatter::device_to_message;
use crate::shard::{Consistency, Shard};
use radar_core::{DeviceKey, ShardId, Timestamp};
use radar_proto::fleet as pb;
use radar_proto::fleet::fleet_server::{Fleet, FleetServer};
use radar_twin::query::{self, EvalContext};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// Devices per streamed batch.
const BATCH: usize = 256;

pub struct FleetService {
    core: Arc<NodeCore>,
}

pub fn service(core: Arc<NodeCore>) -> FleetServer<FleetService> {
    FleetServer::new(FleetService { core })
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

impl FleetService {
    async fn replica(&self, shard: u32, stale: bool) -> Result<Arc<Shard>, Status> {
        let replica = self
            .core
            .fleet
            .view()
            .replicas
            .get(&ShardId(shard))
            .cloned()
            .ok_or_else(|| Status::not_found(format!("shard {shard} has no replica here")))?;
        if !stale {
            replica
                .read_barrier(Consistency::Linearizable)
                .await
                .map_err(|e| Status::unavailable(e.to_string()))?;
        }
        Ok(replica)
    }
}

fn context(message: Option<pb::EvalContext>, local: EvalContext) -> EvalContext {
    match message {
        Some(c) => EvalContext {
            now: Timestamp(c.now_ms),
            online_window: Duration::from_millis(c.online_window_ms),
            overdue_grace: Duration::from_millis(c.overdue_grace_ms),
        },
        None => local,
    }
}

type DeviceStream = Pin<Box<dyn Stream<Item = Result<pb::DeviceBatch, Status>> + Send>>;

#[tonic::async_trait]
impl Fleet for FleetService {
    type QueryShardStream = DeviceStream;

    async fn query_shard(
        &self,
        request: Request<pb::ShardQuery>,
    ) -> Result<Response<DeviceStream>, Status> {
        let request = request.into_inner();
        let expr =
            query::parse(&request.query).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let cursor = match request.cursor.as_str() {
            "" => None,
            c => Some(DeviceKey::parse(c).map_err(|e| Status::invalid_argument(e.to_string()))?),
        };
        let ctx = context(request.context, self.core.fleet.context());
        let shard = self.replica(request.shard, request.stale).await?;
        let q = DeviceQuery {
            text: request.query,
            expr,
            limit: request.limit.max(1) as usize,
            cursor,
            fields: request.fields,
        };
        let page = tokio::task::spawn_blocking(move || query_shard(&shard, &q, &ctx))
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let mut devices = page.devices.into_iter().map(device_to_message).peekable();
            loop {
                let batch: Vec<_> = devices.by_ref().take(BATCH).collect();
                let last = devices.peek().is_none();
                let message = pb::DeviceBatch {
                    devices: batch,
                    more: last && page.more,
                    scanned: if last { page.scanned } else { 0 },
                };
                if tx.send(Ok(message)).await.is_err() || last {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn audit_shard(
        &self,
        request: Request<pb::AuditQuery>,
    ) -> Result<Response<pb::AuditReply>, Status> {
        let request = request.into_inner();
        let shard = self.replica(request.shard, request.stale).await?;
        crate::audit::query::serve_shard(shard, request)
            .await
            .map(Response::new)
    }

    async fn count_shard(
        &self,
        request: Request<pb::ShardCount>,
    ) -> Result<Response<pb::CountReply>, Status> {
        let request = request.into_inner();
        let expr =
            query::parse(&request.query).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let ctx = context(request.context, self.core.fleet.context());
        let shard = self.replica(request.shard, request.stale).await?;
        let group_by = (!request.group_by.is_empty()).then_some(request.group_by);
        // Count at the asking node's layout version: wait briefly for it if this node is
        // behind; if this node is ahead, partitions it hands over still count here.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        while self.core.fleet.view().layout_version < request.layout_version
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let view = self.core.fleet.view();
        let count = tokio::task::spawn_blocking(move || {
            let same = view.layout_version <= request.layout_version;
            count_shard(
                &shard,
                same.then_some(&*view),
                &expr,
                group_by.as_deref(),
                &ctx,
            )
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(pb::CountReply {
            total: count.total,
            groups: count.groups.into_iter().collect(),
            scanned: count.scanned,
        }))
    }
}
