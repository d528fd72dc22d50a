//! End to end over the USP MTPs, WebSocket, MQTT (a real mosquitto) and STOMP (a real RabbitMQ): `radar up` as a real
//! process and simulated agents that behave on the wire like obuspa. Covers discovery with types, subscriptions (created,
//! reconciled, foreign ones untouched), event-driven updates (ValueChange, ObjectCreation and
//! ObjectDeletion), immediate and offline writes, USP errors on operations, an async Operate
//! (firmware download), reboot, and a controller restart with nothing lost.

mod common;

use common::servers::RabbitMq;
use common::usp::{param, wait_online, wait_param, wait_status, WAIT};
use common::{device_path, eventually, file_server, Mosquitto, Radar};
use radar_sim::usp_agent::{self, agent::SimAgent, mqtt::Broker, Mtp, UspSimConfig};
use radar_usp::record::MqttVersion;
use reqwest::Method;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Two agents (B pre-provisioned with another controller's subscription and a stale one of
/// Radar's) on `mtp`.
fn start_agents(mtp: &Mtp) -> Vec<Arc<SimAgent>> {
    let config = UspSimConfig {
        count: 2,
        ..Default::default()
    };
    let mut cores = config.cores();
    cores[1].provision_subscription(
        90,
        "acme-vc",
        "Device.LocalAgent.Controller.2",
        "ValueChange",
        "Device.WiFi.",
    );
    cores[1].provision_subscription(
        91,
        "radar-vc-0000000000000000",
        "Device.LocalAgent.Controller.1",
        "ValueChange",
        "Device.Gone.",
    );
    cores
        .into_iter()
        .map(|core| usp_agent::spawn(core, mtp, config.reboot_delay))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usp_agents_over_websocket_are_managed_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let radar = Radar::start(dir.path(), None);
    let fleet = start_agents(&Mtp::WebSocket(radar.usp.to_string()));
    let usp = radar.usp.to_string();
    scenario(
        radar,
        &fleet,
        "websocket",
        dir.path(),
        &["--usp-listen", &usp],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usp_agents_over_mqtt5_are_managed_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let url = broker.url();
    let radar = Radar::start_with(dir.path(), None, &["--mqtt-url", &url]);
    radar.wait_mqtt_subscribed().await;
    let fleet = start_agents(&Mtp::Mqtt(Broker {
        host: "127.0.0.1".into(),
        port: broker.port,
        version: MqttVersion::V5,
    }));
    scenario(radar, &fleet, "mqtt", dir.path(), &["--mqtt-url", &url]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usp_agents_over_mqtt311_reply_with_reply_to_topics() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let config = format!(
        "[usp.mqtt]\nurl = \"{}\"\nprotocol = \"3.1.1\"\n",
        broker.url()
    );
    let radar = Radar::start(dir.path(), Some(&config));
    radar.wait_mqtt_subscribed().await;
    let fleet = usp_agent::start(
        &UspSimConfig::default(),
        &Mtp::Mqtt(Broker {
            host: "127.0.0.1".into(),
            port: broker.port,
            version: MqttVersion::V3_1_1,
        }),
    );
    let id = fleet[0].endpoint_id.clone();
    let summary = wait_online(&radar, &id, true).await;
    assert_eq!(summary["mtp"], "mqtt");
    let (status, op) = radar
        .send(
            Method::PATCH,
            &format!("{}/params", device_path(&id)),
            json!({"Device.WiFi.SSID.1.SSID": "v311"}),
        )
        .await;
    assert_eq!(status, 202, "{op}");
    wait_status(&radar, &id, op["id"].as_u64().unwrap(), "done").await;
    assert_eq!(
        fleet[0].param("Device.WiFi.SSID.1.SSID").as_deref(),
        Some("v311")
    );
    fleet[0].local_change("Device.WiFi.SSID.1.SSID", "v311-local");
    wait_param(&radar, &id, "Device.WiFi.SSID.1.SSID", "v311-local").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_loses_no_queued_operation() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let port = broker.port;
    let url = broker.url();
    let radar = Radar::start_with(dir.path(), None, &["--mqtt-url", &url]);
    radar.wait_mqtt_subscribed().await;
    let fleet = usp_agent::start(
        &UspSimConfig::default(),
        &Mtp::Mqtt(Broker {
            host: "127.0.0.1".into(),
            port,
            version: MqttVersion::V5,
        }),
    );
    let id = fleet[0].endpoint_id.clone();
    wait_online(&radar, &id, true).await;

    // The broker goes away; an operator write is accepted and kept in the twin meanwhile.
    drop(broker);
    let (status, op) = radar
        .send(
            Method::PATCH,
            &format!("{}/params", device_path(&id)),
            json!({"Device.WiFi.SSID.1.SSID": "across-the-outage"}),
        )
        .await;
    assert_eq!(status, 202, "{op}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_ne!(
        fleet[0].param("Device.WiFi.SSID.1.SSID").as_deref(),
        Some("across-the-outage")
    );

    // The broker is back on the same port: Radar and the agent reconnect, and the write lands.
    let _broker = Mosquitto::start_on(dir.path(), port);
    radar.wait_mqtt_subscribed().await;
    let done = eventually(
        "the queued write delivered after the outage",
        Duration::from_secs(60),
        || async {
            let v = radar
                .get(&format!("{}/operations/{}", device_path(&id), op["id"]))
                .await
                .1;
            (v["status"] == "done").then_some(v)
        },
    )
    .await;
    assert_eq!(
        fleet[0].param("Device.WiFi.SSID.1.SSID").as_deref(),
        Some("across-the-outage"),
        "{done}"
    );
}

fn stomp_mtp(broker: &RabbitMq) -> Mtp {
    Mtp::Stomp(usp_agent::stomp::Broker {
        server: broker.address(),
        virtual_host: "/".into(),
        username: "guest".into(),
        password: "guest".into(),
        controller_destination: "/queue/usp.controller".into(),
    })
}

async fn wait_stomp_connected(radar: &Radar) {
    eventually("radar on the stomp broker", WAIT, || async {
        radar
            .metrics()
            .await
            .contains("radar_usp_stomp_connected 1")
            .then_some(())
    })
    .await;
}

/// The third MTP, over a real RabbitMQ with its STOMP plugin (TR-369, STOMP binding).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usp_agents_over_stomp_are_managed_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let broker = RabbitMq::start(dir.path());
    let server = broker.address();
    let radar = Radar::start_with(dir.path(), None, &["--stomp-server", &server]);
    wait_stomp_connected(&radar).await;
    let fleet = start_agents(&stomp_mtp(&broker));
    scenario(
        radar,
        &fleet,
        "stomp",
        dir.path(),
        &["--stomp-server", &server],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stomp_broker_restart_loses_no_queued_operation() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = RabbitMq::start(dir.path());
    let server = broker.address();
    let radar = Radar::start_with(dir.path(), None, &["--stomp-server", &server]);
    wait_stomp_connected(&radar).await;
    let fleet = usp_agent::start(&UspSimConfig::default(), &stomp_mtp(&broker));
    let id = fleet[0].endpoint_id.clone();
    let summary = wait_online(&radar, &id, true).await;
    assert_eq!(summary["mtp"], "stomp", "{summary}");

    // The broker goes away; an operator write is accepted and kept in the twin meanwhile.
    broker.stop();
    let (status, op) = radar
        .send(
            Method::PATCH,
            &format!("{}/params", device_path(&id)),
            json!({"Device.WiFi.SSID.1.SSID": "across-the-restart"}),
        )
        .await;
    assert_eq!(status, 202, "{op}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_ne!(
        fleet[0].param("Device.WiFi.SSID.1.SSID").as_deref(),
        Some("across-the-restart")
    );

    // The broker restarts on its ports and data: Radar and the agent reconnect (Radar with
    // backoff), Radar probes the agent it knows, and the write lands.
    broker.restart();
    wait_stomp_connected(&radar).await;
    let done = eventually(
        "the queued write delivered after the broker restart",
        Duration::from_secs(60),
        || async {
            let v = radar
                .get(&format!("{}/operations/{}", device_path(&id), op["id"]))
                .await
                .1;
            (v["status"] == "done").then_some(v)
        },
    )
    .await;
    assert_eq!(
        fleet[0].param("Device.WiFi.SSID.1.SSID").as_deref(),
        Some("across-the-restart"),
        "{done}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn radar_sim_runs_usp_agents_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let radar = Radar::start(dir.path(), None);
    let mut sim = std::process::Command::new(env!("CARGO_BIN_EXE_radar"))
        .args([
            "sim",
            "--usp-ws",
            &radar.usp.to_string(),
            "--count",
            "2",
            "--first",
            "7",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let summary = wait_online(&radar, "os::00D09E-USP000008", true).await;
    assert_eq!(summary["protocol"], "usp");
    let _ = sim.kill();
    let _ = sim.wait();
    wait_online(&radar, "os::00D09E-USP000008", false).await;
}

/// Everything a USP twin must do, the same over every MTP. `restart_args` restart Radar on the
/// same MTP endpoint.
async fn scenario(
    mut radar: Radar,
    fleet: &[Arc<SimAgent>],
    mtp: &str,
    dir: &std::path::Path,
    restart_args: &[&str],
) {
    let (a, b) = (&fleet[0], &fleet[1]);
    let (ida, idb) = (a.endpoint_id.clone(), b.endpoint_id.clone());
    assert_eq!(ida, "os::00D09E-USP000001");

    // Discovery fills the twin, typed from GetSupportedDM.
    let summary = wait_online(&radar, &ida, true).await;
    assert_eq!(summary["protocol"], "usp", "{summary}");
    assert_eq!(summary["mtp"], mtp);
    assert_eq!(summary["product_class"], "HG-USP");
    assert!(summary["usp_versions"].as_str().unwrap().contains("1.3"));
    assert!(
        summary["counts"]["params"].as_u64().unwrap() > 200,
        "{summary}"
    );
    let ssid = param(&radar, &ida, "Device.WiFi.SSID.1.SSID").await;
    assert_eq!(
        (ssid["writable"].clone(), ssid["source"].clone()),
        (json!(true), json!("usp_get"))
    );
    let uptime = param(&radar, &ida, "Device.DeviceInfo.UpTime").await;
    assert_eq!(
        (uptime["type"].clone(), uptime["writable"].clone()),
        (json!("unsignedInt"), json!(false)),
        "{uptime}"
    );

    // Subscriptions are created with Radar-owned ids; B's foreign one stays, its stale one goes.
    let ids = eventually("subscriptions on A", WAIT, || async {
        let ids = a.subscription_ids();
        (ids.len() >= 10).then_some(ids)
    })
    .await;
    assert!(ids.iter().all(|id| id.starts_with("radar-")), "{ids:?}");
    // The twin says where each wanted subscription stands, as the agent answered.
    let subs = eventually("subscription standing on the twin", WAIT, || async {
        let s = radar.get(&device_path(&ida)).await.1["subscriptions"].clone();
        (s["in_place"].as_array().map(Vec::len) == Some(ids.len())).then_some(s)
    })
    .await;
    assert_eq!(subs["wanted"], 11, "{subs}");
    // The agent has no Device.ManagementServer (a CWMP object), so that one is not asked for.
    assert_eq!(
        subs["not_in_data_model"][0]["reference"], "Device.ManagementServer.URL",
        "{subs}"
    );
    assert_eq!(subs["refused"], json!([]), "{subs}");
    wait_online(&radar, &idb, true).await;
    let ids_b = eventually("subscriptions on B reconciled", WAIT, || async {
        let ids = b.subscription_ids();
        (!ids.contains(&"radar-vc-0000000000000000".to_string()) && ids.len() >= 11).then_some(ids)
    })
    .await;
    assert!(ids_b.contains(&"acme-vc".to_string()), "{ids_b:?}");
    assert_eq!(
        b.param("Device.LocalAgent.Subscription.90.ID").as_deref(),
        Some("acme-vc")
    );

    // A local change shows in the twin without polling, and is acknowledged after commit.
    let acks_before = a.notify_resps();
    a.local_change("Device.WiFi.SSID.1.SSID", "changed-on-the-lan");
    let p = wait_param(
        &radar,
        &ida,
        "Device.WiFi.SSID.1.SSID",
        "changed-on-the-lan",
    )
    .await;
    assert_eq!(p["source"], "notify");
    eventually("notify acknowledged", WAIT, || async {
        (a.notify_resps() > acks_before).then_some(())
    })
    .await;

    // Objects appear and disappear with ObjectCreation / ObjectDeletion.
    a.add_host("laptop");
    wait_param(&radar, &ida, "Device.Hosts.Host.9.HostName", "laptop").await;
    a.remove_host(9);
    eventually("host 9 removed from the twin", WAIT, || async {
        param(&radar, &ida, "Device.Hosts.Host.9.HostName")
            .await
            .is_null()
            .then_some(())
    })
    .await;

    // A PATCH is delivered at once to a connected agent.
    let (status, op) = radar
        .send(
            Method::PATCH,
            &format!("{}/params", device_path(&ida)),
            json!({"Device.WiFi.SSID.1.SSID": "from-radar"}),
        )
        .await;
    assert_eq!(status, 202, "{op}");
    wait_status(&radar, &ida, op["id"].as_u64().unwrap(), "done").await;
    assert_eq!(
        a.param("Device.WiFi.SSID.1.SSID").as_deref(),
        Some("from-radar")
    );
    assert_eq!(
        param(&radar, &ida, "Device.WiFi.SSID.1.SSID").await["source"],
        "usp_set"
    );

    // An agent's refusal fails the operation with the USP error code.
    let (status, op) = radar
        .send(
            Method::PATCH,
            &format!("{}/params", device_path(&ida)),
            json!({"Device.X_ACME_Missing": "1"}),
        )
        .await;
    assert_eq!(status, 202, "{op}");
    let failed = wait_status(&radar, &ida, op["id"].as_u64().unwrap(), "failed").await;
    assert_eq!(failed["fault"]["code"], 7010, "{failed}");

    // Offline: the write is queued and delivered, once, when the agent reconnects.
    a.set_online(false);
    wait_online(&radar, &ida, false).await;
    let (status, op) = radar
        .send(
            Method::PATCH,
            &format!("{}/params", device_path(&ida)),
            json!({"Device.WiFi.SSID.1.SSID": "while-away"}),
        )
        .await;
    assert_eq!(status, 202);
    let offline_op = op["id"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        radar
            .get(&format!("{}/operations/{offline_op}", device_path(&ida)))
            .await
            .1["status"],
        "queued"
    );
    a.set_online(true);
    let done = wait_status(&radar, &ida, offline_op, "done").await;
    assert_eq!(done["attempts"], 1, "{done}");
    assert_eq!(
        a.param("Device.WiFi.SSID.1.SSID").as_deref(),
        Some("while-away")
    );

    // An async Operate: firmware download into the inactive bank, completed by OperationComplete.
    let files = file_server(b"firmware").await;
    let (status, op) = radar
        .send(
            Method::POST,
            &format!("{}/operations", device_path(&ida)),
            json!({"kind": "download", "url": format!("http://{files}/fw-2.0.0.bin")}),
        )
        .await;
    assert_eq!(status, 202, "{op}");
    wait_status(&radar, &ida, op["id"].as_u64().unwrap(), "done").await;
    assert_eq!(
        a.param("Device.DeviceInfo.FirmwareImage.2.Status")
            .as_deref(),
        Some("Active")
    );
    eventually("software version from ValueChange", WAIT, || async {
        let v = radar.get(&device_path(&ida)).await.1;
        (v["software_version"] == "fw-2.0.0").then_some(())
    })
    .await;

    // Reboot: closed by the Boot! event that carries its CommandKey.
    let boots = a.boots.load(std::sync::atomic::Ordering::Relaxed);
    let (_, op) = radar
        .send(
            Method::POST,
            &format!("{}/operations", device_path(&ida)),
            json!({"kind": "reboot"}),
        )
        .await;
    let done = wait_status(&radar, &ida, op["id"].as_u64().unwrap(), "done").await;
    assert!(
        done["detail"]
            .as_str()
            .unwrap_or("")
            .contains("RemoteReboot"),
        "{done}"
    );
    assert_eq!(
        a.boots.load(std::sync::atomic::Ordering::Relaxed),
        boots + 1
    );

    // CWMP-only operations are refused for USP twins.
    let (status, err) = radar
        .send(
            Method::POST,
            &format!("{}/operations", device_path(&ida)),
            json!({"kind": "get_rpc_methods"}),
        )
        .await;
    assert_eq!(status, 400, "{err}");

    // The query language filters on protocol and mtp.
    let (_, q) = radar
        .get(&format!(
            "/api/v1/query?q=protocol%20%3D%20%22usp%22%20AND%20mtp%20%3D%20%22{mtp}%22"
        ))
        .await;
    assert_eq!(q["total"], 2, "{q}");

    // Restart: twins survive, agents reconnect, writes flow again.
    radar.terminate();
    let radar = Radar::start_with(dir, None, restart_args);
    // The twin and its operation history come back from disk, before any agent speaks.
    let (status, summary) = radar.get(&device_path(&ida)).await;
    assert_eq!(status, 200);
    assert!(
        summary["counts"]["params"].as_u64().unwrap() > 200,
        "{summary}"
    );
    assert_eq!(
        param(&radar, &ida, "Device.WiFi.SSID.1.SSID").await["value"],
        "while-away"
    );
    let (_, ops) = radar
        .get(&format!("{}/operations", device_path(&ida)))
        .await;
    assert!(
        ops.to_string().contains("fw-2.0.0.bin"),
        "download operation kept: {ops}"
    );
    // WebSocket agents reconnect by themselves; an MQTT agent stays on the broker and is back
    // as soon as it speaks.
    a.local_change("Device.WiFi.SSID.1.SSID", "after-restart-local");
    wait_online(&radar, &ida, true).await;
    wait_param(
        &radar,
        &ida,
        "Device.WiFi.SSID.1.SSID",
        "after-restart-local",
    )
    .await;
    let (status, op) = radar
        .send(
            Method::PATCH,
            &format!("{}/params", device_path(&idb)),
            json!({"Device.WiFi.SSID.1.SSID": "after-restart"}),
        )
        .await;
    assert_eq!(status, 202);
    wait_online(&radar, &idb, true).await;
    wait_status(&radar, &idb, op["id"].as_u64().unwrap(), "done").await;
    assert_eq!(
        b.param("Device.WiFi.SSID.1.SSID").as_deref(),
        Some("after-restart")
    );
}
