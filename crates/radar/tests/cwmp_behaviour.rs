//! ACS behaviours real devices depend on: sessions without cookies, CPE authentication, load
//! shedding, and active notification (`4 VALUE CHANGE`) keeping the twin current.

mod common;

use common::{device_path, eventually, Radar};
use radar_sim::{SimConfig, SimFleet};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// One simulated gateway (or `count`) against `radar`, informing hourly unless triggered.
async fn fleet(radar: &Radar, config: SimConfig) -> SimFleet {
    SimFleet::start(SimConfig {
        acs_url: radar.acs_url(),
        periodic_interval: Duration::from_secs(3600),
        ..config
    })
    .await
    .unwrap()
}

async fn discovered(radar: &Radar, device: &str) -> serde_json::Value {
    eventually(&format!("discovery of {device}"), WAIT, || async {
        let (status, v) = radar.get(&device_path(device)).await;
        (status == 200 && !v["discovered_at"].is_null() && v["notifications_configured"] == true)
            .then_some(v)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_that_never_echo_cookies_keep_their_session_on_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let radar = Radar::start(dir.path(), None);
    let _fleet = fleet(
        &radar,
        SimConfig {
            count: 2,
            echo_cookies: false,
            ..Default::default()
        },
    )
    .await;
    // Discovery takes several RPCs in one session, so it only completes if the session follows
    // the TCP connection.
    let twin = discovered(&radar, "os::00D09E-SIM000001").await;
    assert!(twin["counts"]["params"].as_u64().unwrap() > 200);
}

/// Issue 13: credentials of one device do not let another inform. Both simulated gateways
/// log in as SIM000001 (a cloned or leaked password); only SIM000001 gets a twin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_credential_informs_only_as_its_own_device() {
    let dir = tempfile::tempdir().unwrap();
    let config = r#"
[cwmp]
allow_anonymous = false
device_credentials = [{ username = "00D09E-SIM000001", password = "p1" }]
"#;
    let radar = Radar::start(dir.path(), Some(config));
    let _fleet = fleet(
        &radar,
        SimConfig {
            count: 2,
            acs_credentials: Some(("00D09E-SIM000001".into(), "p1".into())),
            ..Default::default()
        },
    )
    .await;
    discovered(&radar, "os::00D09E-SIM000001").await;
    eventually("the impostor refused", WAIT, || async {
        radar
            .metrics()
            .await
            .contains("radar_cwmp_sessions_total{outcome=\"identity_mismatch\"}")
            .then_some(())
    })
    .await;
    let (status, _) = radar.get(&device_path("os::00D09E-SIM000002")).await;
    assert_eq!(
        status, 404,
        "a device that informed with another's credentials got a twin"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpe_authentication_with_digest_is_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let config = r#"
[cwmp]
allow_anonymous = false
shared_credentials = { username = "cpe", password = "s3cret" }
"#;
    let radar = Radar::start(dir.path(), Some(config));
    let _good = fleet(
        &radar,
        SimConfig {
            count: 1,
            acs_credentials: Some(("cpe".into(), "s3cret".into())),
            ..Default::default()
        },
    )
    .await;
    let _bad = fleet(
        &radar,
        SimConfig {
            count: 1,
            first_serial: 2,
            acs_credentials: Some(("cpe".into(), "wrong".into())),
            ..Default::default()
        },
    )
    .await;
    discovered(&radar, "os::00D09E-SIM000001").await;
    let metrics = eventually("an unauthorized attempt", WAIT, || async {
        let m = reqwest::get(radar.api_url("/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        m.contains("radar_cwmp_rejected_total{reason=\"unauthorized\"}")
            .then_some(m)
    })
    .await;
    assert!(metrics.contains("radar_cwmp_rejected_total{reason=\"unauthorized\"}"));
    let (status, _) = radar.get(&device_path("os::00D09E-SIM000002")).await;
    assert_eq!(
        status, 404,
        "a device with wrong credentials must not get a twin"
    );
    // Without any Authorization header the ACS challenges with Digest (and Basic).
    let r = reqwest::Client::new()
        .post(radar.acs_url())
        .body("<x/>")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let challenges: Vec<_> = r
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        challenges
            .iter()
            .any(|c| c.starts_with("Digest ") && c.contains("qop=\"auth\"")),
        "{challenges:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_beyond_the_limit_are_shed_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let config = r#"
[cwmp]
allow_anonymous = true
max_sessions = 1
retry_after_seconds = 7
session_idle_timeout = "30s"
"#;
    let radar = Radar::start(dir.path(), Some(config));
    let fixture = |name: &str| {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../tests/fixtures/cwmp")
                .join(name),
        )
        .unwrap()
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    // One session is left open (Inform answered, no empty POST yet).
    let first = client
        .post(radar.acs_url())
        .body(fixture("huawei_Inform_1.xml"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    // A second device cannot start a session while the first is in flight.
    let second = reqwest::Client::new()
        .post(radar.acs_url())
        .body(fixture("zyxel_Inform_1.xml"))
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 503);
    assert_eq!(second.headers().get("retry-after").unwrap(), "7");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_notification_updates_the_twin_without_polling() {
    let dir = tempfile::tempdir().unwrap();
    let radar = Radar::start(dir.path(), None);
    let fleet = fleet(
        &radar,
        SimConfig {
            count: 1,
            ..Default::default()
        },
    )
    .await;
    let device = "os::00D09E-SIM000001";
    discovered(&radar, device).await;
    let sim = fleet.device("SIM000001").unwrap();
    assert_eq!(sim.notification("Device.ManagementServer.URL"), Some(2));
    // A local change on a parameter under active notification: the device informs at once.
    assert!(sim.local_change("Device.ManagementServer.URL", "http://acs.example.net/"));
    let param = eventually("the change in the twin", WAIT, || async {
        let (_, v) = radar
            .get(&format!(
                "{}/params?prefix=Device.ManagementServer.URL",
                device_path(device)
            ))
            .await;
        let p = v["params"]["Device.ManagementServer.URL"].clone();
        (p["value"] == "http://acs.example.net/").then_some(p)
    })
    .await;
    assert_eq!(param["source"], "inform");
    let twin = radar.get(&device_path(device)).await.1;
    assert!(
        twin["last_inform_events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "4 VALUE CHANGE"),
        "{twin}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_active_notification_is_recorded_and_refreshed_instead() {
    let dir = tempfile::tempdir().unwrap();
    let radar = Radar::start(dir.path(), None);
    let _fleet = fleet(
        &radar,
        SimConfig {
            count: 1,
            refuse_active_notification: true,
            ..Default::default()
        },
    )
    .await;
    let twin = discovered(&radar, "os::00D09E-SIM000001").await;
    let refused = twin["notification_refused"].as_array().unwrap();
    assert!(
        refused
            .iter()
            .any(|p| p == "Device.DeviceInfo.SoftwareVersion"),
        "{twin}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_methods_attributes_and_scheduled_informs_as_operations() {
    let dir = tempfile::tempdir().unwrap();
    let radar = Radar::start(dir.path(), None);
    let fleet = fleet(
        &radar,
        SimConfig {
            count: 1,
            ..Default::default()
        },
    )
    .await;
    let device = "os::00D09E-SIM000001";
    discovered(&radar, device).await;
    let ops = format!("{}/operations", device_path(device));
    let run = |body: serde_json::Value| {
        let radar = &radar;
        let ops = ops.clone();
        async move {
            let (status, op) = radar.send(reqwest::Method::POST, &ops, body).await;
            assert_eq!(status, 202, "{op}");
            let id = op["id"].as_u64().unwrap();
            eventually(&format!("operation {id} done"), WAIT, || async {
                let v = radar.get(&format!("{ops}/{id}")).await.1;
                (v["status"] == "done").then_some(v)
            })
            .await
        }
    };
    let methods = run(serde_json::json!({"kind": "get_rpc_methods"})).await;
    assert!(
        methods["detail"]
            .as_str()
            .unwrap()
            .contains("ScheduleInform"),
        "{methods}"
    );
    let attrs = run(serde_json::json!({"kind": "get_attributes", "paths": ["Device.DeviceInfo.SoftwareVersion"]})).await;
    assert_eq!(attrs["detail"], "Device.DeviceInfo.SoftwareVersion=2");
    let sessions = fleet
        .device("SIM000001")
        .unwrap()
        .sessions
        .load(std::sync::atomic::Ordering::Relaxed);
    run(serde_json::json!({"kind": "schedule_inform", "delay_seconds": 1})).await;
    eventually("the scheduled inform", WAIT, || async {
        let twin = radar.get(&device_path(device)).await.1;
        twin["last_inform_events"]
            .as_array()?
            .iter()
            .any(|e| e == "3 SCHEDULED")
            .then_some(())
    })
    .await;
    assert!(
        fleet
            .device("SIM000001")
            .unwrap()
            .sessions
            .load(std::sync::atomic::Ordering::Relaxed)
            > sessions
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_expire_after_their_ttl_and_queued_ones_can_be_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let radar = Radar::start(dir.path(), None);
    let fleet = fleet(
        &radar,
        SimConfig {
            count: 1,
            ..Default::default()
        },
    )
    .await;
    let device = "os::00D09E-SIM000001";
    discovered(&radar, device).await;
    let sim = fleet.device("SIM000001").unwrap();
    sim.set_online(false);
    let ops = format!("{}/operations", device_path(device));
    let (status, op) = radar
        .send(
            reqwest::Method::POST,
            &ops,
            serde_json::json!({"kind": "reboot", "ttl": "1s"}),
        )
        .await;
    assert_eq!(status, 202, "{op}");
    assert!(op["expires_at"].is_string());
    let expiring = op["id"].as_u64().unwrap();
    let (_, op) = radar
        .send(
            reqwest::Method::POST,
            &ops,
            serde_json::json!({"kind": "factory_reset"}),
        )
        .await;
    let cancelled = op["id"].as_u64().unwrap();
    // Cancel the queued one; a second cancel conflicts.
    let r = radar
        .request(reqwest::Method::DELETE, &format!("{ops}/{cancelled}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["status"], "cancelled");
    let r = radar
        .request(reqwest::Method::DELETE, &format!("{ops}/{cancelled}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    // The TTL passes while the device is offline.
    eventually("expiry", WAIT, || async {
        let v = radar.get(&format!("{ops}/{expiring}")).await.1;
        (v["status"] == "expired").then_some(())
    })
    .await;
    // Back online: neither the expired nor the cancelled operation is delivered.
    let boots = sim.sessions.load(std::sync::atomic::Ordering::Relaxed);
    sim.set_online(true);
    assert!(sim.trigger(radar_sim::device::Trigger::Periodic));
    eventually("the next session", WAIT, || async {
        (sim.sessions.load(std::sync::atomic::Ordering::Relaxed) > boots).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let twin = radar.get(&device_path(device)).await.1;
    let events = twin["last_inform_events"].as_array().unwrap();
    assert!(
        !events.iter().any(|e| e == "M Reboot" || e == "0 BOOTSTRAP"),
        "{twin}"
    );
    assert_eq!(
        radar.get(&format!("{ops}/{expiring}")).await.1["status"],
        "expired"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_acs_serves_https_when_given_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let cert_pem = certified.cert.pem();
    std::fs::write(dir.path().join("acs.crt"), &cert_pem).unwrap();
    std::fs::write(
        dir.path().join("acs.key"),
        certified.signing_key.serialize_pem(),
    )
    .unwrap();
    let config = format!(
        "[cwmp]\nallow_anonymous = true\ntls = {{ cert = {:?}, key = {:?} }}\n",
        dir.path().join("acs.crt"),
        dir.path().join("acs.key")
    );
    let radar = Radar::start(dir.path(), Some(&config));
    let _fleet = SimFleet::start(SimConfig {
        acs_url: format!("https://{}/", radar.cwmp),
        acs_ca_pem: Some(cert_pem.into_bytes()),
        count: 1,
        periodic_interval: Duration::from_secs(3600),
        ..Default::default()
    })
    .await
    .unwrap();
    let twin = discovered(&radar, "os::00D09E-SIM000001").await;
    assert!(twin["counts"]["params"].as_u64().unwrap() > 200);
    // Plain HTTP to the TLS port gets no CWMP answer.
    let plain = reqwest::Client::new()
        .post(format!("http://{}/", radar.cwmp))
        .body("<x/>")
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
}
