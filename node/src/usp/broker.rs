//! Agent links over a message broker (the MQTT and STOMP MTPs). Unlike a WebSocket, a broker
//! link has no connection per agent: records arrive on Radar's own topic or destination and go
//! out to the agent's, which the twin remembers (`usp_reply_to`). An agent's link is a task that
//! lives while the agent is talking, ends when it goes quiet and does not answer a probe, and
//! is started again by its next record or by a probe when work is queued for it.

use super::agent::{AgentLink, Flow};
use super::registry::{Mailbox, Signal};
use crate::core::NodeCore;
use radar_core::DeviceKey;
use radar_twin::table::Columns;
use radar_twin::OperationStatus;
use radar_usp::record::{self, InboundRecord, RecordError};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::{debug, warn};

/// What a broker MTP gives the shared link code.
pub trait Broker: Send + Sync + 'static {
    /// The MTP's name, as twins record it (`mqtt`, `stomp`).
    fn mtp(&self) -> &'static str;
    /// Sends one Record to the agent listening at `destination` (a topic or a destination).
    fn publish<'a>(
        &'a self,
        destination: &'a str,
        record: Vec<u8>,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;
    /// A quiet agent is probed this often (zero: never), since a broker has no presence.
    fn liveness_interval(&self) -> Duration;
    fn shutdown(&self) -> watch::Receiver<bool>;
}

/// Decodes a record that arrived from the broker and names its agent; `None` (counted) for
/// what cannot be answered: no reply is possible without a readable `from_id`.
pub fn decode_record(
    core: &NodeCore,
    payload: &[u8],
    mtp: &'static str,
) -> Option<(DeviceKey, InboundRecord)> {
    let usp = &core.config.usp;
    let record = match record::decode(payload, &usp.controller_id, usp.max_record_bytes) {
        Ok(r) => r,
        Err(RecordError::WrongRecipient { to_id }) => {
            core.metrics
                .usp_rejected
                .with_label_values(&["to_id"])
                .inc();
            debug!(%to_id, mtp, "record for another controller ignored");
            return None;
        }
        Err(e) => {
            core.metrics
                .usp_rejected
                .with_label_values(&["record"])
                .inc();
            debug!(error = %e, mtp, "undecodable record ignored");
            return None;
        }
    };
    let Ok(device) = DeviceKey::parse(&record.from_id) else {
        core.metrics
            .usp_rejected
            .with_label_values(&["from_id"])
            .inc();
        return None;
    };
    Some((device, record))
}

/// Hands a record to the agent's live link, or starts one for it.
pub fn deliver(core: &Arc<NodeCore>, broker: &Arc<dyn Broker>, device: DeviceKey, signal: Signal) {
    let signal = match core.usp_agents.deliver(&device, signal) {
        Ok(()) => return,
        Err(signal) => signal,
    };
    spawn_link(core, broker, device, Some(signal), broker.shutdown());
}

/// Starts a link task for an agent on the broker and registers it.
fn spawn_link(
    core: &Arc<NodeCore>,
    broker: &Arc<dyn Broker>,
    device: DeviceKey,
    first: Option<Signal>,
    shutdown: watch::Receiver<bool>,
) {
    let mailbox = Mailbox::new();
    let generation = core.usp_agents.register(&device, mailbox.clone());
    tokio::spawn(run_link(
        core.clone(),
        broker.clone(),
        device,
        mailbox,
        generation,
        first,
        shutdown,
    ));
}

/// Probes an agent with no live link: it may well be on the broker (its broker connection
/// does not depend on us), so try it.
pub fn probe(core: &Arc<NodeCore>, broker: &Arc<dyn Broker>, device: &DeviceKey) {
    if core.usp_agents.is_connected(device) {
        return;
    }
    let (_tx, rx) = watch::channel(false);
    // The probe ends by itself (answer or timeout); shutdown of the process ends it too.
    spawn_link(core, broker, device.clone(), None, rx);
}

