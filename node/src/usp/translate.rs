//! USP session events → twin commands, and queued operations → USP requests. Pure functions, so
//! the mapping is tested without sockets.

use radar_core::{DeviceKey, Timestamp};
use radar_twin::command::Outcome;
use radar_twin::{
    Operation, OperationKind, PathDict, ReportedParam, Source, SubscriptionStanding,
    SubscriptionStatus, Twin, TwinCommand,
};
use radar_usp::errors;
use radar_usp::request::{Failure, Reply, Request};
use radar_usp::session::{SessionEvent, TypedValue, ValueSource};
use radar_usp::subscriptions::{Report, Standing};
use std::collections::HashMap;

/// TR-181 commands whose end is the agent's next `Device.Boot!`, not their OperateResp.
const BOOTING_COMMANDS: [&str; 2] = ["Device.Reboot()", "Device.FactoryReset()"];
const FIRMWARE_IMAGES: &str = "Device.DeviceInfo.FirmwareImage.";

fn reported(values: Vec<TypedValue>) -> Vec<ReportedParam> {
    values
        .into_iter()
        .map(|v| ReportedParam {
            path: v.path,
            value: v.value,
            ty: v.schema.map(|s| s.ty),
            writable: v.schema.map(|s| s.writable),
        })
        .collect()
}

fn failed(f: Failure) -> Outcome {
    Outcome::Failed {
        code: f.code,
        message: f.message,
    }
}

/// The commands that record a session event on the twin.
pub fn event_commands(device: &DeviceKey, at: Timestamp, event: SessionEvent) -> Vec<TwinCommand> {
    let device = device.clone();
    let record = |kind: &str, detail: String| TwinCommand::RecordEvent {
        device: device.clone(),
        at,
        kind: kind.into(),
        detail,
    };
    match event {
        SessionEvent::AgentProtocol { versions } => vec![TwinCommand::UspProtocol {
            device: device.clone(),
            at,
            versions,
        }],
        SessionEvent::Values {
            source,
            values,
            snapshot: Some(snapshot),
        } => vec![TwinCommand::ReportSnapshot {
            device: device.clone(),
            at,
            source: match source {
                ValueSource::Notify => Source::Notify,
                _ => Source::UspGet,
            },
            prefix: snapshot.prefix,
            params: reported(values),
            complete: snapshot.complete,
        }],
        SessionEvent::Values {
            source,
            values,
            snapshot: None,
        } => vec![TwinCommand::ReportValues {
            device: device.clone(),
            at,
            source: match source {
                ValueSource::Notify => Source::Notify,
                _ => Source::UspGet,
            },
            params: reported(values),
        }],
        SessionEvent::ObjectCreated { path, .. } => vec![record("object", format!("{path} created"))],
        SessionEvent::ObjectDeleted { path } => vec![TwinCommand::RemoveObject {
            device: device.clone(),
            at,
            path,
        }],
        SessionEvent::Event { path, args } => vec![TwinCommand::DeviceEvent {
            device: device.clone(),
            at,
            path,
            args: args.into_iter().collect(),
        }],
        SessionEvent::OperationComplete {
            command,
            command_key,
            result,
        } => {
            let detail = match &result {
                Ok(_) => format!("{command} complete"),
                Err(f) => format!("{command} failed: {} {}", f.code, f.message),
            };
            let mut commands = vec![record("operation_complete", detail)];
            if let Some(id) = Operation::id_from_command_key(&command_key) {
                commands.push(TwinCommand::CompleteOperation {
                    device: device.clone(),
                    at,
                    operation: id,
                    outcome: match result {
                        Ok(args) => Outcome::Done {
                            detail: output_detail(&command, &args),
                        },
                        Err(f) => failed(f),
                    },
                });
            }
            commands
        }
        SessionEvent::OnBoardRequest {
            oui,
            product_class,
            serial,
            versions,
        } => vec![record(
            "onboard",
            format!("OnBoardRequest oui={oui} product_class={product_class} serial={serial} versions={versions}"),
        )],
        SessionEvent::Completed {
            id,
            request,
            result,
        } => completion_commands(&device, at, id, &request, result),
        SessionEvent::Requeue { id } => vec![TwinCommand::RequeueOperation {
            device: device.clone(),
            at,
            operation: id,
        }],
        SessionEvent::Subscriptions { reports, removed } => {
            vec![TwinCommand::UspSubscriptions {
                device: device.clone(),
                at,
                subscriptions: reports.into_iter().map(subscription_status).collect(),
                removed: u32::try_from(removed).unwrap_or(u32::MAX),
            }]
        }
        SessionEvent::RequestFailed { what, failure } => vec![record(
            "usp_error",
            format!("{what}: {} {}", failure.code, failure.message),
        )],
        SessionEvent::Ignored { .. } => Vec::new(),
    }
}

pub fn subscription_status(report: Report) -> SubscriptionStatus {
    SubscriptionStatus {
        notif_type: report.desired.notif_type.as_str().into(),
        reference: report.desired.reference,
        standing: match report.standing {
            Standing::InPlace { note } => SubscriptionStanding::InPlace { note },
            Standing::Refused { code, message } => SubscriptionStanding::Refused { code, message },
            Standing::NotInDataModel { reason } => SubscriptionStanding::NotInDataModel { reason },
        },
    }
}

