//! The requests Radar's planner turns operations into, and what their responses mean (TR-369
//! §7.6: Get, Set, Add, Delete, Operate). A request's outcome is one `Reply` or one `Failure` with
//! the agent's USP error code, so the twin can record it on the operation.

use crate::inbound::{flatten_get_resp, PathValue};
use crate::msg;
use crate::proto::msg::{
    add_resp, body, delete_resp, operate_resp, response, set_resp, Error, Msg,
};
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Get {
        paths: Vec<String>,
        max_depth: u32,
    },
    /// Sent with `allow_partial = false` and every parameter `required`: a write is all or nothing.
    Set {
        objects: Vec<msg::SetObject>,
    },
    Add {
        obj_path: String,
        params: Vec<(String, String, bool)>,
    },
    Delete {
        paths: Vec<String>,
    },
    Operate {
        command: String,
        command_key: String,
        args: HashMap<String, String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Values(Vec<PathValue>),
    Set {
        updated: Vec<PathValue>,
    },
    Added {
        instantiated_path: String,
        unique_keys: BTreeMap<String, String>,
    },
    Deleted {
        affected: Vec<String>,
    },
    /// A synchronous command finished.
    OperateDone {
        output_args: BTreeMap<String, String>,
    },
    /// An asynchronous command started; an OperationComplete Notify (or, for Reboot and
    /// FactoryReset, a Boot! Event) reports its end.
    OperateStarted {
        request_path: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: u32,
    pub message: String,
}

impl Failure {
    pub fn new(code: u32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl Request {
    /// A Set from full parameter paths, grouped by object: `Device.WiFi.SSID.1.SSID` becomes
    /// object `Device.WiFi.SSID.1.` with parameter `SSID`.
    pub fn set_params(params: &BTreeMap<String, String>) -> Self {
        let mut objects: Vec<msg::SetObject> = Vec::new();
        for (path, value) in params {
            let (obj, param) = match path.rfind('.') {
                Some(i) => (&path[..=i], &path[i + 1..]),
                None => ("", path.as_str()),
            };
            let entry = (param.to_owned(), value.clone(), true);
            match objects.iter_mut().find(|(o, _)| o == obj) {
                Some((_, list)) => list.push(entry),
                None => objects.push((obj.to_owned(), vec![entry])),
            }
        }
        Request::Set { objects }
    }

    pub fn to_msg(&self, msg_id: &str) -> Msg {
        match self {
            Request::Get { paths, max_depth } => msg::get(msg_id, paths, *max_depth),
            Request::Set { objects } => msg::set(msg_id, false, objects),
            Request::Add { obj_path, params } => msg::add(msg_id, false, obj_path, params),
            Request::Delete { paths } => msg::delete(msg_id, false, paths),
            Request::Operate {
                command,
                command_key,
                args,
            } => msg::operate(msg_id, command, command_key, true, args.clone()),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Request::Get { .. } => "Get",
            Request::Set { .. } => "Set",
            Request::Add { .. } => "Add",
            Request::Delete { .. } => "Delete",
            Request::Operate { .. } => "Operate",
        }
    }
}

/// Turns an Error Msg into a Failure, naming the first parameter error if there is one (an
/// Error for Set/Add with allow_partial=false carries the per-parameter reasons, TR-369 §7.6.3).
pub fn failure_from_error(e: &Error) -> Failure {
    match e.param_errs.first() {
        Some(p) => Failure::new(
            if p.err_code != 0 {
                p.err_code
            } else {
                e.err_code
            },
            format!("{}: {}", p.param_path, p.err_msg),
        ),
        None => Failure::new(e.err_code, e.err_msg.clone()),
    }
}

/// Interprets the correlated response to `request`.
pub fn interpret(request: &Request, response: &Msg) -> Result<Reply, Failure> {
    let resp = match response.body.as_ref().and_then(|b| b.msg_body.as_ref()) {
        Some(body::MsgBody::Error(e)) => return Err(failure_from_error(e)),
        Some(body::MsgBody::Response(r)) => r.resp_type.as_ref(),
        _ => None,
    };
    let malformed = || {
        Failure::new(
            crate::errors::MESSAGE_FAILED,
            format!("malformed response to {}", request.name()),
        )
    };
    match (request, resp.ok_or_else(malformed)?) {
        (Request::Get { .. }, response::RespType::GetResp(r)) => {
            let (values, errors) = flatten_get_resp(r);
            match errors.into_iter().next() {
                Some(e) if values.is_empty() => Err(Failure::new(
                    e.code,
                    format!("{}: {}", e.requested_path, e.message),
                )),
                _ => Ok(Reply::Values(values)),
            }
        }
        (Request::Set { .. }, response::RespType::SetResp(r)) => set_reply(r),
        (Request::Add { .. }, response::RespType::AddResp(r)) => add_reply(r),
        (Request::Delete { .. }, response::RespType::DeleteResp(r)) => delete_reply(r),
        (Request::Operate { .. }, response::RespType::OperateResp(r)) => operate_reply(r),
        _ => Err(malformed()),
    }
}

fn set_reply(r: &crate::proto::msg::SetResp) -> Result<Reply, Failure> {
    use set_resp::updated_object_result::operation_status::OperStatus;
    let mut updated = Vec::new();
    for obj in &r.updated_obj_results {
        match obj
            .oper_status
            .as_ref()
            .and_then(|s| s.oper_status.as_ref())
        {
            Some(OperStatus::OperFailure(f)) => {
                let detail = f
                    .updated_inst_failures
                    .iter()
                    .flat_map(|i| i.param_errs.iter().map(move |p| (i, p)))
                    .next();
                return Err(match detail {
                    Some((inst, p)) => Failure::new(
                        if p.err_code != 0 {
                            p.err_code
                        } else {
                            f.err_code
                        },
                        format!("{}{}: {}", inst.affected_path, p.param, p.err_msg),
                    ),
                    None => Failure::new(f.err_code, f.err_msg.clone()),
                });
            }
            Some(OperStatus::OperSuccess(s)) => {
                for inst in &s.updated_inst_results {
                    if let Some(p) = inst.param_errs.first() {
                        return Err(Failure::new(
                            p.err_code,
                            format!("{}{}: {}", inst.affected_path, p.param, p.err_msg),
                        ));
                    }
                    for (param, value) in &inst.updated_params {
                        updated.push(PathValue {
                            path: format!("{}{}", inst.affected_path, param),
                            value: value.clone(),
                        });
                    }
                }
            }
            None => {
                return Err(Failure::new(
                    crate::errors::MESSAGE_FAILED,
                    format!("SetResp for {} has no status", obj.requested_path),
                ))
            }
        }
    }
    updated.sort();
    Ok(Reply::Set { updated })
}

fn add_reply(r: &crate::proto::msg::AddResp) -> Result<Reply, Failure> {
    use add_resp::created_object_result::operation_status::OperStatus;
    let first = r
        .created_obj_results
        .first()
        .ok_or_else(|| Failure::new(crate::errors::MESSAGE_FAILED, "AddResp has no result"))?;
    match first
        .oper_status
        .as_ref()
        .and_then(|s| s.oper_status.as_ref())
    {
        Some(OperStatus::OperSuccess(s)) => Ok(Reply::Added {
            instantiated_path: s.instantiated_path.clone(),
            unique_keys: s
                .unique_keys
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }),
        Some(OperStatus::OperFailure(f)) => Err(Failure::new(f.err_code, f.err_msg.clone())),
        None => Err(Failure::new(
            crate::errors::MESSAGE_FAILED,
            "AddResp has no status",
        )),
    }
}

fn delete_reply(r: &crate::proto::msg::DeleteResp) -> Result<Reply, Failure> {
    use delete_resp::deleted_object_result::operation_status::OperStatus;
    let mut affected = Vec::new();
    for obj in &r.deleted_obj_results {
        match obj
            .oper_status
            .as_ref()
            .and_then(|s| s.oper_status.as_ref())
        {
            Some(OperStatus::OperSuccess(s)) => {
                if let Some(e) = s.unaffected_path_errs.first() {
                    return Err(Failure::new(
                        e.err_code,
                        format!("{}: {}", e.unaffected_path, e.err_msg),
                    ));
                }
                affected.extend(s.affected_paths.iter().cloned());
            }
            Some(OperStatus::OperFailure(f)) => {
                return Err(Failure::new(f.err_code, f.err_msg.clone()))
            }
            None => {
                return Err(Failure::new(
                    crate::errors::MESSAGE_FAILED,
                    "DeleteResp has no status",
                ))
            }
        }
    }
    Ok(Reply::Deleted { affected })
}

fn operate_reply(r: &crate::proto::msg::OperateResp) -> Result<Reply, Failure> {
    use operate_resp::operation_result::OperationResp;
    let first = r
        .operation_results
        .first()
        .ok_or_else(|| Failure::new(crate::errors::MESSAGE_FAILED, "OperateResp has no result"))?;
    match first.operation_resp.as_ref() {
        Some(OperationResp::ReqObjPath(path)) => Ok(Reply::OperateStarted {
            request_path: path.clone(),
        }),
        Some(OperationResp::ReqOutputArgs(out)) => Ok(Reply::OperateDone {
            output_args: out
                .output_args
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }),
        Some(OperationResp::CmdFailure(f)) => Err(Failure::new(f.err_code, f.err_msg.clone())),
        None => Err(Failure::new(
            crate::errors::MESSAGE_FAILED,
            "OperateResp has no result",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::msg::{error, header, Body, Header, Response, SetResp};

    fn response_msg(resp: response::RespType, ty: header::MsgType) -> Msg {
        Msg {
            header: Some(Header {
                msg_id: "m".into(),
                msg_type: ty as i32,
            }),
            body: Some(Body {
                msg_body: Some(body::MsgBody::Response(Response {
                    resp_type: Some(resp),
                })),
            }),
        }
    }

    #[test]
    fn set_groups_parameters_by_object() {
        let mut params = BTreeMap::new();
        params.insert("Device.WiFi.SSID.1.SSID".to_string(), "a".to_string());
        params.insert("Device.WiFi.SSID.1.Enable".to_string(), "true".to_string());
        params.insert("Device.Time.Enable".to_string(), "false".to_string());
        let Request::Set { objects } = Request::set_params(&params) else {
            unreachable!()
        };
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0].0, "Device.Time.");
        assert_eq!(objects[1].0, "Device.WiFi.SSID.1.");
        assert_eq!(objects[1].1.len(), 2);
    }

    #[test]
    fn set_failures_carry_the_parameter_error() {
        let mut e = crate::msg::error("m", crate::errors::INVALID_ARGUMENTS, "invalid");
        if let Some(body::MsgBody::Error(err)) = e.body.as_mut().and_then(|b| b.msg_body.as_mut()) {
            err.param_errs.push(error::ParamError {
                param_path: "Device.WiFi.SSID.1.Name".into(),
                err_code: 7013,
                err_msg: "read only".into(),
            });
        }
        let req = Request::set_params(&BTreeMap::new());
        assert_eq!(
            interpret(&req, &e),
            Err(Failure::new(7013, "Device.WiFi.SSID.1.Name: read only"))
        );
        use set_resp::updated_object_result::{operation_status, OperationStatus};
        let ok = response_msg(
            response::RespType::SetResp(SetResp {
                updated_obj_results: vec![set_resp::UpdatedObjectResult {
                    requested_path: "Device.WiFi.SSID.1.".into(),
                    oper_status: Some(OperationStatus {
                        oper_status: Some(operation_status::OperStatus::OperSuccess(
                            operation_status::OperationSuccess {
                                updated_inst_results: vec![set_resp::UpdatedInstanceResult {
                                    affected_path: "Device.WiFi.SSID.1.".into(),
                                    param_errs: vec![],
                                    updated_params: [("SSID".to_string(), "a".to_string())]
                                        .into_iter()
                                        .collect(),
                                }],
                            },
                        )),
                    }),
                }],
            }),
            header::MsgType::SetResp,
        );
        assert_eq!(
            interpret(&req, &ok),
            Ok(Reply::Set {
                updated: vec![PathValue {
                    path: "Device.WiFi.SSID.1.SSID".into(),
                    value: "a".into()
                }]
            })
        );
        // A response of the wrong kind is a failure, not a panic.
        let get = Request::Get {
            paths: vec![],
            max_depth: 0,
        };
        assert_eq!(interpret(&get, &ok).unwrap_err().code, 7000);
    }

    #[test]
    fn operate_sync_async_and_failure() {
        use crate::proto::msg::OperateResp;
        let op = Request::Operate {
            command: "Device.Reboot()".into(),
            command_key: "k".into(),
            args: HashMap::new(),
        };
        let with = |resp| {
            response_msg(
                response::RespType::OperateResp(OperateResp {
                    operation_results: vec![operate_resp::OperationResult {
                        executed_command: "Device.Reboot()".into(),
                        operation_resp: Some(resp),
                    }],
                }),
                header::MsgType::OperateResp,
            )
        };
        use operate_resp::operation_result::{CommandFailure, OperationResp};
        assert_eq!(
            interpret(
                &op,
                &with(OperationResp::ReqObjPath(
                    "Device.LocalAgent.Request.1.".into()
                ))
            ),
            Ok(Reply::OperateStarted {
                request_path: "Device.LocalAgent.Request.1.".into()
            })
        );
        assert_eq!(
            interpret(
                &op,
                &with(OperationResp::CmdFailure(CommandFailure {
                    err_code: 7022,
                    err_msg: "busy".into()
                }))
            ),
            Err(Failure::new(7022, "busy"))
        );
    }
}
