//! `TwinCommand`: every twin mutation, as data. `apply` is pure and deterministic (time comes in
//! the command), so the same log applied on any replica yields the same twins.

use crate::model::{Param, ShardState, Twin};
use crate::operation::{Operation, OperationKind, OperationStatus};
use radar_core::{DeviceKey, ParamType, Timestamp};
use serde::{Deserialize, Serialize};

mod operations;
mod report;

use operations::{coalesce_set_params, complete_operation, expire_operations};
pub(crate) use report::report_values;
use report::{apply_inform, param_sources};

/// Where a reported value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    #[default]
    Inform,
    Gpv,
    Discovery,
    Refresh,
    Spv,
    Notify,
    UspGet,
    /// Confirmed by a USP SetResp.
    UspSet,
}

impl Source {
    /// Whether a USP exchange reported the value (the rest are CWMP's).
    pub fn is_usp(self) -> bool {
        matches!(self, Source::Notify | Source::UspGet | Source::UspSet)
    }

    pub fn name(self) -> &'static str {
        match self {
            Source::Inform => "inform",
            Source::Gpv => "gpv",
            Source::Discovery => "discovery",
            Source::Refresh => "refresh",
            Source::Spv => "spv",
            Source::Notify => "notify",
            Source::UspGet => "usp_get",
            Source::UspSet => "usp_set",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedParam {
    pub path: String,
    pub value: String,
    pub ty: Option<ParamType>,
    pub writable: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Identity {
    pub oui: String,
    pub product_class: String,
    pub serial: String,
    pub manufacturer: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Done {
        detail: String,
    },
    /// Added an object instance (AddObject).
    Added {
        instance: u32,
    },
    /// Accepted; completion comes later (reboot, download with status 1).
    Accepted,
    Failed {
        code: u32,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TwinCommand {
    /// A CWMP Inform: a session began.
    Inform {
        device: DeviceKey,
        at: Timestamp,
        identity: Identity,
        events: Vec<(String, String)>,
        params: Vec<ReportedParam>,
    },
    /// Values read from the device (GetParameterValues, refresh, discovery, notify).
    ReportValues {
        device: DeviceKey,
        at: Timestamp,
        source: Source,
        params: Vec<ReportedParam>,
    },
    /// A complete list of names under `prefix` (GetParameterNames NextLevel=false). Parameters
    /// under the prefix that are no longer listed are removed: their objects were deleted.
    ReportNames {
        device: DeviceKey,
        at: Timestamp,
        prefix: String,
        names: Vec<(String, bool)>,
    },
    EnqueueOperation {
        device: DeviceKey,
        at: Timestamp,
        kind: OperationKind,
        requested_by: String,
        ttl_ms: Option<u64>,
    },
    MarkSent {
        device: DeviceKey,
        at: Timestamp,
        operation: u64,
    },
    CompleteOperation {
        device: DeviceKey,
        at: Timestamp,
        operation: u64,
        outcome: Outcome,
    },
    /// The session died with the operation outstanding; deliver it again next time.
    RequeueOperation {
        device: DeviceKey,
        at: Timestamp,
        operation: u64,
    },
    CancelOperation {
        device: DeviceKey,
        at: Timestamp,
        operation: u64,
    },
    /// TransferComplete / AutonomousTransferComplete (TR-069 A.3.3.2/3).
    TransferComplete {
        device: DeviceKey,
        at: Timestamp,
        command_key: String,
        fault_code: u32,
        fault_message: String,
    },
    /// Attributes were set at bootstrap; `refused` are paths the device would not notify actively.
    NotificationsConfigured {
        device: DeviceKey,
        at: Timestamp,
        refused: Vec<String>,
    },
    /// Radar set these connection-request credentials on the device (at bootstrap).
    ConnectionRequestCredentials {
        device: DeviceKey,
        at: Timestamp,
        username: String,
        password: String,
    },
    /// Free-form entry in the event log (faults, requests, …).
    RecordEvent {
        device: DeviceKey,
        at: Timestamp,
        kind: String,
        detail: String,
    },
    /// A USP agent became reachable (TR-369 §6: its Connect record, or its first message).
    /// Creates the twin on first contact.
    UspConnected {
        device: DeviceKey,
        at: Timestamp,
        /// `websocket` or `mqtt`.
        mtp: String,
        /// The agent's MQTT topic, when known.
        reply_to: String,
    },
    UspDisconnected {
        device: DeviceKey,
        at: Timestamp,
        reason: String,
    },
    /// The agent's USP versions (GetSupportedProtocolResp).
    UspProtocol {
        device: DeviceKey,
        at: Timestamp,
        versions: String,
    },
    /// Everything under `prefix` as just read: parameters the twin holds there and the device did
    /// not return are gone. `complete` marks the end of a whole-model read (discovery).
    ReportSnapshot {
        device: DeviceKey,
        at: Timestamp,
        source: Source,
        prefix: String,
        params: Vec<ReportedParam>,
        complete: bool,
    },
    /// An object instance was deleted on the device (USP ObjectDeletion).
    RemoveObject {
        device: DeviceKey,
        at: Timestamp,
        path: String,
    },
    /// A data-model event (USP Event Notify), e.g. `Device.Boot!` with its arguments.
    DeviceEvent {
        device: DeviceKey,
        at: Timestamp,
        path: String,
        args: Vec<(String, String)>,
    },
    /// A twin arriving from the shard that owned its partition (a partition move); replaces
    /// whatever this shard holds for the device.
    ImportTwin {
        device: DeviceKey,
        at: Timestamp,
        twin: Box<crate::moving::MovedTwin>,
    },
    /// An operator told Radar the connection-request credentials the device already has
    /// (factory-provisioned, or set by another ACS). Nothing is written to the device.
    KnownConnectionRequestCredentials {
        device: DeviceKey,
        at: Timestamp,
        username: String,
        password: String,
    },
    /// Radar learnt how the device departs from the standard (see `quirks`).
    RecordQuirk {
        device: DeviceKey,
        at: Timestamp,
        quirk: String,
        detail: String,
    },
    /// SetParameterAttributes at bootstrap failed as a whole (not 9009 on some paths).
    NotificationsFailed {
        device: DeviceKey,
        at: Timestamp,
        code: u32,
        message: String,
    },
    /// The result of a connection request: `sent`, `unauthorized`, `unreachable` or `failed`.
    ConnectionRequestOutcome {
        device: DeviceKey,
        at: Timestamp,
        outcome: String,
        detail: String,
    },
    /// Where Radar's subscriptions stand on a USP agent, as it answered the last check.
    UspSubscriptions {
        device: DeviceKey,
        at: Timestamp,
        subscriptions: Vec<crate::model::SubscriptionStatus>,
        /// Radar's stale rows the check removed.
        removed: u32,
    },
    /// An API call's change with its audit record (see [`crate::audit`]): the change applies
    /// as it would alone, and the record, completed with its result, commits with it.
    Audited {
        record: Box<crate::audit::AuditRecord>,
        command: AuditedCommand,
    },
    /// An audit record on its own (an API call that changed no twin). `key` only routes it to
    /// a shard; no twin is touched.
    Audit {
        key: DeviceKey,
        record: Box<crate::audit::AuditRecord>,
    },
}

/// The change inside [`TwinCommand::Audited`]: any command but another audited one. Decoding
/// refuses nesting, so a crafted entry cannot recurse through the decoder or `apply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct AuditedCommand(pub Box<TwinCommand>);

thread_local! {
    static DECODING_AUDITED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl<'de> Deserialize<'de> for AuditedCommand {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if DECODING_AUDITED.with(|inside| inside.replace(true)) {
            return Err(serde::de::Error::custom(
                "an audited command inside another",
            ));
        }
        let inner = TwinCommand::deserialize(d);
        DECODING_AUDITED.with(|inside| inside.set(false));
        let inner = inner?;
        if matches!(inner, TwinCommand::Audit { .. }) {
            return Err(serde::de::Error::custom("an audit record inside another"));
        }
        Ok(Self(Box::new(inner)))
    }
}

impl TwinCommand {
    pub fn device(&self) -> &DeviceKey {
        match self {
            TwinCommand::Inform { device, .. }
            | TwinCommand::ReportValues { device, .. }
            | TwinCommand::ReportNames { device, .. }
            | TwinCommand::EnqueueOperation { device, .. }
            | TwinCommand::MarkSent { device, .. }
            | TwinCommand::CompleteOperation { device, .. }
            | TwinCommand::RequeueOperation { device, .. }
            | TwinCommand::CancelOperation { device, .. }
            | TwinCommand::TransferComplete { device, .. }
            | TwinCommand::NotificationsConfigured { device, .. }
            | TwinCommand::ConnectionRequestCredentials { device, .. }
            | TwinCommand::RecordEvent { device, .. }
            | TwinCommand::UspConnected { device, .. }
            | TwinCommand::UspDisconnected { device, .. }
            | TwinCommand::UspProtocol { device, .. }
            | TwinCommand::ReportSnapshot { device, .. }
            | TwinCommand::RemoveObject { device, .. }
            | TwinCommand::DeviceEvent { device, .. }
            | TwinCommand::UspSubscriptions { device, .. }
            | TwinCommand::KnownConnectionRequestCredentials { device, .. }
            | TwinCommand::ConnectionRequestOutcome { device, .. }
            | TwinCommand::NotificationsFailed { device, .. }
            | TwinCommand::RecordQuirk { device, .. }
            | TwinCommand::ImportTwin { device, .. } => device,
            TwinCommand::Audited { command, .. } => command.0.device(),
            TwinCommand::Audit { key, .. } => key,
        }
    }

    fn at(&self) -> Timestamp {
        match self {
            TwinCommand::Inform { at, .. }
            | TwinCommand::ReportValues { at, .. }
            | TwinCommand::ReportNames { at, .. }
            | TwinCommand::EnqueueOperation { at, .. }
            | TwinCommand::MarkSent { at, .. }
            | TwinCommand::CompleteOperation { at, .. }
            | TwinCommand::RequeueOperation { at, .. }
            | TwinCommand::CancelOperation { at, .. }
            | TwinCommand::TransferComplete { at, .. }
            | TwinCommand::NotificationsConfigured { at, .. }
            | TwinCommand::ConnectionRequestCredentials { at, .. }
            | TwinCommand::RecordEvent { at, .. }
            | TwinCommand::UspConnected { at, .. }
            | TwinCommand::UspDisconnected { at, .. }
            | TwinCommand::UspProtocol { at, .. }
            | TwinCommand::ReportSnapshot { at, .. }
            | TwinCommand::RemoveObject { at, .. }
            | TwinCommand::DeviceEvent { at, .. }
            | TwinCommand::UspSubscriptions { at, .. }
            | TwinCommand::KnownConnectionRequestCredentials { at, .. }
            | TwinCommand::ConnectionRequestOutcome { at, .. }
            | TwinCommand::NotificationsFailed { at, .. }
            | TwinCommand::RecordQuirk { at, .. }
            | TwinCommand::ImportTwin { at, .. } => *at,
            TwinCommand::Audited { command, .. } => command.0.at(),
            TwinCommand::Audit { record, .. } => record.at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ApplyOutcome {
    /// The operation a command created.
    pub operation: Option<u64>,
}

/// Serializable: in a Raft group the error travels back to the proposer with the entry's result.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApplyError {
    #[error("device {0} has no twin")]
    UnknownDevice(DeviceKey),
    #[error("device has no operation {0}")]
    UnknownOperation(u64),
    #[error("operation {id} is {status} and can no longer be cancelled")]
    NotCancellable { id: u64, status: String },
    /// The device's partition is moving to another shard; retry once the layout has changed.
    #[error("device {0} is moving to another shard")]
    Moving(DeviceKey),
    /// The twin could not be read back from the shard's storage. Not an answer about the
    /// device: the state machine stops on it rather than let replicas diverge.
    #[error("shard storage: {0}")]
    Storage(String),
}

impl From<crate::table::ColdReadError> for ApplyError {
    fn from(e: crate::table::ColdReadError) -> Self {
        ApplyError::Storage(e.to_string())
    }
}

/// Applies one command to the shard state. Pure: no clock, no I/O, deterministic.
/// Applies a command to a shard's state and keeps the shard's secondary index current.
pub fn apply(state: &mut ShardState, command: &TwinCommand) -> Result<ApplyOutcome, ApplyError> {
    match command {
        TwinCommand::Audit { record, .. } => {
            state.audit.push((**record).clone());
            return Ok(ApplyOutcome::default());
        }
        TwinCommand::Audited { record, command } => return apply_audited(state, record, command),
        _ => {}
    }
    let device = command.device();
    // The index keeps no copy of a device's values: read the old ones from the twin (made
    // resident here, as applying would) before it changes.
    let before = match state.index.is_enabled() {
        true => state
            .twins
            .get_mut(device)?
            .map(|twin| state.index.values_of(twin, &state.dict)),
        false => None,
    };
    let outcome = apply_command(state, command);
    state.twins.account(device, &state.dict);
    if state.index.is_enabled() {
        let after = state
            .twins
            .get_resident(device)
            .map(|twin| state.index.values_of(twin, &state.dict));
        if let Some(number) = state.twins.number(device) {
            state.index.change(number, before.as_ref(), after.as_ref());
        }
    }
    outcome
}

/// Applies an audited change, then keeps its record with the result. A change refused for a
/// move is retried elsewhere and a storage failure stops the shard: neither is recorded here.
fn apply_audited(
    state: &mut ShardState,
    record: &crate::audit::AuditRecord,
    command: &AuditedCommand,
) -> Result<ApplyOutcome, ApplyError> {
    let result = apply(state, &command.0);
    if let Err(ApplyError::Moving(_) | ApplyError::Storage(_)) = result {
        return result;
    }
    let mut record = record.clone();
    match &result {
        Ok(outcome) => {
            record.result = "ok".into();
            // The operation the change created, or the one it acted on.
            record.operation = outcome.operation.or(match &*command.0 {
                TwinCommand::CancelOperation { operation, .. } => Some(*operation),
                _ => None,
            });
        }
        Err(e) => record.result = e.to_string(),
    }
    let device = command.0.device();
    if let Some(twin) = state.twins.get_mut(device)? {
        twin.log(record.at, "audit", record.headline());
        twin.changes.header = true;
        state.twins.account(device, &state.dict);
    }
    state.audit.push(record);
    result
}

fn apply_command(
    state: &mut ShardState,
    command: &TwinCommand,
) -> Result<ApplyOutcome, ApplyError> {
    let at = command.at();
    let device = command.device().clone();
    if let TwinCommand::ImportTwin { twin, .. } = command {
        let mut imported = (**twin).clone().into_twin(&mut state.dict);
        imported.key = device.clone();
        if let Some(old) = state.twins.get(&device)? {
            imported.changes.removed = old.params.iter().map(|(id, _)| *id).collect();
        }
        state.twins.insert(device, imported);
        return Ok(ApplyOutcome::default());
    }
    if state.frozen.contains(&device) {
        return Err(ApplyError::Moving(device));
    }
    if let TwinCommand::Inform {
        identity,
        events,
        params,
        ..
    } = command
    {
        let twin = state.twins.get_or_insert_with(&device, || {
            let mut twin = Twin::new(device.clone());
            twin.meta.first_contact = at;
            twin
        })?;
        expire_operations(twin, at);
        apply_inform(twin, &mut state.dict, at, identity, events, params);
        twin.changes.header = true;
        return Ok(ApplyOutcome::default());
    }
    if let TwinCommand::UspConnected { mtp, reply_to, .. } = command {
        let twin = state.twins.get_or_insert_with(&device, || {
            let mut twin = Twin::new(device.clone());
            twin.meta.first_contact = at;
            twin
        })?;
        expire_operations(twin, at);
        crate::usp::apply_connected(twin, at, mtp, reply_to);
        twin.changes.header = true;
        return Ok(ApplyOutcome::default());
    }
    let ShardState { dict, twins, .. } = state;
    let twin = twins
        .get_mut(&device)?
        .ok_or_else(|| ApplyError::UnknownDevice(device.clone()))?;
    expire_operations(twin, at);
    // Value reports touch the header only when they change meta (see `report_values`); every
    // other command changes meta, operations or the event log.
    if !matches!(command, TwinCommand::ReportValues { .. }) {
        twin.changes.header = true;
    }
    let mut outcome = ApplyOutcome::default();
    match command {
        TwinCommand::Inform { .. }
        | TwinCommand::UspConnected { .. }
        | TwinCommand::ImportTwin { .. }
        | TwinCommand::Audited { .. }
        | TwinCommand::Audit { .. } => {
            unreachable!("handled above")
        }
        TwinCommand::UspDisconnected { reason, .. } => {
            twin.meta.connected = false;
            twin.log(at, "disconnect", reason.clone());
        }
        TwinCommand::UspProtocol { versions, .. } => {
            twin.meta.usp_versions = versions.chars().take(64).collect();
        }
        TwinCommand::ReportSnapshot {
            source,
            prefix,
            params,
            complete,
            ..
        } => {
            let listed: std::collections::HashSet<&str> =
                params.iter().map(|p| p.path.as_str()).collect();
            // A dual-stack device: what its CWMP side reported stays (the agent's data model
            // need not cover the CWMP one, e.g. Device.ManagementServer).
            let keep_cwmp = twin.meta.speaks("cwmp");
            let sources = param_sources(twin, keep_cwmp);
            twin.retain_params(|id| {
                let path = dict.render(id);
                !path.starts_with(prefix.as_str())
                    || listed.contains(path.as_str())
                    || (keep_cwmp && sources.get(id).is_some_and(|s| !s.is_usp()))
            });
            report_values(twin, dict, at, *source, params);
            if *complete {
                twin.meta.discovered_at = Some(at);
                twin.log(at, "discovery", format!("{} parameters", twin.params.len()));
            }
        }
        TwinCommand::RemoveObject { path, .. } => {
            twin.remove_subtree(dict, path);
            twin.log(at, "object", format!("{path} deleted"));
        }
        TwinCommand::DeviceEvent { path, args, .. } => {
            crate::usp::apply_event(twin, at, path, args);
        }
        TwinCommand::UspSubscriptions {
            subscriptions,
            removed,
            ..
        } => crate::usp::apply_subscriptions(twin, at, subscriptions, *removed),
        TwinCommand::ReportValues { source, params, .. } => {
            report_values(twin, dict, at, *source, params)
        }
        TwinCommand::ReportNames { prefix, names, .. } => {
            let listed: std::collections::HashSet<&str> =
                names.iter().map(|(n, _)| n.as_str()).collect();
            // Objects that disappeared since the last discovery take their parameters with them;
            // on a dual-stack device, what its USP agent reported stays.
            let keep_usp = twin.meta.speaks("usp");
            let sources = param_sources(twin, keep_usp);
            twin.retain_params(|id| {
                let path = dict.render(id);
                !path.starts_with(prefix.as_str())
                    || listed.contains(path.as_str())
                    || (keep_usp && sources.get(id).is_some_and(|s| s.is_usp()))
            });
            for (name, writable) in names.iter().filter(|(n, _)| !n.ends_with('.')) {
                let id = dict.intern(name);
                let writable = *writable;
                twin.upsert_param(id, |existing| match existing {
                    Some(p) => {
                        p.writable = writable;
                        None
                    }
                    None => Some(Param {
                        value: "".into(),
                        ty: ParamType::String,
                        writable,
                        source: Source::Discovery,
                        reported_at: at,
                    }),
                });
            }
            if prefix == &twin.meta.root || prefix.is_empty() {
                twin.meta.discovered_at = Some(at);
            }
            twin.log(
                at,
                "discovery",
                format!("{} names under {prefix:?}", names.len()),
            );
        }
        TwinCommand::EnqueueOperation {
            kind,
            requested_by,
            ttl_ms,
            ..
        } => {
            let id = twin.next_operation_id;
            twin.next_operation_id += 1;
            let mut kind = kind.clone();
            if let OperationKind::SetParams { params } = &mut kind {
                coalesce_set_params(twin, id, params, at);
            }
            twin.log(
                at,
                "operation",
                format!("{} #{id} queued by {requested_by}", kind.name()),
            );
            twin.operations.push(Operation {
                id,
                kind,
                status: OperationStatus::Queued,
                created_at: at,
                requested_by: requested_by.clone(),
                expires_at: ttl_ms.map(|ms| Timestamp(at.0.saturating_add(ms))),
                attempts: 0,
            });
            outcome.operation = Some(id);
        }
        TwinCommand::MarkSent { operation, .. } => {
            let op = twin
                .operation_mut(*operation)
                .ok_or(ApplyError::UnknownOperation(*operation))?;
            if op.status.is_pending() {
                op.status = OperationStatus::Sent { at };
                op.attempts += 1;
            }
        }
        TwinCommand::RequeueOperation { operation, .. } => {
            let op = twin
                .operation_mut(*operation)
                .ok_or(ApplyError::UnknownOperation(*operation))?;
            if matches!(op.status, OperationStatus::Sent { .. }) {
                // A request that kills the session every time (some CPE firmware crashes on
                // it) must not be sent forever: after a bounded number of deliveries it fails.
                if op.attempts >= crate::operation::MAX_DELIVERY_ATTEMPTS {
                    let message = format!(
                        "the device's session ended without an answer on each of {} deliveries",
                        op.attempts
                    );
                    op.status = OperationStatus::Failed {
                        at,
                        code: crate::operation::UNCONFIRMED,
                        message: message.clone(),
                    };
                    twin.log(at, "fault", format!("#{operation} failed: {message}"));
                } else {
                    op.status = OperationStatus::Queued;
                }
            }
        }
        TwinCommand::CancelOperation { operation, .. } => {
            let op = twin
                .operation_mut(*operation)
                .ok_or(ApplyError::UnknownOperation(*operation))?;
            // A sent operation can be cancelled too: it is never sent again, and a late answer
            // from the device is recorded but does not reopen it.
            let was_sent = matches!(op.status, OperationStatus::Sent { .. });
            if !op.status.is_pending() {
                return Err(ApplyError::NotCancellable {
                    id: *operation,
                    status: op.status.name().to_owned(),
                });
            }
            op.status = OperationStatus::Cancelled { at };
            twin.log(
                at,
                "operation",
                if was_sent {
                    format!("#{operation} cancelled after it was sent (the device may still have acted on it)")
                } else {
                    format!("#{operation} cancelled")
                },
            );
        }
        TwinCommand::CompleteOperation {
            operation,
            outcome: result,
            ..
        } => {
            complete_operation(twin, dict, at, *operation, result)?;
        }
        TwinCommand::TransferComplete {
            command_key,
            fault_code,
            fault_message,
            ..
        } => {
            let detail = if *fault_code == 0 {
                format!("transfer {command_key:?} complete")
            } else {
                format!("transfer {command_key:?} failed: {fault_code} {fault_message}")
            };
            twin.log(at, "transfer", detail);
            if let Some(id) = Operation::id_from_command_key(command_key) {
                if let Some(op) = twin.operation_mut(id) {
                    if op.status.is_pending() {
                        op.status = if *fault_code == 0 {
                            OperationStatus::Done {
                                at,
                                detail: "transfer complete".into(),
                            }
                        } else {
                            OperationStatus::Failed {
                                at,
                                code: *fault_code,
                                message: fault_message.clone(),
                            }
                        };
                    }
                }
            }
        }
        TwinCommand::RecordQuirk { quirk, detail, .. } => {
            crate::quirks::record(twin, at, quirk, detail)
        }
        TwinCommand::NotificationsFailed { code, message, .. } => {
            twin.meta.notifications_configured = false;
            twin.meta.notification_fault = Some(crate::model::DeviceFault {
                at,
                code: *code,
                message: message.chars().take(200).collect(),
            });
            twin.log(
                at,
                "notification",
                format!("SetParameterAttributes refused: {code} {message}"),
            );
        }
        TwinCommand::NotificationsConfigured { refused, .. } => {
            twin.meta.notifications_configured = true;
            twin.meta.notification_fault = None;
            twin.meta.notification_refused = refused.clone();
            if !refused.is_empty() {
                twin.log(
                    at,
                    "notification",
                    format!("active notification refused on {}", refused.join(", ")),
                );
            }
        }
        TwinCommand::ConnectionRequestCredentials {
            username, password, ..
        }
        | TwinCommand::KnownConnectionRequestCredentials {
            username, password, ..
        } => {
            use crate::credentials::CredentialSource;
            let source = match command {
                TwinCommand::KnownConnectionRequestCredentials { .. } => {
                    CredentialSource::OperatorKnown
                }
                _ => CredentialSource::Radar,
            };
            crate::credentials::set(twin, dict, at, username, password, source)
        }
        TwinCommand::ConnectionRequestOutcome {
            outcome, detail, ..
        } => crate::credentials::record_outcome(twin, at, outcome, detail),
        TwinCommand::RecordEvent { kind, detail, .. } => twin.log(at, kind, detail.clone()),
    }
    twin.trim_finished_operations();
    // Bulk reports grow the table by doubling; give the slack back (params are the bulk of
    // twin memory, see B6).
    if twin.params.capacity() > twin.params.len() + twin.params.len() / 8 + 4 {
        twin.params.shrink_to_fit();
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests;
