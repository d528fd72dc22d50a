//! TLS on the API (issue 13): the API answers HTTPS with the configured certificate, the CLI
//! talks to it with `--ca-file`, and SIGHUP reloads the certificate: new handshakes get the new
//! one while a connection already open keeps working.

mod common;

use common::{Radar, TEST_TOKEN};
use std::process::Command;
use std::time::Duration;

/// A self-signed certificate for 127.0.0.1: (certificate PEM, key PEM).
fn certificate() -> (String, String) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    (certified.cert.pem(), certified.signing_key.serialize_pem())
}

fn client_trusting(cert_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

async fn query(client: &reqwest::Client, radar: &Radar) -> Result<u16, reqwest::Error> {
    client
        .get(format!("https://{}/api/v1/query", radar.api))
        .bearer_auth(TEST_TOKEN)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map(|r| r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_serves_https_and_a_sighup_reloads_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (dir.path().join("api.crt"), dir.path().join("api.key"));
    let (first_cert, first_key) = certificate();
    std::fs::write(&cert_file, &first_cert).unwrap();
    std::fs::write(&key_file, &first_key).unwrap();
    let config = format!(
        "[cwmp]\nallow_anonymous = true\n\n[api]\ntls = {{ cert = {cert_file:?}, key = {key_file:?} }}\n"
    );
    let radar = Radar::start(dir.path(), Some(&config));

    let first = client_trusting(&first_cert);
    assert_eq!(query(&first, &radar).await.unwrap(), 200);
    // Plain HTTP on the TLS port gets no API answer.
    let plain = reqwest::Client::new()
        .get(format!("http://{}/api/v1/query", radar.api))
        .bearer_auth(TEST_TOKEN)
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());

    // The CLI over HTTPS, trusting the certificate.
    std::fs::write(dir.path().join("ca.pem"), &first_cert).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_radar"))
        .args(["query", "", "--api", &format!("https://{}", radar.api)])
        .arg("--ca-file")
        .arg(dir.path().join("ca.pem"))
        .env("RADAR_TOKEN", TEST_TOKEN)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A new certificate in the same files, then SIGHUP.
    let (second_cert, second_key) = certificate();
    std::fs::write(&cert_file, &second_cert).unwrap();
    std::fs::write(&key_file, &second_key).unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &radar.child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let second = client_trusting(&second_cert);
    common::eventually("the new certificate", Duration::from_secs(10), || async {
        (query(&second, &radar).await.ok() == Some(200)).then_some(())
    })
    .await;
    // New handshakes no longer get the old certificate...
    assert!(query(&client_trusting(&first_cert), &radar).await.is_err());
    // ...while the connection the first client kept open still works.
    assert_eq!(query(&first, &radar).await.unwrap(), 200);
    assert!(radar.log_text().contains("certificate reloaded"));
}

/// TR-369 agents over `wss://`: the USP WebSocket MTP serves TLS with `[usp] tls`, the
/// handshake answers `v1.usp`, the agent's link comes up; plain `ws://` on that port gets none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usp_agents_connect_over_wss() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate();
    std::fs::write(dir.path().join("usp.crt"), &cert).unwrap();
    std::fs::write(dir.path().join("usp.key"), &key).unwrap();
    let config = format!(
        "[cwmp]\nallow_anonymous = true\n\n[usp]\ntls = {{ cert = {:?}, key = {:?} }}\n",
        dir.path().join("usp.crt"),
        dir.path().join("usp.key")
    );
    let radar = Radar::start(dir.path(), Some(&config));
    let request = || common::usp_ws_request("ws", radar.usp, "os::00D09E-WSS000001");
    let client = common::tls_client(&cert, None);
    let tcp = tokio::net::TcpStream::connect(radar.usp).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client))
        .connect(
            rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    let (mut ws, response) = tokio_tungstenite::client_async(request(), tls)
        .await
        .unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "v1.usp");
    // The agent's first record, as obuspa sends it: a WebSocketConnect.
    use futures_util::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::Binary(
        radar_usp::record::encode_websocket_connect("self::radar", "os::00D09E-WSS000001").into(),
    ))
    .await
    .unwrap();
    common::eventually(
        "the agent's link over wss",
        Duration::from_secs(10),
        || async {
            radar
                .metrics()
                .await
                .lines()
                .any(|l| l.trim() == "radar_usp_connections 1")
                .then_some(())
        },
    )
    .await;

    let tcp = tokio::net::TcpStream::connect(radar.usp).await.unwrap();
    let plain = tokio::time::timeout(
        Duration::from_secs(15),
        tokio_tungstenite::client_async(request(), tcp),
    )
    .await;
    assert!(
        !matches!(plain, Ok(Ok(_))),
        "a plain ws:// handshake on the wss port"
    );
}

/// USP over MQTT to a broker that speaks TLS only and requires a client certificate: Radar
/// subscribes with `mqtts://` and `[usp.mqtt.tls]`; without its certificate it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usp_over_mqtt_reaches_a_tls_broker_with_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, issued) = common::signed_by_a_ca(&["127.0.0.1", "radar-node"]);
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let ca_file = file("ca.pem", &ca);
    let (broker_cert, broker_key) = (
        file("broker.pem", &issued[0].0),
        file("broker.key", &issued[0].1),
    );
    let (client_cert, client_key) = (
        file("client.pem", &issued[1].0),
        file("client.key", &issued[1].1),
    );
    let broker = common::Mosquitto::start_tls(dir.path(), &ca_file, &broker_cert, &broker_key);
    let url = format!("mqtts://127.0.0.1:{}", broker.port);

    let config = format!(
        "[cwmp]\nallow_anonymous = true\n\n[usp.mqtt]\nurl = {url:?}\ntls = {{ ca = {ca_file:?}, cert = {client_cert:?}, key = {client_key:?} }}\n"
    );
    let radar = Radar::start(&dir.path().join("with-cert"), Some(&config));
    radar.wait_mqtt_subscribed().await;

    let without = format!(
        "[cwmp]\nallow_anonymous = true\n\n[usp.mqtt]\nurl = {url:?}\ntls = {{ ca = {ca_file:?} }}\n"
    );
    let refused = Radar::start(&dir.path().join("without-cert"), Some(&without));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        refused
            .metrics()
            .await
            .lines()
            .any(|l| l.trim() == "radar_usp_mqtt_connected 0"),
        "a client without a certificate got in"
    );
}
