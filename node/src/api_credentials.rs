//! Connection-request credentials an operator tells Radar (TR-069 §3.2.2): for one device, or
//! for every device a fleet query matches. They are what the device already holds (set at the
//! factory or by another ACS), so nothing is written to the device; Radar uses them for its
//! next connection request. Passwords are accepted here and never shown back by any route.

use crate::api::{device_key, parse_json, ApiError, ApiResult};
use crate::api_limits::parse_query;
use crate::core::NodeCore;
use crate::fleet::DeviceQuery;
use crate::shard::Consistency;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use radar_core::{DeviceKey, ErrorCode, Timestamp};
use radar_twin::TwinCommand;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Credentials {
    username: String,
    password: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FleetCredentials {
    query: String,
    username: String,
    password: String,
}

/// Devices per page while walking a fleet query.
const PAGE: usize = 1_000;

fn check(username: &str) -> ApiResult<()> {
    if username.is_empty() || username.len() > 256 {
        return Err(ApiError::new(
            ErrorCode::InvalidValue,
            "username must be 1 to 256 characters",
        ));
    }
    Ok(())
}

async fn record(core: &NodeCore, device: &DeviceKey, c: &Credentials) -> ApiResult<()> {
    core.propose(TwinCommand::KnownConnectionRequestCredentials {
        device: device.clone(),
        at: Timestamp::now(),
        username: c.username.clone(),
        password: c.password.clone(),
    })
    .await
    .map(|_| ())
    .map_err(ApiError::from)
}

/// `PUT /api/v1/devices/{id}/connection-request-credentials`
pub async fn put_device(
    State(core): State<Arc<NodeCore>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let key = device_key(&id)?;
    let c: Credentials = parse_json(&body)?;
    check(&c.username)?;
    if core.fleet.with_twin(&key, |_, _| ()).is_none() {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no device {key}"),
        ));
    }
    record(&core, &key, &c).await?;
    Ok(Json(json!({
        "id": key.as_str(),
        "username": c.username,
        "password_set": !c.password.is_empty(),
        "source": "operator_known",
    })))
}

/// `POST /api/v1/connection-request-credentials` with `{query, username, password}`.
pub async fn put_fleet(State(core): State<Arc<NodeCore>>, body: Bytes) -> ApiResult<Json<Value>> {
    let f: FleetCredentials = parse_json(&body)?;
    check(&f.username)?;
    let expr = parse_query(&core, &f.query)?;
    let c = Credentials {
        username: f.username,
        password: f.password,
    };
    let (mut matched, mut updated, mut partial) = (0u64, 0u64, false);
    let mut failed: Vec<Value> = Vec::new();
    let mut failed_shards = std::collections::BTreeSet::new();
    let mut cursor = None;
    loop {
        let page = crate::scatter::devices(
            &core,
            DeviceQuery {
                text: f.query.clone(),
                expr: expr.clone(),
                limit: PAGE,
                cursor,
                fields: Vec::new(),
            },
            Consistency::Linearizable,
        )
        .await;
        partial |= page.partial;
        failed_shards.extend(page.failed_shards);
        for d in page.devices {
            matched += 1;
            let Ok(key) = DeviceKey::parse(&d.id) else {
                continue;
            };
            match record(&core, &key, &c).await {
                Ok(()) => updated += 1,
                Err(e) if failed.len() < 100 => {
                    failed.push(json!({"id": d.id, "error": e.message()}))
                }
                Err(_) => {}
            }
        }
        cursor = match page.next_cursor.map(|c| DeviceKey::parse(&c)) {
            Some(Ok(next)) => Some(next),
            _ => break,
        };
    }
    Ok(Json(json!({
        "matched": matched,
        "updated": updated,
        "failed": failed,
        "partial": partial,
        "failed_shards": failed_shards,
    })))
}
