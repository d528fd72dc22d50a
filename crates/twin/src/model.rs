//! What a twin holds.

use crate::command::Source;
use crate::operation::Operation;
use crate::paths::{PathDict, PathId};
use radar_core::{DeviceKey, ParamType, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Entries kept in a twin's event log; older ones are dropped first.
pub const EVENT_LOG_CAPACITY: usize = 64;
/// Finished operations kept for inspection; queued and sent ones are always kept.
pub const FINISHED_OPERATIONS_KEPT: usize = 32;

/// One reported parameter. Kept small: this struct is multiplied by every parameter of every device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    /// Inline up to 24 bytes, which covers most TR-181 values, so most parameters need no heap.
    pub value: compact_str::CompactString,
    pub ty: ParamType,
    pub writable: bool,
    pub source: Source,
    pub reported_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Meta {
    pub oui: String,
    pub product_class: String,
    pub serial: String,
    pub manufacturer: String,
    pub software_version: String,
    /// The protocol of the latest contact: `cwmp` or `usp`.
    pub protocol: String,
    /// Every protocol the device has spoken (both for a device with a CWMP client and a USP
    /// agent under the same `os::<OUI>-<Serial>` identity: one twin, DESIGN §2).
    pub protocols: Vec<String>,
    /// How a USP agent is reached: `websocket` or `mqtt` (empty for CWMP).
    pub mtp: String,
    /// A USP agent's MTP connection is up (set on connect, cleared on disconnect and at startup).
    pub connected: bool,
    /// Where a USP agent over MQTT receives records (from its MQTTConnect record or the
    /// Response Topic of its messages).
    pub usp_reply_to: String,
    /// USP versions the agent supports (GetSupportedProtocol).
    pub usp_versions: String,
    /// Data model root as the device reports it: `Device.` (TR-181) or `InternetGatewayDevice.` (TR-098).
    pub root: String,
    pub first_contact: Timestamp,
    pub last_contact: Timestamp,
    pub last_inform_events: Vec<String>,
    pub connection_request_url: String,
    pub connection_request_username: String,
    pub connection_request_password: String,
    pub discovered_at: Option<Timestamp>,
    /// Paths on which the device refused active notification (fault 9009), refreshed instead.
    pub notification_refused: Vec<String>,
    pub notifications_configured: bool,
    /// The device refused SetParameterAttributes as a whole (a fault other than 9009): its
    /// notifications are not configured, and Radar refreshes instead until it tries again.
    pub notification_fault: Option<DeviceFault>,
    pub sessions: u64,
    /// How this device departs from the standard, learnt from what it did (see
    /// [`crate::quirks`]); Radar works around each.
    pub quirks: Vec<String>,
    /// Where the connection-request credentials came from.
    pub connection_request_credentials_source: crate::credentials::CredentialSource,
    /// The last connection request's result; a refusal (401) stays visible until one succeeds.
    pub connection_request_status: Option<ConnectionRequestStatus>,
    /// Where each of Radar's wanted USP subscriptions stands on the agent, as it last answered.
    pub subscriptions: Vec<SubscriptionStatus>,
    pub subscriptions_checked_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceFault {
    pub at: Timestamp,
    pub code: u32,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionRequestStatus {
    pub at: Timestamp,
    /// `sent`, `unauthorized`, `unreachable`, `failed`.
    pub outcome: String,
    pub detail: String,
}

impl Meta {
    /// Whether the device has spoken `protocol` (older twins: their latest protocol).
    pub fn speaks(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|p| p == protocol)
            || (self.protocols.is_empty() && self.protocol == protocol)
    }

    pub(crate) fn add_protocol(&mut self, protocol: &str) {
        self.protocol = protocol.into();
        if !self.protocols.iter().any(|p| p == protocol) {
            self.protocols.push(protocol.into());
            self.protocols.sort();
        }
    }
}

/// One wanted USP subscription on one agent (TR-181 `Device.LocalAgent.Subscription.{i}.`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionStatus {
    /// `ValueChange`, `ObjectCreation`, `ObjectDeletion`, `OperationComplete` or `Event`.
    pub notif_type: String,
    pub reference: String,
    pub standing: SubscriptionStanding,
}

/// Stored with postcard, so externally tagged (postcard cannot read internally tagged enums).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubscriptionStanding {
    /// The agent holds it; `note` says what was given up (an optional parameter it refused).
    InPlace { note: String },
    /// The agent refused it, with its USP error.
    Refused { code: u32, message: String },
    /// The agent's data model lacks what it references, so it was not asked for.
    NotInDataModel { reason: String },
}

