//! The API's operations as OpenAPI sees them: one stub per route (the handlers stay plain
//! axum functions); bodies and answers name the handlers' own types where they have one.

// The stubs exist for their attributes only.
#![allow(dead_code)]

use super::{ErrorBody, OperationRequest, ParamValue};
use crate::fleet::{CountAnswer, DevicesAnswer};
use utoipa::IntoResponses;

/// The refusals any protected route may answer, each with an [`ErrorBody`].
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum Refusals {
    /// The request is malformed (a bad query, path, value or body).
    #[response(status = 400)]
    BadRequest(#[to_schema] ErrorBody),
    /// No token, or one Radar does not know.
    #[response(status = 401)]
    Unauthorized(#[to_schema] ErrorBody),
    /// The token's role is too weak for this route.
    #[response(status = 403)]
    Forbidden(#[to_schema] ErrorBody),
    /// No such device, operation, node or route.
    #[response(status = 404)]
    NotFound(#[to_schema] ErrorBody),
    /// The request conflicts with the state (an operation already done, an embedded node).
    #[response(status = 409)]
    Conflict(#[to_schema] ErrorBody),
    /// The body is over `[api] max_body_bytes`.
    #[response(status = 413)]
    PayloadTooLarge(#[to_schema] ErrorBody),
    /// The token is over its request rate; retry after `Retry-After` seconds.
    #[response(status = 429)]
    RateLimited(#[to_schema] ErrorBody),
    /// The shard or cluster cannot answer now (no leader, shutting down); retry.
    #[response(status = 503)]
    Unavailable(#[to_schema] ErrorBody),
}

/// List devices matching a fleet query
///
/// Needs the viewer role. Pages in device-id order across every shard.
#[utoipa::path(get, path = "/api/v1/devices", tag = "devices",
    params(
        ("q" = Option<String>, Query, description = "A fleet query (empty: every device)"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 10000, description = "Devices per page (100 unless given)"),
        ("fields" = Option<String>, Query, description = "Comma-separated parameter paths or meta fields to include"),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page"),
        ("consistency" = Option<String>, Query, pattern = "^(linearizable|stale)$"),
    ),
    responses((status = 200, description = "A page of devices", body = DevicesAnswer), Refusals))]
pub fn list_devices() {}

/// A device's twin: identity, status, operations, events (with its audit records)
///
/// Needs the viewer role.
#[utoipa::path(get, path = "/api/v1/devices/{id}", tag = "devices",
    params(("id" = String, Path, description = "The device key, e.g. `os::00D09E-SN1`"),
        ("consistency" = Option<String>, Query, pattern = "^(linearizable|stale)$")),
    responses((status = 200, description = "The device's twin", body = serde_json::Value), Refusals))]
pub fn device_summary() {}

/// A device's reported parameters and the values still to be set
///
/// Needs the viewer role.
#[utoipa::path(get, path = "/api/v1/devices/{id}/params", tag = "devices",
    params(("id" = String, Path), ("prefix" = Option<String>, Query, description = "Only paths under this one"),
        ("consistency" = Option<String>, Query, pattern = "^(linearizable|stale)$")),
    responses((status = 200, description = "`params` and `desired`", body = serde_json::Value), Refusals))]
pub fn get_params() {}

/// Set parameters on a device: queued, delivered now or at its next contact
///
/// Needs the operator role. Values are checked against the data model first.
#[utoipa::path(patch, path = "/api/v1/devices/{id}/params", tag = "devices",
    params(("id" = String, Path), ("x-radar-ttl" = Option<String>, Header, description = "How long the change may wait for the device, e.g. `1h`")),
    request_body(content = std::collections::HashMap<String, ParamValue>, description = "Parameter path → value"),
    responses((status = 202, description = "The operation that carries the change", body = serde_json::Value), Refusals))]
pub fn patch_params() {}

/// A device's operations
///
/// Needs the viewer role.
#[utoipa::path(get, path = "/api/v1/devices/{id}/operations", tag = "operations",
    params(("id" = String, Path)),
    responses((status = 200, description = "`operations`", body = serde_json::Value), Refusals))]
pub fn list_operations() {}

/// Queue an operation on a device (reboot, download, …)
///
/// Needs the operator role.
#[utoipa::path(post, path = "/api/v1/devices/{id}/operations", tag = "operations",
    params(("id" = String, Path), ("x-radar-ttl" = Option<String>, Header)),
    request_body = OperationRequest,
    responses((status = 202, description = "The queued operation", body = serde_json::Value), Refusals))]
pub fn post_operation() {}

/// One operation of a device
///
/// Needs the viewer role.
#[utoipa::path(get, path = "/api/v1/devices/{id}/operations/{op}", tag = "operations",
    params(("id" = String, Path), ("op" = u64, Path)),
    responses((status = 200, description = "The operation", body = serde_json::Value), Refusals))]
pub fn get_operation() {}

/// Cancel an operation that has not been sent
///
/// Needs the operator role.
#[utoipa::path(delete, path = "/api/v1/devices/{id}/operations/{op}", tag = "operations",
    params(("id" = String, Path), ("op" = u64, Path)),
    responses((status = 200, description = "The cancelled operation", body = serde_json::Value), Refusals))]
