//! The ACS side of one CWMP session (TR-069 §3.7.1, A.3), as a sans-IO state machine.
//!
//! The driver feeds each HTTP POST body with [`AcsSession::handle`] and drains
//! [`AcsSession::poll_output`] in order:
//! - [`Output::Event`]: something the device said that must be committed to the twin *before* the
//!   next reply is sent (an acknowledged event is never lost);
//! - [`Output::NeedWork`]: the CPE has finished its own requests; the driver answers with
//!   [`Input::Work`] (possibly empty), planned from the twin;
//! - [`Output::Reply`]: the HTTP response to send (an RPC, a response, or 204 to end);
//! - [`Output::Close`]: the session is over.
//!
//! The session never reads a clock: `now` is an argument and [`AcsSession::poll_timeout`] says
//! when the driver should call again with [`Input::Timeout`].

use crate::message::CwmpMessage;
use crate::rpc::fault::{acs_codes, CwmpFault};
use crate::rpc::get_parameter_names::{GetParameterNames, ParameterInfo};
use crate::rpc::get_parameter_values::{GetParameterValues, ParameterValue};
use crate::rpc::get_rpc_methods::GetRpcMethodsResponse;
use crate::rpc::inform::{Inform, InformResponse};
use crate::{CwmpVersion, DecodeError, Envelope};
use radar_core::{DeviceKey, Timestamp};
use std::collections::VecDeque;
use std::time::Duration;

pub mod identity;

#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// How long the ACS waits for the CPE's next POST.
    pub idle_timeout: Duration,
    /// Parameters per GetParameterValues during discovery and refresh.
    pub gpv_batch_size: usize,
    /// Upper bound on RPCs in one session, so a confused CPE cannot keep a session open forever.
    pub max_rpcs_per_session: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30),
            gpv_batch_size: 100,
            max_rpcs_per_session: 2_000,
        }
    }
}

/// What caused an RPC to be sent, echoed back with its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// An operation from the twin's queue, by id.
    Operation(u64),
    /// A request Radar makes for itself (attributes at bootstrap, refresh).
    Internal(u64),
}

/// Work the driver hands the session after the CPE's empty POST.
#[derive(Debug, Clone, PartialEq)]
pub enum Task {
    /// Send one RPC and report its result.
    Rpc {
        origin: Origin,
        message: CwmpMessage,
    },
    /// Discover a subtree: GetParameterNames(NextLevel=false), then its values in batches.
    Discover { prefix: String },
    /// Re-read a subtree by its leaf names (GetParameterNames, then GetParameterValues of the
    /// leaves in batches), for a device that fails on object-path reads. `origin` (an
    /// operation) is reported sent with the first request and answered after the last batch.
    ReadTree {
        prefix: String,
        origin: Option<Origin>,
    },
    /// Re-read values under these names or partial paths.
    Refresh { names: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Eq, Copy)]
