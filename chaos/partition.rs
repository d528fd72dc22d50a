//! Chaos: network partitions between real `radar node` processes, each in its own network
//! namespace, wired to a bridge by veth pairs that the test creates and removes itself. A
//! partition isolates a node by taking its veth down; healing brings it back.
//!
//! Each round isolates the node that leads the shard while writes keep coming through the
//! other two, then heals. Proves: the majority elects a new leader and keeps acknowledging
//! writes; the isolated old leader acknowledges nothing; after the heal every replica holds
//! every acknowledged write (stale reads from each node) and the cluster agrees on one leader.
//!
//! Default: one round. `RADAR_CHAOS_ROUNDS=N` runs N rounds (the long run, with random
//! victims among leaders and followers). Needs root and `ip` (iproute2); without them the test
//! says so and does nothing.

#[path = "../crates/radar/tests/common/mod.rs"]
mod common;

use common::{device_path, eventually, Radar};
use radar_sim::{SimConfig, SimFleet};
use reqwest::Method;
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

const NODE_TOML: &str = r#"
[cwmp]
allow_anonymous = true

[raft]
heartbeat_interval = "100ms"
election_timeout_min = "500ms"
election_timeout_max = "1s"
"#;

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

/// A bridge in the test's namespace and one namespace per node, removed on drop.
struct Network {
    bridge: String,
    prefix: String,
    nodes: usize,
    subnet: u8,
}

impl Network {
    fn create(nodes: usize) -> Option<Network> {
        let tag = std::process::id() % 100_000;
        let net = Network {
            bridge: format!("rdb{tag}"),
            prefix: format!("rd{tag}"),
            nodes,
            subnet: 100 + (tag % 100) as u8,
        };
        let gateway = format!("10.{}.0.254/24", net.subnet);
        if !(ip(&["link", "add", &net.bridge, "type", "bridge"])
            && ip(&["addr", "add", &gateway, "dev", &net.bridge])
            && ip(&["link", "set", &net.bridge, "up"]))
        {
            return None;
        }
        for n in 1..=nodes {
            let ns = net.netns(n);
            let host = net.host_link(n);
            let inner = format!("{}i{n}", net.prefix);
            let addr = format!("{}/24", net.addr(n));
            let ok = ip(&["netns", "add", &ns])
                && ip(&["link", "add", &host, "type", "veth", "peer", "name", &inner])
                && ip(&["link", "set", &inner, "netns", &ns])
                && ip(&["link", "set", &host, "master", &net.bridge])
                && ip(&["link", "set", &host, "up"])
                && ip(&["-n", &ns, "addr", "add", &addr, "dev", &inner])
                && ip(&["-n", &ns, "link", "set", &inner, "up"])
                && ip(&["-n", &ns, "link", "set", "lo", "up"])
                && ip(&[
                    "-n",
                    &ns,
                    "route",
                    "add",
                    "default",
                    "via",
                    &format!("10.{}.0.254", net.subnet),
                ]);
            if !ok {
                return None;
            }
        }
        Some(net)
    }

    fn netns(&self, n: usize) -> String {
        format!("{}n{n}", self.prefix)
    }

    fn host_link(&self, n: usize) -> String {
        format!("{}h{n}", self.prefix)
    }

    fn addr(&self, n: usize) -> String {
        format!("10.{}.0.{n}", self.subnet)
    }

    fn isolate(&self, n: usize) {
        assert!(ip(&["link", "set", &self.host_link(n), "down"]));
    }

    fn heal(&self, n: usize) {
        assert!(ip(&["link", "set", &self.host_link(n), "up"]));
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for n in 1..=self.nodes {
            ip(&["link", "del", &self.host_link(n)]);
            ip(&["netns", "del", &self.netns(n)]);
        }
        ip(&["link", "del", &self.bridge]);
    }
}

async fn status(node: &Radar) -> Option<Value> {
    let (code, v) = node.get("/api/v1/cluster").await;
    (code == 200).then_some(v)
}

