//! The USP MQTT MTP (TR-369 §6.5): Radar is an MQTT client of the carrier's broker. It
//! subscribes to `usp/controller/<controller id>` (and its `/reply-to=` children for 3.1.1),
//! learns each agent's topic from the Response Topic of its PUBLISH (MQTT 5), the `/reply-to=`
//! suffix (3.1.1) or its MQTTConnect record, and answers there. Broker outages are retried with
//! backoff; operations live in the twins, so none is lost while the broker is away.
//!
//! - [`cluster`]: the shared subscription and forwarding records to the shard's leader.
//!
//! Agent links are the broker links of [`super::broker`], shared with STOMP.

pub mod cluster;

use super::broker::{self, Broker};
use super::registry::Signal;
use crate::config::{MqttConfig, MqttProtocol};
use crate::core::NodeCore;
use bytes::Bytes;
use radar_core::DeviceKey;
use radar_usp::mqtt::{controller_topic, split_reply_to, with_reply_to};
use radar_usp::record::RecordKind;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{info, warn};

#[derive(Debug, thiserror::Error)]
pub enum MqttSetupError {
    #[error("mqtt url {0:?} is not mqtt://HOST:PORT or mqtts://HOST:PORT")]
    BadUrl(String),
    #[error("mqtt tls: {0}")]
    Tls(String),
}

/// `mqtt://HOST[:PORT]` (1883) or `mqtts://HOST[:PORT]` (TLS, 8883) → (host, port).
pub fn parse_url(url: &str) -> Result<(String, u16), MqttSetupError> {
    let bad = || MqttSetupError::BadUrl(url.chars().take(200).collect());
    let (rest, default_port) = match url.strip_prefix("mqtts://") {
        Some(rest) => (rest, 8883),
        None => (
            url.strip_prefix("mqtt://")
                .or_else(|| url.strip_prefix("tcp://"))
                .ok_or_else(bad)?,
            1883,
        ),
    };
    let rest = rest.trim_end_matches('/');
    match rest.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => Ok((
            host.trim_matches(['[', ']']).to_owned(),
            port.parse().map_err(|_| bad())?,
        )),
        _ if !rest.is_empty() && !rest.contains('/') => Ok((rest.to_owned(), default_port)),
        _ => Err(bad()),
    }
}

enum Client {
    V5(rumqttc::v5::AsyncClient),
    V3(rumqttc::AsyncClient),
}

/// Publishes records to agents; shared by every MQTT agent link.
pub struct Publisher {
    client: Client,
    controller_topic: String,
    /// Cluster mode: every node subscribes through one MQTT 5 shared subscription and
    /// forwards records for shards it does not lead (see [`cluster`]).
    shared: bool,
    liveness_interval: Duration,
    shutdown: watch::Receiver<bool>,
}

impl Broker for Publisher {
    fn mtp(&self) -> &'static str {
        "mqtt"
    }

    fn publish<'a>(
        &'a self,
        destination: &'a str,
        record: Vec<u8>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(Publisher::publish(self, destination, record))
    }

    fn liveness_interval(&self) -> Duration {
        self.liveness_interval
    }

    fn shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }
}

impl Publisher {
    /// Sends one Record to the agent listening on `agent_topic`.
    pub async fn publish(&self, agent_topic: &str, record: Vec<u8>) -> Result<(), String> {
        let qos_v5 = rumqttc::v5::mqttbytes::QoS::AtLeastOnce;
        match &self.client {
            Client::V5(c) => {
                // R-MQTT: the controller names its own topic as the Response Topic.
                let properties = rumqttc::v5::mqttbytes::v5::PublishProperties {
                    response_topic: Some(self.controller_topic.clone()),
                    content_type: Some("application/vnd.bbf.usp.msg".into()),
                    ..Default::default()
                };
                c.publish_with_properties(agent_topic, qos_v5, false, record, properties)
                    .await
                    .map_err(|e| e.to_string())
            }
            Client::V3(c) => c
                .publish(
                    with_reply_to(agent_topic, &self.controller_topic),
                    rumqttc::QoS::AtLeastOnce,
                    false,
                    record,
                )
                .await
                .map_err(|e| e.to_string()),
        }
    }
}

// One per node, so the size difference between the variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Loop {
    V5(rumqttc::v5::EventLoop),
    V3(rumqttc::EventLoop),
}

enum MqttEvent {
    Connected,
    Subscribed,
    Message {
        topic: String,
        payload: Bytes,
        response_topic: Option<String>,
    },
    Other,
    Error(String),
}

