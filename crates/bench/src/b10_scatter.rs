//! B10 end to end: fleet queries through a node's HTTP API over three real `radar node`
//! processes (3 shards, one replica each, so each node leads one shard and two of the three
//! answers of every query come over gRPC), the twins those of simulated TR-181 gateways that
//! bootstrapped through the ACS. The same queries' per-shard cost without the network is B10's
//! in-process table.

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Fleets of gateways, each with its own product class and software version.
const FLEETS: usize = 10;

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_node(radar: &str, args: &[String], memory_budget: &str) -> Result<Node> {
    use std::io::BufRead;
    let mut child = Command::new(radar)
        .args(args)
        .env("RADAR_LOG", "warn")
        .env("RADAR_MEMORY_BUDGET", memory_budget)
        .env("RADAR_BOOTSTRAP_TOKEN", crate::nodes::BENCH_TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {radar}"))?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
    ensure!(
        line.starts_with("listening "),
        "node did not start: {line:?}"
    );
    Ok(Node(child))
}

async fn get(client: &reqwest::Client, url: &str) -> Result<Value> {
    let r = client.get(url).send().await?;
    let status = r.status();
    let body: Value = r.json().await?;
    ensure!(status.is_success(), "{url}: {status} {body}");
    Ok(body)
}

/// `memory_budget`: each node's `[store] memory_budget` (small: most twins are cold when the
/// queries run).
pub async fn run(radar: &str, devices: usize, rounds: usize, memory_budget: &str) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (ports, seeds, config) = crate::nodes::three_nodes(dir.path())?;
    let addr = |port: u16| format!("127.0.0.1:{port}");
    let mut nodes = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let id = i as u64 + 1;
        let data = dir.path().join(format!("n{id}"));
        let args = crate::nodes::node_args(id, &data, p, &seeds, &config);
        nodes.push(start_node(radar, &args, memory_budget)?);
    }
    let api = format!("http://{}", addr(ports[0][1]));
    let client = crate::nodes::api_client()?;
    let init = client
        .post(format!("{api}/api/v1/cluster/init"))
        .json(&json!({"shards": 3, "replicas": 1}))
        .send()
        .await?;
    if !init.status().is_success() {
        bail!("init: {}", init.text().await?);
    }
    // Every shard has a leader, and they are on three different nodes.
    let started = Instant::now();
    loop {
        let status = get(&client, &format!("{api}/api/v1/cluster")).await;
        let leaders: Vec<u64> = status
            .ok()
            .and_then(|s| {
                s["shards"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|s| s["leader"].as_u64()).collect())
            })
            .unwrap_or_default();
        let mut distinct = leaders.clone();
        distinct.sort();
        distinct.dedup();
        if leaders.len() == 3 && distinct.len() == 3 {
            break;
        }
        ensure!(
            started.elapsed() < Duration::from_secs(60),
            "no leader per shard: {leaders:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Gateways bootstrap through the three nodes' ACS (a device's writes go to its shard's
    // leader, over gRPC when that is another node).
    let started = Instant::now();
    let per_fleet = devices / FLEETS;
    let mut fleets = Vec::new();
    for f in 0..FLEETS {
        fleets.push(
            radar_sim::SimFleet::start(radar_sim::SimConfig {
                acs_url: format!("http://{}/", addr(ports[f % 3][2])),
                count: per_fleet,
                first_serial: f * per_fleet,
                product_class: format!("HG{f}"),
                software_version: format!("5.{f}"),
                periodic_interval: Duration::from_secs(24 * 3600),
                // About what the cluster absorbs (~1,000 bootstraps/s), so sessions do not
                // pile up into more sockets than the process may open.
                start_spread: Duration::from_secs((devices / 800).max(5) as u64),
                ..Default::default()
            })
            .await?,
        );
    }
    loop {
        let waiting: usize = fleets
            .iter()
            .map(|f| {
                f.devices
                    .values()
                    .filter(|d| d.sessions.load(Ordering::Relaxed) == 0)
                    .count()
            })
            .sum();
        if waiting == 0 {
            break;
        }
        ensure!(
            started.elapsed() < Duration::from_secs(3600),
            "{waiting} gateways never completed a session"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for fleet in &fleets {
        fleet.stop();
    }
    let loaded = started.elapsed();
    // The last sessions' checkpoints and evictions settle before anything is measured.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let total = per_fleet * FLEETS;
    let counted = get(&client, &format!("{api}/api/v1/query?q=")).await?["total"]
        .as_u64()
        .unwrap_or(0);
    ensure!(
        counted == total as u64,
        "the fleet counts {counted} of {total}"
    );
    println!(
        "\n## B10 end to end: {total} gateway twins, 3 nodes, 3 shards (one replica each), memory budget {memory_budget} per node, queries through node 1's API\n"
    );
    println!(
        "Bootstrapped through the ACS in {loaded:.0?} ({:.0} gateways/s).\n",
        total as f64 / loaded.as_secs_f64()
    );
    println!("| query through the API, scattered over gRPC | matches | twins read | p50 | p99 |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    let cases: [(&str, String); 5] = [
        (
            "indexed count: `software_version = \"5.3\"`",
            "/api/v1/query?q=software_version%20%3D%20%225.3%22".into(),
        ),
        (
            "indexed count: `product_class = \"HG3\" AND software_version = \"5.3\"`",
            "/api/v1/query?q=product_class%20%3D%20%22HG3%22%20AND%20software_version%20%3D%20%225.3%22".into(),
        ),
        (
            "group-by count: all, by software_version",
            "/api/v1/query?q=&group_by=software_version".into(),
        ),
        (
            "indexed first page (100): `product_class = \"HG3\"`",
            "/api/v1/devices?q=product_class%20%3D%20%22HG3%22&limit=100".into(),
        ),
        ("baseline: `/healthz` on the same node", "/healthz".into()),
    ];
    for (name, path) in cases {
        let url = format!("{api}{path}");
        let mut samples = Vec::with_capacity(rounds);
        let mut last = Value::Null;
        for _ in 0..rounds {
            let t = Instant::now();
            let r = client.get(&url).send().await?;
            let status = r.status();
            let body = r.bytes().await?;
            samples.push(t.elapsed());
            ensure!(status.is_success(), "{url}: {status}");
            last = serde_json::from_slice(&body).unwrap_or(Value::Null);
        }
        let matches = last["total"]
            .as_u64()
            .or_else(|| last["devices"].as_array().map(|d| d.len() as u64));
        if let Some(partial) = last["partial"].as_bool() {
            ensure!(!partial, "{name}: a partial answer {last}");
        }
        let cell = |v: Option<u64>| v.map_or("".to_string(), |v| v.to_string());
        println!(
            "| {name} | {} | {} | {:.2?} | {:.2?} |",
            cell(matches),
            cell(last["scanned"].as_u64()),
            crate::b7::percentile(&mut samples, 0.5),
            crate::b7::percentile(&mut samples, 0.99)
        );
    }
    drop(nodes);
    Ok(())
}
