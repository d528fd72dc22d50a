//! USP over MQTT in a cluster. The broker is the front door (DESIGN §2): every node subscribes
//! through one MQTT 5 shared subscription, `$share/radar/usp/controller/<id>/#`, so the broker
//! spreads the agents' records over the nodes. A node that takes a record for an agent whose
//! shard another node leads forwards it over gRPC (`Cluster.ForwardUspRecord`) to that node,
//! which runs the agent's session and publishes the replies. A record that cannot be forwarded
//! is handled here (its twin commands are then forwarded one by one); the agent's own retries
//! (NotifRetry) cover a record lost with a crashed node.

use crate::core::NodeCore;
use crate::raft::network::MAX_MESSAGE_BYTES;
use radar_core::DeviceKey;
use radar_proto::cluster::cluster_client::ClusterClient;
use radar_proto::cluster::UspRecord;
use std::sync::Arc;
use tracing::debug;

/// The shared-subscription group of Radar nodes.
pub const SHARE_GROUP: &str = "radar";

/// The topic filter a node subscribes to. `<topic>/#` also matches `<topic>` itself (MQTT
/// 4.7.1.2), so one filter covers MQTT 5 records and 3.1.1 `/reply-to=` suffixes.
pub fn subscription_filter(controller_topic: &str, shared: bool) -> String {
    if shared {
        format!("$share/{SHARE_GROUP}/{controller_topic}/#")
    } else {
        format!("{controller_topic}/#")
    }
}

/// Forwards the record to the node leading `device`'s shard if that is another node; true
/// when the record is on its way there (this node does nothing more with it).
pub fn forward_if_led_elsewhere(
    core: &Arc<NodeCore>,
    publisher: &Arc<super::Publisher>,
    device: &DeviceKey,
    payload: &[u8],
    topic: &str,
    response_topic: Option<&str>,
) -> bool {
    let Some(meta) = core.meta.clone() else {
        return false;
    };
    let local = core.fleet.shard_for(device);
    if local.as_ref().is_some_and(|s| s.is_leader()) {
        return false;
    }
    let Some(shard) = core.fleet.shard_id_for(device) else {
        return false;
    };
    let hint = local.and_then(|s| s.leader());
    let record = UspRecord {
        payload: payload.to_vec(),
        topic: topic.to_owned(),
        response_topic: response_topic.unwrap_or_default().to_owned(),
    };
    let core = core.clone();
    let publisher = publisher.clone();
    let device = device.clone();
    tokio::spawn(async move {
        let leader = match hint {
            Some(leader) => Some(leader),
            None => crate::cluster::status::find_leader(&meta, shard).await,
        };
        let node = leader
            .filter(|l| *l != meta.info.id)
            .and_then(|l| meta.current().nodes.get(&l).cloned());
        let sent = match node {
            Some(node) => match meta.peers.channel(node.id, &node.grpc) {
                Ok(channel) => ClusterClient::new(channel)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES)
                    .forward_usp_record(record.clone())
                    .await
                    .is_ok_and(|r| r.into_inner().accepted),
                Err(_) => false,
            },
            None => false,
        };
        core.metrics
            .usp_forwarded
            .with_label_values(&[if sent { "sent" } else { "handled_here" }])
            .inc();
        if !sent {
            debug!(%device, "usp record not forwarded; handling it here");
            accept_forwarded(&core, &publisher, record);
        }
    });
    true
}

/// Handles a record another node forwarded, as if it came from the broker.
pub fn accept_forwarded(
    core: &Arc<NodeCore>,
    publisher: &Arc<super::Publisher>,
    record: UspRecord,
) -> bool {
    let response_topic = (!record.response_topic.is_empty()).then_some(record.response_topic);
    super::on_publish(
        core,
        publisher,
        &record.topic,
        &record.payload,
        response_topic,
        true,
    );
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_nodes_share_one_subscription() {
        assert_eq!(
            subscription_filter("usp/controller/self::radar", true),
            "$share/radar/usp/controller/self::radar/#"
        );
        assert_eq!(
            subscription_filter("usp/controller/self::radar", false),
            "usp/controller/self::radar/#"
        );
    }
}
