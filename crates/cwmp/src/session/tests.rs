//! Session tests: a simulated CPE built from the same codec drives the ACS session with a virtual
//! clock, and the tests assert on the session's outputs.

use super::*;
use crate::rpc::get_parameter_names::{GetParameterNamesResponse, ParameterInfo};
use crate::rpc::get_parameter_values::GetParameterValuesResponse;
use crate::rpc::inform::{DeviceIdStruct, EventStruct};
use crate::rpc::reboot::{Reboot, RebootResponse};
use crate::rpc::transfer_complete::TransferComplete;

const T0: Timestamp = Timestamp(1_000_000);

fn inform_body(events: &[&str]) -> String {
    let inform = Inform {
        device_id: DeviceIdStruct {
            manufacturer: "Acme".into(),
            oui: "00d09e".into(),
            product_class: "HG".into(),
            serial_number: "SN1".into(),
        },
        events: events
            .iter()
            .map(|c| EventStruct {
                code: (*c).into(),
                command_key: String::new(),
            })
            .collect(),
        max_envelopes: 1,
        current_time: "2026-01-01T00:00:00Z".into(),
        retry_count: 0,
        parameters: vec![ParameterValue::new(
            "Device.DeviceInfo.SoftwareVersion",
            "1.0",
            "xsd:string",
        )],
    };
    Envelope::new(
        CwmpVersion::V1_0,
        Some("cpe-1".into()),
        CwmpMessage::Inform(inform),
    )
    .encode()
}

fn cpe_message(message: CwmpMessage, id: &str) -> String {
    Envelope::new(CwmpVersion::V1_0, Some(id.into()), message).encode()
}

fn drain(s: &mut AcsSession) -> Vec<Output> {
    std::iter::from_fn(|| s.poll_output()).collect()
}

fn reply_of(outputs: &[Output]) -> Envelope {
    let body = outputs
        .iter()
        .find_map(|o| match o {
            Output::Reply(r) if r.status == 200 => Some(r.body.clone()),
            _ => None,
        })
        .expect("a 200 reply");
    Envelope::decode(body.as_bytes()).unwrap()
}

#[test]
fn periodic_inform_session_runs_inform_response_empty_post_204() {
    let mut s = AcsSession::new(SessionConfig::default(), T0);
    s.handle(T0, Input::Post(inform_body(&["2 PERIODIC"]).as_bytes()))
        .unwrap();
    let out = drain(&mut s);
    // The Inform event comes before the InformResponse, so the driver commits before replying.
    assert!(
        matches!(&out[0], Output::Event(SessionEvent::Inform { device, .. }) if device.as_str() == "os::00D09E-SN1")
    );
    let resp = reply_of(&out);
    assert_eq!(resp.id.as_deref(), Some("cpe-1"), "cwmp:ID is echoed");
    assert!(matches!(
        resp.message,
        CwmpMessage::InformResponse(InformResponse { max_envelopes: 1 })
    ));

    s.handle(T0, Input::Post(b"")).unwrap();
    assert_eq!(drain(&mut s), vec![Output::NeedWork]);
    s.handle(T0, Input::Work(vec![])).unwrap();
    let out = drain(&mut s);
    assert_eq!(
        out[0],
        Output::Reply(Reply {
            status: 204,
            body: String::new()
        })
    );
    assert_eq!(out[1], Output::Close(CloseReason::Done));
    assert!(s.is_closed());
}

#[test]
fn cpe_requests_are_answered_and_reported_before_the_empty_post() {
    let mut s = AcsSession::new(SessionConfig::default(), T0);
    s.handle(
        T0,
        Input::Post(inform_body(&["7 TRANSFER COMPLETE"]).as_bytes()),
    )
    .unwrap();
    drain(&mut s);
    let tc = TransferComplete {
        command_key: "op-7".into(),
        ..Default::default()
    };
    s.handle(
        T0,
        Input::Post(cpe_message(CwmpMessage::TransferComplete(tc.clone()), "tc-1").as_bytes()),
    )
    .unwrap();
    let out = drain(&mut s);
    assert!(
        matches!(&out[0], Output::Event(SessionEvent::CpeRequest(m)) if **m == CwmpMessage::TransferComplete(tc.clone()))
    );
    let resp = reply_of(&out);
    assert_eq!(resp.message, CwmpMessage::TransferCompleteResponse);
    assert_eq!(resp.id.as_deref(), Some("tc-1"));
}

