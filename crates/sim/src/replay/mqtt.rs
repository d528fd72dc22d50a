//! The scripted agent over an MQTT 5 broker, as the recorded agent used it: subscribe to its
//! own topic, send its recorded MQTTConnect record, answer each request from the recording on
//! the request's Response Topic. A `Device.Reboot()` ends the connection; the agent comes back
//! with its next recorded connect record and the recorded `Boot!` that names the command's key.

use super::{request_of, Recording};
use radar_usp::proto::msg::{notify, request, Msg};
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
    let connects: Vec<Vec<u8>> = lock(&recording).connects().map(<[u8]>::to_vec).collect();
    let mut connect_index = 0;
    let mut boot: Option<Msg> = None;
    loop {
        let connect = connects
            .get(connect_index.min(connects.len().saturating_sub(1)))
            .cloned();
        connect_index += 1;
        match session(&agent, &recording, connect, boot.take()).await {
            Some(command_key) => {
                tokio::time::sleep(agent.reboot_delay).await;
                boot = recorded_boot(&lock(&recording), &command_key);
            }
            None => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

fn lock(recording: &Mutex<Recording>) -> std::sync::MutexGuard<'_, Recording> {
    recording.lock().unwrap_or_else(|e| e.into_inner())
}

/// The recorded `Boot!` whose CommandKey is `command_key`.
fn recorded_boot(recording: &Recording, command_key: &str) -> Option<Msg> {
    recording
        .notifies()
        .find(|m| match request_of(m) {
            Some(request::ReqType::Notify(n)) => matches!(
                &n.notification,
                Some(notify::Notification::Event(e))
                    if e.event_name == "Boot!"
                        && e.params.get("CommandKey").map(String::as_str) == Some(command_key)
            ),
            _ => false,
        })
        .cloned()
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
                let mut first: Vec<Vec<u8>> = connect.iter().cloned().collect();
                if let Some(b) = &boot {
                    first.push(record::encode_message(
                        &agent.controller_id,
                        &agent.endpoint_id,
                        b,
                    ));
                }
                for r in first {
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
                let Ok(inbound) = record::decode(
                    &p.payload,
                    &agent.endpoint_id,
                    record::DEFAULT_MAX_RECORD_BYTES,
                ) else {
                    continue;
                };
                let RecordKind::Message(msg) = inbound.kind else {
                    continue;
                };
                let reboot = match request_of(&msg) {
                    Some(request::ReqType::Operate(o)) if o.command == "Device.Reboot()" => {
                        Some(o.command_key.clone())
                    }
                    _ => None,
                };
                let answer = lock(recording).answer(&msg);
                if let Some(answer) = answer {
                    let bytes =
                        record::encode_message(&agent.controller_id, &agent.endpoint_id, &answer);
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
                if reboot.is_some() {
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
                    return reboot;
                }
            }
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}
