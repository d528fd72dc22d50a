//! The session against hand-built agent answers, on a virtual clock.

use super::*;
use crate::proto::msg::{
    get_resp, get_supported_dm_resp as gsdm, notify, request, Body, GetResp, GetSupportedDmResp,
    GetSupportedProtocolResp, Header, Notify, Request as UspRequest, Response,
};
use crate::subscription_support::supported_object;
use std::collections::HashMap;

const ME: &str = "self::radar";

fn session() -> AgentSession {
    AgentSession::new(
        Arc::new(SessionConfig {
            controller_id: ME.into(),
            request_timeout_ms: 1_000,
            subscriptions: vec![
                Desired::new(subscriptions::NotifType::ValueChange, "Device.WiFi.SSID."),
                Desired::new(subscriptions::NotifType::Event, "Device.Boot!"),
            ],
            root: "Device.".into(),
            liveness_timeout_ms: 500,
        }),
        "t",
    )
}

fn drain(s: &mut AgentSession) -> Vec<Output> {
    std::iter::from_fn(|| s.poll_output()).collect()
}

fn sent(outputs: &[Output]) -> Vec<&Msg> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send(m) | Output::SendOperation { msg: m, .. } => Some(m),
            _ => None,
        })
        .collect()
}

fn id_of(m: &Msg) -> String {
    m.header.as_ref().unwrap().msg_id.clone()
}

fn req_of(m: &Msg) -> &request::ReqType {
    match m.body.as_ref().unwrap().msg_body.as_ref().unwrap() {
        body::MsgBody::Request(r) => r.req_type.as_ref().unwrap(),
        other => panic!("{other:?}"),
    }
}

fn response(id: &str, ty: header::MsgType, resp: response::RespType) -> Msg {
    Msg {
        header: Some(Header {
            msg_id: id.into(),
            msg_type: ty as i32,
        }),
        body: Some(Body {
            msg_body: Some(body::MsgBody::Response(Response {
                resp_type: Some(resp),
            })),
        }),
    }
}

fn get_resp(id: &str, requested: &str, objects: &[(&str, &[(&str, &str)])]) -> Msg {
    response(
        id,
        header::MsgType::GetResp,
        response::RespType::GetResp(GetResp {
            req_path_results: vec![get_resp::RequestedPathResult {
                requested_path: requested.into(),
                err_code: 0,
                err_msg: String::new(),
                resolved_path_results: objects
                    .iter()
                    .map(|(path, params)| get_resp::ResolvedPathResult {
                        resolved_path: (*path).into(),
                        result_params: params
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                    })
                    .collect(),
            }],
        }),
    )
}

/// A GetSupportedDMResp: per requested path, an error code or the objects found.
fn support_resp(id: &str, results: Vec<(&str, u32, Vec<gsdm::SupportedObjectResult>)>) -> Msg {
    response(
        id,
        header::MsgType::GetSupportedDmResp,
        response::RespType::GetSupportedDmResp(GetSupportedDmResp {
            req_obj_results: results
                .into_iter()
                .map(|(path, err, objs)| gsdm::RequestedObjectResult {
                    req_obj_path: path.into(),
                    err_code: err,
                    supported_objs: objs,
                    ..Default::default()
                })
                .collect(),
        }),
    )
}

/// What `session()`'s agent supports: Boot! and the SSID table.
fn support_for_session(id: &str) -> Msg {
    support_resp(
        id,
        vec![
            (
                "Device.",
                0,
                vec![supported_object("Device.", false, &[], &["Boot!"])],
            ),
            (
                "Device.WiFi.SSID.",
                0,
                vec![supported_object("Device.WiFi.SSID.{i}.", true, &[], &[])],
            ),
        ],
    )
}

fn controller_table(id: &str) -> Msg {
    get_resp(
        id,
        "Device.LocalAgent.",
        &[("Device.LocalAgent.Controller.1.", &[("EndpointID", ME)])],
    )
}

use crate::proto::msg::add_resp::{
    created_object_result::{
        operation_status::{OperStatus, OperationFailure, OperationSuccess},
        OperationStatus,
    },
    CreatedObjectResult,
};

