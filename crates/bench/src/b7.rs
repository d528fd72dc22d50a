//! B7: fleet query latency over N small twins in 3 shards, through the node's per-shard query
//! code (`count_state`, the same function a shard leader runs for a scatter-gather query), the
//! shards queried in parallel as the scatter does; indexed and full scan; against a
//! single-threaded column scan (a `Vec<String>` of the scanned field) in the same run.

use radar_core::{DeviceKey, Ring, ShardId, Timestamp};
use radar_node::fleet::count_state;
use radar_twin::command::Identity;
use radar_twin::index::{FieldIndex, DEFAULT_INDEXED_PATHS};
use radar_twin::query::{self, EvalContext};
use radar_twin::{apply, ReportedParam, ShardState, TwinCommand};
use std::time::{Duration, Instant};

const SHARDS: u32 = 3;
const VERSIONS: usize = 20;
const HARDWARE: usize = 20;

fn param(path: &str, value: String) -> ReportedParam {
    ReportedParam {
        path: path.into(),
        value,
        ty: None,
        writable: Some(false),
    }
}

fn inform(i: usize) -> TwinCommand {
    let serial = format!("B7{i:08}");
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
        params: vec![
            param(
                "Device.DeviceInfo.SoftwareVersion",
                format!("5.{}", i % VERSIONS),
            ),
            param("Device.DeviceInfo.ModelName", format!("M{}", i % 7)),
            param(
                "Device.DeviceInfo.HardwareVersion",
                format!("HW{}", i % HARDWARE),
            ),
            param("Device.DeviceInfo.UpTime", format!("{}", i * 7 % 100_000)),
        ],
    }
}

/// The `p` quantile of `samples` (sorts them); B7, B10 and B10 end to end report p50 and p99.
pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

pub fn run(devices: usize, rounds: usize) -> anyhow::Result<()> {
    let shard_ids: Vec<ShardId> = (0..SHARDS).map(ShardId).collect();
    let ring = Ring::new(4096, &shard_ids, radar_core::ring::DEFAULT_VNODES)?;
    let paths: Vec<String> = DEFAULT_INDEXED_PATHS
        .iter()
        .map(|p| p.to_string())
        .collect();
    // The twins first, then the index over them, so each one's memory shows on its own.
    let mut shards: Vec<ShardState> = (0..SHARDS).map(|_| ShardState::default()).collect();
    let mut column = Vec::with_capacity(devices);
    let rss_start = crate::b6::rss_bytes();
    let started = Instant::now();
    for i in 0..devices {
        let command = inform(i);
        let shard = ring.shard_for_key(command.device().as_str());
        apply(&mut shards[shard.0 as usize], &command).map_err(|e| anyhow::anyhow!("{e}"))?;
        column.push(format!("HW{}", i % HARDWARE));
    }
    let rss_twins = crate::b6::rss_bytes();
    for s in &mut shards {
        s.index = FieldIndex::build(&paths, s).expect("every twin is resident");
    }
    let rss_index = crate::b6::rss_bytes();
    eprintln!("loaded {devices} twins in {:?}", started.elapsed());
    let per_twin = |bytes: u64| bytes as f64 / devices.max(1) as f64;
    println!(
        "\nMemory (RSS growth, allocator slack included): twins and the column {:.0} B per twin, the default index {:.0} B per twin",
        per_twin(rss_twins.saturating_sub(rss_start)),
        per_twin(rss_index.saturating_sub(rss_twins))
    );
    let ctx = EvalContext {
        now: Timestamp(1_700_000_100_000),
        online_window: Duration::from_secs(3600),
        overdue_grace: Duration::from_secs(600),
    };
    let queries = [
        (
            "indexed: software_version = \"5.7\"",
            "software_version = \"5.7\"",
            None,
        ),
        (
            "indexed: Device.DeviceInfo.ModelName = \"M3\" AND product_class LIKE \"HG1*\"",
            "Device.DeviceInfo.ModelName = \"M3\" AND product_class LIKE \"HG1*\"",
            None,
        ),
        (
            "full scan: Device.DeviceInfo.HardwareVersion = \"HW7\"",
            "Device.DeviceInfo.HardwareVersion = \"HW7\"",
            None,
        ),
        (
            "count all, group by software_version (indexed)",
            "",
            Some("software_version"),
        ),
    ];
    println!(
        "\n## B7: fleet query latency, {devices} twins in {SHARDS} shards ({rounds} rounds each)\n"
    );
    println!("| query | matches | p50 | p99 |");
    println!("| --- | ---: | ---: | ---: |");
    let mut samples = Vec::new();
    let mut matches = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        matches = column.iter().filter(|v| v.as_str() == "HW7").count();
        samples.push(t.elapsed());
    }
    println!(
        "| baseline: single-threaded column scan, HardwareVersion = \"HW7\" | {matches} | {:?} | {:?} |",
        percentile(&mut samples, 0.5),
        percentile(&mut samples, 0.99)
    );
    for (name, text, group_by) in queries {
        let expr = query::parse(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut samples = Vec::new();
        let mut total = 0;
        for _ in 0..rounds {
            let t = Instant::now();
            total = std::thread::scope(|scope| {
                let handles: Vec<_> = shards
                    .iter()
                    .map(|s| scope.spawn(|| count_state(s, &expr, group_by, &ctx, None).total))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or(0))
                    .sum::<u64>()
            });
            samples.push(t.elapsed());
        }
        println!(
            "| radar, 3 shards in parallel: {name} | {total} | {:?} | {:?} |",
            percentile(&mut samples, 0.5),
            percentile(&mut samples, 0.99)
        );
    }
    Ok(())
}
