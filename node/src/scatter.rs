//! Scatter-gather fleet queries. The node that takes a query fans it out to every shard of the
//! layout in parallel: a shard this node leads (or, for stale reads, has any replica of) is
//! queried in place on the blocking pool; any other goes over gRPC (`Fleet.QueryShard`,
//! `Fleet.CountShard`) to the node that leads it. Each shard has a deadline; a shard that
//! misses it, or cannot be reached, makes the answer `partial` and is named in
//! `failed_shards`. The query never fails as a whole and never hangs.

use crate::core::NodeCore;
use crate::fleet::{
    count_shard, keep_owned, merge_counts, merge_pages, query_shard, CountAnswer, DeviceQuery,
    DeviceSummary, DevicesAnswer, ShardCount, ShardPage,
};
use crate::raft::network::MAX_MESSAGE_BYTES;
use crate::shard::{Consistency, Shard};
use radar_core::{NodeInfo, ShardId};
use radar_proto::fleet as pb;
use radar_proto::fleet::fleet_client::FleetClient;
use radar_twin::query::{EvalContext, Expr};
use std::future::Future;
use std::sync::Arc;

pub(crate) enum Target {
    Local(Arc<Shard>),
    Remote(NodeInfo),
}

/// Where shard `id` is asked.
pub(crate) async fn target(core: &NodeCore, id: ShardId, stale: bool) -> Option<Target> {
    let local = core.fleet.view().replicas.get(&id).cloned();
    let Some(meta) = &core.meta else {
        return local.map(Target::Local);
    };
    if let Some(shard) = &local {
        if stale || shard.is_leader() {
            return local.map(Target::Local);
        }
    }
    let leader = match local.as_ref().and_then(|s| s.leader()) {
        Some(leader) => Some(leader),
        None => crate::cluster::status::find_leader(meta, id).await,
    }?;
    meta.current()
        .nodes
        .get(&leader)
        .cloned()
        .map(Target::Remote)
}

fn shard_ids(view: &crate::fleet::FleetView) -> Vec<ShardId> {
    match &view.ring {
        Some(ring) => ring.shards().to_vec(),
        None => view.replicas.keys().copied().collect(),
    }
}

fn context_message(ctx: &EvalContext) -> pb::EvalContext {
    pb::EvalContext {
        now_ms: ctx.now.0,
        online_window_ms: ctx.online_window.as_millis() as u64,
        overdue_grace_ms: ctx.overdue_grace.as_millis() as u64,
    }
}

/// Runs `ask` for every shard of `view`, each bounded by the fleet's deadline.
pub(crate) async fn scatter<T, F, Fut>(
    core: &Arc<NodeCore>,
    view: &crate::fleet::FleetView,
    ask: F,
) -> Vec<(ShardId, Option<T>)>
where
    F: Fn(Arc<NodeCore>, ShardId) -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = core.fleet.deadline;
    let asks = shard_ids(view).into_iter().map(|id| {
        let answer = ask(core.clone(), id);
        async move {
            match tokio::time::timeout(deadline, answer).await {
                Ok(Some(value)) => (id, Some(value)),
                Ok(None) => {
                    tracing::warn!(shard = id.0, "shard query failed");
                    (id, None)
                }
                Err(_) => {
                    tracing::warn!(shard = id.0, "shard missed the query deadline");
                    (id, None)
                }
            }
        }
    });
    futures_util::future::join_all(asks).await
}

pub async fn devices(
    core: &Arc<NodeCore>,
    q: DeviceQuery,
    consistency: Consistency,
) -> DevicesAnswer {
    let limit = q.limit;
    let q = Arc::new(q);
    let ctx = core.fleet.context();
    let stale = consistency == Consistency::Stale;
    // One layout version for the whole page: the shards asked and the owners kept.
    let view = core.fleet.view();
    let pages = scatter(core, &view, |core, id| {
        let q = q.clone();
        async move {
            match target(&core, id, stale).await? {
                Target::Local(shard) => {
                    if !stale {
                        shard.read_barrier(Consistency::Linearizable).await.ok()?;
                    }
                    tokio::task::spawn_blocking(move || query_shard(&shard, &q, &ctx))
                        .await
                        .ok()
                }
                Target::Remote(node) => remote_page(&core, &node, id, &q, &ctx, stale).await,
            }
        }
    })
    .await;
    let mut pages = pages;
    let complete_to = keep_owned(&mut pages, view.ring.as_ref());
    merge_pages(pages, limit, complete_to)
}

