//! B9: failover time of a shard: `kill -9` of its leader's node to the first write committed by
//! the new leader, over N trials, for three real `radar node` processes (one shard, three
//! replicas) with the production Raft timing. After each trial the killed node restarts and
//! catches up before the next one kills whichever node leads then.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Node {
    id: u64,
    api: String,
    args: Vec<String>,
    child: Option<Child>,
}

impl Node {
    fn start(&mut self, radar: &str) -> Result<()> {
        // B9_LOGS=<dir> keeps each node's log (appended across restarts) for diagnosis.
        let stderr = match std::env::var("B9_LOGS") {
            Ok(dir) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(format!("{dir}/node-{}.log", self.id))?,
            ),
            Err(_) => Stdio::null(),
        };
        let mut child = Command::new(radar)
            .args(&self.args)
            .env("RADAR_BOOTSTRAP_TOKEN", crate::nodes::BENCH_TOKEN)
            .env(
                "RADAR_LOG",
                std::env::var("B9_LOG_LEVEL").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("starting {radar}"))?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
        if !line.starts_with("listening ") {
            bail!("node {} did not start: {line:?}", self.id);
        }
        self.child = Some(child);
        Ok(())
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

async fn status(client: &reqwest::Client, api: &str) -> Option<Value> {
    let r = client
        .get(format!("http://{api}/api/v1/cluster"))
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .ok()?;
    r.json().await.ok()
}

/// The leader every running node agrees on, with all nodes reachable and caught up: a node
/// that has just restarted reports the leader of its persisted vote until it hears from the
/// current one.
async fn leader(client: &reqwest::Client, nodes: &[Node]) -> Option<u64> {
    let mut agreed = None;
    for node in nodes.iter().filter(|n| n.child.is_some()) {
        let v = status(client, &node.api).await?;
        let reachable = v["nodes"]
            .as_array()?
            .iter()
            .filter(|n| n["reachable"] == json!(true))
            .count();
        if reachable < nodes.len() {
            return None;
        }
        // Every replica has applied the same log: the restarted node has caught up, so the
        // next election is not slowed by a lagging voter whose votes are refused.
        let applied: Vec<u64> = v["shards"][0]["replicas"]
            .as_array()?
            .iter()
            .filter_map(|r| r["last_applied"].as_u64())
            .collect();
        if applied.len() < nodes.len() || applied.iter().any(|a| *a != applied[0]) {
            return None;
        }
        let l = v["shards"][0]["leader"].as_u64()?;
        if agreed.is_some_and(|a| a != l) {
            return None;
        }
        agreed = Some(l);
    }
    agreed
}

async fn write(client: &reqwest::Client, api: &str, device: &str, n: usize) -> bool {
    let url = format!(
        "http://{api}/api/v1/devices/{}/params",
        device.replace(':', "%3A")
    );
    let r = client
        .patch(url)
        .json(&json!({"Device.WiFi.SSID.1.SSID": format!("b9-{n}")}))
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    if std::env::var("B9_TRACE").is_ok() {
        match &r {
            Ok(r) => eprintln!("  {api} -> {}", r.status()),
            Err(e) => eprintln!("  {api} -> {e}"),
        }
    }
    r.is_ok_and(|r| r.status().as_u16() == 202)
}

/// The nodes' Raft heartbeat and election timeout range, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct RaftTiming {
    pub heartbeat: u64,
    pub election_min: u64,
    pub election_max: u64,
}

impl RaftTiming {
    /// `HEARTBEAT/MIN/MAX`, e.g. `200/1000/2000`.
    pub fn parse(text: &str) -> Result<Self> {
        let ms: Vec<u64> = text
            .split('/')
            .map(|n| n.trim().parse::<u64>())
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("--raft-timing {text:?}: {e}"))?;
        let [heartbeat, election_min, election_max] = ms[..] else {
            anyhow::bail!("--raft-timing is HEARTBEAT/MIN/MAX in milliseconds, not {text:?}");
        };
        Ok(Self {
            heartbeat,
            election_min,
            election_max,
        })
    }

    fn toml(self) -> String {
        format!(
            "\n[raft]\nheartbeat_interval = \"{}ms\"\nelection_timeout_min = \"{}ms\"\nelection_timeout_max = \"{}ms\"\n",
            self.heartbeat, self.election_min, self.election_max
        )
    }
}

pub async fn run(radar: &str, trials: usize, timing: RaftTiming) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (ports, seeds, config) = crate::nodes::three_nodes(dir.path())?;
    let mut text = std::fs::read_to_string(&config)?;
    text.push_str(&timing.toml());
    std::fs::write(&config, text)?;
    let mut nodes: Vec<Node> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let id = i as u64 + 1;
            Node {
                id,
                api: format!("127.0.0.1:{}", p[1]),
                args: crate::nodes::node_args(
                    id,
                    &dir.path().join(format!("n{id}")),
                    p,
                    &seeds,
                    &config,
                ),
                child: None,
            }
        })
        .collect();
    for node in &mut nodes {
        node.start(radar)?;
    }
    let client = crate::nodes::api_client()?;
    let init = client
        .post(format!("http://{}/api/v1/cluster/init", nodes[0].api))
        .json(&json!({"shards": 1, "replicas": 3}))
        .send()
        .await?;
    if !init.status().is_success() {
        bail!("init: {}", init.text().await?);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut first = None;
    while first.is_none() {
        first = leader(&client, &nodes).await;
        if Instant::now() > deadline {
            bail!("no leader after init");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // One device, so writes have a twin to queue operations on.
    let leader_node = &nodes[first.unwrap_or(1) as usize - 1];
    let cwmp = leader_node.args[leader_node
        .args
        .iter()
        .position(|a| a == "--cwmp-listen")
        .unwrap_or(0)
        + 1]
    .clone();
    let _device = radar_sim::SimFleet::start(radar_sim::SimConfig {
        acs_url: format!("http://{cwmp}/"),
        count: 1,
        serial_prefix: "B9".into(),
        periodic_interval: Duration::from_secs(3600),
        ..Default::default()
    })
    .await?;
    let device = "os::00D09E-B9000001";
    let mut n = 0;
    while !write(&client, &nodes[0].api, device, n).await {
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut samples = Vec::new();
    for trial in 0..trials {
        let victim = loop {
            if let Some(l) = leader(&client, &nodes).await {
                break l;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let survivor = nodes
            .iter()
            .find(|n| n.id != victim)
            .map(|n| n.api.clone())
            .unwrap_or_default();
        nodes[victim as usize - 1].kill9();
        let killed = Instant::now();
        loop {
            n += 1;
            if write(&client, &survivor, device, n).await {
                break;
            }
            if killed.elapsed() > Duration::from_secs(60) {
                bail!("no commit within 60 s of killing node {victim}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let took = killed.elapsed();
        eprintln!("trial {trial}: killed node {victim}, first commit after {took:?}");
        samples.push(took);
        nodes[victim as usize - 1].start(radar)?;
    }
    samples.sort();
    let p = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    println!("\n## B9: failover, kill -9 of the leader's node to the first commit on the new leader ({trials} trials)\n");
    println!("| raft timing | p50 | p99 | min | max |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    println!(
        "| heartbeat {} ms, election timeout {}–{} ms | {:?} | {:?} | {:?} | {:?} |",
        timing.heartbeat,
        timing.election_min,
        timing.election_max,
        p(0.5),
        p(0.99),
        samples[0],
        samples[samples.len() - 1]
    );
    Ok(())
}
