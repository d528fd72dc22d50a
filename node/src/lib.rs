//! radar-node: the drivers (CWMP, USP), the shards, the REST API and metrics.
//!
//! Modules:
//! - [`config`]: the node's serde configuration.
//! - [`raft`]: the Raft transport over gRPC and timing settings.
//! - [`cluster`]: cluster membership: metadata group, layout follower, cluster gRPC.
//! - [`shard`]: a shard's twins with group commit to the store.
//! - [`fleet`]: the layout view (ring, local replicas) and per-shard query halves and merges.
//! - [`scatter`]: fleet queries fanned out to every shard leader, locally or over gRPC.
//! - [`fleet_service`]: the `Fleet` gRPC service answering other nodes' shard queries.
//! - [`core`]: what drivers and the API share.
//! - [`cwmp`]: the TR-069 ACS driver.
//! - [`usp`]: the TR-369 controller driver (WebSocket and MQTT MTPs).
//! - [`api`]: the REST API.
//! - [`auth`]: API tokens, roles and the route → role table.
//! - [`metrics`]: Prometheus metrics.
//! - [`log_limit`]: per-device rate limiting of warnings.
//! - [`tls`]: TLS for the ACS endpoint.

pub mod api;
pub mod api_cluster;
pub mod api_credentials;
pub mod api_indexes;
pub mod api_limits;
pub mod api_routing;
pub mod audit;
pub mod auth;
pub mod byte_size;
pub mod cluster;
pub mod config;
pub mod core;
pub mod cwmp;
pub mod fleet;
pub mod fleet_service;
pub mod index_admin;
pub mod local_group;
pub mod log_limit;
pub mod metrics;
pub mod openapi;
pub mod raft;
pub mod scatter;
pub mod shard;

pub mod tls;
pub mod usp;

