//! What an agent's Msg means to the controller: a Notify to apply (and maybe acknowledge), a
//! response or Error to correlate, or a request the controller does not serve. Plus the
//! flattening of a GetResp into full parameter paths for the twin.

use crate::proto::msg::{body, get_resp, header, notify, request, GetResp, Msg};

#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// A Notify; answer with NotifyResp (same msg_id) when `send_resp` is set, after applying it.
    Notify {
        msg_id: String,
        subscription_id: String,
        send_resp: bool,
        notification: Option<notify::Notification>,
    },
    /// A response or an Error: hand it to the correlator.
    Response(Box<Msg>),
    /// Any other request (agents may not send Get/Set to a controller that offers no data model):
    /// answer with Error 7000 / 7004.
    UnsupportedRequest { msg_id: String, msg_type: i32 },
    /// No header or no body: answer nothing, log.
    Malformed { reason: &'static str },
}

pub fn classify(msg: Msg) -> Inbound {
    let Some(header) = msg.header.as_ref() else {
        return Inbound::Malformed {
            reason: "msg has no header",
        };
    };
    let msg_id = header.msg_id.clone();
    let msg_type = header.msg_type;
    match msg.body.as_ref().and_then(|b| b.msg_body.as_ref()) {
        None => Inbound::Malformed {
            reason: "msg has no body",
        },
        Some(body::MsgBody::Request(req)) => match &req.req_type {
            Some(request::ReqType::Notify(n)) => Inbound::Notify {
                msg_id,
                subscription_id: n.subscription_id.clone(),
                send_resp: n.send_resp,
                notification: n.notification.clone(),
            },
            _ => Inbound::UnsupportedRequest { msg_id, msg_type },
        },
        Some(body::MsgBody::Response(_)) | Some(body::MsgBody::Error(_)) => {
            Inbound::Response(Box::new(msg))
        }
    }
}

/// One value from a GetResp: full path and value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PathValue {
    pub path: String,
    pub value: String,
}

/// A requested path the agent could not serve (e.g. 7026 invalid path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError {
    pub requested_path: String,
    pub code: u32,
    pub message: String,
}

/// Flattens a GetResp: `resolved_path` + parameter name for every result, sorted by path.
pub fn flatten_get_resp(resp: &GetResp) -> (Vec<PathValue>, Vec<PathError>) {
    let mut values = Vec::new();
    let mut errors = Vec::new();
    for requested in &resp.req_path_results {
        if requested.err_code != 0 {
            errors.push(PathError {
                requested_path: requested.requested_path.clone(),
                code: requested.err_code,
                message: requested.err_msg.clone(),
            });
            continue;
        }
        for get_resp::ResolvedPathResult {
            resolved_path,
            result_params,
        } in &requested.resolved_path_results
        {
            for (name, value) in result_params {
                values.push(PathValue {
                    path: format!("{resolved_path}{name}"),
                    value: value.clone(),
                });
            }
        }
    }
    values.sort();
    values.dedup_by(|a, b| a.path == b.path);
    (values, errors)
}

/// The header type a response to `request_type` must carry (for the correlator).
pub fn expected_response(request_type: header::MsgType) -> Option<header::MsgType> {
    use header::MsgType::*;
    Some(match request_type {
        Get => GetResp,
        Set => SetResp,
        Add => AddResp,
        Delete => DeleteResp,
        Operate => OperateResp,
        GetSupportedDm => GetSupportedDmResp,
        GetInstances => GetInstancesResp,
        GetSupportedProto => GetSupportedProtoResp,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::msg::{Body, Header, Notify, Request};
    use std::collections::HashMap;

    fn notify_msg(send_resp: bool) -> Msg {
        Msg {
            header: Some(Header {
                msg_id: "n1".into(),
                msg_type: header::MsgType::Notify as i32,
            }),
            body: Some(Body {
                msg_body: Some(body::MsgBody::Request(Request {
                    req_type: Some(request::ReqType::Notify(Notify {
                        subscription_id: "radar-vc-1".into(),
                        send_resp,
                        notification: Some(notify::Notification::ValueChange(
                            notify::ValueChange {
                                param_path: "Device.WiFi.SSID.1.SSID".into(),
                                param_value: "x".into(),
                            },
                        )),
                    })),
                })),
            }),
        }
    }

    #[test]
    fn notifies_responses_and_strangers() {
        match classify(notify_msg(true)) {
            Inbound::Notify {
                msg_id,
                subscription_id,
                send_resp: true,
                notification: Some(notify::Notification::ValueChange(vc)),
            } => {
                assert_eq!(
                    (
                        msg_id.as_str(),
                        subscription_id.as_str(),
                        vc.param_value.as_str()
                    ),
                    ("n1", "radar-vc-1", "x")
                );
            }
            other => panic!("{other:?}"),
        }
        let get = crate::msg::get("g1", &["Device.".into()], 0);
        assert_eq!(
            classify(get),
            Inbound::UnsupportedRequest {
                msg_id: "g1".into(),
                msg_type: header::MsgType::Get as i32
            }
        );
        let err = crate::msg::error("e1", 7002, "x");
        assert!(matches!(classify(err), Inbound::Response(_)));
        assert_eq!(
            classify(Msg::default()),
            Inbound::Malformed {
                reason: "msg has no header"
            }
        );
    }

    #[test]
    fn get_resp_flattens_to_full_paths_with_errors_apart() {
        let mut params = HashMap::new();
        params.insert("SSID".to_string(), "home".to_string());
        params.insert("Enable".to_string(), "true".to_string());
        let resp = GetResp {
            req_path_results: vec![
                get_resp::RequestedPathResult {
                    requested_path: "Device.WiFi.SSID.".into(),
                    err_code: 0,
                    err_msg: String::new(),
                    resolved_path_results: vec![get_resp::ResolvedPathResult {
                        resolved_path: "Device.WiFi.SSID.1.".into(),
                        result_params: params,
                    }],
                },
                get_resp::RequestedPathResult {
                    requested_path: "Device.Nope.".into(),
                    err_code: 7026,
                    err_msg: "Invalid path".into(),
                    resolved_path_results: vec![],
                },
            ],
        };
        let (values, errors) = flatten_get_resp(&resp);
        let paths: Vec<&str> = values.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(
            paths,
            ["Device.WiFi.SSID.1.Enable", "Device.WiFi.SSID.1.SSID"]
        );
        assert_eq!(
            errors,
            vec![PathError {
                requested_path: "Device.Nope.".into(),
                code: 7026,
                message: "Invalid path".into()
            }]
        );
        assert_eq!(
            expected_response(header::MsgType::Operate),
            Some(header::MsgType::OperateResp)
        );
        assert_eq!(expected_response(header::MsgType::Notify), None);
    }
}