impl Loop {
    async fn next(&mut self) -> MqttEvent {
        match self {
            Loop::V5(l) => {
                use rumqttc::v5::mqttbytes::v5::Packet;
                use rumqttc::v5::Event;
                match l.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => MqttEvent::Connected,
                    Ok(Event::Incoming(Packet::SubAck(_))) => MqttEvent::Subscribed,
                    Ok(Event::Incoming(Packet::Publish(p))) => MqttEvent::Message {
                        topic: String::from_utf8_lossy(&p.topic).into_owned(),
                        response_topic: p.properties.and_then(|pr| pr.response_topic),
                        payload: p.payload,
                    },
                    Ok(_) => MqttEvent::Other,
                    Err(e) => MqttEvent::Error(e.to_string()),
                }
            }
            Loop::V3(l) => {
                use rumqttc::{Event, Packet};
                match l.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => MqttEvent::Connected,
                    Ok(Event::Incoming(Packet::SubAck(_))) => MqttEvent::Subscribed,
                    Ok(Event::Incoming(Packet::Publish(p))) => MqttEvent::Message {
                        topic: p.topic,
                        payload: p.payload,
                        response_topic: None,
                    },
                    Ok(_) => MqttEvent::Other,
                    Err(e) => MqttEvent::Error(e.to_string()),
                }
            }
        }
    }
}

/// Connects to the broker and serves agents until shutdown.
pub fn start(
    core: Arc<NodeCore>,
    config: MqttConfig,
    shutdown: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, MqttSetupError> {
    let (host, port) = parse_url(&config.url)?;
    let client_id = if config.client_id.is_empty() {
        format!("radar-{}", core.config.node_id)
    } else {
        config.client_id.clone()
    };
    let max = core.config.usp.max_record_bytes;
    let tls = match (&config.tls, config.url.starts_with("mqtts://")) {
        (Some(files), _) => Some(
            crate::tls::client_config(
                &files.ca,
                files.cert.as_deref().zip(files.key.as_deref()),
            )
            .map_err(|e| MqttSetupError::Tls(e.to_string()))?,
        ),
        (None, true) => {
            return Err(MqttSetupError::Tls(
                "an mqtts:// broker needs [usp.mqtt.tls] ca (and cert and key for a client certificate)".into(),
            ))
        }
        (None, false) => None,
    };
    let transport = || {
        tls.clone().map(|config| {
            rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(config))
        })
    };
    let (client, event_loop) = match config.protocol {
        MqttProtocol::V5 => {
            let mut options = rumqttc::v5::MqttOptions::new(client_id, host, port);
            if let Some(transport) = transport() {
                options.set_transport(transport);
            }
            options.set_keep_alive(config.keep_alive);
            options.set_max_packet_size(Some(max as u32 + 1024));
            // A persistent session: records agents publish while Radar restarts wait at the
            // broker instead of being dropped for want of a subscriber.
            options.set_clean_start(false);
            options.set_session_expiry_interval(Some(config.session_expiry.as_secs() as u32));
            if let (Some(u), Some(p)) = (&config.username, &config.password) {
                options.set_credentials(u, p);
            }
            let (c, l) = rumqttc::v5::AsyncClient::new(options, 1024);
            (Client::V5(c), Loop::V5(l))
        }
        MqttProtocol::V311 => {
            let mut options = rumqttc::MqttOptions::new(client_id, host, port);
            if let Some(transport) = transport() {
                options.set_transport(transport);
            }
            options.set_keep_alive(config.keep_alive);
            options.set_max_packet_size(max + 1024, max + 1024);
            options.set_clean_session(false);
            if let (Some(u), Some(p)) = (&config.username, &config.password) {
                options.set_credentials(u, p);
            }
            let (c, l) = rumqttc::AsyncClient::new(options, 1024);
            (Client::V3(c), Loop::V3(l))
        }
    };
    let publisher = Arc::new(Publisher {
        client,
        controller_topic: controller_topic(&core.config.usp.controller_id),
        shared: core.meta.is_some(),
        liveness_interval: config.liveness_interval,
        shutdown: shutdown.clone(),
    });
    core.usp_mtps.register(Arc::new(MqttMtp {
        publisher: publisher.clone(),
    }));
    Ok(tokio::spawn(run(
        core, config, publisher, event_loop, shutdown,
    )))
}

