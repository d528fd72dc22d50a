//! Bad input on the USP WebSocket MTP: each gets a clear close or error, and the controller keeps
//! serving a well-behaved agent throughout. Covers garbage and truncated records, an oversize
//! frame, a wrong `to_id`, a text frame, a handshake without `v1.usp` or without an eid, session
//! context (answered with a Disconnect record), and 1,000 connects and disconnects.

mod common;

use common::{device_path, eventually, Radar};
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use radar_sim::usp_agent::{self, Mtp, UspSimConfig};
use radar_usp::proto::record::{record::RecordType, Record, SessionContextRecord};
use radar_usp::record::{self, RecordKind};
use reqwest::Method;
use serde_json::json;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const WAIT: Duration = Duration::from_secs(20);
const CONTROLLER: &str = "self::radar";

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn connect(radar: &Radar, eid: &str) -> Ws {
    let mut request = format!("ws://{}/usp?eid={eid}", radar.usp)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("v1.usp"));
    let (ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(
        response.headers().get("sec-websocket-protocol").unwrap(),
        "v1.usp"
    );
    ws
}

/// Reads until the server closes; returns the close code.
async fn close_code(ws: &mut Ws) -> Option<CloseCode> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("server closes in time");
        match frame {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
            Some(Ok(_)) => continue,
            None | Some(Err(_)) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_usp_input_gets_clear_answers_and_others_keep_being_served() {
    let dir = tempfile::tempdir().unwrap();
    let radar = Radar::start_with(dir.path(), Some("[usp]\nmax_record_bytes = 65536\n"), &[]);
    let good = usp_agent::start(
        &UspSimConfig::default(),
        &Mtp::WebSocket(radar.usp.to_string()),
    );
    let good_id = good[0].endpoint_id.clone();
    eventually("good agent discovered", WAIT, || async {
        let (s, v) = radar.get(&device_path(&good_id)).await;
        (s == 200 && v["online"] == true && !v["discovered_at"].is_null()).then_some(())
    })
    .await;

    // A garbage frame and a truncated protobuf: closed with 1007 (invalid payload).
    let mut ws = connect(&radar, "os::BAD-1").await;
    ws.send(Message::Binary(vec![0xff, 0x00, 0x13, 0x37].into()))
        .await
        .unwrap();
    assert_eq!(close_code(&mut ws).await, Some(CloseCode::Invalid));
    let mut ws = connect(&radar, "os::BAD-2").await;
    let full = record::encode_websocket_connect(CONTROLLER, "os::BAD-2");
    ws.send(Message::Binary(full[..full.len() - 4].to_vec().into()))
        .await
        .unwrap();
    assert_eq!(close_code(&mut ws).await, Some(CloseCode::Invalid));

    // An oversize frame: closed with 1009 (message too big), before it is buffered whole.
    let mut ws = connect(&radar, "os::BAD-3").await;
    let _ = ws.send(Message::Binary(vec![0u8; 200 * 1024].into())).await;
    assert_eq!(close_code(&mut ws).await, Some(CloseCode::Size));

    // A text frame: closed with 1003 (unsupported data).
    let mut ws = connect(&radar, "os::BAD-4").await;
    ws.send(Message::Text("hello".into())).await.unwrap();
    assert_eq!(close_code(&mut ws).await, Some(CloseCode::Unsupported));

    // A record for another controller is ignored (as agents ignore ours): no answer, no twin.
    let mut ws = connect(&radar, "os::BAD-5").await;
    ws.send(Message::Binary(
        record::encode_websocket_connect("self::someone-else", "os::BAD-5").into(),
    ))
    .await
    .unwrap();
    let quiet = tokio::time::timeout(Duration::from_millis(700), ws.next()).await;
    assert!(
        quiet.is_err(),
        "no answer to a record for another controller"
    );
    assert_eq!(radar.get(&device_path("os::BAD-5")).await.0, 404);

    // Session context is not supported: answered with a Disconnect record (TR-369 §6.1).
    let session_context = Record {
        version: "1.3".into(),
        to_id: CONTROLLER.into(),
        from_id: "os::BAD-6".into(),
        record_type: Some(RecordType::SessionContext(SessionContextRecord {
            session_id: 7,
            ..Default::default()
        })),
        ..Default::default()
    }
    .encode_to_vec();
    let mut ws = connect(&radar, "os::BAD-6").await;
    ws.send(Message::Binary(session_context.into()))
        .await
        .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let Message::Binary(bytes) = answer else {
        panic!("expected a record, got {answer:?}")
    };
    let disconnect = record::decode(&bytes, "os::BAD-6", 1 << 20).unwrap();
    assert!(
        matches!(
            disconnect.kind,
            RecordKind::Disconnect {
                reason_code: 7106,
                ..
            }
        ),
        "{disconnect:?}"
    );

    // Handshakes without v1.usp, or without an endpoint id, are refused with 400.
    for (url, protocol) in [
        (
            format!("ws://{}/usp?eid=os::BAD-7", radar.usp),
            Some("v2.other"),
        ),
        (format!("ws://{}/usp?eid=os::BAD-7", radar.usp), None),
        (format!("ws://{}/usp", radar.usp), Some("v1.usp")),
    ] {
        let mut request = url.into_client_request().unwrap();
        if let Some(p) = protocol {
            request
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(p));
        }
        match tokio_tungstenite::connect_async(request).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 400);
                let body =
                    String::from_utf8_lossy(response.body().as_deref().unwrap_or(&[])).into_owned();
                assert!(body.contains("\"error\""), "{body}");
            }
            other => panic!("expected a refused handshake, got {other:?}"),
        }
    }

    // 1,000 connects and disconnects in a loop, half announcing themselves first.
    for i in 0..1000 {
        let eid = format!("os::CHURN-{}", i % 50);
        let mut ws = connect(&radar, &eid).await;
        if i % 2 == 0 {
            ws.send(Message::Binary(
                record::encode_websocket_connect(CONTROLLER, &eid).into(),
            ))
            .await
            .unwrap();
        }
        let _ = ws.close(None).await;
    }

    // Through all of that the good agent is still served at once.
    let (status, op) = radar
        .send(
            Method::PATCH,
            &format!("{}/params", device_path(&good_id)),
            json!({"Device.WiFi.SSID.1.SSID": "still-served"}),
        )
        .await;
    assert_eq!(status, 202, "{op}");
    let id = op["id"].as_u64().unwrap();
    eventually("write to the good agent", WAIT, || async {
        let v = radar
            .get(&format!("{}/operations/{id}", device_path(&good_id)))
            .await
            .1;
        (v["status"] == "done").then_some(())
    })
    .await;
    assert_eq!(
        good[0].param("Device.WiFi.SSID.1.SSID").as_deref(),
        Some("still-served")
    );
    // Churned connections leave no agent marked online.
    eventually("churned agents offline", WAIT, || async {
        let (_, q) = radar
            .get("/api/v1/query?q=online%20%3D%20true%20AND%20id%20LIKE%20%22os::CHURN*%22")
            .await;
        (q["total"] == 0).then_some(())
    })
    .await;
    let metrics = reqwest::get(radar.api_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("radar_usp_rejected_total{reason=\"text_frame\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("radar_usp_connections 1"),
        "only the good agent remains connected"
    );
}
