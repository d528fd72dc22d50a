//! The agents this node is talking to right now, by endpoint id: one live link per agent (a new
//! WebSocket connection replaces the old one), and each link's mailbox, through which it is
//! woken when an operation is queued, told it was replaced, or handed MQTT records.

use radar_core::DeviceKey;
use radar_usp::record::InboundRecord;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// Records waiting for one busy MQTT link; beyond this the broker's redelivery (the agent's
/// retry of an unacknowledged Notify) is the better buffer.
const MAX_QUEUED_RECORDS: usize = 1024;

#[derive(Debug)]
pub enum Signal {
    /// Operations were queued for this agent.
    Wake,
    /// A newer connection for the same endpoint id took over.
    Replaced,
    /// This node no longer leads the agent's shard: the agent should reconnect (through the
    /// router, to the new leader).
    Moved,
    /// A Record for this agent arrived on a shared MTP (MQTT), with the topic to answer on
    /// when the PUBLISH named one.
    Record {
        record: Box<InboundRecord>,
        reply_to: Option<String>,
    },
}

#[derive(Default)]
struct Inbox {
    wake: bool,
    replaced: bool,
    moved: bool,
    closed: bool,
    records: VecDeque<(Box<InboundRecord>, Option<String>)>,
}

/// A link's inbox. Lighter than an mpsc channel (whose first block holds 32 slots), because
/// every idle WebSocket agent has one (B5).
#[derive(Default)]
pub struct Mailbox {
    notify: Notify,
    inbox: Mutex<Inbox>,
}

impl Mailbox {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn inbox(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Posts a signal; gives it back when the link has closed (start another). A record for a
    /// link whose queue is full is dropped: the agent retries what was not acknowledged.
    pub fn post(&self, signal: Signal) -> Result<(), Signal> {
        {
            let mut inbox = self.inbox();
            if inbox.closed {
                return Err(signal);
            }
            match signal {
                Signal::Wake => inbox.wake = true,
                Signal::Replaced => inbox.replaced = true,
                Signal::Moved => inbox.moved = true,
                Signal::Record { record, reply_to } => {
                    if inbox.records.len() >= MAX_QUEUED_RECORDS {
                        tracing::warn!(from = %record.from_id, "usp link backlog full; record dropped");
                        return Ok(());
                    }
                    inbox.records.push_back((record, reply_to));
                }
            }
        }
        // Stores a permit when the link is not waiting, so no wake-up is lost.
        self.notify.notify_one();
        Ok(())
    }

    fn take(&self) -> Option<Signal> {
        let mut inbox = self.inbox();
        if std::mem::take(&mut inbox.replaced) {
            return Some(Signal::Replaced);
        }
        if std::mem::take(&mut inbox.moved) {
            return Some(Signal::Moved);
        }
        if let Some((record, reply_to)) = inbox.records.pop_front() {
            if inbox.records.is_empty() && inbox.records.capacity() > 4 {
                inbox.records = VecDeque::new();
            }
            return Some(Signal::Record { record, reply_to });
        }
        std::mem::take(&mut inbox.wake).then_some(Signal::Wake)
    }

    /// The next signal, in priority order: replacement, records, wake-up.
    pub async fn recv(&self) -> Signal {
        loop {
            if let Some(signal) = self.take() {
                return signal;
            }
            self.notify.notified().await;
        }
    }

    /// The link is ending: later posts are refused, so a new link is started instead.
    pub fn close(&self) {
        self.inbox().closed = true;
    }
}

struct Entry {
    generation: u64,
    mailbox: Arc<Mailbox>,
}

#[derive(Default)]
pub struct AgentRegistry {
    links: Mutex<HashMap<DeviceKey, Entry>>,
    next_generation: AtomicU64,
}

impl AgentRegistry {
    fn links(&self) -> MutexGuard<'_, HashMap<DeviceKey, Entry>> {
        self.links.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a link; an older link for the same agent is told it was replaced.
    pub fn register(&self, device: &DeviceKey, mailbox: Arc<Mailbox>) -> u64 {
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let old = self.links().insert(
            device.clone(),
            Entry {
                generation,
                mailbox,
            },
        );
        if let Some(old) = old {
            let _ = old.mailbox.post(Signal::Replaced);
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
        self.deliver(device, Signal::Wake).is_ok()
    }

    /// Hands a signal to the agent's live link, or gives it back when there is none.
    pub fn deliver(&self, device: &DeviceKey, signal: Signal) -> Result<(), Signal> {
        let mailbox = self.links().get(device).map(|e| e.mailbox.clone());
        match mailbox {
            Some(m) => m.post(signal),
            None => Err(signal),
        }
    }

    /// Tells the links of every agent `moved` selects that its shard moved away from this node;
    /// returns how many were told.
    pub fn move_away(&self, moved: impl Fn(&DeviceKey) -> bool) -> usize {
        let mailboxes: Vec<Arc<Mailbox>> = self
            .links()
            .iter()
            .filter(|(device, _)| moved(device))
            .map(|(_, entry)| entry.mailbox.clone())
            .collect();
        mailboxes
            .iter()
            .filter(|m| m.post(Signal::Moved).is_ok())
            .count()
    }

    pub fn is_connected(&self, device: &DeviceKey) -> bool {
        self.links().contains_key(device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_the_links_of_moved_agents_are_told_to_reconnect() {
        let registry = AgentRegistry::default();
        let moved = DeviceKey::parse("os::X-moved").unwrap();
        let stays = DeviceKey::parse("os::X-stays").unwrap();
        let (moved_box, stays_box) = (Mailbox::new(), Mailbox::new());
        registry.register(&moved, moved_box.clone());
        registry.register(&stays, stays_box.clone());
        stays_box.post(Signal::Wake).unwrap();
        assert_eq!(registry.move_away(|d| d == &moved), 1);
        assert!(matches!(moved_box.recv().await, Signal::Moved));
        assert!(matches!(stays_box.recv().await, Signal::Wake));
    }

    #[tokio::test]
    async fn a_new_link_replaces_the_old_one_which_cannot_unregister_it() {
        let registry = AgentRegistry::default();
        let device = DeviceKey::parse("os::X-1").unwrap();
        let (first_box, second_box) = (Mailbox::new(), Mailbox::new());
        let first = registry.register(&device, first_box.clone());
        let second = registry.register(&device, second_box.clone());
        assert!(matches!(first_box.recv().await, Signal::Replaced));
        registry.unregister(&device, first);
        assert!(registry.wake(&device));
        assert!(matches!(second_box.recv().await, Signal::Wake));
        second_box.close();
        assert!(
            !registry.wake(&device),
            "a closed link takes no more signals"
        );
        registry.unregister(&device, second);
        assert!(!registry.wake(&device));
    }

    #[tokio::test]
    async fn a_wake_posted_before_the_link_waits_is_not_lost() {
        let mailbox = Mailbox::new();
        mailbox.post(Signal::Wake).unwrap();
        mailbox.post(Signal::Wake).unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_secs(1), mailbox.recv()).await;
        assert!(matches!(got, Ok(Signal::Wake)));
        // Two wakes coalesce into one.
        let again =
            tokio::time::timeout(std::time::Duration::from_millis(50), mailbox.recv()).await;
        assert!(again.is_err());
    }
}
