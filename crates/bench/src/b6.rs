//! B6: bytes per parameter of twin storage, for N devices of the simulator's TR-181 model, in
//! memory (RSS growth) and on disk (sled), against the raw `path=value` bytes.

use radar_core::{DeviceKey, Timestamp};
use radar_sim::model::{Identity, SimModel};
use radar_store::{Batch, ShardStore, SledDatabase};
use radar_twin::command::Identity as TwinIdentity;
use radar_twin::{apply, ReportedParam, ShardState, Source, TwinCommand};

/// The process's resident set size, from /proc.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_owned)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn dir_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        dir_size(&p)
                    } else {
                        e.metadata().map(|m| m.len()).unwrap_or(0)
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

pub fn run(devices: usize) -> anyhow::Result<()> {
    // Build the commands first, so their memory is not counted as twin memory.
    let mut raw_bytes = 0u64;
    let mut params = 0u64;
    let mut commands = Vec::with_capacity(devices);
    for i in 0..devices {
        let serial = format!("B6{i:08}");
        let model = SimModel::home_gateway(&Identity {
            manufacturer: "Radar".into(),
            oui: "00D09E".into(),
            product_class: "HG-SIM".into(),
            serial: serial.clone(),
            software_version: "1.0.0".into(),
            connection_request_url: format!("http://10.0.0.1:7547/cr/{serial}"),
        });
        let reported: Vec<ReportedParam> = model
            .params
            .iter()
            .map(|(path, p)| {
                raw_bytes += (path.len() + 1 + p.value.len()) as u64;
                params += 1;
                ReportedParam {
                    path: path.clone(),
                    value: p.value.clone(),
                    ty: Some(p.ty),
                    writable: Some(p.writable),
                }
            })
            .collect();
        let device = DeviceKey::from_oui_serial("00D09E", &serial)?;
        let at = Timestamp(1_700_000_000_000);
        commands.push(TwinCommand::Inform {
            device: device.clone(),
            at,
            identity: TwinIdentity {
                oui: "00D09E".into(),
                product_class: "HG-SIM".into(),
                serial,
                manufacturer: "Radar".into(),
            },
            events: vec![("2 PERIODIC".into(), String::new())],
            params: vec![],
        });
        commands.push(TwinCommand::ReportValues {
            device,
            at,
            source: Source::Discovery,
            params: reported,
        });
    }
    let before = rss_bytes();
    let mut state = ShardState::default();
    for command in &commands {
        apply(&mut state, command).map_err(|e| anyhow::anyhow!("{e}"))?;
        // The shard writer takes the change list at every commit; do the same here.
        if let Some(twin) = state.twins.get_resident_mut(command.device()) {
            drop(twin.changes.take());
        }
    }
    let memory = rss_bytes().saturating_sub(before);
    drop(commands);
    // Exact retained bytes of the parameter tables: slots plus out-of-line values.
    let slot = std::mem::size_of::<(radar_twin::PathId, radar_twin::Param)>() as u64;
    let tables: u64 = state
        .twins
        .resident_twins()
        .map(|t| {
            let heap: u64 = t
                .params
                .iter()
                .filter(|(_, p)| p.value.is_heap_allocated())
                .map(|(_, p)| p.value.capacity() as u64)
                .sum();
            t.params.capacity() as u64 * slot + heap
        })
        .sum();

    let dir = tempfile::tempdir()?;
    let db = SledDatabase::open(&dir.path().join("twins.sled"))?;
    let store = db.shard(0)?;
    let twins: Vec<_> = state.twins.resident_twins().collect();
    for (i, chunk) in twins.chunks(256).enumerate() {
        let templates = if i == 0 { state.dict.templates() } else { &[] };
        store.write(&Batch {
            first_template_id: 0,
            new_templates: templates,
            twins: chunk
                .iter()
                .map(|t| radar_store::encode_full(t))
                .collect::<Result<_, _>>()?,
            deleted: vec![],
        })?;
    }
    store.flush()?;
    let sled_reported = store.size_on_disk()?;
    drop(store);
    drop(db);
    let disk = dir_size(dir.path());
    let serialized: u64 = twins
        .iter()
        .map(|t| {
            postcard::to_allocvec(t)
                .map(|v| v.len() as u64)
                .unwrap_or(0)
        })
        .sum();

    let per = |bytes: u64| bytes as f64 / params as f64;
    let raw = per(raw_bytes);
    println!("\n## B6: twin bytes per parameter ({devices} devices, {params} parameters)\n");
    println!("| what | bytes/param | overhead over raw path=value |\n| --- | ---: | ---: |");
    println!("| baseline: raw `path=value` | {raw:.1} | 0.0 |");
    println!(
        "| serialized twins (postcard, interned paths) | {:.1} | {:.1} |",
        per(serialized),
        per(serialized) - raw
    );
    println!(
        "| in memory: parameter tables, exact ({slot} B slots + out-of-line values) | {:.1} | {:.1} |",
        per(tables),
        per(tables) - raw
    );
    println!(
        "| in memory: process RSS growth (twins, dictionary, allocator slack) | {:.1} | {:.1} |",
        per(memory),
        per(memory) - raw
    );
    println!(
        "| on disk (sled files after flush) | {:.1} | {:.1} |",
        per(disk),
        per(disk) - raw
    );
    println!(
        "| sled size_on_disk() | {:.1} | {:.1} |",
        per(sled_reported),
        per(sled_reported) - raw
    );
    println!(
        "\npath dictionary: {} templates for {params} parameters",
        state.dict.len()
    );
    Ok(())
}
