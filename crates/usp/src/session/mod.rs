//! The controller's side of one agent's connection, sans-IO: no sockets, no clock. The driver
//! feeds it inputs (the agent connected, a Msg arrived, queued work, a timer fired) and carries
//! out its outputs (send a Msg, apply an event to the twin, acknowledge a Notify after commit).
//!
//! On every connect (TR-369 §6: a Connect record, an OnBoardRequest, a Boot! or just a first
//! message):
//! 1. ask GetSupportedProtocol;
//! 2. read `Device.LocalAgent.Controller.` and `Device.LocalAgent.Subscription.` and reconcile
//!    Radar's own subscriptions (never another controller's);
//! 3. read the data model: on first contact GetSupportedDM for types and writability, then Get in
//!    chunks (one per top-level object); on later connects one Get of the root;
//! 4. then deliver queued operations one at a time, in order, asking the driver for each.

mod notify;
mod subscribe;
#[cfg(test)]
mod tests;

use crate::correlation::{Correlation, Correlator};
use crate::inbound::{classify, flatten_get_resp, Inbound, PathValue};
use crate::proto::msg::{body, header, response, Msg};
use crate::request::{interpret, Failure, Reply, Request};
use crate::subscription_support::SupportedObjects;
use crate::subscriptions::{self, Desired, Report};
use crate::supported_dm::{ParamSchema, Schema};
use crate::{errors, msg};
use radar_core::Timestamp;
use std::collections::BTreeMap;
use std::sync::Arc;

const CONTROLLER_TABLE: &str = "Device.LocalAgent.Controller.";

#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// This controller's endpoint id, as the agent knows it in `Device.LocalAgent.Controller.{i}.EndpointID`.
    pub controller_id: String,
    /// Per-request deadline.
    pub request_timeout_ms: u64,
    /// The subscriptions Radar keeps on every agent.
    pub subscriptions: Vec<Desired>,
    /// The data model root.
    pub root: String,
    /// Deadline of a liveness probe (`Input::CheckAlive`): an agent that answers nothing within
    /// it is taken to be gone.
    pub liveness_timeout_ms: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            controller_id: "self::radar".into(),
            request_timeout_ms: 30_000,
            subscriptions: subscriptions::default_desired(),
            root: "Device.".into(),
            liveness_timeout_ms: 10_000,
        }
    }
}

/// What a liveness probe reads: one small parameter every agent has (TR-181
/// `Device.LocalAgent.EndpointID`, the agent's own endpoint id).
pub const LIVENESS_PATH: &str = "Device.LocalAgent.EndpointID";

/// A queued operation to deliver, already translated to a USP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingOperation {
    pub id: u64,
    pub request: Request,
}

