//! A simulated USP agent (TR-369) that behaves on the wire like the Broadband Forum's reference
//! agent, obuspa: it announces itself with a WebSocketConnect (or MQTTConnect) record, sends a
//! `Device.Boot!` Event if a subscription asks for it, ignores records not addressed to it,
//! answers Get/Set/Add/Delete/Operate/GetSupportedDM/GetInstances/GetSupportedProtocol, refuses
//! subscriptions the way real agents do (7005, 7018, 7025), and notifies ValueChange,
//! ObjectCreation/Deletion, Event and OperationComplete. It reuses `radar-usp` in the agent role.
//!
//! Modules:
//! - [`handlers`]: the request handlers over the simulated data model.
//! - [`notify`]: subscriptions and the Notify messages they produce.
//! - [`agent`]: a running agent: its core, online switch, local events and counters.
//! - [`ws`]: the WebSocket MTP client.
//! - [`mqtt`]: the MQTT MTP client (MQTT 5 or 3.1.1).

pub mod agent;
pub mod handlers;
pub mod mqtt;
pub mod notify;
pub mod stomp;
pub mod ws;

use crate::model::{Identity, SimModel};
use radar_core::ParamType;
use radar_usp::proto::msg::{body, header, request, Body, Header, Msg};
use radar_usp::record::{self, RecordKind};
use std::collections::BTreeMap;

pub const CONTROLLER_ENTRY: &str = "Device.LocalAgent.Controller.1";
pub const REQUEST_TABLE: &str = "Device.LocalAgent.Request.";

/// Something the agent must do outside the message exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Drop the connection, come back after a while, send Boot! with this cause and key.
    Reboot { command_key: String, cause: String },
    /// Wipe the data model (keeping the controller entry it was provisioned with), then reboot.
    FactoryReset { command_key: String },
    /// Fetch `url` into firmware bank `image`, then report OperationComplete.
    Download {
        url: String,
        image: String,
        command_key: String,
        request_path: String,
        auto_activate: bool,
    },
}

pub struct AgentCore {
    pub endpoint_id: String,
    pub controller_id: String,
    pub model: SimModel,
    defaults: SimModel,
    next_msg: u64,
    effects: Vec<Effect>,
    /// Records addressed to someone else that were ignored (as obuspa does).
    pub ignored_records: u64,
    /// NotifyResp messages received (Notifies the controller acknowledged).
    pub notify_resps: u64,
}

/// The home gateway plus what a USP agent adds: its LocalAgent (endpoint id, controller entry,
/// subscription and request tables) and two firmware banks.
pub fn agent_model(identity: &Identity, endpoint_id: &str, controller_id: &str) -> SimModel {
    use ParamType::*;
    let mut m = SimModel::home_gateway(identity);
    // Device.ManagementServer is the CWMP client's object; a USP agent (obuspa) has none. Nor
    // does this agent keep vendor log files (the CWMP Upload's source), so the agent's
    // Device.DeviceInfo. covers only part of the CWMP side's.
    m.params.retain(|path, _| {
        !path.starts_with("Device.ManagementServer.")
            && !path.starts_with("Device.DeviceInfo.VendorLogFile")
    });
    local_agent(&mut m, endpoint_id, controller_id);
    for (i, status, version) in [
        (1, "Active", identity.software_version.as_str()),
        (2, "Available", "0.9.0"),
    ] {
        let image = format!("Device.DeviceInfo.FirmwareImage.{i}.");
        m.ro(&format!("{image}Name"), &format!("bank{i}"), String);
        m.ro(&format!("{image}Version"), version, String);
        m.ro(&format!("{image}Status"), status, String);
        m.rw(&format!("{image}Available"), "true", Boolean);
    }
    m.ro(
        "Device.DeviceInfo.FirmwareImageNumberOfEntries",
        "2",
        UnsignedInt,
    );
    m
}

