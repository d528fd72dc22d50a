//! The CPE side of a session, sans-IO: answers each ACS request from the simulated data model,
//! with the faults a real CPE gives (TR-069 A.5.2: 9005 unknown name, 9007 invalid value, 9008
//! non-writable, 9009 notification refused), and remembers what must happen after the session
//! (reboot, factory reset, downloads).

use crate::model::{SimModel, SimParam};
use radar_core::ParamType;
use radar_cwmp::rpc::add_object::AddObjectResponse;
use radar_cwmp::rpc::delete_object::DeleteObjectResponse;
use radar_cwmp::rpc::download::{Download, DownloadResponse};
use radar_cwmp::rpc::factory_reset::FactoryResetResponse;
use radar_cwmp::rpc::fault::{CwmpFault, SetParameterValuesFault};
use radar_cwmp::rpc::get_parameter_attributes::{
    GetParameterAttributesResponse, ParameterAttribute,
};
use radar_cwmp::rpc::get_parameter_names::{GetParameterNamesResponse, ParameterInfo};
use radar_cwmp::rpc::get_parameter_values::{GetParameterValuesResponse, ParameterValue};
use radar_cwmp::rpc::get_rpc_methods::GetRpcMethodsResponse;
use radar_cwmp::rpc::reboot::RebootResponse;
use radar_cwmp::rpc::schedule_inform::ScheduleInformResponse;
use radar_cwmp::rpc::set_parameter_attributes::SetParameterAttributesResponse;
use radar_cwmp::rpc::set_parameter_values::SetParameterValuesResponse;
use radar_cwmp::rpc::upload::UploadResponse;
use radar_cwmp::CwmpMessage;

/// What the device does once the session ends.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AfterSession {
    pub reboot: Option<String>,
    pub factory_reset: bool,
    pub downloads: Vec<Download>,
    pub uploads: Vec<radar_cwmp::rpc::upload::Upload>,
    pub schedule_inform: Option<(u32, String)>,
}

pub struct CpeState {
    pub model: SimModel,
    pub defaults: SimModel,
    pub after: AfterSession,
    /// Refuse active notification (fault 9009), as some real devices do.
    pub refuse_active_notification: bool,
    /// Behave like genieacs-sim (commit e391cab): Fault 9000 for Reboot, FactoryReset and
    /// the attribute RPCs, and a crash (the session dies unanswered) on a GetParameterValues
    /// of an object path.
    pub genieacs_sim_quirks: bool,
}

const CPE_METHODS: &[&str] = &[
    "GetRPCMethods",
    "SetParameterValues",
    "GetParameterValues",
    "GetParameterNames",
    "SetParameterAttributes",
    "GetParameterAttributes",
    "AddObject",
    "DeleteObject",
    "Reboot",
    "Download",
    "Upload",
    "FactoryReset",
    "ScheduleInform",
];

impl CpeState {
    pub fn new(model: SimModel) -> Self {
        Self {
            defaults: model.clone(),
            model,
            after: AfterSession::default(),
            refuse_active_notification: false,
            genieacs_sim_quirks: false,
        }
    }

    /// Whether this request kills the device's session (it never answers).
    pub fn crashes_on(&self, request: &CwmpMessage) -> bool {
        self.genieacs_sim_quirks
            && matches!(request, CwmpMessage::GetParameterValues(g) if g.names.iter().any(|n| n.ends_with('.')))
    }