fn add_result(status: OperStatus) -> CreatedObjectResult {
    CreatedObjectResult {
        requested_path: subscriptions::SUBSCRIPTION_TABLE.into(),
        oper_status: Some(OperationStatus {
            oper_status: Some(status),
        }),
    }
}

fn add_ok(instance: u32) -> CreatedObjectResult {
    add_result(OperStatus::OperSuccess(OperationSuccess {
        instantiated_path: format!("Device.LocalAgent.Subscription.{instance}."),
        ..Default::default()
    }))
}

fn add_failed(code: u32, message: &str) -> CreatedObjectResult {
    add_result(OperStatus::OperFailure(OperationFailure {
        err_code: code,
        err_msg: message.into(),
    }))
}

fn add_resp(id: &str, results: Vec<CreatedObjectResult>) -> Msg {
    response(
        id,
        header::MsgType::AddResp,
        response::RespType::AddResp(crate::proto::msg::AddResp {
            created_obj_results: results,
        }),
    )
}

fn subscription_reports(out: &[Output]) -> Vec<Report> {
    out.iter()
        .find_map(|o| match o {
            Output::Event(SessionEvent::Subscriptions { reports, .. }) => Some(reports.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no subscription report in {out:?}"))
}

/// Connects without discovery and answers everything up to the point where work is asked for.
fn connected_and_ready(s: &mut AgentSession) {
    s.handle(
        Timestamp(0),
        Input::Connected(Sync::Resync { subtrees: vec![] }),
    );
    let out = drain(s);
    let msgs = sent(&out);
    assert_eq!(msgs.len(), 4, "{out:?}");
    let (gsp, table, support, sync) = (
        id_of(msgs[0]),
        id_of(msgs[1]),
        id_of(msgs[2]),
        id_of(msgs[3]),
    );
    assert!(
        matches!(req_of(msgs[2]), request::ReqType::GetSupportedDm(g) if g.first_level_only && g.obj_paths == ["Device.", "Device.WiFi.SSID."])
    );
    s.handle(
        Timestamp(1),
        Input::Msg(response(
            &gsp,
            header::MsgType::GetSupportedProtoResp,
            response::RespType::GetSupportedProtocolResp(GetSupportedProtocolResp {
                agent_supported_protocol_versions: "1.3".into(),
            }),
        )),
    );
    s.handle(Timestamp(1), Input::Msg(controller_table(&table)));
    assert!(sent(&drain(s)).is_empty(), "waits for the data model check");
    s.handle(Timestamp(1), Input::Msg(support_for_session(&support)));
    let out = drain(s);
    let add = sent(&out)[0];
    let add_id = id_of(add);
    assert!(
        matches!(req_of(add), request::ReqType::Add(a) if a.allow_partial && a.create_objs.len() == 2)
    );
    s.handle(
        Timestamp(2),
        Input::Msg(add_resp(
            &add_id,
            vec![add_ok(1), add_failed(7005, "resources exceeded")],
        )),
    );
    let out = drain(s);
    let reports = subscription_reports(&out);
    assert_eq!(
        reports[0].standing,
        subscriptions::Standing::InPlace {
            note: String::new()
        }
    );
    assert!(
        matches!(
            &reports[1].standing,
            subscriptions::Standing::Refused { code: 7005, .. }
        ),
        "{reports:?}"
    );
    assert!(
        !out.contains(&Output::NeedWork),
        "work waits for the data model read"
    );
    s.handle(
        Timestamp(3),
        Input::Msg(get_resp(
            &sync,
            "Device.",
            &[("Device.WiFi.SSID.1.", &[("SSID", "home")])],
        )),
    );
    let out = drain(s);
    assert!(out.iter().any(|o| matches!(o, Output::Event(SessionEvent::Values { source: ValueSource::Sync, snapshot: Some(Snapshot { complete: true, .. }), values }) if values[0].path == "Device.WiFi.SSID.1.SSID")), "{out:?}");
    assert_eq!(out.last(), Some(&Output::NeedWork));
    assert!(s.is_ready());
}

#[test]
fn connect_reconciles_subscriptions_reads_the_model_then_asks_for_work() {
    let mut s = session();
    connected_and_ready(&mut s);
}

#[test]
fn first_contact_reads_the_schema_and_types_the_values() {
    let mut s = session();
    s.handle(Timestamp(0), Input::Connected(Sync::Discover));
    let out = drain(&mut s);
    let msgs = sent(&out);
    assert!(matches!(
        req_of(msgs[3]),
        request::ReqType::GetSupportedDm(g) if g.obj_paths == ["Device."] && !g.first_level_only
    ));
    let gsdm_id = id_of(msgs[3]);
    s.handle(
        Timestamp(1),
        Input::Msg(response(
            &gsdm_id,
            header::MsgType::GetSupportedDmResp,
            response::RespType::GetSupportedDmResp(GetSupportedDmResp {
                req_obj_results: vec![gsdm::RequestedObjectResult {
                    req_obj_path: "Device.".into(),
                    supported_objs: vec![
                        gsdm::SupportedObjectResult {
                            supported_obj_path: "Device.DeviceInfo.".into(),
                            supported_params: vec![gsdm::SupportedParamResult {
                                param_name: "UpTime".into(),
                                access: gsdm::ParamAccessType::ParamReadOnly as i32,
                                value_type: gsdm::ParamValueType::ParamUnsignedInt as i32,
                                ..Default::default()
                            }],
                            ..Default::default()
                        },
                        gsdm::SupportedObjectResult {
                            supported_obj_path: "Device.Time.".into(),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
            }),
        )),
    );
    let out = drain(&mut s);
    let chunks: Vec<_> = sent(&out)
        .iter()
        .map(|m| match req_of(m) {
            request::ReqType::Get(g) => g.param_paths[0].clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(chunks, ["Device.DeviceInfo.", "Device.Time."]);
    let ids: Vec<String> = sent(&out).iter().map(|m| id_of(m)).collect();
    s.handle(
        Timestamp(2),
        Input::Msg(get_resp(
            &ids[0],
            "Device.DeviceInfo.",
            &[("Device.DeviceInfo.", &[("UpTime", "42")])],
        )),
    );
    let out = drain(&mut s);
    match &out[0] {
        Output::Event(SessionEvent::Values {
            values, snapshot, ..
        }) => {
            assert_eq!(
                values[0].schema.unwrap().ty,
                radar_core::ParamType::UnsignedInt
            );
            assert!(!values[0].schema.unwrap().writable);
            assert!(!snapshot.as_ref().unwrap().complete);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn operations_go_one_at_a_time_and_failures_carry_the_usp_code() {
    let mut s = session();
    connected_and_ready(&mut s);
    let mut params = std::collections::BTreeMap::new();
    params.insert("Device.WiFi.SSID.1.SSID".to_string(), "x".to_string());
    s.handle(
        Timestamp(10),
        Input::Work(Some(OutgoingOperation {
            id: 7,
            request: Request::set_params(&params),
        })),
    );
    let out = drain(&mut s);
    let Output::SendOperation { id: 7, msg } = &out[0] else {
        panic!("{out:?}")
    };
    let set_id = id_of(msg);
    // A wake while the operation is in flight asks for nothing.
    s.handle(Timestamp(11), Input::Wake);
    assert!(drain(&mut s).is_empty());
    s.handle(
        Timestamp(12),
        Input::Msg(crate::msg::error(&set_id, 7013, "read only")),
    );
    let out = drain(&mut s);
    assert!(
        matches!(&out[0], Output::Event(SessionEvent::Completed { id: 7, result: Err(f), .. }) if f.code == 7013)
    );
    assert_eq!(out[1], Output::NeedWork);
    s.handle(Timestamp(13), Input::Work(None));
    assert!(drain(&mut s).is_empty());
    s.handle(Timestamp(14), Input::Wake);
    assert_eq!(drain(&mut s), vec![Output::NeedWork]);
}

#[test]
fn a_silent_agent_times_out_the_operation_and_it_is_requeued() {
    let mut s = session();
    connected_and_ready(&mut s);
    s.handle(
        Timestamp(10),
        Input::Work(Some(OutgoingOperation {
            id: 3,
            request: Request::Operate {
                command: "Device.Reboot()".into(),
                command_key: "radar-op-3".into(),
                args: HashMap::new(),
            },
        })),
    );
    let out = drain(&mut s);
    let Output::SendOperation { msg, .. } = &out[0] else {
        panic!()
    };
    let late = id_of(msg);
    assert_eq!(s.poll_timeout(), Some(Timestamp(1010)));
    s.handle_timeout(Timestamp(1010));
    let out = drain(&mut s);
    assert_eq!(out[0], Output::Event(SessionEvent::Requeue { id: 3 }));
    assert!(matches!(out[1], Output::Close { .. }));
    // The late answer is reported, not fatal.
    s.handle(
        Timestamp(1020),
        Input::Msg(crate::msg::error(&late, 7003, "x")),
    );
    assert!(matches!(
        &drain(&mut s)[0],
        Output::Event(SessionEvent::Ignored { .. })
    ));
}

#[test]
fn a_disconnect_requeues_the_operation_in_flight() {
    let mut s = session();
    connected_and_ready(&mut s);
    s.handle(
        Timestamp(10),
        Input::Work(Some(OutgoingOperation {
            id: 9,
            request: Request::Delete {
                paths: vec!["Device.NAT.PortMapping.1.".into()],
            },
        })),
    );
    drain(&mut s);
    s.handle(Timestamp(11), Input::Disconnected);
    assert_eq!(
        drain(&mut s),
        vec![Output::Event(SessionEvent::Requeue { id: 9 })]
    );
}

#[test]
fn notifies_are_applied_then_acknowledged_and_created_objects_are_read() {
    let mut s = session();
    connected_and_ready(&mut s);
    let notify_msg = |id: &str, send_resp: bool, n: notify::Notification| Msg {
        header: Some(Header {
            msg_id: id.into(),
            msg_type: header::MsgType::Notify as i32,
        }),
        body: Some(Body {
            msg_body: Some(body::MsgBody::Request(UspRequest {
                req_type: Some(request::ReqType::Notify(Notify {
                    subscription_id: "radar-vc-1".into(),
                    send_resp,
                    notification: Some(n),
                })),
            })),
        }),
    };
    s.handle(
        Timestamp(20),
        Input::Msg(notify_msg(
            "n1",
            true,
            notify::Notification::ValueChange(notify::ValueChange {
                param_path: "Device.WiFi.SSID.1.SSID".into(),
                param_value: "new".into(),
            }),
        )),
    );
    match &drain(&mut s)[..] {
        [Output::Notification {
            event:
                SessionEvent::Values {
                    source: ValueSource::Notify,
                    values,
                    ..
                },
            respond: Some(resp),
        }] => {
            assert_eq!(values[0].value, "new");
            assert_eq!(id_of(resp), "n1");
        }
        other => panic!("{other:?}"),
    }
    s.handle(
        Timestamp(21),
        Input::Msg(notify_msg(
            "n2",
            false,
            notify::Notification::ObjCreation(notify::ObjectCreation {
                obj_path: "Device.Hosts.Host.4.".into(),
                unique_keys: HashMap::new(),
            }),
        )),
    );
    let out = drain(&mut s);
    assert!(
        matches!(&out[0], Output::Notification { respond: None, event: SessionEvent::ObjectCreated { path, .. } } if path == "Device.Hosts.Host.4.")
    );
    assert!(
        matches!(req_of(sent(&out)[0]), request::ReqType::Get(g) if g.param_paths == ["Device.Hosts.Host.4."])
    );
    s.handle(
        Timestamp(22),
        Input::Msg(notify_msg(
            "n3",
            true,
            notify::Notification::OperComplete(notify::OperationComplete {
                obj_path: "Device.DeviceInfo.FirmwareImage.2.".into(),
                command_name: "Download()".into(),
                command_key: "radar-op-5".into(),
                operation_resp: Some(notify::operation_complete::OperationResp::CmdFailure(
                    notify::operation_complete::CommandFailure {
                        err_code: 7022,
                        err_msg: "bad image".into(),
                    },
                )),
            }),
        )),
    );
    assert!(
        matches!(&drain(&mut s)[0], Output::Notification { event: SessionEvent::OperationComplete { command, command_key, result: Err(f) }, .. } if command == "Device.DeviceInfo.FirmwareImage.2.Download()" && command_key == "radar-op-5" && f.code == 7022)
    );
}

#[test]
fn requests_from_the_agent_get_error_7001_and_garbage_is_ignored() {
    let mut s = session();
    s.handle(
        Timestamp(0),
        Input::Msg(crate::msg::get("a1", &["Device.".into()], 0)),
    );
    let out = drain(&mut s);
    assert!(matches!(&out[0], Output::Send(m) if id_of(m) == "a1"));
    s.handle(Timestamp(0), Input::Msg(Msg::default()));
    assert!(matches!(
        &drain(&mut s)[0],
        Output::Event(SessionEvent::Ignored { .. })
    ));
}

#[test]
fn an_agent_without_our_controller_entry_gets_no_subscriptions_but_still_works() {
    let mut s = session();
    s.handle(
        Timestamp(0),
        Input::Connected(Sync::Resync { subtrees: vec![] }),
    );
    let out = drain(&mut s);
    let msgs = sent(&out);
    let (table, support, sync) = (id_of(msgs[1]), id_of(msgs[2]), id_of(msgs[3]));
    s.handle(
        Timestamp(1),
        Input::Msg(get_resp(&table, "Device.LocalAgent.", &[])),
    );
    s.handle(Timestamp(1), Input::Msg(support_for_session(&support)));
    let out = drain(&mut s);
    assert!(matches!(
        &out[0],
        Output::Event(SessionEvent::RequestFailed {
            what: "subscriptions",
            ..
        })
    ));
    s.handle(Timestamp(1), Input::Msg(get_resp(&sync, "Device.", &[])));
    assert_eq!(drain(&mut s).last(), Some(&Output::NeedWork));
}

#[test]
fn a_reconnect_reads_the_known_subtrees_one_get_each() {
    let mut s = session();
    s.handle(
        Timestamp(0),
        Input::Connected(Sync::Resync {
            subtrees: vec!["Device.DeviceInfo.".into(), "Device.WiFi.".into()],
        }),
    );
    let out = drain(&mut s);
    let gets: Vec<Vec<String>> = sent(&out)[3..]
        .iter()
        .map(|m| match req_of(m) {
            request::ReqType::Get(g) => g.param_paths.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        gets,
        vec![
            vec!["Device.DeviceInfo.".to_string()],
            vec!["Device.WiFi.".to_string()]
        ]
    );
}

#[test]
fn a_quiet_agent_is_probed_and_one_that_never_answers_is_closed() {
    let mut s = session();
    connected_and_ready(&mut s);
    s.handle(Timestamp(100), Input::CheckAlive);
    let out = drain(&mut s);
    let probe = sent(&out)[0].clone();
    assert!(matches!(req_of(&probe), request::ReqType::Get(g) if g.param_paths == [LIVENESS_PATH]));
    // Any answer, even an Error, shows it is there.
    s.handle(
        Timestamp(200),
        Input::Msg(crate::msg::error(&id_of(&probe), 7000, "whatever")),
    );
    assert!(!drain(&mut s)
        .iter()
        .any(|o| matches!(o, Output::Close { .. })));
    assert!(!s.awaiting_answers());
    // No answer within the liveness deadline (500 ms here, not the 1 s request timeout).
    s.handle(Timestamp(1_000), Input::CheckAlive);
    assert_eq!(sent(&drain(&mut s)).len(), 1);
    s.handle_timeout(Timestamp(1_501));
    assert!(drain(&mut s)
        .iter()
        .any(|o| matches!(o, Output::Close { reason } if reason.contains("liveness"))),);
}

/// The subscription check against agents that have little of a home gateway's model.
mod subscription_check;
