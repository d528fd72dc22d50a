//! The REST API (DESIGN §4): devices, parameters, operations, fleet queries, cluster state,
//! `/metrics`, `/healthz` and `/readyz`. Every error is `{"error":{"code","message"}}` with a
//! 4xx/5xx status; nothing an operator sends can panic the server.

use crate::api_limits::parse_query;
use crate::core::NodeCore;
use crate::fleet::{summarize, DeviceQuery};
use crate::shard::ProposeError;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use radar_core::{DeviceKey, ErrorCode, ParamPath, Timestamp};
use radar_twin::datamodel::ReportedSpec;
use radar_twin::{ApplyError, Operation, OperationKind, OperationStatus, TwinCommand};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub struct ApiError {
    code: ErrorCode,
    message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = crate::openapi::ErrorBody {
            error: crate::openapi::ErrorDetail {
                code: self.code.as_str().to_owned(),
                message: self.message,
            },
        };
        (status, Json(body)).into_response()
    }
}

impl From<ProposeError> for ApiError {
    fn from(e: ProposeError) -> Self {
        match e {
            ProposeError::Apply(ApplyError::UnknownDevice(d)) => {
                ApiError::new(ErrorCode::NotFound, format!("no device {d}"))
            }
            ProposeError::Apply(ApplyError::UnknownOperation(op)) => {
                ApiError::new(ErrorCode::NotFound, format!("no operation {op}"))
            }
            ProposeError::Apply(e @ ApplyError::NotCancellable { .. }) => {
                ApiError::new(ErrorCode::Conflict, e.to_string())
            }
            other => ApiError::new(ErrorCode::Unavailable, other.to_string()),
        }
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

pub fn router(
    core: Arc<NodeCore>,
    ready: Arc<std::sync::atomic::AtomicBool>,
    auth: Arc<crate::auth::ApiAuth>,
) -> Router {
    let devices = Router::new()
        .route("/api/v1/devices/{id}", get(device_summary))
        .route(
            "/api/v1/devices/{id}/params",
            get(get_params).patch(patch_params),
        )
        .route(
            "/api/v1/devices/{id}/operations",
            get(list_operations).post(post_operation),
        )
        .route(
            "/api/v1/devices/{id}/operations/{op}",
            get(get_operation).delete(cancel_operation),
        )
        .route(
            "/api/v1/devices/{id}/connection-request-credentials",
            axum::routing::put(crate::api_credentials::put_device),
        )
        // Inside the proxy to the leader: a call is recorded where it is served, once.
        .route_layer(axum::middleware::from_fn_with_state(
            core.clone(),
            crate::audit::record_calls,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            core.clone(),
            crate::api_routing::leader_only,
        ));
    let fleet = Router::new()
        .route("/api/v1/devices", get(list_devices))
        .route("/api/v1/query", get(fleet_query))
        .route(
            "/api/v1/connection-request-credentials",
            post(crate::api_credentials::put_fleet),
        )
        .route(
            "/api/v1/indexes",
            get(crate::api_indexes::list).post(crate::api_indexes::add),
        )
        .route("/api/v1/cluster", get(crate::api_cluster::cluster))
        .route(
            "/api/v1/cluster/init",
            post(crate::api_cluster::cluster_init),
        )
        .route(
            "/api/v1/cluster/shards",
            post(crate::api_cluster::cluster_add_shard),
        )
        .route(
            "/api/v1/cluster/nodes",
            post(crate::api_cluster::cluster_add_node),
        )
        .route(
            "/api/v1/cluster/nodes/{id}",
            axum::routing::delete(crate::api_cluster::cluster_remove_node),
        )
        .route("/api/v1/audit", get(crate::audit::query::list))
        .route_layer(axum::middleware::from_fn_with_state(
            core.clone(),
            crate::audit::record_calls,
        ));
    Router::new()
        .merge(devices)
        .merge(fleet)
        .route("/api/v1/openapi.json", get(crate::openapi::document))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move |State(core): State<Arc<NodeCore>>| {
                let ready = ready.clone();
                async move {
                    let shards_ok = core.fleet.shards().iter().all(|s| s.healthy());
                    if ready.load(std::sync::atomic::Ordering::Relaxed) && shards_ok {
                        (StatusCode::OK, "ready\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                    }
                }
            }),
        )
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such endpoint") })
        // Around every route and the fallback, after routing (so it sees the matched route):
        // authentication first, then the body cap.
        .layer(axum::middleware::from_fn_with_state(
            core.clone(),
            crate::api_limits::body_cap,
        ))
        .layer(axum::middleware::from_fn_with_state(
            auth,
            crate::auth::require_role,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(
            core.config.api.max_body_bytes,
        ))
        .with_state(core)
}

pub(crate) fn device_key(raw: &str) -> ApiResult<DeviceKey> {
    DeviceKey::parse(raw).map_err(|e| ApiError::new(ErrorCode::BadRequest, e.to_string()))
}

/// Parses query-string parameters ourselves so a malformed one is a JSON 400, like every error.
pub(crate) fn params(raw: Option<String>) -> HashMap<String, String> {
    raw.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

/// `?consistency=stale` lets any replica answer; the default is linearizable.
pub(crate) fn consistency(p: &HashMap<String, String>) -> ApiResult<crate::shard::Consistency> {
    match p.get("consistency").map(String::as_str) {
        None | Some("linearizable") => Ok(crate::shard::Consistency::Linearizable),
        Some("stale") => Ok(crate::shard::Consistency::Stale),
        Some(other) => Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("consistency must be linearizable or stale, not {other:?}"),
        )),
    }
}

/// `?limit=N`: `default` when absent; a 400 outside 1 to `max` (the OpenAPI document says so).
pub(crate) fn page_limit(
    p: &HashMap<String, String>,
    default: usize,
    max: usize,
) -> ApiResult<usize> {
    match p.get("limit") {
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=max).contains(l))
            .ok_or_else(|| {
                ApiError::new(ErrorCode::BadRequest, format!("limit must be 1 to {max}"))
            }),
        None => Ok(default),
    }
}

