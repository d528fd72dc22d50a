//! CPEs authenticated by TLS client certificate (issue 13): with `[cwmp] tls.client_ca`, a CPE
//! must present a certificate of that CA; the certificate stands in for HTTP authentication
//! and binds the CPE to the device its subject names, so it cannot inform as another device.

mod common;

use common::{device_path, signed_by_a_ca, Radar};
use std::path::Path;

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/cwmp")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

fn client(ca: &str, identity: Option<&(String, String)>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap());
    if let Some((cert, key)) = identity {
        builder = builder
            .identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpe_certificate_authenticates_it_as_its_own_device_only() {
    let dir = tempfile::tempdir().unwrap();
    // The Huawei fixture informs as 202BC1-8KA8WA1151100043, the ZyXEL one as EC43F6-EC43F69AF408.
    let (ca, issued) = signed_by_a_ca(&["127.0.0.1", "202BC1-8KA8WA1151100043"]);
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let (ca_file, cert, key) = (
        write("ca.pem", &ca),
        write("acs.pem", &issued[0].0),
        write("acs.key", &issued[0].1),
    );
    // No credentials at all: only certificates get in.
    let config = format!(
        "[cwmp]\nallow_anonymous = false\ntls = {{ cert = {cert:?}, key = {key:?}, client_ca = {ca_file:?} }}\n"
    );
    let radar = Radar::start(dir.path(), Some(&config));
    let acs = format!("https://127.0.0.1:{}/", radar.cwmp.port());
    let huawei = client(&ca, Some(&issued[1]));

    let r = huawei
        .post(&acs)
        .body(fixture("huawei_Inform_1.xml"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("InformResponse"));
    let (status, _) = radar.get(&device_path("os::202BC1-8KA8WA1151100043")).await;
    assert_eq!(status, 200, "the certified device's twin");

    // The same certificate informing as another device gets a Fault and no twin.
    let r = client(&ca, Some(&issued[1]))
        .post(&acs)
        .body(fixture("zyxel_Inform_1.xml"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("8001"));
    let (status, _) = radar.get(&device_path("os::EC43F6-EC43F69AF408")).await;
    assert_eq!(status, 404);

    // Without a certificate the TLS handshake fails.
    assert!(client(&ca, None)
        .post(&acs)
        .body(fixture("zyxel_Inform_1.xml"))
        .send()
        .await
        .is_err());
}