async fn subscribe(publisher: &Publisher) -> Result<(), String> {
    // `<topic>/#` also matches `<topic>` itself (MQTT 4.7.1.2), so one filter covers MQTT 5
    // records and 3.1.1 records with a `/reply-to=` suffix.
    let filter = cluster::subscription_filter(&publisher.controller_topic, publisher.shared);
    match &publisher.client {
        Client::V5(c) => c
            .subscribe(filter, rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
            .await
            .map_err(|e| e.to_string()),
        Client::V3(c) => c
            .subscribe(filter, rumqttc::QoS::AtLeastOnce)
            .await
            .map_err(|e| e.to_string()),
    }
}

async fn run(
    core: Arc<NodeCore>,
    config: MqttConfig,
    publisher: Arc<Publisher>,
    mut event_loop: Loop,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let event = tokio::select! {
            e = event_loop.next() => e,
            _ = shutdown.changed() => {
                if let Client::V5(c) = &publisher.client { let _ = c.try_disconnect(); }
                if let Client::V3(c) = &publisher.client { let _ = c.try_disconnect(); }
                return;
            }
        };
        match event {
            MqttEvent::Connected => {
                backoff = Duration::from_millis(200);
                info!(url = %config.url, topic = %publisher.controller_topic, "connected to the mqtt broker");
                if let Err(e) = subscribe(&publisher).await {
                    warn!(error = %e, "mqtt subscribe failed");
                }
            }
            MqttEvent::Subscribed => {
                core.metrics.usp_mqtt_connected.set(1);
                // After a restart or a broker outage Radar does not know which agents are
                // still on the broker: MQTT has no presence, and agents that stayed connected
                // have no reason to speak. Ask each one.
                tokio::spawn(broker::probe_known_agents(
                    core.clone(),
                    publisher.clone(),
                    config.probe_rate,
                ));
            }
            MqttEvent::Message {
                topic,
                payload,
                response_topic,
            } => on_publish(&core, &publisher, &topic, &payload, response_topic, false),
            MqttEvent::Other => {}
            MqttEvent::Error(e) => {
                core.metrics.usp_mqtt_connected.set(0);
                warn!(url = %config.url, error = %e, retry_in = ?backoff, "mqtt broker unavailable");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(config.max_reconnect_backoff);
            }
        }
    }
}

/// Handles one PUBLISH from the broker, or one another node forwarded (`forwarded`).
pub fn on_publish(
    core: &Arc<NodeCore>,
    publisher: &Arc<Publisher>,
    topic: &str,
    payload: &[u8],
    response_topic: Option<String>,
    forwarded: bool,
) {
    let Some((device, record)) = broker::decode_record(core, payload, "mqtt") else {
        return;
    };
    if publisher.shared
        && !forwarded
        && cluster::forward_if_led_elsewhere(
            core,
            publisher,
            &device,
            payload,
            topic,
            response_topic.as_deref(),
        )
    {
        return;
    }
    let mut reply_to = response_topic.or_else(|| split_reply_to(topic).1);
    if let RecordKind::MqttConnect {
        subscribed_topic, ..
    } = &record.kind
    {
        if reply_to.is_none() && !subscribed_topic.is_empty() {
            reply_to = Some(subscribed_topic.clone());
        }
    }
    let signal = Signal::Record {
        record: Box::new(record),
        reply_to,
    };
    let broker: Arc<dyn Broker> = publisher.clone();
    broker::deliver(core, &broker, device, signal);
}

/// The MQTT MTP as the core sees it.
struct MqttMtp {
    publisher: Arc<Publisher>,
}

impl super::mtp::UspMtp for MqttMtp {
    fn name(&self) -> &'static str {
        "mqtt"
    }

    /// An agent on the broker does not depend on us to stay connected: ask it.
    fn reach(&self, core: &Arc<NodeCore>, device: &DeviceKey) -> bool {
        let broker: Arc<dyn Broker> = self.publisher.clone();
        broker::probe(core, &broker, device);
        true
    }

    fn accept_forwarded(
        &self,
        core: &Arc<NodeCore>,
        record: radar_proto::cluster::UspRecord,
    ) -> bool {
        cluster::accept_forwarded(core, &self.publisher, record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        assert_eq!(
            parse_url("mqtt://127.0.0.1:1883").unwrap(),
            ("127.0.0.1".into(), 1883)
        );
        assert_eq!(parse_url("mqtt://broker").unwrap(), ("broker".into(), 1883));
        assert!(parse_url("http://x:1").is_err());
        assert!(parse_url("mqtt://x:notaport").is_err());
    }
}