async fn list_devices(
    State(core): State<Arc<NodeCore>>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let p = params(raw);
    let expr = parse_query(&core, p.get("q").map(String::as_str).unwrap_or(""))?;
    let limit = page_limit(&p, 100, 10_000)?;
    let fields = p
        .get("fields")
        .map(|f| {
            f.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let cursor = p
        .get("cursor")
        .filter(|c| !c.is_empty())
        .map(|c| {
            DeviceKey::parse(c)
                .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("cursor: {e}")))
        })
        .transpose()?;
    let text = p.get("q").cloned().unwrap_or_default();
    let answer = crate::scatter::devices(
        &core,
        DeviceQuery {
            text,
            expr,
            limit,
            cursor,
            fields,
        },
        consistency(&p)?,
    )
    .await;
    Ok(Json(serde_json::to_value(answer).unwrap_or(Value::Null)))
}

async fn device_summary(
    State(core): State<Arc<NodeCore>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let key = device_key(&id)?;
    let ctx = core.fleet.context();
    core.fleet
        .with_twin(&key, |twin, dict| {
            let summary = summarize(twin, dict, &ctx, &[]);
            let m = &twin.meta;
            json!({
                "id": summary.id,
                "protocol": summary.protocol,
                "protocols": m.protocols,
                "mtp": m.mtp,
                "online": summary.online,
                "overdue": radar_twin::query::is_overdue(twin, dict, &ctx),
                "usp_versions": m.usp_versions,
                "last_contact": summary.last_contact,
                "first_contact": m.first_contact.to_rfc3339(),
                "oui": m.oui,
                "product_class": m.product_class,
                "serial": m.serial,
                "manufacturer": m.manufacturer,
                "software_version": m.software_version,
                "root": m.root,
                "connection_request_url": m.connection_request_url,
                "connection_request": connection_request_json(m),
                "discovered_at": m.discovered_at.map(|t| t.to_rfc3339()),
                "notifications_configured": m.notifications_configured,
                "notification_refused": m.notification_refused,
                "notification_fault": m.notification_fault.as_ref().map(|f| json!({"at": f.at.to_rfc3339(), "code": f.code, "message": f.message})),
                "subscriptions": subscriptions_json(m),
                "sessions": m.sessions,
                "quirks": m.quirks,
                "last_inform_events": m.last_inform_events,
                "counts": {
                    "params": twin.params.len(),
                    "operations": twin.operations.len(),
                    "pending_operations": twin.pending_operations().count(),
                },
                "pending_operations": twin.pending_operations().map(operation_json).collect::<Vec<_>>(),
                "events": twin.events.iter().map(|e| json!({"at": e.at.to_rfc3339(), "kind": e.kind, "detail": e.detail, "count": e.repeated, "first_at": e.first_at.to_rfc3339()})).collect::<Vec<_>>(),
            })
        })
        .map(Json)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no device {key}")))
}

