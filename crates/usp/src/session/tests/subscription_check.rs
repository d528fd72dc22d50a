//! The subscription check against agents shaped like obuspa: only what the data model has is
//! asked for, `Recipient` is never set, refusals are retried or adopted, and a Boot! re-checks.

use super::*;

/// A session wanting what a home gateway has, against an agent that has little of it (like
/// obuspa v11.0.4: Boot! and DeviceInfo, no WiFi or Hosts tables).
fn gateway_session() -> AgentSession {
    use subscriptions::NotifType::*;
    AgentSession::new(
        Arc::new(SessionConfig {
            controller_id: ME.into(),
            request_timeout_ms: 1_000,
            subscriptions: vec![
                Desired::new(ValueChange, "Device.DeviceInfo.SoftwareVersion"),
                Desired::new(ValueChange, "Device.WiFi.SSID."),
                Desired::new(ObjectCreation, "Device.Hosts.Host."),
                Desired::new(ObjectCreation, "Device.DeviceInfo."),
                Desired::new(Event, "Device.Boot!"),
            ],
            root: "Device.".into(),
            liveness_timeout_ms: 500,
        }),
        "t",
    )
}

/// Connects, answers the tables and the data-model check like obuspa; returns the Add sent.
fn check_against_a_small_agent(s: &mut AgentSession) -> Msg {
    s.handle(
        Timestamp(0),
        Input::Connected(Sync::Resync { subtrees: vec![] }),
    );
    let out = drain(s);
    let msgs = sent(&out);
    let (table, support) = (id_of(msgs[1]), id_of(msgs[2]));
    s.handle(Timestamp(1), Input::Msg(controller_table(&table)));
    let device_info = supported_object("Device.DeviceInfo.", false, &["SoftwareVersion"], &[]);
    s.handle(
        Timestamp(1),
        Input::Msg(support_resp(
            &support,
            vec![
                (
                    "Device.",
                    0,
                    vec![supported_object("Device.", false, &[], &["Boot!"])],
                ),
                ("Device.DeviceInfo.", 0, vec![device_info]),
                ("Device.Hosts.Host.", 7026, vec![]),
                ("Device.WiFi.SSID.", 7026, vec![]),
            ],
        )),
    );
    let out = drain(s);
    sent(&out)
        .first()
        .map(|m| (*m).clone())
        .unwrap_or_else(|| panic!("no Add in {out:?}"))
}

fn created(add: &Msg) -> Vec<Vec<(String, String, bool)>> {
    match req_of(add) {
        request::ReqType::Add(a) => a
            .create_objs
            .iter()
            .map(|c| {
                c.param_settings
                    .iter()
                    .map(|p| (p.param.clone(), p.value.clone(), p.required))
                    .collect()
            })
            .collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn only_what_the_agents_data_model_has_is_subscribed_and_recipient_is_never_set() {
    let mut s = gateway_session();
    let add = check_against_a_small_agent(&mut s);
    let objs = created(&add);
    let references: Vec<&str> = objs
        .iter()
        .map(|o| {
            o.iter()
                .find(|p| p.0 == "ReferenceList")
                .unwrap()
                .1
                .as_str()
        })
        .collect();
    assert_eq!(
        references,
        ["Device.DeviceInfo.SoftwareVersion", "Device.Boot!"]
    );
    // TR-181: Recipient is read-only; obuspa refuses the whole row with 7013 when it is set.
    assert!(
        objs.iter().flatten().all(|p| p.0 != "Recipient"),
        "{objs:?}"
    );
    s.handle(
        Timestamp(2),
        Input::Msg(add_resp(&id_of(&add), vec![add_ok(1), add_ok(2)])),
    );
    let reports = subscription_reports(&drain(&mut s));
    let standing: Vec<&str> = reports
        .iter()
        .map(|r| match &r.standing {
            subscriptions::Standing::InPlace { .. } => "in_place",
            subscriptions::Standing::Refused { .. } => "refused",
            subscriptions::Standing::NotInDataModel { .. } => "not_in_data_model",
        })
        .collect();
    assert_eq!(
        standing,
        [
            "in_place",
            "not_in_data_model",
            "not_in_data_model",
            "not_in_data_model",
            "in_place"
        ]
    );
    match &reports[3].standing {
        subscriptions::Standing::NotInDataModel { reason } => {
            assert!(reason.contains("multi-instance"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_add_refused_over_an_optional_parameter_is_retried_with_the_essentials() {
    let mut s = gateway_session();
    let add = check_against_a_small_agent(&mut s);
    assert!(created(&add)[0].iter().any(|p| p.0 == "Persistent"));
    s.handle(
        Timestamp(2),
        Input::Msg(add_resp(
            &id_of(&add),
            vec![
                add_failed(7013, "Persistent is read-only"),
                add_failed(errors::UNIQUE_KEY_CONFLICT, "exists"),
            ],
        )),
    );
    let out = drain(&mut s);
    let retry = sent(&out)[0].clone();
    let objs = created(&retry);
    assert_eq!(objs.len(), 1, "only the refused one is retried");
    assert!(
        objs[0].iter().all(|p| p.2),
        "essentials only, all required: {objs:?}"
    );
    s.handle(
        Timestamp(3),
        Input::Msg(add_resp(&id_of(&retry), vec![add_failed(7013, "still no")])),
    );
    let out = drain(&mut s);
    let reports = subscription_reports(&out);
    assert!(
        matches!(&reports[0].standing, subscriptions::Standing::Refused { code: 7013, message } if message == "still no")
    );
    // 7025: this controller's row with that ID exists already; adopt it.
    assert!(
        matches!(&reports[4].standing, subscriptions::Standing::InPlace { note } if note.contains("7025"))
    );
    assert!(sent(&out).is_empty(), "no third attempt: {out:?}");
}

#[test]
fn a_boot_rechecks_subscriptions_without_holding_back_work() {
    let mut s = session();
    connected_and_ready(&mut s);
    let boot = Msg {
        header: Some(Header {
            msg_id: "b1".into(),
            msg_type: header::MsgType::Notify as i32,
        }),
        body: Some(Body {
            msg_body: Some(body::MsgBody::Request(UspRequest {
                req_type: Some(request::ReqType::Notify(Notify {
                    subscription_id: "radar-ev-1".into(),
                    send_resp: true,
                    notification: Some(notify::Notification::Event(notify::Event {
                        obj_path: "Device.".into(),
                        event_name: "Boot!".into(),
                        params: HashMap::from([("Cause".to_string(), "LocalReboot".to_string())]),
                    })),
                })),
            })),
        }),
    };
    s.handle(Timestamp(30), Input::Msg(boot));
    let out = drain(&mut s);
    let kinds: Vec<&str> = sent(&out)
        .iter()
        .map(|m| match req_of(m) {
            request::ReqType::Get(_) => "get",
            request::ReqType::GetSupportedDm(_) => "gsdm",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["get", "gsdm"], "{out:?}");
    assert!(s.is_ready(), "a re-check does not hold operations back");
}
