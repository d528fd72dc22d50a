//! The API's audit log (issue 13): every mutating call that passed authentication leaves a
//! record of who made it (the token id), when, from where, what it asked (secrets replaced),
//! and what came of it. Records are replicated shard state (see `radar_twin::audit`).
//!
//! The [`record_calls`] layer runs around each mutating route's handler, where it is served
//! (behind the proxy to a shard's leader, so a proxied call is recorded once). It opens a
//! scope for the handler's task: every twin command the handler commits through
//! `NodeCore::propose` is wrapped by [`attach`] with the call's record, so the change and its
//! record commit in one Raft entry, and the record holds the change's result and operation.
//! A call that committed no twin change (a refused request, a cluster change) gets a record of
//! its own with the HTTP status, in the device's shard or, for a call about no device, in the
//! shard of a fixed key.

pub mod query;
mod redact;

use crate::auth::Principal;
use crate::core::NodeCore;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use radar_core::{DeviceKey, Timestamp};
use radar_twin::audit::AuditRecord;
use radar_twin::command::AuditedCommand;
use radar_twin::TwinCommand;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The address a proxying node saw its client call from (trusted with the cluster's secret).
pub const CLIENT_ADDR_HEADER: &str = "x-radar-client-addr";

/// Routes records of calls about no device to one shard.
const CLUSTER_RECORDS_KEY: &str = "radar-audit";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Records older than this are removed, on every replica, once an hour.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// How much of a call's parameters a record keeps.
    pub max_detail_bytes: usize,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(90 * 24 * 3600),
            max_detail_bytes: 4096,
        }
    }
}

/// The client's address, from the listener (plain or TLS).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

impl Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>> for ClientAddr {
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

impl Connected<axum::serve::IncomingStream<'_, crate::tls::TlsListener>> for ClientAddr {
    fn connect_info(stream: axum::serve::IncomingStream<'_, crate::tls::TlsListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

/// Set by the auth layer on a call another node proxied: the client it served.
#[derive(Debug, Clone)]
pub struct ProxiedFrom(pub String);

struct Scope {
    record: AuditRecord,
    attached: AtomicU64,
}

tokio::task_local! {
    static SCOPE: Arc<Scope>;
}

/// `command` wrapped with the record of the API call this task serves, if it serves one.
pub fn attach(command: TwinCommand) -> TwinCommand {
    if matches!(
        command,
        TwinCommand::Audited { .. } | TwinCommand::Audit { .. }
    ) {
        return command;
    }
    let record = SCOPE.try_with(|scope| {
        scope.attached.fetch_add(1, Ordering::Relaxed);
        let mut record = scope.record.clone();
        record.device = command.device().as_str().to_owned();
        record
    });
    match record {
        Ok(record) => TwinCommand::Audited {
            record: Box::new(record),
            command: AuditedCommand(Box::new(command)),
        },
        Err(_) => command,
    }
}

fn request_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{:x}-{n:x}", Timestamp::now().as_millis())
}

fn source_of(request: &Request) -> String {
    if let Some(ProxiedFrom(client)) = request.extensions().get::<ProxiedFrom>() {
        return client.clone();
    }
    request
        .extensions()
        .get::<ConnectInfo<ClientAddr>>()
        .map(|ConnectInfo(ClientAddr(addr))| addr.to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The axum layer (see the module comment).
pub async fn record_calls(
    State(core): State<Arc<NodeCore>>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let Some(principal) = request.extensions().get::<Principal>().cloned() else {
        // Only open routes carry no caller, and none of them changes anything.
        return next.run(request).await;
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_default();
    let source = source_of(&request);
    let (parts, body) = request.into_parts();
    // The body cap before this layer has already bounded the body.
    let body = axum::body::to_bytes(body, core.config.api.max_body_bytes)
        .await
        .unwrap_or_default();
    let record = AuditRecord {
        at: Timestamp::now(),
        request: request_id(),
        actor: principal.id.clone(),
        role: principal.role.as_str().to_owned(),
        source,
        method: parts.method.as_str().to_owned(),
        route,
        path: parts.uri.path().to_owned(),
        device: crate::api_routing::device_of(parts.uri.path())
            .map(|k| k.as_str().to_owned())
            .unwrap_or_default(),
        detail: redact::detail(&body, parts.uri.query(), core.config.audit.max_detail_bytes),
        ..Default::default()
    };
    let scope = Arc::new(Scope {
        record,
        attached: AtomicU64::new(0),
    });
    let request = Request::from_parts(parts, axum::body::Body::from(body));
    let response = SCOPE.scope(scope.clone(), next.run(request)).await;
    if scope.attached.load(Ordering::Relaxed) == 0 {
        let mut record = scope.record.clone();
        record.status = response.status().as_u16();
        record.result = if response.status().is_success() {
            "ok".into()
        } else {
            response
                .status()
                .canonical_reason()
                .unwrap_or("error")
                .to_owned()
        };
        record_alone(&core, record).await;
    }
    response
}

/// Commits a record of its own; retried in the background for a while if no shard takes it
/// at once (a cluster just initialized has no shard leader yet).
async fn record_alone(core: &Arc<NodeCore>, record: AuditRecord) {
    let key = DeviceKey::parse(&record.device)
        .or_else(|_| DeviceKey::parse(CLUSTER_RECORDS_KEY))
        .expect("a valid literal key");
    let command = TwinCommand::Audit {
        key,
        record: Box::new(record),
    };
    let first = tokio::time::timeout(Duration::from_secs(5), core.propose(command.clone())).await;
    if matches!(first, Ok(Ok(_))) {
        return;
    }
    let core = core.clone();
    tokio::spawn(async move {
        for _ in 0..60 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if core.propose(command.clone()).await.is_ok() {
                return;
            }
        }
        core.metrics.audit_lost.inc();
        tracing::error!(
            call = ?command,
            "an audit record could not be committed in a minute; it is lost"
        );
    });
}

/// Removes records past `[audit] retention` from this node's replicas, hourly.
pub fn spawn_retention(
    core: Arc<NodeCore>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            let cutoff = Timestamp::now()
                .as_millis()
                .saturating_sub(core.config.audit.retention.as_millis() as u64);
            for shard in core.fleet.shards() {
                let reader = shard.audit.clone();
                let trimmed = tokio::task::spawn_blocking(move || {
                    reader.trim(Timestamp::from_millis(cutoff))
                })
                .await;
                match trimmed {
                    Ok(Ok(0)) => {}
                    Ok(Ok(n)) => tracing::info!(shard = %shard.id, removed = n, "audit retention"),
                    Ok(Err(e)) => tracing::warn!(shard = %shard.id, error = %e, "audit retention"),
                    Err(e) => tracing::warn!(error = %e, "audit retention task"),
                }
            }
        }
    })
}
