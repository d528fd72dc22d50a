//! radar-node: the drivers (CWMP now; USP next), the shards, the REST API and metrics.
//!
//! Modules:
//! - [`config`]: the node's serde configuration.
//! - [`shard`]: a shard's twins with group commit to the store.
//! - [`fleet`]: local shards and fleet queries (fan-out with deadlines, merge).
//! - [`core`]: what drivers and the API share.
//! - [`cwmp`]: the TR-069 ACS driver.
//! - [`api`]: the REST API.
//! - [`metrics`]: Prometheus metrics.
//! - [`log_limit`]: per-device rate limiting of warnings.
//! - [`tls`]: TLS for the ACS endpoint.

pub mod api;
pub mod config;
pub mod core;
pub mod cwmp;
pub mod fleet;
pub mod log_limit;
pub mod metrics;
pub mod shard;
pub mod tls;

use crate::config::NodeConfig;
use crate::core::NodeCore;
use crate::cwmp::connection_request::ConnectionRequester;
use crate::fleet::Fleet;
use crate::metrics::Metrics;
use radar_core::ShardId;
use radar_store::{ShardStore, SledDatabase};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("storage: {0}")]
    Storage(#[from] radar_store::StoreError),
    #[error("config: {0}")]
    Config(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// Listeners bound by the caller, so tests can bind port 0 (as mini-redis does).
pub struct Listeners {
    pub cwmp: TcpListener,
    pub api: TcpListener,
}

/// A started node.
pub struct RunningNode {
    pub core: Arc<NodeCore>,
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Opens storage, loads every shard and starts the CWMP endpoint and the API. Returns once the
/// node is serving; `shutdown` (set to true) stops the listeners.
pub async fn start(
    config: NodeConfig,
    listeners: Listeners,
    shutdown: watch::Receiver<bool>,
) -> Result<RunningNode, NodeError> {
    if config.shards == 0 || config.partitions == 0 {
        return Err(NodeError::Config(
            "shards and partitions must be positive".into(),
        ));
    }
    std::fs::create_dir_all(&config.data_dir)?;
    let metrics = Arc::new(Metrics::new());
    let db_dir = config.data_dir.join("twins.sled");
    let db = tokio::task::spawn_blocking(move || SledDatabase::open(&db_dir))
        .await
        .map_err(|e| NodeError::Config(e.to_string()))??;
    let mut shards = Vec::new();
    for id in 0..config.shards {
        let store: Arc<dyn ShardStore> = Arc::new(db.shard(id)?);
        shards.push(shard::Shard::open(
            ShardId(id),
            store,
            config.twin.max_batch,
            metrics.clone(),
        )?);
    }
    let fleet = Fleet::new(
        shards,
        config.partitions,
        config.twin.shard_query_deadline,
        config.cwmp.online_window,
    );
    let core = Arc::new(NodeCore {
        requester: ConnectionRequester::new(config.connection_request.clone(), metrics.clone()),
        plan_config: config.planner.to_plan_config(),
        model: radar_twin::datamodel::DataModel::tr181(),
        fleet,
        metrics,
        config,
    });
    let ready = Arc::new(AtomicBool::new(true));
    let tls = match &core.config.cwmp.tls {
        Some(files) => Some(tls::server_config(&files.cert, &files.key)?),
        None => None,
    };
    let acs = cwmp::server::AcsServer::new(core.clone(), tls);
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(acs.serve(listeners.cwmp, shutdown.clone())));
    let app = api::router(core.clone(), ready);
    let mut api_shutdown = shutdown.clone();
    tasks.push(tokio::spawn(async move {
        let serve = axum::serve(listeners.api, app).with_graceful_shutdown(async move {
            let _ = api_shutdown.changed().await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "api server failed");
        }
    }));
    Ok(RunningNode { core, tasks })
}
