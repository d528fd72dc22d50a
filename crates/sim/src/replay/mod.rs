//! A scripted USP agent that answers exactly as a real agent once did.
//!
//! A recording (`tests/fixtures/usp/*.capture`) is what crossed the broker between Radar and a
//! real agent: one USP Record per line, `<time> <topic> <hex>`. Radar's requests are paired
//! with the agent's answers by msg id; each request is reduced to a signature (its type and what
//! it names: paths, parameters and values), so a later Radar that asks the same thing gets the
//! recorded answer, refusals included, with its own msg id. A request the real agent was never
//! asked gets Error 7000 naming it: such a run proves nothing, and its test should fail.
//!
//! Sans-IO here; [`mqtt`] and [`stomp`] carry it over a broker, as the recorded agent did.

pub mod mqtt;
pub mod stomp;

use radar_usp::proto::msg::{body, header, notify, request, Msg};
use radar_usp::record::{self, RecordKind};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
}

/// One recorded line.
#[derive(Debug, Clone)]
struct Captured {
    topic: String,
    bytes: Vec<u8>,
}

/// What the agent sent unasked, in order: its connect records and notifications.
#[derive(Debug, Clone, PartialEq)]
pub enum Unsolicited {
    /// An MQTTConnect, STOMPConnect or WebSocketConnect record, as bytes to send again.
    Connect(Vec<u8>),
    Notify(Box<Msg>),
}

#[derive(Debug, Default)]
pub struct Recording {
    /// Signature → the answers recorded for it, in order; the last one repeats.
    answers: HashMap<String, Vec<Msg>>,
    served: HashMap<String, usize>,
    pub unsolicited: Vec<Unsolicited>,
    /// Signatures asked for that the recording does not hold.
    pub unrecorded: Vec<String>,
}

impl Recording {
    /// Parses capture text; topics starting with `controller_topic_prefix` carry the agent's
    /// records to the controller, the others the controller's to the agent.
    pub fn parse(text: &str, controller_topic_prefix: &str) -> Result<Self, ReplayError> {
        let mut lines = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (Some(_time), Some(topic), Some(hex)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(ReplayError::Line {
                    line: line_no,
                    message: "expected `<time> <topic> <hex>`".into(),
                });
            };
            let bytes = decode_hex(hex).ok_or_else(|| ReplayError::Line {
                line: line_no,
                message: "payload is not hex".into(),
            })?;
            lines.push(Captured {
                topic: topic.into(),
                bytes,
            });
        }
        let mut requests: HashMap<String, String> = HashMap::new();
        let mut recording = Recording::default();
        for c in lines {
            let to_controller = c.topic.starts_with(controller_topic_prefix);
            let Some(rec) = any_recipient(&c.bytes) else {
                continue;
            };
            match (to_controller, rec) {
                (false, RecordKind::Message(msg)) => {
                    if let (Some(id), Some(sig)) = (msg_id(&msg), signature(&msg)) {
                        requests.insert(id, sig);
                    }
                }
                (true, RecordKind::Message(msg)) => {
                    let is_notify = matches!(request_of(&msg), Some(request::ReqType::Notify(_)));
                    if is_notify {
                        recording.unsolicited.push(Unsolicited::Notify(msg));
                    } else if let Some(sig) = msg_id(&msg).and_then(|id| requests.get(&id)) {
                        recording.answers.entry(sig.clone()).or_default().push(*msg);
                    }
                }
                (
                    true,
                    RecordKind::MqttConnect { .. }
                    | RecordKind::StompConnect { .. }
                    | RecordKind::WebSocketConnect,
                ) => {
                    recording.unsolicited.push(Unsolicited::Connect(c.bytes));
                }
                _ => {}
            }
        }
        Ok(recording)
    }

    /// How many distinct requests the recording can answer.
    pub fn len(&self) -> usize {
        self.answers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }

    /// The recorded answer to `request` under its msg id, or Error 7000 when it was never asked;
    /// `None` for what needs no answer (a NotifyResp).
    pub fn answer(&mut self, request: &Msg) -> Option<Msg> {
        let id = msg_id(request)?;
        let sig = signature(request)?;
        let Some(answers) = self.answers.get(&sig) else {
            self.unrecorded.push(sig.clone());
            return Some(radar_usp::msg::error(
                &id,
                radar_usp::errors::MESSAGE_FAILED,
                &format!("not in the recording: {sig}"),
            ));
        };
        let n = self.served.entry(sig).or_default();
        let mut reply = answers[(*n).min(answers.len() - 1)].clone();
        *n += 1;
        if let Some(h) = reply.header.as_mut() {
            h.msg_id = id;
        }
        Some(reply)
    }

    /// The recorded notifications, in order.
    pub fn notifies(&self) -> impl Iterator<Item = &Msg> {
        self.unsolicited.iter().filter_map(|u| match u {
            Unsolicited::Notify(m) => Some(m.as_ref()),
            _ => None,
        })
    }

    /// The agent's recorded connect records, in order.
    pub fn connects(&self) -> impl Iterator<Item = &[u8]> {
        self.unsolicited.iter().filter_map(|u| match u {
            Unsolicited::Connect(b) => Some(b.as_slice()),
            _ => None,
        })
    }
}

/// Who the scripted agent is.
#[derive(Debug, Clone)]
pub struct Identity {
    pub endpoint_id: String,
    pub controller_id: String,
}

/// What a transport does with one record from the controller.
pub(crate) struct Reply {
    /// The recorded answer, as a record to send back.
    pub answer: Option<Vec<u8>>,
    /// `Some(command key)` when the request was `Device.Reboot()`: the agent then leaves.
    pub reboot: Option<String>,
}

