//! What each Notify type means for the twin (TR-369 §7.6.2).

use super::{SessionEvent, TypedValue, ValueSource};
use crate::proto::msg::notify::{self, operation_complete::OperationResp, Notification};
use crate::request::Failure;
use std::collections::BTreeMap;

fn sorted(map: &std::collections::HashMap<String, String>) -> BTreeMap<String, String> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

pub(super) fn event_of(notification: &Notification) -> SessionEvent {
    match notification {
        Notification::ValueChange(notify::ValueChange {
            param_path,
            param_value,
        }) => SessionEvent::Values {
            source: ValueSource::Notify,
            values: vec![TypedValue {
                path: param_path.clone(),
                value: param_value.clone(),
                schema: None,
            }],
            snapshot: None,
        },
        Notification::ObjCreation(o) => SessionEvent::ObjectCreated {
            path: o.obj_path.clone(),
            unique_keys: sorted(&o.unique_keys),
        },
        Notification::ObjDeletion(o) => SessionEvent::ObjectDeleted {
            path: o.obj_path.clone(),
        },
        Notification::Event(e) => SessionEvent::Event {
            path: format!("{}{}", e.obj_path, e.event_name),
            args: sorted(&e.params),
        },
        Notification::OperComplete(o) => SessionEvent::OperationComplete {
            command: format!("{}{}", o.obj_path, o.command_name),
            command_key: o.command_key.clone(),
            result: match &o.operation_resp {
                Some(OperationResp::ReqOutputArgs(out)) => Ok(sorted(&out.output_args)),
                Some(OperationResp::CmdFailure(f)) => {
                    Err(Failure::new(f.err_code, f.err_msg.clone()))
                }
                None => Ok(BTreeMap::new()),
            },
        },
        Notification::OnBoardReq(o) => SessionEvent::OnBoardRequest {
            oui: o.oui.clone(),
            product_class: o.product_class.clone(),
            serial: o.serial_number.clone(),
            versions: o.agent_supported_protocol_versions.clone(),
        },
    }
}
