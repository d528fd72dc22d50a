//! `GET` and `POST /api/v1/indexes`: the fields this node's replicas index, and adding one
//! online (`crate::index_admin` builds it; in a cluster every other node is asked too).

use crate::api::{ApiError, ApiResult};
use crate::core::NodeCore;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use radar_core::ErrorCode;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Every field indexed on this node's replicas: ready (configured or built) or building, with
/// the progress of those added since the node started.
pub async fn list(State(core): State<Arc<NodeCore>>) -> Json<Value> {
    let mut fields: BTreeMap<String, &'static str> = BTreeMap::new();
    for shard in core.fleet.shards() {
        let state = shard.read();
        for field in state.index.fields() {
            let ready = state.index.field_state(field) == Some(true);
            let entry = fields.entry(field.clone()).or_insert("ready");
            if !ready {
                *entry = "building";
            }
        }
    }
    let builds: BTreeMap<String, crate::index_admin::Build> = core
        .indexes
        .builds()
        .into_iter()
        .map(|b| (b.field.clone(), b))
        .collect();
    let list: Vec<Value> = fields
        .into_iter()
        .map(|(field, state)| match builds.get(&field) {
            Some(build) => json!({"field": field, "state": build.state, "twins_done": build.twins_done, "twins_total": build.twins_total, "error": build.error}),
            None => json!({"field": field, "state": state}),
        })
        .collect();
    Json(json!({"indexes": list}))
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
pub(crate) struct AddIndexRequest {
    field: String,
}

/// Starts indexing a field on this node's replicas; 202 while it builds (`GET` shows progress).
pub async fn add(
    State(core): State<Arc<NodeCore>>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let request: AddIndexRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("expected {{\"field\": \"Device.…\"}}: {e}"),
        )
    })?;
    let build = core
        .indexes
        .add(&request.field, core.fleet.shards())
        .map_err(|e| match e {
            e @ crate::index_admin::IndexAdminError::NotIndexable(..) => {
                ApiError::new(ErrorCode::BadRequest, e.to_string())
            }
            other => ApiError::new(ErrorCode::Internal, other.to_string()),
        })?;
    let mut answer = serde_json::to_value(&build).unwrap_or(Value::Null);
    let mut all_ready = build.state == "ready";
    // In a cluster every node indexes its own replicas.
    if let Some(meta) = &core.meta {
        let others = crate::cluster::indexes::add_on_other_nodes(meta, &request.field).await;
        all_ready &= others.iter().all(|n| n.state == "ready");
        answer["nodes"] = serde_json::to_value(others).unwrap_or(Value::Null);
    }
    let status = match all_ready {
        true => StatusCode::OK,
        false => StatusCode::ACCEPTED,
    };
    Ok((status, Json(answer)))
}
