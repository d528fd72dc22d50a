//! Subscriptions that keep a USP twin live (TR-369 §7.4.3, TR-181 `Device.LocalAgent.Subscription.{i}.`).
//!
//! Radar owns the subscriptions whose `Recipient` is its own controller entry and whose `ID`
//! carries Radar's prefix; it never touches any other controller's. On every connect it reads the
//! agent's table and reconciles: add what is missing, delete its own stale or changed entries,
//! re-enable its own disabled ones. New subscriptions are `Persistent` so they survive reboots.
//!
//! Radar never sets `Recipient`: TR-181 makes it read-only, filled by the agent with the
//! controller that created the row (obuspa refuses an Add that sets it, 7013).

use crate::inbound::PathValue;
use std::collections::BTreeMap;

pub const SUBSCRIPTION_TABLE: &str = "Device.LocalAgent.Subscription.";
pub const RADAR_ID_PREFIX: &str = "radar-";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NotifType {
    ValueChange,
    ObjectCreation,
    ObjectDeletion,
    OperationComplete,
    Event,
}

impl NotifType {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifType::ValueChange => "ValueChange",
            NotifType::ObjectCreation => "ObjectCreation",
            NotifType::ObjectDeletion => "ObjectDeletion",
            NotifType::OperationComplete => "OperationComplete",
            NotifType::Event => "Event",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ValueChange" => NotifType::ValueChange,
            "ObjectCreation" => NotifType::ObjectCreation,
            "ObjectDeletion" => NotifType::ObjectDeletion,
            "OperationComplete" => NotifType::OperationComplete,
            "Event" => NotifType::Event,
            _ => return None,
        })
    }

    fn tag(self) -> &'static str {
        match self {
            NotifType::ValueChange => "vc",
            NotifType::ObjectCreation => "oc",
            NotifType::ObjectDeletion => "od",
            NotifType::OperationComplete => "opc",
            NotifType::Event => "ev",
        }
    }
}

/// A subscription Radar wants on every agent.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Desired {
    pub notif_type: NotifType,
    pub reference: String,
}

impl Desired {
    pub fn new(notif_type: NotifType, reference: &str) -> Self {
        Self {
            notif_type,
            reference: reference.into(),
        }
    }

    /// A stable id derived from type and reference (FNV-1a), so reconnects find their own.
    pub fn id(&self) -> String {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.reference.bytes() {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{RADAR_ID_PREFIX}{}-{hash:016x}", self.notif_type.tag())
    }
}

/// A sensible default for a home gateway (DESIGN §5: narrow paths, tables for object events).
pub fn default_desired() -> Vec<Desired> {
    use NotifType::*;
    vec![
        Desired::new(ValueChange, "Device.DeviceInfo.SoftwareVersion"),
        Desired::new(ValueChange, "Device.WiFi.SSID."),
        Desired::new(ValueChange, "Device.WiFi.AccessPoint."),
        Desired::new(ValueChange, "Device.ManagementServer.URL"),
        Desired::new(ValueChange, "Device.IP.Interface."),
        Desired::new(ObjectCreation, "Device.Hosts.Host."),
        Desired::new(ObjectDeletion, "Device.Hosts.Host."),
        Desired::new(ObjectCreation, "Device.NAT.PortMapping."),
        Desired::new(ObjectDeletion, "Device.NAT.PortMapping."),
        Desired::new(Event, "Device.Boot!"),
        Desired::new(OperationComplete, "Device."),
    ]
}

/// One row of the agent's subscription table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Existing {
    /// e.g. `Device.LocalAgent.Subscription.3.`
    pub instance: String,
    pub id: String,
    pub recipient: String,
    pub notif_type: String,
    pub reference_list: String,
    pub enable: bool,
}

