//! Radar against recordings of a real USP agent (obuspa v11.0.4 over MQTT, see
//! `tests/fixtures/usp/SOURCES.md`): a scripted agent answers every request exactly as obuspa
//! did, refusals included, so what passes here is what the real agent accepts. A request the
//! real agent was never asked is answered with an error and fails the test.

mod common;

use common::usp::{param, wait_online, wait_status};
use common::{device_path, eventually, Mosquitto, Radar};
use radar_sim::replay::{mqtt::ReplayAgent, Recording};
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const OBUSPA: &str = "os::012345-OBUSPA1";

fn recordings() -> Recording {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/usp");
    // Both sessions: the one with today's Radar, and obuspa's refusals of the Add that set
    // Recipient (a Radar that sent it again would be answered with them).
    let text: String = [
        "obuspa-v11.0.4-mqtt-session.capture",
        "obuspa-v11.0.4-mqtt-recipient-refused.capture",
    ]
    .iter()
    .map(|f| std::fs::read_to_string(dir.join(f)).expect("fixture"))
    .collect::<Vec<_>>()
    .join("\n");
    Recording::parse(&text, "usp/controller/").expect("recordings parse")
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    format!(
                        "{} {}",
                        s["notif_type"].as_str().unwrap_or(""),
                        s["reference"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn radar_manages_a_replayed_obuspa_over_mqtt() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let radar = Radar::start_with(dir.path(), None, &["--mqtt-url", &broker.url()]);
    radar.wait_mqtt_subscribed().await;
    let recording = Arc::new(Mutex::new(recordings()));
    let agent = tokio::spawn(radar_sim::replay::mqtt::run(
        ReplayAgent {
            endpoint_id: OBUSPA.into(),
            controller_id: "self::radar".into(),
            host: "127.0.0.1".into(),
            port: broker.port,
            reboot_delay: Duration::from_millis(300),
        },
        recording.clone(),
    ));

    // The twin fills from obuspa's answers, typed from its GetSupportedDM.
    let summary = wait_online(&radar, OBUSPA, true).await;
    assert_eq!(summary["product_class"], "USP Agent", "{summary}");
    assert!(
        summary["counts"]["params"].as_u64().unwrap() > 150,
        "{summary}"
    );
    let version = param(
        &radar,
        OBUSPA,
        "Device.LocalAgent.Controller.1.PeriodicNotifInterval",
    )
    .await;
    assert_eq!(
        (version["type"].clone(), version["writable"].clone()),
        (json!("unsignedInt"), json!(true)),
        "{version}"
    );

    // Subscriptions: what obuspa's data model has is in place, the rest is reported as absent,
    // nothing is refused (obuspa refused all 11 while Radar set Recipient).
    let subs = eventually("subscription standing", Duration::from_secs(20), || async {
        let s = radar.get(&device_path(OBUSPA)).await.1["subscriptions"].clone();
        (!s["checked_at"].is_null()).then_some(s)
    })
    .await;
    assert_eq!(subs["refused"], json!([]), "{subs}");
    assert_eq!(
        names(&subs["in_place"]),
        [
            "ValueChange Device.DeviceInfo.SoftwareVersion",
            "Event Device.Boot!",
            "OperationComplete Device."
        ],
        "{subs}"
    );
    assert_eq!(
        subs["not_in_data_model"].as_array().map(Vec::len),
        Some(8),
        "{subs}"
    );

    // A Set, then a reboot completed by the Boot! that names its CommandKey.
    let (status, op) = radar
        .send(
            Method::PATCH,
            &format!("{}/params", device_path(OBUSPA)),
            json!({"Device.LocalAgent.Controller.1.PeriodicNotifInterval": "3600"}),
        )
        .await;
    assert_eq!(status, 202, "{op}");
    wait_status(&radar, OBUSPA, 1, "done").await;
    let (status, op) = radar
        .send(
            Method::POST,
            &format!("{}/operations", device_path(OBUSPA)),
            json!({"kind": "reboot"}),
        )
        .await;
    assert_eq!((status, op["id"].clone()), (202, json!(2)), "{op}");
    let done = wait_status(&radar, OBUSPA, 2, "done").await;
    assert!(
        done["detail"].as_str().unwrap().contains("RemoteReboot"),
        "{done}"
    );
    wait_online(&radar, OBUSPA, true).await;

    let unrecorded = recording.lock().unwrap().unrecorded.clone();
    assert!(
        unrecorded.is_empty(),
        "radar asked what obuspa was never asked: {unrecorded:#?}"
    );
    agent.abort();
}
