//! Operators add an index while Radar runs (issue 12): `POST /api/v1/indexes` builds it in the
//! background with progress, queries on the field stop reading twins once it is ready (the
//! answer's `scanned`), and the index is there again after a restart.

mod common;

use common::{eventually, Radar};
use radar_sim::{SimConfig, SimFleet};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
const FIELD: &str = "Device.DeviceInfo.HardwareVersion";
const QUERY: &str = "/api/v1/query?q=Device.DeviceInfo.HardwareVersion%20%3D%20%22HW-1.0%22";

fn index_state(list: &Value, field: &str) -> Option<String> {
    list["indexes"]
        .as_array()?
        .iter()
        .find(|i| i["field"] == field)
        .map(|i| i["state"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_added_online_answers_queries_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut radar = Radar::start(dir.path(), None);
    let fleet = SimFleet::start(SimConfig {
        acs_url: radar.acs_url(),
        count: 4,
        periodic_interval: Duration::from_secs(3600),
        ..Default::default()
    })
    .await
    .unwrap();
    // Discovery reports HardwareVersion; not indexed, the query reads every twin.
    let before = eventually("four discovered devices", WAIT, || async {
        let (_, q) = radar.get(QUERY).await;
        (q["total"] == 4).then_some(q)
    })
    .await;
    assert!(before["scanned"].as_u64().unwrap() >= 4, "{before}");
    let (_, list) = radar.get("/api/v1/indexes").await;
    assert_eq!(
        index_state(&list, "software_version").as_deref(),
        Some("ready"),
        "{list}"
    );
    assert_eq!(index_state(&list, FIELD), None, "{list}");

    // Not indexable: a wildcard, a time-dependent field, no body.
    for bad in [
        json!({"field": "Device.WiFi.*"}),
        json!({"field": "online"}),
        json!({}),
    ] {
        let (status, err) = radar
            .send(Method::POST, "/api/v1/indexes", bad.clone())
            .await;
        assert_eq!(status, 400, "{bad}: {err}");
        assert!(err["error"]["message"].as_str().is_some(), "{err}");
    }

    let (status, build) = radar
        .send(Method::POST, "/api/v1/indexes", json!({"field": FIELD}))
        .await;
    assert!(status == 202 || status == 200, "{status} {build}");
    assert_eq!(build["field"], FIELD);
    let built = eventually("the index to be built", WAIT, || async {
        let (_, list) = radar.get("/api/v1/indexes").await;
        let entry = list["indexes"]
            .as_array()?
            .iter()
            .find(|i| i["field"] == FIELD)?
            .clone();
        (entry["state"] == "ready").then_some(entry)
    })
    .await;
    assert_eq!(built["twins_total"], 4, "{built}");
    assert_eq!(built["twins_done"], 4, "{built}");
    let (_, after) = radar.get(QUERY).await;
    assert_eq!(after["total"], 4, "{after}");
    assert_eq!(after["scanned"], 0, "the index answers: {after}");
    let (_, grouped) = radar
        .get("/api/v1/query?q=product_class%20%3D%20HG-SIM&group_by=Device.DeviceInfo.HardwareVersion")
        .await;
    assert_eq!(grouped["groups"]["HW-1.0"], 4, "{grouped}");
    assert_eq!(grouped["scanned"], 0, "{grouped}");
    // Adding it again is a no-op that says it is ready.
    let (status, again) = radar
        .send(Method::POST, "/api/v1/indexes", json!({"field": FIELD}))
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["state"], "ready");

    drop(fleet);
    radar.terminate();
    let radar = Radar::start(dir.path(), None);
    let (_, list) = radar.get("/api/v1/indexes").await;
    assert_eq!(
        index_state(&list, FIELD).as_deref(),
        Some("ready"),
        "{list}"
    );
    let (_, restarted) = radar.get(QUERY).await;
    assert_eq!(restarted["total"], 4, "{restarted}");
    assert_eq!(restarted["scanned"], 0, "{restarted}");
}