#[test]
fn kicked_gets_fault_8000() {
    let mut s = AcsSession::new(SessionConfig::default(), T0);
    s.handle(T0, Input::Post(inform_body(&["2 PERIODIC"]).as_bytes()))
        .unwrap();
    drain(&mut s);
    let kicked = crate::rpc::kicked::Kicked {
        command: "x".into(),
        referer: "".into(),
        arg: "".into(),
        next: "".into(),
    };
    s.handle(
        T0,
        Input::Post(cpe_message(CwmpMessage::Kicked(kicked), "k").as_bytes()),
    )
    .unwrap();
    let out = drain(&mut s);
    let CwmpMessage::Fault(fault) = reply_of(&out).message else {
        panic!("{out:?}")
    };
    assert_eq!(fault.code, 8000);
}

#[test]
fn operations_are_sent_one_at_a_time_and_results_reported() {
    let mut s = AcsSession::new(SessionConfig::default(), T0);
    s.handle(
        T0,
        Input::Post(inform_body(&["6 CONNECTION REQUEST"]).as_bytes()),
    )
    .unwrap();
    drain(&mut s);
    s.handle(T0, Input::Post(b"")).unwrap();
    drain(&mut s);
    let reboot = CwmpMessage::Reboot(Reboot {
        command_key: "op-42".into(),
    });
    s.handle(
        T0,
        Input::Work(vec![Task::Rpc {
            origin: Origin::Operation(42),
            message: reboot.clone(),
        }]),
    )
    .unwrap();
    let out = drain(&mut s);
    let sent = reply_of(&out);
    assert_eq!(sent.message, reboot);
    let id = sent.id.unwrap();

    s.handle(
        T0,
        Input::Post(cpe_message(CwmpMessage::RebootResponse(RebootResponse), &id).as_bytes()),
    )
    .unwrap();
    let out = drain(&mut s);
    assert!(matches!(
        &out[0],
        Output::Event(SessionEvent::RpcResult {
            origin: Origin::Operation(42),
            request: "Reboot",
            result: RpcResult::Response(_)
        })
    ));
    assert_eq!(
        out[1],
        Output::Reply(Reply {
            status: 204,
            body: String::new()
        })
    );
}

#[test]
fn cpe_fault_is_reported_as_the_operation_result() {
    let mut s = AcsSession::new(SessionConfig::default(), T0);
    s.handle(T0, Input::Post(inform_body(&["2 PERIODIC"]).as_bytes()))
        .unwrap();
    s.handle(T0, Input::Post(b"")).unwrap();
    let spv =
        CwmpMessage::SetParameterValues(crate::rpc::set_parameter_values::SetParameterValues {
            parameters: vec![ParameterValue::new(
                "Device.DeviceInfo.SoftwareVersion",
                "x",
                "xsd:string",
            )],
            parameter_key: "op-1".into(),
        });
    s.handle(
        T0,
        Input::Work(vec![Task::Rpc {
            origin: Origin::Operation(1),
            message: spv,
        }]),
    )
    .unwrap();
    drain(&mut s);
    let fault = CwmpFault::new(9008, "Attempt to set a non-writable parameter");
    s.handle(
        T0,
        Input::Post(cpe_message(CwmpMessage::Fault(fault.clone()), "radar-1").as_bytes()),
    )
    .unwrap();
    let out = drain(&mut s);
    assert_eq!(
        out[0],
        Output::Event(SessionEvent::RpcResult {
            origin: Origin::Operation(1),
            request: "SetParameterValues",
            result: RpcResult::Fault(fault)
        })
    );
}

