//! Helpers for the cluster process tests (`cluster.rs`, `cluster_membership.rs`): node
//! processes on free loopback ports, the `radar` CLI, cluster status, device fleets, writes
//! with an acknowledgement log, listings.

use super::{device_path, eventually, Radar};
use radar_sim::{SimConfig, SimFleet};
use reqwest::Method;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

pub const DEVICES_PER_NODE: usize = 6;

/// The cluster tests of one test binary run one at a time: each starts several processes on
/// ports picked free a moment earlier, and on a 2-core machine several clusters at once also
/// starve the Raft timers the tests measure.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
pub const USP_AGENTS: usize = 6;

pub struct Ports {
    pub grpc: u16,
    pub api: u16,
    pub cwmp: u16,
    pub usp: u16,
}

pub use super::free_port;

pub fn node_args(id: u64, ports: &Ports, seeds: &str) -> Vec<String> {
    let addr = |p: u16| format!("127.0.0.1:{p}");
    [
        "--node-id".to_string(),
        id.to_string(),
        "--grpc-listen".into(),
        addr(ports.grpc),
        "--api-listen".into(),
        addr(ports.api),
        "--cwmp-listen".into(),
        addr(ports.cwmp),
        "--usp-listen".into(),
        addr(ports.usp),
        "--seeds".into(),
        seeds.into(),
        "--config".into(),
    ]
    .into_iter()
    .collect()
}

/// Faster elections than production defaults, so failover is quick on a test machine.
pub const NODE_TOML: &str = r#"
[cwmp]
allow_anonymous = true

[twin]
shard_query_deadline = "1s"

[raft]
heartbeat_interval = "100ms"
election_timeout_min = "500ms"
election_timeout_max = "1s"
"#;

pub fn start_node(dir: &Path, id: u64, ports: &Ports, seeds: &str) -> Radar {
    start_node_with(dir, id, ports, seeds, &[])
}

pub fn start_node_with(dir: &Path, id: u64, ports: &Ports, seeds: &str, extra: &[String]) -> Radar {
    start_node_configured(dir, id, ports, seeds, NODE_TOML, extra)
}

/// A node with its own config text (e.g. [`NODE_TOML`] and more).
pub fn start_node_configured(
    dir: &Path,
    id: u64,
    ports: &Ports,
    seeds: &str,
    toml: &str,
    extra: &[String],
) -> Radar {
    let node_dir = dir.join(format!("node{id}"));
    std::fs::create_dir_all(&node_dir).unwrap();
    let config = node_dir.join("node.toml");
    std::fs::write(&config, toml).unwrap();
    let mut args = node_args(id, ports, seeds);
    args.push(config.to_string_lossy().into_owned());
    args.extend_from_slice(extra);
    Radar::start_node(&node_dir, &args)
}

pub fn radar_cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_radar"))
        .args(args)
        .env("RADAR_TOKEN", super::TEST_TOKEN)
        .output()
        .expect("run radar")
}

pub fn cluster_ports() -> (Vec<Ports>, String) {
    let ports: Vec<Ports> = (0..3)
        .map(|_| Ports {
            grpc: free_port(),
            api: free_port(),
            cwmp: free_port(),
            usp: free_port(),
        })
        .collect();
    let seeds = ports
        .iter()
        .map(|p| format!("127.0.0.1:{}", p.grpc))
        .collect::<Vec<_>>()
        .join(",");
    (ports, seeds)
}

/// Cluster status from one node once every shard has a leader and every node answers.
pub async fn settled_status(node: &Radar, nodes: usize) -> Value {
    settled_status_of(node, nodes, 3).await
}

pub async fn settled_status_of(node: &Radar, nodes: usize, shard_count: usize) -> Value {
    eventually(
        "every shard led, every node reachable",
        Duration::from_secs(60),
        || async {
            let (status, v) = node.get("/api/v1/cluster").await;
            let shards = v["shards"].as_array()?;
            let led = status == 200
                && shards.len() == shard_count
                && shards.iter().all(|s| s["leader"].is_u64());
            let reachable = v["nodes"]
                .as_array()?
                .iter()
                .filter(|n| n["reachable"] == json!(true))
                .count();
            (led && reachable == nodes).then_some(v)
        },
    )
    .await
}

