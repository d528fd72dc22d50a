//! B1: periodic-inform sessions per second with the ACS on one core. A session is Inform →
//! InformResponse (sent only after the twin write is flushed), empty POST → 204. The baseline is
//! a bare hyper server on one core answering the same two POSTs with canned bodies, driven by
//! the same client in the same run.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use radar_cwmp::rpc::get_parameter_values::ParameterValue;
use radar_cwmp::rpc::inform::{DeviceIdStruct, EventStruct, Inform, InformResponse};
use radar_cwmp::{CwmpMessage, CwmpVersion, Envelope};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn inform_body(serial: &str) -> String {
    let inform = Inform {
        device_id: DeviceIdStruct {
            manufacturer: "Radar Simulated Devices".into(),
            oui: "00D09E".into(),
            product_class: "HG-SIM".into(),
            serial_number: serial.into(),
        },
        events: vec![EventStruct {
            code: "2 PERIODIC".into(),
            command_key: String::new(),
        }],
        max_envelopes: 1,
        current_time: "2026-11-25T00:00:00Z".into(),
        retry_count: 0,
        parameters: vec![
            ParameterValue::new("Device.RootDataModelVersion", "2.17", "xsd:string"),
            ParameterValue::new("Device.DeviceInfo.HardwareVersion", "HW-1.0", "xsd:string"),
            ParameterValue::new("Device.DeviceInfo.SoftwareVersion", "1.0.0", "xsd:string"),
            ParameterValue::new("Device.DeviceInfo.ProvisioningCode", "", "xsd:string"),
            ParameterValue::new("Device.ManagementServer.ParameterKey", "", "xsd:string"),
            ParameterValue::new(
                "Device.ManagementServer.ConnectionRequestURL",
                "http://127.0.0.1:1/cr",
                "xsd:string",
            ),
            ParameterValue::new(
                "Device.IP.Interface.1.IPv4Address.1.IPAddress",
                "192.0.2.10",
                "xsd:string",
            ),
        ],
    };
    Envelope::new(
        CwmpVersion::V1_0,
        Some("1".into()),
        CwmpMessage::Inform(inform),
    )
    .encode()
}

/// Starts a runtime with one worker thread on its own OS thread and runs `f` on it.
pub(crate) fn one_core<F, Fut>(name: &str, f: F) -> std::thread::JoinHandle<()>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let blocking = format!("{name}-io");
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .thread_name(blocking)
                .build()
                .expect("runtime");
            rt.block_on(f());
        })
        .expect("spawn thread")
}

