//! The cluster's API handlers: its status, and the admin's changes (init, add a shard, add
//! or remove a node). Routes are registered in `api.rs`.

use crate::api::{parse_json, ApiError, ApiResult};
use crate::core::NodeCore;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use radar_core::ErrorCode;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

pub(crate) async fn cluster(State(core): State<Arc<NodeCore>>) -> Json<Value> {
    if let Some(meta) = &core.meta {
        return Json(
            crate::cluster::status::cluster_status(&core, meta, Duration::from_secs(2)).await,
        );
    }
    let shards: Vec<Value> = core
        .fleet
        .shards()
        .iter()
        .map(|s| json!({"id": s.id.0, "leader": core.config.node_id, "voters": [core.config.node_id], "devices": s.read().twins.len(), "healthy": s.healthy()}))
        .collect();
    Json(json!({
        "layout_version": 1,
        "partitions": core.config.partitions,
        "shards": shards,
        "nodes": [{"id": core.config.node_id, "api": core.config.listen.api.to_string(), "mode": "embedded"}],
    }))
}

pub(crate) async fn cluster_init(
    State(core): State<Arc<NodeCore>>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let request: crate::cluster::init::InitRequest = parse_json(&body)?;
    let Some(meta) = &core.meta else {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "this node runs embedded (no seeds): its layout is fixed at one node",
        ));
    };
    let layout = crate::cluster::init::init_cluster(
        meta,
        &core.config.cluster.seeds,
        core.config.partitions,
        request,
        core.config.raft.election_timeout_max * 20,
    )
    .await
    .map_err(|e| match e {
        crate::cluster::meta::MetaError::Refused(m) => ApiError::new(ErrorCode::Conflict, m),
        other => ApiError::new(ErrorCode::Unavailable, other.to_string()),
    })?;
    Ok(Json(json!({
        "layout_version": layout.version,
        "partitions": layout.partitions,
        "replicas": layout.replicas,
        "shards": layout.shards.iter().map(|s| json!({"id": s.id.0, "voters": s.voters})).collect::<Vec<_>>(),
        "nodes": layout.nodes.keys().collect::<Vec<_>>(),
    })))
}

/// `radar cluster add-shard`: adds a shard and moves its partitions to it (answers when done).
pub(crate) async fn cluster_add_shard(State(core): State<Arc<NodeCore>>) -> ApiResult<Json<Value>> {
    let meta = cluster_meta(&core)?;
    let patience = core.config.raft.election_timeout_max * 30;
    let report = crate::cluster::rebalance::add_shard(meta, patience)
        .await
        .map_err(rebalance_error)?;
    Ok(Json(serde_json::to_value(report).unwrap_or(Value::Null)))
}

fn cluster_meta(core: &NodeCore) -> ApiResult<&crate::cluster::meta::MetaGroup> {
    core.meta.as_deref().ok_or_else(|| {
        ApiError::new(
            ErrorCode::Conflict,
            "this node runs embedded (no seeds): its layout is fixed at one node",
        )
    })
}

fn rebalance_error(e: crate::cluster::rebalance::RebalanceError) -> ApiError {
    use crate::cluster::meta::MetaError;
    use crate::cluster::rebalance::RebalanceError;
    match e {
        RebalanceError::Meta(MetaError::Refused(m)) => ApiError::new(ErrorCode::Conflict, m),
        e @ RebalanceError::UnknownNode(_) => ApiError::new(ErrorCode::NotFound, e.to_string()),
        other => ApiError::new(ErrorCode::Unavailable, other.to_string()),
    }
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
pub(crate) struct AddNodeRequest {
    /// The new node's cluster gRPC address (`host:port`).
    address: String,
}

/// `radar cluster add-node`: registers the node at `address` and moves replicas to it.
pub(crate) async fn cluster_add_node(
    State(core): State<Arc<NodeCore>>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let request: AddNodeRequest = parse_json(&body)?;
    let meta = cluster_meta(&core)?;
    let patience = core.config.raft.election_timeout_max * 30;
    let indexes = crate::index_admin::added_fields(&core.config.data_dir);
    let report = crate::cluster::membership::add_node(meta, &request.address, &indexes, patience)
        .await
        .map_err(rebalance_error)?;
    Ok(Json(serde_json::to_value(report).unwrap_or(Value::Null)))
}

/// `radar cluster remove-node`: drains the node (its replicas move away), then removes it.
pub(crate) async fn cluster_remove_node(
    State(core): State<Arc<NodeCore>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    // Parsed here, not by the extractor, so a bad id gets a JSON error like every other.
    let id: u64 = id.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("{id:?} is not a node id (a positive integer)"),
        )
    })?;
    let meta = cluster_meta(&core)?;
    let patience = core.config.raft.election_timeout_max * 30;
    let report = crate::cluster::membership::remove_node(meta, id, patience)
        .await
        .map_err(rebalance_error)?;
    Ok(Json(serde_json::to_value(report).unwrap_or(Value::Null)))
}
