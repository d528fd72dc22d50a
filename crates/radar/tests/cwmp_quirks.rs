//! CWMP devices that break the standard the way genieacs-sim (commit e391cab) does: Fault 9000
//! for Reboot and the attribute RPCs, no echoed cookies, and a crash on any GetParameterValues
//! of an object path. Radar must report what the device answered, and must not crash-loop it.

mod common;

use common::{device_path, eventually, Radar};
use radar_sim::{SimConfig, SimFleet};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
const A: &str = "os::00D09E-SIM000001";

async fn operation(radar: &Radar, op: u64) -> Value {
    radar
        .get(&format!("{}/operations/{op}", device_path(A)))
        .await
        .1
}

async fn post_op(radar: &Radar, body: Value) -> u64 {
    let (status, op) = radar
        .send(
            Method::POST,
            &format!("{}/operations", device_path(A)),
            body,
        )
        .await;
    assert_eq!(status, 202, "{op}");
    op["id"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_like_genieacs_sim_is_reported_truthfully_and_read_by_leaf_names() {
    let dir = tempfile::tempdir().unwrap();
    let radar = Radar::start(dir.path(), None);
    let fleet = SimFleet::start(SimConfig {
        acs_url: radar.acs_url(),
        count: 1,
        periodic_interval: Duration::from_secs(3600),
        echo_cookies: false,
        genieacs_sim_quirks: true,
        ..Default::default()
    })
    .await
    .unwrap();

    // SetParameterAttributes answered with Fault 9000: not "configured", and why.
    let summary = eventually("discovery and the attribute fault", WAIT, || async {
        let v = radar.get(&device_path(A)).await.1;
        (!v["discovered_at"].is_null() && !v["notification_fault"].is_null()).then_some(v)
    })
    .await;
    assert_eq!(summary["notifications_configured"], false, "{summary}");
    assert_eq!(summary["notification_fault"]["code"], 9000, "{summary}");
    assert_eq!(summary["notification_refused"], json!([]));

    // A refresh of an object path kills the device's session. Radar learns the quirk, and the
    // operation is delivered again by leaf names instead of being sent until it fails.
    let op = post_op(
        &radar,
        json!({"kind": "refresh", "prefix": "Device.ManagementServer."}),
    )
    .await;
    let done = eventually("the refresh done", WAIT, || async {
        let v = operation(&radar, op).await;
        (v["status"] == "done").then_some(v)
    })
    .await;
    assert_eq!(done["detail"], "read by leaf names", "{done}");
    assert!(done["attempts"].as_u64().unwrap() <= 3, "{done}");
    let summary = radar.get(&device_path(A)).await.1;
    assert_eq!(
        summary["quirks"],
        json!(["object_path_reads_fail"]),
        "{summary}"
    );
    // The values really came from the device.
    let params = radar
        .get(&format!(
            "{}/params?prefix=Device.ManagementServer.PeriodicInformInterval",
            device_path(A)
        ))
        .await
        .1;
    assert_eq!(
        params["params"]["Device.ManagementServer.PeriodicInformInterval"]["source"], "refresh",
        "{params}"
    );

    // Reboot refused with Fault 9000: the operation says so.
    let op = post_op(&radar, json!({"kind": "reboot"})).await;
    let failed = eventually("the reboot refused", WAIT, || async {
        let v = operation(&radar, op).await;
        (v["status"] == "failed").then_some(v)
    })
    .await;
    assert_eq!(failed["fault"]["code"], 9000, "{failed}");
    fleet.stop();
}