use crate::config::NodeConfig;
use crate::core::NodeCore;
use crate::cwmp::connection_request::ConnectionRequester;
use crate::fleet::Fleet;
use crate::metrics::Metrics;
use radar_core::ShardId;
use radar_store::SledDatabase;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
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
    #[error("shard: {0}")]
    Shard(#[from] shard::OpenError),
    #[error("api tokens: {0}")]
    Auth(#[from] auth::TokenError),
}

/// Listeners bound by the caller, so tests can bind port 0 (as mini-redis does).
pub struct Listeners {
    pub cwmp: TcpListener,
    pub api: TcpListener,
    /// The USP WebSocket MTP; none serves no WebSocket agents.
    pub usp: Option<TcpListener>,
    /// Cluster gRPC (the Raft transport); none in an embedded node that serves no peers.
    pub grpc: Option<TcpListener>,
    /// The STUN server (TR-069 Annex G); none serves no STUN, and UDP connection requests
    /// then leave from an ephemeral port.
    pub stun: Option<tokio::net::UdpSocket>,
}

/// A started node.
pub struct RunningNode {
    pub core: Arc<NodeCore>,
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The admin token made on this first start, to be shown once (only its hash is kept).
    pub generated_admin_token: Option<String>,
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
    let mut config = config;
    for field in index_admin::added_fields(&config.data_dir) {
        if !config.twin.indexed_paths.contains(&field) {
            config.twin.indexed_paths.push(field);
        }
    }
    let metrics = Arc::new(Metrics::new());
    let (api_auth, generated_admin_token) =
        auth::ApiAuth::open(&config.auth, &config.data_dir, metrics.clone())?;
    if generated_admin_token.is_some() && config.cluster.enabled() {
        // Operators talk to any node: one token should work on all of them.
        tracing::warn!("this cluster node made its own admin token: give every node the same RADAR_BOOTSTRAP_TOKEN (or the same [auth] tokens) so that one token works on every node");
    }
    let db_dir = config.data_dir.join("twins.sled");
    let cache = config.twin.storage_cache_bytes;
    let budget = config.store.memory_budget_bytes();
    let db = tokio::task::spawn_blocking(move || {
        SledDatabase::open_with_cache(&db_dir, cache).map(|db| db.with_memory_budget(budget))
    })
    .await
    .map_err(|e| NodeError::Config(e.to_string()))??;
    tracing::info!(memory_budget = %crate::byte_size::ByteSize(budget), "twin memory budget");
    metrics.register_twin_cache(db.memory_budget().clone());
    let logs = match config.raft.log_engine {
        raft::LogEngine::Sled => shard::LogBackend::Sled,
        raft::LogEngine::Redb => shard::LogBackend::Redb(
            radar_store::raft::redb_log::RedbLogs::open(&config.data_dir.join("raft-log"))?,
        ),
    };
    let raft_host = raft::service::RaftHost::new();
    let grpc_server_tls = config
        .cluster
        .tls
        .as_ref()
        .map(tls::ReloadableTls::load_for_grpc)
        .transpose()?;
    if let Some(grpc) = &listeners.grpc {
        cluster::check_plaintext_exposure(&config.cluster, grpc.local_addr()?)?;
    }
    let peers =
        raft::network::PeerChannels::new(config.raft.connect_timeout, config.cluster.tls.clone())
            .map_err(NodeError::Config)?;
    let grpc_addr = match &listeners.grpc {
        Some(listener) => listener.local_addr()?.to_string(),
        None => String::new(),
    };
    let (view, meta) = if config.cluster.enabled() {
        let Some(grpc) = &listeners.grpc else {
            return Err(NodeError::Config(
                "a cluster node needs a grpc listener".into(),
            ));
        };
        let host = config.cluster.advertise_host.as_deref();
        let usp = match &listeners.usp {
            Some(l) => cluster::advertised(l.local_addr()?, host),
            None => String::new(),
        };
        let info = radar_core::NodeInfo {
            id: config.node_id,
            grpc: cluster::advertised(grpc.local_addr()?, host),
            api: cluster::advertised(listeners.api.local_addr()?, host),
            cwmp: cluster::advertised(listeners.cwmp.local_addr()?, host),
            usp,
        };
        let meta =
            cluster::meta::MetaGroup::open(&db, info, &config.raft, peers.clone(), &raft_host)
                .await?;
        let view = fleet::FleetView {
            layout_version: 0,
            ring: None,
            replicas: Default::default(),
        };
        (view, Some(meta))
    } else {
        (
            embedded_view(
                &config, &db, &logs, &peers, &raft_host, &grpc_addr, &metrics,
            )
            .await?,
            None,
        )
    };
    let fleet = Fleet::new(
        view,
        config.twin.shard_query_deadline,
        config.cwmp.online_window,
        config.cwmp.overdue_grace,
    );
    let stun = listeners.stun.map(Arc::new);
    let core = Arc::new(NodeCore {
        requester: ConnectionRequester::new(
            config.connection_request.clone(),
            metrics.clone(),
            stun.clone(),
        )
        .map_err(NodeError::Config)?,
        plan_config: config.planner.to_plan_config(),
        usp_session: Arc::new(radar_usp::session::SessionConfig {
            controller_id: config.usp.controller_id.clone(),
            request_timeout_ms: config.usp.request_timeout.as_millis() as u64,
            subscriptions: config.usp.desired_subscriptions(),
            root: "Device.".into(),
            liveness_timeout_ms: config.usp.liveness_timeout.as_millis() as u64,
        }),
        usp_agents: Default::default(),
        usp_mtps: Default::default(),
        log_limit: log_limit::LogLimiter::new(std::time::Duration::from_secs(60)),
        indexes: Arc::new(index_admin::IndexAdmin::new(&config.data_dir)),
        model: radar_twin::datamodel::DataModel::tr181(),
        fleet,
        meta: meta.clone(),
        metrics,
        config,
    });
    let ready = Arc::new(AtomicBool::new(true));
    let tls = tls::ReloadableTls::configured(core.config.cwmp.tls.as_ref())?;
    let api_tls = tls::ReloadableTls::configured(core.config.api.tls.as_ref())?;
    mark_usp_agents_offline(&core).await;
    let usp_tls = tls::ReloadableTls::configured(core.config.usp.tls.as_ref())?;
    if let Some(files) = &core.config.usp.tls {
        usp::check_controller_certificate(&files.cert, &core.config.usp.controller_id)?;
    }
    let mut reloadable: Vec<Arc<dyn tls::Reload>> = Vec::new();
    for listener in tls
        .iter()
        .chain(&api_tls)
        .chain(&usp_tls)
        .chain(&grpc_server_tls)
    {
        reloadable.push(listener.clone());
    }
    if core.config.cluster.tls.is_some() {
        reloadable.push(peers.clone());
    }
    let acs = cwmp::server::AcsServer::new(core.clone(), tls);
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(acs.serve(listeners.cwmp, shutdown.clone())));
    if let Some(stun) = stun {
        tasks.push(tokio::spawn(cwmp::stun_server::serve(
            stun,
            core.metrics.clone(),
            shutdown.clone(),
        )));
    }
    tasks.push(tokio::spawn(cwmp::overdue::run(
        core.clone(),
        shutdown.clone(),
    )));
    tasks.push(audit::spawn_retention(core.clone(), shutdown.clone()));
    if let Some(mqtt) = core.config.usp.mqtt.clone() {
        tasks.push(
            usp::mqtt::start(core.clone(), mqtt, shutdown.clone())
                .map_err(|e| NodeError::Config(e.to_string()))?,
        );
    }
    if let Some(stomp) = core.config.usp.stomp.clone() {
        tasks.push(usp::stomp::start(core.clone(), stomp, shutdown.clone()));
    }
    if let Some(usp) = listeners.usp {
        let server = usp::websocket::UspWebSocketServer::new(core.clone(), usp_tls);
        tasks.push(tokio::spawn(server.serve(usp, shutdown.clone())));
    }
    if let Some(meta) = &meta {
        let factory = cluster::follow::ReplicaFactory {
            db: db.clone(),
            logs: logs.clone(),
            node_id: core.config.node_id,
            settings: core.config.raft.clone(),
            peers: peers.clone(),
            host: raft_host.clone(),
            max_batch: core.config.twin.max_batch,
            metrics: core.metrics.clone(),
            indexed_paths: core.config.twin.indexed_paths.clone(),
            data_dir: core.config.data_dir.clone(),
        };
        tasks.push(tokio::spawn(cluster::follow::follow_layout(
            meta.clone(),
            factory,
            core.clone(),
            shutdown.clone(),
        )));
        tasks.push(tokio::spawn(cluster::follow::announce(
            meta.clone(),
            shutdown.clone(),
        )));
    }
    if let Some(grpc) = listeners.grpc {
        let cluster = meta
            .as_ref()
            .map(|m| cluster::grpc::service(core.clone(), m.clone()));
        let fleet = fleet_service::service(core.clone());
        tasks.push(tokio::spawn(serve_grpc(
            grpc,
            grpc_server_tls,
            raft_host.clone(),
            cluster,
            fleet,
            shutdown.clone(),
        )));
    }
    let app = api::router(
        core.clone(),
        ready,
        Arc::new(api_auth.with_cluster(meta.clone())),
    );
    if !reloadable.is_empty() {
        tasks.push(tls::reload_on_sighup(reloadable, shutdown.clone()));
    }
    match api_tls {
        Some(tls) => tasks.push(tokio::spawn(serve_api(
            tls::TlsListener::new(listeners.api, tls)?,
            app,
            shutdown.clone(),
        ))),
        None => tasks.push(tokio::spawn(serve_api(
            listeners.api,
            app,
            shutdown.clone(),
        ))),
    }
    Ok(RunningNode {
        core,
        tasks,
        generated_admin_token,
    })
}

