//! Glue between the sans-IO CWMP session and the twin: session events become `TwinCommand`s, and
//! planned tasks become CWMP RPCs. Pure functions, tested without sockets.

use radar_core::{DeviceKey, ParamType, Timestamp};
use radar_cwmp::rpc::add_object::AddObject;
use radar_cwmp::rpc::delete_object::DeleteObject;
use radar_cwmp::rpc::download::Download;
use radar_cwmp::rpc::factory_reset::FactoryReset;
use radar_cwmp::rpc::get_parameter_attributes::GetParameterAttributes;
use radar_cwmp::rpc::get_parameter_values::{GetParameterValues, ParameterValue};
use radar_cwmp::rpc::get_rpc_methods::GetRpcMethods;
use radar_cwmp::rpc::inform::Inform;
use radar_cwmp::rpc::reboot::Reboot;
use radar_cwmp::rpc::schedule_inform::ScheduleInform;
use radar_cwmp::rpc::set_parameter_attributes::{
    SetParameterAttributes, SetParameterAttributesStruct,
};
use radar_cwmp::rpc::set_parameter_values::SetParameterValues;
use radar_cwmp::rpc::upload::Upload;
use radar_cwmp::session::{Origin, RpcResult, SessionEvent, Task, ValueSource};
use radar_cwmp::CwmpMessage;
use radar_twin::command::{Identity, Outcome};
use radar_twin::datamodel::DataModel;
use radar_twin::planner::PlannedTask;
use radar_twin::quirks;
use radar_twin::{OperationKind, PathDict, ReportedParam, Source, Twin, TwinCommand};

/// Origin of the bootstrap SetParameterAttributes.
pub const NOTIFICATION_ORIGIN: Origin = Origin::Internal(1);
/// Origin of the bootstrap SetParameterValues of connection-request credentials.
pub const CREDENTIALS_ORIGIN: Origin = Origin::Internal(2);
/// TR-069 fault 9009: notification request rejected.
pub const FAULT_NOTIFICATION_REJECTED: u32 = 9009;

pub fn reported(params: &[ParameterValue]) -> Vec<ReportedParam> {
    params
        .iter()
        .map(|p| ReportedParam {
            path: p.name.clone(),
            value: p.value.clone(),
            ty: p.xsd_type.as_deref().map(ParamType::from_xsd),
            writable: None,
        })
        .collect()
}

pub fn inform_command(device: DeviceKey, inform: &Inform, at: Timestamp) -> TwinCommand {
    TwinCommand::Inform {
        device,
        at,
        identity: Identity {
            oui: inform.device_id.oui.clone(),
            product_class: inform.device_id.product_class.clone(),
            serial: inform.device_id.serial_number.clone(),
            manufacturer: inform.device_id.manufacturer.clone(),
        },
        events: inform
            .events
            .iter()
            .map(|e| (e.code.clone(), e.command_key.clone()))
            .collect(),
        params: reported(&inform.parameters),
    }
}

/// What the driver remembers within one session to interpret results of its own requests.
#[derive(Debug, Default, Clone)]
pub struct SessionMemory {
    /// Paths the session asked to notify actively, recorded as refused on fault 9009.
    pub notify_active: Vec<String>,
    /// Connection-request credentials being set, recorded once the device accepts them.
    pub credentials: Option<(String, String)>,
}

