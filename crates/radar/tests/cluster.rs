//! A real cluster: `radar node` processes on loopback ports, formed with `radar cluster init`,
//! with simulated CWMP devices and USP agents coming in through two routers behind a TCP load
//! balancer. Proves: the layout and leaders; each twin on exactly one shard and readable from
//! any node (linearizable through the leader, or stale from the local replica); `kill -9` of a
//! shard leader loses no acknowledged write and a new leader takes over (the failover time is
//! printed); each write is audited once, wherever it was proxied; a restart of the whole cluster
//! brings every twin, operation and audit record back; a fleet query
//! with a stopped node answers `partial` within the deadline; USP over MQTT through a shared
//! subscription. Membership changes are in `cluster_membership.rs`.

mod common;

use common::cluster::*;
use common::{device_path, eventually, Radar};
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_three_node_cluster_serves_devices_survives_a_leader_kill_and_a_full_restart() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let (ports, seeds) = cluster_ports();
    // Each node also knows a viewer token no other node knows: a request through it that is
    // proxied to another node's leader must be accepted there as the cluster (issue 13).
    let node_only_token = |i: usize| format!("radar-test-node{i}-only-viewer-token-0123456789");
    let mut nodes: Vec<Option<Radar>> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let toml = format!(
                "{NODE_TOML}\n[[auth.tokens]]\nid = \"node{i}-viewer\"\nrole = \"viewer\"\nsha256 = \"{}\"\n",
                radar_node::auth::tokens::sha256_hex(&node_only_token(i))
            );
            Some(start_node_configured(dir.path(), i as u64 + 1, p, &seeds, &toml, &[]))
        })
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
    let mut routers = Vec::new();
    for i in 0..2 {
        routers.push(start_ready_router(&dir.path().join(format!("router{i}")), &seeds).await);
    }
    let cwmp_balancer = tcp_round_robin(routers.iter().map(|r| r.cwmp).collect()).await;
    let usp_balancer = tcp_round_robin(routers.iter().map(|r| r.usp).collect()).await;

    // Each twin lands on exactly one shard and is readable from any node.
    let _fleets = start_devices(&vec![format!("http://{cwmp_balancer}/"); 3]).await;
    let _agents = start_usp_agents(usp_balancer.to_string());
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
    // Through each node with the token only it knows: reads of devices led elsewhere are
    // proxied, and the leader's node accepts the caller the first node authenticated.
    for (i, node) in nodes.iter().enumerate() {
        let node = node.as_ref().unwrap();
        for id in &devices {
            let r = reqwest::Client::new()
                .get(node.api_url(&device_path(id)))
                .bearer_auth(node_only_token(i))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{id} through node {}", i + 1);
        }
    }
    // Without the cluster's secret, naming a caller gets nothing.
    let forged = reqwest::Client::new()
        .get(
            nodes[1]
                .as_ref()
                .unwrap()
                .api_url(&device_path(&devices[0])),
        )
        .bearer_auth("radar_guessed-cluster-secret")
        .header("x-radar-forwarded", "1")
        .header("x-radar-on-behalf-of", "bootstrap-admin")
        .header("x-radar-role", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);

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
    let audited = acked.clone();
    assert_writes_audited_once(nodes[2].as_ref().unwrap(), &audited).await;

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
    assert_last_writes_done(reader, &acked, "after failover").await;
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
    assert_writes_audited_once(&nodes[0], &audited).await;
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
    init_cluster(&api, 3, 1);
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

    // An index added through one node's API is built on every node: counts scattered to the
    // shard leaders then read no twin anywhere.
    const FIELD_QUERY: &str =
        "/api/v1/query?q=Device.DeviceInfo.HardwareVersion%20%3D%20%22HW-1.0%22";
    let before = eventually(
        "the hardware version reported",
        Duration::from_secs(60),
        || async {
            let (_, count) = first.get(FIELD_QUERY).await;
            (count["total"] == json!(devices.len())).then_some(count)
        },
    )
    .await;
    assert!(
        before["scanned"].as_u64().unwrap() >= devices.len() as u64,
        "{before}"
    );
    let (code, added) = first
        .send(
            reqwest::Method::POST,
            "/api/v1/indexes",
            json!({"field": "Device.DeviceInfo.HardwareVersion"}),
        )
        .await;
    assert!(code == 200 || code == 202, "{code} {added}");
    assert_eq!(added["nodes"].as_array().map(Vec::len), Some(2), "{added}");
    for node in nodes.iter().flatten() {
        eventually(
            "the index built on every node",
            Duration::from_secs(30),
            || async {
                let (_, list) = node.get("/api/v1/indexes").await;
                list["indexes"]
                    .as_array()?
                    .iter()
                    .any(|i| {
                        i["field"] == "Device.DeviceInfo.HardwareVersion" && i["state"] == "ready"
                    })
                    .then_some(())
            },
        )
        .await;
    }
    let (_, after) = first.get(FIELD_QUERY).await;
    assert_eq!(after["total"], before["total"], "{after}");
    assert_eq!(
        after["scanned"], 0,
        "every shard leader used its index: {after}"
    );

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
    init_cluster(&api, 3, 3);
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
