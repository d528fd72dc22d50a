//! The USP STOMP MTP (TR-369, STOMP binding): Radar is a STOMP 1.2 client of the operator's broker. It
//! connects naming its endpoint id (`endpoint-id`), subscribes to its destination (the one the
//! broker assigns in CONNECTED's `subscribe-dest`, else the configured one, which agents hold
//! as `Controller.{i}.MTP.{i}.STOMP.Destination`), and sends each agent's records to the
//! destination the agent names in `reply-to-dest` or its STOMPConnect record, with its own in
//! `reply-to-dest`. Heart-beats are negotiated and checked; a lost broker is reconnected with
//! backoff, and every known agent is probed afterwards. Agent links are the broker links of
//! [`super::broker`], shared with MQTT.
//!
//! Frames are sans-IO in `radar_usp::stomp`; this is the socket loop.
//!
//! In a cluster every node subscribes to the same destination and the broker spreads records
//! over them; a node handles what it receives (its twin writes reach the shard leader through
//! the usual forwarding).

use super::broker::{self, Broker};
use super::registry::Signal;
use crate::config::StompConfig;
use crate::core::NodeCore;
use radar_core::DeviceKey;
use radar_usp::record::RecordKind;
use radar_usp::stomp::{self, Decoder, Event, Frame};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// Frames headers add to a record.
const FRAME_OVERHEAD: usize = 4096;

/// Sends records to agents through the current broker connection.
pub struct StompBroker {
    /// Encoded SEND frames to the connection task; `None` while disconnected.
    connection: Mutex<Option<mpsc::Sender<Vec<u8>>>>,
    /// Radar's destination, named in `reply-to-dest`.
    destination: Mutex<String>,
    liveness_interval: Duration,
    shutdown: watch::Receiver<bool>,
}

impl StompBroker {
    async fn send(&self, destination: &str, record: Vec<u8>) -> Result<(), String> {
        let reply_to = self
            .destination
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let frame = stomp::usp_send(destination, &reply_to, record);
        let sender = self
            .connection
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or("not connected to the stomp broker")?;
        sender
            .send(frame)
            .await
            .map_err(|_| "stomp connection closed".to_string())
    }
}

impl Broker for StompBroker {
    fn mtp(&self) -> &'static str {
        "stomp"
    }

    fn publish<'a>(
        &'a self,
        destination: &'a str,
        record: Vec<u8>,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(self.send(destination, record))
    }

    fn liveness_interval(&self) -> Duration {
        self.liveness_interval
    }

    fn shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }
}

/// The STOMP MTP as the core sees it.
struct StompMtp {
    broker: Arc<StompBroker>,
}

impl super::mtp::UspMtp for StompMtp {
    fn name(&self) -> &'static str {
        "stomp"
    }

    /// An agent on the broker does not depend on us to stay connected: ask it.
    fn reach(&self, core: &Arc<NodeCore>, device: &DeviceKey) -> bool {
        let broker: Arc<dyn Broker> = self.broker.clone();
        broker::probe(core, &broker, device);
        true
    }
}

/// Connects to the broker and serves agents until shutdown.
pub fn start(
    core: Arc<NodeCore>,
    config: StompConfig,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let broker = Arc::new(StompBroker {
        connection: Mutex::new(None),
        destination: Mutex::new(config.destination.clone()),
        liveness_interval: config.liveness_interval,
        shutdown: shutdown.clone(),
    });
    core.usp_mtps.register(Arc::new(StompMtp {
        broker: broker.clone(),
    }));
    tokio::spawn(run(core, config, broker, shutdown))
}

