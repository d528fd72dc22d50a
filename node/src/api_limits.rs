//! The REST API's limits (issue 13), each a config key (`[api]`) answered with a JSON error
//! and counted in `radar_api_limit_hits_total{limit}`: the body size, and the bounds of a fleet
//! query. The rate per token is the auth layer's (`auth/rate.rs`).

use crate::api::{ApiError, ApiResult};
use crate::core::NodeCore;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use radar_core::ErrorCode;
use radar_twin::query;
use std::sync::Arc;

/// Parses a fleet query within the operator's bounds (`[api]`), counting one refused for its
/// size in `radar_api_limit_hits_total`.
pub(crate) fn parse_query(core: &NodeCore, q: &str) -> ApiResult<query::Expr> {
    query::parse_with(q, core.config.api.query_limits()).map_err(|e| {
        if let Some(limit) = e.limit {
            core.metrics
                .api_limit_hits
                .with_label_values(&[limit.as_str()])
                .inc();
        }
        ApiError::new(ErrorCode::InvalidQuery, e.to_string())
    })
}

/// Refuses a body over `[api] max_body_bytes` with a JSON 413 before any handler reads it.
pub(crate) async fn body_cap(
    State(core): State<Arc<NodeCore>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let cap = core.config.api.max_body_bytes;
    let (parts, body) = request.into_parts();
    let too_large = || {
        core.metrics
            .api_limit_hits
            .with_label_values(&["body"])
            .inc();
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the request body is over {cap} bytes ([api] max_body_bytes)"),
        )
        .into_response()
    };
    let declared = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > cap) {
        return too_large();
    }
    match axum::body::to_bytes(body, cap).await {
        Ok(bytes) => {
            next.run(axum::extract::Request::from_parts(
                parts,
                axum::body::Body::from(bytes),
            ))
            .await
        }
        Err(_) => too_large(),
    }
}