pub fn leader_of_shard(status: &Value, shard: u64) -> u64 {
    status["shards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == json!(shard))
        .and_then(|s| s["leader"].as_u64())
        .expect("shard has a leader")
}

pub fn device_ids() -> Vec<String> {
    (0..3)
        .flat_map(|n| (1..=DEVICES_PER_NODE).map(move |i| format!("os::00D09E-N{n}SIM{i:06}")))
        .collect()
}

/// Simulated CWMP devices, one fleet per ACS URL (the nodes' own, or a router's).
pub async fn start_devices(acs_urls: &[String]) -> Vec<SimFleet> {
    start_devices_every(acs_urls, Duration::from_secs(3600)).await
}

/// `start_devices` with a periodic inform interval.
pub async fn start_devices_every(acs_urls: &[String], periodic: Duration) -> Vec<SimFleet> {
    let mut fleets = Vec::new();
    for (n, acs_url) in acs_urls.iter().enumerate() {
        fleets.push(
            SimFleet::start(SimConfig {
                acs_url: acs_url.clone(),
                count: DEVICES_PER_NODE,
                serial_prefix: format!("N{n}SIM"),
                periodic_interval: periodic,
                ..Default::default()
            })
            .await
            .unwrap(),
        );
    }
    fleets
}

/// A plain TCP load balancer: each accepted connection goes to the next backend in turn and
/// bytes are copied both ways (what sits in front of several routers).
pub async fn tcp_round_robin(backends: Vec<std::net::SocketAddr>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut next = 0;
        while let Ok((mut inbound, _)) = listener.accept().await {
            let backend = backends[next % backends.len()];
            next += 1;
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(backend).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    addr
}

/// A PATCH through `node`; Some(operation id) when it was accepted (202).
pub async fn patch(node: &Radar, device: &str, value: &str) -> Option<u64> {
    let (status, op) = node
        .send(
            Method::PATCH,
            &format!("{}/params", device_path(device)),
            json!({"Device.WiFi.SSID.1.SSID": value}),
        )
        .await;
    (status == 202).then(|| op["id"].as_u64()).flatten()
}

/// Each acknowledged write has exactly one audit record, read through `node`: the PATCH, its
/// device and operation, the admin who asked and where from (issue 13), wherever the write was
/// proxied to its shard's leader.
pub async fn assert_writes_audited_once(node: &Radar, acked: &[(String, u64)]) {
    let records = eventually(
        "the writes' audit records",
        Duration::from_secs(30),
        || async {
            let (status, v) = node
                .get("/api/v1/audit?limit=1000&actor=bootstrap-admin")
                .await;
            let records = v["records"].as_array()?.clone();
            let patches = records.iter().filter(|r| r["method"] == "PATCH").count();
            (status == 200 && v["partial"] == json!(false) && patches >= acked.len())
                .then_some(records)
        },
    )
    .await;
    for (device, op) in acked {
        let mine: Vec<&Value> = records
            .iter()
            .filter(|r| {
                r["method"] == "PATCH" && r["device"] == *device && r["operation"] == json!(op)
            })
            .collect();
        assert_eq!(mine.len(), 1, "{device} operation {op}: {mine:?}");
        assert_eq!(mine[0]["result"], "ok", "{}", mine[0]);
        assert!(
            mine[0]["source"]
                .as_str()
                .unwrap()
                .starts_with("127.0.0.1:"),
            "{}",
            mine[0]
        );
    }
}

pub async fn assert_acknowledged_writes_kept(node: &Radar, acked: &[(String, u64)]) {
    for (device, op) in acked {
        let (status, body) = node
            .get(&format!("{}/operations/{op}", device_path(device)))
            .await;
        assert_eq!(
            status, 200,
            "acknowledged operation {op} of {device} lost: {body}"
        );
    }
}

/// Pages through every device from `node`; None if a page failed or was partial.
pub async fn list_all(node: &Radar) -> Option<Vec<String>> {
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = node
            .get(&format!("/api/v1/devices?limit=7&cursor={cursor}"))
            .await;
        if status != 200 || page["partial"] != json!(false) {
            return None;
        }
        seen.extend(
            page["devices"]
                .as_array()?
                .iter()
                .filter_map(|d| Some(d["id"].as_str()?.to_owned())),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.replace(':', "%3A"),
            None => return Some(seen),
        }
    }
}

/// Replica placement as `GET /api/v1/cluster` reports it: (shard, voters, replicas' nodes,
/// every replica at the leader's applied index).
pub fn placement(status: &Value) -> Vec<(u64, Vec<u64>, Vec<u64>, bool)> {
    status["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let replicas = s["replicas"].as_array().unwrap();
            let applied: Vec<u64> = replicas
                .iter()
                .filter_map(|r| r["last_applied"].as_u64())
                .collect();
            (
                s["id"].as_u64().unwrap(),
                s["voters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(Value::as_u64)
                    .collect(),
                replicas.iter().filter_map(|r| r["node"].as_u64()).collect(),
                applied.windows(2).all(|w| w[0] == w[1]),
            )
        })
        .collect()
}

/// `radar cluster init --shards S --replicas R` through the node at `api`; panics unless it
/// succeeds.
pub fn init_cluster(api: &str, shards: u32, replicas: u32) {
    let (shards, replicas) = (shards.to_string(), replicas.to_string());
    let out = radar_cli(&[
        "cluster",
        "init",
        "--shards",
        &shards,
        "--replicas",
        &replicas,
        "--api",
        api,
    ]);
    assert!(
        out.status.success(),
        "init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A `radar router` on free loopback ports following the nodes at `seeds`, once it is ready.
pub async fn start_ready_router(dir: &Path, seeds: &str) -> Radar {
    start_ready_router_with(dir, seeds, &[]).await
}

/// `start_ready_router` with more arguments (e.g. `--config`).
pub async fn start_ready_router_with(dir: &Path, seeds: &str, extra: &[String]) -> Radar {
    let mut args: Vec<String> = vec![
        "--seeds".into(),
        seeds.into(),
        "--cwmp-listen".into(),
        "127.0.0.1:0".into(),
        "--usp-listen".into(),
        "127.0.0.1:0".into(),
        "--api-listen".into(),
        "127.0.0.1:0".into(),
    ];
    args.extend_from_slice(extra);
    let router = Radar::start_router(dir, &args);
    eventually("the router is ready", Duration::from_secs(30), || async {
        let r = reqwest::get(router.api_url("/readyz")).await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    router
}

/// `USP_AGENTS` simulated USP agents (`os::00D09E-AGENT…`) over WebSocket to `addr`.
pub fn start_usp_agents(
    addr: String,
) -> Vec<std::sync::Arc<radar_sim::usp_agent::agent::SimAgent>> {
    let config = radar_sim::usp_agent::UspSimConfig {
        count: USP_AGENTS,
        serial_prefix: "AGENT".into(),
        ..Default::default()
    };
    radar_sim::usp_agent::start(&config, &radar_sim::usp_agent::Mtp::WebSocket(addr))
}

/// Each device's newest acknowledged write (its last entry in `acked`) is delivered to the
/// device and done, read through `node`, within 90 s.
pub async fn assert_last_writes_done(node: &Radar, acked: &[(String, u64)], when: &str) {
    let mut newest = std::collections::BTreeMap::new();
    for (device, op) in acked {
        newest.insert(device.as_str(), *op);
    }
    for (device, op) in newest {
        eventually(
            &format!("the last write of {device} delivered {when}"),
            Duration::from_secs(90),
            || async {
                let (_, v) = node
                    .get(&format!("{}/operations/{op}", device_path(device)))
                    .await;
                (v["status"] == "done").then_some(())
            },
        )
        .await;
    }
}
