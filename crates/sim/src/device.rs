//! One simulated CPE: periodic informs, sessions against the ACS, the after-session behaviour of
//! a real device (reboot with `1 BOOT` + `M Reboot`, factory reset with `0 BOOTSTRAP`, downloads
//! that really fetch the file and end with TransferComplete), and active notification.

use crate::cpe::CpeState;
use crate::http::{self, Client, Url};
use radar_cwmp::rpc::get_parameter_values::ParameterValue;
use radar_cwmp::rpc::inform::{DeviceIdStruct, EventStruct, Inform};
use radar_cwmp::rpc::transfer_complete::{TransferComplete, TransferFault};
use radar_cwmp::{CwmpMessage, CwmpVersion, Envelope};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{debug, warn};

/// Why the device should start a session now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    ConnectionRequest,
    ValueChange,
    Periodic,
}

pub struct DeviceSettings {
    pub acs_url: String,
    pub acs_credentials: Option<(String, String)>,
    pub echo_cookies: bool,
    pub periodic_interval: Duration,
    /// Trusted CAs for an `https` ACS URL.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// Like cwmp-sim (commit cee4bd1): after an inform fails, schedule no other session until
    /// a connection request arrives (TR-069 §3.2.1.1 asks for retries; some firmware does not).
    pub gives_up_after_failed_inform: bool,
}

pub struct SimDevice {
    pub serial: String,
    pub oui: String,
    pub product_class: String,
    pub manufacturer: String,
    pub state: Mutex<CpeState>,
    pub sessions: AtomicU64,
    /// Informs the ACS acknowledged with an InformResponse: each must be in the twin for good.
    pub informs_acknowledged: AtomicU64,
    pub online: AtomicBool,
    /// UDP connection requests (behind a NAT) accepted, and refused or unreadable.
    pub udp_requests_accepted: AtomicU64,
    pub udp_requests_rejected: AtomicU64,
    /// XMPP connection requests (Annex K) accepted, and refused.
    pub xmpp_requests_accepted: AtomicU64,
    pub xmpp_requests_rejected: AtomicU64,
    triggers: mpsc::Sender<Trigger>,
    /// Parameters changed locally since the last inform, reported with `4 VALUE CHANGE`.
    changed: Mutex<Vec<String>>,
}

impl SimDevice {
    pub fn new(
        serial: String,
        oui: String,
        product_class: String,
        state: CpeState,
    ) -> (std::sync::Arc<Self>, mpsc::Receiver<Trigger>) {
        let (tx, rx) = mpsc::channel(16);
        let device = SimDevice {
            serial,
            oui,
            product_class,
            manufacturer: "Radar Simulated Devices".into(),
            state: Mutex::new(state),
            sessions: AtomicU64::new(0),
            informs_acknowledged: AtomicU64::new(0),
            online: AtomicBool::new(true),
            udp_requests_accepted: AtomicU64::new(0),
            udp_requests_rejected: AtomicU64::new(0),
            xmpp_requests_accepted: AtomicU64::new(0),
            xmpp_requests_rejected: AtomicU64::new(0),
            triggers: tx,
            changed: Mutex::new(Vec::new()),
        };
        (std::sync::Arc::new(device), rx)
    }

    pub fn param(&self, path: &str) -> Option<String> {
        self.lock().model.get(path).map(|p| p.value.clone())
    }

    pub fn notification(&self, path: &str) -> Option<u8> {
        self.lock().model.get(path).map(|p| p.notification)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CpeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes a parameter locally. Under active notification the device informs at once with
    /// `4 VALUE CHANGE` (TR-069 A.3.3.1); under passive it rides along with the next inform.
    pub fn local_change(&self, path: &str, value: &str) -> bool {
        let notification = self.lock().local_change(path, value);
        match notification {
            Some(n) if n > 0 => {
                self.changed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(path.to_owned());
                if n == 2 {
                    let _ = self.triggers.try_send(Trigger::ValueChange);
                }
                true
            }
            Some(_) => true,
            None => false,
        }
    }

    pub fn trigger(&self, trigger: Trigger) -> bool {
        self.online.load(Ordering::Relaxed) && self.triggers.try_send(trigger).is_ok()
    }

    pub fn set_online(&self, online: bool) {
        self.online.store(online, Ordering::Relaxed);
    }

    fn inform(&self, events: &[(String, String)]) -> Inform {
        let state = self.lock();
        let mut names: Vec<String> = [
            "Device.RootDataModelVersion",
            "Device.DeviceInfo.HardwareVersion",
            "Device.DeviceInfo.SoftwareVersion",
            "Device.DeviceInfo.ProvisioningCode",
            "Device.ManagementServer.ParameterKey",
            "Device.ManagementServer.ConnectionRequestURL",
            "Device.IP.Interface.1.IPv4Address.1.IPAddress",
        ]
        .map(String::from)
        .to_vec();
        // TR-069 A.3.3.1: parameters with (passive or active) notification that changed are
        // included in the Inform.
        for path in self
            .changed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            if !names.contains(&path) {
                names.push(path);
            }
        }
        let parameters = names
            .iter()
            .filter_map(|n| {
                state
                    .model
                    .get(n)
                    .map(|p| ParameterValue::new(n.clone(), p.value.clone(), p.ty.xsd()))
            })
            .collect();
        Inform {
            device_id: DeviceIdStruct {
                manufacturer: self.manufacturer.clone(),
                oui: self.oui.clone(),
                product_class: self.product_class.clone(),
                serial_number: self.serial.clone(),
            },
            events: events
                .iter()
                .map(|(c, k)| EventStruct {
                    code: c.clone(),
                    command_key: k.clone(),
                })
                .collect(),
            max_envelopes: 1,
            current_time: radar_core::Timestamp::now().to_rfc3339(),
            retry_count: 0,
            parameters,
        }
    }

