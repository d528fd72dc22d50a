//! The audit log (issue 13): who changed what through the API, when, from where, and what came
//! of it. A record is a replicated change like any twin change: it travels in a Raft entry,
//! either wrapped around the twin command an API call caused ([`TwinCommand::Audited`], so the
//! record and the change commit together) or alone ([`TwinCommand::Audit`], for a call that
//! changed no twin: a refused request, a cluster change). `apply` keeps the shard's new records
//! in [`ShardAudit`] under keys that order them by time and are the same on every replica;
//! the state machine writes them with its checkpoint and puts them in snapshots.
//!
//! [`TwinCommand::Audited`]: crate::TwinCommand::Audited
//! [`TwinCommand::Audit`]: crate::TwinCommand::Audit

use radar_core::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One audited API call (or, for a bulk call, its part in one device).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AuditRecord {
    pub at: Timestamp,
    /// Groups the records of one call (a bulk write leaves one per device).
    pub request: String,
    /// The token id (or the OIDC subject) that made the call.
    pub actor: String,
    pub role: String,
    /// The client's address as the node that took the call saw it.
    pub source: String,
    pub method: String,
    /// The route as registered (`/api/v1/devices/{id}/params`).
    pub route: String,
    /// The path called.
    pub path: String,
    /// The device the record is about; empty for a call about none.
    pub device: String,
    /// What was asked: the request's parameters with secret values replaced.
    pub detail: String,
    /// The HTTP status; 0 in a record committed with its change, where `result` says more.
    pub status: u16,
    /// `ok`, or why the change was refused.
    pub result: String,
    /// The operation the change created.
    pub operation: Option<u64>,
}

impl AuditRecord {
    /// The one line a device's event log shows for this record.
    pub fn headline(&self) -> String {
        let mut line = format!(
            "{} ({}) {} {}",
            self.actor, self.role, self.method, self.route
        );
        if let Some(op) = self.operation {
            line.push_str(&format!(" → operation {op}"));
        }
        if self.result != "ok" {
            line.push_str(&format!(": {}", self.result));
        }
        line
    }
}

/// Where a record sits in its shard's log: by time, then by the Raft entry and the place in it
/// that committed it, so every replica files a record under the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct AuditKey {
    pub at: u64,
    pub entry: u64,
    pub seq: u32,
}

impl AuditKey {
    pub const LEN: usize = 20;

    pub fn to_bytes(self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..8].copy_from_slice(&self.at.to_be_bytes());
        out[8..16].copy_from_slice(&self.entry.to_be_bytes());
        out[16..].copy_from_slice(&self.seq.to_be_bytes());
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != Self::LEN {
            return None;
        }
        Some(Self {
            at: u64::from_be_bytes(bytes[..8].try_into().ok()?),
            entry: u64::from_be_bytes(bytes[8..16].try_into().ok()?),
            seq: u32::from_be_bytes(bytes[16..].try_into().ok()?),
        })
    }
}

/// The records applied since the state machine last wrote them.
#[derive(Debug, Default)]
pub struct ShardAudit {
    entry: u64,
    seq: u32,
    pub unwritten: BTreeMap<AuditKey, AuditRecord>,
}

impl ShardAudit {
    /// Called by the state machine before it applies the commands of log entry `index`.
    pub fn begin_entry(&mut self, index: u64) {
        self.entry = index;
        self.seq = 0;
    }

    pub(crate) fn push(&mut self, record: AuditRecord) {
        let key = AuditKey {
            at: record.at.as_millis(),
            entry: self.entry,
            seq: self.seq,
        };
        self.seq += 1;
        self.unwritten.insert(key, record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_by_time_then_entry() {
        let a = AuditKey {
            at: 5,
            entry: 900,
            seq: 3,
        };
        let b = AuditKey {
            at: 6,
            entry: 1,
            seq: 0,
        };
        assert!(a.to_bytes() < b.to_bytes());
        assert_eq!(AuditKey::from_bytes(&a.to_bytes()), Some(a));
        assert_eq!(AuditKey::from_bytes(&[1, 2]), None);
    }

    /// An audited command decodes; one nested in another does not (a crafted entry could
    /// otherwise recurse as deep as its bytes allow).
    #[test]
    fn nesting_is_refused_when_decoding() {
        use crate::command::AuditedCommand;
        use crate::TwinCommand;
        let device = radar_core::DeviceKey::parse("D-1").unwrap();
        let inner = TwinCommand::RecordEvent {
            device: device.clone(),
            at: Timestamp(1),
            kind: "k".into(),
            detail: "d".into(),
        };
        let wrap = |command: TwinCommand| TwinCommand::Audited {
            record: Box::default(),
            command: AuditedCommand(Box::new(command)),
        };
        let once = postcard::to_allocvec(&wrap(inner.clone())).unwrap();
        assert_eq!(
            postcard::from_bytes::<TwinCommand>(&once).unwrap(),
            wrap(inner.clone())
        );
        let twice = postcard::to_allocvec(&wrap(wrap(inner))).unwrap();
        assert!(postcard::from_bytes::<TwinCommand>(&twice).is_err());
        let alone = TwinCommand::Audit {
            key: device,
            record: Box::default(),
        };
        let audit_inside = postcard::to_allocvec(&wrap(alone)).unwrap();
        assert!(postcard::from_bytes::<TwinCommand>(&audit_inside).is_err());
        // The guard is reset after a refusal: the next decode works.
        assert!(postcard::from_bytes::<TwinCommand>(&once).is_ok());
    }
}
