//! The audit log (issue 13): every mutating API call that passed authentication is recorded,
//! once, with who, what (no secret values), from where and the result; reads are not. The log
//! is queryable by device and actor, shown on the device's history and by `radar audit`, and
//! kept across a restart.

mod common;

use common::{device_path, eventually, Radar};
use radar_node::auth::routes::{Access, ROUTES};
use radar_sim::{SimConfig, SimFleet};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const DEVICE: &str = "os::00D09E-SIM000001";
const SECRETS: [&str; 4] = ["hunter2-pw", "cr-secret-one", "cr-secret-two", "fw-pass-3"];

/// A realistic body for each mutating route (others get `{}`), with secrets in it.
fn body_for(method: &str, route: &str) -> Value {
    match (method, route) {
        ("PATCH", "/api/v1/devices/{id}/params") => json!({
            "Device.ManagementServer.PeriodicInformInterval": "600",
            "Device.ManagementServer.Password": SECRETS[0],
        }),
        ("POST", "/api/v1/devices/{id}/operations") => json!({
            "kind": "download", "url": "http://files.example/fw.bin",
            "username": "fw", "password": SECRETS[3],
        }),
        ("PUT", "/api/v1/devices/{id}/connection-request-credentials") => {
            json!({"username": "cr", "password": SECRETS[1]})
        }
        ("POST", "/api/v1/connection-request-credentials") => {
            json!({"query": "", "username": "cr2", "password": SECRETS[2]})
        }
        ("POST", "/api/v1/indexes") => json!({"field": "Device.DeviceInfo.ModelName"}),
        _ => json!({}),
    }
}

async fn audit(radar: &Radar, query: &str) -> Vec<Value> {
    let (status, v) = radar
        .get(&format!("/api/v1/audit?limit=1000&{query}"))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["partial"], json!(false), "{v}");
    v["records"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_mutation_is_recorded_once_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let config = "[cwmp]\nallow_anonymous = true\n";
    let mut radar = Radar::start(dir.path(), Some(config));
    let _fleet = SimFleet::start(SimConfig {
        acs_url: radar.acs_url(),
        count: 1,
        periodic_interval: Duration::from_secs(3600),
        ..Default::default()
    })
    .await
    .unwrap();
    eventually("the device's twin", Duration::from_secs(30), || async {
        (radar.get(&device_path(DEVICE)).await.0 == 200).then_some(())
    })
    .await;

    // Every mutating route of the route table, with the admin token; its answers kept.
    let mut calls: Vec<(String, String, u16, Value)> = Vec::new();
    for (method, route, access) in ROUTES {
        if *method == "GET" || *access == Access::Open {
            continue;
        }
        let op = calls
            .iter()
            .find_map(|(_, _, _, v)| v["id"].as_u64().filter(|_| v["status"].is_string()))
            .unwrap_or(1);
        let path = route
            .replace("{id}", &DEVICE.replace(':', "%3A"))
            .replace("{op}", &op.to_string())
            .replace("/nodes/{id}", "/nodes/9");
        let (status, v) = radar
            .send(
                Method::from_bytes(method.as_bytes()).unwrap(),
                &path,
                body_for(method, route),
            )
            .await;
        assert!(status < 500, "{method} {route}: {status} {v}");
        calls.push((method.to_string(), route.to_string(), status, v));
    }
    assert!(calls.len() >= 10, "{calls:?}");
    // Reads and calls refused by authentication leave no record.
    radar.get(&device_path(DEVICE)).await;
    let anonymous = reqwest::Client::new()
        .patch(radar.api_url(&format!("{}/params", device_path(DEVICE))))
        .json(&json!({"Device.X": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    let records = eventually("every call recorded", Duration::from_secs(15), || async {
        let records = audit(&radar, "").await;
        calls
            .iter()
            .all(|(m, r, _, _)| {
                records
                    .iter()
                    .any(|x| x["method"] == *m && x["route"] == *r)
            })
            .then_some(records)
    })
    .await;
    let text = serde_json::to_string(&records).unwrap();
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret} in the audit log: {text}");
    }
    assert!(records.iter().all(|r| r["method"] != "GET"), "{text}");
    for (method, route, status, answer) in &calls {
        let mine: Vec<&Value> = records
            .iter()
            .filter(|r| r["method"] == *method && r["route"] == *route)
            .collect();
        // One record per call; the fleet credentials call leaves one per device it changed.
        assert_eq!(mine.len(), 1, "{method} {route}: {mine:?}");
        let r = mine[0];
        assert_eq!(r["actor"], "bootstrap-admin", "{r}");
        assert_eq!(r["role"], "admin", "{r}");
        assert!(
            r["source"].as_str().unwrap().starts_with("127.0.0.1:"),
            "{r}"
        );
        if *status < 300 && r["status"].is_null() {
            // Committed with its change: the change's result and operation.
            assert_eq!(r["result"], "ok", "{r}");
            if let Some(op) = answer["id"]
                .as_u64()
                .filter(|_| answer["status"].is_string())
            {
                assert_eq!(r["operation"], json!(op), "{r} for {answer}");
            }
        } else {
            assert_eq!(r["status"], json!(status), "{method} {route}: {r}");
        }
    }
    let by = |method: &str, route: &str| {
        records
            .iter()
            .find(|r| r["method"] == method && r["route"] == route)
            .unwrap()
            .clone()
    };
    let patch = by("PATCH", "/api/v1/devices/{id}/params");
    assert_eq!(patch["device"], DEVICE);
    assert!(
        patch["detail"]
            .as_str()
            .unwrap()
            .contains("PeriodicInformInterval"),
        "{patch}"
    );
    let fleet = by("POST", "/api/v1/connection-request-credentials");
    assert_eq!(
        fleet["device"], DEVICE,
        "the bulk call's record names its device"
    );

    // Filters: by device, by actor.
    let on_device = audit(&radar, &format!("device={}", DEVICE.replace(':', "%3A"))).await;
    assert!(on_device.len() >= 4 && on_device.iter().all(|r| r["device"] == DEVICE));
    assert!(audit(&radar, "actor=someone-else").await.is_empty());
    // The device's history shows its records.
    let (_, twin) = radar.get(&device_path(DEVICE)).await;
    let history: Vec<&Value> = twin["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "audit")
        .collect();
    assert!(
        history.iter().any(|e| e["detail"]
            .as_str()
            .unwrap()
            .contains("bootstrap-admin (admin) PATCH")),
        "{twin}"
    );
    // Pages: two at a time, newest first, none repeated or missed.
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, v) = radar
            .get(&format!("/api/v1/audit?limit=2&cursor={cursor}"))
            .await;
        assert_eq!(status, 200, "{v}");
        paged.extend(v["records"].as_array().unwrap().iter().cloned());
        match v["next"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(paged, records);
    let (status, v) = radar.get("/api/v1/audit?cursor=bogus").await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );

    // The CLI shows the same log.
    let out =
        common::cluster::radar_cli(&["audit", "--device", DEVICE, "--api", &radar.api_url("")]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && table.contains("PATCH") && table.contains("bootstrap-admin"),
        "{table}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Kept across a restart.
    radar.terminate();
    let radar = Radar::start(dir.path(), Some(config));
    let after = audit(&radar, "").await;
    assert_eq!(after, records);
}
