//! Builders for the Msgs a controller sends (TR-369 §7: Get, Set, Add, Delete, Operate,
//! GetSupportedDM, GetInstances, GetSupportedProtocol, NotifyResp), each with its header type
//! set as the spec pairs them.

use crate::proto::msg::{
    add, body, header, request, response, set, Add, Body, Delete, Error, Get, GetInstances,
    GetSupportedDm, GetSupportedProtocol, Header, Msg, NotifyResp, Operate, Request, Response, Set,
};
use std::collections::HashMap;

/// The USP versions this controller speaks (GetSupportedProtocol, TR-369 §7.6.8).
pub const CONTROLLER_SUPPORTED_VERSIONS: &str = "1.0,1.1,1.2,1.3,1.4";

fn request(msg_id: &str, msg_type: header::MsgType, req: request::ReqType) -> Msg {
    Msg {
        header: Some(Header {
            msg_id: msg_id.into(),
            msg_type: msg_type as i32,
        }),
        body: Some(Body {
            msg_body: Some(body::MsgBody::Request(Request {
                req_type: Some(req),
            })),
        }),
    }
}

pub fn get(msg_id: &str, paths: &[String], max_depth: u32) -> Msg {
    request(
        msg_id,
        header::MsgType::Get,
        request::ReqType::Get(Get {
            param_paths: paths.to_vec(),
            max_depth,
        }),
    )
}

/// One object's parameters to set: `(object path, [(parameter, value, required)])`.
pub type SetObject = (String, Vec<(String, String, bool)>);

pub fn set(msg_id: &str, allow_partial: bool, objects: &[SetObject]) -> Msg {
    let update_objs = objects
        .iter()
        .map(|(obj_path, params)| set::UpdateObject {
            obj_path: obj_path.clone(),
            param_settings: params
                .iter()
                .map(|(param, value, required)| set::UpdateParamSetting {
                    param: param.clone(),
                    value: value.clone(),
                    required: *required,
                })
                .collect(),
        })
        .collect();
    request(
        msg_id,
        header::MsgType::Set,
        request::ReqType::Set(Set {
            allow_partial,
            update_objs,
        }),
    )
}

/// One object to create: `(parameter, value, required)` settings.
pub fn create_object(obj_path: &str, params: &[(String, String, bool)]) -> add::CreateObject {
    add::CreateObject {
        obj_path: obj_path.into(),
        param_settings: params
            .iter()
            .map(|(param, value, required)| add::CreateParamSetting {
                param: param.clone(),
                value: value.clone(),
                required: *required,
            })
            .collect(),
    }
}

pub fn add(
    msg_id: &str,
    allow_partial: bool,
    obj_path: &str,
    params: &[(String, String, bool)],
) -> Msg {
    add_many(msg_id, allow_partial, vec![create_object(obj_path, params)])
}

/// An Add of several objects in one Msg (e.g. subscriptions, with `allow_partial`).
pub fn add_many(msg_id: &str, allow_partial: bool, create_objs: Vec<add::CreateObject>) -> Msg {
    request(
        msg_id,
        header::MsgType::Add,
        request::ReqType::Add(Add {
            allow_partial,
            create_objs,
        }),
    )
}

pub fn delete(msg_id: &str, allow_partial: bool, obj_paths: &[String]) -> Msg {
    request(
        msg_id,
        header::MsgType::Delete,
        request::ReqType::Delete(Delete {
            allow_partial,
            obj_paths: obj_paths.to_vec(),
        }),
    )
}

/// Operate (TR-369 §7.6.4). With `send_resp` the agent answers at once (sync commands return
/// output arguments, async ones a request path) and, for async commands, an OperationComplete
/// Notify follows if the controller subscribed to it.
pub fn operate(
    msg_id: &str,
    command: &str,
    command_key: &str,
    send_resp: bool,
    input_args: HashMap<String, String>,
) -> Msg {
    request(
        msg_id,
        header::MsgType::Operate,
        request::ReqType::Operate(Operate {
            command: command.into(),
            command_key: command_key.into(),
            send_resp,
            input_args,
        }),
    )
}

