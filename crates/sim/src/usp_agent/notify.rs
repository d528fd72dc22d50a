//! The agent's subscription table and the Notifies it produces (TR-369 §7.6.2). A subscription
//! fires only when enabled and addressed to the controller entry; `NotifRetry` asks for a
//! NotifyResp (`send_resp`).

use super::{AgentCore, CONTROLLER_ENTRY};
use radar_usp::inbound::PathValue;
use radar_usp::proto::msg::{body, header, notify, request, Body, Header, Msg, Notify, Request};
use radar_usp::subscriptions::{parse_table, Existing};
use std::collections::BTreeMap;

pub const SUBSCRIPTIONS: &str = "Device.LocalAgent.Subscription.";

fn subscriptions(agent: &AgentCore, notif_type: &str) -> Vec<(Existing, bool)> {
    let values: Vec<PathValue> = agent
        .model
        .params
        .range(SUBSCRIPTIONS.to_string()..)
        .take_while(|(k, _)| k.starts_with(SUBSCRIPTIONS))
        .map(|(k, v)| PathValue {
            path: k.clone(),
            value: v.value.clone(),
        })
        .collect();
    parse_table(&values)
        .into_iter()
        .filter(|s| {
            s.enable
                && s.notif_type == notif_type
                && s.recipient.trim_end_matches('.') == CONTROLLER_ENTRY
        })
        .map(|s| {
            let retry = agent
                .param(&format!("{}NotifRetry", s.instance))
                .is_some_and(|v| v == "true" || v == "1");
            (s, retry)
        })
        .collect()
}

fn references(s: &Existing) -> impl Iterator<Item = &str> {
    s.reference_list
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
}

fn notify_msg(
    agent: &mut AgentCore,
    subscription_id: &str,
    send_resp: bool,
    n: notify::Notification,
) -> Msg {
    Msg {
        header: Some(Header {
            msg_id: agent.next_msg_id(),
            msg_type: header::MsgType::Notify as i32,
        }),
        body: Some(Body {
            msg_body: Some(body::MsgBody::Request(Request {
                req_type: Some(request::ReqType::Notify(Notify {
                    subscription_id: subscription_id.into(),
                    send_resp,
                    notification: Some(n),
                })),
            })),
        }),
    }
}

pub fn value_change(agent: &mut AgentCore, path: &str, value: &str) -> Vec<Msg> {
    let mut out = Vec::new();
    for (s, retry) in subscriptions(agent, "ValueChange") {
        let matched = references(&s).any(|r| {
            if r.ends_with('.') {
                path.starts_with(r)
            } else {
                path == r
            }
        });
        if matched {
            out.push(notify_msg(
                agent,
                &s.id,
                retry,
                notify::Notification::ValueChange(notify::ValueChange {
                    param_path: path.into(),
                    param_value: value.into(),
                }),
            ));
        }
    }
    out
}

pub fn object_event(agent: &mut AgentCore, obj: &str, created: bool) -> Vec<Msg> {
    let ty = if created {
        "ObjectCreation"
    } else {
        "ObjectDeletion"
    };
    let table = obj
        .trim_end_matches('.')
        .rsplit_once('.')
        .map(|(t, _)| format!("{t}."))
        .unwrap_or_default();
    let mut out = Vec::new();
    for (s, retry) in subscriptions(agent, ty) {
        if references(&s).any(|r| r == table) {
            let n = if created {
                notify::Notification::ObjCreation(notify::ObjectCreation {
                    obj_path: obj.into(),
                    unique_keys: Default::default(),
                })
            } else {
                notify::Notification::ObjDeletion(notify::ObjectDeletion {
                    obj_path: obj.into(),
                })
            };
            out.push(notify_msg(agent, &s.id, retry, n));
        }
    }
    out
}

pub fn event(
    agent: &mut AgentCore,
    obj_path: &str,
    name: &str,
    args: BTreeMap<String, String>,
) -> Vec<Msg> {
    let full = format!("{obj_path}{name}");
    let mut out = Vec::new();
    for (s, retry) in subscriptions(agent, "Event") {
        if references(&s).any(|r| r == full) {
            out.push(notify_msg(
                agent,
                &s.id,
                retry,
                notify::Notification::Event(notify::Event {
                    obj_path: obj_path.into(),
                    event_name: name.into(),
                    params: args.clone().into_iter().collect(),
                }),
            ));
        }
    }
    out
}

pub fn operation_complete(
    agent: &mut AgentCore,
    obj_path: &str,
    command_name: &str,
    command_key: &str,
    result: Result<BTreeMap<String, String>, (u32, String)>,
) -> Vec<Msg> {
    use notify::operation_complete::{CommandFailure, OperationResp, OutputArgs};
    let full = format!("{obj_path}{command_name}");
    let mut out = Vec::new();
    for (s, retry) in subscriptions(agent, "OperationComplete") {
        // A reference to an object covers the commands under it (TR-369 §7.6.2.5).
        if references(&s).any(|r| full.starts_with(r)) {
            let resp = match &result {
                Ok(args) => OperationResp::ReqOutputArgs(OutputArgs {
                    output_args: args.clone().into_iter().collect(),
                }),
                Err((code, message)) => OperationResp::CmdFailure(CommandFailure {
                    err_code: *code,
                    err_msg: message.clone(),
                }),
            };
            out.push(notify_msg(
                agent,
                &s.id,
                retry,
                notify::Notification::OperComplete(notify::OperationComplete {
                    obj_path: obj_path.into(),
                    command_name: command_name.into(),
                    command_key: command_key.into(),
                    operation_resp: Some(resp),
                }),
            ));
        }
    }
    out
}
