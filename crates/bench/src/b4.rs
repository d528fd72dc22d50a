//! B4: ValueChange Notifies per second applied durably to twins, with the controller on one
//! core. Agents (the simulator's obuspa-like core, over real WebSockets) keep a window of
//! Notifies in flight with `send_resp`; a Notify counts when its NotifyResp arrives, which Radar
//! sends only after the twin change is flushed. The baseline is a raw WebSocket server on one
//! core echoing the same Records, driven by the same client in the same run.

use crate::b1::one_core;
use futures_util::{SinkExt, StreamExt};
use radar_sim::usp_agent::{AgentCore, UspSimConfig};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

const PATH: &str = "Device.WiFi.SSID.1.SSID";

struct Shared {
    acked: AtomicU64,
    ready: AtomicUsize,
    go: AtomicBool,
    stop: AtomicBool,
}

async fn connect(
    addr: SocketAddr,
    eid: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let url = radar_sim::usp_agent::ws::url(&addr.to_string(), eid);
    let mut request = url.into_client_request().expect("url");
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("v1.usp"));
    tokio_tungstenite::connect_async(request)
        .await
        .expect("connect")
        .0
}

/// A ValueChange Notify record, as the agent's subscription would produce it.
fn notify_record(core: &AgentCore, subscription: &str, n: u64) -> Vec<u8> {
    use radar_usp::proto::msg::{
        body, header, notify, request, Body, Header, Msg, Notify, Request,
    };
    let msg = Msg {
        header: Some(Header {
            msg_id: format!("n{n}"),
            msg_type: header::MsgType::Notify as i32,
        }),
        body: Some(Body {
            msg_body: Some(body::MsgBody::Request(Request {
                req_type: Some(request::ReqType::Notify(Notify {
                    subscription_id: subscription.into(),
                    send_resp: true,
                    notification: Some(notify::Notification::ValueChange(notify::ValueChange {
                        param_path: PATH.into(),
                        param_value: format!("v{n}"),
                    })),
                })),
            })),
        }),
    };
    core.record(&msg)
}

/// One agent: answers the controller (connect-time reads, subscriptions), then keeps `window`
/// ValueChange Notifies in flight. Notifies are encoded directly rather than through the
/// simulator's subscription matching, so the client stays cheaper than the server.
async fn agent(
    addr: SocketAddr,
    mut core: AgentCore,
    window: u64,
    echo: bool,
    shared: Arc<Shared>,
) {
    let mut ws = connect(addr, &core.endpoint_id.clone()).await;
    if !echo {
        ws.send(Message::Binary(core.websocket_connect().into()))
            .await
            .expect("send");
    }
    let mut subscription: Option<String> = echo.then(|| "radar-vc-bench".to_string());
    let mut ready = false;
    let mut in_flight = 0u64;
    let mut i = 0u64;
    loop {
        if subscription.is_none() {
            subscription = core
                .model
                .params
                .iter()
                .find(|(k, v)| {
                    k.starts_with("Device.LocalAgent.Subscription.")
                        && k.ends_with(".ReferenceList")
                        && v.value == "Device.WiFi.SSID."
                })
                .and_then(|(k, _)| {
                    core.param(&k.replace(".ReferenceList", ".ID"))
                        .map(str::to_owned)
                });
        }
        if !ready && subscription.is_some() {
            ready = true;
            shared.ready.fetch_add(1, Ordering::Relaxed);
        }
        if ready && shared.go.load(Ordering::Relaxed) && !shared.stop.load(Ordering::Relaxed) {
            let sub = subscription.as_deref().unwrap_or_default();
            while in_flight < window {
                i += 1;
                ws.feed(Message::Binary(notify_record(&core, sub, i).into()))
                    .await
                    .expect("feed");
                in_flight += 1;
            }
            ws.flush().await.expect("flush");
        }
        let frame = tokio::select! {
            f = ws.next() => f,
            _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
        };
        let Some(Ok(Message::Binary(bytes))) = frame else {
            if shared.stop.load(Ordering::Relaxed) {
                return;
            }
            continue;
        };
        if echo {
            in_flight = in_flight.saturating_sub(1);
            shared.acked.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let before = core.notify_resps;
        for r in core.handle_record(&bytes) {
            ws.send(Message::Binary(r.into())).await.expect("send");
        }
        let acks = core.notify_resps - before;
        in_flight = in_flight.saturating_sub(acks);
        if ready {
            shared.acked.fetch_add(acks, Ordering::Relaxed);
        }
    }
}

/// Drives `agents` connections; returns acknowledged Notifies (or echoes) per second.
fn drive(
    addr: SocketAddr,
    agents: usize,
    window: u64,
    seconds: f64,
    echo: bool,
) -> anyhow::Result<f64> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let shared = Arc::new(Shared {
            acked: AtomicU64::new(0),
            ready: AtomicUsize::new(0),
            go: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let config = UspSimConfig {
            count: agents,
            serial_prefix: if echo { "ECHO".into() } else { "B4".into() },
            ..Default::default()
        };
        let mut tasks = Vec::new();
        for core in config.cores() {
            tasks.push(tokio::spawn(agent(
                addr,
                core,
                window,
                echo,
                shared.clone(),
            )));
        }
        let start = Instant::now();
        while shared.ready.load(Ordering::Relaxed) < agents {
            anyhow::ensure!(
                start.elapsed() < Duration::from_secs(300),
                "agents did not get ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Let the connect-time reads finish so only Notifies are measured.
        tokio::time::sleep(Duration::from_secs(2)).await;
        shared.go.store(true, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = shared.acked.load(Ordering::Relaxed);
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        let rate =
            (shared.acked.load(Ordering::Relaxed) - before) as f64 / t0.elapsed().as_secs_f64();
        shared.stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.abort();
        }
        Ok(rate)
    })
}

fn echo_server() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    one_core("ws-echo", move || async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                // tungstenite's callback signature, not ours to shrink.
                #[allow(clippy::result_large_err)]
                let callback = |_: &tokio_tungstenite::tungstenite::handshake::server::Request,
                                mut response: tokio_tungstenite::tungstenite::handshake::server::Response| {
                    response.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static("v1.usp"));
                    Ok(response)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
                    return;
                };
                while let Some(Ok(frame)) = ws.next().await {
                    if let Message::Binary(b) = frame {
                        if ws.send(Message::Binary(b)).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    Ok(addr)
}

fn radar_server(data_dir: std::path::PathBuf) -> anyhow::Result<SocketAddr> {
    let mut config = radar_node::config::NodeConfig {
        data_dir,
        ..Default::default()
    };
    // Every simulated agent connects from the one loopback address.
    config.usp.max_connections_per_address = 0;
    Ok(crate::b1::node_on_one_core("usp-server", config)?.usp)
}

pub fn run(agents: usize, window: u64, seconds: f64) -> anyhow::Result<()> {
    let dir = tempfile::tempdir_in(std::env::current_dir()?)?;
    let echo = echo_server()?;
    let baseline = drive(echo, agents, window, seconds, true)?;
    let radar = radar_server(dir.path().to_owned())?;
    let rate = drive(radar, agents, window, seconds, false)?;
    println!("\n## B4: ValueChange Notifies/s, server on one core ({agents} agents over WebSocket, {window} in flight each, {seconds}s)\n");
    println!("| server | per second | ratio to baseline |\n| --- | ---: | ---: |");
    println!("| baseline: raw WebSocket echo of the same records | {baseline:.0} | 100% |");
    println!(
        "| radar: Notify applied to the twin, flushed, then NotifyResp | {rate:.0} | {:.0}% |",
        100.0 * rate / baseline
    );
    Ok(())
}
