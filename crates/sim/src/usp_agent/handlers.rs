//! The agent's answers to controller requests, over the simulated data model, with the error
//! codes of TR-369 §7.7 that real agents return.

use super::notify::SUBSCRIPTIONS;
use super::{AgentCore, Effect, REQUEST_TABLE};
use crate::model::SimParam;
use radar_core::ParamType;
use radar_usp::errors;
use radar_usp::proto::msg::{
    add_resp, body, delete_resp, error, get_instances_resp, get_resp,
    get_supported_dm_resp as gsdm, header::MsgType, operate_resp, response, set_resp, Add, AddResp,
    Body, Delete, DeleteResp, Error, Get, GetInstances, GetInstancesResp, GetResp, GetSupportedDm,
    GetSupportedDmResp, GetSupportedProtocolResp, Operate, OperateResp, Response, Set, SetResp,
};
use radar_usp::supported_dm::template_of;
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub type Answer = (MsgType, Result<Body, Error>);

const AGENT_VERSIONS: &str = "1.0,1.1,1.2,1.3";

fn ok(ty: MsgType, resp: response::RespType) -> Answer {
    (
        ty,
        Ok(Body {
            msg_body: Some(body::MsgBody::Response(Response {
                resp_type: Some(resp),
            })),
        }),
    )
}

fn err(code: u32, message: &str) -> Error {
    Error {
        err_code: code,
        err_msg: message.into(),
        param_errs: vec![],
    }
}

fn fail(code: u32, message: &str) -> Answer {
    (MsgType::Error, Err(err(code, message)))
}

fn object_of(path: &str) -> (&str, &str) {
    match path.rfind('.') {
        Some(i) => (&path[..=i], &path[i + 1..]),
        None => ("", path),
    }
}

fn matching<'a>(agent: &'a AgentCore, path: &str) -> Vec<(&'a String, &'a SimParam)> {
    if path.ends_with('.') {
        agent
            .model
            .params
            .range(path.to_string()..)
            .take_while(|(k, _)| k.starts_with(path))
            .collect()
    } else {
        agent.model.params.get_key_value(path).into_iter().collect()
    }
}

pub fn get(agent: &mut AgentCore, g: &Get) -> Answer {
    let mut results = Vec::new();
    for path in &g.param_paths {
        let found = matching(agent, path);
        if found.is_empty() {
            results.push(get_resp::RequestedPathResult {
                requested_path: path.clone(),
                err_code: errors::INVALID_PATH,
                err_msg: format!("invalid path {path}"),
                resolved_path_results: vec![],
            });
            continue;
        }
        let mut by_object: BTreeMap<&str, HashMap<String, String>> = BTreeMap::new();
        for (full, p) in found {
            let (obj, name) = object_of(full);
            by_object
                .entry(obj)
                .or_default()
                .insert(name.to_string(), p.value.clone());
        }
        results.push(get_resp::RequestedPathResult {
            requested_path: path.clone(),
            err_code: 0,
            err_msg: String::new(),
            resolved_path_results: by_object
                .into_iter()
                .map(|(obj, params)| get_resp::ResolvedPathResult {
                    resolved_path: obj.to_string(),
                    result_params: params,
                })
                .collect(),
        });
    }
    ok(
        MsgType::GetResp,
        response::RespType::GetResp(GetResp {
            req_path_results: results,
        }),
    )
}

fn valid(ty: ParamType, value: &str) -> bool {
    match ty {
        ParamType::Boolean => matches!(value, "true" | "false" | "0" | "1"),
        ParamType::UnsignedInt => value.parse::<u32>().is_ok(),
        ParamType::Int => value.parse::<i32>().is_ok(),
        ParamType::UnsignedLong => value.parse::<u64>().is_ok(),
        ParamType::Long => value.parse::<i64>().is_ok(),
        _ => true,
    }
}