/// The REST API on `listener` (plain TCP, or TLS) until shutdown.
async fn serve_api<L>(listener: L, app: axum::Router, mut shutdown: watch::Receiver<bool>)
where
    L: axum::serve::Listener<Addr = std::net::SocketAddr>,
    for<'a> audit::ClientAddr:
        axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, L>>,
{
    let app = app.into_make_service_with_connect_info::<audit::ClientAddr>();
    let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = shutdown.changed().await;
    });
    if let Err(e) = serve.await {
        tracing::error!(error = %e, "api server failed");
    }
}

/// Embedded mode: this node hosts every shard as the single voter of its group.
async fn embedded_view(
    config: &NodeConfig,
    db: &SledDatabase,
    logs: &shard::LogBackend,
    peers: &Arc<raft::network::PeerChannels>,
    raft_host: &Arc<raft::service::RaftHost>,
    grpc_addr: &str,
    metrics: &Arc<Metrics>,
) -> Result<fleet::FleetView, NodeError> {
    let voters =
        std::collections::BTreeMap::from([(config.node_id, openraft::BasicNode::new(grpc_addr))]);
    let mut shards = Vec::new();
    for id in 0..config.shards {
        let replica = shard::ReplicaContext {
            db,
            logs: logs.clone(),
            node_id: config.node_id,
            settings: &config.raft,
            peers: peers.clone(),
            host: raft_host.clone(),
            max_batch: config.twin.max_batch,
            metrics: metrics.clone(),
            indexed_paths: &config.twin.indexed_paths,
        };
        shards.push(shard::Shard::open(ShardId(id), replica).await?);
    }
    let bootstraps = shards.iter().map(|s| {
        s.bootstrap(
            voters.clone(),
            true,
            Duration::ZERO,
            config.raft.election_timeout_max * 10,
        )
    });
    for result in futures_util::future::join_all(bootstraps).await {
        result?;
    }
    let shard_ids: Vec<ShardId> = shards.iter().map(|s| s.id).collect();
    let ring = radar_core::Ring::new(
        config.partitions,
        &shard_ids,
        radar_core::ring::DEFAULT_VNODES,
    )
    .map_err(|e| NodeError::Config(e.to_string()))?;
    Ok(fleet::FleetView {
        layout_version: 1,
        ring: Some(ring),
        replicas: shards.into_iter().map(|s| (s.id, s)).collect(),
    })
}