pub async fn count(
    core: &Arc<NodeCore>,
    text: String,
    expr: Expr,
    group_by: Option<String>,
    consistency: Consistency,
) -> CountAnswer {
    let expr = Arc::new(expr);
    let ctx = core.fleet.context();
    let stale = consistency == Consistency::Stale;
    // One layout version for the whole count: the shards asked and the owners counted.
    let view = core.fleet.view();
    let answers = scatter(core, &view, |core, id| {
        let expr = expr.clone();
        let group_by = group_by.clone();
        let text = text.clone();
        let view = view.clone();
        async move {
            match target(&core, id, stale).await? {
                Target::Local(shard) => {
                    if !stale {
                        shard.read_barrier(Consistency::Linearizable).await.ok()?;
                    }
                    tokio::task::spawn_blocking(move || {
                        count_shard(&shard, Some(&view), &expr, group_by.as_deref(), &ctx)
                    })
                    .await
                    .ok()
                }
                Target::Remote(node) => {
                    let request = pb::ShardCount {
                        shard: id.0,
                        query: text,
                        group_by: group_by.unwrap_or_default(),
                        stale,
                        context: Some(context_message(&ctx)),
                        layout_version: view.layout_version,
                    };
                    remote_count(&core, &node, request).await
                }
            }
        }
    })
    .await;
    merge_counts(answers)
}

pub(crate) fn fleet_client(
    core: &NodeCore,
    node: &NodeInfo,
) -> Option<FleetClient<tonic::transport::Channel>> {
    let channel = core
        .meta
        .as_ref()?
        .peers
        .channel(node.id, &node.grpc)
        .ok()?;
    Some(FleetClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES))
}

async fn remote_page(
    core: &NodeCore,
    node: &NodeInfo,
    shard: ShardId,
    q: &DeviceQuery,
    ctx: &EvalContext,
    stale: bool,
) -> Option<ShardPage> {
    let request = pb::ShardQuery {
        shard: shard.0,
        query: q.text.clone(),
        limit: q.limit as u32,
        cursor: q.cursor.as_ref().map(|c| c.to_string()).unwrap_or_default(),
        fields: q.fields.clone(),
        stale,
        context: Some(context_message(ctx)),
    };
    let mut stream = fleet_client(core, node)?
        .query_shard(request)
        .await
        .map_err(|s| tracing::warn!(shard = shard.0, node = node.id, error = %s.message(), "remote shard query"))
        .ok()?
        .into_inner();
    let mut page = ShardPage {
        devices: Vec::new(),
        more: false,
        scanned: 0,
    };
    while let Some(batch) = stream.message().await.ok()? {
        page.more |= batch.more;
        page.scanned += batch.scanned;
        page.devices
            .extend(batch.devices.into_iter().map(device_from_message));
    }
    Some(page)
}

async fn remote_count(
    core: &NodeCore,
    node: &NodeInfo,
    request: pb::ShardCount,
) -> Option<ShardCount> {
    let shard = ShardId(request.shard);
    let reply = fleet_client(core, node)?
        .count_shard(request)
        .await
        .map_err(|s| tracing::warn!(shard = shard.0, node = node.id, error = %s.message(), "remote shard count"))
        .ok()?
        .into_inner();
    Some(ShardCount {
        total: reply.total,
        groups: reply.groups.into_iter().collect(),
        scanned: reply.scanned,
    })
}

pub fn device_to_message(d: DeviceSummary) -> pb::Device {
    pb::Device {
        id: d.id,
        protocol: d.protocol,
        mtp: d.mtp,
        online: d.online,
        last_contact: d.last_contact,
        oui: d.oui,
        product_class: d.product_class,
        serial: d.serial,
        software_version: d.software_version,
        fields: d
            .fields
            .into_iter()
            .map(|(k, value)| (k, pb::FieldValue { value }))
            .collect(),
    }
}

fn device_from_message(d: pb::Device) -> DeviceSummary {
    DeviceSummary {
        id: d.id,
        protocol: d.protocol,
        mtp: d.mtp,
        online: d.online,
        last_contact: d.last_contact,
        oui: d.oui,
        product_class: d.product_class,
        serial: d.serial,
        software_version: d.software_version,
        fields: d.fields.into_iter().map(|(k, v)| (k, v.value)).collect(),
    }
}