#[derive(Debug)]
pub enum Input {
    /// The agent is reachable. `Discover` also reads its schema (first contact); `Resync`
    /// re-reads the values, one Get per subtree the twin knows, so no single response (and no
    /// receive buffer) has to hold the whole data model.
    Connected(Sync),
    Msg(Msg),
    /// The driver's answer to `Output::NeedWork`: the next queued operation, if any.
    Work(Option<OutgoingOperation>),
    /// Operations were queued while connected.
    Wake,
    /// The connection is gone.
    Disconnected,
    /// Ask something small of an agent that has been quiet, to learn whether it is still there
    /// (MQTT gives no presence: obuspa sets no Will and may leave the broker without a USP
    /// Disconnect). No answer within the liveness timeout closes the link.
    CheckAlive,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sync {
    Discover,
    Resync { subtrees: Vec<String> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueSource {
    /// The connect-time read of the data model.
    Sync,
    /// A ValueChange Notify.
    Notify,
    /// A Get (a refresh, or the read of a created object).
    Get,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedValue {
    pub path: String,
    pub value: String,
    pub schema: Option<ParamSchema>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Everything under this prefix was read: parameters the twin has there and the agent did
    /// not return are gone.
    pub prefix: String,
    /// The last chunk of the connect-time read.
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    AgentProtocol {
        versions: String,
    },
    Values {
        source: ValueSource,
        values: Vec<TypedValue>,
        snapshot: Option<Snapshot>,
    },
    ObjectCreated {
        path: String,
        unique_keys: BTreeMap<String, String>,
    },
    ObjectDeleted {
        path: String,
    },
    /// An Event Notify, e.g. `Device.Boot!` with `CommandKey`, `Cause`, `FirmwareUpdated`.
    Event {
        path: String,
        args: BTreeMap<String, String>,
    },
    OperationComplete {
        command: String,
        command_key: String,
        result: Result<BTreeMap<String, String>, Failure>,
    },
    OnBoardRequest {
        oui: String,
        product_class: String,
        serial: String,
        versions: String,
    },
    /// An operation's response (or Error).
    Completed {
        id: u64,
        request: Request,
        result: Result<Reply, Failure>,
    },
    /// The operation was sent and its answer will never come on this connection.
    Requeue {
        id: u64,
    },
    /// Where each wanted subscription stands on the agent, as it answered (in the configured
    /// order), and how many of Radar's stale rows were removed.
    Subscriptions {
        reports: Vec<Report>,
        removed: usize,
    },
    /// A request Radar made for itself failed (schema, sync, subscriptions): logged on the twin.
    RequestFailed {
        what: &'static str,
        failure: Failure,
    },
    /// Not understood or not expected; the driver logs it.
    Ignored {
        reason: String,
    },
}

#[derive(Debug, PartialEq)]
pub enum Output {
    Send(Msg),
    Event(SessionEvent),
    /// Apply the event; once it is durable, send `respond` (the NotifyResp, when `send_resp`).
    Notification {
        event: SessionEvent,
        respond: Option<Msg>,
    },
    /// Mark operation `id` sent (durably), then send `msg`.
    SendOperation {
        id: u64,
        msg: Msg,
    },
    /// Ask the planner for the next queued operation (answer with `Input::Work`).
    NeedWork,
    /// Close the connection (e.g. the agent stopped answering).
    Close {
        reason: String,
    },
}

#[derive(Debug, Clone)]
enum Tag {
    Protocol,
    SubscriptionTable,
    SubscriptionSupport,
    SubscriptionChange {
        added: Vec<Desired>,
        with_optional: bool,
    },
    SupportedDm,
    Sync {
        prefix: String,
    },
    ObjectRead,
    Liveness,
    Operation {
        id: u64,
        request: Request,
    },
}

pub struct AgentSession {
    /// Shared by every session: an idle connection should cost little memory (B5).
    config: Arc<SessionConfig>,
    correlator: Correlator<Tag>,
    outputs: std::collections::VecDeque<Output>,
    connected: bool,
    schema: Option<Schema>,
    sync_pending: usize,
    sync_done: bool,
    subscriptions_done: bool,
    // Boxed: an idle connection keeps its session, and a check is transient (B5).
    subscription_check: Option<Box<subscribe::SubscriptionCheck>>,
    awaiting_work: bool,
    operation_in_flight: Option<u64>,
}

impl AgentSession {
    /// `id_prefix` keeps msg ids unique across connections and restarts.
    pub fn new(config: Arc<SessionConfig>, id_prefix: impl Into<String>) -> Self {
        Self {
            config,
            correlator: Correlator::new(id_prefix),
            outputs: Default::default(),
            connected: false,
            schema: None,
            sync_pending: 0,
            sync_done: false,
            subscriptions_done: false,
            subscription_check: None,
            awaiting_work: false,
            operation_in_flight: None,
        }
    }

    /// Whether connect-time work is finished and operations flow.
    pub fn is_ready(&self) -> bool {
        self.sync_done && self.subscriptions_done
    }

    /// Whether requests Radar sent are still unanswered.
    pub fn awaiting_answers(&self) -> bool {
        self.correlator.in_flight() > 0
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.correlator.poll_timeout()
    }

    /// Releases spare capacity once nothing is pending: thousands of idle sessions should not
    /// each keep the buffers of their connect-time burst.
    pub fn compact(&mut self) {
        // Small capacities stay: the steady state (a Notify, its NotifyResp) reuses them.
        if self.outputs.is_empty() && self.outputs.capacity() > 4 {
            self.outputs = Default::default();
        }
        self.correlator.compact();
    }

    pub fn handle(&mut self, now: Timestamp, input: Input) {
        match input {
            Input::Connected(sync) => self.on_connected(now, sync),
            Input::Msg(m) => self.on_msg(now, m),
            Input::Work(op) => self.on_work(now, op),
            Input::Wake => self.maybe_need_work(),
            Input::CheckAlive => {
                // Requests already in flight will tell by their own deadlines.
                if self.connected && !self.awaiting_answers() {
                    let paths = vec![LIVENESS_PATH.to_owned()];
                    let timeout = self.config.liveness_timeout_ms;
                    self.send_within(now, timeout, Tag::Liveness, |id| msg::get(id, &paths, 0));
                }
            }
            Input::Disconnected => {
                self.connected = false;
                if let Some(id) = self.operation_in_flight.take() {
                    self.emit(SessionEvent::Requeue { id });
                }
            }
        }
    }

    /// Expires requests whose deadline passed.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        for (msg_id, tag) in self.correlator.expire(now) {
            let failure = Failure::new(
                errors::RADAR_TIMEOUT,
                format!("no answer to {msg_id} within the timeout"),
            );
            match tag {
                Tag::Liveness => self.outputs.push_back(Output::Close {
                    reason: format!(
                        "no answer to a liveness probe within {} ms",
                        self.config.liveness_timeout_ms
                    ),
                }),
                Tag::Operation { id, .. } => {
                    // The agent may still act on it; redeliver on the next connection rather
                    // than guess, and reset this one (it stopped answering).
                    self.operation_in_flight = None;
                    self.emit(SessionEvent::Requeue { id });
                    self.outputs.push_back(Output::Close {
                        reason: format!("operation {id} timed out"),
                    });
                }
                other => self.internal_failure(now, other, failure),
            }
        }
    }

    fn emit(&mut self, event: SessionEvent) {
        self.outputs.push_back(Output::Event(event));
    }

    fn send(&mut self, now: Timestamp, tag: Tag, build: impl FnOnce(&str) -> Msg) {
        self.send_within(now, self.config.request_timeout_ms, tag, build)
    }

    fn send_within(
        &mut self,
        now: Timestamp,
        timeout_ms: u64,
        tag: Tag,
        build: impl FnOnce(&str) -> Msg,
    ) {
        let msg_id = self.correlator.next_msg_id();
        let msg = build(&msg_id);
        let ty = msg
            .header
            .as_ref()
            .and_then(|h| header::MsgType::try_from(h.msg_type).ok())
            .and_then(crate::inbound::expected_response)
            .unwrap_or(header::MsgType::Error);
        let deadline = Timestamp(now.0.saturating_add(timeout_ms));
        let operation = match &tag {
            Tag::Operation { id, .. } => Some(*id),
            _ => None,
        };
        self.correlator.register(msg_id, ty, deadline, tag);
        self.outputs.push_back(match operation {
            Some(id) => Output::SendOperation { id, msg },
            None => Output::Send(msg),
        });
    }

    fn on_connected(&mut self, now: Timestamp, sync: Sync) {
        if self.connected {
            return;
        }
        self.connected = true;
        self.send(now, Tag::Protocol, msg::get_supported_protocol);
        self.start_subscription_check(now, true);
        match sync {
            Sync::Discover => {
                let root = vec![self.config.root.clone()];
                self.send(now, Tag::SupportedDm, |id| {
                    msg::get_supported_dm(id, &root, false)
                });
            }
            Sync::Resync { subtrees } => {
                let subtrees = if subtrees.is_empty() {
                    vec![self.config.root.clone()]
                } else {
                    subtrees
                };
                self.read_subtrees(now, subtrees);
            }
        }
    }

    /// One Get per subtree; the last answer completes the sync.
    fn read_subtrees(&mut self, now: Timestamp, subtrees: Vec<String>) {
        self.sync_pending = subtrees.len();
        for prefix in subtrees {
            let paths = vec![prefix.clone()];
            self.send(now, Tag::Sync { prefix }, |id| msg::get(id, &paths, 0));
        }
    }

    fn on_msg(&mut self, now: Timestamp, m: Msg) {
        match classify(m) {
            Inbound::Notify {
                msg_id,
                subscription_id,
                send_resp,
                notification,
            } => {
                let respond = send_resp.then(|| msg::notify_resp(&msg_id, &subscription_id));
                let Some(notification) = notification else {
                    self.emit(SessionEvent::Ignored {
                        reason: format!("notify {msg_id} carries no notification"),
                    });
                    if let Some(r) = respond {
                        self.outputs.push_back(Output::Send(r));
                    }
                    return;
                };
                let event = notify::event_of(&notification);
                let read = match &event {
                    SessionEvent::ObjectCreated { path, .. } => Some(path.clone()),
                    _ => None,
                };
                // Agents drop non-persistent subscriptions at a reboot (and some lose persistent
                // ones at a factory reset): look again once the connect-time check is done.
                let booted =
                    matches!(&event, SessionEvent::Event { path, .. } if path.ends_with("Boot!"));
                self.outputs
                    .push_back(Output::Notification { event, respond });
                // A created object arrives without its parameters: read them (TR-369 §7.6.2).
                if let Some(path) = read {
                    self.send(now, Tag::ObjectRead, |id| msg::get(id, &[path], 0));
                }
                if booted && self.subscriptions_done {
                    self.start_subscription_check(now, false);
                }
            }
            Inbound::Response(m) => self.on_response(now, *m),
            Inbound::UnsupportedRequest { msg_id, msg_type } => {
                // Radar offers no data model to agents (TR-369 §7.7: 7001 message not supported).
                self.outputs.push_back(Output::Send(msg::error(
                    &msg_id,
                    errors::MESSAGE_NOT_SUPPORTED,
                    "this controller does not serve this request",
                )));
                self.emit(SessionEvent::Ignored {
                    reason: format!("request of type {msg_id}/{msg_type} answered with 7001"),
                });
            }
            Inbound::Malformed { reason } => self.emit(SessionEvent::Ignored {
                reason: reason.into(),
            }),
        }
    }

    fn on_response(&mut self, now: Timestamp, m: Msg) {
        let (tag, result) = match self.correlator.on_response(m) {
            Correlation::Unknown { msg_id } => {
                self.emit(SessionEvent::Ignored {
                    reason: format!("unsolicited or late response {msg_id:?}"),
                });
                return;
            }
            Correlation::Mismatched { tag, expected, got } => (
                tag,
                Err(Failure::new(
                    errors::MESSAGE_FAILED,
                    format!("expected {expected:?}, got message type {got}"),
                )),
            ),
            Correlation::Error { tag, error } => {
                (tag, Err(crate::request::failure_from_error(&error)))
            }
            Correlation::Response { tag, msg } => (tag, Ok(*msg)),
        };
        match (tag, result) {
            (
                Tag::SubscriptionChange {
                    added,
                    with_optional,
                },
                result,
            ) => {
                let resp = result.and_then(|m| match m.body.and_then(|b| b.msg_body) {
                    Some(body::MsgBody::Response(r)) => r
                        .resp_type
                        .ok_or_else(|| Failure::new(errors::MESSAGE_FAILED, "empty response")),
                    _ => Err(Failure::new(errors::MESSAGE_FAILED, "not a response")),
                });
                if let Err(f) = &resp {
                    self.emit(SessionEvent::RequestFailed {
                        what: "subscriptions",
                        failure: f.clone(),
                    });
                }
                self.on_subscription_change(now, added, with_optional, resp);
            }
            (Tag::Operation { id, request }, result) => {
                let result = result.and_then(|m| interpret(&request, &m));
                self.operation_in_flight = None;
                self.emit(SessionEvent::Completed {
                    id,
                    request,
                    result,
                });
                self.maybe_need_work();
            }
            // Any answer, an Error included, shows the agent is there.
            (Tag::Liveness, _) => {}
            (tag, Err(failure)) => self.internal_failure(now, tag, failure),
            (tag, Ok(m)) => self.on_internal_response(now, tag, m),
        }
    }

    fn on_internal_response(&mut self, now: Timestamp, tag: Tag, m: Msg) {
        let resp = match m.body.and_then(|b| b.msg_body) {
            Some(body::MsgBody::Response(r)) => r.resp_type,
            _ => None,
        };
        match (tag, resp) {
            (Tag::Protocol, Some(response::RespType::GetSupportedProtocolResp(r))) => {
                self.emit(SessionEvent::AgentProtocol {
                    versions: r.agent_supported_protocol_versions,
                })
            }
            (Tag::SubscriptionTable, Some(response::RespType::GetResp(r))) => {
                let (values, _) = flatten_get_resp(&r);
                self.on_subscription_table(now, Some(values));
            }
            (Tag::SubscriptionSupport, Some(response::RespType::GetSupportedDmResp(r))) => {
                self.on_subscription_support(now, Some(SupportedObjects::from_response(&r)));
            }
            (Tag::SupportedDm, Some(response::RespType::GetSupportedDmResp(r))) => {
                let schema = Schema::from_response(&r);
                let chunks = if schema.top_level.is_empty() {
                    vec![self.config.root.clone()]
                } else {
                    schema.top_level.clone()
                };
                self.schema = Some(schema);
                self.read_subtrees(now, chunks);
            }
            (Tag::Sync { prefix }, Some(response::RespType::GetResp(r))) => {
                let (values, errors) = flatten_get_resp(&r);
                if let Some(e) = errors.first() {
                    self.emit(SessionEvent::RequestFailed {
                        what: "data model read",
                        failure: Failure::new(
                            e.code,
                            format!("{}: {}", e.requested_path, e.message),
                        ),
                    });
                }
                self.sync_pending = self.sync_pending.saturating_sub(1);
                let complete = self.sync_pending == 0;
                let values = self.typed(values);
                self.emit(SessionEvent::Values {
                    source: ValueSource::Sync,
                    values,
                    snapshot: errors.is_empty().then_some(Snapshot { prefix, complete }),
                });
                if complete {
                    self.finish_sync();
                }
            }
            (Tag::ObjectRead, Some(response::RespType::GetResp(r))) => {
                let (values, _) = flatten_get_resp(&r);
                let values = self.typed(values);
                self.emit(SessionEvent::Values {
                    source: ValueSource::Get,
                    values,
                    snapshot: None,
                });
            }
            (tag, _) => self.internal_failure(
                now,
                tag,
                Failure::new(errors::MESSAGE_FAILED, "unexpected response body"),
            ),
        }
    }

    fn typed(&self, values: Vec<PathValue>) -> Vec<TypedValue> {
        values
            .into_iter()
            .map(|v| TypedValue {
                schema: self.schema.as_ref().and_then(|s| s.lookup(&v.path)),
                path: v.path,
                value: v.value,
            })
            .collect()
    }

    fn finish_sync(&mut self) {
        self.sync_done = true;
        // The schema was only needed to type the first read; an idle connection stays small.
        self.schema = None;
        self.maybe_need_work();
    }

    fn internal_failure(&mut self, now: Timestamp, tag: Tag, failure: Failure) {
        let what = match &tag {
            Tag::Protocol => "GetSupportedProtocol",
            Tag::SubscriptionTable | Tag::SubscriptionChange { .. } => "subscriptions",
            Tag::SubscriptionSupport => "GetSupportedDM of subscription paths",
            Tag::SupportedDm => "GetSupportedDM",
            Tag::Sync { .. } => "data model read",
            Tag::ObjectRead => "created object read",
            Tag::Liveness => "liveness probe",
            Tag::Operation { .. } => "operation",
        };
        self.emit(SessionEvent::RequestFailed {
            what,
            failure: failure.clone(),
        });
        match tag {
            Tag::SupportedDm => {
                // Untyped values are still worth having: read the data model without a schema.
                let root = vec![self.config.root.clone()];
                self.read_subtrees(now, root);
            }
            Tag::Sync { .. } => {
                self.sync_pending = self.sync_pending.saturating_sub(1);
                if self.sync_pending == 0 {
                    self.finish_sync();
                }
            }
            Tag::SubscriptionTable => self.on_subscription_table(now, None),
            // Without the agent's word on its data model, every wanted subscription is tried.
            Tag::SubscriptionSupport => self.on_subscription_support(now, None),
            Tag::SubscriptionChange {
                added,
                with_optional,
            } => self.on_subscription_change(now, added, with_optional, Err(failure)),
            _ => {}
        }
    }

    fn maybe_need_work(&mut self) {
        if self.connected
            && self.is_ready()
            && self.operation_in_flight.is_none()
            && !self.awaiting_work
        {
            self.awaiting_work = true;
            self.outputs.push_back(Output::NeedWork);
        }
    }

    fn on_work(&mut self, now: Timestamp, op: Option<OutgoingOperation>) {
        self.awaiting_work = false;
        let Some(op) = op else { return };
        if !self.connected || self.operation_in_flight.is_some() {
            return;
        }
        self.operation_in_flight = Some(op.id);
        let request = op.request.clone();
        self.send(
            now,
            Tag::Operation {
                id: op.id,
                request: op.request,
            },
            |id| request.to_msg(id),
        );
    }
}