fn output_detail(command: &str, args: &std::collections::BTreeMap<String, String>) -> String {
    if args.is_empty() {
        return format!("{command} complete");
    }
    let shown: Vec<String> = args
        .iter()
        .take(8)
        .map(|(k, v)| format!("{k}={}", v.chars().take(64).collect::<String>()))
        .collect();
    format!("{command}: {}", shown.join(" "))
}

fn completion_commands(
    device: &DeviceKey,
    at: Timestamp,
    id: u64,
    request: &Request,
    result: Result<Reply, Failure>,
) -> Vec<TwinCommand> {
    let mut commands = Vec::new();
    let outcome = match result {
        Err(f) => failed(f),
        Ok(Reply::Values(values)) => {
            commands.push(TwinCommand::ReportValues {
                device: device.clone(),
                at,
                source: Source::UspGet,
                params: values
                    .into_iter()
                    .map(|v| ReportedParam {
                        path: v.path,
                        value: v.value,
                        ty: None,
                        writable: None,
                    })
                    .collect(),
            });
            Outcome::Done {
                detail: "refreshed".into(),
            }
        }
        Ok(Reply::Set { .. }) => Outcome::Done {
            detail: "set".into(),
        },
        Ok(Reply::Added {
            instantiated_path, ..
        }) => match instance_number(&instantiated_path) {
            Some(instance) => Outcome::Added { instance },
            None => Outcome::Done {
                detail: format!("created {instantiated_path}"),
            },
        },
        Ok(Reply::Deleted { .. }) => Outcome::Done {
            detail: "deleted".into(),
        },
        Ok(Reply::OperateStarted { .. }) => Outcome::Accepted,
        Ok(Reply::OperateDone { output_args }) => match request {
            // Reboot and FactoryReset answer before they act: the Boot! event closes them.
            Request::Operate { command, .. } if BOOTING_COMMANDS.contains(&command.as_str()) => {
                Outcome::Accepted
            }
            Request::Operate { command, .. } => Outcome::Done {
                detail: output_detail(command, &output_args),
            },
            _ => Outcome::Done {
                detail: String::new(),
            },
        },
    };
    commands.push(TwinCommand::CompleteOperation {
        device: device.clone(),
        at,
        operation: id,
        outcome,
    });
    commands
}

fn instance_number(path: &str) -> Option<u32> {
    path.trim_end_matches('.').rsplit('.').next()?.parse().ok()
}

/// The USP request that carries out a queued operation, or why it cannot be sent.
pub fn operation_request(op: &Operation, twin: &Twin, dict: &PathDict) -> Result<Request, Failure> {
    let key = op.command_key();
    let root = if twin.meta.root.is_empty() {
        "Device."
    } else {
        twin.meta.root.as_str()
    };
    Ok(match &op.kind {
        OperationKind::SetParams { params } => Request::set_params(params),
        OperationKind::Reboot => Request::Operate {
            command: "Device.Reboot()".into(),
            command_key: key,
            args: HashMap::new(),
        },
        OperationKind::FactoryReset => Request::Operate {
            command: "Device.FactoryReset()".into(),
            command_key: key,
            args: HashMap::new(),
        },
        OperationKind::Download {
            url,
            file_size,
            username,
            password,
            ..
        } => {
            let image = firmware_image(twin, dict).ok_or_else(|| {
                Failure::new(
                    errors::INVALID_PATH,
                    "agent reports no Device.DeviceInfo.FirmwareImage to download into",
                )
            })?;
            let mut args = HashMap::new();
            args.insert("URL".to_string(), url.clone());
            // TR-181 FirmwareImage.{i}.Download(): activate once downloaded and validated.
            args.insert("AutoActivate".to_string(), "true".to_string());
            if !username.is_empty() {
                args.insert("Username".to_string(), username.clone());
                args.insert("Password".to_string(), password.clone());
            }
            if *file_size > 0 {
                args.insert("FileSize".to_string(), file_size.to_string());
            }
            Request::Operate {
                command: format!("{image}Download()"),
                command_key: key,
                args,
            }
        }
        OperationKind::AddObject { path } => Request::Add {
            obj_path: path.clone(),
            params: Vec::new(),
        },
        OperationKind::DeleteObject { path } => Request::Delete {
            paths: vec![path.clone()],
        },
        OperationKind::Refresh { prefix } => Request::Get {
            paths: vec![if prefix.is_empty() {
                root.to_owned()
            } else {
                prefix.clone()
            }],
            max_depth: 0,
        },
        OperationKind::Operate {
            command,
            input_args,
        } => Request::Operate {
            command: command.clone(),
            command_key: key,
            args: input_args.clone().into_iter().collect(),
        },
        other => {
            return Err(Failure::new(
                errors::MESSAGE_NOT_SUPPORTED,
                format!("{} has no USP equivalent", other.name()),
            ))
        }
    })
}

