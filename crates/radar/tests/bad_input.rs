//! Bad input on the ACS endpoint: each gets a clear error, nothing panics, and the server keeps
//! serving other devices. Also the API's error bodies.

mod common;

use common::{eventually, Radar};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CONFIG: &str = r#"
[cwmp]
allow_anonymous = true
session_idle_timeout = "1s"
max_body_bytes = 65536
"#;

/// Sends raw bytes and returns the status line and the response text.
async fn raw(addr: std::net::SocketAddr, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let mut chunk = [0u8; 8192];
        loop {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf);
                    if let Some(head_end) = text.find("\r\n\r\n") {
                        let len = text[..head_end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= head_end + 4 + len {
                            break;
                        }
                    }
                }
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn post(body: &[u8]) -> Vec<u8> {
    let mut r = format!("POST / HTTP/1.1\r\nHost: acs\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).into_bytes();
    r.extend_from_slice(body);
    r
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/cwmp")
            .join(name),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_cwmp_input_gets_clear_errors_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let radar = Radar::start(dir.path(), Some(CONFIG));

    // Malformed XML: a CWMP fault 8003 with HTTP 400.
    let (status, text) = raw(radar.cwmp, &post(b"<soap:Envelope><broken")).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("<FaultCode>8003</FaultCode>"), "{text}");

    // Entity-expansion bomb: refused without expansion.
    let bomb = br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]><lolz>&lol2;</lolz>"#;
    let (status, text) = raw(radar.cwmp, &post(bomb)).await;
    assert_eq!(status, 400);
    assert!(
        text.contains("document type declarations are not allowed"),
        "{text}"
    );

    // An envelope that is not SOAP 1.1.
    let soap12 =
        br#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>"#;
    let (status, text) = raw(radar.cwmp, &post(soap12)).await;
    assert_eq!(status, 400);
    assert!(text.contains("not a soap 1.1 envelope"), "{text}");

    // A body over the cap: 413, answered from the header alone, quickly.
    let started = Instant::now();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: acs\r\nContent-Length: {}\r\n\r\n",
        50 * 1024 * 1024
    );
    let (status, _) = raw(radar.cwmp, head.as_bytes()).await;
    assert_eq!(status, 413);
    assert!(started.elapsed() < Duration::from_secs(2));
    // Chunked bodies have no declared size: the cap applies while reading.
    let mut chunked =
        b"POST / HTTP/1.1\r\nHost: acs\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..20 {
        chunked.extend_from_slice(format!("{:x}\r\n", 8192).as_bytes());
        chunked.extend_from_slice(&[b'a'; 8192]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (status, _) = raw(radar.cwmp, &chunked).await;
    assert_eq!(status, 413);

    // A request that is not an Inform cannot start a session.
    let (status, text) = raw(
        radar.cwmp,
        &post(&fixture("generic_TransferComplete_1.xml")),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("<FaultCode>8001</FaultCode>"), "{text}");

    // A real device's chunked Inform (Thomson, chunk boundary inside an attribute) is accepted.
    let thomson = fixture("http/thomson_Inform-chunked_1.http");
    let (status, text) = raw(radar.cwmp, &thomson).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("InformResponse"), "{text}");

    // A stalled session: Inform, then silence. It is reaped after the idle timeout.
    let mut stalled = TcpStream::connect(radar.cwmp).await.unwrap();
    stalled
        .write_all(&post(&fixture("huawei_Inform_1.xml")))
        .await
        .unwrap();
    eventually("idle session reaped", Duration::from_secs(10), || async {
        let metrics = reqwest::get(radar.api_url("/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        metrics
            .lines()
            .any(|l| l.starts_with("radar_cwmp_sessions_total{outcome=\"idle_timeout\"}"))
            .then_some(())
    })
    .await;

    // Throughout, real devices were still served.
    for file in [
        "zyxel_Inform_1.xml",
        "mikrotik_Inform_1.xml",
        "sagemcom_Inform_1.xml",
    ] {
        let (status, text) = raw(radar.cwmp, &post(&fixture(file))).await;
        assert_eq!(status, 200, "{file}: {text}");
    }
    let (status, list) = radar.get("/api/v1/devices").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = list["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"os::E48D8C-XXXXXXXXXXXX"), "{ids:?}");
    assert!(ids.contains(&"os::00147F-CP0644JTHJ4"), "{ids:?}");
    assert!(
        !radar.log_text().contains("panicked"),
        "the server panicked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_errors_are_json() {
    let dir = tempfile::tempdir().unwrap();
    let radar = Radar::start(dir.path(), Some(CONFIG));
    let (status, v) = radar.get("/api/v1/devices/os::000000-NOPE").await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, v) = radar.get("/api/v1/devices?q=serial%20%3D").await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("invalid_query"))
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("position 8"),
        "{v}"
    );
    let (status, v) = radar.get("/api/v1/nope").await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let r = radar
        .request(
            reqwest::Method::PATCH,
            "/api/v1/devices/os::000000-X/params",
        )
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "bad_request");
    let (status, v) = radar
        .send(
            reqwest::Method::POST,
            "/api/v1/devices/os::000000-X/operations",
            serde_json::json!({"kind": "explode"}),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
}