pub enum ValueSource {
    Discovery,
    Refresh,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// A new session began with this Inform.
    Inform {
        device: DeviceKey,
        inform: Box<Inform>,
    },
    /// A CPE-originated request before the empty POST (TransferComplete, RequestDownload, …).
    CpeRequest(Box<CwmpMessage>),
    /// The result of an RPC sent for an operation or an internal purpose.
    RpcResult {
        origin: Origin,
        request: &'static str,
        result: RpcResult,
    },
    /// Names (with writability) from discovery.
    ParameterNames {
        prefix: String,
        parameters: Vec<ParameterInfo>,
    },
    /// Values from discovery or refresh.
    ParameterValues {
        source: ValueSource,
        parameters: Vec<ParameterValue>,
    },
    /// A discovery or refresh RPC failed with this fault.
    ReadFailed {
        request: &'static str,
        fault: CwmpFault,
    },
    /// An RPC is about to be sent; commit this before the reply carrying it leaves, so an
    /// operation's `sent` state is never behind the wire.
    RpcSent {
        origin: Origin,
        request: &'static str,
    },
    /// The session ended while an RPC was outstanding; its origin must be retried later.
    /// `object_read` says the outstanding request was a GetParameterValues of an object path
    /// (some CPE firmware dies on those).
    Abandoned {
        origin: Option<Origin>,
        reason: CloseReason,
        object_read: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum RpcResult {
    Response(Box<CwmpMessage>),
    Fault(CwmpFault),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// Empty for 204.
    pub body: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Normal end: HTTP 204 with no more work (TR-069 §3.7.1.4).
    Done,
    IdleTimeout,
    /// The CPE sent something the session cannot accept.
    ProtocolError,
    /// The CPE began a new session with a fresh Inform.
    Superseded,
    /// The Inform named a device other than the one the CPE's credentials belong to.
    IdentityMismatch,
    TooManyRpcs,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Event(SessionEvent),
    NeedWork,
    Reply(Reply),
    Close(CloseReason),
}

#[derive(Debug)]
pub enum Input<'a> {
    /// One HTTP POST body (may be empty).
    Post(&'a [u8]),
    /// The answer to [`Output::NeedWork`].
    Work(Vec<Task>),
    /// The deadline from [`AcsSession::poll_timeout`] has passed.
    Timeout,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionError {
    #[error("input {input} is not valid in state {state}")]
    UnexpectedInput {
        input: &'static str,
        state: &'static str,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Rpc(Origin, CwmpMessage),
    /// GetParameterNames of a subtree, then its leaves' values as `source`; `origin` is
    /// answered after the last batch.
    Names {
        prefix: String,
        source: ValueSource,
        origin: Option<Origin>,
    },
    /// GetParameterValues; `completes` is answered with this response.
    ReadValues {
        source: ValueSource,
        names: Vec<String>,
        completes: Option<Origin>,
    },
}

impl Step {
    fn origin(&self) -> Option<Origin> {
        match self {
            Step::Rpc(origin, _) => Some(*origin),
            Step::Names { origin, .. } => *origin,
            Step::ReadValues { completes, .. } => *completes,
        }
    }

    /// A GetParameterValues naming an object path (partial path).
    fn reads_object_path(&self) -> bool {
        let names = match self {
            Step::Rpc(_, CwmpMessage::GetParameterValues(g)) => &g.names,
            Step::ReadValues { names, .. } => names,
            _ => return false,
        };
        names.iter().any(|n| n.ends_with('.'))
    }
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    AwaitInform,
    AwaitCpeRequests,
    AwaitWork,
    SendingRpcs {
        awaiting: Box<Step>,
        request_id: String,
    },
    Closed,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::AwaitInform => "await_inform",
            State::AwaitCpeRequests => "await_cpe_requests",
            State::AwaitWork => "await_work",
            State::SendingRpcs { .. } => "sending_rpcs",
            State::Closed => "closed",
        }
    }
}

pub struct AcsSession {
    config: SessionConfig,
    state: State,
    version: CwmpVersion,
    device: Option<DeviceKey>,
    queue: VecDeque<Step>,
    outputs: VecDeque<Output>,
    deadline: Option<Timestamp>,
    rpcs_sent: u32,
    /// The current work includes a discovery: once it is done, the driver is asked for work
    /// again, since what to do next (which parameters take notification, which are
    /// writable) depends on the data model just learnt.
    ask_again_after_discovery: bool,
    next_request_id: u64,
    /// Names of the messages put in replies since the last `take_sent_methods`, for metrics.
    sent: Vec<&'static str>,
    /// The device the CPE's credentials belong to, when they are its own.
    identity: Option<identity::BoundIdentity>,
}

impl AcsSession {
    pub fn new(config: SessionConfig, now: Timestamp) -> Self {
        let deadline = Some(now.saturating_add(config.idle_timeout));
        Self {
            config,
            state: State::AwaitInform,
            version: CwmpVersion::V1_0,
            device: None,
            queue: VecDeque::new(),
            outputs: VecDeque::new(),
            deadline,
            rpcs_sent: 0,
            ask_again_after_discovery: false,
            next_request_id: 1,
            sent: Vec::new(),
            identity: None,
        }
    }

    /// The CPE authenticated with credentials of its own: from now on, an Inform for any other
    /// device is refused.
    pub fn bind_identity(&mut self, identity: identity::BoundIdentity) {
        self.identity = Some(identity);
    }

    pub fn device(&self) -> Option<&DeviceKey> {
        self.device.as_ref()
    }

    pub fn version(&self) -> CwmpVersion {
        self.version
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    pub fn state_name(&self) -> &'static str {
        self.state.name()
    }

    /// Method names of the messages sent in replies since the last call (for metrics), so the
    /// driver never re-parses what the session encoded.
    pub fn take_sent_methods(&mut self) -> Vec<&'static str> {
        std::mem::take(&mut self.sent)
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.deadline
    }

    pub fn handle(&mut self, now: Timestamp, input: Input<'_>) -> Result<(), SessionError> {
        match input {
            Input::Timeout => {
                if self.deadline.is_some_and(|d| now >= d) && self.state != State::Closed {
                    self.close(CloseReason::IdleTimeout);
                }
                Ok(())
            }
            Input::Work(tasks) => {
                if self.state != State::AwaitWork {
                    return Err(SessionError::UnexpectedInput {
                        input: "work",
                        state: self.state.name(),
                    });
                }
                self.ask_again_after_discovery =
                    tasks.iter().any(|t| matches!(t, Task::Discover { .. }));
                for task in tasks {
                    self.queue.push_back(match task {
                        Task::Rpc { origin, message } => Step::Rpc(origin, message),
                        Task::Discover { prefix } => Step::Names {
                            prefix,
                            source: ValueSource::Discovery,
                            origin: None,
                        },
                        Task::ReadTree { prefix, origin } => Step::Names {
                            prefix,
                            source: ValueSource::Refresh,
                            origin,
                        },
                        Task::Refresh { names } => Step::ReadValues {
                            source: ValueSource::Refresh,
                            names,
                            completes: None,
                        },
                    });
                }
                self.deadline = Some(now.saturating_add(self.config.idle_timeout));
                self.send_next_or_finish();
                Ok(())
            }
            Input::Post(body) => {
                self.deadline = Some(now.saturating_add(self.config.idle_timeout));
                self.on_post(body);
                Ok(())
            }
        }
    }

    fn on_post(&mut self, body: &[u8]) {
        let empty = body.iter().all(u8::is_ascii_whitespace);
        if empty {
            return self.on_empty_post();
        }
        let envelope = match Envelope::decode(body) {
            Ok(env) => env,
            Err(err) => return self.reject(&err),
        };
        if let CwmpMessage::Inform(inform) = envelope.message {
            // Any Inform starts a new session, even on a connection or cookie we know.
            if self.state != State::AwaitInform {
                self.abandon(CloseReason::Superseded);
                self.queue.clear();
                self.ask_again_after_discovery = false;
            }
            return self.on_inform(envelope.version, envelope.id, inform);
        }
        match self.state.clone() {
            State::AwaitInform | State::Closed | State::AwaitWork => {
                self.reply_fault(
                    envelope.id,
                    CwmpFault::new(
                        acs_codes::REQUEST_DENIED,
                        "session must start with an Inform",
                    ),
                    400,
                );
                self.close(CloseReason::ProtocolError);
            }
            State::AwaitCpeRequests => self.on_cpe_request(envelope),
            State::SendingRpcs { awaiting, .. } => {
                self.on_rpc_response(*awaiting, envelope.message)
            }
        }
    }

    fn on_inform(&mut self, version: CwmpVersion, id: Option<String>, inform: Inform) {
        let device = match DeviceKey::from_oui_serial(
            &inform.device_id.oui,
            &inform.device_id.serial_number,
        ) {
            Ok(d) => d,
            Err(err) => {
                self.reply_fault(
                    id,
                    CwmpFault::new(acs_codes::INVALID_ARGUMENTS, err.to_string()),
                    400,
                );
                return self.close(CloseReason::ProtocolError);
            }
        };
        if let Some(bound) = &self.identity {
            if !bound.admits(&inform.device_id, &device) {
                // No twin is touched: the Inform is never reported as an event.
                self.reply_fault(
                    id,
                    CwmpFault::new(
                        acs_codes::REQUEST_DENIED,
                        format!(
                            "the credentials of {:?} do not belong to {device}",
                            bound.username
                        ),
                    ),
                    403,
                );
                return self.close(CloseReason::IdentityMismatch);
            }
        }
        self.version = version;
        self.device = Some(device.clone());
        self.state = State::AwaitCpeRequests;
        self.outputs.push_back(Output::Event(SessionEvent::Inform {
            device,
            inform: Box::new(inform),
        }));
        // TR-069 A.3.3.1: MaxEnvelopes in InformResponse MUST be 1.
        self.reply_message(
            id,
            CwmpMessage::InformResponse(InformResponse { max_envelopes: 1 }),
        );
    }

    fn on_cpe_request(&mut self, envelope: Envelope) {
        let id = envelope.id;
        let response = match &envelope.message {
            CwmpMessage::TransferComplete(_) => CwmpMessage::TransferCompleteResponse,
            CwmpMessage::AutonomousTransferComplete(_) => {
                CwmpMessage::AutonomousTransferCompleteResponse
            }
            CwmpMessage::DuStateChangeComplete(_) => CwmpMessage::DuStateChangeCompleteResponse,
            CwmpMessage::RequestDownload(_) => CwmpMessage::RequestDownloadResponse,
            CwmpMessage::GetRpcMethods(_) => {
                CwmpMessage::GetRpcMethodsResponse(GetRpcMethodsResponse::acs_methods())
            }
            CwmpMessage::Kicked(_) => {
                let fault =
                    CwmpFault::new(acs_codes::METHOD_NOT_SUPPORTED, "Kicked is not supported");
                return self.reply_fault(id, fault, 200);
            }
            other => {
                let fault = CwmpFault::new(
                    acs_codes::METHOD_NOT_SUPPORTED,
                    format!("{} is not a CPE request", other.name()),
                );
                return self.reply_fault(id, fault, 200);
            }
        };
        if !matches!(envelope.message, CwmpMessage::GetRpcMethods(_)) {
            self.outputs
                .push_back(Output::Event(SessionEvent::CpeRequest(Box::new(
                    envelope.message,
                ))));
        }
        self.reply_message(id, response);
    }

    fn on_empty_post(&mut self) {
        match self.state.clone() {
            State::AwaitCpeRequests => {
                self.state = State::AwaitWork;
                self.outputs.push_back(Output::NeedWork);
            }
            State::SendingRpcs { awaiting, .. } => {
                // The CPE dropped our request (TR-069 says it must answer); retry it another time.
                self.outputs
                    .push_back(Output::Event(SessionEvent::Abandoned {
                        origin: awaiting.origin(),
                        reason: CloseReason::ProtocolError,
                        object_read: awaiting.reads_object_path(),
                    }));
                self.finish();
            }
            State::AwaitInform | State::AwaitWork | State::Closed => {
                self.reply_fault(
                    None,
                    CwmpFault::new(
                        acs_codes::REQUEST_DENIED,
                        "session must start with an Inform",
                    ),
                    400,
                );
                self.close(CloseReason::ProtocolError);
            }
        }
    }

    fn on_rpc_response(&mut self, awaiting: Step, message: CwmpMessage) {
        match awaiting {
            Step::Rpc(origin, request) => {
                let result = match message {
                    CwmpMessage::Fault(fault) => RpcResult::Fault(fault),
                    other => RpcResult::Response(Box::new(other)),
                };
                self.outputs
                    .push_back(Output::Event(SessionEvent::RpcResult {
                        origin,
                        request: request.name(),
                        result,
                    }));
            }
            Step::Names {
                prefix,
                source,
                origin,
            } => match message {
                CwmpMessage::GetParameterNamesResponse(resp) => {
                    let leaves: Vec<String> = resp
                        .parameters
                        .iter()
                        .filter(|p| !p.name.ends_with('.'))
                        .map(|p| p.name.clone())
                        .collect();
                    self.outputs
                        .push_back(Output::Event(SessionEvent::ParameterNames {
                            prefix,
                            parameters: resp.parameters,
                        }));
                    // Read values right after this discovery, ahead of other queued work.
                    let batches: Vec<Vec<String>> = leaves
                        .chunks(self.config.gpv_batch_size.max(1))
                        .map(<[String]>::to_vec)
                        .collect();
                    let last = batches.len().saturating_sub(1);
                    if batches.is_empty() {
                        self.answer_origin(origin);
                    }
                    for (i, names) in batches.into_iter().enumerate() {
                        let completes = if i == last { origin } else { None };
                        self.queue.insert(
                            i,
                            Step::ReadValues {
                                source,
                                names,
                                completes,
                            },
                        );
                    }
                }
                CwmpMessage::Fault(fault) => {
                    if let Some(origin) = origin {
                        self.outputs
                            .push_back(Output::Event(SessionEvent::RpcResult {
                                origin,
                                request: "GetParameterNames",
                                result: RpcResult::Fault(fault),
                            }));
                    } else {
                        self.outputs
                            .push_back(Output::Event(SessionEvent::ReadFailed {
                                request: "GetParameterNames",
                                fault,
                            }))
                    }
                }
                other => self.unexpected_response("GetParameterNamesResponse", &other),
            },
            Step::ReadValues {
                source, completes, ..
            } => match message {
                CwmpMessage::GetParameterValuesResponse(resp) => {
                    self.outputs
                        .push_back(Output::Event(SessionEvent::ParameterValues {
                            source,
                            parameters: resp.parameters,
                        }));
                    self.answer_origin(completes);
                }
                CwmpMessage::Fault(fault) => match completes {
                    Some(origin) => {
                        self.outputs
                            .push_back(Output::Event(SessionEvent::RpcResult {
                                origin,
                                request: "GetParameterValues",
                                result: RpcResult::Fault(fault),
                            }));
                    }
                    None => self
                        .outputs
                        .push_back(Output::Event(SessionEvent::ReadFailed {
                            request: "GetParameterValues",
                            fault,
                        })),
                },
                other => self.unexpected_response("GetParameterValuesResponse", &other),
            },
        }
        self.send_next_or_finish();
    }

    /// Answers an operation that a tree read carried, once its values are in.
    /// (Its values went out as `ParameterValues` events already.)
    fn answer_origin(&mut self, origin: Option<Origin>) {
        if let Some(origin) = origin {
            let done = crate::rpc::get_parameter_values::GetParameterValuesResponse {
                parameters: Vec::new(),
            };
            self.outputs
                .push_back(Output::Event(SessionEvent::RpcResult {
                    origin,
                    request: "GetParameterValues",
                    result: RpcResult::Response(Box::new(CwmpMessage::GetParameterValuesResponse(
                        done,
                    ))),
                }));
        }
    }

    fn unexpected_response(&mut self, expected: &'static str, got: &CwmpMessage) {
        let fault = CwmpFault::new(
            acs_codes::INVALID_ARGUMENTS,
            format!("expected {expected}, got {}", got.name()),
        );
        self.outputs
            .push_back(Output::Event(SessionEvent::ReadFailed {
                request: expected,
                fault,
            }));
    }

    fn send_next_or_finish(&mut self) {
        if self.rpcs_sent >= self.config.max_rpcs_per_session {
            self.abandon(CloseReason::TooManyRpcs);
            self.queue.clear();
            return self.finish_with(CloseReason::TooManyRpcs);
        }
        let Some(step) = self.queue.pop_front() else {
            if std::mem::take(&mut self.ask_again_after_discovery) {
                self.state = State::AwaitWork;
                self.outputs.push_back(Output::NeedWork);
                return;
            }
            return self.finish();
        };
        let message = match &step {
            Step::Rpc(_, message) => message.clone(),
            Step::Names { prefix, .. } => CwmpMessage::GetParameterNames(GetParameterNames {
                path: prefix.clone(),
                next_level: false,
            }),
            Step::ReadValues { names, .. } => CwmpMessage::GetParameterValues(GetParameterValues {
                names: names.clone(),
            }),
        };
        let request_id = format!("radar-{}", self.next_request_id);
        self.next_request_id += 1;
        self.rpcs_sent += 1;
        // An operation is sent with its first request (a tree read's names).
        let first_of_origin = match &step {
            Step::Rpc(origin, _) => Some(*origin),
            Step::Names { origin, .. } => *origin,
            Step::ReadValues { .. } => None,
        };
        if let Some(origin) = first_of_origin {
            self.outputs.push_back(Output::Event(SessionEvent::RpcSent {
                origin,
                request: message.name(),
            }));
        }
        self.state = State::SendingRpcs {
            awaiting: Box::new(step),
            request_id: request_id.clone(),
        };
        self.reply_message(Some(request_id), message);
    }

    /// Reports the outstanding RPC, if any, as abandoned.
    fn abandon(&mut self, reason: CloseReason) {
        if let State::SendingRpcs { awaiting, .. } = &self.state {
            let object_read = awaiting.reads_object_path();
            let origin = awaiting.origin();
            if origin.is_none() && !object_read {
                return;
            }
            self.outputs
                .push_back(Output::Event(SessionEvent::Abandoned {
                    origin,
                    reason,
                    object_read,
                }));
        }
    }

    fn finish(&mut self) {
        self.finish_with(CloseReason::Done)
    }

    fn finish_with(&mut self, reason: CloseReason) {
        self.outputs.push_back(Output::Reply(Reply {
            status: 204,
            body: String::new(),
        }));
        self.close(reason);
    }

    fn close(&mut self, reason: CloseReason) {
        if reason == CloseReason::IdleTimeout {
            self.abandon(reason);
        }
        self.state = State::Closed;
        self.deadline = None;
        self.outputs.push_back(Output::Close(reason));
    }

    fn reject(&mut self, err: &DecodeError) {
        let fault = CwmpFault::new(err.fault_code(), err.to_string());
        self.reply_fault(None, fault, 400);
        self.abandon(CloseReason::ProtocolError);
        self.close(CloseReason::ProtocolError);
    }

    fn reply_fault(&mut self, id: Option<String>, fault: CwmpFault, status: u16) {
        self.sent.push("Fault");
        let body = Envelope::new(self.version, id, CwmpMessage::Fault(fault)).encode();
        self.outputs
            .push_back(Output::Reply(Reply { status, body }));
    }

    fn reply_message(&mut self, id: Option<String>, message: CwmpMessage) {
        self.sent.push(message.name());
        let body = Envelope::new(self.version, id, message).encode();
        self.outputs
            .push_back(Output::Reply(Reply { status: 200, body }));
    }
}

#[cfg(test)]
mod tests;
