//! Durability: SIGKILL the controller in the middle of load, restart it on the same data dir,
//! and check that everything it acknowledged survived: every 202 from the API, and every Inform
//! answered with an InformResponse.

mod common;

use common::{device_path, Radar};
use radar_sim::{SimConfig, SimFleet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
[cwmp]
allow_anonymous = true
[connection_request]
enabled = false
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_on_sigkill() {
    sigkill_under_load(CONFIG).await;
}

/// The same with the shards' Raft logs on redb instead of sled (B8's alternative engine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_on_sigkill_with_the_redb_raft_log() {
    sigkill_under_load(&format!("{CONFIG}[raft]\nlog_engine = \"redb\"\n")).await;
}

async fn sigkill_under_load(config: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut radar = Radar::start(dir.path(), Some(config));
    let fleet = SimFleet::start(SimConfig {
        acs_url: radar.acs_url(),
        count: 30,
        periodic_interval: Duration::from_millis(300),
        ..Default::default()
    })
    .await
    .unwrap();

    // Load: devices inform continuously while the API takes writes; record every 202.
    let mut accepted: Vec<(String, u64, String)> = Vec::new();
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs(4) {
        n += 1;
        let serial = format!("SIM{:06}", n % 30 + 1);
        let device = format!("os::00D09E-{serial}");
        let value = format!("ssid-{n}");
        let body = serde_json::json!({ "Device.WiFi.SSID.2.SSID": value });
        let r = radar
            .request(
                reqwest::Method::PATCH,
                &format!("{}/params", device_path(&device)),
            )
            .json(&body)
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        if let Ok(r) = r {
            if r.status() == 202 {
                let v: serde_json::Value = r.json().await.unwrap();
                accepted.push((device, v["id"].as_u64().unwrap(), value));
            }
        }
    }
    radar.kill9();
    fleet.stop();
    let acknowledged: Vec<(String, u64)> = fleet
        .devices
        .values()
        .map(|d| {
            (
                format!("os::00D09E-{}", d.serial),
                d.informs_acknowledged.load(Ordering::Relaxed),
            )
        })
        .collect();
    assert!(
        accepted.len() > 20,
        "too little load: {} writes accepted",
        accepted.len()
    );
    let total_informs: u64 = acknowledged.iter().map(|(_, n)| n).sum();
    assert!(
        total_informs > 30,
        "too little load: {total_informs} informs acknowledged"
    );
    println!(
        "killed after {} accepted writes and {total_informs} acknowledged informs",
        accepted.len()
    );

    let radar = Radar::start(dir.path(), Some(config));
    // The engine really in use: the redb variant keeps its logs in their own file.
    assert_eq!(
        dir.path().join("data/raft-log/raft-log.redb").exists(),
        config.contains("redb")
    );
    for (device, informs) in &acknowledged {
        let (status, twin) = radar.get(&device_path(device)).await;
        if *informs == 0 {
            continue;
        }
        assert_eq!(
            status, 200,
            "{device} acknowledged {informs} informs but has no twin"
        );
        let sessions = twin["sessions"].as_u64().unwrap();
        assert!(
            sessions >= *informs,
            "{device}: {informs} informs acknowledged, only {sessions} in the twin"
        );
    }
    // Finished operations are retained up to a bound (superseded writes count as finished), so
    // an old accepted write may be gone by retention, never by loss: the newest accepted write
    // of every device must be there, and any missing one must be older than every kept one.
    let mut by_device: std::collections::BTreeMap<&str, Vec<(u64, &str)>> = Default::default();
    for (device, op, value) in &accepted {
        by_device.entry(device).or_default().push((*op, value));
    }
    for (device, ops) in by_device {
        let (_, list) = radar
            .get(&format!("{}/operations", device_path(device)))
            .await;
        let kept: std::collections::BTreeMap<u64, serde_json::Value> = list["operations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| (o["id"].as_u64().unwrap(), o.clone()))
            .collect();
        let oldest_kept = *kept.keys().next().expect("operations kept");
        let newest = ops.iter().map(|(id, _)| *id).max().unwrap();
        assert!(
            kept.contains_key(&newest),
            "{device}: newest accepted operation {newest} lost"
        );
        for (id, value) in ops {
            match kept.get(&id) {
                Some(op) => assert_eq!(
                    op["request"]["params"]["Device.WiFi.SSID.2.SSID"], value,
                    "{device} op {id}"
                ),
                None => assert!(
                    id < oldest_kept,
                    "{device}: accepted operation {id} lost (oldest kept {oldest_kept})"
                ),
            }
        }
    }
}
