//! What to do with a device in its session: desired − reported → tasks. The node turns tasks into
//! protocol requests (CWMP RPCs now, USP messages later).

use crate::model::Twin;
use crate::operation::{Operation, OperationStatus};
use crate::paths::PathDict;
use radar_core::Timestamp;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct PlanConfig {
    /// Subtrees re-read when their oldest value is older than the age (relative to the root, e.g.
    /// `DeviceInfo.`), instead of polling.
    pub refresh: Vec<(String, Duration)>,
    /// Parameters (relative to the root) set to active notification at bootstrap.
    pub notify_active: Vec<String>,
    /// Parameters (relative to the root) set to passive notification at bootstrap.
    pub notify_passive: Vec<String>,
    /// Set per-device connection-request credentials on devices at bootstrap.
    pub manage_connection_request_credentials: bool,
}

impl Default for PlanConfig {
    fn default() -> Self {
        Self {
            refresh: vec![("DeviceInfo.".into(), Duration::from_secs(24 * 3600))],
            notify_active: vec![
                "DeviceInfo.SoftwareVersion".into(),
                "ManagementServer.URL".into(),
                "ManagementServer.ConnectionRequestURL".into(),
                // TR-069 Annex G: the ACS learns a NATed CPE's new binding by notification.
                "ManagementServer.UDPConnectionRequestAddress".into(),
                "ManagementServer.NATDetected".into(),
                // Annex K: a new Jabber ID (the XMPP server assigned another resource).
                "ManagementServer.ConnReqJabberID".into(),
            ],
            notify_passive: vec!["DeviceInfo.UpTime".into()],
            manage_connection_request_credentials: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum PlannedTask {
    /// Read the whole data model under this prefix.
    Discover { prefix: String },
    /// Set notification attributes (absolute paths), once after discovery.
    ConfigureNotifications {
        active: Vec<String>,
        passive: Vec<String>,
    },
    /// Give the device its own connection-request credentials (absolute parameter paths).
    SetConnectionRequestCredentials {
        username_path: String,
        password_path: String,
    },
    /// Deliver a queued operation.
    Operation(Operation),
    /// Re-read a stale subtree.
    Refresh { prefix: String },
}

/// How long after a refused SetParameterAttributes Radar tries again.
const NOTIFICATION_RETRY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

pub fn plan(twin: &Twin, dict: &PathDict, now: Timestamp, config: &PlanConfig) -> Vec<PlannedTask> {
    let mut tasks = Vec::new();
    let root = if twin.meta.root.is_empty() {
        "Device."
    } else {
        twin.meta.root.as_str()
    };
    if twin.meta.discovered_at.is_none() {
        tasks.push(PlannedTask::Discover {
            prefix: root.to_owned(),
        });
    }
    // A device that refused SetParameterAttributes as a whole is asked again only after a day
    // (some never accept it: genieacs-sim answers 9000); meanwhile its key paths are refreshed.
    let notification_retry_due = twin
        .meta
        .notification_fault
        .as_ref()
        .is_none_or(|f| now.duration_since(f.at) > NOTIFICATION_RETRY);
    // Only parameters the device has: setting attributes on unknown names faults (9005), so
    // notifications wait for discovery (the session asks for work again once it is done).
    if twin.meta.discovered_at.is_some()
        && !twin.meta.notifications_configured
        && notification_retry_due
    {
        let known = |rel: &String| {
            let path = format!("{root}{rel}");
            twin.param_by_path(dict, &path).is_some().then_some(path)
        };
        tasks.push(PlannedTask::ConfigureNotifications {
            active: config.notify_active.iter().filter_map(known).collect(),
            passive: config.notify_passive.iter().filter_map(known).collect(),
        });
    }
    let username_path = format!("{root}ManagementServer.ConnectionRequestUsername");
    if config.manage_connection_request_credentials
        && twin.meta.connection_request_username.is_empty()
        // Before discovery the parameter is assumed present: every TR-069 device has it
        // (TR-181 and TR-098 ManagementServer). A device that refuses records a fault.
        && (twin.meta.discovered_at.is_none() || twin.param_by_path(dict, &username_path).is_some_and(|p| p.writable))
    {
        tasks.push(PlannedTask::SetConnectionRequestCredentials {
            username_path,
            password_path: format!("{root}ManagementServer.ConnectionRequestPassword"),
        });
    }
    for op in &twin.operations {
        let expired = op.expires_at.is_some_and(|e| e <= now);
        if op.status == OperationStatus::Queued && !expired {
            tasks.push(PlannedTask::Operation(op.clone()));
        }
    }
    if twin.meta.discovered_at.is_some() {
        for (rel, max_age) in &config.refresh {
            let prefix = format!("{root}{rel}");
            let oldest = twin.oldest_under(dict, &prefix);
            if oldest.is_some_and(|t| now.duration_since(t) > *max_age) {
                tasks.push(PlannedTask::Refresh { prefix });
            }
        }
        // Parameters on which the device refused active notification are refreshed each session.
        for path in &twin.meta.notification_refused {
            tasks.push(PlannedTask::Refresh {
                prefix: path.clone(),
            });
        }
        if twin.meta.notification_fault.is_some() {
            for rel in &config.notify_active {
                let path = format!("{root}{rel}");
                if twin.param_by_path(dict, &path).is_some() {
                    tasks.push(PlannedTask::Refresh { prefix: path });
                }
            }
        }
    }
    tasks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{apply, Identity, ReportedParam, TwinCommand};
    use crate::model::ShardState;
    use crate::operation::OperationKind;
    use radar_core::DeviceKey;

    fn key() -> DeviceKey {
        DeviceKey::parse("os::000000-A").unwrap()
    }

    fn setup() -> ShardState {
        let mut s = ShardState::default();
        let inform = TwinCommand::Inform {
            device: key(),
            at: Timestamp(0),
            identity: Identity::default(),
            events: vec![("0 BOOTSTRAP".into(), String::new())],
            params: vec![ReportedParam {
                path: "Device.DeviceInfo.SoftwareVersion".into(),
                value: "1".into(),
                ty: None,
                writable: None,
            }],
        };
        apply(&mut s, &inform).unwrap();
        s
    }

    #[test]
    fn new_device_is_discovered_then_configured() {
        let mut s = setup();
        let tasks = plan(
            &s.twins[&key()],
            &s.dict,
            Timestamp(1),
            &PlanConfig::default(),
        );
        assert_eq!(
            tasks[0],
            PlannedTask::Discover {
                prefix: "Device.".into()
            }
        );
        assert!(
            !tasks
                .iter()
                .any(|t| matches!(t, PlannedTask::ConfigureNotifications { .. })),
            "notifications wait for the data model: {tasks:?}"
        );
        // Discovery found SoftwareVersion and the Annex G address, not the XMPP Jabber ID.
        let names = vec![
            ("Device.DeviceInfo.SoftwareVersion".into(), false),
            (
                "Device.ManagementServer.UDPConnectionRequestAddress".into(),
                false,
            ),
        ];
        apply(
            &mut s,
            &TwinCommand::ReportNames {
                device: key(),
                at: Timestamp(1),
                prefix: "Device.".into(),
                names,
            },
        )
        .unwrap();
        let tasks = plan(
            &s.twins[&key()],
            &s.dict,
            Timestamp(2),
            &PlanConfig::default(),
        );
        let active = tasks
            .iter()
            .find_map(|t| match t {
                PlannedTask::ConfigureNotifications { active, .. } => Some(active.clone()),
                _ => None,
            })
            .expect("notifications configured after discovery");
        assert_eq!(
            active,
            [
                "Device.DeviceInfo.SoftwareVersion",
                "Device.ManagementServer.UDPConnectionRequestAddress"
            ]
        );
    }

    #[test]
    fn queued_operations_in_order_and_stale_subtrees_refreshed() {
        let mut s = setup();
        let names = vec![("Device.DeviceInfo.SoftwareVersion".into(), false)];
        apply(
            &mut s,
            &TwinCommand::ReportNames {
                device: key(),
                at: Timestamp(1),
                prefix: "Device.".into(),
                names,
            },
        )
        .unwrap();
        apply(
            &mut s,
            &TwinCommand::NotificationsConfigured {
                device: key(),
                at: Timestamp(1),
                refused: vec![],
            },
        )
        .unwrap();
        for kind in [OperationKind::Reboot, OperationKind::FactoryReset] {
            apply(
                &mut s,
                &TwinCommand::EnqueueOperation {
                    device: key(),
                    at: Timestamp(2),
                    kind,
                    requested_by: "t".into(),
                    ttl_ms: None,
                },
            )
            .unwrap();
        }
        let config = PlanConfig {
            refresh: vec![("DeviceInfo.".into(), Duration::from_secs(60))],
            ..Default::default()
        };
        let fresh = plan(&s.twins[&key()], &s.dict, Timestamp(1000), &config);
        assert_eq!(fresh.len(), 2);
        assert!(
            matches!(&fresh[0], PlannedTask::Operation(op) if op.kind == OperationKind::Reboot)
        );
        assert!(
            matches!(&fresh[1], PlannedTask::Operation(op) if op.kind == OperationKind::FactoryReset)
        );
        let later = plan(&s.twins[&key()], &s.dict, Timestamp(120_000), &config);
        assert_eq!(
            later.last(),
            Some(&PlannedTask::Refresh {
                prefix: "Device.DeviceInfo.".into()
            })
        );
    }
}