/// Groups a flattened Get of the subscription table into rows.
pub fn parse_table(values: &[PathValue]) -> Vec<Existing> {
    let mut rows: BTreeMap<String, Existing> = BTreeMap::new();
    for v in values {
        let Some(rest) = v.path.strip_prefix(SUBSCRIPTION_TABLE) else {
            continue;
        };
        let Some((n, field)) = rest.split_once('.') else {
            continue;
        };
        if n.parse::<u32>().is_err() {
            continue;
        }
        let instance = format!("{SUBSCRIPTION_TABLE}{n}.");
        let row = rows.entry(instance.clone()).or_insert_with(|| Existing {
            instance,
            ..Default::default()
        });
        match field {
            "ID" => row.id = v.value.clone(),
            "Recipient" => row.recipient = v.value.clone(),
            "NotifType" => row.notif_type = v.value.clone(),
            "ReferenceList" => row.reference_list = v.value.clone(),
            "Enable" => row.enable = matches!(v.value.as_str(), "true" | "1"),
            _ => {}
        }
    }
    rows.into_values().collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub add: Vec<Desired>,
    /// Instance paths of Radar's own stale or changed subscriptions.
    pub delete: Vec<String>,
    /// Instance paths of Radar's own subscriptions to re-enable.
    pub enable: Vec<String>,
}

/// Reconciles the agent's table with what Radar wants. `recipient` is the path of Radar's entry
/// in `Device.LocalAgent.Controller.` (the agent's reference to this controller).
pub fn reconcile(existing: &[Existing], desired: &[Desired], recipient: &str) -> Plan {
    let mut plan = Plan::default();
    let ours = |e: &&Existing| {
        e.id.starts_with(RADAR_ID_PREFIX)
            && e.recipient.trim_end_matches('.') == recipient.trim_end_matches('.')
    };
    let mut satisfied = std::collections::HashSet::new();
    for e in existing.iter().filter(ours) {
        let wanted = desired.iter().find(|d| {
            d.id() == e.id
                && NotifType::parse(&e.notif_type) == Some(d.notif_type)
                && e.reference_list == d.reference
        });
        match wanted {
            Some(d) if satisfied.insert(d.id()) => {
                if !e.enable {
                    plan.enable.push(e.instance.clone());
                }
            }
            // Duplicate, stale or changed: remove (a changed one is re-added below).
            _ => plan.delete.push(e.instance.clone()),
        }
    }
    for d in desired {
        if !satisfied.contains(&d.id()) && !plan.add.iter().any(|a: &Desired| a.id() == d.id()) {
            plan.add.push(d.clone());
        }
    }
    plan
}

/// Parameters of an Add for a new subscription. The essential ones are `required`, so a refusal
/// is explicit; `with_optional` adds the ones a subscription can live without, for a first try.
pub fn add_params(d: &Desired, with_optional: bool) -> Vec<(String, String, bool)> {
    let mut params = vec![
        ("Enable".into(), "true".into(), true),
        ("ID".into(), d.id(), true),
        ("NotifType".into(), d.notif_type.as_str().into(), true),
        ("ReferenceList".into(), d.reference.clone(), true),
    ];
    if with_optional {
        // Without Persistent the agent drops the subscription at every reboot (DESIGN §5);
        // Radar re-checks its subscriptions after every Boot! and connect, so an agent that
        // lacks it still gets them back.
        params.push(("Persistent".into(), "true".into(), false));
        // Retry until acknowledged: Radar answers with NotifyResp only once the change is
        // durable, so no notification is lost to a controller crash.
        params.push(("NotifRetry".into(), "true".into(), false));
    }
    params
}

