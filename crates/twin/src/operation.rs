//! Operations: what an operator asked a device to do, and how far it got.
//! Life cycle: `queued → sent → done | failed | expired | cancelled | superseded`.

use radar_core::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OperationKind {
    /// Set parameter values; the map is path → value. Types come from the twin or the model.
    SetParams { params: BTreeMap<String, String> },
    Reboot,
    FactoryReset,
    Download {
        url: String,
        #[serde(default = "default_file_type")]
        file_type: String,
        #[serde(default)]
        file_size: u64,
        #[serde(default)]
        target_file_name: String,
        #[serde(default)]
        username: String,
        #[serde(default)]
        password: String,
    },
    Upload {
        url: String,
        #[serde(default = "default_upload_type")]
        file_type: String,
    },
    AddObject { path: String },
    DeleteObject { path: String },
    /// Re-read a subtree from the device.
    Refresh {
        #[serde(default)]
        prefix: String,
    },
}

fn default_file_type() -> String {
    "1 Firmware Upgrade Image".into()
}

fn default_upload_type() -> String {
    "1 Vendor Configuration File".into()
}

impl OperationKind {
    pub fn name(&self) -> &'static str {
        match self {
            OperationKind::SetParams { .. } => "set_params",
            OperationKind::Reboot => "reboot",
            OperationKind::FactoryReset => "factory_reset",
            OperationKind::Download { .. } => "download",
            OperationKind::Upload { .. } => "upload",
            OperationKind::AddObject { .. } => "add_object",
            OperationKind::DeleteObject { .. } => "delete_object",
            OperationKind::Refresh { .. } => "refresh",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum OperationStatus {
    Queued,
    /// Handed to the device; for reboots and downloads, awaiting the device's confirmation.
    Sent { at: Timestamp },
    Done { at: Timestamp, detail: String },
    Failed { at: Timestamp, code: u32, message: String },
    Expired { at: Timestamp },
    Cancelled { at: Timestamp },
    /// A later write to the same path replaced this one before it was delivered.
    Superseded { at: Timestamp, by: u64 },
}

impl OperationStatus {
    pub fn is_pending(&self) -> bool {
        matches!(self, OperationStatus::Queued | OperationStatus::Sent { .. })
    }

    pub fn name(&self) -> &'static str {
        match self {
            OperationStatus::Queued => "queued",
            OperationStatus::Sent { .. } => "sent",
            OperationStatus::Done { .. } => "done",
            OperationStatus::Failed { .. } => "failed",
            OperationStatus::Expired { .. } => "expired",
            OperationStatus::Cancelled { .. } => "cancelled",
            OperationStatus::Superseded { .. } => "superseded",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    pub id: u64,
    pub kind: OperationKind,
    pub status: OperationStatus,
    pub created_at: Timestamp,
    pub requested_by: String,
    pub expires_at: Option<Timestamp>,
    /// Deliveries so far; a session that dies mid-RPC re-queues the operation.
    pub attempts: u32,
}

impl Operation {
    /// The CWMP CommandKey / ParameterKey that ties a device's later report (M Reboot,
    /// TransferComplete) back to this operation.
    pub fn command_key(&self) -> String {
        format!("radar-op-{}", self.id)
    }

    pub fn id_from_command_key(key: &str) -> Option<u64> {
        key.strip_prefix("radar-op-")?.parse().ok()
    }
}