#[test]
fn discovery_reads_names_then_values_in_batches() {
    let config = SessionConfig {
        gpv_batch_size: 2,
        ..Default::default()
    };
    let mut s = AcsSession::new(config, T0);
    s.handle(
        T0,
        Input::Post(inform_body(&["0 BOOTSTRAP", "1 BOOT"]).as_bytes()),
    )
    .unwrap();
    s.handle(T0, Input::Post(b"")).unwrap();
    drain(&mut s);
    s.handle(
        T0,
        Input::Work(vec![Task::Discover {
            prefix: "Device.".into(),
        }]),
    )
    .unwrap();
    let gpn = reply_of(&drain(&mut s));
    assert_eq!(
        gpn.message,
        CwmpMessage::GetParameterNames(GetParameterNames {
            path: "Device.".into(),
            next_level: false
        })
    );

    let names = ["Device.", "Device.A", "Device.B", "Device.X.", "Device.X.C"];
    let resp = GetParameterNamesResponse {
        parameters: names
            .iter()
            .map(|n| ParameterInfo {
                name: (*n).into(),
                writable: n.ends_with('B'),
            })
            .collect(),
    };
    s.handle(
        T0,
        Input::Post(cpe_message(CwmpMessage::GetParameterNamesResponse(resp), "x").as_bytes()),
    )
    .unwrap();
    let out = drain(&mut s);
    assert!(
        matches!(&out[0], Output::Event(SessionEvent::ParameterNames { parameters, .. }) if parameters.len() == 5)
    );
    let CwmpMessage::GetParameterValues(first) = reply_of(&out).message else {
        panic!()
    };
    assert_eq!(first.names, ["Device.A", "Device.B"]);

    let values = |names: &[String]| GetParameterValuesResponse {
        parameters: names
            .iter()
            .map(|n| ParameterValue::new(n.clone(), "v", "xsd:string"))
            .collect(),
    };
    s.handle(
        T0,
        Input::Post(
            cpe_message(
                CwmpMessage::GetParameterValuesResponse(values(&first.names)),
                "x",
            )
            .as_bytes(),
        ),
    )
    .unwrap();
    let out = drain(&mut s);
    assert!(
        matches!(&out[0], Output::Event(SessionEvent::ParameterValues { source: ValueSource::Discovery, parameters }) if parameters.len() == 2)
    );
    let CwmpMessage::GetParameterValues(second) = reply_of(&out).message else {
        panic!()
    };
    assert_eq!(second.names, ["Device.X.C"]);
    s.handle(
        T0,
        Input::Post(
            cpe_message(
                CwmpMessage::GetParameterValuesResponse(values(&second.names)),
                "x",
            )
            .as_bytes(),
        ),
    )
    .unwrap();
    // What to do next depends on the data model just learnt: the driver is asked again, once.
    let out = drain(&mut s);
    assert_eq!(out.last(), Some(&Output::NeedWork), "{out:?}");
    assert!(!out.contains(&Output::Close(CloseReason::Done)));
    s.handle(T0, Input::Work(vec![])).unwrap();
    let out = drain(&mut s);
    assert!(out.contains(&Output::Close(CloseReason::Done)));
}

