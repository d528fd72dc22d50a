//! Connection-request credentials as the device holds them (issue: field interop §1). The
//! simulated CPE checks Digest against its own `ManagementServer.ConnectionRequestUsername` and
//! `…Password`, as a real CPE does, so a connection request with stale credentials is refused
//! with 401 and the write it was meant to deliver waits for the next periodic inform (an hour
//! here): only a delivery within seconds proves the request got through.

mod common;

use common::{device_path, eventually, Radar};
use radar_sim::{SimConfig, SimFleet};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const A: &str = "os::00D09E-SIM000001";

async fn patch(radar: &Radar, device: &str, body: Value) -> u64 {
    let (status, op) = radar
        .send(
            Method::PATCH,
            &format!("{}/params", device_path(device)),
            body,
        )
        .await;
    assert_eq!(status, 202, "{op}");
    op["id"].as_u64().unwrap()
}

async fn wait_done(radar: &Radar, device: &str, op: u64, within: Duration) -> Value {
    eventually(&format!("operation {op} done"), within, || async {
        let v = radar
            .get(&format!("{}/operations/{op}", device_path(device)))
            .await
            .1;
        (v["status"] == "done").then_some(v)
    })
    .await
}

async fn summary(radar: &Radar, device: &str) -> Value {
    radar.get(&device_path(device)).await.1
}

