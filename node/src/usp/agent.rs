//! One agent's link, MTP-independent: feeds records to the sans-IO session, commits what it
//! reports, and yields the records to send. The WebSocket and MQTT drivers own the sockets.
//!
//! Ordering rules (DESIGN §2, §7):
//! - a Notify is acknowledged (NotifyResp) only after its twin change is durable;
//! - an operation is marked sent durably before its request leaves, so a crash redelivers rather
//!   than loses it, and one that was in flight when the link died is requeued.

use super::translate::{event_commands, operation_request};
use crate::core::NodeCore;
use crate::shard::ProposeError;
use radar_core::{DeviceKey, Timestamp};
use radar_twin::command::Outcome;
use radar_twin::{OperationStatus, TwinCommand};
use radar_usp::errors;
use radar_usp::proto::msg::{body, header, request, Msg};
use radar_usp::record::{self, InboundRecord, RecordKind};
use radar_usp::session::{AgentSession, Input, OutgoingOperation, Output, Sync};
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, info, warn};

/// What the MTP driver should do after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Close(String),
}

pub struct AgentLink {
    core: Arc<NodeCore>,
    pub device: DeviceKey,
    session: AgentSession,
    mtp: &'static str,
    /// Where MQTT replies go (the agent's topic); empty on WebSocket.
    pub reply_to: String,
    connected: bool,
    /// Requests went out to an agent not heard from since a restart (MQTT): it counts as
    /// connected once it answers.
    probing: bool,
}

impl AgentLink {
    pub fn new(core: Arc<NodeCore>, device: DeviceKey, mtp: &'static str) -> Self {
        Self {
            session: AgentSession::new(core.usp_session.clone(), msg_id_prefix(&core)),
            core,
            device,
            mtp,
            reply_to: String::new(),
            connected: false,
            probing: false,
        }
    }

    /// Gives back memory the connect-time burst left behind, once the link is idle.
    pub fn compact(&mut self) {
        self.session.compact();
    }

    /// Whether requests sent to the agent are still unanswered.
    pub fn awaiting_answers(&self) -> bool {
        self.session.awaiting_answers()
    }

    /// When the session next needs `on_timeout`.
    pub fn next_timeout(&self) -> Option<Duration> {
        let at = self.session.poll_timeout()?;
        Some(Duration::from_millis(
            at.0.saturating_sub(Timestamp::now().0),
        ))
    }

    /// Whether the link still has a reason to live: connected, or probing a silent agent.
    pub fn is_active(&self) -> bool {
        self.connected || self.probing
    }

    /// Starts the connect-time work with an agent that has not spoken since this process
    /// started but may be reachable (MQTT agents stay on the broker across controller
    /// restarts). It counts as connected when it answers; a timeout ends the probe.
    pub async fn probe(&mut self, out: &mut Vec<Vec<u8>>) -> Flow {
        if self.is_active() {
            return Flow::Continue;
        }
        self.probing = true;
        debug!(device = %self.device, proto = "usp", mtp = self.mtp, "probing agent");
        let sync = self.sync_plan();
        self.session
            .handle(Timestamp::now(), Input::Connected(sync));
        self.pump(out).await
    }

    /// Discovery on first contact (or after a factory reset); otherwise a re-read of the
    /// subtrees the twin holds, one request each.
    fn sync_plan(&self) -> Sync {
        self.core
            .fleet
            .with_twin(&self.device, |twin, dict| {
                // First contact, a factory reset, or the first USP contact of a device the
                // twin knows from CWMP (its agent's data model is read in full once).
                let read_over_usp = twin.params.iter().any(|(_, p)| p.source.is_usp());
                if twin.meta.discovered_at.is_none() || !read_over_usp {
                    return Sync::Discover;
                }
                let mut subtrees: Vec<String> = twin
                    .params
                    .iter()
                    .map(|(id, _)| id.template)
                    .collect::<std::collections::BTreeSet<u32>>()
                    .into_iter()
                    .filter_map(|template| {
                        let path = dict.template(template)?;
                        let mut parts = path.splitn(3, '.');
                        let (root, top) = (parts.next()?, parts.next()?);
                        // A parameter right under the root is read by its own path.
                        Some(match parts.next() {
                            Some(_) => format!("{root}.{top}."),
                            None => path.to_owned(),
                        })
                    })
                    .collect();
                subtrees.sort();
                subtrees.dedup();
                Sync::Resync { subtrees }
            })
            .unwrap_or(Sync::Discover)
    }

