//! The agent's MQTT MTP, as obuspa does it: subscribe to its own topic, send an MQTTConnect
//! record to the controller's topic (naming its topic in the Response Topic property for MQTT 5,
//! or in a `/reply-to=` suffix for 3.1.1), then the Boot! Event, then answer requests on the
//! topic each request names.

use super::agent::{run_effects, AgentInputs, BootReason, Ending, SimAgent};
use radar_usp::mqtt::{agent_topic, controller_topic, split_reply_to, with_reply_to};
use radar_usp::record::MqttVersion;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Broker {
    pub host: String,
    pub port: u16,
    pub version: MqttVersion,
}

/// Runs the agent against the broker until the task is dropped.
pub async fn run(agent: Arc<SimAgent>, broker: Broker, mut inputs: AgentInputs) {
    let mut boot = Some(BootReason::default());
    loop {
        if !inputs.until_online(&agent, boot.is_some()).await {
            return;
        }
        let ending = match broker.version {
            MqttVersion::V5 => session_v5(&agent, &broker, &mut inputs, boot.take()).await,
            MqttVersion::V3_1_1 => session_v3(&agent, &broker, &mut inputs, boot.take()).await,
        };
        match ending {
            Ending::Boot(reason) => {
                tokio::time::sleep(agent.reboot_delay).await;
                boot = Some(reason);
            }
            Ending::Offline => {}
            Ending::Lost => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

fn first_records(
    agent: &SimAgent,
    version: MqttVersion,
    boot: &Option<BootReason>,
) -> Vec<Vec<u8>> {
    let mut core = agent.core();
    let mut records = vec![core.mqtt_connect(version, &agent_topic(&agent.endpoint_id))];
    if let Some(b) = boot {
        records.extend(core.boot(&b.cause, &b.command_key, b.firmware_updated));
    }
    records
}

async fn session_v5(
    agent: &Arc<SimAgent>,
    broker: &Broker,
    inputs: &mut AgentInputs,
    mut boot: Option<BootReason>,
) -> Ending {
    use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
    use rumqttc::v5::mqttbytes::QoS;
    use rumqttc::v5::{AsyncClient, Event, MqttOptions};
    let own = agent_topic(&agent.endpoint_id);
    let controller = controller_topic(&agent.core().controller_id);
    let mut options = MqttOptions::new(agent.endpoint_id.clone(), broker.host.clone(), broker.port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(Some(8 * 1024 * 1024));
    options.set_last_will(rumqttc::v5::mqttbytes::v5::LastWill::new(
        controller.clone(),
        agent.core().disconnect_record("connection lost"),
        QoS::AtLeastOnce,
        false,
        None,
    ));
    let (client, mut events) = AsyncClient::new(options, 256);
    let props = || PublishProperties {
        response_topic: Some(own.clone()),
        ..Default::default()
    };
    loop {
        tokio::select! {
            event = events.poll() => match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    if client.subscribe(own.clone(), QoS::AtLeastOnce).await.is_err() {
                        return Ending::Lost;
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    agent.count_connect();
                    for r in first_records(agent, MqttVersion::V5, &boot.take()) {
                        let _ = client.publish_with_properties(controller.clone(), QoS::AtLeastOnce, false, r, props()).await;
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let reply_topic = p.properties.and_then(|pr| pr.response_topic).unwrap_or_else(|| controller.clone());
                    let replies = agent.core().handle_record(&p.payload);
                    for r in replies {
                        let _ = client.publish_with_properties(reply_topic.clone(), QoS::AtLeastOnce, false, r, props()).await;
                    }
                    if let Some(reason) = run_effects(agent) {
                        let _ = client.disconnect().await;
                        return Ending::Boot(reason);
                    }
                }
                Ok(_) => {}
                Err(_) => return Ending::Lost,
            },
            records = inputs.local.recv() => {
                let Some(records) = records else { return Ending::Lost };
                for r in records {
                    let _ = client.publish_with_properties(controller.clone(), QoS::AtLeastOnce, false, r, props()).await;
                }
            }
            changed = inputs.online.changed() => {
                if changed.is_err() || !*inputs.online.borrow() {
                    let bye = agent.core().disconnect_record("agent going offline");
                    let _ = client.publish_with_properties(controller.clone(), QoS::AtLeastOnce, false, bye, props()).await;
                    let _ = client.disconnect().await;
                    // Let the DISCONNECT go out.
                    let _ = tokio::time::timeout(Duration::from_millis(200), events.poll()).await;
                    return Ending::Offline;
                }
            }
        }
    }
}

async fn session_v3(
    agent: &Arc<SimAgent>,
    broker: &Broker,
    inputs: &mut AgentInputs,
    mut boot: Option<BootReason>,
) -> Ending {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let own = agent_topic(&agent.endpoint_id);
    let controller = controller_topic(&agent.core().controller_id);
    // 3.1.1 carries the reply topic in the topic name (R-MQTT.24).
    let to_controller = with_reply_to(&controller, &own);
    let mut options = MqttOptions::new(agent.endpoint_id.clone(), broker.host.clone(), broker.port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(8 * 1024 * 1024, 8 * 1024 * 1024);
    options.set_last_will(rumqttc::LastWill::new(
        to_controller.clone(),
        agent.core().disconnect_record("connection lost"),
        QoS::AtLeastOnce,
        false,
    ));
    let (client, mut events) = AsyncClient::new(options, 256);
    loop {
        tokio::select! {
            event = events.poll() => match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    if client.subscribe(format!("{own}/#"), QoS::AtLeastOnce).await.is_err() {
                        return Ending::Lost;
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    agent.count_connect();
                    for r in first_records(agent, MqttVersion::V3_1_1, &boot.take()) {
                        let _ = client.publish(to_controller.clone(), QoS::AtLeastOnce, false, r).await;
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let reply = split_reply_to(&p.topic).1.unwrap_or_else(|| controller.clone());
                    let replies = agent.core().handle_record(&p.payload);
                    for r in replies {
                        let _ = client.publish(with_reply_to(&reply, &own), QoS::AtLeastOnce, false, r).await;
                    }
                    if let Some(reason) = run_effects(agent) {
                        let _ = client.disconnect().await;
                        return Ending::Boot(reason);
                    }
                }
                Ok(_) => {}
                Err(_) => return Ending::Lost,
            },
            records = inputs.local.recv() => {
                let Some(records) = records else { return Ending::Lost };
                for r in records {
                    let _ = client.publish(to_controller.clone(), QoS::AtLeastOnce, false, r).await;
                }
            }
            changed = inputs.online.changed() => {
                if changed.is_err() || !*inputs.online.borrow() {
                    let bye = agent.core().disconnect_record("agent going offline");
                    let _ = client.publish(to_controller.clone(), QoS::AtLeastOnce, false, bye).await;
                    let _ = client.disconnect().await;
                    let _ = tokio::time::timeout(Duration::from_millis(200), events.poll()).await;
                    return Ending::Offline;
                }
            }
        }
    }
}