/// The cluster gRPC server: the Raft transport of every group this node hosts.
async fn serve_grpc(
    listener: TcpListener,
    tls: Option<Arc<tls::ReloadableTls>>,
    host: Arc<raft::service::RaftHost>,
    cluster: Option<
        radar_proto::cluster::cluster_server::ClusterServer<cluster::grpc::ClusterService>,
    >,
    fleet: radar_proto::fleet::fleet_server::FleetServer<fleet_service::FleetService>,
    mut shutdown: watch::Receiver<bool>,
) {
    let router = tonic::transport::Server::builder()
        .add_service(host.service())
        .add_optional_service(cluster)
        .add_service(fleet);
    let stop = async move {
        let _ = shutdown.changed().await;
    };
    let served = match tls {
        // TLS from the shared module rather than tonic's, so SIGHUP reloads the certificate
        // like every other listener's.
        Some(tls) => {
            let listener = match tls::TlsListener::new(listener, tls) {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::error!(error = %e, "cluster grpc tls");
                    return;
                }
            };
            let incoming = futures_util::stream::unfold(listener, |mut listener| async move {
                let (stream, _) = axum::serve::Listener::accept(&mut listener).await;
                Some((Ok::<_, std::io::Error>(stream), listener))
            });
            router.serve_with_incoming_shutdown(incoming, stop).await
        }
        None => {
            let incoming =
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            router.serve_with_incoming_shutdown(incoming, stop).await
        }
    };
    if let Err(e) = served {
        tracing::error!(error = %e, "grpc server failed");
    }
}

/// After a restart no agent link survives: agents marked connected are offline until they
/// reconnect.
async fn mark_usp_agents_offline(core: &Arc<NodeCore>) {
    let mut commands = Vec::new();
    let now = radar_core::Timestamp::now();
    for shard in core.fleet.shards() {
        let state = shard.read();
        let connected = state
            .twins
            .columns()
            .filter(|(_, c)| c.has(radar_twin::table::Columns::CONNECTED));
        for (key, _) in connected {
            commands.push(radar_twin::TwinCommand::UspDisconnected {
                device: key.clone(),
                at: now,
                reason: "controller restarted".into(),
            });
        }
    }
    // Concurrently, in slices, so group commit batches them instead of one commit per agent.
    let mut commands = commands.into_iter().peekable();
    while commands.peek().is_some() {
        let slice: Vec<_> = commands
            .by_ref()
            .take(1024)
            .map(|c| core.propose(c))
            .collect();
        for result in futures_util::future::join_all(slice).await {
            if let Err(e) = result {
                tracing::warn!(error = %e, "could not mark a usp agent offline after restart");
            }
        }
    }
}
