//! The scripted agent over an MQTT 5 broker, as the recorded agent used it: subscribe to its
//! own topic, send its recorded MQTTConnect record, answer each request from the recording on
//! the request's Response Topic. A `Device.Reboot()` ends the connection; the agent comes back
//! with its next recorded connect record and the recorded `Boot!` that names the command's key.

use super::{first_records, reply, run_sessions, Identity, Recording};
use radar_usp::proto::msg::Msg;
use radar_usp::record::{self, RecordKind};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ReplayAgent {
    pub endpoint_id: String,
    pub controller_id: String,
    pub host: String,
    pub port: u16,
    pub reboot_delay: Duration,
}

/// Runs until the task is dropped.
pub async fn run(agent: ReplayAgent, recording: Arc<Mutex<Recording>>) {
    let delay = agent.reboot_delay;
    run_sessions(recording.clone(), delay, |connect, boot| {
        let agent = agent.clone();
        let recording = recording.clone();
        async move { session(&agent, &recording, connect, boot).await }
    })
    .await
}

/// One broker connection; `Some(command key)` when it ended with a reboot.
async fn session(
    agent: &ReplayAgent,
    recording: &Mutex<Recording>,
    connect: Option<Vec<u8>>,
    boot: Option<Msg>,
) -> Option<String> {
    use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
    use rumqttc::v5::mqttbytes::QoS;
    use rumqttc::v5::{AsyncClient, Event, MqttOptions};
    let identity = Identity {
        endpoint_id: agent.endpoint_id.clone(),
        controller_id: agent.controller_id.clone(),
    };
    let own = connect
        .as_deref()
        .and_then(|bytes| record::decode(bytes, &agent.controller_id, usize::MAX).ok())
        .and_then(|r| match r.kind {
            RecordKind::MqttConnect {
                subscribed_topic, ..
            } => Some(subscribed_topic),
            _ => None,
        })
        .unwrap_or_else(|| radar_usp::mqtt::agent_topic(&agent.endpoint_id));
    let controller = radar_usp::mqtt::controller_topic(&agent.controller_id);
    let mut options = MqttOptions::new(agent.endpoint_id.clone(), agent.host.clone(), agent.port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(Some(8 * 1024 * 1024));
    let (client, mut events) = AsyncClient::new(options, 256);
    let props = || PublishProperties {
        response_topic: Some(own.clone()),
        ..Default::default()
    };
    loop {
        let event = events.poll().await;
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                if client
                    .subscribe(own.clone(), QoS::AtLeastOnce)
                    .await
                    .is_err()
                {
                    return None;
                }
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                for r in first_records(&identity, &connect, &boot) {
                    let _ = client
                        .publish_with_properties(
                            controller.clone(),
                            QoS::AtLeastOnce,
                            false,
                            r,
                            props(),
                        )
                        .await;
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let reply_topic = p
                    .properties
                    .and_then(|pr| pr.response_topic)
                    .unwrap_or_else(|| controller.clone());
                let reply = reply(&identity, recording, &p.payload);
                if let Some(bytes) = reply.answer {
                    let _ = client
                        .publish_with_properties(
                            reply_topic,
                            QoS::AtLeastOnce,
                            false,
                            bytes,
                            props(),
                        )
                        .await;
                }
                if reply.reboot.is_some() {
                    // Let the answer go out, then drop the connection as a rebooting agent does.
                    let _ = tokio::time::timeout(Duration::from_millis(300), async {
                        loop {
                            if events.poll().await.is_err() {
                                break;
                            }
                        }
                    })
                    .await;
                    let _ = client.disconnect().await;
                    return reply.reboot;
                }
            }
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}