    /// The device's main loop: boots, then informs on triggers and on its periodic interval.
    pub async fn run(
        self: std::sync::Arc<Self>,
        settings: DeviceSettings,
        mut triggers: mpsc::Receiver<Trigger>,
    ) {
        let mut events: Vec<(String, String)> = vec![
            ("0 BOOTSTRAP".into(), String::new()),
            ("1 BOOT".into(), String::new()),
        ];
        let mut transfers: Vec<TransferComplete> = Vec::new();
        let mut retry = Duration::from_millis(500);
        let mut given_up = false;
        loop {
            if self.online.load(Ordering::Relaxed) && !events.is_empty() {
                match self.session(&settings, &events, &transfers).await {
                    Ok(()) => {
                        retry = Duration::from_millis(500);
                        events.clear();
                        transfers.clear();
                        self.sessions.fetch_add(1, Ordering::Relaxed);
                        let (next_events, next_transfers) = self.after_session().await;
                        events = next_events;
                        transfers = next_transfers;
                        if !events.is_empty() {
                            continue;
                        }
                    }
                    Err(e) if settings.gives_up_after_failed_inform => {
                        debug!(serial = %self.serial, error = %e, "session failed; giving up until a connection request");
                        events.clear();
                        given_up = true;
                    }
                    Err(e) => {
                        debug!(serial = %self.serial, error = %e, "session failed; retrying");
                        tokio::time::sleep(retry).await;
                        retry = (retry * 2).min(Duration::from_secs(30));
                        continue;
                    }
                }
            }
            let interval = self.periodic_interval(&settings);
            let trigger = if given_up {
                match triggers.recv().await {
                    Some(t) => t,
                    None => return,
                }
            } else {
                tokio::select! {
                    t = triggers.recv() => match t { Some(t) => t, None => return },
                    _ = tokio::time::sleep(interval) => Trigger::Periodic,
                }
            };
            if trigger == Trigger::ConnectionRequest {
                given_up = false;
            }
            if !self.online.load(Ordering::Relaxed) {
                events.clear();
                continue;
            }
            let code = match trigger {
                Trigger::ConnectionRequest => "6 CONNECTION REQUEST",
                Trigger::ValueChange => "4 VALUE CHANGE",
                Trigger::Periodic => "2 PERIODIC",
            };
            events.push((code.into(), String::new()));
            if trigger != Trigger::ValueChange
                && !self
                    .changed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_empty()
            {
                events.push(("4 VALUE CHANGE".into(), String::new()));
            }
        }
    }

    /// The fleet's interval (which may be sub-second, for tests) until the ACS changes
    /// `PeriodicInformInterval`; from then on the device follows the parameter, in seconds.
    fn periodic_interval(&self, settings: &DeviceSettings) -> Duration {
        const PATH: &str = "Device.ManagementServer.PeriodicInformInterval";
        let state = self.lock();
        let current = state.model.get(PATH).map(|p| p.value.as_str());
        let factory = state.defaults.get(PATH).map(|p| p.value.as_str());
        match current
            .filter(|c| Some(*c) != factory)
            .and_then(|v| v.parse::<u64>().ok())
        {
            Some(seconds) => Duration::from_secs(seconds.max(1)),
            None => settings.periodic_interval,
        }
    }

