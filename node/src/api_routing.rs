//! Where a device request is served. Reads are linearizable by default: the node that leads
//! the device's shard confirms its leadership with a quorum (openraft's read index) and serves
//! the request once its state machine has caught up. `?consistency=stale` is served by any
//! local replica as it is. A node that is not the leader proxies the request to the leader's
//! node, once: a proxied request is served where it lands, or answered 503 with a JSON error.

use crate::api::ApiError;
use crate::core::NodeCore;
use crate::shard::{Consistency, ProposeError};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use radar_core::{DeviceKey, ErrorCode};
use std::sync::Arc;

/// Marks a request one node proxied to another.
pub const FORWARDED_HEADER: &str = "x-radar-forwarded";

/// Largest request body proxied to the leader (device writes are small).
const MAX_PROXIED_BODY: usize = 4 * 1024 * 1024;

pub async fn leader_only(
    State(core): State<Arc<NodeCore>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(key) = device_of(request.uri().path()) else {
        return next.run(request).await;
    };
    let query = crate::api::params(request.uri().query().map(str::to_owned));
    let stale = match crate::api::consistency(&query) {
        Ok(consistency) => consistency == Consistency::Stale,
        Err(e) => return e.into_response(),
    };
    let forwarded = request.headers().contains_key(FORWARDED_HEADER);
    let Some(shard) = core.fleet.shard_for(&key) else {
        if forwarded || core.meta.is_none() {
            return unavailable("this node hosts no replica of the device's shard");
        }
        return proxy_to_leader(&core, &key, None, request).await;
    };
    let writes = request.method() != axum::http::Method::GET;
    if stale && !writes {
        return next.run(request).await;
    }
    match shard.read_barrier(Consistency::Linearizable).await {
        Ok(()) => next.run(request).await,
        Err(ProposeError::NotLeader { leader, .. }) if !forwarded && core.meta.is_some() => {
            proxy_to_leader(&core, &key, leader, request).await
        }
        Err(e) => unavailable(&e.to_string()),
    }
}

/// `/api/v1/devices/{id}/…` → the device key.
pub(crate) fn device_of(path: &str) -> Option<DeviceKey> {
    let rest = path.strip_prefix("/api/v1/devices/")?;
    let raw = rest.split('/').next()?;
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()?;
    DeviceKey::parse(&decoded).ok()
}

fn unavailable(message: &str) -> Response {
    ApiError::new(ErrorCode::Unavailable, message.to_owned()).into_response()
}

async fn proxy_to_leader(
    core: &NodeCore,
    key: &DeviceKey,
    hint: Option<u64>,
    request: Request,
) -> Response {
    let Some(meta) = &core.meta else {
        return unavailable("no leader known");
    };
    let layout = meta.current();
    let leader = match (hint, core.fleet.shard_id_for(key)) {
        (Some(leader), _) => Some(leader),
        (None, Some(shard)) => crate::cluster::status::find_leader(meta, shard).await,
        (None, None) => None,
    };
    let Some(node) = leader.and_then(|id| layout.nodes.get(&id)) else {
        return unavailable("the device's shard has no known leader; retry shortly");
    };
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_PROXIED_BODY).await else {
        return ApiError::new(
            ErrorCode::BadRequest,
            "request body too large or unreadable",
        )
        .into_response();
    };
    let url = format!(
        "http://{}{}",
        node.api,
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let mut outgoing = reqwest::Client::new().request(parts.method.clone(), url);
    for (name, value) in parts.headers.iter() {
        // The caller's token stays here: the leader's node is told who the caller is, as the
        // cluster (issue 13).
        if name != axum::http::header::HOST
            && name != axum::http::header::CONTENT_LENGTH
            && name != axum::http::header::AUTHORIZATION
        {
            outgoing = outgoing.header(name, value);
        }
    }
    if let Some(principal) = parts.extensions.get::<crate::auth::Principal>() {
        let client = match parts.extensions.get::<crate::audit::ProxiedFrom>() {
            Some(crate::audit::ProxiedFrom(client)) => client.clone(),
            None => parts
                .extensions
                .get::<axum::extract::ConnectInfo<crate::audit::ClientAddr>>()
                .map(|c| c.0 .0.to_string())
                .unwrap_or_default(),
        };
        outgoing = outgoing
            .header(crate::audit::CLIENT_ADDR_HEADER, client)
            .bearer_auth(&layout.cluster_secret)
            .header(crate::auth::ON_BEHALF_OF_HEADER, &principal.id)
            .header(crate::auth::ROLE_HEADER, principal.role.as_str());
    }
    let answer = outgoing
        .header(FORWARDED_HEADER, HeaderValue::from_static("1"))
        .body(body)
        .timeout(std::time::Duration::from_secs(30))
        .send()
        .await;
    match answer {
        Ok(answer) => {
            let status =
                StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let content_type = answer.headers().get(reqwest::header::CONTENT_TYPE).cloned();
            let bytes = answer.bytes().await.unwrap_or_else(|_| Bytes::new());
            let mut response = Response::new(Body::from(bytes));
            *response.status_mut() = status;
            if let Some(ct) = content_type {
                if let Ok(ct) = HeaderValue::from_bytes(ct.as_bytes()) {
                    response
                        .headers_mut()
                        .insert(axum::http::header::CONTENT_TYPE, ct);
                }
            }
            response
        }
        Err(e) => unavailable(&format!("leader node {} unreachable: {e}", node.id)),
    }
}
