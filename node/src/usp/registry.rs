//! The agents this node is talking to right now, by endpoint id: one live link per agent (a new
//! WebSocket connection replaces the old one), and a way to wake a link when an operation is
//! queued for its agent.

use radar_core::DeviceKey;
use radar_usp::record::InboundRecord;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::sync::mpsc;

#[derive(Debug)]
pub enum Signal {
    /// Operations were queued for this agent.
    Wake,
    /// A newer connection for the same endpoint id took over.
    Replaced,
    /// A Record for this agent arrived on a shared MTP (MQTT), with the topic to answer on
    /// when the PUBLISH named one.
    Record {
        record: Box<InboundRecord>,
        reply_to: Option<String>,
    },
}

struct Entry {
    generation: u64,
    signals: mpsc::Sender<Signal>,
}

#[derive(Default)]
pub struct AgentRegistry {
    links: Mutex<HashMap<DeviceKey, Entry>>,
    next_generation: AtomicU64,
}

impl AgentRegistry {
    fn links(&self) -> std::sync::MutexGuard<'_, HashMap<DeviceKey, Entry>> {
        self.links.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a link; an older link for the same agent is told it was replaced.
    pub fn register(&self, device: &DeviceKey, signals: mpsc::Sender<Signal>) -> u64 {
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let old = self.links().insert(
            device.clone(),
            Entry {
                generation,
                signals,
            },
        );
        if let Some(old) = old {
            let _ = old.signals.try_send(Signal::Replaced);
        }
        generation
    }

    /// Removes the link if it is still the registered one.
    pub fn unregister(&self, device: &DeviceKey, generation: u64) {
        let mut links = self.links();
        if links
            .get(device)
            .is_some_and(|e| e.generation == generation)
        {
            links.remove(device);
        }
    }

    /// Wakes the agent's link; false when it has none here.
    pub fn wake(&self, device: &DeviceKey) -> bool {
        self.signal(device, Signal::Wake)
    }

    /// Delivers a signal to the agent's link; false when it has none (or it is gone).
    pub fn signal(&self, device: &DeviceKey, signal: Signal) -> bool {
        let sender = self.links().get(device).map(|e| e.signals.clone());
        match sender {
            // A full queue still means the link is alive and busy; a wake then is redundant.
            Some(s) => !matches!(
                s.try_send(signal),
                Err(mpsc::error::TrySendError::Closed(_))
            ),
            None => false,
        }
    }

    /// Hands a signal to the agent's live link, or gives it back when there is none.
    pub fn deliver(&self, device: &DeviceKey, signal: Signal) -> Result<(), Signal> {
        let sender = self.links().get(device).map(|e| e.signals.clone());
        match sender {
            Some(s) => match s.try_send(signal) {
                Ok(()) => Ok(()),
                // A busy link still owns the agent: wait for room rather than start a second.
                Err(mpsc::error::TrySendError::Full(signal)) => {
                    tokio::spawn(async move {
                        let _ = s.send(signal).await;
                    });
                    Ok(())
                }
                Err(mpsc::error::TrySendError::Closed(signal)) => Err(signal),
            },
            None => Err(signal),
        }
    }

    pub fn is_connected(&self, device: &DeviceKey) -> bool {
        self.links().contains_key(device)
    }

    pub fn len(&self) -> usize {
        self.links().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_link_replaces_the_old_one_which_cannot_unregister_it() {
        let registry = AgentRegistry::default();
        let device = DeviceKey::parse("os::X-1").unwrap();
        let (tx1, mut rx1) = mpsc::channel(4);
        let (tx2, mut rx2) = mpsc::channel(4);
        let first = registry.register(&device, tx1);
        let second = registry.register(&device, tx2);
        assert!(matches!(rx1.try_recv(), Ok(Signal::Replaced)));
        registry.unregister(&device, first);
        assert!(registry.wake(&device));
        assert!(matches!(rx2.try_recv(), Ok(Signal::Wake)));
        registry.unregister(&device, second);
        assert!(!registry.wake(&device));
    }
}