pub fn set(agent: &mut AgentCore, s: &Set) -> Answer {
    use set_resp::updated_object_result::{operation_status, OperationStatus};
    let mut results = Vec::new();
    let mut writes: Vec<(String, String)> = Vec::new();
    for obj in &s.update_objs {
        let exists = agent
            .model
            .params
            .range(obj.obj_path.clone()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(&obj.obj_path));
        let mut param_errs = Vec::new();
        let mut updated = HashMap::new();
        let mut object_writes = Vec::new();
        if !exists {
            if !s.allow_partial {
                return fail(
                    errors::OBJECT_DOES_NOT_EXIST,
                    &format!("{} does not exist", obj.obj_path),
                );
            }
        } else {
            for setting in &obj.param_settings {
                let full = format!("{}{}", obj.obj_path, setting.param);
                let problem = match agent.model.params.get(&full) {
                    None => Some((7010, "unsupported parameter")),
                    Some(p) if !p.writable => {
                        Some((errors::PARAM_READ_ONLY, "parameter is read only"))
                    }
                    Some(p) if !valid(p.ty, &setting.value) => Some((7011, "invalid type")),
                    Some(_) => None,
                };
                match problem {
                    Some((code, message)) => param_errs.push((
                        setting.param.clone(),
                        full,
                        code,
                        message,
                        setting.required,
                    )),
                    None => {
                        updated.insert(setting.param.clone(), setting.value.clone());
                        object_writes.push((full, setting.value.clone()));
                    }
                }
            }
        }
        let required_failed = param_errs.iter().any(|e| e.4);
        if !s.allow_partial && required_failed {
            // TR-369 §7.6.3: with allow_partial=false a failed required parameter fails the
            // whole Set; other parameter failures are reported in the SetResp.
            let mut e = err(errors::INVALID_ARGUMENTS, "set failed");
            e.param_errs = param_errs
                .iter()
                .map(|(_, full, code, message, _)| error::ParamError {
                    param_path: full.clone(),
                    err_code: *code,
                    err_msg: message.to_string(),
                })
                .collect();
            return (MsgType::Error, Err(e));
        }
        // An object whose required parameter failed is left as it was.
        if exists && !required_failed {
            writes.extend(object_writes);
        }
        let status = if !exists || required_failed {
            operation_status::OperStatus::OperFailure(operation_status::OperationFailure {
                err_code: if exists {
                    7021
                } else {
                    errors::OBJECT_DOES_NOT_EXIST
                },
                err_msg: "object not updated".into(),
                updated_inst_failures: vec![],
            })
        } else {
            operation_status::OperStatus::OperSuccess(operation_status::OperationSuccess {
                updated_inst_results: vec![set_resp::UpdatedInstanceResult {
                    affected_path: obj.obj_path.clone(),
                    param_errs: param_errs
                        .iter()
                        .map(|(param, _, code, message, _)| set_resp::ParameterError {
                            param: param.clone(),
                            err_code: *code,
                            err_msg: message.to_string(),
                        })
                        .collect(),
                    updated_params: updated,
                }],
            })
        };
        results.push(set_resp::UpdatedObjectResult {
            requested_path: obj.obj_path.clone(),
            oper_status: Some(OperationStatus {
                oper_status: Some(status),
            }),
        });
    }
    for (path, value) in writes {
        if let Some(p) = agent.model.params.get_mut(&path) {
            p.value = value;
        }
    }
    ok(
        MsgType::SetResp,
        response::RespType::SetResp(SetResp {
            updated_obj_results: results,
        }),
    )
}

/// Checks a new subscription the way real agents do.
fn check_subscription(
    agent: &AgentCore,
    params: &BTreeMap<String, String>,
) -> Result<(), (u32, String)> {
    let get = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
    let id = get("ID");
    // The agent fills Recipient with the controller that created the row.
    let recipient = super::CONTROLLER_ENTRY;
    let duplicate = agent.model.params.iter().any(|(k, v)| {
        k.starts_with(SUBSCRIPTIONS) && k.ends_with(".ID") && v.value == id && {
            let inst = &k[..k.len() - 2];
            agent.param(&format!("{inst}Recipient")) == Some(recipient)
        }
    });
    if duplicate {
        return Err((
            errors::UNIQUE_KEY_CONFLICT,
            format!("subscription {id} exists"),
        ));
    }
    for reference in get("ReferenceList").split(',').map(str::trim) {
        match get("NotifType") {
            "ValueChange" if reference == "Device." => {
                return Err((
                    errors::RESOURCES_EXCEEDED,
                    "ValueChange on Device. is too wide".into(),
                ))
            }
            "ObjectCreation" | "ObjectDeletion"
                if !agent.model.tables.contains_key(reference)
                    && !reference.starts_with("Device.Hosts.Host.") =>
            {
                return Err((
                    errors::NOT_A_TABLE,
                    format!("{reference} is not a multi-instance object"),
                ))
            }
            "" => return Err((errors::INVALID_ARGUMENTS, "NotifType is required".into())),
            _ => {}
        }
    }
    Ok(())
}