pub fn cancel_operation() {}

/// Tell Radar the connection-request credentials a device already has
///
/// Needs the operator role. Nothing is written to the device; the password is never shown.
#[utoipa::path(put, path = "/api/v1/devices/{id}/connection-request-credentials", tag = "devices",
    params(("id" = String, Path)),
    request_body = crate::api_credentials::Credentials,
    responses((status = 200, description = "Recorded", body = serde_json::Value), Refusals))]
pub fn put_device_credentials() {}

/// Tell Radar the connection-request credentials of every device a query matches
///
/// Needs the admin role (a bulk change).
#[utoipa::path(post, path = "/api/v1/connection-request-credentials", tag = "devices",
    request_body = crate::api_credentials::FleetCredentials,
    responses((status = 200, description = "`matched`, `updated`, `failed`", body = serde_json::Value), Refusals))]
pub fn put_fleet_credentials() {}

/// Count devices matching a fleet query, optionally grouped by a field
///
/// Needs the viewer role.
#[utoipa::path(get, path = "/api/v1/query", tag = "devices",
    params(("q" = Option<String>, Query), ("group_by" = Option<String>, Query),
        ("consistency" = Option<String>, Query, pattern = "^(linearizable|stale)$")),
    responses((status = 200, description = "The count", body = CountAnswer), Refusals))]
pub fn fleet_query() {}

/// The audit log: who changed what through the API, newest first
///
/// Needs the operator role.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit",
    params(("device" = Option<String>, Query), ("actor" = Option<String>, Query),
        ("since" = Option<String>, Query, description = "An RFC 3339 time or a duration back from now (`24h`)"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 1000, description = "Records per page (100 unless given)"),
        ("cursor" = Option<String>, Query, description = "The `next` of the previous page"),
        ("consistency" = Option<String>, Query, pattern = "^(linearizable|stale)$")),
    responses((status = 200, description = "`records`, `next`, `partial`", body = serde_json::Value), Refusals))]
pub fn audit() {}

/// The fields the shards index
///
/// Needs the viewer role.
#[utoipa::path(get, path = "/api/v1/indexes", tag = "cluster",
    responses((status = 200, description = "`indexes`", body = serde_json::Value), Refusals))]
pub fn list_indexes() {}

/// Index a field on every shard (built in the background)
///
/// Needs the admin role.
#[utoipa::path(post, path = "/api/v1/indexes", tag = "cluster",
    request_body = crate::api_indexes::AddIndexRequest,
    responses((status = 202, description = "Building", body = serde_json::Value), (status = 200, description = "Already indexed", body = serde_json::Value), Refusals))]
pub fn add_index() {}

/// The cluster: nodes, shards, leaders
///
/// Needs the viewer role.
#[utoipa::path(get, path = "/api/v1/cluster", tag = "cluster",
    responses((status = 200, description = "The cluster's status", body = serde_json::Value), Refusals))]
pub fn cluster() {}

/// Form the cluster (idempotent; another shape is refused)
///
/// Needs the admin role.
#[utoipa::path(post, path = "/api/v1/cluster/init", tag = "cluster",
    request_body = crate::cluster::init::InitRequest,
    responses((status = 200, description = "The layout", body = serde_json::Value), Refusals))]
pub fn cluster_init() {}

/// Add a shard and move its partitions to it
///
/// Needs the admin role.
#[utoipa::path(post, path = "/api/v1/cluster/shards", tag = "cluster",
    responses((status = 200, description = "What moved", body = serde_json::Value), Refusals))]
pub fn cluster_add_shard() {}

/// Add a node and move replicas to it
///
/// Needs the admin role.
#[utoipa::path(post, path = "/api/v1/cluster/nodes", tag = "cluster",
    request_body = crate::api_cluster::AddNodeRequest,
    responses((status = 200, description = "What moved", body = serde_json::Value), Refusals))]
pub fn cluster_add_node() {}

/// Remove a node, moving its replicas away first
///
/// Needs the admin role.
#[utoipa::path(delete, path = "/api/v1/cluster/nodes/{id}", tag = "cluster",
    params(("id" = u64, Path)),
    responses((status = 200, description = "What moved", body = serde_json::Value), Refusals))]
pub fn cluster_remove_node() {}

/// This document
///
/// Open: it describes the API and holds no data.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "OpenAPI 3.1", body = serde_json::Value)))]
pub fn openapi_json() {}

/// Prometheus metrics
///
/// Open unless `[auth] metrics_need_token`.
#[utoipa::path(get, path = "/metrics", tag = "meta", security(()),
    responses((status = 200, description = "The Prometheus text format", content_type = "text/plain", body = String)))]
pub fn metrics() {}

/// Liveness
///
/// Open.
#[utoipa::path(get, path = "/healthz", tag = "meta", security(()),
    responses((status = 200, description = "Alive", content_type = "text/plain", body = String)))]
pub fn healthz() {}

/// Readiness: every shard of this node has a leader
///
/// Open.
#[utoipa::path(get, path = "/readyz", tag = "meta", security(()),
    responses((status = 200, description = "Ready", content_type = "text/plain", body = String),
        (status = 503, description = "Not ready", content_type = "text/plain", body = String)))]
pub fn readyz() {}
