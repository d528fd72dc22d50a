//! Server-side subcommands: `up`, `node`, `print-config`, `sim`.

use crate::logging::LogFormat;
use anyhow::{bail, Context, Result};
use clap::Args;
use radar_node::config::NodeConfig;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::TcpListener;

/// Listener (DESIGN §4) and storage flags shared by `up` and `node`.
#[derive(Args, Clone, Default)]
pub struct ListenArgs {
    /// CWMP ACS listener.
    #[arg(long, env = "RADAR_CWMP_LISTEN")]
    cwmp_listen: Option<SocketAddr>,
    /// USP WebSocket listener.
    #[arg(long, env = "RADAR_USP_LISTEN")]
    usp_listen: Option<SocketAddr>,
    /// REST API listener.
    #[arg(long, env = "RADAR_API_LISTEN")]
    api_listen: Option<SocketAddr>,
    /// Cluster gRPC listener.
    #[arg(long, env = "RADAR_GRPC_LISTEN")]
    grpc_listen: Option<SocketAddr>,
    /// STUN server for connection requests to CPEs behind a NAT (TR-069 Annex G; UDP).
    #[arg(long, env = "RADAR_STUN_LISTEN")]
    stun_listen: Option<SocketAddr>,
    /// MQTT broker for the USP MQTT MTP, e.g. mqtt://127.0.0.1:1883 (off when absent).
    #[arg(long, env = "RADAR_MQTT_URL")]
    mqtt_url: Option<String>,
    /// STOMP broker for the USP STOMP MTP, host:port (off when absent; more in [usp.stomp]).
    #[arg(long, env = "RADAR_STOMP_SERVER")]
    stomp_server: Option<String>,
    /// The controller's USP endpoint id.
    #[arg(long, env = "RADAR_CONTROLLER_ID")]
    controller_id: Option<String>,
    /// Memory for resident twins, e.g. 4GiB ([store] memory_budget; default: a quarter of
    /// the memory available).
    #[arg(long, env = "RADAR_MEMORY_BUDGET")]
    memory_budget: Option<radar_node::byte_size::ByteSize>,
}

#[derive(Args)]
pub struct UpArgs {
    /// Data directory.
    #[arg(long, env = "RADAR_DATA_DIR", default_value = "./radar-data")]
    data_dir: PathBuf,
    /// Also start N simulated CWMP devices against this instance.
    #[arg(long, env = "RADAR_DEMO", default_value_t = 0)]
    demo: usize,
    /// Also start N simulated USP agents (over the WebSocket MTP) against this instance.
    #[arg(long, env = "RADAR_DEMO_USP", default_value_t = 0)]
    demo_usp: usize,
    /// Optional config file; flags override it.
    #[arg(long, env = "RADAR_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    listen: ListenArgs,
    #[command(flatten)]
    log: LogArgs,
}

#[derive(Args)]
pub struct NodeArgs {
    #[arg(long, env = "RADAR_CONFIG")]
    config: Option<PathBuf>,
    #[arg(long, env = "RADAR_NODE_ID")]
    node_id: Option<u64>,
    /// Take the node id from the host name: its trailing number plus one (`radar-node-2` is
    /// node 3), as a Kubernetes StatefulSet names its pods.
    #[arg(long, env = "RADAR_NODE_ID_FROM_HOSTNAME", conflicts_with = "node_id")]
    node_id_from_hostname: bool,
    #[arg(long, env = "RADAR_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The cluster's nodes' gRPC addresses, this one included (HOST:PORT,HOST:PORT,…).
    #[arg(long, env = "RADAR_SEEDS", value_delimiter = ',')]
    seeds: Vec<String>,
    /// The host peers and routers use to reach this node when it listens on 0.0.0.0.
    #[arg(long, env = "RADAR_ADVERTISE_HOST")]
    advertise_host: Option<String>,
    #[command(flatten)]
    listen: ListenArgs,
    #[command(flatten)]
    log: LogArgs,
}