/// Answers one record from the controller from the recording.
pub(crate) fn reply(identity: &Identity, recording: &Mutex<Recording>, payload: &[u8]) -> Reply {
    let none = Reply {
        answer: None,
        reboot: None,
    };
    let Ok(inbound) = record::decode(
        payload,
        &identity.endpoint_id,
        record::DEFAULT_MAX_RECORD_BYTES,
    ) else {
        return none;
    };
    let RecordKind::Message(msg) = inbound.kind else {
        return none;
    };
    let reboot = match request_of(&msg) {
        Some(request::ReqType::Operate(o)) if o.command == "Device.Reboot()" => {
            Some(o.command_key.clone())
        }
        _ => None,
    };
    let answer = lock(recording)
        .answer(&msg)
        .map(|a| record::encode_message(&identity.controller_id, &identity.endpoint_id, &a));
    Reply { answer, reboot }
}

/// The records an agent sends when it (re)connects: its recorded connect record and, after a
/// reboot, the recorded `Boot!`.
pub(crate) fn first_records(
    identity: &Identity,
    connect: &Option<Vec<u8>>,
    boot: &Option<Msg>,
) -> Vec<Vec<u8>> {
    let mut first: Vec<Vec<u8>> = connect.iter().cloned().collect();
    if let Some(b) = boot {
        first.push(record::encode_message(
            &identity.controller_id,
            &identity.endpoint_id,
            b,
        ));
    }
    first
}

/// Runs sessions one after another until the task is dropped: each with the next recorded
/// connect record, and after a reboot the recorded `Boot!` naming its command key.
pub(crate) async fn run_sessions<F, Fut>(
    recording: Arc<Mutex<Recording>>,
    reboot_delay: Duration,
    mut session: F,
) where
    F: FnMut(Option<Vec<u8>>, Option<Msg>) -> Fut,
    Fut: std::future::Future<Output = Option<String>>,
{
    let connects: Vec<Vec<u8>> = lock(&recording).connects().map(<[u8]>::to_vec).collect();
    let mut connect_index = 0;
    let mut boot: Option<Msg> = None;
    loop {
        let connect = connects
            .get(connect_index.min(connects.len().saturating_sub(1)))
            .cloned();
        connect_index += 1;
        match session(connect, boot.take()).await {
            Some(command_key) => {
                tokio::time::sleep(reboot_delay).await;
                boot = recorded_boot(&lock(&recording), &command_key);
            }
            None => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

pub(crate) fn lock(recording: &Mutex<Recording>) -> std::sync::MutexGuard<'_, Recording> {
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

/// Decodes a record whoever it is addressed to (a recording holds both directions).
fn any_recipient(bytes: &[u8]) -> Option<RecordKind> {
    use prost::Message as _;
    let to_id = radar_usp::proto::record::Record::decode(bytes).ok()?.to_id;
    record::decode(bytes, &to_id, record::DEFAULT_MAX_RECORD_BYTES)
        .ok()
        .map(|r| r.kind)
}

fn msg_id(msg: &Msg) -> Option<String> {
    msg.header.as_ref().map(|h| h.msg_id.clone())
}

fn request_of(msg: &Msg) -> Option<&request::ReqType> {
    match msg.body.as_ref()?.msg_body.as_ref()? {
        body::MsgBody::Request(r) => r.req_type.as_ref(),
        _ => None,
    }
}

/// What a request asks, independent of its msg id: type and the paths, parameters and values
/// it names, sorted where order carries no meaning.
pub fn signature(msg: &Msg) -> Option<String> {
    let ty = header::MsgType::try_from(msg.header.as_ref()?.msg_type)
        .ok()?
        .as_str_name();
    let detail = match request_of(msg)? {
        request::ReqType::Get(g) => format!("{:?} depth={}", sorted(&g.param_paths), g.max_depth),
        request::ReqType::GetSupportedDm(g) => {
            format!(
                "{:?} first_level_only={}",
                sorted(&g.obj_paths),
                g.first_level_only
            )
        }
        request::ReqType::GetSupportedProtocol(_) => String::new(),
        request::ReqType::GetInstances(g) => format!("{:?}", sorted(&g.obj_paths)),
        request::ReqType::Add(a) => {
            let objs: Vec<String> = a
                .create_objs
                .iter()
                .map(|o| {
                    let mut settings: Vec<String> = o
                        .param_settings
                        .iter()
                        .map(|s| match s.param.as_str() {
                            // Values that name what is created; the rest by name only.
                            "ReferenceList" | "NotifType" | "ID" => {
                                format!("{}={}", s.param, s.value)
                            }
                            _ => s.param.clone(),
                        })
                        .collect();
                    settings.sort();
                    format!("{}{settings:?}", o.obj_path)
                })
                .collect();
            format!("{objs:?}")
        }
        request::ReqType::Set(s) => {
            let objs: Vec<String> = s
                .update_objs
                .iter()
                .map(|o| {
                    let mut settings: Vec<String> = o
                        .param_settings
                        .iter()
                        .map(|p| format!("{}={}", p.param, p.value))
                        .collect();
                    settings.sort();
                    format!("{}{settings:?}", o.obj_path)
                })
                .collect();
            format!("{objs:?}")
        }
        request::ReqType::Delete(d) => format!("{:?}", sorted(&d.obj_paths)),
        request::ReqType::Operate(o) => format!("{} key={}", o.command, o.command_key),
        request::ReqType::Notify(_)
        | request::ReqType::Register(_)
        | request::ReqType::Deregister(_) => return None,
    };
    Some(format!("{ty} {detail}"))
}

fn sorted(v: &[String]) -> Vec<&str> {
    let mut s: Vec<&str> = v.iter().map(String::as_str).collect();
    s.sort();
    s
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests;