/// What Radar knows about reaching the device with a connection request. The password is
/// never shown: only whether one is held.
fn connection_request_json(m: &radar_twin::Meta) -> Value {
    json!({
        "url": m.connection_request_url,
        "username": m.connection_request_username,
        "password_set": !m.connection_request_password.is_empty(),
        "credentials_source": m.connection_request_credentials_source.name(),
        "last": m.connection_request_status.as_ref().map(|s| json!({
            "at": s.at.to_rfc3339(),
            "outcome": s.outcome,
            "detail": s.detail,
        })),
    })
}

/// A value as read routes show it: secrets (passwords, keys) never in clear.
fn shown(path: &str, value: &str) -> String {
    if radar_twin::credentials::is_secret(path) && !value.is_empty() {
        SECRET_MASK.into()
    } else {
        value.into()
    }
}

const SECRET_MASK: &str = "***";

/// Where Radar's USP subscriptions stand on the agent, as it answered (empty for CWMP).
fn subscriptions_json(m: &radar_twin::Meta) -> Value {
    use radar_twin::SubscriptionStanding;
    let with = |state: &str| -> Vec<Value> {
        m.subscriptions
            .iter()
            .filter(|s| s.standing.name() == state)
            .map(|s| {
                let mut entry = json!({"notif_type": s.notif_type, "reference": s.reference});
                match &s.standing {
                    SubscriptionStanding::InPlace { note } if !note.is_empty() => {
                        entry["note"] = json!(note)
                    }
                    SubscriptionStanding::InPlace { .. } => {}
                    SubscriptionStanding::Refused { code, message } => {
                        entry["code"] = json!(code);
                        entry["message"] = json!(message);
                    }
                    SubscriptionStanding::NotInDataModel { reason } => {
                        entry["reason"] = json!(reason)
                    }
                }
                entry
            })
            .collect()
    };
    json!({
        "wanted": m.subscriptions.len(),
        "checked_at": m.subscriptions_checked_at.map(|t| t.to_rfc3339()),
        "in_place": with("in_place"),
        "refused": with("refused"),
        "not_in_data_model": with("not_in_data_model"),
    })
}

async fn get_params(
    State(core): State<Arc<NodeCore>>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let key = device_key(&id)?;
    let p = params(raw);
    let prefix = p.get("prefix").cloned().unwrap_or_default();
    core.fleet
        .with_twin(&key, |twin, dict| {
            let params: serde_json::Map<String, Value> = twin
                .params_under(dict, &prefix)
                .into_iter()
                .map(|(path, p)| {
                    (path.clone(), json!({"value": shown(&path, p.value.as_str()), "type": p.ty.name(), "writable": p.writable, "reported_at": p.reported_at.to_rfc3339(), "source": p.source.name()}))
                })
                .collect();
            let mut desired = serde_json::Map::new();
            for op in twin.pending_operations() {
                if let OperationKind::SetParams { params } = &op.kind {
                    for (path, value) in params.iter().filter(|(p, _)| p.starts_with(&prefix)) {
                        desired.insert(path.clone(), json!({"value": shown(path, value), "operation_id": op.id, "status": op.status.name()}));
                    }
                }
            }
            json!({"params": params, "desired": desired})
        })
        .map(Json)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no device {key}")))
}

pub(crate) fn parse_json<T: for<'de> Deserialize<'de>>(body: &Bytes) -> ApiResult<T> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("invalid json body: {e}")))
}

