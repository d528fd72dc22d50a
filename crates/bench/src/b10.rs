//! B10: twins beyond memory. N twins in 3 shards are written to a real sled database by a
//! child process (`b10-load`), through the twin cache with everything evicted as it goes;
//! this process then opens the shards as a node does (keys, then the index built by one pass
//! over disk), with every twin cold, and measures:
//! - RSS per cold twin (the table's key and slot plus the default index), the sled page cache
//!   capped at [`sled_cache`] and counted in;
//! - query latency through the node's shard code (`count_state`, `query_state`), the 3 shards
//!   in parallel as the scatter does: indexed counts, group-bys and first pages (100 rows,
//!   whose summaries read their twins from disk), and a non-indexed count that scans disk;
//! - the scan's twins/s against raw sled iteration of the same trees, in the same run.

use radar_core::{DeviceKey, Ring, ShardId, Timestamp};
use radar_node::fleet::{count_state, query_state, DeviceQuery};
use radar_store::{encode_changes, Batch, ShardStore, SledDatabase, SledShardStore};
use radar_twin::command::Identity;
use radar_twin::index::{FieldIndex, DEFAULT_INDEXED_PATHS};
use radar_twin::query::{self, EvalContext};
use radar_twin::table::{CacheStats, ColdTwins, TwinTable};
use radar_twin::{apply, PathDict, ReportedParam, ShardState, TwinCommand};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SHARDS: u32 = 3;
/// sled's page cache: 16 MiB, or `RADAR_BENCH_SLED_CACHE_MIB`.
fn sled_cache() -> u64 {
    std::env::var("RADAR_BENCH_SLED_CACHE_MIB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(16)
        << 20
}
/// Commands per shard between two write-backs (the state machine's checkpoint).
const CHECKPOINT: usize = 4096;

fn param(path: String, value: String) -> ReportedParam {
    ReportedParam {
        path,
        value,
        ty: None,
        writable: Some(false),
    }
}

/// Device `i`: the default-indexed fields vary (20 versions, 7 models, 10 classes), plus
/// `extra` parameters of a gateway's shape.
fn inform(i: usize, extra: usize) -> TwinCommand {
    let serial = format!("B10{i:08}");
    let mut params = vec![
        param(
            "Device.DeviceInfo.SoftwareVersion".into(),
            format!("5.{}", i % 20),
        ),
        param("Device.DeviceInfo.ModelName".into(), format!("M{}", i % 7)),
        param(
            "Device.DeviceInfo.HardwareVersion".into(),
            format!("HW{}", i % 20),
        ),
        param(
            "Device.DeviceInfo.UpTime".into(),
            format!("{}", i * 7 % 100_000),
        ),
    ];
    for p in 0..extra {
        params.push(param(
            format!("Device.WiFi.SSID.{}.Stats.X{}", p % 4 + 1, p / 4),
            format!("{}", (i + p) % 1000),
        ));
    }
    TwinCommand::Inform {
        device: DeviceKey::from_oui_serial("00D09E", &serial).expect("valid key"),
        at: Timestamp(1_700_000_000_000),
        identity: Identity {
            oui: "00D09E".into(),
            product_class: format!("HG{}", i % 10),
            serial,
            manufacturer: "Acme".into(),
        },
        events: vec![("2 PERIODIC".into(), String::new())],
        params,
    }
}

fn ring() -> anyhow::Result<Ring> {
    let shard_ids: Vec<ShardId> = (0..SHARDS).map(ShardId).collect();
    Ok(Ring::new(
        4096,
        &shard_ids,
        radar_core::ring::DEFAULT_VNODES,
    )?)
}

struct Loading {
    store: Arc<SledShardStore>,
    state: ShardState,
    dirty: BTreeSet<DeviceKey>,
    first_template: u32,
}

impl Loading {
    fn write_back(&mut self) -> anyhow::Result<()> {
        let mut twins = Vec::new();
        for key in std::mem::take(&mut self.dirty) {
            if let Some(twin) = self.state.twins.get_resident_mut(&key) {
                twins.push(encode_changes(twin)?);
            }
        }
        let templates = self.state.dict.templates()[self.first_template as usize..].to_vec();
        self.store.write(&Batch {
            first_template_id: self.first_template,
            new_templates: &templates,
            twins,
            deleted: vec![],
        })?;
        self.first_template = self.state.dict.len() as u32;
        self.state.twins.evict(|| true, |_| true);
        Ok(())
    }
}

/// The child process: writes `devices` twins into `dir`, evicting as it goes.
pub fn load(devices: usize, extra: usize, dir: &Path) -> anyhow::Result<()> {
    let ring = ring()?;
    let db = SledDatabase::open_with_cache(dir, sled_cache())?;
    let mut shards = Vec::new();
    for s in 0..SHARDS {
        let store = Arc::new(db.shard(s)?);
        let cold: Arc<dyn ColdTwins> = store.clone();
        let state = ShardState {
            twins: TwinTable::with_cold(cold, [], Arc::new(CacheStats::default())),
            ..Default::default()
        };
        shards.push(Loading {
            store,
            state,
            dirty: BTreeSet::new(),
            first_template: 0,
        });
    }
    let started = Instant::now();
    for i in 0..devices {
        let command = inform(i, extra);
        let shard = &mut shards[ring.shard_for_key(command.device().as_str()).0 as usize];
        apply(&mut shard.state, &command).map_err(|e| anyhow::anyhow!("{e}"))?;
        shard.dirty.insert(command.device().clone());
        if shard.dirty.len() >= CHECKPOINT {
            shard.write_back()?;
        }
    }
    for shard in &mut shards {
        shard.write_back()?;
    }
    db.flush_all()?;
    eprintln!(
        "loaded {devices} twins of {} parameters in {:.1?} ({:.0} twins/s), {} on disk",
        extra + 4,
        started.elapsed(),
        devices as f64 / started.elapsed().as_secs_f64(),
        db.shard(0)?.size_on_disk()?
    );
    Ok(())
}

pub fn run(devices: usize, extra: usize, rounds: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("twins.sled");
    let status = std::process::Command::new(std::env::current_exe()?)
        .args([
            "b10-load",
            "--devices",
            &devices.to_string(),
            "--extra",
            &extra.to_string(),
            "--dir",
        ])
        .arg(&path)
        .status()?;
    anyhow::ensure!(status.success(), "b10-load failed: {status}");
    let disk = dir_size(&path);

    let paths: Vec<String> = DEFAULT_INDEXED_PATHS
        .iter()
        .map(|p| p.to_string())
        .collect();
    let rss_start = crate::b6::rss_bytes();
    let opened = Instant::now();
    let db = SledDatabase::open_with_cache(&path, sled_cache())?;
    // sled's own memory once every record has been read (its page table and capped cache),
    // apart from Radar's.
    let stores: Vec<Arc<SledShardStore>> = (0..SHARDS)
        .map(|s| db.shard(s).map(Arc::new))
        .collect::<Result<_, _>>()?;
    for store in &stores {
        store.raw_record_count();
    }
    let rss_sled = crate::b6::rss_bytes();
    let stats = Arc::new(CacheStats::default());
    let mut shards = Vec::new();
    for store in stores {
        let loaded = store.load_keys()?;
        let cold: Arc<dyn ColdTwins> = store.clone();
        let state = ShardState {
            dict: PathDict::from_templates(loaded.templates),
            twins: TwinTable::with_cold(cold, loaded.keys, stats.clone()),
            ..Default::default()
        };
        shards.push((store, state));
    }
    let rss_table = crate::b6::rss_bytes();
    for (_, state) in &mut shards {
        FieldIndex::open(&paths, state)?;
    }
    let open_time = opened.elapsed();
    let rss_open = crate::b6::rss_bytes();
    let twins: usize = shards.iter().map(|(_, s)| s.twins.len()).sum();
    anyhow::ensure!(twins == devices, "opened {twins} twins of {devices}");
    println!(
        "\n## B10: {devices} cold twins ({} parameters each) in {SHARDS} shards\n",
        extra + 4
    );
    println!(
        "Opened (keys, then the default index by one pass over disk) in {open_time:.1?}; {} twins resident.",
        stats.loaded()
    );
    let per_twin = |from: u64, to: u64| to.saturating_sub(from) as f64 / devices as f64;
    println!(
        "RSS per cold twin: {:.0} B in Radar (the twin table {:.0} B: key and slot; the default index {:.0} B), plus {:.0} B in sled (its page table and a page cache capped at {} MiB, after reading every record). Disk: {:.1} B per parameter ({disk} bytes).\n",
        per_twin(rss_sled, rss_open),
        per_twin(rss_sled, rss_table),
        per_twin(rss_table, rss_open),
        per_twin(rss_start, rss_sled),
        sled_cache() >> 20,
        disk as f64 / (devices * (extra + 4)) as f64,
    );

    let ctx = EvalContext {
        now: Timestamp(1_700_000_100_000),
        online_window: Duration::from_secs(3600),
        overdue_grace: Duration::from_secs(600),
    };
    println!("| query, 3 shards in parallel | matches | p50 | p99 |");
    println!("| --- | ---: | ---: | ---: |");
    let counts = [
        (
            "indexed count: software_version = \"5.7\"",
            "software_version = \"5.7\"",
            None,
        ),
        (
            "indexed count: Device.DeviceInfo.ModelName = \"M3\" AND product_class LIKE \"HG1*\"",
            "Device.DeviceInfo.ModelName = \"M3\" AND product_class LIKE \"HG1*\"",
            None,
        ),
        (
            "group-by count: all, by software_version",
            "",
            Some("software_version"),
        ),
        (
            "group-by count: product_class = \"HG3\", by Device.DeviceInfo.ModelName",
            "product_class = \"HG3\"",
            Some("Device.DeviceInfo.ModelName"),
        ),
    ];
    for (name, text, group_by) in counts {
        let expr = query::parse(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut samples = Vec::new();
        let mut total = 0;
        for _ in 0..rounds {
            let t = Instant::now();
            total = parallel(&shards, |s| {
                count_state(s, &expr, group_by, &ctx, None).total
            });
            samples.push(t.elapsed());
        }
        row(name, total, &mut samples);
    }
    for (name, text) in [
        (
            "indexed first page (100): software_version = \"5.7\"",
            "software_version = \"5.7\"",
        ),
        (
            "indexed first page (100): product_class LIKE \"HG1*\" AND serial LIKE \"B1000*\"",
            "product_class LIKE \"HG1*\" AND serial LIKE \"B1000*\"",
        ),
    ] {
        let expr = query::parse(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        let q = DeviceQuery {
            text: text.into(),
            expr,
            limit: 100,
            cursor: None,
            fields: Vec::new(),
        };
        let mut samples = Vec::new();
        let mut rows = 0;
        for _ in 0..rounds {
            let t = Instant::now();
            rows = parallel(&shards, |s| {
                query_state(s, &q, &ctx, None).devices.len() as u64
            });
            samples.push(t.elapsed());
        }
        row(name, rows, &mut samples);
    }
    // The scans: a few rounds, they read every twin from disk.
    let scan_rounds = rounds.clamp(1, 3);
    let expr = query::parse("Device.DeviceInfo.HardwareVersion = \"HW7\"")
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut samples = Vec::new();
    let mut total = 0;
    for _ in 0..scan_rounds {
        let t = Instant::now();
        total = parallel(&shards, |s| count_state(s, &expr, None, &ctx, None).total);
        samples.push(t.elapsed());
    }
    let scan = crate::b7::percentile(&mut samples, 0.5);
    row(
        "full scan from disk: Device.DeviceInfo.HardwareVersion = \"HW7\"",
        total,
        &mut samples,
    );
    let mut samples = Vec::new();
    let mut records = 0;
    for _ in 0..scan_rounds {
        let t = Instant::now();
        records = shards
            .iter()
            .map(|(store, _)| store.raw_record_count())
            .sum::<u64>();
        samples.push(t.elapsed());
    }
    let raw = crate::b7::percentile(&mut samples, 0.5);
    row(
        "baseline: raw sled iteration of the same trees (records, one thread)",
        records,
        &mut samples,
    );
    println!(
        "\nScan: {:.0} twins/s decoded and evaluated (3 shards in parallel) against {:.0} twins/s of raw sled iteration.",
        devices as f64 / scan.as_secs_f64(),
        devices as f64 / raw.as_secs_f64()
    );
    println!(
        "Cache after the queries: {} twins resident, {} misses (reads from disk).",
        stats.loaded(),
        stats.misses.load(std::sync::atomic::Ordering::Relaxed)
    );
    drop(shards);
    drop(db);
    informs(&path, extra, 5.0)?;
    snapshots(&path, dir.path())
}

/// The peak RSS since the last call (Linux: `clear_refs` 5 resets VmHWM), in bytes.
fn peak_rss_since_reset() -> u64 {
    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024;
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    peak
}

/// Shard 0's Raft snapshot built from cold twins (the time apply waits for it, then the fsync
/// and publish), and installed on a fresh replica from the file, with the peak memory of each.
fn snapshots(path: &Path, scratch: &Path) -> anyhow::Result<()> {
    use openraft::storage::RaftStateMachine;
    use openraft::RaftSnapshotBuilder;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let db = open_when_unlocked(path)?.with_memory_budget(1);
    let mut sm = db.raft_state_machine(0, 1)?;
    let twins = db.shard(0)?.load_keys()?.keys.len();
    let rss_before = crate::b6::rss_bytes();
    peak_rss_since_reset();
    let started = Instant::now();
    let mut builder = runtime.block_on(sm.get_snapshot_builder());
    let written = started.elapsed();
    let snapshot = runtime
        .block_on(builder.build_snapshot())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let built = started.elapsed();
    let build_peak = peak_rss_since_reset();
    let file = path.join("raft-snapshots/group-1.snapshot");
    let bytes = std::fs::metadata(&file)?.len();

    let replica = SledDatabase::open_with_cache(&scratch.join("replica.sled"), sled_cache())?
        .with_memory_budget(1);
    let mut target = replica.raft_state_machine(0, 1)?;
    let started = Instant::now();
    runtime.block_on(async {
        let mut received = target.begin_receiving_snapshot().await?;
        let mut sent = snapshot.snapshot;
        tokio::io::copy(&mut sent, &mut received)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        target.install_snapshot(&snapshot.meta, received).await?;
        Ok::<_, anyhow::Error>(())
    })?;
    let installed = started.elapsed();
    let install_peak = peak_rss_since_reset();
    let mb = |b: u64| b as f64 / 1e6;
    println!(
        "
| shard 0's Raft snapshot, {twins} cold twins, {:.0} MB file | time | peak RSS above the start |",
        mb(bytes)
    );
    println!("| --- | ---: | ---: |");
    println!(
        "| written (apply waits) | {written:.2?} | {:.0} MB |",
        mb(build_peak.saturating_sub(rss_before))
    );
    println!("| written, fsynced and published | {built:.2?} | |");
    println!(
        "| received from the file and installed on a fresh replica | {installed:.2?} | {:.0} MB |",
        mb(install_peak.saturating_sub(rss_before))
    );
    Ok(())
}

fn parallel(
    shards: &[(Arc<SledShardStore>, ShardState)],
    f: impl Fn(&ShardState) -> u64 + Sync,
) -> u64 {
    std::thread::scope(|scope| {
        let handles: Vec<_> = shards.iter().map(|(_, s)| scope.spawn(|| f(s))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    })
}

fn row(name: &str, matches: u64, samples: &mut [Duration]) {
    println!(
        "| {name} | {matches} | {:.2?} | {:.2?} |",
        crate::b7::percentile(samples, 0.5),
        crate::b7::percentile(samples, 0.99)
    );
}

fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Periodic informs applied per second by a shard's state machine (`apply`, checkpoints and
/// eviction included) when the informing devices are cold (a budget of 5% of the shard's
/// twins) against the same state machine with every twin resident.
pub fn informs(path: &Path, extra: usize, seconds: f64) -> anyhow::Result<()> {
    use openraft::storage::RaftStateMachine;
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};
    use radar_store::raft::TwinBatch;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    println!("\n| periodic informs applied, shard 0, batches of 64 | devices informing | informs/s | cache misses |");
    println!("| --- | ---: | ---: | ---: |");
    for (name, budget_share) in [
        ("95% of informing devices cold", Some(0.05)),
        ("everything hot", None),
    ] {
        let db = open_when_unlocked(path)?;
        let keys: Vec<DeviceKey> = db.shard(0)?.load_keys()?.keys;
        // A twin's estimated size, from one read back.
        let sample = db
            .shard(0)?
            .load(&keys[0])?
            .map_or(2048, |t| t.estimated_bytes()) as f64;
        let db = match budget_share {
            Some(share) => db.with_memory_budget((keys.len() as f64 * sample * share) as u64),
            None => db,
        };
        let mut sm = db.raft_state_machine(0, 1)?;
        let mut index = 0u64;
        let mut entry = |commands: Vec<TwinCommand>| {
            index += 1;
            Entry::<radar_store::raft::ShardRaft> {
                log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
                payload: EntryPayload::Normal(TwinBatch {
                    commands,
                    control: Vec::new(),
                }),
            }
        };
        let serial_of = |k: &DeviceKey| {
            k.as_str()["os::00D09E-B10".len()..]
                .parse::<usize>()
                .unwrap_or(0)
        };
        if budget_share.is_none() {
            for chunk in keys.chunks(256) {
                let batch = chunk.iter().map(|k| inform(serial_of(k), extra)).collect();
                runtime
                    .block_on(sm.apply([entry(batch)]))
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
        }
        let stats = db.memory_budget().stats.clone();
        let misses_before = stats.misses.load(std::sync::atomic::Ordering::Relaxed);
        // Devices in a fixed pseudo-random order (a periodic inform interval spreads them).
        let mut next = 0x9E37_79B9_7F4A_7C15u64;
        let mut applied = 0u64;
        let started = Instant::now();
        while started.elapsed().as_secs_f64() < seconds {
            let batch = (0..64)
                .map(|_| {
                    next ^= next << 13;
                    next ^= next >> 7;
                    next ^= next << 17;
                    inform(serial_of(&keys[(next % keys.len() as u64) as usize]), extra)
                })
                .collect();
            runtime
                .block_on(sm.apply([entry(batch)]))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            applied += 64;
        }
        let rate = applied as f64 / started.elapsed().as_secs_f64();
        println!(
            "| {name} | {} | {rate:.0} | {} |",
            keys.len(),
            stats.misses.load(std::sync::atomic::Ordering::Relaxed) - misses_before
        );
    }
    Ok(())
}

/// sled's flusher may hold the directory lock briefly after the database is dropped.
fn open_when_unlocked(path: &Path) -> anyhow::Result<SledDatabase> {
    for _ in 0..100 {
        match SledDatabase::open_with_cache(path, sled_cache()) {
            Err(radar_store::StoreError::Engine(e)) if e.contains("lock") => {
                std::thread::sleep(Duration::from_millis(100))
            }
            other => return Ok(other?),
        }
    }
    anyhow::bail!("{} stayed locked", path.display())
}
