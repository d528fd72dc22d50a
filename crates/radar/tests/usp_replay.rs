//! Radar against recordings of a real USP agent (obuspa v11.0.4 over MQTT and STOMP, see
//! `tests/fixtures/usp/SOURCES.md`): a scripted agent answers every request exactly as obuspa
//! did, refusals included, so what passes here is what the real agent accepts. A request the
//! real agent was never asked is answered with an error and fails the test.

mod common;

use common::servers::RabbitMq;
use common::usp::{param, wait_online, wait_status};
use common::{device_path, eventually, Mosquitto, Radar};
use radar_sim::replay::{mqtt::ReplayAgent, Recording};
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const OBUSPA: &str = "os::012345-OBUSPA1";

fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/usp")
}

fn recordings() -> Recording {
    let dir = fixtures();
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

fn replay_agent(port: u16) -> ReplayAgent {
    ReplayAgent {
        endpoint_id: OBUSPA.into(),
        controller_id: "self::radar".into(),
        host: "127.0.0.1".into(),
        port,
        reboot_delay: Duration::from_millis(300),
    }
}

/// obuspa sets no MQTT Will and left the broker without a USP Disconnect: Radar must find out
/// by itself that it is gone, and after its own restart that it is still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mqtt_agent_that_leaves_silently_goes_offline_and_one_that_stays_is_found_after_a_restart(
) {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let config = format!(
        "[usp]\nliveness_timeout = \"1s\"\n[usp.mqtt]\nurl = \"{}\"\nliveness_interval = \"1s\"\n",
        broker.url()
    );
    let radar = Radar::start(dir.path(), Some(&config));
    radar.wait_mqtt_subscribed().await;
    let agent = tokio::spawn(radar_sim::replay::mqtt::run(
        replay_agent(broker.port),
        Arc::new(Mutex::new(recordings())),
    ));
    wait_online(&radar, OBUSPA, true).await;
    // Quiet but present: probes are answered and it stays online.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(radar.get(&device_path(OBUSPA)).await.1["online"], true);

    // Gone without a word (its TCP connection dropped, no Will, no Disconnect record).
    agent.abort();
    let gone = wait_online(&radar, OBUSPA, false).await;
    let events = gone["events"].to_string();
    assert!(events.contains("liveness probe"), "{events}");

    // Back, then Radar restarts: the agent does not speak, Radar asks it. (Liveness probes
    // off here, so no answer to an earlier probe can be what brings it back.)
    let mut radar = radar;
    radar.terminate();
    let quiet = format!(
        "[usp.mqtt]\nurl = \"{}\"\nliveness_interval = \"0s\"\n",
        broker.url()
    );
    let radar = Radar::start(dir.path(), Some(&quiet));
    radar.wait_mqtt_subscribed().await;
    let agent = tokio::spawn(radar_sim::replay::mqtt::run(
        replay_agent(broker.port),
        Arc::new(Mutex::new(recordings())),
    ));
    wait_online(&radar, OBUSPA, true).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut radar = radar;
    radar.terminate();
    let radar = Radar::start(dir.path(), Some(&quiet));
    radar.wait_mqtt_subscribed().await;
    let back = wait_online(&radar, OBUSPA, true).await;
    assert!(back["events"].to_string().contains("connect"), "{back}");
    agent.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn radar_manages_a_replayed_obuspa_over_mqtt() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let radar = Radar::start_with(dir.path(), None, &["--mqtt-url", &broker.url()]);
    radar.wait_mqtt_subscribed().await;
    let recording = Arc::new(Mutex::new(recordings()));
    let agent = tokio::spawn(radar_sim::replay::mqtt::run(
        replay_agent(broker.port),
        recording.clone(),
    ));
    obuspa_scenario(&radar, &recording).await;
    agent.abort();
}

/// obuspa over STOMP through a real RabbitMQ, as recorded (its destinations
/// `/queue/obuspa1.agent` and `/queue/radar.controller`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn radar_manages_a_replayed_obuspa_over_stomp() {
    let dir = tempfile::tempdir().unwrap();
    let broker = RabbitMq::start(dir.path());
    let config = format!(
        "[usp.stomp]\nserver = \"{}\"\nusername = \"guest\"\npassword = \"guest\"\ndestination = \"/queue/radar.controller\"\n",
        broker.address()
    );
    let radar = Radar::start(dir.path(), Some(&config));
    eventually(
        "radar on the stomp broker",
        Duration::from_secs(20),
        || async {
            radar
                .metrics()
                .await
                .contains("radar_usp_stomp_connected 1")
                .then_some(())
        },
    )
    .await;
    let text = std::fs::read_to_string(fixtures().join("obuspa-v11.0.4-stomp-session.capture"))
        .expect("fixture");
    let recording = Arc::new(Mutex::new(
        Recording::parse(&text, "/queue/radar.controller").expect("recording parses"),
    ));
    let agent = tokio::spawn(radar_sim::replay::stomp::run(
        radar_sim::replay::stomp::ReplayAgent {
            endpoint_id: OBUSPA.into(),
            controller_id: "self::radar".into(),
            server: broker.address(),
            controller_destination: "/queue/radar.controller".into(),
            reboot_delay: Duration::from_millis(300),
        },
        recording.clone(),
    ));
    let summary = obuspa_scenario(&radar, &recording).await;
    assert_eq!(summary["mtp"], "stomp", "{summary}");
    agent.abort();
}

/// What obuspa's recorded first contact must give, over any MTP: the twin complete and typed,
/// its subscriptions, a Set, and a Reboot closed by its own Boot!. Returns the twin's summary.
async fn obuspa_scenario(radar: &Radar, recording: &Mutex<Recording>) -> Value {
    // The twin fills from obuspa's answers, typed from its GetSupportedDM.
    let summary = wait_online(radar, OBUSPA, true).await;
    assert_eq!(summary["product_class"], "USP Agent", "{summary}");
    assert!(
        summary["counts"]["params"].as_u64().unwrap() > 150,
        "{summary}"
    );
    let version = param(
        radar,
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
    wait_status(radar, OBUSPA, 1, "done").await;
    let (status, op) = radar
        .send(
            Method::POST,
            &format!("{}/operations", device_path(OBUSPA)),
            json!({"kind": "reboot"}),
        )
        .await;
    assert_eq!((status, op["id"].clone()), (202, json!(2)), "{op}");
    let done = wait_status(radar, OBUSPA, 2, "done").await;
    assert!(
        done["detail"].as_str().unwrap().contains("RemoteReboot"),
        "{done}"
    );
    let summary = wait_online(radar, OBUSPA, true).await;

    let unrecorded = recording.lock().unwrap().unrecorded.clone();
    assert!(
        unrecorded.is_empty(),
        "radar asked what obuspa was never asked: {unrecorded:#?}"
    );
    summary
}
