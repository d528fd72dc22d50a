//! Connection requests to CPEs behind a NAT (issue: field interop §4). The simulated device's
//! ConnectionRequestURL reaches nothing, as behind a real NAT; it learns its UDP binding from
//! Radar's STUN server and accepts only correctly signed UDP connection requests (TR-069
//! Annex G). Its periodic inform is an hour away, so only a delivery within seconds proves a
//! connection request crossed the NAT.

mod common;

use common::servers::Prosody;
use common::{device_path, eventually, Radar};
use radar_sim::{NatConfig, SimConfig, SimFleet, SimXmpp};
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
const A: &str = "os::00D09E-SIM000001";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_reaches_a_device_behind_a_nat_by_udp_connection_request() {
    let dir = tempfile::tempdir().unwrap();
    let radar = Radar::start(dir.path(), None);
    let stun = radar.stun.expect("radar up serves STUN by default");
    let fleet = SimFleet::start(SimConfig {
        acs_url: radar.acs_url(),
        periodic_interval: Duration::from_secs(3600),
        behind_nat: Some(NatConfig {
            stun_server: Some(stun),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    let device = fleet.device("SIM000001").unwrap().clone();
    let mapped = eventually(
        "the device's binding, from radar's STUN server",
        WAIT,
        || async {
            device
                .param("Device.ManagementServer.UDPConnectionRequestAddress")
                .filter(|a| !a.is_empty())
        },
    )
    .await;
    // Bootstrap done: radar's own credentials are on the device, and the twin holds the
    // binding the device reported.
    bootstrapped_with(
        &radar,
        "Device.ManagementServer.UDPConnectionRequestAddress",
        &mapped,
    )
    .await;
    let sessions_before = device.sessions.load(Ordering::Relaxed);
    write_provisioning_code(&radar, "behind-nat", "the write delivered through the NAT").await;
    assert_eq!(
        device
            .param("Device.DeviceInfo.ProvisioningCode")
            .as_deref(),
        Some("behind-nat")
    );
    assert!(device.sessions.load(Ordering::Relaxed) > sessions_before);
    assert!(device.udp_requests_accepted.load(Ordering::Relaxed) >= 1);
    assert_eq!(
        device.udp_requests_rejected.load(Ordering::Relaxed),
        0,
        "every copy was signed with the device's current credentials"
    );
    let v = last_outcome(&radar).await;
    assert_eq!(v["connection_request"]["last"]["outcome"], "sent", "{v}");
    assert_eq!(v["connection_request"]["last"]["detail"], "via udp", "{v}");
    // A new binding reaches Radar at once: the address is under active notification, set
    // after discovery showed the device has it (and without the XMPP one it lacks).
    assert_eq!(v["notifications_configured"], true, "{v}");
    assert_eq!(
        device.notification("Device.ManagementServer.UDPConnectionRequestAddress"),
        Some(2)
    );
    let metrics = radar.metrics().await;
    for line in [
        "radar_connection_request_attempts_total{mechanism=\"udp\",result=\"sent\"}",
        "radar_stun_messages_total{kind=\"connection_request_binding\"}",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    // The device said NATDetected: its URL was not tried at all.
    assert!(
        !metrics.contains("mechanism=\"http\""),
        "http tried for a device behind a NAT:\n{metrics}"
    );
    fleet.stop();
}

/// Annex K: Radar and the device are both clients of a real XMPP server (prosody); the device's
/// ConnectionRequestURL reaches nothing, and it accepts a connection request only from the
/// JID it allows, with its current credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_reaches_a_device_behind_a_nat_by_xmpp_connection_request() {
    let dir = tempfile::tempdir().unwrap();
    let prosody = Prosody::start(dir.path());
    write_over_xmpp(dir.path(), &prosody, "allow_plaintext_auth = true\n", None).await;
}

/// The same through a prosody that requires encryption: Radar and the device upgrade with
/// STARTTLS (each trusting the server's CA) before authenticating; a Radar without the CA
/// refuses to send its password in clear and never connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xmpp_connection_requests_go_over_starttls_when_the_server_requires_it() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = certified.cert.pem();
    let dir = tempfile::tempdir().unwrap();
    let prosody = Prosody::start_tls(dir.path(), &cert, &certified.signing_key.serialize_pem());
    let ca = dir.path().join("xmpp-ca.pem");
    std::fs::write(&ca, &cert).unwrap();

    let without_ca = Radar::start(&dir.path().join("no-ca"), Some(&xmpp_config(&prosody, "")));
    eventually("radar refusing the unencrypted server", WAIT, || async {
        without_ca
            .log_text()
            .contains("xmpp server requires TLS")
            .then_some(())
    })
    .await;
    assert!(without_ca
        .metrics()
        .await
        .contains("radar_xmpp_connected 0"));
    drop(without_ca);

    write_over_xmpp(
        dir.path(),
        &prosody,
        &format!("tls_ca_file = {ca:?}\n"),
        Some(cert.into_bytes()),
    )
    .await;
}

fn xmpp_config(prosody: &Prosody, extra: &str) -> String {
    format!(
        r#"[cwmp]
allow_anonymous = true

[connection_request.xmpp]
server = "{}"
jid = "radar@localhost"
password = "radar-secret"
{extra}"#,
        prosody.address()
    )
}

/// Radar and one device behind a NAT on `prosody`; an operator write reaches the device by an
/// XMPP connection request.
async fn write_over_xmpp(
    dir: &std::path::Path,
    prosody: &Prosody,
    radar_xmpp: &str,
    device_tls_ca: Option<Vec<u8>>,
) {
    prosody.register("radar", "radar-secret");
    prosody.register("sim000001", "cpe-secret");
    let radar = Radar::start(dir, Some(&xmpp_config(prosody, radar_xmpp)));
    eventually("radar's xmpp session", WAIT, || async {
        radar
            .metrics()
            .await
            .contains("radar_xmpp_connected 1")
            .then_some(())
    })
    .await;
    let fleet = SimFleet::start(SimConfig {
        acs_url: radar.acs_url(),
        periodic_interval: Duration::from_secs(3600),
        behind_nat: Some(NatConfig {
            xmpp: Some(SimXmpp {
                server: prosody.address(),
                domain: "localhost".into(),
                password: "cpe-secret".into(),
                allowed: vec!["radar@localhost".into()],
                tls_ca_pem: device_tls_ca,
            }),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    let device = fleet.device("SIM000001").unwrap().clone();
    bootstrapped_with(
        &radar,
        "Device.ManagementServer.ConnReqJabberID",
        "sim000001@localhost/",
    )
    .await;
    write_provisioning_code(&radar, "over-xmpp", "the write delivered through XMPP").await;
    assert_eq!(
        device
            .param("Device.DeviceInfo.ProvisioningCode")
            .as_deref(),
        Some("over-xmpp")
    );
    assert_eq!(device.xmpp_requests_accepted.load(Ordering::Relaxed), 1);
    assert_eq!(device.xmpp_requests_rejected.load(Ordering::Relaxed), 0);
    let v = last_outcome(&radar).await;
    assert_eq!(v["connection_request"]["last"]["detail"], "via xmpp", "{v}");
    assert!(radar
        .metrics()
        .await
        .contains("radar_connection_request_attempts_total{mechanism=\"xmpp\",result=\"sent\"} 1"));
    fleet.stop();
}

/// Waits until bootstrap is done (Radar's own connection-request credentials on the device)
/// and the twin's `param` holds `needle`, the way around the NAT the device reported.
async fn bootstrapped_with(radar: &Radar, param: &str, needle: &str) {
    eventually(&format!("bootstrap with {param}"), WAIT, || async {
        let v = radar.get(&device_path(A)).await.1;
        let params = radar
            .get(&format!("{}/params?prefix={param}", device_path(A)))
            .await
            .1;
        (v["connection_request"]["credentials_source"] == "radar"
            && params.to_string().contains(needle))
        .then_some(())
    })
    .await;
}

/// An operator write to the device, waited for until it is done (its periodic inform is an
/// hour away, so only a connection request delivers it in time).
async fn write_provisioning_code(radar: &Radar, value: &str, what: &str) {
    let (status, op) = radar
        .send(
            Method::PATCH,
            &format!("{}/params", device_path(A)),
            json!({"Device.DeviceInfo.ProvisioningCode": value}),
        )
        .await;
    assert_eq!(status, 202, "{op}");
    let id = op["id"].as_u64().unwrap();
    eventually(what, WAIT, || async {
        let v = radar
            .get(&format!("{}/operations/{id}", device_path(A)))
            .await
            .1;
        (v["status"] == "done").then_some(())
    })
    .await;
}

/// The device's summary once the connection request's outcome is on its twin.
async fn last_outcome(radar: &Radar) -> Value {
    eventually("the outcome on the twin", WAIT, || async {
        let v = radar.get(&device_path(A)).await.1;
        (!v["connection_request"]["last"].is_null()).then_some(v)
    })
    .await
}

/// `radar up` serves STUN by default, but a taken port (another STUN or TURN server on the
/// machine) must not keep the try-it-now command from starting; a config that asks for STUN
/// explicitly does not start without it.
#[test]
fn radar_up_starts_without_stun_when_its_default_port_is_taken() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let up = |name: &str, stun: &str| {
        let data = dir.path().join(name);
        std::fs::create_dir_all(&data).unwrap();
        let config = data.join("radar.toml");
        std::fs::write(
            &config,
            format!(
                "[cwmp]\nallow_anonymous = true\n\n[stun]\nlisten = \"127.0.0.1:{port}\"\n{stun}"
            ),
        )
        .unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_radar"));
        cmd.arg("up").arg("--data-dir").arg(data.join("data"));
        for flag in [
            "--cwmp-listen",
            "--api-listen",
            "--usp-listen",
            "--grpc-listen",
        ] {
            cmd.args([flag, "127.0.0.1:0"]);
        }
        cmd.arg("--config").arg(&config);
        (cmd, data)
    };
    let (cmd, data) = up("default", "");
    let log = data.join("radar.log");
    let radar = Radar::launch(cmd, &data, log);
    assert_eq!(radar.stun, None, "no STUN on a taken port");
    assert!(
        radar.log_text().contains("STUN not served"),
        "{}",
        radar.log_text()
    );
    drop(radar);

    let (mut cmd, _) = up("required", "enabled = true\n");
    let out = cmd.output().unwrap();
    assert!(
        !out.status.success(),
        "started without the STUN it was told to serve"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("binding stun"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(taken);
}