async fn run(
    core: Arc<NodeCore>,
    config: StompConfig,
    broker: Arc<StompBroker>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(200);
    let mut outage = crate::log_limit::RetryLog::new(Duration::from_secs(600));
    loop {
        let started = Instant::now();
        let ended = tokio::select! {
            ended = connection(&core, &config, &broker, shutdown.clone()) => ended,
            _ = shutdown.changed() => Ok(()),
        };
        let was_connected = broker
            .connection
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .is_some();
        core.metrics.usp_stomp_connected.set(0);
        if was_connected {
            // Losing a working connection is news, whatever came before.
            outage.recovered();
        }
        match ended {
            Ok(()) => return,
            Err(e) => {
                if started.elapsed() > Duration::from_secs(60) {
                    backoff = Duration::from_millis(200);
                }
                if outage.failed() {
                    warn!(server = %config.server, error = %e, retry_in = ?backoff, "stomp broker unavailable");
                } else {
                    debug!(server = %config.server, error = %e, retry_in = ?backoff, "stomp broker still unavailable");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(config.max_reconnect_backoff);
    }
}

/// One broker connection, until it fails (`Err`) or Radar shuts down (`Ok`).
async fn connection(
    core: &Arc<NodeCore>,
    config: &StompConfig,
    broker: &Arc<StompBroker>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    let mut stream =
        tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(&config.server))
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let heartbeat_ms = config.heartbeat.as_millis() as u64;
    let mut connect = Frame::new("CONNECT")
        .header("accept-version", "1.2")
        .header("host", &config.virtual_host)
        .header("heart-beat", &format!("{heartbeat_ms},{heartbeat_ms}"))
        .header(stomp::ENDPOINT_ID, &core.config.usp.controller_id);
    if let Some(user) = &config.username {
        connect = connect.header("login", user);
    }
    if let Some(password) = &config.password {
        connect = connect.header("passcode", password);
    }
    stream
        .write_all(&connect.encode())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut decoder = Decoder::new(core.config.usp.max_record_bytes + FRAME_OVERHEAD);
    let mut buf = vec![0u8; 64 * 1024];
    let connected = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            while let Some(event) = decoder.next_event().map_err(|e| e.to_string())? {
                if let Event::Frame(frame) = event {
                    return Ok::<Frame, String>(frame);
                }
            }
            let n = stream
                .read(&mut buf)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("broker closed the connection".into());
            }
            decoder.push(&buf[..n]);
        }
    })
    .await
    .map_err(|_| "no CONNECTED from the broker".to_string())??;
    if connected.command != "CONNECTED" {
        return Err(format!(
            "broker refused the connection: {} {}",
            connected.get("message").unwrap_or_default(),
            String::from_utf8_lossy(&connected.body)
        ));
    }
    let (send_every, expect_within) =
        stomp::heartbeats((heartbeat_ms, heartbeat_ms), connected.get("heart-beat"));
    let destination = connected
        .get(stomp::SUBSCRIBE_DEST)
        .filter(|d| !d.is_empty())
        .unwrap_or(&config.destination)
        .to_owned();
    *broker.destination.lock().unwrap_or_else(|e| e.into_inner()) = destination.clone();
    let subscribe = Frame::new("SUBSCRIBE")
        .header("id", "radar")
        .header("destination", &destination)
        .header("ack", "auto");
    stream
        .write_all(&subscribe.encode())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let (tx, mut outgoing) = mpsc::channel::<Vec<u8>>(1024);
    *broker.connection.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
    core.metrics.usp_stomp_connected.set(1);
    info!(server = %config.server, %destination, "connected to the stomp broker");
    // Agents that stayed on the broker have no reason to speak: ask each one.
    tokio::spawn(broker::probe_known_agents(
        core.clone(),
        broker.clone(),
        config.probe_rate,
    ));
    let every = |ms: u64| (ms > 0).then(|| Duration::from_millis(ms));
    let send_every = every(send_every);
    // STOMP 1.2 §Heart-beating: allow for timing inaccuracy; twice the interval is lenient.
    let expect_within = every(expect_within).map(|d| d * 2);
    let mut last_sent = Instant::now();
    let mut last_heard = Instant::now();
    loop {
        let heartbeat_due =
            send_every.map(|d| (last_sent + d).saturating_duration_since(Instant::now()));
        let silence_limit =
            expect_within.map(|d| (last_heard + d).saturating_duration_since(Instant::now()));
        tokio::select! {
            read = stream.read(&mut buf) => {
                let n = read.map_err(|e| format!("read: {e}"))?;
                if n == 0 {
                    return Err("broker closed the connection".into());
                }
                last_heard = Instant::now();
                decoder.push(&buf[..n]);
                while let Some(event) = decoder.next_event().map_err(|e| e.to_string())? {
                    let Event::Frame(frame) = event else { continue };
                    match frame.command.as_str() {
                        "MESSAGE" => on_message(core, broker, &frame),
                        "ERROR" => {
                            return Err(format!(
                                "broker error: {} {}",
                                frame.get("message").unwrap_or_default(),
                                String::from_utf8_lossy(&frame.body)
                            ))
                        }
                        _ => {}
                    }
                }
            }
            frame = outgoing.recv() => {
                let Some(frame) = frame else { return Err("sender closed".into()) };
                stream.write_all(&frame).await.map_err(|e| format!("write: {e}"))?;
                last_sent = Instant::now();
            }
            _ = super::sleep_opt(heartbeat_due) => {
                stream.write_all(b"\n").await.map_err(|e| format!("write: {e}"))?;
                last_sent = Instant::now();
            }
            _ = super::sleep_opt(silence_limit) => {
                return Err("no heart-beat from the broker".into());
            }
            _ = shutdown.changed() => {
                let _ = stream.write_all(&Frame::new("DISCONNECT").encode()).await;
                return Ok(());
            }
        }
    }
}

/// One MESSAGE from Radar's destination: a record from an agent.
fn on_message(core: &Arc<NodeCore>, broker: &Arc<StompBroker>, frame: &Frame) {
    let Some((device, record)) = broker::decode_record(core, &frame.body, "stomp") else {
        return;
    };
    // TR-369 STOMP binding: answers go to `reply-to-dest`; a STOMPConnect record names the
    // agent's destination too.
    let mut reply_to = frame
        .get(stomp::REPLY_TO_DEST)
        .filter(|d| !d.is_empty())
        .map(str::to_owned);
    if let RecordKind::StompConnect {
        subscribed_destination,
    } = &record.kind
    {
        if reply_to.is_none() && !subscribed_destination.is_empty() {
            reply_to = Some(subscribed_destination.clone());
        }
    }
    let signal = Signal::Record {
        record: Box::new(record),
        reply_to,
    };
    let broker: Arc<dyn Broker> = broker.clone();
    broker::deliver(core, &broker, device, signal);
}