    async fn session(
        &self,
        settings: &DeviceSettings,
        events: &[(String, String)],
        transfers: &[TransferComplete],
    ) -> Result<(), http::HttpError> {
        let url = Url::parse(&settings.acs_url)?;
        let mut client = Client::new(
            url,
            settings.echo_cookies,
            settings.acs_credentials.clone(),
            settings.tls.clone(),
        );
        let inform = Envelope::new(
            CwmpVersion::V1_0,
            Some(format!("inform-{}", rand::random::<u32>())),
            CwmpMessage::Inform(self.inform(events)),
        );
        let response = client.post(inform.encode()).await?;
        let acknowledged = response.status == 200
            && Envelope::decode(&response.body)
                .is_ok_and(|e| matches!(e.message, CwmpMessage::InformResponse(_)));
        if !acknowledged {
            warn!(serial = %self.serial, status = response.status, "inform not accepted");
            return Err(http::HttpError::BadUrl(format!(
                "inform answered {}",
                response.status
            )));
        }
        self.informs_acknowledged.fetch_add(1, Ordering::Relaxed);
        for tc in transfers {
            let env = Envelope::new(
                CwmpVersion::V1_0,
                Some("tc-1".into()),
                CwmpMessage::TransferComplete(tc.clone()),
            );
            client.post(env.encode()).await?;
        }
        let mut body = String::new();
        for _ in 0..10_000 {
            let response = client.post(std::mem::take(&mut body)).await?;
            if response.status == 204 || response.body.is_empty() {
                return Ok(());
            }
            let envelope = match Envelope::decode(&response.body) {
                Ok(e) => e,
                Err(e) => {
                    warn!(serial = %self.serial, error = %e, "undecodable acs request");
                    return Ok(());
                }
            };
            if self.lock().crashes_on(&envelope.message) {
                return Err(http::HttpError::Crashed(envelope.message.name()));
            }
            let reply = self.lock().respond(&envelope.message);
            body = Envelope::new(envelope.version, envelope.id, reply).encode();
        }
        Ok(())
    }

    /// Performs what the session asked for and returns the next session's events and transfers.
    async fn after_session(&self) -> (Vec<(String, String)>, Vec<TransferComplete>) {
        let after = std::mem::take(&mut self.lock().after);
        let mut events = Vec::new();
        let mut transfers = Vec::new();
        for download in after.downloads {
            let start = radar_core::Timestamp::now().to_rfc3339();
            let fault = match http::get(&download.url).await {
                Ok((200, _)) => TransferFault::default(),
                Ok((status, _)) => TransferFault {
                    code: 9010,
                    message: format!("Download failure: HTTP {status}"),
                },
                Err(e) => TransferFault {
                    code: 9010,
                    message: format!("Download failure: {e}"),
                },
            };
            let firmware = download.file_type.starts_with('1');
            if fault.code == 0 && firmware {
                // A firmware image named like `fw-<version>.bin` becomes the running version.
                let name = download.url.rsplit('/').next().unwrap_or("");
                let version = name
                    .strip_prefix("fw-")
                    .and_then(|n| n.strip_suffix(".bin"))
                    .unwrap_or(name);
                let _ = self
                    .lock()
                    .local_change("Device.DeviceInfo.SoftwareVersion", version);
                events.push(("1 BOOT".into(), String::new()));
            }
            transfers.push(TransferComplete {
                command_key: download.command_key.clone(),
                fault,
                start_time: start,
                complete_time: radar_core::Timestamp::now().to_rfc3339(),
            });
            events.push(("7 TRANSFER COMPLETE".into(), String::new()));
            events.push(("M Download".into(), download.command_key.clone()));
        }
        for upload in after.uploads {
            let start = radar_core::Timestamp::now().to_rfc3339();
            let config: String = {
                let state = self.lock();
                state
                    .model
                    .params
                    .iter()
                    .map(|(k, v)| format!("{k}={}\n", v.value))
                    .collect()
            };
            let fault = match http::put(&upload.url, config.into_bytes()).await {
                Ok(status) if (200..300).contains(&status) => TransferFault::default(),
                Ok(status) => TransferFault {
                    code: 9011,
                    message: format!("Upload failure: HTTP {status}"),
                },
                Err(e) => TransferFault {
                    code: 9011,
                    message: format!("Upload failure: {e}"),
                },
            };
            transfers.push(TransferComplete {
                command_key: upload.command_key.clone(),
                fault,
                start_time: start,
                complete_time: radar_core::Timestamp::now().to_rfc3339(),
            });
            events.push(("7 TRANSFER COMPLETE".into(), String::new()));
            events.push(("M Upload".into(), upload.command_key.clone()));
        }
        if after.factory_reset {
            self.lock().reset_to_defaults();
            tokio::time::sleep(Duration::from_millis(200)).await;
            events.push(("0 BOOTSTRAP".into(), String::new()));
            events.push(("1 BOOT".into(), String::new()));
        } else if let Some(key) = after.reboot {
            tokio::time::sleep(Duration::from_millis(200)).await;
            events.push(("1 BOOT".into(), String::new()));
            events.push(("M Reboot".into(), key));
        }
        if let Some((delay, key)) = after.schedule_inform {
            tokio::time::sleep(Duration::from_secs(u64::from(delay).min(60))).await;
            events.push(("3 SCHEDULED".into(), String::new()));
            events.push(("M ScheduleInform".into(), key));
        }
        events.dedup();
        (events, transfers)
    }
}