#[test]
fn idle_session_times_out_on_the_virtual_clock_and_abandons_the_rpc() {
    let config = SessionConfig {
        idle_timeout: Duration::from_secs(30),
        ..Default::default()
    };
    let mut s = AcsSession::new(config, T0);
    s.handle(T0, Input::Post(inform_body(&["2 PERIODIC"]).as_bytes()))
        .unwrap();
    s.handle(T0, Input::Post(b"")).unwrap();
    let t1 = T0.saturating_add(Duration::from_secs(5));
    let reboot = CwmpMessage::Reboot(Reboot {
        command_key: "k".into(),
    });
    s.handle(
        t1,
        Input::Work(vec![Task::Rpc {
            origin: Origin::Operation(9),
            message: reboot,
        }]),
    )
    .unwrap();
    drain(&mut s);
    assert_eq!(
        s.poll_timeout(),
        Some(t1.saturating_add(Duration::from_secs(30)))
    );

    // Before the deadline nothing happens.
    s.handle(t1.saturating_add(Duration::from_secs(29)), Input::Timeout)
        .unwrap();
    assert!(drain(&mut s).is_empty());
    s.handle(t1.saturating_add(Duration::from_secs(30)), Input::Timeout)
        .unwrap();
    let out = drain(&mut s);
    assert_eq!(
        out,
        vec![
            Output::Event(SessionEvent::Abandoned {
                origin: Some(Origin::Operation(9)),
                reason: CloseReason::IdleTimeout,
                object_read: false
            }),
            Output::Close(CloseReason::IdleTimeout)
        ]
    );
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn a_new_inform_supersedes_the_running_session() {
    let mut s = AcsSession::new(SessionConfig::default(), T0);
    s.handle(T0, Input::Post(inform_body(&["2 PERIODIC"]).as_bytes()))
        .unwrap();
    s.handle(T0, Input::Post(b"")).unwrap();
    let reboot = CwmpMessage::Reboot(Reboot {
        command_key: "k".into(),
    });
    s.handle(
        T0,
        Input::Work(vec![Task::Rpc {
            origin: Origin::Operation(3),
            message: reboot,
        }]),
    )
    .unwrap();
    drain(&mut s);
    s.handle(
        T0,
        Input::Post(inform_body(&["1 BOOT", "M Reboot"]).as_bytes()),
    )
    .unwrap();
    let out = drain(&mut s);
    assert!(matches!(
        &out[0],
        Output::Event(SessionEvent::Abandoned {
            origin: Some(Origin::Operation(3)),
            ..
        })
    ));
    assert!(matches!(
        &out[1],
        Output::Event(SessionEvent::Inform { .. })
    ));
    assert!(matches!(
        reply_of(&out).message,
        CwmpMessage::InformResponse(_)
    ));
}

#[test]
fn garbage_gets_a_fault_and_closes() {
    for body in [
        &b"<not-xml"[..],
        b"<a/>",
        br#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>"#,
    ] {
        let mut s = AcsSession::new(SessionConfig::default(), T0);
        s.handle(T0, Input::Post(body)).unwrap();
        let out = drain(&mut s);
        let Output::Reply(reply) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(reply.status, 400);
        let CwmpMessage::Fault(fault) = Envelope::decode(reply.body.as_bytes()).unwrap().message
        else {
            panic!()
        };
        assert_eq!(fault.code, 8003);
        assert_eq!(out[1], Output::Close(CloseReason::ProtocolError));
    }
}

#[test]
fn work_outside_await_work_is_an_error() {
    let mut s = AcsSession::new(SessionConfig::default(), T0);
    assert!(s.handle(T0, Input::Work(vec![])).is_err());
}

#[test]
fn rpc_cap_bounds_a_session() {
    let config = SessionConfig {
        max_rpcs_per_session: 1,
        ..Default::default()
    };
    let mut s = AcsSession::new(config, T0);
    s.handle(T0, Input::Post(inform_body(&["2 PERIODIC"]).as_bytes()))
        .unwrap();
    s.handle(T0, Input::Post(b"")).unwrap();
    let tasks = (0..3)
        .map(|i| Task::Rpc {
            origin: Origin::Operation(i),
            message: CwmpMessage::Reboot(Reboot {
                command_key: "k".into(),
            }),
        })
        .collect();
    s.handle(T0, Input::Work(tasks)).unwrap();
    drain(&mut s);
    s.handle(
        T0,
        Input::Post(cpe_message(CwmpMessage::RebootResponse(RebootResponse), "x").as_bytes()),
    )
    .unwrap();
    let out = drain(&mut s);
    assert!(out.contains(&Output::Close(CloseReason::TooManyRpcs)));
}

/// A device that dies on object-path reads (genieacs-sim crashes on them) is read by its leaf
/// names; an operation carried by such a read is sent with the names and answered after the
/// last batch of values.
#[test]
fn a_tree_read_carries_an_operation_and_a_dead_object_read_is_flagged() {
    let config = SessionConfig {
        gpv_batch_size: 1,
        ..Default::default()
    };
    let mut s = AcsSession::new(config.clone(), T0);
    s.handle(T0, Input::Post(inform_body(&["2 PERIODIC"]).as_bytes()))
        .unwrap();
    s.handle(T0, Input::Post(b"")).unwrap();
    drain(&mut s);
    let op = Origin::Operation(7);
    s.handle(
        T0,
        Input::Work(vec![Task::ReadTree {
            prefix: "Device.ManagementServer.".into(),
            origin: Some(op),
        }]),
    )
    .unwrap();
    let out = drain(&mut s);
    assert!(out.contains(&Output::Event(SessionEvent::RpcSent {
        origin: op,
        request: "GetParameterNames"
    })));
    let names = GetParameterNamesResponse {
        parameters: [
            "Device.ManagementServer.URL",
            "Device.ManagementServer.Username",
        ]
        .iter()
        .map(|n| ParameterInfo {
            name: (*n).into(),
            writable: true,
        })
        .collect(),
    };
    s.handle(
        T0,
        Input::Post(cpe_message(CwmpMessage::GetParameterNamesResponse(names), "x").as_bytes()),
    )
    .unwrap();
    let mut out = drain(&mut s);
    let mut answered = Vec::new();
    for _ in 0..2 {
        let CwmpMessage::GetParameterValues(gpv) = reply_of(&out).message else {
            panic!("{out:?}")
        };
        assert!(gpv.names.iter().all(|n| !n.ends_with('.')), "leaves only");
        let resp = GetParameterValuesResponse {
            parameters: gpv
                .names
                .iter()
                .map(|n| ParameterValue::new(n.clone(), "v", "xsd:string"))
                .collect(),
        };
        s.handle(
            T0,
            Input::Post(cpe_message(CwmpMessage::GetParameterValuesResponse(resp), "x").as_bytes()),
        )
        .unwrap();
        out = drain(&mut s);
        answered.push(out.iter().any(
            |o| matches!(o, Output::Event(SessionEvent::RpcResult { origin, .. }) if *origin == op),
        ));
    }
    let answered = answered == [false, true];
    assert!(answered, "the operation is answered after the last batch");

    // A GetParameterValues of an object path left unanswered is flagged as such.
    let mut s = AcsSession::new(config, T0);
    s.handle(T0, Input::Post(inform_body(&["2 PERIODIC"]).as_bytes()))
        .unwrap();
    s.handle(T0, Input::Post(b"")).unwrap();
    drain(&mut s);
    s.handle(
        T0,
        Input::Work(vec![Task::Rpc {
            origin: op,
            message: CwmpMessage::GetParameterValues(GetParameterValues {
                names: vec!["Device.ManagementServer.".into()],
            }),
        }]),
    )
    .unwrap();
    drain(&mut s);
    s.handle(T0.saturating_add(Duration::from_secs(600)), Input::Timeout)
        .unwrap();
    assert!(
        drain(&mut s).contains(&Output::Event(SessionEvent::Abandoned {
            origin: Some(op),
            reason: CloseReason::IdleTimeout,
            object_read: true,
        }))
    );
}

#[test]
fn an_inform_for_another_device_than_the_credentials_name_is_refused_without_an_event() {
    let bound = |username: &str| identity::BoundIdentity {
        username: username.into(),
        device: None,
    };
    let mut s = AcsSession::new(SessionConfig::default(), T0);
    s.bind_identity(bound("00D09E-SN2"));
    s.handle(T0, Input::Post(inform_body(&["2 PERIODIC"]).as_bytes()))
        .unwrap();
    let out = drain(&mut s);
    assert!(
        !out.iter().any(|o| matches!(o, Output::Event(_))),
        "no event may reach the twin: {out:?}"
    );
    let Some(Output::Reply(reply)) = out.iter().find(|o| matches!(o, Output::Reply(_))) else {
        panic!("{out:?}")
    };
    assert_eq!(reply.status, 403);
    let CwmpMessage::Fault(fault) = Envelope::decode(reply.body.as_bytes()).unwrap().message else {
        panic!("{}", reply.body)
    };
    assert_eq!(fault.code, acs_codes::REQUEST_DENIED);
    assert!(out.contains(&Output::Close(CloseReason::IdentityMismatch)));
    assert!(s.is_closed());

    // Its own credentials: the session runs.
    let mut s = AcsSession::new(SessionConfig::default(), T0);
    s.bind_identity(bound("00D09E-SN1"));
    s.handle(T0, Input::Post(inform_body(&["2 PERIODIC"]).as_bytes()))
        .unwrap();
    assert!(matches!(
        &drain(&mut s)[0],
        Output::Event(SessionEvent::Inform { .. })
    ));
}