/// The leader the reachable `nodes` agree on, every replica caught up.
async fn agreed_leader(nodes: &[&Radar]) -> u64 {
    eventually(
        "an agreed, caught-up leader",
        Duration::from_secs(60),
        || async {
            let mut agreed = None;
            for node in nodes {
                let v = status(node).await?;
                let shard = &v["shards"][0];
                let leader = shard["leader"].as_u64()?;
                let applied: Vec<u64> = shard["replicas"]
                    .as_array()?
                    .iter()
                    .filter_map(|r| r["last_applied"].as_u64())
                    .collect();
                if applied.len() != 3 || applied.iter().any(|a| *a != applied[0]) {
                    return None;
                }
                if agreed.is_some_and(|a| a != leader) {
                    return None;
                }
                agreed = Some(leader);
            }
            agreed
        },
    )
    .await
}

async fn patch(node: &Radar, device: &str, value: &str) -> Option<u64> {
    let (status, op) = tokio::time::timeout(
        Duration::from_secs(3),
        node.send(
            Method::PATCH,
            &format!("{}/params", device_path(device)),
            json!({"Device.WiFi.SSID.1.SSID": value}),
        ),
    )
    .await
    .ok()?;
    (status == 202).then(|| op["id"].as_u64()).flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partitions_lose_no_acknowledged_write_and_heal_to_one_leader() {
    let rounds: usize = std::env::var("RADAR_CHAOS_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1);
    let Some(net) = Network::create(3) else {
        eprintln!("SKIPPED: network namespaces need root and iproute2 (`ip`)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The nodes reach each other beyond loopback, so cluster gRPC runs over mutual TLS: each
    // node's certificate names its namespace's address.
    let addrs: Vec<String> = (1..=3).map(|n| net.addr(n)).collect();
    let names: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let (ca, issued) = common::signed_by_a_ca(&names);
    let ca_file = dir.path().join("cluster-ca.pem");
    std::fs::write(&ca_file, &ca).unwrap();
    let seeds = (1..=3)
        .map(|n| format!("{}:7560", net.addr(n)))
        .collect::<Vec<_>>()
        .join(",");
    let mut nodes: Vec<Radar> = (1..=3)
        .map(|n| {
            let node_dir = dir.path().join(format!("node{n}"));
            std::fs::create_dir_all(&node_dir).unwrap();
            let config = node_dir.join("node.toml");
            let (cert, key) = (node_dir.join("node.pem"), node_dir.join("node.key"));
            std::fs::write(&cert, &issued[n - 1].0).unwrap();
            std::fs::write(&key, &issued[n - 1].1).unwrap();
            let toml = format!(
                "{NODE_TOML}\n[cluster]\ntls = {{ ca = {ca_file:?}, cert = {cert:?}, key = {key:?} }}\n"
            );
            std::fs::write(&config, toml).unwrap();
            let addr = net.addr(n);
            let args: Vec<String> = vec![
                "--node-id".into(),
                n.to_string(),
                "--grpc-listen".into(),
                format!("{addr}:7560"),
                "--api-listen".into(),
                format!("{addr}:7557"),
                "--cwmp-listen".into(),
                format!("{addr}:7547"),
                "--usp-listen".into(),
                format!("{addr}:7548"),
                "--seeds".into(),
                seeds.clone(),
                "--config".into(),
                config.to_string_lossy().into_owned(),
            ];
            Radar::start_node_in(Some(&net.netns(n)), &node_dir, &args)
        })
        .collect();
    let (code, init) = nodes[0]
        .send(
            Method::POST,
            "/api/v1/cluster/init",
            json!({"shards": 1, "replicas": 3}),
        )
        .await;
    assert_eq!(code, 200, "{init}");
    let all: Vec<&Radar> = nodes.iter().collect();
    agreed_leader(&all).await;
    let _devices = SimFleet::start(SimConfig {
        acs_url: nodes[0].acs_url(),
        count: 3,
        serial_prefix: "CHAOS".into(),
        periodic_interval: Duration::from_secs(3600),
        ..Default::default()
    })
    .await
    .unwrap();
    let devices: Vec<String> = (1..=3).map(|i| format!("os::00D09E-CHAOS{i:06}")).collect();
    for id in &devices {
        eventually("the device's twin", Duration::from_secs(30), || async {
            (nodes[1].get(&device_path(id)).await.0 == 200).then_some(())
        })
        .await;
    }

    let mut acked: Vec<(String, u64)> = Vec::new();
    for round in 0..rounds {
        let all: Vec<&Radar> = nodes.iter().collect();
        let leader = agreed_leader(&all).await as usize;
        // The first round always isolates the leader; later ones alternate with a follower.
        let victim = if round % 2 == 0 {
            leader
        } else {
            (leader % 3) + 1
        };
        let majority: Vec<usize> = (1..=3).filter(|n| *n != victim).collect();
        net.isolate(victim);
        let isolated_at = Instant::now();
        let mut first_ack = None;
        let mut n = 0;
        while isolated_at.elapsed() < Duration::from_secs(4) || first_ack.is_none() {
            assert!(
                isolated_at.elapsed() < Duration::from_secs(60),
                "round {round}: the majority acknowledged no write after isolating node {victim}"
            );
            let node = &nodes[majority[n % 2] - 1];
            let device = &devices[n % devices.len()];
            if let Some(op) = patch(node, device, &format!("chaos-{round}-{n}")).await {
                first_ack.get_or_insert(isolated_at.elapsed());
                acked.push((device.clone(), op));
            }
            n += 1;
        }
        println!(
            "round {round}: node {victim} isolated (leader was {leader}); first write acknowledged by the majority after {:?}",
            first_ack.unwrap()
        );
        // Still isolated.
        if victim == leader {
            // The isolated old leader cannot commit: a write sent to it from inside its own
            // namespace is never acknowledged (an error, or no answer before the timeout).
            let set = Command::new("timeout")
                .args(["5", "ip", "netns", "exec", &net.netns(victim)])
                .arg(env!("CARGO_BIN_EXE_radar"))
                .args([
                    "set",
                    &devices[0],
                    "Device.WiFi.SSID.1.SSID=minority",
                    "--api",
                    &format!("http://{}:7557", net.addr(victim)),
                ])
                .output()
                .expect("run radar set in the isolated namespace");
            assert!(
                !set.status.success(),
                "the isolated leader acknowledged a write: {}",
                String::from_utf8_lossy(&set.stdout)
            );
        }
        net.heal(victim);
    }

    // Healed: one leader, every replica caught up, every acknowledged write on every replica.
    // Finished operations are retained up to a bound (superseded writes count as finished), so
    // an old acknowledged write may be gone by retention, never by loss: each device's newest
    // one is on every replica, and any missing one is older than every one kept.
    let all: Vec<&Radar> = nodes.iter().collect();
    agreed_leader(&all).await;
    assert!(!acked.is_empty());
    for node in &nodes {
        for device in &devices {
            let ops: Vec<u64> = acked
                .iter()
                .filter(|(d, _)| d == device)
                .map(|(_, op)| *op)
                .collect();
            let Some(newest) = ops.iter().max() else {
                continue;
            };
            let (code, list) = node
                .get(&format!(
                    "{}/operations?consistency=stale",
                    device_path(device)
                ))
                .await;
            assert_eq!(code, 200, "{list}");
            let kept: Vec<u64> = list["operations"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|o| o["id"].as_u64())
                .collect();
            assert!(
                kept.contains(newest),
                "{device}: newest acknowledged operation {newest} missing on a replica: {kept:?}"
            );
            let oldest_kept = kept.iter().min().copied().unwrap_or(0);
            for op in &ops {
                assert!(
                    kept.contains(op) || *op < oldest_kept,
                    "{device}: acknowledged operation {op} lost on a replica (kept {kept:?})"
                );
            }
        }
    }
    for node in &mut nodes {
        node.kill9();
    }
}
