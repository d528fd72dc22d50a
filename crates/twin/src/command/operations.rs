//! The life of operations inside `apply`: coalescing queued writes, completion, and expiry
//! (queued past their TTL, reboots never confirmed).

use super::{report_values, Outcome, ReportedParam, Source};
use crate::model::Twin;
use crate::operation::{OperationKind, OperationStatus};
use crate::ApplyError;
use radar_core::Timestamp;

/// TR-069 ops coalesce: a new write to a path that a queued (not yet sent) write also targets
/// replaces it. The older operation's other paths move into the new one, so nothing is lost, and
/// the older one is marked superseded.
pub(super) fn coalesce_set_params(
    twin: &mut Twin,
    new_id: u64,
    params: &mut std::collections::BTreeMap<String, String>,
    at: Timestamp,
) {
    for op in twin.operations.iter_mut() {
        if op.status != OperationStatus::Queued {
            continue;
        }
        let OperationKind::SetParams { params: older } = &op.kind else {
            continue;
        };
        if !older.keys().any(|k| params.contains_key(k)) {
            continue;
        }
        for (path, value) in older {
            params.entry(path.clone()).or_insert_with(|| value.clone());
        }
        op.status = OperationStatus::Superseded { at, by: new_id };
    }
}

pub(super) fn complete_operation(
    twin: &mut Twin,
    dict: &mut crate::paths::PathDict,
    at: Timestamp,
    id: u64,
    result: &Outcome,
) -> Result<(), ApplyError> {
    let op = twin
        .operation(id)
        .ok_or(ApplyError::UnknownOperation(id))?
        .clone();
    if !op.status.is_pending() {
        // Redelivered result of an operation already closed: applying it again is a no-op.
        return Ok(());
    }
    let status = match result {
        Outcome::Failed { code, message } => {
            twin.log(
                at,
                "fault",
                format!("{} #{id} failed: {code} {message}", op.kind.name()),
            );
            OperationStatus::Failed {
                at,
                code: *code,
                message: message.clone(),
            }
        }
        Outcome::Accepted => OperationStatus::Sent { at },
        Outcome::Done { detail } => {
            if let OperationKind::SetParams { params } = &op.kind {
                let reported: Vec<ReportedParam> = params
                    .iter()
                    .map(|(path, value)| ReportedParam {
                        path: path.clone(),
                        value: value.clone(),
                        ty: None,
                        writable: None,
                    })
                    .collect();
                let source = if twin.meta.protocol == "usp" {
                    Source::UspSet
                } else {
                    Source::Spv
                };
                report_values(twin, dict, at, source, &reported);
                let written: Vec<(String, String)> =
                    params.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                crate::credentials::adopt_written(twin, at, &written);
            }
            if let OperationKind::DeleteObject { path } = &op.kind {
                twin.remove_subtree(dict, path);
            }
            OperationStatus::Done {
                at,
                detail: detail.clone(),
            }
        }
        Outcome::Added { instance } => OperationStatus::Done {
            at,
            detail: format!("instance {instance}"),
        },
    };
    if let Some(op) = twin.operation_mut(id) {
        op.status = status;
    }
    Ok(())
}

/// Expires queued operations past their TTL, and fails reboots whose confirming boot never
/// came within the window (saying which boots came instead); true when any changed.
pub(super) fn expire_operations(twin: &mut Twin, at: Timestamp) -> bool {
    let mut expired = false;
    let mut unconfirmed = Vec::new();
    for op in twin.operations.iter_mut() {
        if op.status == OperationStatus::Queued && op.expires_at.is_some_and(|e| e <= at) {
            op.status = OperationStatus::Expired { at };
            expired = true;
        }
        if op.boot_deadline().is_some_and(|d| d <= at) {
            unconfirmed.push(op.id);
        }
    }
    for id in unconfirmed {
        let Some(op) = twin.operation(id) else {
            continue;
        };
        let OperationStatus::Failed { code, message, .. } = op.effective_status(at) else {
            continue;
        };
        let suffix = format!("operation #{id}");
        let seen: Vec<String> = twin
            .events
            .iter()
            .filter(|e| e.kind == crate::usp::UNCONFIRMED_BOOT && e.detail.ends_with(&suffix))
            .map(|e| {
                format!(
                    "{} at {}",
                    e.detail
                        .trim_end_matches(&suffix)
                        .trim_end_matches(" does not confirm ")
                        .trim(),
                    e.at.to_rfc3339()
                )
            })
            .collect();
        let message = if seen.is_empty() {
            format!("{message}; the device did not report a boot")
        } else {
            format!(
                "{message}; the device booted for another reason: {}",
                seen.join(", ")
            )
        };
        twin.log(at, "operation", format!("#{id} failed: {message}"));
        if let Some(op) = twin.operation_mut(id) {
            op.status = OperationStatus::Failed { at, code, message };
        }
        expired = true;
    }
    if expired {
        twin.changes.header = true;
    }
    expired
}