fn create(
    agent: &mut AgentCore,
    c: &radar_usp::proto::msg::add::CreateObject,
) -> Result<(String, Vec<add_resp::ParameterError>), (u32, String)> {
    let table = c.obj_path.as_str();
    let Some(&next) = agent.model.tables.get(table) else {
        return Err((
            errors::NOT_A_TABLE,
            format!("{table} is not a table that accepts Add"),
        ));
    };
    let settings: BTreeMap<String, String> = c
        .param_settings
        .iter()
        .map(|s| (s.param.clone(), s.value.clone()))
        .collect();
    let mut fields: Vec<(String, String, ParamType)> = Vec::new();
    if table == SUBSCRIPTIONS {
        // TR-181 makes Recipient read-only; obuspa v11 refuses the whole row, with this text.
        if settings.contains_key("Recipient") {
            return Err((
                errors::PARAM_READ_ONLY,
                format!("Trying to perform a parameter set on read-only parameter {table}{next}.Recipient"),
            ));
        }
        check_subscription(agent, &settings)?;
        for (name, default, ty) in [
            ("Enable", "false", ParamType::Boolean),
            ("ID", "", ParamType::String),
            ("Recipient", super::CONTROLLER_ENTRY, ParamType::String),
            ("NotifType", "", ParamType::String),
            ("ReferenceList", "", ParamType::String),
            ("Persistent", "false", ParamType::Boolean),
            ("NotifRetry", "false", ParamType::Boolean),
            ("TimeToLive", "0", ParamType::UnsignedInt),
        ] {
            let value = settings
                .get(name)
                .cloned()
                .unwrap_or_else(|| default.into());
            fields.push((name.into(), value, ty));
        }
    } else {
        // Other tables: the first instance's parameters are the template.
        let template: Vec<(String, SimParam)> = agent
            .model
            .params
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(&format!("{table}1."))
                    .map(|rest| (rest.to_owned(), v.clone()))
            })
            .collect();
        for (rest, p) in template {
            let value = settings.get(&rest).cloned().unwrap_or_else(|| match p.ty {
                ParamType::Boolean => "false".into(),
                ParamType::String => String::new(),
                _ => "0".into(),
            });
            fields.push((rest, value, p.ty));
        }
    }
    let instance = next;
    agent.model.tables.insert(table.to_owned(), next + 1);
    let obj = format!("{table}{instance}.");
    for (name, value, ty) in fields {
        agent.model.params.insert(
            format!("{obj}{name}"),
            SimParam {
                value,
                ty,
                writable: true,
                notification: 0,
            },
        );
    }
    Ok((obj, vec![]))
}

pub fn add(agent: &mut AgentCore, a: &Add) -> Answer {
    use add_resp::created_object_result::{operation_status, OperationStatus};
    let mut results = Vec::new();
    for c in &a.create_objs {
        let status = match create(agent, c) {
            Ok((path, param_errs)) => {
                operation_status::OperStatus::OperSuccess(operation_status::OperationSuccess {
                    instantiated_path: path,
                    param_errs,
                    unique_keys: HashMap::new(),
                })
            }
            Err((code, message)) if !a.allow_partial => return fail(code, &message),
            Err((code, message)) => {
                operation_status::OperStatus::OperFailure(operation_status::OperationFailure {
                    err_code: code,
                    err_msg: message,
                })
            }
        };
        results.push(add_resp::CreatedObjectResult {
            requested_path: c.obj_path.clone(),
            oper_status: Some(OperationStatus {
                oper_status: Some(status),
            }),
        });
    }
    ok(
        MsgType::AddResp,
        response::RespType::AddResp(AddResp {
            created_obj_results: results,
        }),
    )
}

pub fn delete(agent: &mut AgentCore, d: &Delete) -> Answer {
    use delete_resp::deleted_object_result::{operation_status, OperationStatus};
    let mut results = Vec::new();
    for path in &d.obj_paths {
        let is_instance = path.ends_with('.')
            && path
                .trim_end_matches('.')
                .rsplit('.')
                .next()
                .is_some_and(|s| s.parse::<u32>().is_ok());
        if !is_instance {
            if !d.allow_partial {
                return fail(
                    errors::OBJECT_DOES_NOT_EXIST,
                    &format!("{path} is not an object instance"),
                );
            }
            results.push(delete_resp::DeletedObjectResult {
                requested_path: path.clone(),
                oper_status: Some(OperationStatus {
                    oper_status: Some(operation_status::OperStatus::OperFailure(
                        operation_status::OperationFailure {
                            err_code: errors::OBJECT_DOES_NOT_EXIST,
                            err_msg: "not an object instance".into(),
                        },
                    )),
                }),
            });
            continue;
        }
        let before = agent.model.params.len();
        agent
            .model
            .params
            .retain(|k, _| !k.starts_with(path.as_str()));
        // Deleting an instance that does not exist is not an error (TR-369 §7.6.5).
        let affected = if before != agent.model.params.len() {
            vec![path.clone()]
        } else {
            vec![]
        };
        results.push(delete_resp::DeletedObjectResult {
            requested_path: path.clone(),
            oper_status: Some(OperationStatus {
                oper_status: Some(operation_status::OperStatus::OperSuccess(
                    operation_status::OperationSuccess {
                        affected_paths: affected,
                        unaffected_path_errs: vec![],
                    },
                )),
            }),
        });
    }
    ok(
        MsgType::DeleteResp,
        response::RespType::DeleteResp(DeleteResp {
            deleted_obj_results: results,
        }),
    )
}