#[derive(Args)]
pub struct SimArgs {
    /// ACS URL the devices inform to.
    #[arg(long, env = "RADAR_SIM_ACS", default_value = "http://127.0.0.1:7547/")]
    acs: String,
    /// Number of devices.
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// First serial number index.
    #[arg(long, default_value_t = 1)]
    first: usize,
    #[arg(long, default_value = "SIM")]
    serial_prefix: String,
    #[arg(long, default_value = "00D09E")]
    oui: String,
    #[arg(long, default_value = "HG-SIM")]
    product_class: String,
    #[arg(long, default_value = "1.0.0")]
    software_version: String,
    /// Periodic inform interval.
    #[arg(long, default_value = "300s", value_parser = humantime_duration)]
    periodic: Duration,
    /// Connection-request listener.
    #[arg(long, default_value = "127.0.0.1:0")]
    cr_listen: SocketAddr,
    /// Do not echo session cookies, like some real devices.
    #[arg(long)]
    no_cookies: bool,
    /// Refuse active notification with fault 9009.
    #[arg(long)]
    refuse_active_notification: bool,
    /// Behave like genieacs-sim: no echoed cookies, Fault 9000 for Reboot, FactoryReset and
    /// attributes, and a crash on GetParameterValues of an object path.
    #[arg(long)]
    like_genieacs_sim: bool,
    /// Behave like cwmp-sim: no echoed cookies, and after a failed inform no session until a
    /// connection request.
    #[arg(long)]
    like_cwmp_sim: bool,
    /// Play devices behind a NAT: their ConnectionRequestURL reaches nothing; with
    /// --stun-server they keep a STUN binding and take UDP connection requests (Annex G).
    #[arg(long)]
    behind_nat: bool,
    /// The ACS's STUN server (host:port, UDP), for devices --behind-nat.
    #[arg(long, requires = "behind_nat")]
    stun_server: Option<SocketAddr>,
    /// An XMPP server (host:port) where devices --behind-nat log in as
    /// `<serial in lower case>@<--xmpp-domain>` and take connection requests (Annex K).
    #[arg(long, requires = "behind_nat")]
    xmpp_server: Option<String>,
    #[arg(long, default_value = "localhost")]
    xmpp_domain: String,
    /// The devices' XMPP password (all share it).
    #[arg(long, env = "RADAR_SIM_XMPP_PASSWORD", default_value = "")]
    xmpp_password: String,
    /// JIDs the devices accept connection requests from (ConnReqAllowedJabberIDs); empty:
    /// anyone.
    #[arg(long, value_delimiter = ',')]
    xmpp_allowed: Vec<String>,
    /// PEM CA certificates of the XMPP server: the devices then upgrade with STARTTLS and
    /// never authenticate in clear.
    #[arg(long)]
    xmpp_ca: Option<PathBuf>,
    /// ACS credentials as user:password.
    #[arg(long)]
    acs_credentials: Option<String>,
    /// Spread first informs over this window.
    #[arg(long, default_value = "0s", value_parser = humantime_duration)]
    spread: Duration,
    /// PEM file of CA certificates to trust for an https ACS URL.
    #[arg(long)]
    acs_ca: Option<PathBuf>,
    /// Simulate USP agents instead, over the WebSocket MTP of this controller (HOST:PORT).
    #[arg(long, conflicts_with = "usp_mqtt")]
    usp_ws: Option<String>,
    /// Simulate USP agents instead, over this MQTT broker (mqtt://HOST:PORT).
    #[arg(long)]
    usp_mqtt: Option<String>,
    /// Simulate USP agents instead, over this STOMP broker (HOST:PORT; guest/guest, virtual
    /// host `/`, controller destination `/queue/usp.controller`).
    #[arg(long)]
    usp_stomp: Option<String>,
    /// With --usp-mqtt: speak MQTT 3.1.1 instead of 5.
    #[arg(long)]
    mqtt_311: bool,
    /// The controller's endpoint id the USP agents know.
    #[arg(long, default_value = "self::radar")]
    controller_id: String,
}

fn humantime_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| e.to_string())
}

/// Log flags shared by `up`, `node` and `router`. The filter comes from `RUST_LOG` (or
/// `RADAR_LOG`), else [`crate::logging::DEFAULT_FILTER`].
#[derive(clap::Args, Debug, Clone, Default)]
pub struct LogArgs {
    /// `text` for people, `json` (one object per line) for log shippers.
    #[arg(long, env = "RADAR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Same as `--log-format json` (kept for existing scripts).
    #[arg(long, env = "RADAR_LOG_JSON", hide = true)]
    log_json: bool,
}

impl LogArgs {
    pub fn init(&self) {
        crate::logging::init(if self.log_json {
            LogFormat::Json
        } else {
            self.log_format
        });
    }
}

fn load_config(path: Option<&PathBuf>) -> Result<NodeConfig> {
    let mut config: NodeConfig = match path {
        None => NodeConfig::default(),
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))?
        }
    };
    // Only from the environment (a Helm Secret, CI): never a config file in clear.
    config.auth.bootstrap_token = std::env::var("RADAR_BOOTSTRAP_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    // The CPEs' shared credentials may come from the environment too (a Kubernetes Secret),
    // so they need not sit in a config file in clear.
    let cpe = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let (Some(username), Some(password)) = (cpe("RADAR_CPE_USERNAME"), cpe("RADAR_CPE_PASSWORD"))
    {
        config.cwmp.shared_credentials =
            Some(radar_node::config::Credential { username, password });
    }
    Ok(config)
}