/// What every agent has: `Device.LocalAgent.` with one controller entry and the subscription
/// and request tables.
fn local_agent(m: &mut SimModel, endpoint_id: &str, controller_id: &str) {
    use ParamType::*;
    m.ro("Device.LocalAgent.EndpointID", endpoint_id, String);
    m.ro(
        "Device.LocalAgent.SupportedProtocols",
        "WebSocket, MQTT",
        String,
    );
    m.ro(
        &format!("{CONTROLLER_ENTRY}.EndpointID"),
        controller_id,
        String,
    );
    m.rw(&format!("{CONTROLLER_ENTRY}.Enable"), "true", Boolean);
    m.ro(
        "Device.LocalAgent.ControllerNumberOfEntries",
        "1",
        UnsignedInt,
    );
    m.ro(
        "Device.LocalAgent.SubscriptionNumberOfEntries",
        "0",
        UnsignedInt,
    );
    m.tables.insert(notify::SUBSCRIPTIONS.into(), 1);
    m.tables.insert(REQUEST_TABLE.into(), 1);
}

impl AgentCore {
    pub fn new(identity: &Identity, endpoint_id: &str, controller_id: &str) -> Self {
        Self::with_model(
            agent_model(identity, endpoint_id, controller_id),
            endpoint_id,
            controller_id,
        )
    }

    fn with_model(model: SimModel, endpoint_id: &str, controller_id: &str) -> Self {
        Self {
            endpoint_id: endpoint_id.into(),
            controller_id: controller_id.into(),
            defaults: model.clone(),
            model,
            next_msg: 1,
            effects: Vec::new(),
            ignored_records: 0,
            notify_resps: 0,
        }
    }

    /// An agent with nothing but its LocalAgent and a serial number: for load tests where the
    /// connection, not the data model, is being measured.
    pub fn minimal(endpoint_id: &str, controller_id: &str) -> Self {
        let mut model = SimModel {
            params: Default::default(),
            tables: Default::default(),
        };
        local_agent(&mut model, endpoint_id, controller_id);
        model.ro(
            "Device.DeviceInfo.SerialNumber",
            endpoint_id.rsplit('-').next().unwrap_or(endpoint_id),
            ParamType::String,
        );
        Self::with_model(model, endpoint_id, controller_id)
    }

    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    pub(crate) fn effect(&mut self, effect: Effect) {
        self.effects.push(effect);
    }

    /// A factory reset: the model as shipped. Subscriptions are gone, even persistent ones.
    pub fn reset_to_defaults(&mut self) {
        self.model = self.defaults.clone();
    }

    pub fn param(&self, path: &str) -> Option<&str> {
        self.model.params.get(path).map(|p| p.value.as_str())
    }

    fn msg_id(&mut self) -> String {
        let id = format!("{}-{}", self.endpoint_id, self.next_msg);
        self.next_msg += 1;
        id
    }

    /// Wraps a Msg for the controller.
    pub fn record(&self, msg: &Msg) -> Vec<u8> {
        record::encode_message(&self.controller_id, &self.endpoint_id, msg)
    }

    /// The Disconnect record an agent sends before it leaves an MTP (TR-369 §6.1), also used
    /// as its MQTT will so the broker announces an unclean departure.
    pub fn disconnect_record(&self, reason: &str) -> Vec<u8> {
        record::encode_disconnect(&self.controller_id, &self.endpoint_id, reason, 0)
    }

    pub fn websocket_connect(&self) -> Vec<u8> {
        record::encode_websocket_connect(&self.controller_id, &self.endpoint_id)
    }

    pub fn mqtt_connect(&self, version: record::MqttVersion, topic: &str) -> Vec<u8> {
        record::encode_mqtt_connect(&self.controller_id, &self.endpoint_id, version, topic)
    }

    pub fn stomp_connect(&self, destination: &str) -> Vec<u8> {
        record::encode_stomp_connect(&self.controller_id, &self.endpoint_id, destination)
    }