async fn drive(
    addr: SocketAddr,
    serials: Arc<Vec<String>>,
    concurrency: usize,
    seconds: f64,
) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let serials = serials.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let bodies: Vec<String> = serials
                .iter()
                .skip(worker)
                .step_by(concurrency)
                .map(|s| inform_body(s))
                .collect();
            if bodies.is_empty() {
                return;
            }
            let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .expect("handshake");
            tokio::spawn(conn);
            let mut i = 0;
            while Instant::now() < deadline {
                let post = |body: String| {
                    hyper::Request::post("/")
                        .header("host", "acs")
                        .body(Full::new(Bytes::from(body)))
                        .expect("request")
                };
                let r = sender
                    .send_request(post(bodies[i % bodies.len()].clone()))
                    .await
                    .expect("inform");
                assert_eq!(r.status(), 200);
                let _ = r.into_body().collect().await;
                let r = sender
                    .send_request(post(String::new()))
                    .await
                    .expect("empty post");
                assert_eq!(r.status(), 204, "session did not end with 204");
                let _ = r.into_body().collect().await;
                done.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    let start = Instant::now();
    for t in tasks {
        let _ = t.await;
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn echo_server() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    listener.set_nonblocking(true).expect("nonblocking");
    let canned = Envelope::new(
        CwmpVersion::V1_0,
        Some("1".into()),
        CwmpMessage::InformResponse(InformResponse { max_envelopes: 1 }),
    )
    .encode();
    one_core("echo-server", move || async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let canned = canned.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let canned = canned.clone();
                        async move {
                            let body = req.into_body().collect().await?.to_bytes();
                            let response = if body.is_empty() {
                                hyper::Response::builder()
                                    .status(204)
                                    .body(Full::new(Bytes::new()))
                            } else {
                                hyper::Response::builder()
                                    .status(200)
                                    .body(Full::new(Bytes::from(canned)))
                            };
                            Ok::<_, hyper::Error>(response.expect("response"))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// Where a node started by [`node_on_one_core`] listens.
pub(crate) struct NodeAddrs {
    pub cwmp: SocketAddr,
    pub usp: SocketAddr,
}

/// Starts a Radar node on its own single-threaded runtime (one core) and waits until it serves.
pub(crate) fn node_on_one_core(
    name: &str,
    config: radar_node::config::NodeConfig,
) -> anyhow::Result<NodeAddrs> {
    let bind = || -> anyhow::Result<std::net::TcpListener> {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.set_nonblocking(true)?;
        Ok(l)
    };
    let (cwmp, api, usp) = (bind()?, bind()?, bind()?);
    let addrs = NodeAddrs {
        cwmp: cwmp.local_addr()?,
        usp: usp.local_addr()?,
    };
    let (tx, rx) = std::sync::mpsc::channel();
    one_core(name, move || async move {
        let listener = |l| tokio::net::TcpListener::from_std(l).expect("listener");
        let listeners = radar_node::Listeners {
            cwmp: listener(cwmp),
            api: listener(api),
            usp: Some(listener(usp)),
            grpc: None,
            stun: None,
        };
        let (_shutdown_tx, shutdown) = tokio::sync::watch::channel(false);
        let node = radar_node::start(config, listeners, shutdown)
            .await
            .expect("node starts");
        let _ = tx.send(());
        for t in node.tasks {
            let _ = t.await;
        }
    });
    rx.recv()?;
    Ok(addrs)
}

fn radar_server(
    data_dir: std::path::PathBuf,
    memory_budget: Option<u64>,
) -> anyhow::Result<SocketAddr> {
    let mut config = radar_node::config::NodeConfig {
        data_dir,
        ..Default::default()
    };
    config.store.memory_budget = memory_budget.map(radar_node::byte_size::ByteSize);
    config.cwmp.allow_anonymous = true;
    // Every simulated CPE connects from the one loopback address.
    config.cwmp.max_connections_per_address = 0;
    config.connection_request.enabled = false;
    Ok(node_on_one_core("acs-server", config)?.cwmp)
}

/// `memory_budget`: the node's `[store] memory_budget` (small: most informing twins are cold).
pub fn run(
    devices: usize,
    concurrency: usize,
    seconds: f64,
    memory_budget: Option<u64>,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir_in(std::env::current_dir()?)?;
    let radar = radar_server(dir.path().to_owned(), memory_budget)?;
    let echo = echo_server();
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let serials: Arc<Vec<String>> = Arc::new((1..=devices).map(|n| format!("SIM{n:06}")).collect());
    client.block_on(async {
        // Bootstrap every device once with the real simulator (discovery, notifications,
        // credentials), so measured sessions are plain periodic informs.
        let fleet = radar_sim::SimFleet::start(radar_sim::SimConfig {
            acs_url: format!("http://{radar}/"),
            count: devices,
            periodic_interval: Duration::from_secs(3600),
            ..Default::default()
        })
        .await?;
        let start = Instant::now();
        while fleet.devices.values().any(|d| d.sessions.load(Ordering::Relaxed) == 0) {
            anyhow::ensure!(start.elapsed() < Duration::from_secs(300), "bootstrap did not finish");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        fleet.stop();
        let baseline = drive(echo, serials.clone(), concurrency, seconds).await;
        let radar_rate = drive(radar, serials.clone(), concurrency, seconds).await;
        println!("\n## B1: periodic-inform sessions/s, server on one core ({devices} devices, {concurrency} connections, {seconds}s each)\n");
        println!("| server | sessions/s | ratio to baseline |\n| --- | ---: | ---: |");
        println!("| baseline: bare hyper, canned replies | {baseline:.0} | 100% |");
        let budget = memory_budget.map_or("default".to_string(), |b| radar_node::byte_size::ByteSize(b).to_string());
        println!("| radar ACS (durable twin write), memory budget {budget} | {radar_rate:.0} | {:.0}% |", 100.0 * radar_rate / baseline);
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(())
}