fn apply_listen(config: &mut NodeConfig, listen: &ListenArgs) {
    if let Some(a) = listen.cwmp_listen {
        config.listen.cwmp = a;
    }
    if let Some(a) = listen.usp_listen {
        config.listen.usp = a;
    }
    if let Some(a) = listen.api_listen {
        config.listen.api = a;
    }
    if let Some(a) = listen.grpc_listen {
        config.listen.grpc = a;
    }
    if let Some(a) = listen.stun_listen {
        config.stun.listen = a;
        config.stun.enabled.get_or_insert(true);
    }
    if let Some(url) = &listen.mqtt_url {
        config.usp.mqtt.get_or_insert_with(Default::default).url = url.clone();
    }
    if let Some(server) = &listen.stomp_server {
        config.usp.stomp.get_or_insert_with(Default::default).server = server.clone();
    }
    if let Some(id) = &listen.controller_id {
        config.usp.controller_id = id.clone();
    }
    if let Some(budget) = listen.memory_budget {
        config.store.memory_budget = Some(budget);
    }
}

/// `stun_by_default`: serve STUN unless the config says otherwise (`radar up`).
async fn run_node(
    mut config: NodeConfig,
    demo: usize,
    demo_usp: usize,
    stun_by_default: bool,
) -> Result<()> {
    let cwmp = TcpListener::bind(config.listen.cwmp)
        .await
        .with_context(|| format!("binding cwmp {}", config.listen.cwmp))?;
    let api = TcpListener::bind(config.listen.api)
        .await
        .with_context(|| format!("binding api {}", config.listen.api))?;
    let usp = TcpListener::bind(config.listen.usp)
        .await
        .with_context(|| format!("binding usp {}", config.listen.usp))?;
    let grpc = TcpListener::bind(config.listen.grpc)
        .await
        .with_context(|| format!("binding grpc {}", config.listen.grpc))?;
    let stun = match config.stun.enabled {
        Some(true) => Some(
            tokio::net::UdpSocket::bind(config.stun.listen)
                .await
                .with_context(|| format!("binding stun {} (udp)", config.stun.listen))?,
        ),
        // On by default in `radar up`: a taken port (another STUN or TURN server) must not
        // keep the try-it-now command from starting.
        None if stun_by_default => match tokio::net::UdpSocket::bind(config.stun.listen).await {
            Ok(socket) => Some(socket),
            Err(e) => {
                tracing::warn!(listen = %config.stun.listen, error = %e, "STUN not served (set [stun] enabled = true to require it, or pick --stun-listen)");
                None
            }
        },
        _ => None,
    };
    if let Some(socket) = &stun {
        config.stun.listen = socket.local_addr()?;
    }
    let cwmp_addr = cwmp.local_addr()?;
    let api_addr = api.local_addr()?;
    let usp_addr = usp.local_addr()?;
    let grpc_addr = grpc.local_addr()?;
    config.listen.cwmp = cwmp_addr;
    config.listen.api = api_addr;
    config.listen.usp = usp_addr;
    config.listen.grpc = grpc_addr;
    if config.cwmp.allow_anonymous {
        tracing::warn!(
            "cwmp endpoint accepts devices without credentials (allow_anonymous = true)"
        );
    }
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let controller_id = config.usp.controller_id.clone();
    let config_stun = stun.as_ref().map(|_| config.stun.listen);
    let listeners = radar_node::Listeners {
        cwmp,
        api,
        usp: Some(usp),
        grpc: Some(grpc),
        stun,
    };
    let node = radar_node::start(config, listeners, shutdown_rx)
        .await
        .context("starting the node")?;
    let stun_addr = match config_stun {
        Some(a) => a.to_string(),
        None => "off".into(),
    };
    println!(
        "listening cwmp={cwmp_addr} usp={usp_addr} api={api_addr} grpc={grpc_addr} stun={stun_addr}"
    );
    if let Some(token) = &node.generated_admin_token {
        show_admin_token(token, api_addr);
    }
    let _fleet = if demo > 0 {
        let host = if cwmp_addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            cwmp_addr.ip().to_string()
        };
        let sim = radar_sim::SimConfig {
            acs_url: format!("http://{host}:{}/", cwmp_addr.port()),
            count: demo,
            periodic_interval: Duration::from_secs(60),
            start_spread: Duration::from_millis(20 * demo.min(500) as u64),
            ..Default::default()
        };
        let fleet = radar_sim::SimFleet::start(sim)
            .await
            .context("starting demo devices")?;
        tracing::info!(devices = demo, connection_requests = %fleet.connection_request_addr, "demo devices started");
        Some(fleet)
    } else {
        None
    };
    let _agents = if demo_usp > 0 {
        let host = if usp_addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            usp_addr.ip().to_string()
        };
        let config = radar_sim::usp_agent::UspSimConfig {
            count: demo_usp,
            controller_id: controller_id.clone(),
            ..Default::default()
        };
        let mtp = radar_sim::usp_agent::Mtp::WebSocket(format!("{host}:{}", usp_addr.port()));
        tracing::info!(agents = demo_usp, "demo usp agents started");
        radar_sim::usp_agent::start(&config, &mtp)
    } else {
        Vec::new()
    };
    wait_for_signal().await;
    tracing::info!("shutting down");
    let _ = shutdown_tx.send(true);
    for task in node.tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    Ok(())
}