    pub fn respond(&mut self, request: &CwmpMessage) -> CwmpMessage {
        if self.genieacs_sim_quirks
            && matches!(
                request,
                CwmpMessage::Reboot(_)
                    | CwmpMessage::FactoryReset(_)
                    | CwmpMessage::SetParameterAttributes(_)
                    | CwmpMessage::GetParameterAttributes(_)
            )
        {
            return fault(9000, "Method not supported");
        }
        match request {
            CwmpMessage::GetRpcMethods(_) => {
                CwmpMessage::GetRpcMethodsResponse(GetRpcMethodsResponse {
                    methods: CPE_METHODS.iter().map(|m| m.to_string()).collect(),
                })
            }
            CwmpMessage::GetParameterNames(gpn) => {
                self.get_parameter_names(&gpn.path, gpn.next_level)
            }
            CwmpMessage::GetParameterValues(gpv) => self.get_parameter_values(&gpv.names),
            CwmpMessage::SetParameterValues(spv) => {
                self.set_parameter_values(&spv.parameters, &spv.parameter_key)
            }
            CwmpMessage::GetParameterAttributes(gpa) => {
                let mut parameters = Vec::new();
                for name in &gpa.names {
                    let matched: Vec<_> = self.matching(name).into_iter().collect();
                    if matched.is_empty() {
                        return fault(9005, "Invalid parameter name");
                    }
                    for (path, p) in matched {
                        parameters.push(ParameterAttribute {
                            name: path,
                            notification: p.notification,
                            access_list: vec![],
                        });
                    }
                }
                CwmpMessage::GetParameterAttributesResponse(GetParameterAttributesResponse {
                    parameters,
                })
            }
            CwmpMessage::SetParameterAttributes(spa) => {
                for s in &spa.parameters {
                    if self.matching(&s.name).is_empty() {
                        return fault(9005, "Invalid parameter name");
                    }
                    if s.notification_change
                        && s.notification == 2
                        && self.refuse_active_notification
                    {
                        return fault(9009, "Notification request rejected");
                    }
                }
                for s in &spa.parameters {
                    if s.notification_change {
                        let paths: Vec<String> =
                            self.matching(&s.name).into_iter().map(|(p, _)| p).collect();
                        for path in paths {
                            if let Some(p) = self.model.params.get_mut(&path) {
                                p.notification = s.notification;
                            }
                        }
                    }
                }
                CwmpMessage::SetParameterAttributesResponse(SetParameterAttributesResponse)
            }
            CwmpMessage::AddObject(add) => {
                let Some(next) = self.model.tables.get_mut(&add.object_name) else {
                    return fault(9005, "Invalid parameter name");
                };
                let instance = *next;
                *next += 1;
                let template: Vec<(String, SimParam)> = self
                    .model
                    .params
                    .iter()
                    .filter_map(|(k, v)| {
                        k.strip_prefix(&format!("{}1.", add.object_name))
                            .map(|rest| (rest.to_owned(), v.clone()))
                    })
                    .collect();
                for (rest, mut p) in template {
                    if p.writable {
                        p.value = match p.ty {
                            ParamType::Boolean => "false".into(),
                            ParamType::String => String::new(),
                            _ => "0".into(),
                        };
                    }
                    self.model
                        .params
                        .insert(format!("{}{instance}.{rest}", add.object_name), p);
                }
                self.set_parameter_key(&add.parameter_key);
                CwmpMessage::AddObjectResponse(AddObjectResponse {
                    instance_number: instance,
                    status: 0,
                })
            }
            CwmpMessage::DeleteObject(del) => {
                let is_instance = del.object_name.ends_with('.')
                    && del
                        .object_name
                        .trim_end_matches('.')
                        .rsplit('.')
                        .next()
                        .is_some_and(|s| s.parse::<u32>().is_ok());
                let before = self.model.params.len();
                if is_instance {
                    self.model
                        .params
                        .retain(|k, _| !k.starts_with(&del.object_name));
                }
                if !is_instance || before == self.model.params.len() {
                    return fault(9005, "Invalid parameter name");
                }
                self.set_parameter_key(&del.parameter_key);
                CwmpMessage::DeleteObjectResponse(DeleteObjectResponse { status: 0 })
            }
            CwmpMessage::Reboot(r) => {
                self.after.reboot = Some(r.command_key.clone());
                CwmpMessage::RebootResponse(RebootResponse)
            }
            CwmpMessage::FactoryReset(_) => {
                self.after.factory_reset = true;
                CwmpMessage::FactoryResetResponse(FactoryResetResponse)
            }
            CwmpMessage::Download(d) => {
                if !d.file_type.starts_with('1') && !d.file_type.starts_with('3') {
                    return fault(9010, "Unsupported file type");
                }
                self.after.downloads.push(d.clone());
                // Status 1: the transfer happens after the session and ends with TransferComplete.
                CwmpMessage::DownloadResponse(DownloadResponse {
                    status: 1,
                    start_time: "0001-01-01T00:00:00Z".into(),
                    complete_time: "0001-01-01T00:00:00Z".into(),
                })
            }
            CwmpMessage::Upload(u) => {
                self.after.uploads.push(u.clone());
                CwmpMessage::UploadResponse(UploadResponse {
                    status: 1,
                    start_time: "0001-01-01T00:00:00Z".into(),
                    complete_time: "0001-01-01T00:00:00Z".into(),
                })
            }
            CwmpMessage::ScheduleInform(s) => {
                self.after.schedule_inform = Some((s.delay_seconds, s.command_key.clone()));
                CwmpMessage::ScheduleInformResponse(ScheduleInformResponse)
            }
            other => fault(9000, &format!("Method not supported: {}", other.name())),
        }
    }

