//! End to end: `radar up` as a real process, simulated CPEs over real HTTP. Covers bootstrap
//! discovery, connection requests, offline writes delivered at the next inform, reboot, download
//! with TransferComplete, a CPE fault, and a restart on the same data dir with nothing lost.

mod common;

use common::{device_path, eventually, file_server, Radar};
use radar_sim::{SimConfig, SimFleet};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

async fn operation(radar: &Radar, device: &str, op: u64) -> Value {
    radar
        .get(&format!("{}/operations/{op}", device_path(device)))
        .await
        .1
}

async fn wait_status(radar: &Radar, device: &str, op: u64, want: &str) -> Value {
    eventually(
        &format!("operation {op} of {device} to be {want}"),
        WAIT,
        || async {
            let v = operation(radar, device, op).await;
            (v["status"] == want).then_some(v)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cwmp_devices_are_managed_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut radar = Radar::start(dir.path(), None);
    let fleet = SimFleet::start(SimConfig {
        acs_url: radar.acs_url(),
        count: 3,
        periodic_interval: Duration::from_secs(3600),
        ..Default::default()
    })
    .await
    .unwrap();
    let a = "os::00D09E-SIM000001";
    let b = "os::00D09E-SIM000002";
    let c = "os::00D09E-SIM000003";

    // Bootstrap discovery fills the twin with the whole data model, with writability.
    let summary = eventually("discovery of device A", WAIT, || async {
        let (status, v) = radar.get(&device_path(a)).await;
        (status == 200 && !v["discovered_at"].is_null() && v["notifications_configured"] == true)
            .then_some(v)
    })
    .await;
    assert!(
        summary["counts"]["params"].as_u64().unwrap() > 200,
        "{summary}"
    );
    let (_, params) = radar
        .get(&format!(
            "{}/params?prefix=Device.WiFi.SSID.1.",
            device_path(a)
        ))
        .await;
    let ssid = &params["params"]["Device.WiFi.SSID.1.SSID"];
    assert_eq!(ssid["value"], "Radar-SIM000001-2.4GHz");
    assert_eq!(ssid["writable"], true);
    assert_eq!(
        params["params"]["Device.WiFi.SSID.1.BSSID"]["writable"],
        false
    );
    // Active notification was configured on the device itself.
    assert_eq!(
        fleet
            .device("SIM000001")
            .unwrap()
            .notification("Device.DeviceInfo.SoftwareVersion"),
        Some(2)
    );
    eventually("connection-request credentials on A", WAIT, || async {
        let v = radar.get(&device_path(a)).await.1;
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "credentials")
            .then_some(())
    })
    .await;

    // A PATCH to an online device is delivered at once through a connection request.
    let (status, op) = radar
        .send(
            Method::PATCH,
            &format!("{}/params", device_path(a)),
            json!({"Device.WiFi.SSID.1.SSID": "radar-test"}),
        )
        .await;
    assert_eq!(status, 202, "{op}");
    let op_id = op["id"].as_u64().unwrap();
    wait_status(&radar, a, op_id, "done").await;
    assert_eq!(
        fleet
            .device("SIM000001")
            .unwrap()
            .param("Device.WiFi.SSID.1.SSID")
            .as_deref(),
        Some("radar-test")
    );
    let (_, params) = radar
        .get(&format!(
            "{}/params?prefix=Device.WiFi.SSID.1.SSID",
            device_path(a)
        ))
        .await;
    assert_eq!(
        params["params"]["Device.WiFi.SSID.1.SSID"]["value"],
        "radar-test"
    );
    assert_eq!(params["params"]["Device.WiFi.SSID.1.SSID"]["source"], "spv");

    // Validation refuses a read-only path and a wrong type before anything is queued.
    let (status, err) = radar
        .send(
            Method::PATCH,
            &format!("{}/params", device_path(a)),
            json!({"Device.DeviceInfo.SoftwareVersion": "9"}),
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("read_only")),
        "{err}"
    );
    let (status, err) = radar
        .send(
            Method::PATCH,
            &format!("{}/params", device_path(a)),
            json!({"Device.WiFi.Radio.1.Channel": "eleven"}),
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("invalid_value")),
        "{err}"
    );

    // Offline: the write waits in the twin and is delivered at the device's next inform.
    let device_b = fleet.device("SIM000002").unwrap().clone();
    eventually("discovery of device B", WAIT, || async {
        let v = radar.get(&device_path(b)).await.1;
        v["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["kind"] == "credentials"))
            .then_some(())
    })
    .await;
    device_b.set_online(false);
    let (status, op) = radar
        .send(
            Method::PATCH,
            &format!("{}/params", device_path(b)),
            json!({"Device.ManagementServer.PeriodicInformInterval": "120"}),
        )
        .await;
    assert_eq!(status, 202);
    let offline_op = op["id"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(operation(&radar, b, offline_op).await["status"], "queued");
    let (_, params) = radar
        .get(&format!(
            "{}/params?prefix=Device.ManagementServer.PeriodicInformInterval",
            device_path(b)
        ))
        .await;
    assert_eq!(
        params["desired"]["Device.ManagementServer.PeriodicInformInterval"]["value"],
        "120"
    );
    device_b.set_online(true);
    assert!(device_b.trigger(radar_sim::device::Trigger::Periodic));
    wait_status(&radar, b, offline_op, "done").await;
    assert_eq!(
        device_b
            .param("Device.ManagementServer.PeriodicInformInterval")
            .as_deref(),
        Some("120")
    );

    // Reboot: closed by the `M Reboot` inform that follows.
    let sessions_before = device_b.sessions.load(std::sync::atomic::Ordering::Relaxed);
    let (status, op) = radar
        .send(
            Method::POST,
            &format!("{}/operations", device_path(b)),
            json!({"kind": "reboot"}),
        )
        .await;
    assert_eq!(status, 202);
    let done = wait_status(&radar, b, op["id"].as_u64().unwrap(), "done").await;
    assert_eq!(done["detail"], "device rebooted");
    // The operation closes when the boot Inform commits; the device counts the session once it
    // ends, a moment later.
    eventually("the reboot session to end", WAIT, || async {
        (device_b.sessions.load(std::sync::atomic::Ordering::Relaxed) >= sessions_before + 2)
            .then_some(())
    })
    .await;
    let summary = radar.get(&device_path(b)).await.1;
    assert!(
        summary["last_inform_events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "M Reboot"),
        "{summary}"
    );

    // Download with TransferComplete: the device really fetches the file, then reports.
    let files = file_server(b"firmware-image").await;
    let url = format!("http://{files}/fw-2.0.bin");
    let (status, op) = radar
        .send(
            Method::POST,
            &format!("{}/operations", device_path(c)),
            json!({"kind": "download", "url": url}),
        )
        .await;
    assert_eq!(status, 202, "{op}");
    wait_status(&radar, c, op["id"].as_u64().unwrap(), "done").await;
    eventually("new software version on C", WAIT, || async {
        let v = radar.get(&device_path(c)).await.1;
        (v["software_version"] == "2.0").then_some(())
    })
    .await;

    // Upload: the device PUTs its configuration, then reports with TransferComplete.
    let (status, op) = radar
        .send(
            Method::POST,
            &format!("{}/operations", device_path(c)),
            json!({"kind": "upload", "url": format!("http://{files}/config-upload")}),
        )
        .await;
    assert_eq!(status, 202, "{op}");
    wait_status(&radar, c, op["id"].as_u64().unwrap(), "done").await;

    // A CPE fault fails the operation with the device's code, and the twin keeps its state.
    let (status, op) = radar
        .send(
            Method::POST,
            &format!("{}/operations", device_path(c)),
            json!({"kind": "delete_object", "path": "Device.NAT.PortMapping.99."}),
        )
        .await;
    assert_eq!(status, 202);
    let failed = wait_status(&radar, c, op["id"].as_u64().unwrap(), "failed").await;
    assert_eq!(failed["fault"]["code"], 9005, "{failed}");

    // AddObject returns the new instance.
    let (_, op) = radar
        .send(
            Method::POST,
            &format!("{}/operations", device_path(c)),
            json!({"kind": "add_object", "path": "Device.NAT.PortMapping."}),
        )
        .await;
    let added = wait_status(&radar, c, op["id"].as_u64().unwrap(), "done").await;
    assert_eq!(added["detail"], "instance 2");

    // Queries see meta fields and parameters.
    let (_, q) = radar
        .get("/api/v1/query?q=product_class%20%3D%20HG-SIM&group_by=software_version")
        .await;
    assert_eq!(q["total"], 3, "{q}");
    assert_eq!(q["groups"]["2.0"], 1);
    assert_eq!(q["groups"]["1.0.0"], 2);
    let (status, err) = radar.get("/api/v1/query?q=serial%20%3D%3D%3D").await;
    assert_eq!(status, 400);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("position"),
        "{err}"
    );

    // Pages: limit and cursor walk the fleet in id order.
    let (_, page1) = radar.get("/api/v1/devices?limit=2").await;
    let ids: Vec<&str> = page1["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [a, b]);
    let cursor = page1["next_cursor"].as_str().unwrap().to_owned();
    let (_, page2) = radar
        .get(&format!("/api/v1/devices?limit=2&cursor={cursor}"))
        .await;
    let ids: Vec<&str> = page2["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [c]);
    assert!(page2["next_cursor"].is_null());
    let (_, projected) = radar
        .get("/api/v1/devices?q=serial%20%3D%20SIM000003&fields=Device.WiFi.SSID.1.SSID")
        .await;
    assert_eq!(
        projected["devices"][0]["fields"]["Device.WiFi.SSID.1.SSID"],
        "Radar-SIM000003-2.4GHz"
    );

    // Restart on the same data dir: nothing lost.
    fleet.stop();
    let before = radar.get(&format!("{}/operations", device_path(b))).await.1;
    radar.terminate();
    let radar = Radar::start(dir.path(), None);
    let after = radar.get(&format!("{}/operations", device_path(b))).await.1;
    assert_eq!(before, after);
    let (_, params) = radar
        .get(&format!(
            "{}/params?prefix=Device.WiFi.SSID.1.SSID",
            device_path(a)
        ))
        .await;
    assert_eq!(
        params["params"]["Device.WiFi.SSID.1.SSID"]["value"],
        "radar-test"
    );
    let (_, list) = radar.get("/api/v1/devices").await;
    assert_eq!(list["devices"].as_array().unwrap().len(), 3);
}
