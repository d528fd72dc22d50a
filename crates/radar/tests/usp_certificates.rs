//! USP agents authenticated by certificate (issue 13): with `[usp] tls.client_ca`, an agent
//! must present a certificate of that CA, and connects only as the Endpoint ID its certificate
//! names (subjectAltName URI `urn:bbf:usp:id:<eid>`, TR-369 Security); the controller's own
//! certificate is checked for its Endpoint ID at start.

mod common;

use common::{signed_by_a_ca, Radar};
use rustls_pki_types::ServerName;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const AGENT: &str = "os::00D09E-CERT00001";
const OTHER: &str = "os::00D09E-CERT00002";

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn start(dir: &Path, controller_sans: &str) -> (Radar, String, Vec<(String, String)>) {
    let (ca, issued) = signed_by_a_ca(&[
        controller_sans,
        &format!("agent-one|urn:bbf:usp:id:{AGENT}"),
        "agent-without-eid.example",
    ]);
    let ca_path = write(dir, "ca.pem", &ca);
    let cert = write(dir, "usp.crt", &issued[0].0);
    let key = write(dir, "usp.key", &issued[0].1);
    let config = format!(
        "[cwmp]\nallow_anonymous = true\n\n[usp]\ntls = {{ cert = {cert:?}, key = {key:?}, client_ca = {ca_path:?} }}\n"
    );
    (Radar::start(dir, Some(&config)), ca, issued)
}

/// A `wss://` handshake as `eid`, presenting `identity` (certificate, key) if given: the
/// HTTP status of the refusal, or the open socket.
async fn connect(
    radar: &Radar,
    ca: &str,
    identity: Option<&(String, String)>,
    eid: &str,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
    String,
> {
    let client = common::tls_client(ca, identity);
    let tcp = tokio::net::TcpStream::connect(radar.usp).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(client))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .map_err(|e| format!("tls: {e}"))?;
    let request = common::usp_ws_request("wss", radar.usp, eid);
    let handshake = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::client_async(request, tls),
    )
    .await
    .map_err(|_| "handshake timed out".to_string())?;
    match handshake {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(format!("http {}", response.status().as_u16()))
        }
        // TLS 1.3: a refused client certificate surfaces on the first read.
        Err(e) => Err(format!("tls: {e}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_connects_only_as_the_endpoint_its_certificate_names() {
    let dir = tempfile::tempdir().unwrap();
    let (radar, ca, issued) = start(dir.path(), "127.0.0.1|urn:bbf:usp:id:self::radar");
    let (agent_one, no_eid) = (&issued[1], &issued[2]);

    let mut ws = connect(&radar, &ca, Some(agent_one), AGENT)
        .await
        .expect("the agent its certificate names");
    use futures_util::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::Binary(
        radar_usp::record::encode_websocket_connect("self::radar", AGENT).into(),
    ))
    .await
    .unwrap();
    common::eventually("the agent's link", Duration::from_secs(10), || async {
        let (status, _) = radar.get(&common::device_path(AGENT)).await;
        (status == 200).then_some(())
    })
    .await;

    assert_eq!(
        connect(&radar, &ca, Some(agent_one), OTHER).await.err(),
        Some("http 403".to_string()),
        "another endpoint with agent one's certificate"
    );
    assert_eq!(
        connect(&radar, &ca, Some(no_eid), OTHER).await.err(),
        Some("http 403".to_string()),
        "a certificate that names no endpoint"
    );
    let anonymous = connect(&radar, &ca, None, OTHER).await;
    assert!(
        anonymous.as_ref().is_err_and(|e| e.starts_with("tls")),
        "no client certificate: {:?}",
        anonymous.err()
    );
    let (status, _) = radar.get(&common::device_path(OTHER)).await;
    assert_eq!(status, 404, "no twin for a refused agent");
    assert!(
        !radar.log_text().contains("does not name this controller"),
        "the controller's certificate names it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_certificate_without_its_endpoint_id_is_reported_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (radar, _, _) = start(dir.path(), "127.0.0.1");
    common::eventually(
        "the certificate warning",
        Duration::from_secs(10),
        || async {
            radar
                .log_text()
                .contains("does not name this controller's endpoint id")
                .then_some(())
        },
    )
    .await;
}