    /// Parameters whose path equals `name`, or starts with it when `name` is a partial path.
    fn matching(&self, name: &str) -> Vec<(String, SimParam)> {
        if name.is_empty() || name.ends_with('.') {
            self.model
                .params
                .iter()
                .filter(|(k, _)| k.starts_with(name))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        } else {
            self.model
                .params
                .get(name)
                .map(|p| vec![(name.to_owned(), p.clone())])
                .unwrap_or_default()
        }
    }

    fn get_parameter_names(&self, path: &str, next_level: bool) -> CwmpMessage {
        let objects = self.model.objects();
        let mut parameters: Vec<ParameterInfo> = Vec::new();
        if !path.is_empty() && !path.ends_with('.') {
            return match self.model.get(path) {
                Some(p) => CwmpMessage::GetParameterNamesResponse(GetParameterNamesResponse {
                    parameters: vec![ParameterInfo {
                        name: path.into(),
                        writable: p.writable,
                    }],
                }),
                None => fault(9005, "Invalid parameter name"),
            };
        }
        if !path.is_empty() && !objects.iter().any(|o| o == path) {
            return fault(9005, "Invalid parameter name");
        }
        let depth = path.matches('.').count();
        for object in objects.iter().filter(|o| o.starts_with(path)) {
            let level = object.matches('.').count();
            if next_level && level != depth + 1 {
                continue;
            }
            let writable = self.model.tables.contains_key(object.as_str());
            parameters.push(ParameterInfo {
                name: object.clone(),
                writable,
            });
        }
        for (name, p) in self
            .model
            .params
            .iter()
            .filter(|(k, _)| k.starts_with(path))
        {
            if next_level && name.matches('.').count() != depth {
                continue;
            }
            parameters.push(ParameterInfo {
                name: name.clone(),
                writable: p.writable,
            });
        }
        CwmpMessage::GetParameterNamesResponse(GetParameterNamesResponse { parameters })
    }

    fn get_parameter_values(&self, names: &[String]) -> CwmpMessage {
        let mut parameters = Vec::new();
        for name in names {
            let matched = self.matching(name);
            if matched.is_empty() {
                return fault(9005, "Invalid parameter name");
            }
            parameters.extend(
                matched
                    .into_iter()
                    .map(|(path, p)| ParameterValue::new(path, p.value, p.ty.xsd())),
            );
        }
        CwmpMessage::GetParameterValuesResponse(GetParameterValuesResponse { parameters })
    }

