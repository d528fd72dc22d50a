//! A real cluster: `radar node` processes on loopback ports, formed with `radar cluster init`,
//! with simulated CWMP devices and USP agents coming in through two routers behind a TCP load
//! balancer. Proves: the layout and leaders; each twin on exactly one shard and readable from
//! any node (linearizable through the leader, or stale from the local replica); `kill -9` of a
//! shard leader loses no acknowledged write and a new leader takes over (the failover time is
//! printed); a restart of the whole cluster brings every twin and operation back; a fleet query
//! with a stopped node answers `partial` within the deadline; USP over MQTT through a shared
//! subscription; `add-shard`, `add-node` and `remove-node` under write load.

mod common;

use common::{device_path, eventually, Radar};
use radar_sim::{SimConfig, SimFleet};
use reqwest::Method;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const DEVICES_PER_NODE: usize = 6;

/// The tests of this file run one at a time: each starts several processes on ports picked
/// free a moment earlier, and on a 2-core machine five clusters at once also starve the Raft
/// timers the tests measure.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const USP_AGENTS: usize = 6;

struct Ports {
    grpc: u16,
    api: u16,
    cwmp: u16,
    usp: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn node_args(id: u64, ports: &Ports, seeds: &str) -> Vec<String> {
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
const NODE_TOML: &str = r#"
[cwmp]
allow_anonymous = true

[twin]
shard_query_deadline = "1s"

[raft]
heartbeat_interval = "100ms"
election_timeout_min = "500ms"
election_timeout_max = "1s"
"#;

fn start_node(dir: &Path, id: u64, ports: &Ports, seeds: &str) -> Radar {
    start_node_with(dir, id, ports, seeds, &[])
}

fn start_node_with(dir: &Path, id: u64, ports: &Ports, seeds: &str, extra: &[String]) -> Radar {
    let node_dir = dir.join(format!("node{id}"));
    std::fs::create_dir_all(&node_dir).unwrap();
    let config = node_dir.join("node.toml");
    std::fs::write(&config, NODE_TOML).unwrap();
    let mut args = node_args(id, ports, seeds);
    args.push(config.to_string_lossy().into_owned());
    args.extend_from_slice(extra);
    Radar::start_node(&node_dir, &args)
}

fn radar_cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_radar"))
        .args(args)
        .output()
        .expect("run radar")
}

fn cluster_ports() -> (Vec<Ports>, String) {
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
async fn settled_status(node: &Radar, nodes: usize) -> Value {
    settled_status_of(node, nodes, 3).await
}

async fn settled_status_of(node: &Radar, nodes: usize, shard_count: usize) -> Value {
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

fn leader_of_shard(status: &Value, shard: u64) -> u64 {
    status["shards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == json!(shard))
        .and_then(|s| s["leader"].as_u64())
        .expect("shard has a leader")
}

fn device_ids() -> Vec<String> {
    (0..3)
        .flat_map(|n| (1..=DEVICES_PER_NODE).map(move |i| format!("os::00D09E-N{n}SIM{i:06}")))
        .collect()
}

/// Simulated CWMP devices, one fleet per ACS URL (the nodes' own, or a router's).
async fn start_devices(acs_urls: &[String]) -> Vec<SimFleet> {
    let mut fleets = Vec::new();
    for (n, acs_url) in acs_urls.iter().enumerate() {
        fleets.push(
            SimFleet::start(SimConfig {
                acs_url: acs_url.clone(),
                count: DEVICES_PER_NODE,
                serial_prefix: format!("N{n}SIM"),
                periodic_interval: Duration::from_secs(3600),
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
async fn tcp_round_robin(backends: Vec<std::net::SocketAddr>) -> std::net::SocketAddr {
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
async fn patch(node: &Radar, device: &str, value: &str) -> Option<u64> {
    let (status, op) = node
        .send(
            Method::PATCH,
            &format!("{}/params", device_path(device)),
            json!({"Device.WiFi.SSID.1.SSID": value}),
        )
        .await;
    (status == 202).then(|| op["id"].as_u64()).flatten()
}

async fn assert_acknowledged_writes_kept(node: &Radar, acked: &[(String, u64)]) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_three_node_cluster_serves_devices_survives_a_leader_kill_and_a_full_restart() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let (ports, seeds) = cluster_ports();
    let mut nodes: Vec<Option<Radar>> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| Some(start_node(dir.path(), i as u64 + 1, p, &seeds)))
        .collect();
    let api_of = |i: usize| format!("http://127.0.0.1:{}", ports[i].api);

    // Form the cluster; init is idempotent and refuses a different shape.
    let init = [
        "cluster",
        "init",
        "--shards",
        "3",
        "--replicas",
        "3",
        "--api",
    ];
    let out = radar_cli(&[&init[..], &[api_of(0).as_str()]].concat());
    assert!(
        out.status.success(),
        "init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = radar_cli(&[&init[..], &[api_of(1).as_str()]].concat());
    assert!(
        out.status.success(),
        "repeated init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = radar_cli(&[
        "cluster",
        "init",
        "--shards",
        "5",
        "--replicas",
        "3",
        "--api",
        &api_of(2),
    ]);
    assert!(!out.status.success(), "init with another shape must fail");

    let status = settled_status(nodes[1].as_ref().unwrap(), 3).await;
    for shard in status["shards"].as_array().unwrap() {
        assert_eq!(shard["voters"].as_array().unwrap().len(), 3, "{shard}");
    }
    let out = radar_cli(&["cluster", "--api", &api_of(2)]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && table.contains("layout version"),
        "{table}"
    );

    // Two routers side by side behind a plain TCP load balancer (round robin per connection):
    // CWMP devices and USP agents connect through the balancer only.
    let routers: Vec<Radar> = (0..2)
        .map(|i| {
            Radar::start_router(
                &dir.path().join(format!("router{i}")),
                &[
                    "--seeds".into(),
                    seeds.clone(),
                    "--cwmp-listen".into(),
                    "127.0.0.1:0".into(),
                    "--usp-listen".into(),
                    "127.0.0.1:0".into(),
                    "--api-listen".into(),
                    "127.0.0.1:0".into(),
                ],
            )
        })
        .collect();
    for router in &routers {
        eventually("the router is ready", Duration::from_secs(30), || async {
            let r = reqwest::get(router.api_url("/readyz")).await.ok()?;
            r.status().is_success().then_some(())
        })
        .await;
    }
    let cwmp_balancer = tcp_round_robin(routers.iter().map(|r| r.cwmp).collect()).await;
    let usp_balancer = tcp_round_robin(routers.iter().map(|r| r.usp).collect()).await;

    // Each twin lands on exactly one shard and is readable from any node.
    let _fleets = start_devices(&vec![format!("http://{cwmp_balancer}/"); 3]).await;
    let agents_config = radar_sim::usp_agent::UspSimConfig {
        count: USP_AGENTS,
        serial_prefix: "AGENT".into(),
        ..Default::default()
    };
    let _agents = radar_sim::usp_agent::start(
        &agents_config,
        &radar_sim::usp_agent::Mtp::WebSocket(usp_balancer.to_string()),
    );
    let mut devices = device_ids();
    devices.extend((1..=USP_AGENTS).map(|i| format!("os::00D09E-AGENT{i:06}")));
    for node in nodes.iter().flatten() {
        for id in &devices {
            eventually(
                "the twin from any node",
                Duration::from_secs(60),
                || async {
                    let (status, _) = node.get(&device_path(id)).await;
                    (status == 200).then_some(())
                },
            )
            .await;
        }
    }
    let status = settled_status(nodes[0].as_ref().unwrap(), 3).await;
    let on_leaders: u64 = status["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["devices"].as_u64().unwrap())
        .sum();
    assert_eq!(
        on_leaders,
        devices.len() as u64,
        "each twin on exactly one shard: {status}"
    );
    for node in nodes.iter().flatten() {
        eventually(
            "stale reads from every replica",
            Duration::from_secs(30),
            || async {
                for id in &devices {
                    let (status, _) = node
                        .get(&format!("{}?consistency=stale", device_path(id)))
                        .await;
                    if status != 200 {
                        return None;
                    }
                }
                Some(())
            },
        )
        .await;
    }

    // Fleet queries from any node see every shard: pages merge in id order across shards.
    for node in nodes.iter().flatten() {
        let (status, count) = node.get("/api/v1/query?q=&group_by=product_class").await;
        assert_eq!(status, 200, "{count}");
        assert_eq!(count["total"], json!(devices.len()), "{count}");
        assert_eq!(count["partial"], json!(false), "{count}");
        let mut seen = Vec::new();
        let mut cursor = String::new();
        loop {
            let (status, page) = node
                .get(&format!("/api/v1/devices?limit=5&cursor={cursor}"))
                .await;
            assert_eq!(status, 200, "{page}");
            seen.extend(
                page["devices"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d["id"].as_str().unwrap().to_owned()),
            );
            match page["next_cursor"].as_str() {
                Some(next) => cursor = next.replace(':', "%3A"),
                None => break,
            }
        }
        let mut expected = devices.clone();
        expected.sort();
        assert_eq!(seen, expected, "paging through every shard from one node");
    }

    // Writes through every node, acknowledged (202) ones logged.
    let mut acked = Vec::new();
    for (i, id) in devices.iter().enumerate() {
        let node = nodes[i % 3].as_ref().unwrap();
        let op = patch(node, id, &format!("before-{i}"))
            .await
            .expect("202 before the kill");
        acked.push((id.clone(), op));
    }

    // kill -9 the leader of shard 0 while writes keep coming through the other nodes.
    let victim = leader_of_shard(&status, 0) as usize - 1;
    let survivors: Vec<usize> = (0..3).filter(|i| *i != victim).collect();
    nodes[victim].as_mut().unwrap().kill9();
    let killed_at = Instant::now();
    let mut failover = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut round = 0;
    while failover.is_none() || round < 3 {
        assert!(
            Instant::now() < deadline,
            "writes did not resume after the kill"
        );
        let mut all_ok = true;
        for (i, id) in devices.iter().enumerate() {
            let node = nodes[survivors[i % 2]].as_ref().unwrap();
            match patch(node, id, &format!("after-{round}-{i}")).await {
                Some(op) => acked.push((id.clone(), op)),
                None => all_ok = false,
            }
        }
        if all_ok && failover.is_none() {
            failover = Some(killed_at.elapsed());
        }
        round += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "failover: kill -9 of node {} (leader of shard 0) to writes accepted on every shard: {:?}",
        victim + 1,
        failover.unwrap()
    );
    let status = settled_status(nodes[survivors[0]].as_ref().unwrap(), 2).await;
    assert_ne!(leader_of_shard(&status, 0) as usize - 1, victim);
    for i in &survivors {
        assert_acknowledged_writes_kept(nodes[*i].as_ref().unwrap(), &acked).await;
    }

    // Devices resume through the router: each device's last write reaches it (a connection
    // request or a reconnect brings it to its shard's current leader) and is done.
    let reader = nodes[survivors[0]].as_ref().unwrap();
    for id in &devices {
        let (_, last) = acked.iter().rev().find(|(d, _)| d == id).unwrap();
        eventually(
            "the last write delivered after failover",
            Duration::from_secs(90),
            || async {
                let (_, op) = reader
                    .get(&format!("{}/operations/{last}", device_path(id)))
                    .await;
                (op["status"] == "done").then_some(())
            },
        )
        .await;
    }
    let mut forwarded_to_leaders = 0.0;
    for router in &routers {
        let metrics = reqwest::get(router.api_url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let by_this: f64 = metrics
            .lines()
            .filter(|l| {
                l.starts_with("radar_router_forwarded_total") && l.contains("by=\"leader\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert!(
            by_this > 0.0,
            "a router behind the balancer forwarded nothing: {metrics}"
        );
        forwarded_to_leaders += by_this;
    }
    assert!(forwarded_to_leaders >= devices.len() as f64);

    // The killed node comes back and catches up.
    nodes[victim] = Some(start_node(
        dir.path(),
        victim as u64 + 1,
        &ports[victim],
        &seeds,
    ));
    settled_status(nodes[victim].as_ref().unwrap(), 3).await;

    // Restart the whole cluster: every twin and every acknowledged write is back.
    for node in nodes.iter_mut().flatten() {
        node.kill9();
    }
    let nodes: Vec<Radar> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| start_node(dir.path(), i as u64 + 1, p, &seeds))
        .collect();
    settled_status(&nodes[2], 3).await;
    for id in &devices {
        let (status, twin) = nodes[0].get(&device_path(id)).await;
        assert_eq!(status, 200, "{id} lost in the restart: {twin}");
    }
    assert_acknowledged_writes_kept(&nodes[1], &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fleet_query_with_a_stopped_node_answers_partial_within_the_deadline() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let (ports, seeds) = cluster_ports();
    let nodes: Vec<Option<Radar>> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| Some(start_node(dir.path(), i as u64 + 1, p, &seeds)))
        .collect();
    // One replica per shard: a stopped node takes its shard's only replica with it.
    let api = format!("http://127.0.0.1:{}", ports[0].api);
    let out = radar_cli(&[
        "cluster",
        "init",
        "--shards",
        "3",
        "--replicas",
        "1",
        "--api",
        &api,
    ]);
    assert!(
        out.status.success(),
        "init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = settled_status(nodes[0].as_ref().unwrap(), 3).await;
    let urls: Vec<String> = nodes.iter().flatten().map(|n| n.acs_url()).collect();
    let _fleets = start_devices(&urls).await;
    let devices = device_ids();
    let first = nodes[0].as_ref().unwrap();
    eventually("every device counted", Duration::from_secs(60), || async {
        let (_, count) = first.get("/api/v1/query?q=").await;
        (count["total"] == json!(devices.len()) && count["partial"] == json!(false)).then_some(())
    })
    .await;

    // SIGSTOP: the node's sockets stay open but it never answers, the worst case for a
    // scatter-gather without deadlines.
    let stopped = nodes[2].as_ref().unwrap().child.id();
    let stopped_shard = leader_shard_of(&status, 3);
    Command::new("kill")
        .args(["-STOP", &stopped.to_string()])
        .status()
        .unwrap();
    let started = Instant::now();
    let (code, count) = first.get("/api/v1/query?q=").await;
    let elapsed = started.elapsed();
    let (_, page) = first.get("/api/v1/devices?limit=1000").await;
    Command::new("kill")
        .args(["-CONT", &stopped.to_string()])
        .status()
        .unwrap();
    println!("query with a stopped node answered in {elapsed:?}: {count}");
    assert_eq!(code, 200);
    assert_eq!(count["partial"], json!(true), "{count}");
    assert_eq!(count["failed_shards"], json!([stopped_shard]), "{count}");
    assert!(count["total"].as_u64().unwrap() < devices.len() as u64);
    assert!(
        elapsed < Duration::from_secs(4),
        "deadline 1 s, answered after {elapsed:?}"
    );
    assert_eq!(page["partial"], json!(true), "{page}");
    assert_eq!(page["failed_shards"], json!([stopped_shard]), "{page}");
}

/// The shard node `node` leads (one replica per shard: each node leads one).
fn leader_shard_of(status: &Value, node: u64) -> u64 {
    status["shards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["leader"] == json!(node))
        .and_then(|s| s["id"].as_u64())
        .expect("node leads a shard")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn usp_agents_over_mqtt_are_served_by_their_shard_leaders_through_a_shared_subscription() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let broker = common::Mosquitto::start(dir.path());
    let (ports, seeds) = cluster_ports();
    let mqtt = ["--mqtt-url".to_string(), broker.url()];
    let nodes: Vec<Radar> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| start_node_with(dir.path(), i as u64 + 1, p, &seeds, &mqtt))
        .collect();
    let api = format!("http://127.0.0.1:{}", ports[0].api);
    let out = radar_cli(&[
        "cluster",
        "init",
        "--shards",
        "3",
        "--replicas",
        "3",
        "--api",
        &api,
    ]);
    assert!(
        out.status.success(),
        "init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    settled_status(&nodes[0], 3).await;
    let config = radar_sim::usp_agent::UspSimConfig {
        count: USP_AGENTS,
        serial_prefix: "MQTT".into(),
        ..Default::default()
    };
    let _agents = radar_sim::usp_agent::start(
        &config,
        &radar_sim::usp_agent::Mtp::Mqtt(radar_sim::usp_agent::mqtt::Broker {
            host: "127.0.0.1".into(),
            port: broker.port,
            version: radar_usp::record::MqttVersion::V5,
        }),
    );
    let agents: Vec<String> = (1..=USP_AGENTS)
        .map(|i| format!("os::00D09E-MQTT{i:06}"))
        .collect();
    for id in &agents {
        let node = &nodes[0];
        eventually("the agent discovered", Duration::from_secs(60), || async {
            let (status, twin) = node.get(&device_path(id)).await;
            (status == 200 && twin["discovered_at"].is_string()).then_some(())
        })
        .await;
    }
    // Writes through any node reach every agent, whichever node the broker gives its records.
    for (i, id) in agents.iter().enumerate() {
        let node = &nodes[i % 3];
        let op = patch(node, id, &format!("mqtt-{i}")).await.expect("202");
        eventually(
            "the write done over MQTT",
            Duration::from_secs(60),
            || async {
                let (_, status) = node
                    .get(&format!("{}/operations/{op}", device_path(id)))
                    .await;
                (status["status"] == "done").then_some(())
            },
        )
        .await;
    }
    let mut forwarded = 0.0;
    for node in &nodes {
        let text = reqwest::get(node.api_url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        forwarded += text
            .lines()
            .filter(|l| {
                l.starts_with("radar_usp_forwarded_total") && l.contains("outcome=\"sent\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
    }
    assert!(forwarded > 0.0, "no record was forwarded to a shard leader");
}

/// Pages through every device from `node`; None if a page failed or was partial.
async fn list_all(node: &Radar) -> Option<Vec<String>> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn add_shard_under_load_moves_twins_intact_and_serves_each_device_from_one_shard() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let (ports, seeds) = cluster_ports();
    let nodes: Vec<Radar> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| start_node(dir.path(), i as u64 + 1, p, &seeds))
        .collect();
    let api_of = |i: usize| format!("http://127.0.0.1:{}", ports[i].api);
    let out = radar_cli(&[
        "cluster",
        "init",
        "--shards",
        "2",
        "--replicas",
        "3",
        "--api",
        &api_of(0),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    settled_status_of(&nodes[0], 3, 2).await;
    let router = Radar::start_router(
        &dir.path().join("router"),
        &[
            "--seeds".into(),
            seeds.clone(),
            "--cwmp-listen".into(),
            "127.0.0.1:0".into(),
            "--usp-listen".into(),
            "127.0.0.1:0".into(),
            "--api-listen".into(),
            "127.0.0.1:0".into(),
        ],
    );
    eventually("the router is ready", Duration::from_secs(30), || async {
        let r = reqwest::get(router.api_url("/readyz")).await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    // Load: CWMP devices inform every 2 s and USP agents stay connected, all through the router.
    let mut fleets = Vec::new();
    for n in 0..3 {
        fleets.push(
            SimFleet::start(SimConfig {
                acs_url: router.acs_url(),
                count: DEVICES_PER_NODE,
                serial_prefix: format!("N{n}SIM"),
                periodic_interval: Duration::from_secs(2),
                ..Default::default()
            })
            .await
            .unwrap(),
        );
    }
    let agents_config = radar_sim::usp_agent::UspSimConfig {
        count: USP_AGENTS,
        serial_prefix: "AGENT".into(),
        ..Default::default()
    };
    let _agents = radar_sim::usp_agent::start(
        &agents_config,
        &radar_sim::usp_agent::Mtp::WebSocket(router.usp.to_string()),
    );
    let mut devices = device_ids();
    devices.extend((1..=USP_AGENTS).map(|i| format!("os::00D09E-AGENT{i:06}")));
    devices.sort();
    eventually("every device known", Duration::from_secs(60), || async {
        (list_all(&nodes[1]).await? == devices).then_some(())
    })
    .await;
    let mut before = std::collections::BTreeMap::new();
    for id in &devices {
        let (_, params) = nodes[0].get(&format!("{}/params", device_path(id))).await;
        before.insert(id.clone(), params["params"].as_object().unwrap().clone());
    }

    // add-shard while operators write and query through every node.
    let done = std::sync::atomic::AtomicBool::new(false);
    let acked = std::sync::Mutex::new(Vec::new());
    let refused = std::sync::atomic::AtomicUsize::new(0);
    let listings = std::sync::Mutex::new(Vec::new());
    let add = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let api = api_of(2);
        let out = tokio::task::spawn_blocking(move || {
            radar_cli(&["cluster", "add-shard", "--json", "--api", &api])
        })
        .await
        .unwrap();
        // Load continues a little after the move.
        tokio::time::sleep(Duration::from_secs(1)).await;
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        out
    };
    let write = async {
        let mut round = 0;
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            for (i, id) in devices.iter().enumerate() {
                let value = format!("move-{round}-{i}");
                match patch(&nodes[(i + round) % 3], id, &value).await {
                    Some(op) => acked.lock().unwrap().push((id.clone(), op)),
                    None => {
                        refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
            round += 1;
        }
    };
    let query = async {
        let mut round = 0;
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            if let Some(seen) = list_all(&nodes[round % 3]).await {
                listings.lock().unwrap().push(seen);
            }
            round += 1;
        }
    };
    let (out, (), ()) = tokio::join!(add, write, query);
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "add-shard: {report} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&report).unwrap();
    println!("add-shard under load: {report}");
    assert_eq!(report["shard"], json!(2), "{report}");
    assert!(report["twins_moved"].as_u64().unwrap() > 0, "{report}");

    // Every listing taken during the move had every device exactly once.
    let listings = listings.into_inner().unwrap();
    assert!(listings.len() >= 3, "only {} listings", listings.len());
    for seen in &listings {
        assert_eq!(
            seen, &devices,
            "a listing during the move lost or doubled a device"
        );
    }
    // Writes kept being accepted; none acknowledged was lost.
    let acked = acked.into_inner().unwrap();
    assert!(
        acked.len() >= devices.len(),
        "{} writes acknowledged, {} refused",
        acked.len(),
        refused.load(std::sync::atomic::Ordering::Relaxed)
    );
    let status = settled_status_of(&nodes[1], 3, 3).await;
    let shards = status["shards"].as_array().unwrap();
    let on_leaders: u64 = shards.iter().map(|s| s["devices"].as_u64().unwrap()).sum();
    assert_eq!(
        on_leaders,
        devices.len() as u64,
        "each twin on exactly one shard: {status}"
    );
    assert!(shards[2]["devices"].as_u64().unwrap() > 0, "{status}");
    for node in &nodes {
        assert_acknowledged_writes_kept(node, &acked).await;
    }
    // The moved twins arrived whole: every parameter known before is still there, and the
    // identity values reported before are unchanged (a value still empty before may have been
    // read since).
    for id in &devices {
        let (status, params) = nodes[2].get(&format!("{}/params", device_path(id))).await;
        assert_eq!(status, 200, "{id}: {params}");
        let now = params["params"].as_object().unwrap();
        for (path, old) in &before[id] {
            let new = now.get(path).unwrap_or_else(|| panic!("{id} lost {path}"));
            let identity = path.ends_with("SerialNumber") || path.ends_with("ManufacturerOUI");
            if identity && old["value"] != json!("") {
                assert_eq!(new["value"], old["value"], "{id} {path}");
            }
        }
    }
    // Devices are served by the new owner: each device's last write is delivered and done.
    for id in &devices {
        let (_, last) = acked.iter().rev().find(|(d, _)| d == id).unwrap();
        eventually(
            "the last write delivered after the move",
            Duration::from_secs(90),
            || async {
                let (_, op) = nodes[0]
                    .get(&format!("{}/operations/{last}", device_path(id)))
                    .await;
                (op["status"] == "done").then_some(())
            },
        )
        .await;
    }
    // After the move, one listing still holds every device once.
    assert_eq!(list_all(&nodes[0]).await.unwrap(), devices);
}

/// Replica placement as `GET /api/v1/cluster` reports it: (shard, voters, replicas' nodes,
/// every replica at the leader's applied index).
fn placement(status: &Value) -> Vec<(u64, Vec<u64>, Vec<u64>, bool)> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn add_node_and_remove_node_move_replicas_while_devices_are_served() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<Ports> = (0..4)
        .map(|_| Ports {
            grpc: free_port(),
            api: free_port(),
            cwmp: free_port(),
            usp: free_port(),
        })
        .collect();
    let seeds_of = |ports: &[Ports]| {
        ports
            .iter()
            .map(|p| format!("127.0.0.1:{}", p.grpc))
            .collect::<Vec<_>>()
            .join(",")
    };
    // The first three form the cluster; node 4 runs from the start (its ports taken before
    // anything else binds ephemeral ones) and is added later.
    let seeds = seeds_of(&ports[..3]);
    let mut nodes: Vec<Radar> = ports[..3]
        .iter()
        .enumerate()
        .map(|(i, p)| start_node(dir.path(), i as u64 + 1, p, &seeds))
        .collect();
    nodes.push(start_node(dir.path(), 4, &ports[3], &seeds_of(&ports)));
    let api_of = |i: usize| format!("http://127.0.0.1:{}", ports[i].api);
    let out = radar_cli(&[
        "cluster",
        "init",
        "--shards",
        "2",
        "--replicas",
        "3",
        "--api",
        &api_of(0),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    settled_status_of(&nodes[0], 3, 2).await;
    let router = Radar::start_router(
        &dir.path().join("router"),
        &[
            "--seeds".into(),
            seeds.clone(),
            "--cwmp-listen".into(),
            "127.0.0.1:0".into(),
            "--usp-listen".into(),
            "127.0.0.1:0".into(),
            "--api-listen".into(),
            "127.0.0.1:0".into(),
        ],
    );
    let _fleets = start_devices(&vec![router.acs_url(); 3]).await;
    let mut devices = device_ids();
    devices.sort();
    eventually("every device known", Duration::from_secs(60), || async {
        (list_all(&nodes[1]).await? == devices).then_some(())
    })
    .await;

    // Writes through whichever nodes are members while a step runs.
    async fn write_during(
        nodes: &[&Radar],
        devices: &[String],
        done: &std::sync::atomic::AtomicBool,
        acked: &std::sync::Mutex<Vec<(String, u64)>>,
    ) {
        let mut round = 0;
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            for (i, id) in devices.iter().enumerate() {
                if let Some(op) = patch(
                    nodes[(i + round) % nodes.len()],
                    id,
                    &format!("m-{round}-{i}"),
                )
                .await
                {
                    acked.lock().unwrap().push((id.clone(), op));
                }
            }
            round += 1;
        }
    }
    let acked = std::sync::Mutex::new(Vec::new());

    // add-node: node 4 joins and takes its share of replicas while writes go on.
    let done = std::sync::atomic::AtomicBool::new(false);
    let address = format!("127.0.0.1:{}", ports[3].grpc);
    let api = api_of(1);
    let add = async {
        let out = tokio::task::spawn_blocking(move || {
            radar_cli(&[
                "cluster",
                "add-node",
                "--json",
                "--address",
                &address,
                "--api",
                &api,
            ])
        })
        .await
        .unwrap();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        out
    };
    let writers: Vec<&Radar> = nodes[..3].iter().collect();
    let (out, ()) = tokio::join!(add, write_during(&writers, &devices, &done, &acked));
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "add-node: {report} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("add-node under load: {report}");
    let status = eventually(
        "node 4 hosts a caught-up replica",
        Duration::from_secs(60),
        || async {
            let (_, v) = nodes[3].get("/api/v1/cluster").await;
            let placement = placement(&v);
            let on_four = placement.iter().filter(|(_, voters, replicas, caught_up)| {
                voters.contains(&4) && replicas.contains(&4) && *caught_up
            });
            (on_four.count() >= 1 && placement.iter().all(|(_, v, _, _)| v.len() == 3)).then_some(v)
        },
    )
    .await;
    assert_eq!(status["nodes"].as_array().unwrap().len(), 4, "{status}");
    // Node 4 serves stale reads of the shard it now hosts from its own replica.
    let four: Vec<u64> = placement(&status)
        .into_iter()
        .filter(|(_, v, _, _)| v.contains(&4))
        .map(|(s, _, _, _)| s)
        .collect();
    assert!(!four.is_empty());

    // remove-node: node 1 is drained while writes go on through nodes 2–4, then stopped.
    let done = std::sync::atomic::AtomicBool::new(false);
    let api = api_of(2);
    let remove = async {
        let out = tokio::task::spawn_blocking(move || {
            radar_cli(&[
                "cluster",
                "remove-node",
                "--json",
                "--node-id",
                "1",
                "--api",
                &api,
            ])
        })
        .await
        .unwrap();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        out
    };
    let writers: Vec<&Radar> = nodes[1..].iter().collect();
    let (out, ()) = tokio::join!(remove, write_during(&writers, &devices, &done, &acked));
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "remove-node: {report} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("remove-node under load: {report}");
    nodes[0].kill9();
    let status = eventually(
        "node 1 gone, every shard led by three voters",
        Duration::from_secs(60),
        || async {
            let (_, v) = nodes[2].get("/api/v1/cluster").await;
            let ok = v["nodes"].as_array()?.iter().all(|n| n["id"] != json!(1))
                && placement(&v)
                    .iter()
                    .all(|(_, voters, _, _)| voters.len() == 3 && !voters.contains(&1))
                && v["shards"].as_array()?.iter().all(|s| s["leader"].is_u64());
            ok.then_some(v)
        },
    )
    .await;
    println!("after remove-node: {status}");
    let acked = acked.into_inner().unwrap();
    assert!(
        acked.len() >= devices.len(),
        "{} writes acknowledged",
        acked.len()
    );
    for node in &nodes[1..] {
        assert_acknowledged_writes_kept(node, &acked).await;
    }
    // Writes through the remaining nodes commit, and devices get them through the router.
    let mut last = Vec::new();
    for (i, id) in devices.iter().enumerate() {
        let op = patch(&nodes[1 + i % 3], id, "after-remove")
            .await
            .expect("202 after remove-node");
        last.push((id.clone(), op));
    }
    for (id, op) in &last {
        eventually(
            "the last write delivered",
            Duration::from_secs(90),
            || async {
                let (_, v) = nodes[3]
                    .get(&format!("{}/operations/{op}", device_path(id)))
                    .await;
                (v["status"] == "done").then_some(())
            },
        )
        .await;
    }
}