pub fn operate(agent: &mut AgentCore, o: &Operate) -> Answer {
    use operate_resp::operation_result::{OperationResp, OutputArgs};
    let sync_done = |agent: &mut AgentCore, effect: Effect| {
        agent.effect(effect);
        OperationResp::ReqOutputArgs(OutputArgs {
            output_args: HashMap::new(),
        })
    };
    let resp = match o.command.as_str() {
        "Device.Reboot()" => sync_done(
            agent,
            Effect::Reboot {
                command_key: o.command_key.clone(),
                cause: "RemoteReboot".into(),
            },
        ),
        "Device.FactoryReset()" => sync_done(
            agent,
            Effect::FactoryReset {
                command_key: o.command_key.clone(),
            },
        ),
        cmd if cmd.starts_with("Device.DeviceInfo.FirmwareImage.")
            && cmd.ends_with(".Download()") =>
        {
            let image = cmd.trim_end_matches("Download()").to_owned();
            if agent.param(&format!("{image}Status")).is_none() {
                return fail(errors::INVALID_PATH, &format!("{image} does not exist"));
            }
            let Some(url) = o.input_args.get("URL").filter(|u| !u.is_empty()) else {
                return fail(7027, "URL is a required input argument");
            };
            let n = agent.model.tables.get(REQUEST_TABLE).copied().unwrap_or(1);
            agent.model.tables.insert(REQUEST_TABLE.into(), n + 1);
            let request_path = format!("{REQUEST_TABLE}{n}.");
            for (k, v) in [
                ("Command", cmd),
                ("CommandKey", o.command_key.as_str()),
                ("Status", "Active"),
            ] {
                agent.model.params.insert(
                    format!("{request_path}{k}"),
                    SimParam {
                        value: v.into(),
                        ty: ParamType::String,
                        writable: false,
                        notification: 0,
                    },
                );
            }
            agent.effect(Effect::Download {
                url: url.clone(),
                image,
                command_key: o.command_key.clone(),
                request_path: request_path.clone(),
                auto_activate: o
                    .input_args
                    .get("AutoActivate")
                    .is_some_and(|v| v == "true" || v == "1"),
            });
            OperationResp::ReqObjPath(request_path)
        }
        other => return fail(errors::INVALID_PATH, &format!("unknown command {other}")),
    };
    ok(
        MsgType::OperateResp,
        response::RespType::OperateResp(OperateResp {
            operation_results: vec![operate_resp::OperationResult {
                executed_command: o.command.clone(),
                operation_resp: Some(resp),
            }],
        }),
    )
}

fn value_type(ty: ParamType) -> i32 {
    use gsdm::ParamValueType as V;
    (match ty {
        ParamType::String => V::ParamString,
        ParamType::Int => V::ParamInt,
        ParamType::UnsignedInt => V::ParamUnsignedInt,
        ParamType::Long => V::ParamLong,
        ParamType::UnsignedLong => V::ParamUnsignedLong,
        ParamType::Boolean => V::ParamBoolean,
        ParamType::DateTime => V::ParamDateTime,
        ParamType::Base64 => V::ParamBase64,
        ParamType::HexBinary => V::ParamHexBinary,
        ParamType::Decimal => V::ParamDecimal,
    }) as i32
}

