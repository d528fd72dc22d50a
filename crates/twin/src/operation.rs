//! Operations: what an operator asked a device to do, and how far it got.
//! Life cycle: `queued → sent → done | failed | expired | cancelled | superseded`.

use radar_core::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Stored with postcard, so the serde shape is the default external tagging; the API converts
/// to and from its flat `{"kind": …, …}` JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum OperationKind {
    /// Set parameter values; the map is path → value. Types come from the twin or the model.
    SetParams {
        params: BTreeMap<String, String>,
    },
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
    AddObject {
        path: String,
    },
    DeleteObject {
        path: String,
    },
    /// Re-read a subtree from the device.
    Refresh {
        #[serde(default)]
        prefix: String,
    },
    /// Ask the device to inform again after a delay (TR-069 ScheduleInform).
    ScheduleInform {
        #[serde(default)]
        delay_seconds: u32,
    },
    /// Ask which RPCs the device supports (TR-069 GetRPCMethods).
    GetRpcMethods,
    /// Read notification attributes (TR-069 GetParameterAttributes).
    GetAttributes {
        paths: Vec<String>,
    },
    /// Run a data-model command (USP Operate, e.g. `Device.WiFi.NeighboringWiFiDiagnostic()`).
    Operate {
        command: String,
        #[serde(default)]
        input_args: BTreeMap<String, String>,
    },
}

fn default_file_type() -> String {
    "1 Firmware Upgrade Image".into()
}

fn default_upload_type() -> String {
    "1 Vendor Configuration File".into()
}

impl OperationKind {
    /// The API's flat JSON form: `{"kind": "download", "url": …}`.
    pub fn to_flat_json(&self) -> serde_json::Value {
        match serde_json::to_value(self).unwrap_or(serde_json::Value::Null) {
            serde_json::Value::String(kind) => serde_json::json!({ "kind": kind }),
            serde_json::Value::Object(map) => {
                let Some((kind, fields)) = map.into_iter().next() else {
                    return serde_json::Value::Null;
                };
                let mut out = match fields {
                    serde_json::Value::Object(f) => f,
                    _ => serde_json::Map::new(),
                };
                out.insert("kind".into(), serde_json::Value::String(kind));
                serde_json::Value::Object(out)
            }
            other => other,
        }
    }

    /// Parses the API's flat JSON form. Unknown extra keys are errors, like every other field.
    pub fn from_flat_json(mut value: serde_json::Value) -> Result<Self, String> {
        let obj = value
            .as_object_mut()
            .ok_or("an operation is a JSON object")?;
        let kind = match obj.remove("kind") {
            Some(serde_json::Value::String(k)) => k,
            _ => return Err("missing \"kind\"".into()),
        };
        let tagged = if obj.is_empty()
            && matches!(
                kind.as_str(),
                "reboot" | "factory_reset" | "get_rpc_methods"
            ) {
            serde_json::Value::String(kind)
        } else {
            serde_json::json!({ kind: serde_json::Value::Object(std::mem::take(obj)) })
        };
        serde_json::from_value(tagged).map_err(|e| e.to_string())
    }

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
            OperationKind::ScheduleInform { .. } => "schedule_inform",
            OperationKind::GetRpcMethods => "get_rpc_methods",
            OperationKind::GetAttributes { .. } => "get_attributes",
            OperationKind::Operate { .. } => "operate",
        }
    }

    /// Whether a device speaking `protocol` (`cwmp` or `usp`) can carry out this operation.
    /// TR-069 has no Operate; TR-369 has no Upload, ScheduleInform, GetRPCMethods or attributes.
    pub fn supported_by(&self, protocol: &str) -> bool {
        match self {
            OperationKind::Operate { .. } => protocol != "cwmp",
            OperationKind::Upload { .. }
            | OperationKind::ScheduleInform { .. }
            | OperationKind::GetRpcMethods
            | OperationKind::GetAttributes { .. } => protocol != "usp",
            _ => true,
        }
    }
}

/// How long a sent reboot or factory reset may take to come back with a boot that names its
/// CommandKey. A CPE reboot takes one to five minutes; a factory reset with a firmware check
/// can take longer.
pub const BOOT_CONFIRMATION_WINDOW_MS: u64 = 15 * 60 * 1000;