    /// Handles one inbound Record; returns the Records to send back. Records for another
    /// endpoint are ignored, as obuspa ignores them.
    pub fn handle_record(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        let inbound =
            match record::decode(bytes, &self.endpoint_id, record::DEFAULT_MAX_RECORD_BYTES) {
                Ok(r) => r,
                Err(_) => {
                    self.ignored_records += 1;
                    return Vec::new();
                }
            };
        match inbound.kind {
            RecordKind::Message(msg) => self
                .handle_msg(*msg)
                .map(|reply| vec![self.record(&reply)])
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// Answers a request Msg; responses (NotifyResp) need no answer.
    pub fn handle_msg(&mut self, msg: Msg) -> Option<Msg> {
        let msg_id = msg.header.as_ref()?.msg_id.clone();
        let req = match msg.body?.msg_body? {
            body::MsgBody::Request(r) => r.req_type?,
            body::MsgBody::Response(r) => {
                if matches!(
                    r.resp_type,
                    Some(radar_usp::proto::msg::response::RespType::NotifyResp(_))
                ) {
                    self.notify_resps += 1;
                }
                return None;
            }
            body::MsgBody::Error(_) => return None,
        };
        let (ty, resp) = match req {
            request::ReqType::Get(g) => handlers::get(self, &g),
            request::ReqType::Set(s) => handlers::set(self, &s),
            request::ReqType::Add(a) => handlers::add(self, &a),
            request::ReqType::Delete(d) => handlers::delete(self, &d),
            request::ReqType::Operate(o) => handlers::operate(self, &o),
            request::ReqType::GetSupportedDm(g) => handlers::get_supported_dm(self, &g),
            request::ReqType::GetInstances(g) => handlers::get_instances(self, &g),
            request::ReqType::GetSupportedProtocol(_) => handlers::get_supported_protocol(),
            _ => {
                return Some(radar_usp::msg::error(
                    &msg_id,
                    radar_usp::errors::MESSAGE_NOT_SUPPORTED,
                    "not supported by this agent",
                ))
            }
        };
        Some(match resp {
            Ok(body) => Msg {
                header: Some(Header {
                    msg_id,
                    msg_type: ty as i32,
                }),
                body: Some(body),
            },
            Err(error) => Msg {
                header: Some(Header {
                    msg_id,
                    msg_type: header::MsgType::Error as i32,
                }),
                body: Some(Body {
                    msg_body: Some(body::MsgBody::Error(error)),
                }),
            },
        })
    }

    /// Sets a parameter as a local user would, returning the ValueChange Notifies it triggers.
    pub fn local_change(&mut self, path: &str, value: &str) -> Vec<Vec<u8>> {
        let Some(p) = self.model.params.get_mut(path) else {
            return Vec::new();
        };
        p.value = value.into();
        let msgs = notify::value_change(self, path, value);
        msgs.iter().map(|m| self.record(m)).collect()
    }

    /// A new LAN host appears (ObjectCreation on `Device.Hosts.Host.`).
    pub fn add_host(&mut self, name: &str) -> Vec<Vec<u8>> {
        let table = "Device.Hosts.Host.";
        let instance = (1..)
            .find(|i| {
                !self
                    .model
                    .params
                    .contains_key(&format!("{table}{i}.HostName"))
            })
            .unwrap_or(1);
        let obj = format!("{table}{instance}.");
        self.model
            .ro(&format!("{obj}HostName"), name, ParamType::String);
        self.model
            .ro(&format!("{obj}Active"), "true", ParamType::Boolean);
        let msgs = notify::object_event(self, &obj, true);
        msgs.iter().map(|m| self.record(m)).collect()
    }

    /// A LAN host leaves (ObjectDeletion).
    pub fn remove_host(&mut self, instance: u32) -> Vec<Vec<u8>> {
        let obj = format!("Device.Hosts.Host.{instance}.");
        self.model.params.retain(|k, _| !k.starts_with(&obj));
        let msgs = notify::object_event(self, &obj, false);
        msgs.iter().map(|m| self.record(m)).collect()
    }

    /// The Boot! Event after a (re)connect, if a subscription asks for it.
    pub fn boot(&mut self, cause: &str, command_key: &str, firmware_updated: bool) -> Vec<Vec<u8>> {
        let mut args = BTreeMap::new();
        args.insert("Cause".to_string(), cause.to_string());
        args.insert("CommandKey".to_string(), command_key.to_string());
        args.insert("FirmwareUpdated".to_string(), firmware_updated.to_string());
        args.insert("ParameterMap".to_string(), "{}".to_string());
        let msgs = notify::event(self, "Device.", "Boot!", args);
        msgs.iter().map(|m| self.record(m)).collect()
    }

    /// OperationComplete for an async command.
    pub fn operation_complete(
        &mut self,
        obj_path: &str,
        command_name: &str,
        command_key: &str,
        result: Result<BTreeMap<String, String>, (u32, String)>,
    ) -> Vec<Vec<u8>> {
        let msgs = notify::operation_complete(self, obj_path, command_name, command_key, result);
        msgs.iter().map(|m| self.record(m)).collect()
    }

    /// Pre-provisions a subscription, as a factory default or another controller would have.
    pub fn provision_subscription(
        &mut self,
        instance: u32,
        id: &str,
        recipient: &str,
        notif_type: &str,
        reference: &str,
    ) {
        let inst = format!("{}{instance}.", notify::SUBSCRIPTIONS);
        for (k, v, ty) in [
            ("ID", id, ParamType::String),
            ("Recipient", recipient, ParamType::String),
            ("NotifType", notif_type, ParamType::String),
            ("ReferenceList", reference, ParamType::String),
            ("Enable", "true", ParamType::Boolean),
            ("Persistent", "true", ParamType::Boolean),
        ] {
            self.model.rw(&format!("{inst}{k}"), v, ty);
        }
        let next = self
            .model
            .tables
            .entry(notify::SUBSCRIPTIONS.into())
            .or_insert(1);
        *next = (*next).max(instance + 1);
    }

    pub(crate) fn next_msg_id(&mut self) -> String {
        self.msg_id()
    }
}

/// A fleet of simulated agents.
#[derive(Debug, Clone)]
pub struct UspSimConfig {
    /// The controller's USP endpoint id.
    pub controller_id: String,
    pub count: usize,
    pub first_serial: usize,
    pub serial_prefix: String,
    pub oui: String,
    pub product_class: String,
    pub software_version: String,
    /// How long a reboot keeps an agent away.
    pub reboot_delay: std::time::Duration,
}

impl Default for UspSimConfig {
    fn default() -> Self {
        Self {
            controller_id: "self::radar".into(),
            count: 1,
            first_serial: 1,
            serial_prefix: "USP".into(),
            oui: "00D09E".into(),
            product_class: "HG-USP".into(),
            software_version: "1.0.0".into(),
            reboot_delay: std::time::Duration::from_millis(300),
        }
    }
}

impl UspSimConfig {
    /// The agents' cores, endpoint ids `os::<OUI>-<serial>` (TR-369 R-ARC.3) as obuspa uses.
    pub fn cores(&self) -> Vec<AgentCore> {
        (0..self.count)
            .map(|i| {
                let serial = format!("{}{:06}", self.serial_prefix, self.first_serial + i);
                let identity = Identity {
                    manufacturer: "Radar Simulated Devices".into(),
                    oui: self.oui.clone(),
                    product_class: self.product_class.clone(),
                    serial: serial.clone(),
                    software_version: self.software_version.clone(),
                    connection_request_url: String::new(),
                };
                let eid = format!("os::{}-{serial}", self.oui);
                AgentCore::new(&identity, &eid, &self.controller_id)
            })
            .collect()
    }
}

/// Where simulated agents connect.
#[derive(Debug, Clone)]
pub enum Mtp {
    /// The controller's WebSocket listener, `HOST:PORT`.
    WebSocket(String),
    Mqtt(mqtt::Broker),
    Stomp(stomp::Broker),
}

/// Starts one agent on `mtp`.
pub fn spawn(
    core: AgentCore,
    mtp: &Mtp,
    reboot_delay: std::time::Duration,
) -> std::sync::Arc<agent::SimAgent> {
    let (agent, inputs) = agent::SimAgent::new(core, reboot_delay);
    match mtp {
        Mtp::WebSocket(controller) => {
            let url = ws::url(controller, &agent.endpoint_id);
            tokio::spawn(ws::run(agent.clone(), url, inputs));
        }
        Mtp::Mqtt(broker) => {
            tokio::spawn(mqtt::run(agent.clone(), broker.clone(), inputs));
        }
        Mtp::Stomp(broker) => {
            tokio::spawn(stomp::run(agent.clone(), broker.clone(), inputs));
        }
    }
    agent
}

/// Starts a fleet of agents on `mtp`.
pub fn start(config: &UspSimConfig, mtp: &Mtp) -> Vec<std::sync::Arc<agent::SimAgent>> {
    config
        .cores()
        .into_iter()
        .map(|core| spawn(core, mtp, config.reboot_delay))
        .collect()
}

#[cfg(test)]
mod tests;