/// Issue 13's attack: one request with thousands of nested parentheses used to overflow a
/// worker's stack and abort the node, with no token needed. Every route that parses a query, and
/// a body nested as deep, now gets a 400 with a JSON error, and the node keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_and_long_input_gets_a_400_and_the_node_keeps_answering() {
    let dir = tempfile::tempdir().unwrap();
    let radar = Radar::start(dir.path(), Some(CONFIG));
    let deep = "(".repeat(5000) + "serial = A" + &")".repeat(5000);
    let nots = "NOT%20".repeat(5000) + "serial%20%3D%20A";
    // Just over the 1024 comparisons a query may hold (a URI longer than 64 KiB is refused by
    // the HTTP layer before it reaches the parser).
    let long = vec!["s%3DA"; 1100].join("%20OR%20");
    for q in [deep.clone(), nots, long] {
        for route in ["/api/v1/devices", "/api/v1/query"] {
            let (status, v) = radar.get(&format!("{route}?q={q}")).await;
            assert_eq!(
                (status, v["error"]["code"].as_str()),
                (400, Some("invalid_query")),
                "{route}: {v}"
            );
        }
    }
    let (status, v) = radar.get(&format!("/api/v1/query?q={deep}")).await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nests deeper than 64"),
        "{status} {v}"
    );
    // A JSON body as deep: serde_json's own depth limit, answered as a bad request.
    let body = "[".repeat(5000) + &"]".repeat(5000);
    let r = radar
        .request(
            reqwest::Method::PATCH,
            "/api/v1/devices/os::000000-X/params",
        )
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "bad_request", "{v}");
    // Still alive, and still answering queries.
    let (status, v) = radar.get("/api/v1/query?q=serial%20%3D%20A").await;
    assert_eq!(status, 200, "{v}");
}

/// Issue 13: each limit has a config key, answers with a JSON error, and counts its hits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_limits_refuse_with_json_and_count_their_hits() {
    const VIEWER: &str = "radar-test-viewer-token-limits-0123456789";
    let config = format!(
        r#"
[cwmp]
allow_anonymous = true

[api]
max_body_bytes = 1024
max_query_nesting = 3
max_query_terms = 4

[auth]
requests_per_second = 2
burst = 5

[[auth.tokens]]
id = "noc"
role = "viewer"
sha256 = "{}"
"#,
        radar_node::auth::tokens::sha256_hex(VIEWER)
    );
    let dir = tempfile::tempdir().unwrap();
    let radar = Radar::start(dir.path(), Some(&config));

    let big = serde_json::json!({ "Device.WiFi.SSID.1.SSID": "x".repeat(2000) });
    let r = radar
        .request(
            reqwest::Method::PATCH,
            "/api/v1/devices/os::000000-X/params",
        )
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "payload_too_large", "{v}");

    let (status, v) = radar.get("/api/v1/query?q=((((serial%20%3D%20A))))").await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("deeper than 3"),
        "{v}"
    );
    let five = ["s%3DA"; 5].join("%20OR%20");
    let (status, v) = radar.get(&format!("/api/v1/devices?q={five}")).await;
    assert_eq!(status, 400, "{v}");

    // Three of the admin token's five went above; the rest of a quick burst meets the rate.
    let mut limited = None;
    for _ in 0..10 {
        let r = radar
            .request(reqwest::Method::GET, "/api/v1/query")
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("a burst over the token's rate gets 429");
    assert!(r.headers().contains_key("retry-after"));
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "rate_limited", "{v}");
    // Another token has its own rate.
    let r = reqwest::Client::new()
        .get(radar.api_url("/api/v1/query"))
        .bearer_auth(VIEWER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let metrics = radar.metrics().await;
    for limit in ["body", "rate", "query_nesting", "query_terms"] {
        assert!(
            metrics.contains(&format!("radar_api_limit_hits_total{{limit=\"{limit}\"}}")),
            "{limit} not counted"
        );
    }
}
