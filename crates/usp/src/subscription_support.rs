//! Which of Radar's wanted subscriptions an agent's data model can carry, asked with one small
//! GetSupportedDM (TR-369 §7.6.7) of just the objects they reference.
//!
//! Real agents refuse a subscription whose reference is not in their data model, and obuspa's
//! model holds few of a home gateway's tables: subscribing blindly to fixed TR-181 paths gives a
//! row of refusals at every connect. Checking first lets Radar subscribe to what exists and
//! report the rest as "not in the data model" rather than as errors.

#[cfg(test)]
use crate::proto::msg::get_supported_dm_resp as gsdm;
use crate::proto::msg::GetSupportedDmResp;
use crate::subscriptions::{Desired, NotifType};
use std::collections::{BTreeSet, HashMap, HashSet};

/// The objects to ask about: each reference's object (a parameter's, event's or command's parent).
pub fn request_paths(desired: &[Desired]) -> Vec<String> {
    let mut paths = BTreeSet::new();
    for d in desired {
        for reference in references(&d.reference) {
            paths.insert(object_of(reference).to_owned());
        }
    }
    paths.into_iter().collect()
}

fn references(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|r| !r.is_empty())
}

/// `Device.DeviceInfo.SoftwareVersion` → `Device.DeviceInfo.`; `Device.Boot!` → `Device.`;
/// an object path is its own object.
fn object_of(reference: &str) -> &str {
    if reference.ends_with('.') {
        return reference;
    }
    match reference.rfind('.') {
        Some(i) => &reference[..=i],
        None => reference,
    }
}

/// An object path in the one form used here: instance numbers and a trailing `{i}.` removed,
/// so `Device.Hosts.Host.`, `Device.Hosts.Host.{i}.` and `Device.Hosts.Host.3.` meet.
fn object_key(path: &str) -> String {
    let template = crate::supported_dm::template_of(path);
    let trimmed = template.strip_suffix("{i}.").unwrap_or(&template);
    trimmed.to_owned()
}

#[derive(Debug, Default, Clone)]
struct SupportedObject {
    multi_instance: bool,
    params: HashSet<String>,
    events: HashSet<String>,
    commands: HashSet<String>,
}

/// What the agent said it supports, for the objects Radar asked about.
#[derive(Debug, Default, Clone)]
pub struct SupportedObjects {
    objects: HashMap<String, SupportedObject>,
    /// Requested objects the agent does not have, with its error.
    missing: HashMap<String, (u32, String)>,
}

impl SupportedObjects {
    pub fn from_response(resp: &GetSupportedDmResp) -> Self {
        let mut out = SupportedObjects::default();
        for requested in &resp.req_obj_results {
            if requested.err_code != 0 {
                out.missing.insert(
                    object_key(&requested.req_obj_path),
                    (requested.err_code, requested.err_msg.clone()),
                );
                continue;
            }
            for obj in &requested.supported_objs {
                let entry = out
                    .objects
                    .entry(object_key(&obj.supported_obj_path))
                    .or_default();
                entry.multi_instance |= obj.is_multi_instance;
                entry
                    .params
                    .extend(obj.supported_params.iter().map(|p| p.param_name.clone()));
                entry
                    .events
                    .extend(obj.supported_events.iter().map(|e| e.event_name.clone()));
                entry.commands.extend(
                    obj.supported_commands
                        .iter()
                        .map(|c| c.command_name.clone()),
                );
            }
        }
        out
    }

    /// `Ok` when the agent's data model has what `d` references; otherwise why not.
    pub fn check(&self, d: &Desired) -> Result<(), String> {
        for reference in references(&d.reference) {
            self.check_reference(d.notif_type, reference)?;
        }
        Ok(())
    }

    fn check_reference(&self, notif_type: NotifType, reference: &str) -> Result<(), String> {
        let object = object_key(object_of(reference));
        let Some(obj) = self.objects.get(&object) else {
            return Err(match self.missing.get(&object) {
                Some((code, msg)) if !msg.is_empty() => {
                    format!("{object} is not in the agent's data model ({code} {msg})")
                }
                Some((code, _)) => format!("{object} is not in the agent's data model ({code})"),
                None => format!("{object} is not in the agent's data model"),
            });
        };
        let name = &reference[object_of(reference).len()..];
        let found = match notif_type {
            // TR-369 §7.4.3.1: ObjectCreation/ObjectDeletion need a multi-instance object
            // (agents refuse the rest with 7018).
            NotifType::ObjectCreation | NotifType::ObjectDeletion => {
                if !obj.multi_instance {
                    return Err(format!("{reference} is not a multi-instance object"));
                }
                true
            }
            NotifType::ValueChange if name.is_empty() => true,
            NotifType::ValueChange => obj.params.contains(name),
            NotifType::Event => obj.events.contains(name),
            NotifType::OperationComplete if name.is_empty() => true,
            NotifType::OperationComplete => obj.commands.contains(name),
        };
        if found {
            Ok(())
        } else {
            Err(format!("{reference} is not in the agent's data model"))
        }
    }
}