/// The firmware bank to download into: the first image that is not the active one (TR-181
/// `FirmwareImage.{i}.Status`), so the running image stays as a fallback; else the first.
fn firmware_image(twin: &Twin, dict: &PathDict) -> Option<String> {
    let mut images: Vec<(u32, String)> = twin
        .params
        .iter()
        .filter_map(|(id, _)| {
            let path = dict.render(id);
            let rest = path.strip_prefix(FIRMWARE_IMAGES)?;
            let (n, field) = rest.split_once('.')?;
            (field == "Status").then(|| Some((n.parse().ok()?, path.clone())))?
        })
        .collect();
    images.sort();
    let status = |path: &str| {
        twin.param_by_path(dict, path)
            .map(|p| p.value.to_string())
            .unwrap_or_default()
    };
    images
        .iter()
        .find(|(_, path)| status(path) != "Active")
        .or(images.first())
        .map(|(n, _)| format!("{FIRMWARE_IMAGES}{n}."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use radar_twin::{apply, ShardState};

    fn key() -> DeviceKey {
        DeviceKey::parse("os::00D09E-USP1").unwrap()
    }

    fn twin_with(params: &[(&str, &str)]) -> ShardState {
        let mut s = ShardState::default();
        apply(
            &mut s,
            &TwinCommand::UspConnected {
                device: key(),
                at: Timestamp(1),
                mtp: "websocket".into(),
                reply_to: String::new(),
            },
        )
        .unwrap();
        apply(
            &mut s,
            &TwinCommand::ReportValues {
                device: key(),
                at: Timestamp(2),
                source: Source::UspGet,
                params: params
                    .iter()
                    .map(|(p, v)| ReportedParam {
                        path: p.to_string(),
                        value: v.to_string(),
                        ty: None,
                        writable: None,
                    })
                    .collect(),
            },
        )
        .unwrap();
        s
    }

    fn op(kind: OperationKind) -> Operation {
        Operation {
            id: 4,
            kind,
            status: radar_twin::OperationStatus::Queued,
            created_at: Timestamp(1),
            requested_by: "t".into(),
            expires_at: None,
            attempts: 0,
        }
    }

    #[test]
    fn download_goes_to_the_inactive_firmware_bank() {
        let s = twin_with(&[
            ("Device.DeviceInfo.FirmwareImage.1.Status", "Active"),
            ("Device.DeviceInfo.FirmwareImage.2.Status", "Available"),
        ]);
        let twin = &s.twins[&key()];
        let req = operation_request(
            &op(OperationKind::Download {
                url: "http://x/fw.bin".into(),
                file_type: String::new(),
                file_size: 0,
                target_file_name: String::new(),
                username: String::new(),
                password: String::new(),
            }),
            twin,
            &s.dict,
        )
        .unwrap();
        let Request::Operate {
            command,
            command_key,
            args,
        } = req
        else {
            panic!()
        };
        assert_eq!(command, "Device.DeviceInfo.FirmwareImage.2.Download()");
        assert_eq!(command_key, "radar-op-4");
        assert_eq!(args["AutoActivate"], "true");
        let none = twin_with(&[]);
        assert_eq!(
            operation_request(
                &op(OperationKind::Download {
                    url: "u".into(),
                    file_type: String::new(),
                    file_size: 0,
                    target_file_name: String::new(),
                    username: String::new(),
                    password: String::new(),
                }),
                &none.twins[&key()],
                &none.dict
            )
            .unwrap_err()
            .code,
            7026
        );
        assert_eq!(
            operation_request(&op(OperationKind::GetRpcMethods), twin, &s.dict)
                .unwrap_err()
                .code,
            7001
        );
    }

    #[test]
    fn reboot_stays_open_until_boot_and_adds_report_their_instance() {
        let reboot = Request::Operate {
            command: "Device.Reboot()".into(),
            command_key: "radar-op-4".into(),
            args: HashMap::new(),
        };
        let cmds = completion_commands(
            &key(),
            Timestamp(5),
            4,
            &reboot,
            Ok(Reply::OperateDone {
                output_args: Default::default(),
            }),
        );
        assert!(matches!(
            &cmds[0],
            TwinCommand::CompleteOperation {
                outcome: Outcome::Accepted,
                ..
            }
        ));
        let add = Request::Add {
            obj_path: "Device.NAT.PortMapping.".into(),
            params: vec![],
        };
        let cmds = completion_commands(
            &key(),
            Timestamp(5),
            4,
            &add,
            Ok(Reply::Added {
                instantiated_path: "Device.NAT.PortMapping.3.".into(),
                unique_keys: Default::default(),
            }),
        );
        assert!(matches!(
            &cmds[0],
            TwinCommand::CompleteOperation {
                outcome: Outcome::Added { instance: 3 },
                ..
            }
        ));
        let cmds =
            completion_commands(&key(), Timestamp(5), 4, &add, Err(Failure::new(7019, "no")));
        assert!(matches!(
            &cmds[0],
            TwinCommand::CompleteOperation {
                outcome: Outcome::Failed { code: 7019, .. },
                ..
            }
        ));
    }
}
