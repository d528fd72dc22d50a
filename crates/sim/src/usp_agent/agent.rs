//! A running simulated agent, shared by its MTP task and the test or CLI that drives it.

use super::AgentCore;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

pub struct SimAgent {
    pub endpoint_id: String,
    core: Mutex<AgentCore>,
    online: watch::Sender<bool>,
    local: mpsc::Sender<Vec<Vec<u8>>>,
    /// MTP connections made.
    pub connects: AtomicU64,
    /// Boots (the first start and every reboot).
    pub boots: AtomicU64,
    /// How long a reboot keeps the agent away.
    pub reboot_delay: Duration,
}

/// How one MTP connection of an agent ended.
pub(crate) enum Ending {
    Lost,
    Offline,
    Boot(BootReason),
}

pub struct AgentInputs {
    pub local: mpsc::Receiver<Vec<Vec<u8>>>,
    pub online: watch::Receiver<bool>,
}

impl AgentInputs {
    /// Waits until the agent is online; counts a boot if it is about to boot. False when the
    /// agent was dropped.
    pub(crate) async fn until_online(&mut self, agent: &SimAgent, booting: bool) -> bool {
        while !*self.online.borrow() {
            if self.online.changed().await.is_err() {
                return false;
            }
        }
        if booting {
            agent.count_boot();
        }
        true
    }
}

impl SimAgent {
    pub fn new(core: AgentCore, reboot_delay: Duration) -> (Arc<Self>, AgentInputs) {
        let (local_tx, local_rx) = mpsc::channel(256);
        let (online_tx, online_rx) = watch::channel(true);
        (
            Arc::new(Self {
                endpoint_id: core.endpoint_id.clone(),
                core: Mutex::new(core),
                online: online_tx,
                local: local_tx,
                connects: AtomicU64::new(0),
                boots: AtomicU64::new(0),
                reboot_delay,
            }),
            AgentInputs {
                local: local_rx,
                online: online_rx,
            },
        )
    }

    pub fn core(&self) -> MutexGuard<'_, AgentCore> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn param(&self, path: &str) -> Option<String> {
        self.core().param(path).map(str::to_owned)
    }

    /// Takes the agent off the network (its connection closes) or brings it back.
    pub fn set_online(&self, online: bool) {
        let _ = self.online.send(online);
    }

    pub fn is_online(&self) -> bool {
        *self.online.borrow()
    }

    /// Queues records for the MTP task to send (dropped while offline, as a real agent's
    /// notifications are when it has no connection).
    pub(crate) fn send_later(&self, records: Vec<Vec<u8>>) {
        if !records.is_empty() && self.is_online() {
            let _ = self.local.try_send(records);
        }
    }

    /// A local change (a user on the LAN); subscribed changes are notified at once.
    pub fn local_change(&self, path: &str, value: &str) {
        let records = self.core().local_change(path, value);
        self.send_later(records);
    }

    pub fn add_host(&self, name: &str) {
        let records = self.core().add_host(name);
        self.send_later(records);
    }

    pub fn remove_host(&self, instance: u32) {
        let records = self.core().remove_host(instance);
        self.send_later(records);
    }

    pub fn notify_resps(&self) -> u64 {
        self.core().notify_resps
    }

    pub fn subscription_ids(&self) -> Vec<String> {
        self.core()
            .model
            .params
            .iter()
            .filter(|(k, _)| k.starts_with(super::notify::SUBSCRIPTIONS) && k.ends_with(".ID"))
            .map(|(_, v)| v.value.clone())
            .collect()
    }

    pub(crate) fn count_connect(&self) {
        self.connects.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_boot(&self) {
        self.boots.fetch_add(1, Ordering::Relaxed);
    }
}

/// Why the agent's next connection starts with a Boot! and what it says.
#[derive(Debug, Clone)]
pub struct BootReason {
    pub cause: String,
    pub command_key: String,
    pub firmware_updated: bool,
}

impl Default for BootReason {
    fn default() -> Self {
        Self {
            cause: "LocalReboot".into(),
            command_key: String::new(),
            firmware_updated: false,
        }
    }
}

/// Carries out side effects after a message exchange. Returns the boot to perform, if the agent
/// must drop its connection and come back.
pub(crate) fn run_effects(agent: &Arc<SimAgent>) -> Option<BootReason> {
    let effects = agent.core().take_effects();
    let mut boot = None;
    for effect in effects {
        match effect {
            super::Effect::Reboot { command_key, cause } => {
                boot = Some(BootReason {
                    cause,
                    command_key,
                    firmware_updated: false,
                })
            }
            super::Effect::FactoryReset { command_key } => {
                agent.core().reset_to_defaults();
                boot = Some(BootReason {
                    cause: "RemoteFactoryReset".into(),
                    command_key,
                    firmware_updated: false,
                });
            }
            super::Effect::Download {
                url,
                image,
                command_key,
                request_path,
                auto_activate,
            } => {
                let agent = agent.clone();
                tokio::spawn(async move {
                    let fetched = crate::http::get(&url).await;
                    let result = match fetched {
                        Ok((200, _)) => Ok(()),
                        Ok((status, _)) => Err((
                            radar_usp::errors::COMMAND_FAILURE,
                            format!("download failed with HTTP {status}"),
                        )),
                        Err(e) => Err((
                            radar_usp::errors::COMMAND_FAILURE,
                            format!("download failed: {e}"),
                        )),
                    };
                    let version = url
                        .rsplit('/')
                        .next()
                        .unwrap_or("")
                        .trim_end_matches(".bin")
                        .to_owned();
                    let mut records = Vec::new();
                    {
                        let mut core = agent.core();
                        core.model
                            .params
                            .retain(|k, _| !k.starts_with(&request_path));
                        if result.is_ok() {
                            if let Some(p) = core.model.params.get_mut(&format!("{image}Version")) {
                                p.value = version.clone();
                            }
                            if auto_activate {
                                let images: Vec<String> = core
                                    .model
                                    .params
                                    .keys()
                                    .filter(|k| {
                                        k.starts_with("Device.DeviceInfo.FirmwareImage.")
                                            && k.ends_with(".Status")
                                    })
                                    .cloned()
                                    .collect();
                                for status in images {
                                    let active = status.starts_with(&image);
                                    if let Some(p) = core.model.params.get_mut(&status) {
                                        p.value =
                                            if active { "Active" } else { "Available" }.into();
                                    }
                                }
                                records.extend(
                                    core.local_change(
                                        "Device.DeviceInfo.SoftwareVersion",
                                        &version,
                                    ),
                                );
                            }
                        }
                        let obj = image.clone();
                        records.extend(core.operation_complete(
                            &obj,
                            "Download()",
                            &command_key,
                            result.map(|_| Default::default()),
                        ));
                    }
                    agent.send_later(records);
                });
            }
        }
    }
    boot
}