/// One object of a GetSupportedDMResp, for tests here and in the session.
#[cfg(test)]
pub(crate) fn supported_object(
    path: &str,
    multi: bool,
    params: &[&str],
    events: &[&str],
) -> gsdm::SupportedObjectResult {
    gsdm::SupportedObjectResult {
        supported_obj_path: path.into(),
        is_multi_instance: multi,
        supported_params: params
            .iter()
            .map(|p| gsdm::SupportedParamResult {
                param_name: (*p).into(),
                ..Default::default()
            })
            .collect(),
        supported_events: events
            .iter()
            .map(|e| gsdm::SupportedEventResult {
                event_name: (*e).into(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::supported_object as object;
    use super::*;
    use crate::proto::msg::get_supported_dm_resp as gsdm;

    fn requested(
        path: &str,
        err: u32,
        objs: Vec<gsdm::SupportedObjectResult>,
    ) -> gsdm::RequestedObjectResult {
        gsdm::RequestedObjectResult {
            req_obj_path: path.into(),
            err_code: err,
            err_msg: if err == 0 {
                String::new()
            } else {
                "Invalid path".into()
            },
            supported_objs: objs,
            ..Default::default()
        }
    }

    #[test]
    fn asks_for_each_reference_object_once() {
        let paths = request_paths(&crate::subscriptions::default_desired());
        assert!(paths.contains(&"Device.".to_owned()), "{paths:?}");
        assert!(paths.contains(&"Device.DeviceInfo.".to_owned()));
        assert!(paths.contains(&"Device.Hosts.Host.".to_owned()));
        let unique: BTreeSet<_> = paths.iter().collect();
        assert_eq!(unique.len(), paths.len());
    }

    /// Shaped like obuspa v11.0.4's answer: Device. with Boot!, DeviceInfo with SoftwareVersion,
    /// no WiFi/Hosts/NAT/IP, and a single-instance object where a table was wanted.
    #[test]
    fn only_what_the_agent_has_is_subscribed() {
        let resp = GetSupportedDmResp {
            req_obj_results: vec![
                requested(
                    "Device.",
                    0,
                    vec![object("Device.", false, &[], &["Boot!"])],
                ),
                requested(
                    "Device.DeviceInfo.",
                    0,
                    vec![object(
                        "Device.DeviceInfo.",
                        false,
                        &["SoftwareVersion"],
                        &[],
                    )],
                ),
                requested("Device.WiFi.SSID.", 7026, vec![]),
                requested(
                    "Device.LocalAgent.Subscription.",
                    0,
                    vec![object(
                        "Device.LocalAgent.Subscription.{i}.",
                        true,
                        &["ID"],
                        &[],
                    )],
                ),
                requested(
                    "Device.ManagementServer.",
                    0,
                    vec![object("Device.ManagementServer.", false, &["URL"], &[])],
                ),
            ],
        };
        let s = SupportedObjects::from_response(&resp);
        let ok = |t, r: &str| s.check(&Desired::new(t, r));
        assert_eq!(ok(NotifType::Event, "Device.Boot!"), Ok(()));
        assert_eq!(ok(NotifType::OperationComplete, "Device."), Ok(()));
        assert_eq!(
            ok(NotifType::ValueChange, "Device.DeviceInfo.SoftwareVersion"),
            Ok(())
        );
        assert!(ok(NotifType::ValueChange, "Device.DeviceInfo.UpTime").is_err());
        let wifi = ok(NotifType::ValueChange, "Device.WiFi.SSID.").unwrap_err();
        assert!(wifi.contains("7026"), "{wifi}");
        assert_eq!(
            ok(NotifType::ObjectCreation, "Device.LocalAgent.Subscription."),
            Ok(())
        );
        let single = ok(NotifType::ObjectCreation, "Device.ManagementServer.").unwrap_err();
        assert!(single.contains("multi-instance"), "{single}");
        assert!(ok(NotifType::Event, "Device.LocalAgent.TransferComplete!").is_err());
    }
}