/// After a restart or a broker reconnect: every known agent of this MTP without a live link
/// is probed, those with queued operations first, at most `rate` per second so a large fleet
/// does not answer all at once.
pub async fn probe_known_agents(core: Arc<NodeCore>, broker: Arc<dyn Broker>, rate: u32) {
    let mut devices = Vec::new();
    // Each node asks after the agents of the shards it leads (the leader serves their links).
    for shard in core.fleet.shards().into_iter().filter(|s| s.is_leader()) {
        let state = shard.read();
        // The agents of this MTP from the table's columns; only their headers are read.
        let mtp = match broker.mtp() {
            "mqtt" => Columns::MQTT,
            "stomp" => Columns::STOMP,
            _ => continue,
        };
        let agents = state
            .twins
            .columns()
            .filter(|(_, c)| c.has(mtp | Columns::REPLY_TO))
            .map(|(key, _)| key);
        for key in agents {
            let Some(header) = crate::shard::readable(state.twins.get_header(key)) else {
                continue;
            };
            let idle = !header
                .operations
                .iter()
                .any(|o| o.status == OperationStatus::Queued);
            devices.push((idle, key.clone()));
        }
    }
    devices.sort();
    let pause = Duration::from_secs(1) / rate.max(1);
    for (_, device) in devices {
        probe(&core, &broker, &device);
        tokio::time::sleep(pause).await;
    }
}

async fn run_link(
    core: Arc<NodeCore>,
    broker: Arc<dyn Broker>,
    device: DeviceKey,
    mailbox: Arc<Mailbox>,
    generation: u64,
    first: Option<Signal>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mtp = broker.mtp();
    let mut link = AgentLink::new(core.clone(), device.clone(), mtp);
    link.reply_to = core
        .fleet
        .with_twin(&device, |t, _| t.meta.usp_reply_to.clone())
        .unwrap_or_default();
    let mut out = Vec::new();
    let liveness = broker.liveness_interval();
    let mut last_heard = Instant::now();
    // Without a first record this link probes an agent that may be on the broker.
    let mut flow = match first {
        Some(signal) => on_signal(&mut link, signal, &mut out).await,
        None => link.probe(&mut out).await,
    };
    let reason = loop {
        for r in out.drain(..) {
            if link.reply_to.is_empty() {
                warn!(device = %device, mtp, "no destination known for agent; record dropped");
                break;
            }
            if let Err(e) = broker.publish(&link.reply_to, r).await {
                warn!(device = %device, mtp, error = %e, "publish to the broker failed");
            }
            core.metrics
                .usp_records
                .with_label_values(&["out", mtp])
                .inc();
        }
        if let Flow::Close(reason) = flow {
            break reason;
        }
        if !link.is_active() {
            break "agent disconnected".to_string();
        }
        let timeout = link.next_timeout();
        let check_in = (!liveness.is_zero() && !link.awaiting_answers())
            .then(|| (last_heard + liveness).saturating_duration_since(Instant::now()));
        flow = tokio::select! {
            signal = mailbox.recv() => match signal {
                Signal::Replaced => break "replaced".to_string(),
                Signal::Moved => break "shard leadership moved".to_string(),
                signal => {
                    if matches!(signal, Signal::Record { .. }) {
                        last_heard = Instant::now();
                    }
                    on_signal(&mut link, signal, &mut out).await
                }
            },
            _ = super::sleep_opt(timeout) => link.on_timeout(&mut out).await,
            _ = super::sleep_opt(check_in) => {
                last_heard = Instant::now();
                link.check_alive(&mut out).await
            }
            _ = shutdown.changed() => break "controller shutting down".to_string(),
        };
    };
    mailbox.close();
    link.disconnected(&reason).await;
    core.usp_agents.unregister(&device, generation);
}

async fn on_signal(link: &mut AgentLink, signal: Signal, out: &mut Vec<Vec<u8>>) -> Flow {
    match signal {
        Signal::Record { record, reply_to } => {
            if let Some(destination) = reply_to {
                link.reply_to = destination;
            }
            link.on_record(*record, out).await
        }
        Signal::Wake => link.on_wake(out).await,
        Signal::Replaced => Flow::Close("replaced".into()),
        Signal::Moved => Flow::Close("shard leadership moved".into()),
    }
}