    fn set_parameter_values(&mut self, params: &[ParameterValue], key: &str) -> CwmpMessage {
        let mut faults = Vec::new();
        for p in params {
            let problem = match self.model.get(&p.name) {
                None => Some((9005, "Invalid parameter name")),
                Some(sp) if !sp.writable => Some((9008, "Attempt to set a non-writable parameter")),
                Some(sp) => match sp.ty.check(&p.value) {
                    Err(_) => Some((9007, "Invalid parameter value")),
                    Ok(()) => {
                        let declared = p.xsd_type.as_deref().map(ParamType::from_xsd);
                        (declared.is_some_and(|t| t != sp.ty))
                            .then_some((9006, "Invalid parameter type"))
                    }
                },
            };
            if let Some((code, message)) = problem {
                faults.push(SetParameterValuesFault {
                    parameter_name: p.name.clone(),
                    code,
                    message: message.into(),
                });
            }
        }
        if !faults.is_empty() {
            // TR-069 A.3.2.1: the whole request fails with 9003 and per-parameter details.
            let mut f = CwmpFault::new(9003, "Invalid arguments");
            f.set_parameter_values_faults = faults;
            return CwmpMessage::Fault(f);
        }
        for p in params {
            if let Some(sp) = self.model.params.get_mut(&p.name) {
                sp.value = p.value.clone();
            }
        }
        self.set_parameter_key(key);
        CwmpMessage::SetParameterValuesResponse(SetParameterValuesResponse { status: 0 })
    }

    fn set_parameter_key(&mut self, key: &str) {
        if let Some(p) = self
            .model
            .params
            .get_mut("Device.ManagementServer.ParameterKey")
        {
            p.value = key.to_owned();
        }
    }

    /// Applies a local change (as a user on the LAN would), reporting whether the parameter is
    /// under active notification, which makes the device inform at once with `4 VALUE CHANGE`.
    pub fn local_change(&mut self, path: &str, value: &str) -> Option<u8> {
        let p = self.model.params.get_mut(path)?;
        p.value = value.to_owned();
        Some(p.notification)
    }

    pub fn reset_to_defaults(&mut self) {
        self.model = self.defaults.clone();
    }
}

fn fault(code: u32, message: &str) -> CwmpMessage {
    CwmpMessage::Fault(CwmpFault::new(code, message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Identity;
    use radar_cwmp::rpc::get_parameter_names::GetParameterNames;
    use radar_cwmp::rpc::set_parameter_values::SetParameterValues;

    fn cpe() -> CpeState {
        CpeState::new(SimModel::home_gateway(&Identity {
            manufacturer: "R".into(),
            oui: "00D09E".into(),
            product_class: "HG".into(),
            serial: "S1".into(),
            software_version: "1".into(),
            connection_request_url: "http://x/".into(),
        }))
    }

    #[test]
    fn set_faults_per_parameter() {
        let mut c = cpe();
        let spv = CwmpMessage::SetParameterValues(SetParameterValues {
            parameters: vec![
                ParameterValue::new("Device.DeviceInfo.SoftwareVersion", "2", "xsd:string"),
                ParameterValue::new("Device.WiFi.Radio.1.Channel", "abc", "xsd:unsignedInt"),
            ],
            parameter_key: "k".into(),
        });
        let CwmpMessage::Fault(f) = c.respond(&spv) else {
            panic!()
        };
        assert_eq!(f.code, 9003);
        let codes: Vec<u32> = f
            .set_parameter_values_faults
            .iter()
            .map(|f| f.code)
            .collect();
        assert_eq!(codes, [9008, 9007]);
    }

    #[test]
    fn gpn_lists_objects_and_parameters() {
        let mut c = cpe();
        let CwmpMessage::GetParameterNamesResponse(r) =
            c.respond(&CwmpMessage::GetParameterNames(GetParameterNames {
                path: "Device.".into(),
                next_level: false,
            }))
        else {
            panic!()
        };
        assert!(r.parameters.iter().any(|p| p.name == "Device.WiFi."));
        assert!(r
            .parameters
            .iter()
            .any(|p| p.name == "Device.WiFi.SSID.1.SSID" && p.writable));
        let CwmpMessage::GetParameterNamesResponse(r) =
            c.respond(&CwmpMessage::GetParameterNames(GetParameterNames {
                path: "Device.".into(),
                next_level: true,
            }))
        else {
            panic!()
        };
        assert!(r.parameters.iter().all(|p| p.name.matches('.').count() == 2
            || (p.name.matches('.').count() == 1 && !p.name.ends_with('.'))));
    }
}
