//! The one interface the node's core has to USP's message transfer protocols. Each MTP
//! (WebSocket, MQTT, and later STOMP) lives in its own module, depends on the core and registers
//! itself here when it starts; the core never names a transport.

use crate::core::NodeCore;
use radar_core::DeviceKey;
use radar_proto::cluster::UspRecord;
use std::sync::{Arc, RwLock};

pub trait UspMtp: Send + Sync {
    /// The name twins record as their `mtp` (`websocket`, `mqtt`, `stomp`).
    fn name(&self) -> &'static str;

    /// Try to reach an agent with no live link that work is waiting for. Only MTPs where the
    /// controller can speak first (through a broker) can; a WebSocket agent must connect.
    fn reach(&self, _core: &Arc<NodeCore>, _device: &DeviceKey) -> bool {
        false
    }

    /// A record another node received from this MTP for an agent whose shard this node leads.
    fn accept_forwarded(&self, _core: &Arc<NodeCore>, _record: UspRecord) -> bool {
        false
    }
}

/// The MTPs running in this node.
#[derive(Default)]
pub struct UspMtps {
    running: RwLock<Vec<Arc<dyn UspMtp>>>,
}

impl UspMtps {
    pub fn register(&self, mtp: Arc<dyn UspMtp>) {
        self.running
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(mtp);
    }

    pub fn named(&self, name: &str) -> Option<Arc<dyn UspMtp>> {
        self.running
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|m| m.name() == name)
            .cloned()
    }

    /// Asks the agent's MTP to reach it (see [`UspMtp::reach`]).
    pub fn reach(&self, core: &Arc<NodeCore>, device: &DeviceKey, mtp: &str) -> bool {
        self.named(mtp).is_some_and(|m| m.reach(core, device))
    }

    pub fn accept_forwarded(&self, core: &Arc<NodeCore>, mtp: &str, record: UspRecord) -> bool {
        self.named(mtp)
            .is_some_and(|m| m.accept_forwarded(core, record))
    }
}