/// Shows the admin token made on the first start, once (only its hash is kept), and saves it
/// for the CLI. Written with errors ignored: stdout may be a closed pipe.
fn show_admin_token(token: &str, api: SocketAddr) {
    use std::io::Write;
    let mut apis = vec![format!("http://{api}")];
    if api.ip().is_unspecified() || api.ip().is_loopback() {
        apis.push(format!("http://127.0.0.1:{}", api.port()));
        apis.push(format!("http://localhost:{}", api.port()));
    }
    apis.dedup();
    let saved = match crate::credentials_file::save(&apis, token) {
        Ok(path) => format!("saved for the CLI in {}", path.display()),
        Err(e) => format!("not saved for the CLI ({e:#})"),
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "admin token (shown once; Radar keeps only its hash): {token}\n  {saved}; elsewhere use RADAR_TOKEN={token} or --token"
    );
    let _ = out.flush();
}

pub async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

pub async fn up(args: UpArgs) -> Result<()> {
    args.log.init();
    let mut config = load_config(args.config.as_ref())?;
    config.data_dir = args.data_dir;
    // `radar up` is the try-it-now mode: devices may connect without credentials (warned above).
    if args.config.is_none() {
        config.cwmp.allow_anonymous = true;
    }
    apply_listen(&mut config, &args.listen);
    run_node(config, args.demo, args.demo_usp, true).await
}

