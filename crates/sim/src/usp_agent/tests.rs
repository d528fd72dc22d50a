//! The simulated agent refuses what real agents refuse, with their codes.

use super::*;
use radar_usp::proto::msg::{add_resp, body, response};

fn agent() -> AgentCore {
    let config = UspSimConfig::default();
    config.cores().remove(0)
}

fn add_subscription(
    core: &mut AgentCore,
    id: &str,
    notif_type: &str,
    reference: &str,
) -> Result<(), u32> {
    add_subscription_with(
        core,
        &[
            ("ID", id),
            ("NotifType", notif_type),
            ("ReferenceList", reference),
            ("Enable", "true"),
        ],
    )
}

fn add_subscription_with(core: &mut AgentCore, settings: &[(&str, &str)]) -> Result<(), u32> {
    let params: Vec<(String, String, bool)> = settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string(), true))
        .collect();
    let msg = radar_usp::msg::add("a1", true, notify::SUBSCRIPTIONS, &params);
    let reply = core.handle_msg(msg).expect("an answer");
    match reply.body.and_then(|b| b.msg_body) {
        Some(body::MsgBody::Response(r)) => match r.resp_type {
            Some(response::RespType::AddResp(a)) => {
                use add_resp::created_object_result::operation_status::OperStatus;
                match a.created_obj_results[0]
                    .oper_status
                    .as_ref()
                    .and_then(|s| s.oper_status.as_ref())
                {
                    Some(OperStatus::OperSuccess(_)) => Ok(()),
                    Some(OperStatus::OperFailure(f)) => Err(f.err_code),
                    None => Err(0),
                }
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[test]
fn subscriptions_are_refused_like_real_agents_refuse_them() {
    let mut core = agent();
    assert_eq!(
        add_subscription(&mut core, "s1", "ValueChange", "Device."),
        Err(7005)
    );
    assert_eq!(
        add_subscription(&mut core, "s2", "ObjectCreation", "Device.DeviceInfo."),
        Err(7018)
    );
    assert_eq!(
        add_subscription(&mut core, "s3", "ValueChange", "Device.WiFi."),
        Ok(())
    );
    assert_eq!(
        add_subscription(&mut core, "s3", "ValueChange", "Device.WiFi."),
        Err(7025)
    );
    // Recipient is read-only (TR-181); obuspa refuses the row with 7013, and so does the sim.
    assert_eq!(
        add_subscription_with(
            &mut core,
            &[
                ("ID", "s4"),
                ("Recipient", CONTROLLER_ENTRY),
                ("NotifType", "ValueChange"),
                ("ReferenceList", "Device.WiFi."),
            ]
        ),
        Err(7013)
    );
    assert!(core
        .model
        .params
        .iter()
        .any(|(k, v)| k.ends_with(".Recipient") && v.value == CONTROLLER_ENTRY));
    // The accepted one notifies a local change under its reference.
    assert_eq!(core.local_change("Device.WiFi.SSID.1.SSID", "x").len(), 1);
    assert!(core.local_change("Device.Time.Enable", "false").is_empty());
}

#[test]
fn records_for_someone_else_are_ignored_and_unknown_paths_get_7026() {
    let mut core = agent();
    let foreign = radar_usp::record::encode_message(
        "os::SOMEONE-ELSE",
        "self::radar",
        &radar_usp::msg::get("g", &["Device.".into()], 0),
    );
    assert!(core.handle_record(&foreign).is_empty());
    assert_eq!(core.ignored_records, 1);
    let reply = core
        .handle_msg(radar_usp::msg::get("g2", &["Device.Nope.".into()], 0))
        .unwrap();
    let Some(body::MsgBody::Response(r)) = reply.body.and_then(|b| b.msg_body) else {
        panic!()
    };
    let Some(response::RespType::GetResp(g)) = r.resp_type else {
        panic!()
    };
    assert_eq!(g.req_path_results[0].err_code, 7026);
}
