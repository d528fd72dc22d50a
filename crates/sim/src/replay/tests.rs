use super::*;
use radar_usp::proto::msg::response;

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/usp")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const CONTROLLER: &str = "usp/controller/";

#[test]
fn obuspa_session_recording_answers_radars_requests_under_their_msg_ids() {
    let mut r =
        Recording::parse(&fixture("obuspa-v11.0.4-mqtt-session.capture"), CONTROLLER).unwrap();
    assert!(r.len() >= 10, "{} distinct requests", r.len());
    assert_eq!(
        r.connects().count(),
        2,
        "first contact and after the reboot"
    );
    let answer = r
        .answer(&radar_usp::msg::get_supported_protocol("mine-1"))
        .unwrap();
    assert_eq!(answer.header.as_ref().unwrap().msg_id, "mine-1");
    match answer.body.and_then(|b| b.msg_body) {
        Some(body::MsgBody::Response(resp)) => assert!(matches!(
            resp.resp_type,
            Some(response::RespType::GetSupportedProtocolResp(p)) if p.agent_supported_protocol_versions.contains("1.3")
        )),
        other => panic!("{other:?}"),
    }
    // The reboot came back with a Boot! naming its CommandKey and Cause RemoteReboot.
    let boot = r
        .notifies()
        .find_map(|m| match request_of(m) {
            Some(request::ReqType::Notify(n)) => match &n.notification {
                Some(radar_usp::proto::msg::notify::Notification::Event(e)) => Some(e.clone()),
                _ => None,
            },
            _ => None,
        })
        .expect("a recorded Boot!");
    assert_eq!(boot.params["CommandKey"], "radar-op-2");
    assert_eq!(boot.params["Cause"], "RemoteReboot");
}

#[test]
fn a_request_the_agent_was_never_asked_gets_an_error_naming_it() {
    let mut r =
        Recording::parse(&fixture("obuspa-v11.0.4-mqtt-session.capture"), CONTROLLER).unwrap();
    let answer = r
        .answer(&radar_usp::msg::get("x", &["Device.Nowhere.".into()], 0))
        .unwrap();
    match answer.body.and_then(|b| b.msg_body) {
        Some(body::MsgBody::Error(e)) => assert!(e.err_msg.contains("Device.Nowhere."), "{e:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(r.unrecorded.len(), 1);
}

/// What obuspa said to Radar's Add before this change: every subscription refused with 7013,
/// because the Add set the read-only Recipient.
#[test]
fn obuspa_refused_every_subscription_that_set_recipient() {
    use radar_usp::proto::msg::add_resp::created_object_result::operation_status::OperStatus;
    let text = fixture("obuspa-v11.0.4-mqtt-recipient-refused.capture");
    let r = Recording::parse(&text, CONTROLLER).unwrap();
    let add = r
        .answers
        .iter()
        .find(|(sig, _)| sig.starts_with("ADD "))
        .map(|(sig, answers)| (sig.clone(), answers[0].clone()))
        .expect("the recorded Add");
    assert!(add.0.contains("Recipient"), "{}", add.0);
    let Some(body::MsgBody::Response(resp)) = add.1.body.and_then(|b| b.msg_body) else {
        panic!("no response");
    };
    let Some(response::RespType::AddResp(a)) = resp.resp_type else {
        panic!("not an AddResp");
    };
    assert_eq!(a.created_obj_results.len(), 11);
    for c in &a.created_obj_results {
        match c.oper_status.as_ref().and_then(|s| s.oper_status.as_ref()) {
            Some(OperStatus::OperFailure(f)) => {
                assert_eq!(f.err_code, 7013);
                assert!(f.err_msg.contains("Recipient"), "{}", f.err_msg);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn bad_capture_lines_are_errors_not_panics() {
    assert!(Recording::parse("2026 usp/controller/x zz", CONTROLLER).is_err());
    assert!(Recording::parse("only-one-field", CONTROLLER).is_err());
    // Hex that is no record is skipped.
    assert!(Recording::parse("2026 usp/controller/x 00ff", CONTROLLER)
        .unwrap()
        .is_empty());
}