/// Deliveries of one operation whose session dies before the device answers; then it fails.
pub const MAX_DELIVERY_ATTEMPTS: u32 = 3;

/// Failure code of an operation the device never confirmed: Radar's own, in the vendor range
/// TR-369 leaves to implementations (the same as its USP request timeout).
pub const UNCONFIRMED: u32 = 7800;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationStatus {
    Queued,
    /// Handed to the device; for reboots and downloads, awaiting the device's confirmation.
    Sent {
        at: Timestamp,
    },
    Done {
        at: Timestamp,
        detail: String,
    },
    Failed {
        at: Timestamp,
        code: u32,
        message: String,
    },
    Expired {
        at: Timestamp,
    },
    Cancelled {
        at: Timestamp,
    },
    /// A later write to the same path replaced this one before it was delivered.
    Superseded {
        at: Timestamp,
        by: u64,
    },
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
    /// The status as of `now`: a queued operation past its TTL reads as expired even before a
    /// command has recorded it (expiry is applied lazily, in log order, by `apply`).
    pub fn effective_status(&self, now: Timestamp) -> OperationStatus {
        match (&self.status, self.expires_at) {
            (OperationStatus::Queued, Some(at)) if at <= now => OperationStatus::Expired { at },
            _ => match self.boot_deadline() {
                Some(at) if at <= now => OperationStatus::Failed {
                    at,
                    code: UNCONFIRMED,
                    message: format!(
                        "no boot with CommandKey {} within {} s",
                        self.command_key(),
                        BOOT_CONFIRMATION_WINDOW_MS / 1000
                    ),
                },
                _ => self.status.clone(),
            },
        }
    }

    /// The CWMP CommandKey / ParameterKey that ties a device's later report (M Reboot,
    /// TransferComplete) back to this operation.
    pub fn command_key(&self) -> String {
        format!("radar-op-{}", self.id)
    }

    /// A reboot or factory reset: done only when the device comes back and names its
    /// CommandKey (USP `Boot!`, CWMP `M Reboot`).
    pub fn awaits_boot(&self) -> bool {
        matches!(
            self.kind,
            OperationKind::Reboot | OperationKind::FactoryReset
        )
    }

    /// When a sent reboot stops waiting for its confirmation.
    pub fn boot_deadline(&self) -> Option<Timestamp> {
        match self.status {
            OperationStatus::Sent { at } if self.awaits_boot() => {
                Some(Timestamp(at.0.saturating_add(BOOT_CONFIRMATION_WINDOW_MS)))
            }
            _ => None,
        }
    }

    pub fn id_from_command_key(key: &str) -> Option<u64> {
        key.strip_prefix("radar-op-")?.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_json_round_trips_and_postcard_stores() {
        let kinds = [
            OperationKind::Reboot,
            OperationKind::Download {
                url: "http://x/fw".into(),
                file_type: default_file_type(),
                file_size: 3,
                target_file_name: String::new(),
                username: String::new(),
                password: "p".into(),
            },
            OperationKind::AddObject {
                path: "Device.NAT.PortMapping.".into(),
            },
        ];
        for kind in kinds {
            let flat = kind.to_flat_json();
            assert_eq!(flat["kind"], kind.name());
            assert_eq!(OperationKind::from_flat_json(flat).unwrap(), kind);
            let op = Operation {
                id: 1,
                kind,
                status: OperationStatus::Sent { at: Timestamp(5) },
                created_at: Timestamp(1),
                requested_by: "a".into(),
                expires_at: None,
                attempts: 1,
            };
            let bytes = postcard::to_allocvec(&op).unwrap();
            assert_eq!(postcard::from_bytes::<Operation>(&bytes).unwrap(), op);
        }
        let defaults = OperationKind::from_flat_json(
            serde_json::json!({"kind": "download", "url": "http://x"}),
        )
        .unwrap();
        assert!(
            matches!(defaults, OperationKind::Download { ref file_type, .. } if file_type == "1 Firmware Upgrade Image")
        );
        assert!(OperationKind::from_flat_json(serde_json::json!({"kind": "explode"})).is_err());
        assert!(
            OperationKind::from_flat_json(serde_json::json!({"kind": "reboot", "bogus": 1}))
                .is_err()
        );
    }
}
