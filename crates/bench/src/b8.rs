//! B8: committed twin updates per second through a 3-replica shard (three replicas in this
//! process, each with its own data directory, talking Raft over loopback gRPC), with the Raft
//! log on sled and on redb, for entry batch sizes 1…256; against a raw write + fdatasync loop
//! over the same bytes, measured in the same run. Then the disk space each engine uses after
//! N updates.
//!
//! A batch size is the most commands the shard's writer puts into one entry; proposers keep
//! `batch × 4` commands outstanding (the writer has up to 4 entries in flight), so entries fill.

use radar_core::{DeviceKey, Timestamp};
use radar_node::local_group::{bootstrap, start_replica, Engine, LocalReplica};
use radar_node::raft::RaftSettings;
use radar_twin::command::{ReportedParam, Source};
use radar_twin::TwinCommand;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DEVICES: usize = 1_000;
const BATCHES: [usize; 5] = [1, 4, 16, 64, 256];

fn update(device: usize, n: u64) -> TwinCommand {
    TwinCommand::ReportValues {
        device: DeviceKey::from_oui_serial("00D09E", &format!("B8{device:06}")).expect("key"),
        at: Timestamp(n),
        source: Source::Notify,
        params: vec![ReportedParam {
            path: "Device.WiFi.Radio.1.Stats.BytesSent".into(),
            value: n.to_string(),
            ty: None,
            writable: Some(false),
        }],
    }
}

fn create(device: usize) -> TwinCommand {
    TwinCommand::UspConnected {
        device: DeviceKey::from_oui_serial("00D09E", &format!("B8{device:06}")).expect("key"),
        at: Timestamp(0),
        mtp: "websocket".into(),
        reply_to: String::new(),
    }
}

struct Group {
    replicas: Vec<LocalReplica>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Group {
    async fn start(engine: Engine, batch: usize) -> anyhow::Result<Self> {
        let settings = RaftSettings::default();
        let mut replicas = Vec::new();
        let mut dirs = Vec::new();
        for id in 1..=3 {
            let dir = tempfile::tempdir_in(".")?;
            replicas.push(start_replica(id, dir.path(), &settings, engine, batch).await?);
            dirs.push(dir);
        }
        let refs: Vec<&LocalReplica> = replicas.iter().collect();
        bootstrap(&refs, Duration::from_secs(30)).await?;
        Ok(Self {
            replicas,
            _dirs: dirs,
        })
    }

    fn leader(&self) -> anyhow::Result<&LocalReplica> {
        self.replicas
            .iter()
            .find(|r| r.shard.is_leader())
            .ok_or_else(|| anyhow::anyhow!("no leader"))
    }

    async fn stop(self) {
        for r in &self.replicas {
            r.shard.shutdown(&r.host).await;
            r.server.abort();
        }
    }
}

/// Runs proposers against the leader until `seconds` pass or `total` updates commit; returns
/// (updates committed, elapsed, per-update commit latencies).
async fn drive(
    group: &Group,
    outstanding: usize,
    seconds: f64,
    total: Option<u64>,
) -> anyhow::Result<(u64, Duration, Vec<Duration>)> {
    let leader = group.leader()?.shard.clone();
    let creates = (0..DEVICES).map(|d| leader.propose(create(d)));
    for r in futures_util::future::join_all(creates).await {
        r?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let per_task = total.map(|t| t.div_ceil(outstanding as u64));
    let tasks: Vec<_> = (0..outstanding)
        .map(|task| {
            let leader = leader.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) && per_task.is_none_or(|p| n < p) {
                    let device = (task + n as usize * outstanding) % DEVICES;
                    let t = Instant::now();
                    if leader.propose(update(device, n + 1)).await.is_err() {
                        break;
                    }
                    latencies.push(t.elapsed());
                    n += 1;
                }
                latencies
            })
        })
        .collect();
    if total.is_none() {
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        stop.store(true, Ordering::Relaxed);
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await?);
    }
    let elapsed = started.elapsed();
    Ok((latencies.len() as u64, elapsed, latencies))
}

fn p99(mut latencies: Vec<Duration>) -> Duration {
    latencies.sort();
    latencies
        .get(((latencies.len() as f64 - 1.0) * 0.99).round() as usize)
        .copied()
        .unwrap_or_default()
}

/// The raw floor: append `batch` records of an entry's size, fdatasync, repeat.
fn raw_fdatasync(batch: usize, seconds: f64) -> anyhow::Result<(f64, Duration)> {
    let dir = tempfile::tempdir_in(".")?;
    let mut file = std::fs::File::create(dir.path().join("raw.log"))?;
    let record = postcard::to_allocvec(&update(1, 1))?;
    let mut latencies = Vec::new();
    let mut updates = 0u64;
    let started = Instant::now();
    while started.elapsed().as_secs_f64() < seconds {
        let t = Instant::now();
        for _ in 0..batch {
            file.write_all(&record)?;
        }
        file.sync_data()?;
        latencies.push(t.elapsed());
        updates += batch as u64;
    }
    Ok((
        updates as f64 / started.elapsed().as_secs_f64(),
        p99(latencies),
    ))
}

fn dir_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

pub async fn run(seconds: f64, space_updates: u64) -> anyhow::Result<()> {
    println!("\n## B8: committed twin updates through a 3-replica shard, {seconds} s per cell\n");
    println!("| batch (commands per entry) | raw write+fdatasync, 1 file | sled log | redb log |");
    println!("| ---: | ---: | ---: | ---: |");
    for batch in BATCHES {
        let (raw, raw_p99) = raw_fdatasync(batch, seconds)?;
        let mut cells = vec![format!("{raw:.0}/s, p99 {raw_p99:.1?}")];
        for engine in [Engine::Sled, Engine::Redb] {
            let group = Group::start(engine, batch).await?;
            let (updates, elapsed, latencies) = drive(&group, batch * 4, seconds, None).await?;
            cells.push(format!(
                "{:.0}/s, p99 {:.1?}",
                updates as f64 / elapsed.as_secs_f64(),
                p99(latencies)
            ));
            group.stop().await;
        }
        println!("| {batch} | {} |", cells.join(" | "));
    }
    println!("\n| engine | updates | seconds | disk after (3 replicas, MiB) |");
    println!("| --- | ---: | ---: | ---: |");
    for engine in [Engine::Sled, Engine::Redb] {
        let group = Group::start(engine, 256).await?;
        let (updates, elapsed, _) = drive(&group, 1024, 0.0, Some(space_updates)).await?;
        // Let checkpoints, snapshots and purges settle before measuring.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let bytes: u64 = group._dirs.iter().map(|d| dir_bytes(d.path())).sum();
        println!(
            "| {engine:?} | {updates} | {:.1} | {:.1} |",
            elapsed.as_secs_f64(),
            bytes as f64 / (1024.0 * 1024.0)
        );
        group.stop().await;
    }
    Ok(())
}