async fn patch_params(
    State(core): State<Arc<NodeCore>>,
    Path(id): Path<String>,
    caller: Option<axum::Extension<crate::auth::Principal>>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let key = device_key(&id)?;
    let raw: BTreeMap<String, Value> = parse_json(&body)?;
    if raw.is_empty() {
        return Err(ApiError::new(ErrorCode::BadRequest, "no parameters to set"));
    }
    let mut params = BTreeMap::new();
    for (path, value) in raw {
        ParamPath::parse(&path)
            .map_err(|e| ApiError::new(ErrorCode::InvalidPath, e.to_string()))?;
        if path.ends_with('.') {
            return Err(ApiError::new(
                ErrorCode::InvalidPath,
                format!("{path} is an object, not a parameter"),
            ));
        }
        let value = match value {
            Value::String(s) => s,
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            other => {
                return Err(ApiError::new(
                    ErrorCode::InvalidValue,
                    format!("{path}: {other} is not a scalar"),
                ))
            }
        };
        params.insert(path, value);
    }
    // Validate against the data model (and the device's own report for vendor paths) before
    // anything is queued.
    let checked = core.fleet.with_twin(&key, |twin, dict| -> ApiResult<()> {
        for (path, value) in &params {
            let reported = twin.param_by_path(dict, path).map(|p| ReportedSpec {
                ty: p.ty,
                writable: p.writable,
            });
            // A device-reported writable=false wins even for model paths, where discovery knows.
            if let Some(r) = reported {
                if !r.writable && twin.meta.discovered_at.is_some() {
                    return Err(ApiError::new(
                        ErrorCode::ReadOnly,
                        format!("{path} is read-only on this device"),
                    ));
                }
            }
            core.model.validate(path, value, reported).map_err(|e| {
                let code = match e {
                    radar_twin::datamodel::ValidationError::ReadOnly { .. }
                    | radar_twin::datamodel::ValidationError::ReadOnlyOnDevice { .. } => {
                        ErrorCode::ReadOnly
                    }
                    radar_twin::datamodel::ValidationError::UnknownPath { .. } => {
                        ErrorCode::InvalidPath
                    }
                    _ => ErrorCode::InvalidValue,
                };
                ApiError::new(code, e.to_string())
            })?;
        }
        Ok(())
    });
    match checked {
        None => {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!("no device {key}"),
            ))
        }
        Some(r) => r?,
    }
    let ttl = ttl_from(&headers)?;
    let op = core
        .enqueue(
            &key,
            OperationKind::SetParams { params },
            &requested_by(&caller),
            ttl,
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(operation_json(&op))))
}

/// Who asked: the token the auth layer authenticated (never a header the caller chose).
fn requested_by(caller: &Option<axum::Extension<crate::auth::Principal>>) -> String {
    caller
        .as_ref()
        .map(|axum::Extension(p)| p.id.chars().take(64).collect())
        .unwrap_or_else(|| "api".into())
}

/// A TTL such as `10m` in milliseconds; `what` names where it came from in the error.
fn parse_ttl(text: &str, what: &str) -> ApiResult<u64> {
    humantime::parse_duration(text)
        .map(|d| d.as_millis() as u64)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("{what}: {e}")))
}

fn ttl_from(headers: &axum::http::HeaderMap) -> ApiResult<Option<u64>> {
    headers
        .get("x-radar-ttl")
        .and_then(|v| v.to_str().ok())
        .map(|v| parse_ttl(v, "x-radar-ttl"))
        .transpose()
}

async fn post_operation(
    State(core): State<Arc<NodeCore>>,
    Path(id): Path<String>,
    caller: Option<axum::Extension<crate::auth::Principal>>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let key = device_key(&id)?;
    let mut value: Value = parse_json(&body)?;
    let ttl_field = value.as_object_mut().and_then(|o| o.remove("ttl"));
    let kind = OperationKind::from_flat_json(value)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("invalid operation: {e}")))?;
    match &kind {
        OperationKind::AddObject { path } | OperationKind::DeleteObject { path } => {
            ParamPath::parse(path)
                .map_err(|e| ApiError::new(ErrorCode::InvalidPath, e.to_string()))?;
            if !path.ends_with('.') {
                return Err(ApiError::new(
                    ErrorCode::InvalidPath,
                    format!("{path} must be an object path ending in '.'"),
                ));
            }
        }
        OperationKind::Download { url, .. } | OperationKind::Upload { url, .. }
            if !["http://", "https://", "ftp://"]
                .iter()
                .any(|s| url.starts_with(s)) =>
        {
            return Err(ApiError::new(
                ErrorCode::InvalidValue,
                "url must be http, https or ftp",
            ));
        }
        OperationKind::SetParams { .. } => {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                "use PATCH /params to set parameters",
            ));
        }
        _ => {}
    }
    let protocols = core
        .fleet
        .with_twin(&key, |twin, _| {
            if twin.meta.protocols.is_empty() {
                vec![twin.meta.protocol.clone()]
            } else {
                twin.meta.protocols.clone()
            }
        })
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no device {key}")))?;
    // A dual-stack device takes what either of its protocols can carry.
    if !protocols.iter().any(|p| kind.supported_by(p)) {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!(
                "{} is not available over {}",
                kind.name(),
                protocols.join(" or ")
            ),
        ));
    }
    if let OperationKind::Operate { command, .. } = &kind {
        if !command.starts_with("Device.") || !command.ends_with("()") {
            return Err(ApiError::new(
                ErrorCode::InvalidPath,
                format!("{command:?} is not a command path such as Device.Reboot()"),
            ));
        }
    }
    let ttl = match ttl_field.as_ref().and_then(Value::as_str) {
        Some(t) => Some(parse_ttl(t, "ttl")?),
        None => ttl_from(&headers)?,
    };
    let op = core
        .enqueue(&key, kind, &requested_by(&caller), ttl)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(operation_json(&op))))
}