/// Where one wanted subscription stands on one agent, as the agent answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// The agent holds it. `note` says what was given up on the way (an optional parameter the
    /// agent refused), empty when nothing was.
    InPlace { note: String },
    /// The agent refused the Add.
    Refused { code: u32, message: String },
    /// The agent's data model lacks what it references, so Radar did not ask.
    NotInDataModel { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub desired: Desired,
    pub standing: Standing,
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "Device.LocalAgent.Controller.1";

    fn row(n: u32, d: &Desired, recipient: &str, enable: bool) -> Existing {
        Existing {
            instance: format!("{SUBSCRIPTION_TABLE}{n}."),
            id: d.id(),
            recipient: recipient.into(),
            notif_type: d.notif_type.as_str().into(),
            reference_list: d.reference.clone(),
            enable,
        }
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = Desired::new(NotifType::ObjectCreation, "Device.Hosts.Host.");
        let b = Desired::new(NotifType::ObjectDeletion, "Device.Hosts.Host.");
        assert_eq!(
            a.id(),
            Desired::new(NotifType::ObjectCreation, "Device.Hosts.Host.").id()
        );
        assert_ne!(a.id(), b.id());
        assert!(a.id().starts_with("radar-oc-"));
    }

    #[test]
    fn first_connect_adds_everything() {
        let desired = default_desired();
        let plan = reconcile(&[], &desired, ME);
        assert_eq!(plan.add, desired);
        assert!(plan.delete.is_empty());
    }

    #[test]
    fn reconnect_keeps_ours_removes_stale_and_never_touches_others() {
        let desired = vec![
            Desired::new(NotifType::ValueChange, "Device.WiFi.SSID."),
            Desired::new(NotifType::Event, "Device.Boot!"),
        ];
        let stale = Desired::new(NotifType::ValueChange, "Device.Old.");
        let other = Existing {
            instance: format!("{SUBSCRIPTION_TABLE}9."),
            id: "acme-1".into(),
            recipient: "Device.LocalAgent.Controller.2".into(),
            notif_type: "ValueChange".into(),
            reference_list: "Device.".into(),
            enable: true,
        };
        // Radar's id under another controller's recipient is not Radar's either.
        let foreign_radar_id = row(8, &desired[0], "Device.LocalAgent.Controller.2", true);
        let existing = vec![
            row(1, &desired[0], ME, true),
            row(2, &stale, ME, true),
            row(3, &desired[1], "Device.LocalAgent.Controller.1.", false),
            other,
            foreign_radar_id,
        ];
        let plan = reconcile(&existing, &desired, ME);
        assert!(plan.add.is_empty(), "{plan:?}");
        assert_eq!(plan.delete, vec![format!("{SUBSCRIPTION_TABLE}2.")]);
        assert_eq!(plan.enable, vec![format!("{SUBSCRIPTION_TABLE}3.")]);
    }

    #[test]
    fn a_changed_reference_is_replaced() {
        let want = Desired::new(NotifType::ValueChange, "Device.WiFi.");
        let mut changed = row(4, &want, ME, true);
        changed.reference_list = "Device.WiFi.Radio.".into();
        let plan = reconcile(&[changed], std::slice::from_ref(&want), ME);
        assert_eq!(plan.delete, vec![format!("{SUBSCRIPTION_TABLE}4.")]);
        assert_eq!(plan.add, vec![want]);
    }

    #[test]
    fn table_rows_parse_from_a_flattened_get() {
        let v = |p: &str, val: &str| PathValue {
            path: format!("{SUBSCRIPTION_TABLE}{p}"),
            value: val.into(),
        };
        let rows = parse_table(&[
            v("2.ID", "radar-ev-1"),
            v("2.Enable", "true"),
            v("2.NotifType", "Event"),
            v("2.Recipient", ME),
            v("2.ReferenceList", "Device.Boot!"),
            v("10.ID", "x"),
        ]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].instance, format!("{SUBSCRIPTION_TABLE}2."));
        assert!(rows[1].enable);
        assert_eq!(rows[1].reference_list, "Device.Boot!");
        let params = add_params(&Desired::new(NotifType::Event, "Device.Boot!"), true);
        assert!(params.contains(&("Persistent".into(), "true".into(), false)));
        // TR-181: Recipient is read-only, filled in by the agent.
        assert!(params.iter().all(|(name, _, _)| name != "Recipient"));
        let essential = add_params(&Desired::new(NotifType::Event, "Device.Boot!"), false);
        assert!(essential.iter().all(|(_, _, required)| *required));
    }
}