pub fn get_supported_dm(agent: &mut AgentCore, g: &GetSupportedDm) -> Answer {
    let mut objects: BTreeMap<String, Vec<gsdm::SupportedParamResult>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for (path, p) in &agent.model.params {
        let template = template_of(path);
        if !seen.insert(template.clone()) {
            continue;
        }
        let (obj, name) = object_of(&template);
        // Every ancestor object is supported too.
        let mut end = 0;
        while let Some(i) = obj[end..].find('.') {
            end += i + 1;
            objects.entry(obj[..end].to_string()).or_default();
        }
        objects
            .entry(obj.to_string())
            .or_default()
            .push(gsdm::SupportedParamResult {
                param_name: name.into(),
                access: if p.writable {
                    gsdm::ParamAccessType::ParamReadWrite as i32
                } else {
                    gsdm::ParamAccessType::ParamReadOnly as i32
                },
                value_type: value_type(p.ty),
                value_change: gsdm::ValueChangeType::ValueChangeAllowed as i32,
            });
    }
    let mut results = Vec::new();
    for requested in &g.obj_paths {
        let supported: Vec<gsdm::SupportedObjectResult> = objects
            .iter()
            .filter(|(path, _)| path.starts_with(requested.as_str()))
            .map(|(path, params)| gsdm::SupportedObjectResult {
                supported_obj_path: path.clone(),
                access: if agent
                    .model
                    .tables
                    .contains_key(path.trim_end_matches("{i}."))
                {
                    gsdm::ObjAccessType::ObjAddDelete as i32
                } else {
                    gsdm::ObjAccessType::ObjReadOnly as i32
                },
                is_multi_instance: path.ends_with("{i}."),
                supported_commands: match path.as_str() {
                    "Device." => vec![
                        gsdm::SupportedCommandResult {
                            command_name: "Reboot()".into(),
                            command_type: gsdm::CmdType::CmdSync as i32,
                            ..Default::default()
                        },
                        gsdm::SupportedCommandResult {
                            command_name: "FactoryReset()".into(),
                            command_type: gsdm::CmdType::CmdSync as i32,
                            ..Default::default()
                        },
                    ],
                    "Device.DeviceInfo.FirmwareImage.{i}." => vec![gsdm::SupportedCommandResult {
                        command_name: "Download()".into(),
                        input_arg_names: vec![
                            "URL".into(),
                            "AutoActivate".into(),
                            "Username".into(),
                            "Password".into(),
                            "FileSize".into(),
                        ],
                        command_type: gsdm::CmdType::CmdAsync as i32,
                        ..Default::default()
                    }],
                    _ => vec![],
                },
                supported_events: if path == "Device." {
                    vec![gsdm::SupportedEventResult {
                        event_name: "Boot!".into(),
                        arg_names: vec![
                            "CommandKey".into(),
                            "Cause".into(),
                            "FirmwareUpdated".into(),
                            "ParameterMap".into(),
                        ],
                    }]
                } else {
                    vec![]
                },
                supported_params: if g.return_params {
                    params.clone()
                } else {
                    vec![]
                },
                ..Default::default()
            })
            .filter(|o| {
                !g.first_level_only
                    || o.supported_obj_path[requested.len()..].matches('.').count() <= 1
            })
            .collect();
        results.push(gsdm::RequestedObjectResult {
            req_obj_path: requested.clone(),
            err_code: if supported.is_empty() {
                errors::INVALID_PATH
            } else {
                0
            },
            err_msg: String::new(),
            data_model_inst_uri: "urn:broadband-forum-org:tr-181-2-17-0-usp".into(),
            supported_objs: supported,
        });
    }
    ok(
        MsgType::GetSupportedDmResp,
        response::RespType::GetSupportedDmResp(GetSupportedDmResp {
            req_obj_results: results,
        }),
    )
}

pub fn get_instances(agent: &mut AgentCore, g: &GetInstances) -> Answer {
    let mut results = Vec::new();
    for path in &g.obj_paths {
        let mut instances = BTreeSet::new();
        for key in agent
            .model
            .params
            .keys()
            .filter(|k| k.starts_with(path.as_str()))
        {
            let mut end = 0;
            let segments: Vec<&str> = key.split('.').collect();
            for (i, seg) in segments.iter().enumerate() {
                end += seg.len() + 1;
                if i + 1 < segments.len()
                    && !seg.is_empty()
                    && seg.bytes().all(|b| b.is_ascii_digit())
                    && end > path.len()
                {
                    instances.insert(key[..end].to_string());
                }
            }
        }
        results.push(get_instances_resp::RequestedPathResult {
            requested_path: path.clone(),
            err_code: 0,
            err_msg: String::new(),
            curr_insts: instances
                .into_iter()
                .map(|p| get_instances_resp::CurrInstance {
                    instantiated_obj_path: p,
                    unique_keys: HashMap::new(),
                })
                .collect(),
        });
    }
    ok(
        MsgType::GetInstancesResp,
        response::RespType::GetInstancesResp(GetInstancesResp {
            req_path_results: results,
        }),
    )
}

pub fn get_supported_protocol() -> Answer {
    ok(
        MsgType::GetSupportedProtoResp,
        response::RespType::GetSupportedProtocolResp(GetSupportedProtocolResp {
            agent_supported_protocol_versions: AGENT_VERSIONS.into(),
        }),
    )
}
