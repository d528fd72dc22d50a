//! What devices report: an Inform, and values read or notified, entering a twin (and, for a
//! device that speaks both protocols, each side's view kept apart from the other's).

use super::{Identity, ReportedParam, Source};
use crate::model::{Param, Twin};
use crate::operation::{Operation, OperationKind, OperationStatus};
use radar_core::Timestamp;

/// Each parameter's source, for pruning one protocol's view without touching the other's.
pub(super) fn param_sources(
    twin: &Twin,
    wanted: bool,
) -> std::collections::HashMap<crate::PathId, Source> {
    if !wanted {
        return Default::default();
    }
    twin.params.iter().map(|(id, p)| (*id, p.source)).collect()
}

pub(super) fn apply_inform(
    twin: &mut Twin,
    dict: &mut crate::paths::PathDict,
    at: Timestamp,
    identity: &Identity,
    events: &[(String, String)],
    params: &[ReportedParam],
) {
    let meta = &mut twin.meta;
    meta.oui = identity.oui.trim().to_ascii_uppercase();
    meta.product_class = identity.product_class.clone();
    meta.serial = identity.serial.clone();
    meta.manufacturer = identity.manufacturer.clone();
    meta.add_protocol("cwmp");
    meta.last_contact = at;
    meta.sessions += 1;
    meta.last_inform_events = events.iter().map(|(code, _)| code.clone()).collect();
    if let Some(root) = params
        .iter()
        .find_map(|p| p.path.split_once('.').map(|(r, _)| r))
    {
        if !root.is_empty() {
            meta.root = format!("{root}.");
        }
    }
    let has = |code: &str| events.iter().any(|(c, _)| c.eq_ignore_ascii_case(code));
    if has("0 BOOTSTRAP") {
        // TR-069 §3.7.1.5: BOOTSTRAP means the device lost its ACS state (new, or factory
        // reset): discover it and configure notifications again.
        meta.discovered_at = None;
        meta.notifications_configured = false;
        meta.notification_fault = None;
        meta.connection_request_username.clear();
        meta.connection_request_password.clear();
        meta.connection_request_credentials_source = crate::credentials::CredentialSource::None;
    }
    let codes: Vec<&str> = events.iter().map(|(c, _)| c.as_str()).collect();
    twin.log(at, "inform", codes.join(", "));
    report_values(twin, dict, at, Source::Inform, params);

    // `M Reboot` carries the CommandKey of the Reboot RPC (TR-069 A.3.2.8). Some devices only
    // send `1 BOOT`, so a boot also closes a reboot that was sent and not yet confirmed.
    for (code, key) in events {
        if code.eq_ignore_ascii_case("M Reboot") {
            if let Some(op) =
                Operation::id_from_command_key(key).and_then(|id| twin.operation_mut(id))
            {
                if op.status.is_pending() {
                    op.status = OperationStatus::Done {
                        at,
                        detail: "device rebooted".into(),
                    };
                }
            }
        }
    }
    if has("1 BOOT") {
        for op in twin.operations.iter_mut() {
            if matches!(op.kind, OperationKind::Reboot)
                && matches!(op.status, OperationStatus::Sent { .. })
            {
                op.status = OperationStatus::Done {
                    at,
                    detail: "device rebooted".into(),
                };
            }
        }
    }
}

pub(crate) fn report_values(
    twin: &mut Twin,
    dict: &mut crate::paths::PathDict,
    at: Timestamp,
    source: Source,
    params: &[ReportedParam],
) {
    // A bulk report (discovery) grows the table once instead of by repeated doubling; the slack
    // is given back after apply.
    if params.len() > 32 {
        twin.params.reserve_exact(params.len());
    }
    for p in params {
        if p.path.is_empty() || p.path.ends_with('.') {
            continue;
        }
        let lower = p.path.as_str();
        if lower.ends_with(".DeviceInfo.SoftwareVersion") {
            if twin.meta.software_version != p.value {
                twin.meta.software_version = p.value.clone();
                twin.changes.header = true;
            }
        } else if lower.ends_with(".ManagementServer.ConnectionRequestURL") {
            if twin.meta.connection_request_url != p.value {
                twin.meta.connection_request_url = p.value.clone();
                twin.changes.header = true;
            }
        } else if twin.meta.protocol == "usp"
            && lower.contains(".DeviceInfo.")
            // A USP agent has no Inform: its identity comes from its data model.
            && crate::usp::identity_from_param(&mut twin.meta, lower, &p.value)
        {
            twin.changes.header = true;
        }
        let id = dict.intern(&p.path);
        twin.upsert_param(id, |existing| match existing {
            Some(param) => {
                if *param.value != *p.value {
                    param.value = p.value.as_str().into();
                }
                if let Some(ty) = p.ty {
                    param.ty = ty;
                }
                if let Some(w) = p.writable {
                    param.writable = w;
                }
                param.source = source;
                param.reported_at = at;
                None
            }
            None => Some(Param {
                value: p.value.as_str().into(),
                ty: p.ty.unwrap_or_default(),
                writable: p.writable.unwrap_or(false),
                source,
                reported_at: at,
            }),
        });
    }
}