pub async fn node(args: NodeArgs) -> Result<()> {
    args.log.init();
    let mut config = load_config(args.config.as_ref())?;
    if let Some(id) = args.node_id {
        config.node_id = id;
    }
    if args.node_id_from_hostname {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
            .unwrap_or_default();
        config.node_id = node_id_of_host(host.trim())?;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if !args.seeds.is_empty() {
        config.cluster.seeds = args.seeds;
    }
    if args.advertise_host.is_some() {
        config.cluster.advertise_host = args.advertise_host;
    }
    apply_listen(&mut config, &args.listen);
    run_node(config, 0, 0, false).await
}

/// `radar-node-2` → 3: a StatefulSet pod's ordinal plus one (node ids start at 1).
fn node_id_of_host(host: &str) -> Result<u64> {
    let ordinal = host
        .rsplit('-')
        .next()
        .and_then(|n| n.parse::<u64>().ok())
        .with_context(|| format!("host name {host:?} does not end in -<number>"))?;
    Ok(ordinal + 1)
}

pub fn print_config(what: &str, check: Option<&std::path::Path>) -> Result<()> {
    if let Some(path) = check {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let parsed = match what {
            "node" => toml::from_str::<NodeConfig>(&text).map(|_| ()),
            "router" => toml::from_str::<radar_router::config::RouterConfig>(&text).map(|_| ()),
            other => bail!("unknown config {other:?}; expected \"node\" or \"router\""),
        };
        parsed.with_context(|| format!("{} is not a valid {what} config", path.display()))?;
        println!("{}: a valid {what} config", path.display());
        return Ok(());
    }
    match what {
        "node" => {
            print!("{}", toml::to_string_pretty(&NodeConfig::default())?);
            Ok(())
        }
        "router" => {
            print!(
                "{}",
                toml::to_string_pretty(&radar_router::config::RouterConfig::default())?
            );
            Ok(())
        }
        other => bail!("unknown config {other:?}; expected \"node\" or \"router\""),
    }
}

/// Simulated USP agents (`radar sim --usp-ws HOST:PORT` or `--usp-mqtt mqtt://HOST:PORT`).
async fn sim_usp(args: &SimArgs) -> Result<()> {
    use radar_sim::usp_agent::{self, mqtt::Broker, Mtp, UspSimConfig};
    let mtp = match (&args.usp_ws, &args.usp_mqtt) {
        (Some(addr), _) => Mtp::WebSocket(addr.clone()),
        (None, Some(url)) => {
            let rest = url
                .strip_prefix("mqtt://")
                .context("--usp-mqtt must be mqtt://HOST:PORT")?;
            let (host, port) = rest
                .trim_end_matches('/')
                .rsplit_once(':')
                .unwrap_or((rest, "1883"));
            Mtp::Mqtt(Broker {
                host: host.to_owned(),
                port: port.parse().context("--usp-mqtt port")?,
                version: if args.mqtt_311 {
                    radar_usp::record::MqttVersion::V3_1_1
                } else {
                    radar_usp::record::MqttVersion::V5
                },
            })
        }
        (None, None) => match &args.usp_stomp {
            Some(server) => Mtp::Stomp(usp_agent::stomp::Broker {
                server: server.clone(),
                virtual_host: "/".into(),
                username: "guest".into(),
                password: "guest".into(),
                controller_destination: "/queue/usp.controller".into(),
            }),
            None => bail!("sim_usp needs --usp-ws, --usp-mqtt or --usp-stomp"),
        },
    };
    let config = UspSimConfig {
        controller_id: args.controller_id.clone(),
        count: args.count,
        first_serial: args.first,
        oui: args.oui.clone(),
        software_version: args.software_version.clone(),
        ..Default::default()
    };
    let agents = usp_agent::start(&config, &mtp);
    println!(
        "simulating {} usp agents ({} … {})",
        agents.len(),
        agents.first().map(|a| a.endpoint_id.as_str()).unwrap_or(""),
        agents.last().map(|a| a.endpoint_id.as_str()).unwrap_or("")
    );
    wait_for_signal().await;
    Ok(())
}

pub async fn sim(args: SimArgs) -> Result<()> {
    crate::logging::init(LogFormat::Text);
    if args.usp_ws.is_some() || args.usp_mqtt.is_some() || args.usp_stomp.is_some() {
        return sim_usp(&args).await;
    }
    let acs_credentials = match &args.acs_credentials {
        Some(c) => {
            let (u, p) = c
                .split_once(':')
                .context("--acs-credentials must be user:password")?;
            Some((u.to_owned(), p.to_owned()))
        }
        None => None,
    };
    let xmpp_ca = match &args.xmpp_ca {
        Some(path) => {
            Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
        }
        None => None,
    };
    let config = radar_sim::SimConfig {
        acs_url: args.acs,
        count: args.count,
        first_serial: args.first,
        serial_prefix: args.serial_prefix,
        oui: args.oui,
        product_class: args.product_class,
        software_version: args.software_version,
        periodic_interval: args.periodic,
        connection_request_listen: args.cr_listen,
        acs_credentials,
        echo_cookies: !args.no_cookies && !args.like_genieacs_sim && !args.like_cwmp_sim,
        gives_up_after_failed_inform: args.like_cwmp_sim,
        refuse_active_notification: args.refuse_active_notification,
        genieacs_sim_quirks: args.like_genieacs_sim,
        start_spread: args.spread,
        behind_nat: args.behind_nat.then(|| radar_sim::NatConfig {
            stun_server: args.stun_server,
            xmpp: match &args.xmpp_server {
                Some(server) => Some(radar_sim::SimXmpp {
                    server: server.clone(),
                    domain: args.xmpp_domain.clone(),
                    password: args.xmpp_password.clone(),
                    allowed: args.xmpp_allowed.clone(),
                    tls_ca_pem: xmpp_ca.clone(),
                }),
                None => None,
            },
            ..Default::default()
        }),
        acs_ca_pem: match &args.acs_ca {
            Some(path) => {
                Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
            }
            None => None,
        },
        ..Default::default()
    };
    let fleet = radar_sim::SimFleet::start(config)
        .await
        .context("starting simulated devices")?;
    println!(
        "simulating {} devices; connection requests on {}",
        fleet.devices.len(),
        fleet.connection_request_addr
    );
    wait_for_signal().await;
    Ok(())
}

#[cfg(test)]
mod node_id_tests {
    #[test]
    fn a_statefulset_pod_is_its_ordinal_plus_one() {
        assert_eq!(super::node_id_of_host("radar-node-0").unwrap(), 1);
        assert_eq!(super::node_id_of_host("my-radar-node-12").unwrap(), 13);
        assert!(super::node_id_of_host("radar").is_err());
    }
}