async fn ready_fleet(radar: &Radar) -> SimFleet {
    let fleet = SimFleet::start(SimConfig {
        acs_url: radar.acs_url(),
        count: 1,
        periodic_interval: Duration::from_secs(3600),
        ..Default::default()
    })
    .await
    .unwrap();
    // Bootstrap: Radar sets credentials of its own, and the twin says so.
    eventually("radar's own credentials on the device", WAIT, || async {
        let v = summary(radar, A).await;
        (v["connection_request"]["credentials_source"] == "radar").then_some(())
    })
    .await;
    fleet
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_an_operator_writes_are_the_ones_radar_uses_next() {
    let dir = tempfile::tempdir().unwrap();
    let radar = Radar::start(dir.path(), None);
    let fleet = ready_fleet(&radar).await;
    let device = fleet.device("SIM000001").unwrap().clone();
    let radars_own = summary(&radar, A).await["connection_request"]["username"].clone();
    assert!(
        radars_own.as_str().unwrap().starts_with("radar-"),
        "{radars_own}"
    );
    // The twin's parameter shows what the device accepted, not the old empty value.
    let shown = radar
        .get(&format!(
            "{}/params?prefix=Device.ManagementServer.ConnectionRequestUsername",
            device_path(A)
        ))
        .await
        .1;
    assert_eq!(
        shown["params"]["Device.ManagementServer.ConnectionRequestUsername"]["value"],
        radars_own
    );

    // An operator changes them on the device.
    let op = patch(
        &radar,
        A,
        json!({
            "Device.ManagementServer.ConnectionRequestUsername": "carrier-cr",
            "Device.ManagementServer.ConnectionRequestPassword": "s3cret-cr",
        }),
    )
    .await;
    wait_done(&radar, A, op, WAIT).await;
    assert_eq!(
        device
            .param("Device.ManagementServer.ConnectionRequestUsername")
            .as_deref(),
        Some("carrier-cr")
    );
    let v = summary(&radar, A).await;
    assert_eq!(v["connection_request"]["username"], "carrier-cr", "{v}");
    assert_eq!(
        v["connection_request"]["credentials_source"],
        "operator_write"
    );
    assert!(
        !v.to_string().contains("s3cret-cr"),
        "summary shows the password: {v}"
    );
    let params = radar
        .get(&format!(
            "{}/params?prefix=Device.ManagementServer.",
            device_path(A)
        ))
        .await
        .1;
    assert!(
        !params.to_string().contains("s3cret-cr"),
        "params show the password: {params}"
    );
    let ops = radar.get(&format!("{}/operations", device_path(A))).await.1;
    assert!(
        !ops.to_string().contains("s3cret-cr"),
        "operations show the password: {ops}"
    );

    // The next write goes out at once: the connection request carries the new credentials.
    tokio::time::sleep(Duration::from_secs(11)).await; // the per-device CR interval
    let op = patch(
        &radar,
        A,
        json!({"Device.WiFi.SSID.1.SSID": "after-the-change"}),
    )
    .await;
    wait_done(&radar, A, op, Duration::from_secs(15)).await;
    assert_eq!(
        device.param("Device.WiFi.SSID.1.SSID").as_deref(),
        Some("after-the-change")
    );
    let v = summary(&radar, A).await;
    assert_eq!(v["connection_request"]["last"]["outcome"], "sent", "{v}");
    fleet.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_request_is_a_visible_state_until_an_operator_supplies_the_credentials(
) {
    let dir = tempfile::tempdir().unwrap();
    let radar = Radar::start(dir.path(), None);
    let fleet = ready_fleet(&radar).await;
    let device = fleet.device("SIM000001").unwrap().clone();
    // Another ACS (or a technician) changes the credentials behind Radar's back.
    assert!(device.local_change(
        "Device.ManagementServer.ConnectionRequestUsername",
        "other-acs"
    ));
    assert!(device.local_change(
        "Device.ManagementServer.ConnectionRequestPassword",
        "other-pass"
    ));

    let op = patch(&radar, A, json!({"Device.WiFi.SSID.1.SSID": "refused"})).await;
    let v = eventually("the 401 recorded on the twin", WAIT, || async {
        let v = summary(&radar, A).await;
        (v["connection_request"]["last"]["outcome"] == "unauthorized").then_some(v)
    })
    .await;
    assert!(
        v["events"].to_string().contains("unauthorized"),
        "{}",
        v["events"]
    );
    let metrics = radar.metrics().await;
    assert!(
        metrics.contains("radar_connection_requests_total{result=\"unauthorized\"} 1"),
        "{metrics}"
    );
    let queued = radar
        .get(&format!("{}/operations/{op}", device_path(A)))
        .await
        .1;
    assert_eq!(queued["status"], "queued", "{queued}");

    // The operator tells Radar what the device holds (per device here; by query below).
    let (status, body) = radar
        .send(
            Method::PUT,
            &format!("{}/connection-request-credentials", device_path(A)),
            json!({"username": "other-acs", "password": "other-pass"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.to_string().contains("other-pass"));
    let (status, body) = radar
        .send(
            Method::POST,
            "/api/v1/connection-request-credentials",
            json!({"query": "product_class = \"HG-SIM\"", "username": "other-acs", "password": "other-pass"}),
        )
        .await;
    assert_eq!(
        (status, body["matched"].clone(), body["updated"].clone()),
        (200, json!(1), json!(1)),
        "{body}"
    );
    let (status, body) = radar
        .send(
            Method::POST,
            "/api/v1/connection-request-credentials",
            json!({"query": "product_class = ", "username": "x", "password": "y"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let v = summary(&radar, A).await;
    assert_eq!(
        v["connection_request"]["credentials_source"],
        "operator_known"
    );

    // The next request gets through and the waiting write is delivered.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let op2 = patch(&radar, A, json!({"Device.WiFi.SSID.2.SSID": "through"})).await;
    wait_done(&radar, A, op2, Duration::from_secs(15)).await;
    wait_done(&radar, A, op, Duration::from_secs(5)).await;
    let v = summary(&radar, A).await;
    assert_eq!(v["connection_request"]["last"]["outcome"], "sent", "{v}");
    fleet.stop();
}

/// A CPE whose ConnectionRequestURL is `https://` with a self-signed certificate: refused by
/// default (the certificate is unknown, and the twin says so), reached with the CPE's CA in
/// `tls_ca_file`, or with `tls_accept_self_signed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_connection_requests_trust_a_ca_bundle_or_self_signed_certificates_by_choice() {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let cert = certified.cert.pem();
    let key = certified.signing_key.serialize_pem();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("cpe-ca.pem");
    std::fs::write(&ca_file, &cert).unwrap();
    for (name, config, reached) in [
        ("default", String::new(), false),
        (
            "ca bundle",
            format!("[connection_request]\ntls_ca_file = {ca_file:?}\n"),
            true,
        ),
        (
            "self-signed accepted",
            "[connection_request]\ntls_accept_self_signed = true\n".to_string(),
            true,
        ),
    ] {
        // A config file means explicit settings: anonymous CPEs must be allowed by name.
        let config = format!("[cwmp]\nallow_anonymous = true\n{config}");
        let data = tempfile::tempdir().unwrap();
        let radar = Radar::start(data.path(), Some(&config));
        let fleet = SimFleet::start(SimConfig {
            acs_url: radar.acs_url(),
            count: 1,
            periodic_interval: Duration::from_secs(3600),
            connection_request_tls: Some((cert.clone().into_bytes(), key.clone().into_bytes())),
            ..Default::default()
        })
        .await
        .unwrap();
        let deadline = std::time::Instant::now() + WAIT;
        let v = loop {
            let v = summary(&radar, A).await;
            if v["connection_request"]["credentials_source"] == "radar" {
                break v;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "bootstrap ({name}): {v}\n{}",
                radar.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(
            v["connection_request"]["url"]
                .as_str()
                .unwrap()
                .starts_with("https://"),
            "{v}"
        );
        let op = patch(&radar, A, json!({"Device.WiFi.SSID.1.SSID": name})).await;
        if reached {
            wait_done(&radar, A, op, Duration::from_secs(15)).await;
            let v = summary(&radar, A).await;
            assert_eq!(
                v["connection_request"]["last"]["outcome"], "sent",
                "{name}: {v}"
            );
        } else {
            let v = eventually("the tls refusal on the twin", WAIT, || async {
                let v = summary(&radar, A).await;
                (v["connection_request"]["last"]["outcome"] == "unreachable").then_some(v)
            })
            .await;
            let detail = v["connection_request"]["last"]["detail"]
                .to_string()
                .to_lowercase();
            assert!(detail.contains("certificate"), "{name}: {detail}");
            let op = radar
                .get(&format!("{}/operations/{op}", device_path(A)))
                .await
                .1;
            assert_eq!(op["status"], "queued", "{name}: {op}");
        }
        fleet.stop();
    }
}