    fn encode(&self, msg: &Msg) -> Vec<u8> {
        self.core
            .metrics
            .usp_records
            .with_label_values(&["out", self.mtp])
            .inc();
        record::encode_message(
            self.device.as_str(),
            &self.core.config.usp.controller_id,
            msg,
        )
    }

    async fn propose(&self, command: TwinCommand) -> Result<(), ProposeError> {
        match self.core.propose(command).await {
            Ok(_) => Ok(()),
            // A twin change that no longer applies (e.g. a late result for an operation that
            // was cancelled or trimmed) is logged, not fatal.
            Err(ProposeError::Apply(e)) => {
                debug!(device = %self.device, error = %e, "usp twin change not applied");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The agent is reachable: record it and start the connect-time work (unless a probe
    /// already started it).
    async fn connect(&mut self, out: &mut Vec<Vec<u8>>) -> Flow {
        let command = TwinCommand::UspConnected {
            device: self.device.clone(),
            at: Timestamp::now(),
            mtp: self.mtp.into(),
            reply_to: self.reply_to.clone(),
        };
        if let Err(e) = self.propose(command).await {
            return Flow::Close(format!("twin unavailable: {e}"));
        }
        self.connected = true;
        self.core.metrics.usp_connections.inc();
        if std::mem::take(&mut self.probing) {
            info!(device = %self.device, proto = "usp", mtp = self.mtp, "probed agent answered");
            return Flow::Continue;
        }
        let sync = self.sync_plan();
        let discover = sync == Sync::Discover;
        info!(device = %self.device, proto = "usp", mtp = self.mtp, discover, "agent connected");
        self.session
            .handle(Timestamp::now(), Input::Connected(sync));
        self.pump(out).await
    }

    /// A Record from the agent (already checked for size, `to_id` and payload security).
    pub async fn on_record(&mut self, record: InboundRecord, out: &mut Vec<Vec<u8>>) -> Flow {
        self.core
            .metrics
            .usp_records
            .with_label_values(&["in", self.mtp])
            .inc();
        match record.kind {
            RecordKind::Message(msg) => {
                count_notify(&self.core, &msg);
                if !self.connected {
                    // TR-369 §6: an agent's first message also announces it.
                    if let Flow::Close(reason) = self.connect(out).await {
                        return Flow::Close(reason);
                    }
                }
                self.session.handle(Timestamp::now(), Input::Msg(*msg));
                self.pump(out).await
            }
            RecordKind::WebSocketConnect
            | RecordKind::MqttConnect { .. }
            | RecordKind::StompConnect { .. } => {
                let subscribed = match &record.kind {
                    RecordKind::MqttConnect {
                        subscribed_topic, ..
                    } => subscribed_topic.as_str(),
                    RecordKind::StompConnect {
                        subscribed_destination,
                    } => subscribed_destination.as_str(),
                    _ => "",
                };
                if !subscribed.is_empty() {
                    self.reply_to = subscribed.to_owned();
                }
                if self.is_active() {
                    // The agent re-established its MTP: start over with a fresh session.
                    self.disconnected("agent reconnected").await;
                }
                self.connect(out).await
            }
            RecordKind::Disconnect {
                reason,
                reason_code,
            } => {
                // TR-369 §6.1: a Disconnect clears what was cached about the agent's MTP.
                self.disconnected(&format!("agent disconnect {reason_code}: {reason}"))
                    .await;
                if self.mtp == "mqtt" || self.mtp == "stomp" {
                    self.reply_to.clear();
                }
                Flow::Continue
            }
            RecordKind::SessionContext { session_id } => {
                // TR-369 R-E2E.4: a controller that does not support session context answers
                // with a Disconnect record.
                debug!(device = %self.device, session_id, "session context refused");
                out.push(record::encode_disconnect(
                    self.device.as_str(),
                    &self.core.config.usp.controller_id,
                    "session context is not supported",
                    errors::SESSION_CONTEXT_NOT_ALLOWED,
                ));
                Flow::Continue
            }
            RecordKind::UdsConnect => {
                debug!(device = %self.device, "connect record of another mtp ignored");
                Flow::Continue
            }
        }
    }

    /// Probes a quiet agent: no answer within the liveness timeout closes the link.
    pub async fn check_alive(&mut self, out: &mut Vec<Vec<u8>>) -> Flow {
        if !self.is_active() {
            return Flow::Continue;
        }
        self.session.handle(Timestamp::now(), Input::CheckAlive);
        self.pump(out).await
    }

    pub async fn on_wake(&mut self, out: &mut Vec<Vec<u8>>) -> Flow {
        if !self.is_active() {
            return Flow::Continue;
        }
        self.session.handle(Timestamp::now(), Input::Wake);
        self.pump(out).await
    }

    pub async fn on_timeout(&mut self, out: &mut Vec<Vec<u8>>) -> Flow {
        self.session.handle_timeout(Timestamp::now());
        self.pump(out).await
    }

    /// The link is gone: requeue what was in flight and mark the agent offline.
    pub async fn disconnected(&mut self, reason: &str) {
        if !self.is_active() {
            return;
        }
        self.session.handle(Timestamp::now(), Input::Disconnected);
        let mut discard = Vec::new();
        let _ = self.pump(&mut discard).await;
        self.fresh_session();
        if std::mem::take(&mut self.probing) {
            debug!(device = %self.device, proto = "usp", reason, "probe ended unanswered");
            return;
        }
        self.connected = false;
        self.core.metrics.usp_connections.dec();
        let _ = self
            .propose(TwinCommand::UspDisconnected {
                device: self.device.clone(),
                at: Timestamp::now(),
                reason: reason.into(),
            })
            .await;
        // One info line per connection (its connect); a disconnect is routine for a CPE.
        debug!(device = %self.device, proto = "usp", reason, "agent disconnected");
    }

    /// A fresh session for a later connect on the same link (e.g. MQTT).
    fn fresh_session(&mut self) {
        self.session = AgentSession::new(self.core.usp_session.clone(), msg_id_prefix(&self.core));
    }

    /// Carries out the session's outputs until it has none left.
    async fn pump(&mut self, out: &mut Vec<Vec<u8>>) -> Flow {
        while let Some(output) = self.session.poll_output() {
            match output {
                Output::Send(msg) => {
                    count_request(&self.core, &msg);
                    out.push(self.encode(&msg));
                }
                Output::SendOperation { id, msg } => {
                    let marked = self
                        .propose(TwinCommand::MarkSent {
                            device: self.device.clone(),
                            at: Timestamp::now(),
                            operation: id,
                        })
                        .await;
                    if let Err(e) = marked {
                        return Flow::Close(format!("twin unavailable: {e}"));
                    }
                    count_request(&self.core, &msg);
                    out.push(self.encode(&msg));
                }
                Output::Event(event) => {
                    if let radar_usp::session::SessionEvent::Ignored { reason } = &event {
                        if self.core.log_limit.allow(&self.device, "usp_ignored") {
                            warn!(device = %self.device, proto = "usp", reason, "usp message ignored");
                        }
                    }
                    self.count_failure(&event);
                    self.warn_of_refusals(&event);
                    for command in event_commands(&self.device, Timestamp::now(), event) {
                        if let Err(e) = self.propose(command).await {
                            return Flow::Close(format!("twin unavailable: {e}"));
                        }
                    }
                }
                Output::Notification { event, respond } => {
                    for command in event_commands(&self.device, Timestamp::now(), event) {
                        if let Err(e) = self.propose(command).await {
                            // Not durable, so not acknowledged: the agent retries the Notify.
                            return Flow::Close(format!("twin unavailable: {e}"));
                        }
                    }
                    if let Some(resp) = respond {
                        out.push(self.encode(&resp));
                    }
                }
                Output::NeedWork => {
                    let work = self.next_operation().await;
                    self.session.handle(Timestamp::now(), Input::Work(work));
                }
                Output::Close { reason } => return Flow::Close(reason),
            }
        }
        Flow::Continue
    }

    /// A refusal is worth one warning per device and cause: subscription refusals the twin
    /// does not already hold, and failures of Radar's own requests at most once per interval.
    fn warn_of_refusals(&self, event: &radar_usp::session::SessionEvent) {
        use radar_usp::session::SessionEvent;
        use radar_usp::subscriptions::Standing;
        match event {
            SessionEvent::Subscriptions { reports, .. } => {
                let known = self
                    .core
                    .fleet
                    .with_twin(&self.device, |twin, _| twin.meta.subscriptions.clone())
                    .unwrap_or_default();
                for report in reports {
                    let Standing::Refused { code, message } = &report.standing else {
                        continue;
                    };
                    let status = super::translate::subscription_status(report.clone());
                    if !known.contains(&status) {
                        warn!(
                            device = %self.device,
                            proto = "usp",
                            notif_type = report.desired.notif_type.as_str(),
                            reference = %report.desired.reference,
                            code,
                            message = %message,
                            "agent refused a subscription"
                        );
                    }
                }
            }
            SessionEvent::RequestFailed { what, failure }
                if self
                    .core
                    .log_limit
                    .allow(&self.device, "usp_request_failed") =>
            {
                warn!(
                    device = %self.device,
                    proto = "usp",
                    what,
                    code = failure.code,
                    message = %failure.message,
                    "agent refused a request of radar's"
                );
            }
            _ => {}
        }
    }

    fn count_failure(&self, event: &radar_usp::session::SessionEvent) {
        use radar_usp::session::SessionEvent;
        let code = match event {
            SessionEvent::Completed { result: Err(f), .. }
            | SessionEvent::RequestFailed { failure: f, .. } => f.code,
            _ => return,
        };
        self.core
            .metrics
            .usp_errors
            .with_label_values(&[&code.to_string()])
            .inc();
    }

    /// The oldest queued operation, translated; operations USP cannot carry are failed here.
    async fn next_operation(&mut self) -> Option<OutgoingOperation> {
        loop {
            let now = Timestamp::now();
            let next = self
                .core
                .fleet
                .with_twin(&self.device, |twin, dict| {
                    // What only CWMP can carry waits for the device's CWMP side, if it has one.
                    let cwmp_too = twin.meta.speaks("cwmp");
                    let op = twin.operations.iter().find(|op| {
                        op.status == OperationStatus::Queued
                            && op.expires_at.is_none_or(|e| e > now)
                            && (!cwmp_too || op.kind.supported_by("usp"))
                    })?;
                    Some((op.id, operation_request(op, twin, dict)))
                })
                .flatten();
            match next {
                None => return None,
                Some((id, Ok(request))) => return Some(OutgoingOperation { id, request }),
                Some((id, Err(failure))) => {
                    let failed = self
                        .propose(TwinCommand::CompleteOperation {
                            device: self.device.clone(),
                            at: now,
                            operation: id,
                            outcome: Outcome::Failed {
                                code: failure.code,
                                message: failure.message,
                            },
                        })
                        .await;
                    if failed.is_err() {
                        return None;
                    }
                }
            }
        }
    }
}

/// Msg ids unique across sessions and restarts: node, time and a random part.
fn msg_id_prefix(core: &NodeCore) -> String {
    format!(
        "{}-{:x}-{:x}",
        core.config.node_id,
        Timestamp::now().0,
        rand::random::<u16>()
    )
}

fn count_request(core: &NodeCore, msg: &Msg) {
    let ty = msg
        .header
        .as_ref()
        .and_then(|h| header::MsgType::try_from(h.msg_type).ok())
        .map(|t| t.as_str_name())
        .unwrap_or("UNKNOWN");
    core.metrics.usp_requests.with_label_values(&[ty]).inc();
}

fn count_notify(core: &NodeCore, msg: &Msg) {
    use radar_usp::proto::msg::notify::Notification;
    let Some(body::MsgBody::Request(req)) = msg.body.as_ref().and_then(|b| b.msg_body.as_ref())
    else {
        return;
    };
    let Some(request::ReqType::Notify(n)) = &req.req_type else {
        return;
    };
    let ty = match &n.notification {
        Some(Notification::ValueChange(_)) => "value_change",
        Some(Notification::Event(_)) => "event",
        Some(Notification::ObjCreation(_)) => "object_creation",
        Some(Notification::ObjDeletion(_)) => "object_deletion",
        Some(Notification::OperComplete(_)) => "operation_complete",
        Some(Notification::OnBoardReq(_)) => "on_board_request",
        None => "empty",
    };
    core.metrics.usp_notifies.with_label_values(&[ty]).inc();
}