pub fn operation_json(op: &Operation) -> Value {
    let mut request = op.kind.to_flat_json();
    // Transfer credentials are write-only: never echo them back.
    if let Some(p) = request
        .get_mut("password")
        .filter(|p| p.as_str().is_some_and(|s| !s.is_empty()))
    {
        *p = json!(SECRET_MASK);
    }
    // Nor secrets written as parameters.
    if let Some(Value::Object(params)) = request.get_mut("params") {
        for (path, value) in params.iter_mut() {
            if let Value::String(v) = value {
                *v = shown(path, v);
            }
        }
    }
    let status = op.effective_status(Timestamp::now());
    let mut v = json!({
        "id": op.id,
        "kind": op.kind.name(),
        "request": request,
        "status": status.name(),
        "created_at": op.created_at.to_rfc3339(),
        "requested_by": op.requested_by,
        "attempts": op.attempts,
        "expires_at": op.expires_at.map(|t| t.to_rfc3339()),
    });
    match &status {
        OperationStatus::Expired { at } | OperationStatus::Cancelled { at } => {
            v["finished_at"] = json!(at.to_rfc3339());
        }
        OperationStatus::Failed { at, code, message } => {
            v["fault"] = json!({"code": code, "message": message});
            v["finished_at"] = json!(at.to_rfc3339());
        }
        OperationStatus::Done { at, detail } => {
            v["detail"] = json!(detail);
            v["finished_at"] = json!(at.to_rfc3339());
        }
        OperationStatus::Sent { at } => v["sent_at"] = json!(at.to_rfc3339()),
        OperationStatus::Superseded { by, .. } => v["superseded_by"] = json!(by),
        _ => {}
    }
    v
}

async fn list_operations(
    State(core): State<Arc<NodeCore>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let key = device_key(&id)?;
    core.fleet
        .with_twin(&key, |twin, _| json!({"operations": twin.operations.iter().map(operation_json).collect::<Vec<_>>()}))
        .map(Json)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no device {key}")))
}

fn operation_id(raw: &str) -> ApiResult<u64> {
    raw.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("{raw:?} is not an operation id"),
        )
    })
}

async fn get_operation(
    State(core): State<Arc<NodeCore>>,
    Path((id, op)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let key = device_key(&id)?;
    let op = operation_id(&op)?;
    core.fleet
        .with_twin(&key, |twin, _| twin.operation(op).map(operation_json))
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no device {key}")))?
        .map(Json)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no operation {op}")))
}

async fn cancel_operation(
    State(core): State<Arc<NodeCore>>,
    Path((id, op)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let key = device_key(&id)?;
    let op = operation_id(&op)?;
    core.propose(TwinCommand::CancelOperation {
        device: key.clone(),
        at: Timestamp::now(),
        operation: op,
    })
    .await?;
    get_operation(State(core), Path((id, op.to_string()))).await
}

async fn fleet_query(
    State(core): State<Arc<NodeCore>>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let p = params(raw);
    let expr = parse_query(&core, p.get("q").map(String::as_str).unwrap_or(""))?;
    let text = p.get("q").cloned().unwrap_or_default();
    let answer = crate::scatter::count(
        &core,
        text,
        expr,
        p.get("group_by").cloned(),
        consistency(&p)?,
    )
    .await;
    Ok(Json(serde_json::to_value(answer).unwrap_or(Value::Null)))
}

async fn metrics(State(core): State<Arc<NodeCore>>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        core.metrics.render(),
    )
}