impl SubscriptionStanding {
    pub fn name(&self) -> &'static str {
        match self {
            SubscriptionStanding::InPlace { .. } => "in_place",
            SubscriptionStanding::Refused { .. } => "refused",
            SubscriptionStanding::NotInDataModel { .. } => "not_in_data_model",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwinEvent {
    /// When it last happened.
    pub at: Timestamp,
    pub kind: String,
    pub detail: String,
    /// How many times in a row it happened (periodic informs repeat), with `first_at` the first.
    pub repeated: u32,
    pub first_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Twin {
    pub key: DeviceKey,
    pub meta: Meta,
    /// Sorted by `PathId`: a compact table rather than a tree, since twins are read far more
    /// than their key set changes.
    pub params: Vec<(PathId, Param)>,
    pub operations: Vec<Operation>,
    pub next_operation_id: u64,
    pub events: VecDeque<TwinEvent>,
    /// Parameters changed since the last write-back, so storage writes only those.
    #[serde(skip)]
    pub changes: ParamChanges,
}

/// Write-back bookkeeping: which parameters changed since the store last persisted this twin.
/// Transient (never serialized) and not part of the twin's value, so equality ignores it.
#[derive(Debug, Clone, Default)]
pub struct ParamChanges {
    pub put: Vec<PathId>,
    pub removed: Vec<PathId>,
    /// Meta, operations or the event log changed: the header record must be rewritten too.
    /// Value reports (the bulk of writes: informs, notifies) usually leave it alone.
    pub header: bool,
}

impl PartialEq for ParamChanges {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl ParamChanges {
    pub fn take(&mut self) -> ParamChanges {
        std::mem::take(self)
    }
}

impl Twin {
    pub fn new(key: DeviceKey) -> Self {
        Self {
            key,
            meta: Meta::default(),
            params: Vec::new(),
            operations: Vec::new(),
            next_operation_id: 1,
            events: VecDeque::new(),
            changes: ParamChanges::default(),
        }
    }

    /// The twin's approximate size in memory (the struct, its tables and their strings), for
    /// the cache's memory budget. An estimate: allocator overhead and rare fields are ignored.
    pub fn estimated_bytes(&self) -> u32 {
        use std::mem::size_of;
        let inline = size_of::<compact_str::CompactString>();
        let params: usize = self
            .params
            .iter()
            .map(|(_, p)| {
                if p.value.len() > inline {
                    p.value.len()
                } else {
                    0
                }
            })
            .sum();
        let m = &self.meta;
        let meta: usize = [
            &m.oui,
            &m.product_class,
            &m.serial,
            &m.manufacturer,
            &m.software_version,
            &m.protocol,
            &m.mtp,
            &m.usp_reply_to,
            &m.usp_versions,
            &m.root,
            &m.connection_request_url,
            &m.connection_request_username,
            &m.connection_request_password,
        ]
        .iter()
        .map(|s| s.capacity())
        .sum::<usize>()
            + m.last_inform_events
                .iter()
                .map(|e| 24 + e.len())
                .sum::<usize>()
            + m.quirks.iter().map(|q| 24 + q.len()).sum::<usize>()
            + m.subscriptions.len() * 128;
        let events: usize = self
            .events
            .iter()
            .map(|e| size_of::<TwinEvent>() + e.kind.len() + e.detail.len())
            .sum();
        let operations = self.operations.len() * (size_of::<Operation>() + 256);
        let total = size_of::<Twin>()
            + self.key.as_str().len()
            + self.params.capacity() * size_of::<(PathId, Param)>()
            + params
            + meta
            + events
            + operations;
        total.min(u32::MAX as usize) as u32
    }

    pub fn param(&self, id: &PathId) -> Option<&Param> {
        self.params
            .binary_search_by(|(k, _)| k.cmp(id))
            .ok()
            .map(|i| &self.params[i].1)
    }

    pub fn param_by_path(&self, dict: &PathDict, path: &str) -> Option<&Param> {
        dict.lookup(path).and_then(|id| self.param(&id))
    }

    pub fn upsert_param(
        &mut self,
        id: PathId,
        update: impl FnOnce(Option<&mut Param>) -> Option<Param>,
    ) {
        match self.params.binary_search_by(|(k, _)| k.cmp(&id)) {
            Ok(i) => {
                if let Some(replacement) = update(Some(&mut self.params[i].1)) {
                    self.params[i].1 = replacement;
                }
                self.changes.put.push(id);
            }
            Err(i) => {
                if let Some(new) = update(None) {
                    self.params.insert(i, (id, new));
                    self.changes.put.push(id);
                }
            }
        }
    }

    /// Keeps the parameters for which `keep` is true, recording the others as removed.
    pub fn retain_params(&mut self, mut keep: impl FnMut(&PathId) -> bool) -> usize {
        let before = self.params.len();
        let removed = &mut self.changes.removed;
        self.params.retain(|(id, _)| {
            let k = keep(id);
            if !k {
                removed.push(*id);
            }
            k
        });
        before - self.params.len()
    }

    /// Removes every parameter whose rendered path starts with `prefix`.
    pub fn remove_subtree(&mut self, dict: &PathDict, prefix: &str) -> usize {
        self.retain_params(|id| !dict.render(id).starts_with(prefix))
    }

    /// Appends to the bounded event log. An event identical to the previous one (a run of
    /// periodic informs) is counted on that entry instead, so routine traffic never pushes
    /// boots, faults and operator changes out of the log.
    pub fn log(&mut self, at: Timestamp, kind: &str, detail: impl Into<String>) {
        let detail = detail.into();
        if let Some(last) = self.events.back_mut() {
            if last.kind == kind && last.detail == detail {
                last.repeated = last.repeated.saturating_add(1);
                last.at = at;
                return;
            }
        }
        if self.events.len() >= EVENT_LOG_CAPACITY {
            self.events.pop_front();
        }
        self.events.push_back(TwinEvent {
            at,
            kind: kind.to_owned(),
            detail,
            repeated: 1,
            first_at: at,
        });
    }

    /// Parameters (rendered) under a prefix, in path order.
    pub fn params_under<'a>(
        &'a self,
        dict: &'a PathDict,
        prefix: &'a str,
    ) -> Vec<(String, &'a Param)> {
        let mut out: Vec<(String, &Param)> = self
            .params
            .iter()
            .map(|(id, p)| (dict.render(id), p))
            .filter(|(path, _)| path.starts_with(prefix))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The oldest report time under a prefix. Runs at every session, so it compares template
    /// text without rendering paths when the prefix has no instance numbers.
    pub fn oldest_under(&self, dict: &PathDict, prefix: &str) -> Option<Timestamp> {
        let literal = !prefix
            .split('.')
            .any(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
        self.params
            .iter()
            .filter(|(id, _)| {
                if literal {
                    dict.template(id.template)
                        .is_some_and(|t| t.starts_with(prefix))
                } else {
                    dict.render(id).starts_with(prefix)
                }
            })
            .map(|(_, p)| p.reported_at)
            .min()
    }

    pub fn pending_operations(&self) -> impl Iterator<Item = &Operation> {
        self.operations.iter().filter(|o| o.status.is_pending())
    }

    pub fn operation(&self, id: u64) -> Option<&Operation> {
        self.operations.iter().find(|o| o.id == id)
    }

    pub fn operation_mut(&mut self, id: u64) -> Option<&mut Operation> {
        self.operations.iter_mut().find(|o| o.id == id)
    }

    /// Drops the oldest finished operations beyond the retention bound.
    pub fn trim_finished_operations(&mut self) {
        let finished = self
            .operations
            .iter()
            .filter(|o| !o.status.is_pending())
            .count();
        let mut excess = finished.saturating_sub(FINISHED_OPERATIONS_KEPT);
        self.operations.retain(|o| {
            if excess > 0 && !o.status.is_pending() {
                excess -= 1;
                false
            } else {
                true
            }
        });
    }
}

/// All twins of one shard plus the shard's path dictionary: the Raft state machine's state.
#[derive(Debug, Default)]
pub struct ShardState {
    pub dict: PathDict,
    /// Every twin of the shard, resident or cold (see [`crate::table`]).
    pub twins: crate::table::TwinTable,
    /// Secondary index over meta fields and configured paths; kept current by `apply`.
    pub index: crate::index::FieldIndex,
    /// Partitions being handed to another shard (see [`crate::moving`]).
    pub frozen: crate::moving::Frozen,
    /// Audit records applied and not yet written (see [`crate::audit`]).
    pub audit: crate::audit::ShardAudit,
}
