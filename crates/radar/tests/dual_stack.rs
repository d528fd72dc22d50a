//! One twin for a device that speaks both protocols (DESIGN §2, issue: field interop §6): a
//! CWMP client keyed `os::<OUI>-<Serial>` and a USP agent whose endpoint id is the same. The
//! twin keeps both protocols, each side's parameters with their source, its operations and
//! events, and delivers queued writes over whichever channel is live. A fleet query counts it
//! once.

mod common;

use common::usp::{param, wait_status, WAIT};
use common::{device_path, eventually, Radar};
use radar_sim::usp_agent::{self, Mtp, UspSimConfig};
use radar_sim::{SimConfig, SimFleet};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const DEVICE: &str = "os::00D09E-DUAL000001";

async fn patch(radar: &Radar, body: Value) -> u64 {
    let (status, op) = radar
        .send(
            Method::PATCH,
            &format!("{}/params", device_path(DEVICE)),
            body,
        )
        .await;
    assert_eq!(status, 202, "{op}");
    op["id"].as_u64().unwrap()
}

async fn cwmp_side(radar: &Radar) -> SimFleet {
    SimFleet::start(SimConfig {
        acs_url: radar.acs_url(),
        count: 1,
        serial_prefix: "DUAL".into(),
        periodic_interval: Duration::from_secs(3600),
        ..Default::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_speaking_cwmp_and_usp_keeps_one_twin() {
    let dir = tempfile::tempdir().unwrap();
    let radar = Radar::start(dir.path(), None);

    // CWMP first: bootstrap, and a write delivered through a connection request.
    let cwmp = cwmp_side(&radar).await;
    eventually("cwmp bootstrap", WAIT, || async {
        let v = radar.get(&device_path(DEVICE)).await.1;
        (v["connection_request"]["credentials_source"] == "radar").then_some(())
    })
    .await;
    let op = patch(&radar, json!({"Device.WiFi.SSID.1.SSID": "over-cwmp"})).await;
    wait_status(&radar, DEVICE, op, "done").await;
    cwmp.stop();

    // A write while neither side is reachable waits in the twin.
    let queued = patch(
        &radar,
        json!({"Device.WiFi.SSID.2.SSID": "queued-for-either"}),
    )
    .await;

    // The same device's USP agent connects: same twin, and the queued write goes over USP.
    let agents = usp_agent::start(
        &UspSimConfig {
            serial_prefix: "DUAL".into(),
            ..Default::default()
        },
        &Mtp::WebSocket(radar.usp.to_string()),
    );
    assert_eq!(agents[0].endpoint_id, DEVICE);
    wait_status(&radar, DEVICE, queued, "done").await;
    assert_eq!(
        agents[0].param("Device.WiFi.SSID.2.SSID").as_deref(),
        Some("queued-for-either")
    );
    let summary = radar.get(&device_path(DEVICE)).await.1;
    assert_eq!(summary["protocols"], json!(["cwmp", "usp"]), "{summary}");
    assert_eq!(summary["protocol"], "usp");
    assert_eq!(summary["online"], true);
    // Each side's parameters, with their source: the CWMP client's ManagementServer (the agent
    // has none) stays; the agent's own LocalAgent arrives.
    eventually("the usp read", WAIT, || async {
        let p = param(&radar, DEVICE, "Device.LocalAgent.EndpointID").await;
        (p["source"] == "usp_get").then_some(())
    })
    .await;
    // Within a subtree both sides have, what only the CWMP side reported stays too.
    let log = param(&radar, DEVICE, "Device.DeviceInfo.VendorLogFile.1.Name").await;
    assert!(
        !log["source"]
            .as_str()
            .unwrap_or("usp_get")
            .starts_with("usp"),
        "{log}"
    );
    let interval = param(
        &radar,
        DEVICE,
        "Device.ManagementServer.PeriodicInformInterval",
    )
    .await;
    assert!(
        ["inform", "discovery", "gpv", "refresh"].contains(&interval["source"].as_str().unwrap()),
        "{interval}"
    );
    assert_eq!(
        param(&radar, DEVICE, "Device.WiFi.SSID.2.SSID").await["source"],
        "usp_set"
    );
    // Operations from both sides are on the one twin.
    let ops = radar
        .get(&format!("{}/operations", device_path(DEVICE)))
        .await
        .1;
    assert_eq!(ops["operations"].as_array().unwrap().len(), 2, "{ops}");

    // The agent goes away; the CWMP side comes back and takes the next write.
    agents[0].set_online(false);
    eventually("the agent's disconnect on the twin", WAIT, || async {
        let v = radar.get(&device_path(DEVICE)).await.1;
        v["events"]
            .as_array()?
            .iter()
            .any(|e| e["kind"] == "disconnect")
            .then_some(())
    })
    .await;
    let cwmp = cwmp_side(&radar).await;
    let op = patch(&radar, json!({"Device.WiFi.SSID.1.SSID": "back-over-cwmp"})).await;
    wait_status(&radar, DEVICE, op, "done").await;
    assert_eq!(
        param(&radar, DEVICE, "Device.WiFi.SSID.1.SSID").await["source"],
        "spv"
    );
    // The agent's parameters survived the CWMP side's rediscovery.
    assert_eq!(
        param(&radar, DEVICE, "Device.LocalAgent.EndpointID").await["source"],
        "usp_get"
    );

    // One device, counted once.
    let (_, count) = radar
        .get("/api/v1/query?q=serial%20%3D%20%22DUAL000001%22")
        .await;
    assert_eq!(count["total"], 1, "{count}");
    let (_, all) = radar.get("/api/v1/query?q=").await;
    assert_eq!(all["total"], 1, "{all}");
    cwmp.stop();
}