pub fn get_supported_dm(msg_id: &str, obj_paths: &[String], first_level_only: bool) -> Msg {
    request(
        msg_id,
        header::MsgType::GetSupportedDm,
        request::ReqType::GetSupportedDm(GetSupportedDm {
            obj_paths: obj_paths.to_vec(),
            first_level_only,
            return_commands: true,
            return_events: true,
            return_params: true,
            return_unique_key_sets: true,
        }),
    )
}

pub fn get_instances(msg_id: &str, obj_paths: &[String], first_level_only: bool) -> Msg {
    request(
        msg_id,
        header::MsgType::GetInstances,
        request::ReqType::GetInstances(GetInstances {
            obj_paths: obj_paths.to_vec(),
            first_level_only,
        }),
    )
}

pub fn get_supported_protocol(msg_id: &str) -> Msg {
    request(
        msg_id,
        header::MsgType::GetSupportedProto,
        request::ReqType::GetSupportedProtocol(GetSupportedProtocol {
            controller_supported_protocol_versions: CONTROLLER_SUPPORTED_VERSIONS.into(),
        }),
    )
}

/// The response to a Notify with `send_resp` set: same msg_id, echoing the subscription id.
pub fn notify_resp(msg_id: &str, subscription_id: &str) -> Msg {
    Msg {
        header: Some(Header {
            msg_id: msg_id.into(),
            msg_type: header::MsgType::NotifyResp as i32,
        }),
        body: Some(Body {
            msg_body: Some(body::MsgBody::Response(Response {
                resp_type: Some(response::RespType::NotifyResp(NotifyResp {
                    subscription_id: subscription_id.into(),
                })),
            })),
        }),
    }
}

/// An Error answering a request the controller cannot serve (TR-369 §7.7, e.g. 7000, 7004).
pub fn error(msg_id: &str, err_code: u32, err_msg: &str) -> Msg {
    Msg {
        header: Some(Header {
            msg_id: msg_id.into(),
            msg_type: header::MsgType::Error as i32,
        }),
        body: Some(Body {
            msg_body: Some(body::MsgBody::Error(Error {
                err_code,
                err_msg: err_msg.into(),
                param_errs: vec![],
            })),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn builders_pair_header_types_with_bodies_and_round_trip() {
        let cases = [
            (get("1", &["Device.".into()], 0), header::MsgType::Get),
            (
                set(
                    "2",
                    false,
                    &[(
                        "Device.WiFi.SSID.1.".into(),
                        vec![("SSID".into(), "x".into(), true)],
                    )],
                ),
                header::MsgType::Set,
            ),
            (
                add("3", false, "Device.NAT.PortMapping.", &[]),
                header::MsgType::Add,
            ),
            (
                delete("4", false, &["Device.NAT.PortMapping.2.".into()]),
                header::MsgType::Delete,
            ),
            (
                operate("5", "Device.Reboot()", "k", true, HashMap::new()),
                header::MsgType::Operate,
            ),
            (
                get_supported_dm("6", &["Device.".into()], false),
                header::MsgType::GetSupportedDm,
            ),
            (
                get_instances("7", &["Device.".into()], false),
                header::MsgType::GetInstances,
            ),
            (
                get_supported_protocol("8"),
                header::MsgType::GetSupportedProto,
            ),
            (notify_resp("9", "sub-1"), header::MsgType::NotifyResp),
            (error("10", 7000, "nope"), header::MsgType::Error),
        ];
        for (msg, ty) in cases {
            assert_eq!(msg.header.as_ref().unwrap().msg_type, ty as i32);
            let bytes = msg.encode_to_vec();
            assert_eq!(Msg::decode(bytes.as_slice()).unwrap(), msg);
        }
    }
}
