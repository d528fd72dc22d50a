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
