//! What USP contacts do to a twin: connects, identity from the data model, and events
//! (`Device.Boot!` closes reboots and factory resets, TR-181 `Device.Boot!` arguments).

use crate::model::{Meta, SubscriptionStanding, SubscriptionStatus, Twin};
use crate::operation::{Operation, OperationStatus};
use radar_core::Timestamp;

/// Longest event argument kept in the event log.
const MAX_LOGGED_ARG: usize = 128;

pub(crate) fn apply_connected(twin: &mut Twin, at: Timestamp, mtp: &str, reply_to: &str) {
    let meta = &mut twin.meta;
    meta.add_protocol("usp");
    meta.mtp = mtp.into();
    meta.connected = true;
    meta.last_contact = at;
    meta.sessions += 1;
    if meta.root.is_empty() {
        meta.root = "Device.".into();
    }
    if !reply_to.is_empty() {
        meta.usp_reply_to = reply_to.into();
    }
    // TR-369 R-ARC.3: `os::<OUI>-<SerialNumber>` names its OUI and serial.
    if meta.oui.is_empty() {
        if let Some((oui, serial)) = twin
            .key
            .as_str()
            .strip_prefix("os::")
            .and_then(|rest| rest.split_once('-'))
        {
            meta.oui = oui.to_ascii_uppercase();
            meta.serial = serial.into();
        }
    }
    twin.log(at, "connect", format!("usp over {mtp}"));
}

/// Sets identity meta from a DeviceInfo parameter; true when it changed something.
pub(crate) fn identity_from_param(meta: &mut Meta, path: &str, value: &str) -> bool {
    let Some((_, field)) = path.rsplit_once(".DeviceInfo.") else {
        return false;
    };
    let (slot, value) = match field {
        "ManufacturerOUI" => (&mut meta.oui, value.trim().to_ascii_uppercase()),
        "ProductClass" => (&mut meta.product_class, value.to_owned()),
        "SerialNumber" => (&mut meta.serial, value.to_owned()),
        "Manufacturer" => (&mut meta.manufacturer, value.to_owned()),
        _ => return false,
    };
    if *slot == value {
        return false;
    }
    *slot = value;
    true
}

pub(crate) fn apply_event(twin: &mut Twin, at: Timestamp, path: &str, args: &[(String, String)]) {
    let arg = |name: &str| {
        args.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let summary: Vec<String> = args
        .iter()
        .filter(|(k, _)| k != "ParameterMap")
        .map(|(k, v)| format!("{k}={}", v.chars().take(MAX_LOGGED_ARG).collect::<String>()))
        .collect();
    twin.log(
        at,
        "event",
        format!("{path} {}", summary.join(" "))
            .trim_end()
            .to_owned(),
    );
    twin.meta.last_contact = twin.meta.last_contact.max(at);
    if !path.ends_with(".Boot!") {
        return;
    }
    let cause = arg("Cause");
    // TR-181 Device.Boot! Cause: LocalReboot, RemoteReboot, LocalFactoryReset,
    // RemoteFactoryReset. A factory reset wiped the agent's data model: read it again.
    if cause.contains("FactoryReset") {
        twin.meta.discovered_at = None;
    }
    let command_key = arg("CommandKey");
    let detail = format!("device rebooted ({cause})");
    let confirmed = Operation::id_from_command_key(command_key);
    if let Some(op) = confirmed.and_then(|id| twin.operation_mut(id)) {
        if op.status.is_pending() {
            op.status = OperationStatus::Done { at, detail };
        }
    }
    // Only the Boot! carrying an operation's CommandKey completes it (TR-181 Device.Boot!): a
    // boot for another reason (a power cut, a local restart) says nothing about a reboot Radar
    // asked for. It is noted, and the operation waits for its own Boot! until its
    // confirmation window closes, when the note says what happened instead.
    let waiting: Vec<u64> = twin
        .operations
        .iter()
        .filter(|op| op.awaits_boot() && matches!(op.status, OperationStatus::Sent { .. }))
        .filter(|op| Some(op.id) != confirmed)
        .map(|op| op.id)
        .collect();
    for id in waiting {
        twin.log(
            at,
            UNCONFIRMED_BOOT,
            format!("Boot! (Cause {cause}, CommandKey {command_key:?}) does not confirm operation #{id}"),
        );
    }
}

/// Event-log kind of a boot that did not carry a waiting operation's CommandKey.
pub(crate) const UNCONFIRMED_BOOT: &str = "unconfirmed_boot";

/// Records the agent's answer to a subscription check. The event log gets a line only when the
/// picture changed, so a reconnecting agent does not fill it with the same summary.
pub(crate) fn apply_subscriptions(
    twin: &mut Twin,
    at: Timestamp,
    subscriptions: &[SubscriptionStatus],
    removed: u32,
) {
    let changed = twin.meta.subscriptions != subscriptions;
    twin.meta.subscriptions_checked_at = Some(at);
    if !changed && removed == 0 {
        return;
    }
    twin.meta.subscriptions = subscriptions.to_vec();
    let count = |state: &str| {
        subscriptions
            .iter()
            .filter(|s| s.standing.name() == state)
            .count()
    };
    let mut detail = format!(
        "{} wanted, {} in place, {} refused, {} not in the data model",
        subscriptions.len(),
        count("in_place"),
        count("refused"),
        count("not_in_data_model"),
    );
    if removed > 0 {
        detail.push_str(&format!(", {removed} stale removed"));
    }
    for s in subscriptions {
        if let SubscriptionStanding::Refused { code, message } = &s.standing {
            let message: String = message.chars().take(MAX_LOGGED_ARG).collect();
            detail.push_str(&format!(
                "; refused {} {}: {code} {message}",
                s.notif_type, s.reference
            ));
        }
    }
    twin.log(at, "subscriptions", detail);
}
