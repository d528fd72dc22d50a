//! radar-router: the stateless front door that sends each CPE to the node leading its shard.
//!
//! Modules:
//! - [`config`]: the router's serde configuration.
//! - [`directory`]: cached layout (gRPC watch) and leader table (polled, refreshed on failure).
//! - [`http_head`]: sans-IO reading of a connection's first HTTP request; USP endpoint ids.
//! - [`identify`]: device key from a CWMP Inform body.
//! - [`proxy`]: first request → node → replay and copy both ways, pinned.
//! - [`cwmp`], [`usp`]: each front door's routing decision.
//! - [`metrics`]: Prometheus metrics.

pub mod config;
pub mod cwmp;
pub mod directory;
pub mod http_head;
pub mod identify;
pub mod metrics;
pub mod proxy;
pub mod usp;

use config::RouterConfig;
use directory::Directory;
use metrics::RouterMetrics;
use proxy::{AsyncRouteFn, ProxySettings};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub struct RouterListeners {
    pub cwmp: TcpListener,
    pub usp: TcpListener,
    pub api: TcpListener,
}

pub struct RunningRouter {
    pub directory: Arc<Directory>,
    pub metrics: Arc<RouterMetrics>,
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Starts the router's front doors, its layout follower and leader poller. Fails only on
/// unreadable TLS files.
pub fn start(
    config: RouterConfig,
    listeners: RouterListeners,
    shutdown: watch::Receiver<bool>,
) -> Result<RunningRouter, String> {
    let metrics = Arc::new(RouterMetrics::new());
    let tls = match &config.tls {
        Some(t) => Some(radar_proto::tls::client(&t.ca, &t.cert, &t.key)?),
        None => None,
    };
    let directory = Directory::new(
        config.seeds.clone(),
        config.connect_timeout,
        tls,
        metrics.clone(),
    );
    let settings = Arc::new(ProxySettings {
        max_first_request_bytes: config.max_first_request_bytes,
        first_request_timeout: config.first_request_timeout,
        connect_timeout: config.connect_timeout,
        per_address: radar_core::source_limit::PerAddress::new(config.max_connections_per_address),
    });
    let patience = Duration::from_secs(5);
    let mut tasks = vec![
        tokio::spawn(directory.clone().follow_layout(shutdown.clone())),
        tokio::spawn(
            directory
                .clone()
                .poll_leaders(config.leader_refresh, shutdown.clone()),
        ),
    ];
    tasks.push(tokio::spawn(accept(
        listeners.cwmp,
        "cwmp",
        Arc::new(cwmp::CwmpRoute { patience }),
        directory.clone(),
        metrics.clone(),
        settings.clone(),
        shutdown.clone(),
    )));
    tasks.push(tokio::spawn(accept(
        listeners.usp,
        "usp_ws",
        Arc::new(usp::UspRoute { patience }),
        directory.clone(),
        metrics.clone(),
        settings,
        shutdown.clone(),
    )));
    tasks.push(tokio::spawn(serve_api(
        listeners.api,
        directory.clone(),
        metrics.clone(),
        shutdown,
    )));
    Ok(RunningRouter {
        directory,
        metrics,
        tasks,
    })
}

async fn accept<R: AsyncRouteFn + Send + Sync + 'static>(
    listener: TcpListener,
    protocol: &'static str,
    route: Arc<R>,
    directory: Arc<Directory>,
    metrics: Arc<RouterMetrics>,
    settings: Arc<ProxySettings>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (client, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, protocol, "accept");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let route = route.clone();
        let directory = directory.clone();
        let metrics = metrics.clone();
        let settings = settings.clone();
        let slot = settings.per_address.try_acquire(peer.ip());
        tokio::spawn(async move {
            let Some(_slot) = slot else {
                proxy::refuse_over_address_limit(client, protocol, &metrics, &settings).await;
                return;
            };
            proxy::serve_connection(client, protocol, directory, metrics, settings, route).await;
        });
    }
}

async fn serve_api(
    listener: TcpListener,
    directory: Arc<Directory>,
    metrics: Arc<RouterMetrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    use axum::routing::get;
    let ready_dir = directory.clone();
    let app = axum::Router::new()
        .route("/metrics", get(move || async move { metrics.render() }))
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || async move {
                let snapshot = ready_dir.snapshot();
                if snapshot.ring.is_some() && !snapshot.leaders.is_empty() {
                    (axum::http::StatusCode::OK, "ready\n")
                } else {
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                }
            }),
        );
    let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = shutdown.changed().await;
    });
    if let Err(e) = serve.await {
        tracing::error!(error = %e, "router api failed");
    }
}
