//! `radar router`: one stateless router in front of the cluster's nodes.

use anyhow::{Context, Result};
use clap::Args;
use radar_router::config::RouterConfig;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::TcpListener;

#[derive(Args)]
pub struct RouterArgs {
    /// Router config file; flags override it.
    #[arg(long, env = "RADAR_ROUTER_CONFIG")]
    config: Option<PathBuf>,
    /// Nodes' cluster gRPC addresses (HOST:PORT,HOST:PORT,…) to learn the layout from.
    #[arg(long, env = "RADAR_SEEDS", value_delimiter = ',')]
    seeds: Vec<String>,
    /// CWMP front door.
    #[arg(long, env = "RADAR_CWMP_LISTEN")]
    cwmp_listen: Option<SocketAddr>,
    /// USP WebSocket front door.
    #[arg(long, env = "RADAR_USP_LISTEN")]
    usp_listen: Option<SocketAddr>,
    /// `/metrics`, `/healthz`, `/readyz`.
    #[arg(long, env = "RADAR_API_LISTEN")]
    api_listen: Option<SocketAddr>,
    #[command(flatten)]
    log: crate::server::LogArgs,
}

pub fn load(path: Option<&PathBuf>) -> Result<RouterConfig> {
    match path {
        None => Ok(RouterConfig::default()),
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))
        }
    }
}

pub async fn router(args: RouterArgs) -> Result<()> {
    args.log.init();
    let mut config = load(args.config.as_ref())?;
    if !args.seeds.is_empty() {
        config.seeds = args.seeds;
    }
    if let Some(a) = args.cwmp_listen {
        config.listen.cwmp = a;
    }
    if let Some(a) = args.usp_listen {
        config.listen.usp = a;
    }
    if let Some(a) = args.api_listen {
        config.listen.api = a;
    }
    anyhow::ensure!(
        !config.seeds.is_empty(),
        "a router needs --seeds (the nodes' gRPC addresses)"
    );
    let bind = |addr: SocketAddr, what: &'static str| async move {
        TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {what} {addr}"))
    };
    let cwmp = bind(config.listen.cwmp, "cwmp").await?;
    let usp = bind(config.listen.usp, "usp").await?;
    let api = bind(config.listen.api, "api").await?;
    let addresses = format!(
        "listening cwmp={} usp={} api={}",
        cwmp.local_addr()?,
        usp.local_addr()?,
        api.local_addr()?
    );
    let (shutdown_tx, shutdown) = tokio::sync::watch::channel(false);
    let running = radar_router::start(
        config,
        radar_router::RouterListeners { cwmp, usp, api },
        shutdown,
    )
    .map_err(|e| anyhow::anyhow!("cluster tls: {e}"))?;
    println!("{addresses}");
    crate::server::wait_for_signal().await;
    tracing::info!("router shutting down");
    let _ = shutdown_tx.send(true);
    for task in running.tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    Ok(())
}
