//! Connections per source address (issue 13): one host cannot take every slot of the ACS or
//! the USP WebSocket listener. Over `max_connections_per_address` a CWMP request gets 503 with
//! Retry-After and a WebSocket handshake 503; a slot given back is usable again; refusals are
//! counted by reason.

mod common;

use common::{eventually, Radar};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CONFIG: &str = r#"
[cwmp]
allow_anonymous = true
max_connections_per_address = 2

[usp]
max_connections_per_address = 1
"#;

/// An empty POST on `stream` (a CPE's "nothing more to say"): the status line's code.
async fn post(stream: &mut TcpStream) -> (u16, String) {
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: acs\r\nContent-Length: 0\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]).to_string();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_connection() {
    let dir = tempfile::tempdir().unwrap();
    let radar = Radar::start(dir.path(), Some(CONFIG));

    // Two connections from 127.0.0.1 are served; a third is turned away until one closes.
    let mut first = TcpStream::connect(radar.cwmp).await.unwrap();
    let mut second = TcpStream::connect(radar.cwmp).await.unwrap();
    assert_ne!(post(&mut first).await.0, 503);
    assert_ne!(post(&mut second).await.0, 503);
    let mut third = TcpStream::connect(radar.cwmp).await.unwrap();
    let (code, text) = post(&mut third).await;
    assert_eq!(code, 503, "{text}");
    assert!(text.to_ascii_lowercase().contains("retry-after:"), "{text}");
    drop(first);
    eventually("a slot given back", Duration::from_secs(10), || async {
        let mut again = TcpStream::connect(radar.cwmp).await.ok()?;
        (post(&mut again).await.0 != 503).then_some(())
    })
    .await;

    // One WebSocket per address: the second handshake gets 503.
    let tcp = TcpStream::connect(radar.usp).await.unwrap();
    let (_ws, _) = tokio_tungstenite::client_async(
        common::usp_ws_request("ws", radar.usp, "os::00D09E-LIM1"),
        tcp,
    )
    .await
    .expect("the first agent connection");
    let tcp = TcpStream::connect(radar.usp).await.unwrap();
    match tokio_tungstenite::client_async(
        common::usp_ws_request("ws", radar.usp, "os::00D09E-LIM2"),
        tcp,
    )
    .await
    {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 503)
        }
        other => panic!(
            "a second connection from the address: {:?}",
            other.map(|_| ())
        ),
    }

    let metrics = radar.metrics().await;
    for line in [
        "radar_cwmp_rejected_total{reason=\"per_address\"}",
        "radar_usp_rejected_total{reason=\"per_address\"}",
    ] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with(line) && !l.ends_with(" 0")),
            "{line} missing:\n{metrics}"
        );
    }
}

/// In a cluster devices reach nodes through routers (one address for many devices), so the
/// routers apply the limit with the devices' own addresses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_limits_connections_per_address() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("router.toml");
    std::fs::write(&config, "max_connections_per_address = 1\n").unwrap();
    let port = |_| format!("127.0.0.1:{}", common::free_port());
    let args: Vec<String> = vec![
        "--config".into(),
        config.to_string_lossy().into_owned(),
        "--seeds".into(),
        port(0),
        "--cwmp-listen".into(),
        port(1),
        "--usp-listen".into(),
        port(2),
        "--api-listen".into(),
        port(3),
    ];
    let router = Radar::start_router(dir.path(), &args);
    // The first connection is held (no node to route to yet, it waits for its request).
    let _held = TcpStream::connect(router.cwmp).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut second = TcpStream::connect(router.cwmp).await.unwrap();
    let (code, text) = post(&mut second).await;
    assert_eq!(code, 503, "{text}");
    assert!(text.contains("per_address"), "{text}");
    let metrics = reqwest::get(router.api_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("radar_router_refused_total") && l.contains("per_address")),
        "{metrics}"
    );
}