/// Twin commands for one session event.
pub fn event_commands(
    device: &DeviceKey,
    event: &SessionEvent,
    at: Timestamp,
    memory: &SessionMemory,
) -> Vec<TwinCommand> {
    let notify_active = &memory.notify_active;
    let device = device.clone();
    match event {
        SessionEvent::Inform { device, inform } => vec![inform_command(device.clone(), inform, at)],
        SessionEvent::CpeRequest(message) => match message.as_ref() {
            CwmpMessage::TransferComplete(tc) => vec![TwinCommand::TransferComplete {
                device,
                at,
                command_key: tc.command_key.clone(),
                fault_code: tc.fault.code,
                fault_message: tc.fault.message.clone(),
            }],
            CwmpMessage::AutonomousTransferComplete(atc) => vec![TwinCommand::RecordEvent {
                device,
                at,
                kind: "transfer".into(),
                detail: format!(
                    "autonomous {} of {:?} from {:?}: fault {} {}",
                    if atc.is_download {
                        "download"
                    } else {
                        "upload"
                    },
                    atc.file_type,
                    atc.transfer_url,
                    atc.fault.code,
                    atc.fault.message
                ),
            }],
            CwmpMessage::DuStateChangeComplete(du) => vec![TwinCommand::RecordEvent {
                device,
                at,
                kind: "du_state_change".into(),
                detail: du
                    .results
                    .iter()
                    .map(|r| {
                        format!(
                            "{} {} {} fault {}",
                            r.uuid, r.version, r.current_state, r.fault_code
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            }],
            CwmpMessage::RequestDownload(rd) => vec![TwinCommand::RecordEvent {
                device,
                at,
                kind: "request_download".into(),
                detail: rd.file_type.clone(),
            }],
            _ => vec![],
        },
        SessionEvent::ParameterNames { prefix, parameters } => vec![TwinCommand::ReportNames {
            device,
            at,
            prefix: prefix.clone(),
            names: parameters
                .iter()
                .map(|p| (p.name.clone(), p.writable))
                .collect(),
        }],
        SessionEvent::ParameterValues { source, parameters } => vec![TwinCommand::ReportValues {
            device,
            at,
            source: match source {
                ValueSource::Discovery => Source::Discovery,
                ValueSource::Refresh => Source::Refresh,
            },
            params: reported(parameters),
        }],
        SessionEvent::ReadFailed { request, fault } => vec![TwinCommand::RecordEvent {
            device,
            at,
            kind: "fault".into(),
            detail: format!("{request}: {} {}", fault.code, fault.message),
        }],
        SessionEvent::Abandoned {
            origin,
            object_read,
            ..
        } => {
            let mut out = Vec::new();
            if *object_read {
                out.push(TwinCommand::RecordQuirk {
                    device: device.clone(),
                    at,
                    quirk: quirks::OBJECT_PATH_READS_FAIL.into(),
                    detail: "the session died during a GetParameterValues of an object path; reading by leaf names from now on".into(),
                });
            }
            if let Some(Origin::Operation(op)) = origin {
                out.push(TwinCommand::RequeueOperation {
                    device,
                    at,
                    operation: *op,
                });
            }
            out
        }
        SessionEvent::RpcSent {
            origin: Origin::Operation(op),
            ..
        } => vec![TwinCommand::MarkSent {
            device,
            at,
            operation: *op,
        }],
        SessionEvent::RpcSent { .. } => vec![],
        SessionEvent::RpcResult {
            origin: Origin::Operation(op),
            request,
            result,
        } => rpc_result_commands(device, at, *op, request, result),
        SessionEvent::RpcResult { origin, result, .. } if *origin == NOTIFICATION_ORIGIN => {
            match result {
                // TR-069 A.3.2.4: 9009 is the device refusing active notification on what was
                // asked; the passive ones stand, and the active ones are refreshed instead.
                RpcResult::Fault(f) if f.code == FAULT_NOTIFICATION_REJECTED => vec![
                    TwinCommand::NotificationsConfigured {
                        device: device.clone(),
                        at,
                        refused: notify_active.to_vec(),
                    },
                    TwinCommand::RecordEvent {
                        device,
                        at,
                        kind: "fault".into(),
                        detail: format!("SetParameterAttributes: {} {}", f.code, f.message),
                    },
                ],
                // Any other fault: nothing was configured, and the twin says so.
                RpcResult::Fault(f) => vec![TwinCommand::NotificationsFailed {
                    device,
                    at,
                    code: f.code,
                    message: f.message.clone(),
                }],
                RpcResult::Response(_) => vec![TwinCommand::NotificationsConfigured {
                    device,
                    at,
                    refused: vec![],
                }],
            }
        }
        SessionEvent::RpcResult { origin, result, .. } if *origin == CREDENTIALS_ORIGIN => {
            match (result, &memory.credentials) {
                (RpcResult::Response(_), Some((username, password))) => {
                    vec![TwinCommand::ConnectionRequestCredentials {
                        device,
                        at,
                        username: username.clone(),
                        password: password.clone(),
                    }]
                }
                (RpcResult::Fault(f), _) => vec![TwinCommand::RecordEvent {
                    device,
                    at,
                    kind: "fault".into(),
                    detail: format!(
                        "setting connection-request credentials: {} {}",
                        f.code, f.message
                    ),
                }],
                _ => vec![],
            }
        }
        SessionEvent::RpcResult { .. } => vec![],
    }
}

fn rpc_result_commands(
    device: DeviceKey,
    at: Timestamp,
    op: u64,
    request: &str,
    result: &RpcResult,
) -> Vec<TwinCommand> {
    let outcome = match result {
        RpcResult::Fault(fault) => {
            let mut message = fault.message.clone();
            for f in &fault.set_parameter_values_faults {
                message.push_str(&format!("; {}: {} {}", f.parameter_name, f.code, f.message));
            }
            Outcome::Failed {
                code: fault.code,
                message,
            }
        }
        RpcResult::Response(response) => match response.as_ref() {
            CwmpMessage::SetParameterValuesResponse(r) => Outcome::Done {
                detail: format!("status {}", r.status),
            },
            // The reboot is confirmed by the `M Reboot` Inform that follows.
            CwmpMessage::RebootResponse(_) => Outcome::Accepted,
            CwmpMessage::FactoryResetResponse(_) => Outcome::Done {
                detail: "factory reset accepted".into(),
            },
            CwmpMessage::DownloadResponse(r) => transfer_outcome(r.status),
            CwmpMessage::UploadResponse(r) => transfer_outcome(r.status),
            CwmpMessage::AddObjectResponse(r) => Outcome::Added {
                instance: r.instance_number,
            },
            CwmpMessage::DeleteObjectResponse(r) => Outcome::Done {
                detail: format!("status {}", r.status),
            },
            CwmpMessage::GetParameterValuesResponse(r) => {
                return vec![
                    TwinCommand::ReportValues {
                        device: device.clone(),
                        at,
                        source: Source::Refresh,
                        params: reported(&r.parameters),
                    },
                    TwinCommand::CompleteOperation {
                        device,
                        at,
                        operation: op,
                        outcome: Outcome::Done {
                            // A tree read reports its values as it goes and answers empty.
                            detail: if r.parameters.is_empty() {
                                "read by leaf names".into()
                            } else {
                                format!("{} values", r.parameters.len())
                            },
                        },
                    },
                ];
            }
            CwmpMessage::ScheduleInformResponse(_) => Outcome::Done {
                detail: "inform scheduled".into(),
            },
            CwmpMessage::GetRpcMethodsResponse(r) => Outcome::Done {
                detail: r.methods.join(","),
            },
            CwmpMessage::GetParameterAttributesResponse(r) => Outcome::Done {
                detail: r
                    .parameters
                    .iter()
                    .map(|p| format!("{}={}", p.name, p.notification))
                    .collect::<Vec<_>>()
                    .join(","),
            },
            other => Outcome::Failed {
                code: 8003,
                message: format!("{request} answered with {}", other.name()),
            },
        },
    };
    vec![TwinCommand::CompleteOperation {
        device,
        at,
        operation: op,
        outcome,
    }]
}

/// TR-069 A.3.2.8: status 0 means the transfer completed in the session, 1 that it completes later
/// with a TransferComplete.
fn transfer_outcome(status: u32) -> Outcome {
    if status == 0 {
        Outcome::Done {
            detail: "transfer complete".into(),
        }
    } else {
        Outcome::Accepted
    }
}

/// Turns the planner's tasks into session tasks, noting in `memory` what the session must
/// remember to interpret the results.
pub fn session_tasks(
    planned: Vec<PlannedTask>,
    twin: &Twin,
    dict: &PathDict,
    model: &DataModel,
    memory: &mut SessionMemory,
) -> Vec<Task> {
    let leaf_reads = quirks::has(twin, quirks::OBJECT_PATH_READS_FAIL);
    planned
        .into_iter()
        .filter_map(|task| {
            Some(match task {
                PlannedTask::SetConnectionRequestCredentials {
                    username_path,
                    password_path,
                } => {
                    let username = format!(
                        "radar-{}",
                        twin.meta
                            .serial
                            .chars()
                            .filter(char::is_ascii_alphanumeric)
                            .take(32)
                            .collect::<String>()
                    );
                    let password = hex::encode(rand::random::<[u8; 12]>());
                    memory.credentials = Some((username.clone(), password.clone()));
                    Task::Rpc {
                        origin: CREDENTIALS_ORIGIN,
                        message: CwmpMessage::SetParameterValues(SetParameterValues {
                            parameters: vec![
                                ParameterValue::new(username_path, username, "xsd:string"),
                                ParameterValue::new(password_path, password, "xsd:string"),
                            ],
                            parameter_key: String::new(),
                        }),
                    }
                }
                PlannedTask::Discover { prefix } => Task::Discover { prefix },
                PlannedTask::Refresh { prefix } if prefix.ends_with('.') && leaf_reads => {
                    Task::ReadTree {
                        prefix,
                        origin: None,
                    }
                }
                PlannedTask::Refresh { prefix } => Task::Refresh {
                    names: vec![prefix],
                },
                PlannedTask::ConfigureNotifications { active, passive } => {
                    memory.notify_active = active.clone();
                    let entry = |name: String, notification: u8| SetParameterAttributesStruct {
                        name,
                        notification_change: true,
                        notification,
                        access_list_change: false,
                        access_list: vec![],
                    };
                    let parameters: Vec<_> = active
                        .into_iter()
                        .map(|n| entry(n, 2))
                        .chain(passive.into_iter().map(|n| entry(n, 1)))
                        .collect();
                    Task::Rpc {
                        origin: NOTIFICATION_ORIGIN,
                        message: CwmpMessage::SetParameterAttributes(SetParameterAttributes {
                            parameters,
                        }),
                    }
                }
                PlannedTask::Operation(op) => {
                    let key = op.command_key();
                    let message = match &op.kind {
                        OperationKind::SetParams { params } => {
                            CwmpMessage::SetParameterValues(SetParameterValues {
                                parameters: params
                                    .iter()
                                    .map(|(path, value)| {
                                        let ty = twin
                                            .param_by_path(dict, path)
                                            .map(|p| p.ty)
                                            .or_else(|| model.spec(path).map(|s| s.ty))
                                            .unwrap_or_default();
                                        ParameterValue::new(path.clone(), value.clone(), ty.xsd())
                                    })
                                    .collect(),
                                parameter_key: key,
                            })
                        }
                        OperationKind::Reboot => CwmpMessage::Reboot(Reboot { command_key: key }),
                        OperationKind::FactoryReset => CwmpMessage::FactoryReset(FactoryReset),
                        OperationKind::Download {
                            url,
                            file_type,
                            file_size,
                            target_file_name,
                            username,
                            password,
                        } => CwmpMessage::Download(Download {
                            command_key: key,
                            file_type: file_type.clone(),
                            url: url.clone(),
                            username: username.clone(),
                            password: password.clone(),
                            file_size: *file_size,
                            target_file_name: target_file_name.clone(),
                            ..Default::default()
                        }),
                        OperationKind::Upload { url, file_type } => CwmpMessage::Upload(Upload {
                            command_key: key,
                            file_type: file_type.clone(),
                            url: url.clone(),
                            ..Default::default()
                        }),
                        OperationKind::AddObject { path } => CwmpMessage::AddObject(AddObject {
                            object_name: path.clone(),
                            parameter_key: key,
                        }),
                        OperationKind::DeleteObject { path } => {
                            CwmpMessage::DeleteObject(DeleteObject {
                                object_name: path.clone(),
                                parameter_key: key,
                            })
                        }
                        OperationKind::ScheduleInform { delay_seconds } => {
                            CwmpMessage::ScheduleInform(ScheduleInform {
                                delay_seconds: *delay_seconds,
                                command_key: key,
                            })
                        }
                        OperationKind::GetRpcMethods => CwmpMessage::GetRpcMethods(GetRpcMethods),
                        OperationKind::GetAttributes { paths } => {
                            CwmpMessage::GetParameterAttributes(GetParameterAttributes {
                                names: paths.clone(),
                            })
                        }
                        // TR-069 has no Operate; the API refuses it for CWMP twins, so one can only
                        // be here if the device changed protocol. It waits for a USP connect.
                        OperationKind::Operate { .. } => return None,
                        OperationKind::Refresh { prefix } => {
                            let prefix = if prefix.is_empty() {
                                twin.meta.root.clone()
                            } else {
                                prefix.clone()
                            };
                            if prefix.ends_with('.') && leaf_reads {
                                return Some(Task::ReadTree {
                                    prefix,
                                    origin: Some(Origin::Operation(op.id)),
                                });
                            }
                            CwmpMessage::GetParameterValues(GetParameterValues {
                                names: vec![prefix],
                            })
                        }
                    };
                    Task::Rpc {
                        origin: Origin::Operation(op.id),
                        message,
                    }
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use radar_cwmp::rpc::fault::CwmpFault;
    use radar_twin::{apply, ShardState};

    fn key() -> DeviceKey {
        DeviceKey::parse("os::000000-X").unwrap()
    }

    #[test]
    fn set_params_uses_reported_type_then_model_type() {
        let mut s = ShardState::default();
        let inform = TwinCommand::Inform {
            device: key(),
            at: Timestamp(1),
            identity: Identity::default(),
            events: vec![],
            params: vec![ReportedParam {
                path: "Device.X_V_Level".into(),
                value: "1".into(),
                ty: Some(ParamType::UnsignedInt),
                writable: Some(true),
            }],
        };
        apply(&mut s, &inform).unwrap();
        let mut params = std::collections::BTreeMap::new();
        params.insert("Device.X_V_Level".to_string(), "2".to_string());
        params.insert(
            "Device.ManagementServer.PeriodicInformInterval".to_string(),
            "60".to_string(),
        );
        let enqueue = TwinCommand::EnqueueOperation {
            device: key(),
            at: Timestamp(2),
            kind: OperationKind::SetParams { params },
            requested_by: "t".into(),
            ttl_ms: None,
        };
        apply(&mut s, &enqueue).unwrap();
        let twin = &s.twins[&key()];
        let op = twin.operations[0].clone();
        let tasks = session_tasks(
            vec![PlannedTask::Operation(op)],
            twin,
            &s.dict,
            DataModel::tr181(),
            &mut SessionMemory::default(),
        );
        let Task::Rpc {
            origin: Origin::Operation(1),
            message: CwmpMessage::SetParameterValues(spv),
        } = &tasks[0]
        else {
            panic!("{tasks:?}")
        };
        assert_eq!(spv.parameter_key, "radar-op-1");
        let types: Vec<_> = spv
            .parameters
            .iter()
            .map(|p| (p.name.as_str(), p.xsd_type.as_deref().unwrap()))
            .collect();
        assert_eq!(
            types,
            [
                (
                    "Device.ManagementServer.PeriodicInformInterval",
                    "xsd:unsignedInt"
                ),
                ("Device.X_V_Level", "xsd:unsignedInt")
            ]
        );
    }

    #[test]
    fn faults_fail_operations_with_details() {
        let mut fault = CwmpFault::new(9003, "Invalid arguments");
        fault
            .set_parameter_values_faults
            .push(radar_cwmp::rpc::fault::SetParameterValuesFault {
                parameter_name: "Device.A".into(),
                code: 9007,
                message: "Invalid parameter value".into(),
            });
        let event = SessionEvent::RpcResult {
            origin: Origin::Operation(4),
            request: "SetParameterValues",
            result: RpcResult::Fault(fault),
        };
        let cmds = event_commands(&key(), &event, Timestamp(9), &SessionMemory::default());
        let TwinCommand::CompleteOperation {
            operation: 4,
            outcome:
                Outcome::Failed {
                    code: 9003,
                    message,
                },
            ..
        } = &cmds[0]
        else {
            panic!("{cmds:?}")
        };
        assert!(message.contains("Device.A: 9007"));
    }

    #[test]
    fn refused_notifications_are_recorded() {
        let event = SessionEvent::RpcResult {
            origin: NOTIFICATION_ORIGIN,
            request: "SetParameterAttributes",
            result: RpcResult::Fault(CwmpFault::new(9009, "rejected")),
        };
        let memory = SessionMemory {
            notify_active: vec!["Device.A".to_string()],
            credentials: None,
        };
        let cmds = event_commands(&key(), &event, Timestamp(1), &memory);
        assert!(
            matches!(&cmds[0], TwinCommand::NotificationsConfigured { refused, .. } if refused == &["Device.A"])
        );
    }
}
