use super::*;
use crate::model::ShardState;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn key() -> DeviceKey {
    DeviceKey::parse("os::00D09E-SN1").unwrap()
}

fn p(path: &str, value: &str) -> ReportedParam {
    ReportedParam {
        path: path.into(),
        value: value.into(),
        ty: Some(ParamType::String),
        writable: None,
    }
}

fn inform(at: u64, events: &[(&str, &str)], params: Vec<ReportedParam>) -> TwinCommand {
    TwinCommand::Inform {
        device: key(),
        at: Timestamp(at),
        identity: Identity {
            oui: "00d09e".into(),
            product_class: "HG".into(),
            serial: "SN1".into(),
            manufacturer: "Acme".into(),
        },
        events: events
            .iter()
            .map(|(c, k)| (c.to_string(), k.to_string()))
            .collect(),
        params,
    }
}

fn set(at: u64, params: &[(&str, &str)]) -> TwinCommand {
    TwinCommand::EnqueueOperation {
        device: key(),
        at: Timestamp(at),
        kind: OperationKind::SetParams {
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        },
        requested_by: "test".into(),
        ttl_ms: None,
    }
}

fn mark_sent(at: u64, operation: u64) -> TwinCommand {
    TwinCommand::MarkSent {
        device: key(),
        at: Timestamp(at),
        operation,
    }
}

fn enqueue(at: u64, kind: OperationKind) -> TwinCommand {
    TwinCommand::EnqueueOperation {
        device: key(),
        at: Timestamp(at),
        kind,
        requested_by: "t".into(),
        ttl_ms: None,
    }
}

fn status(state: &ShardState, op: u64) -> &OperationStatus {
    &state.twins[&key()].operation(op).unwrap().status
}

#[test]
fn inform_creates_twin_with_meta_and_params() {
    let mut s = ShardState::default();
    apply(
        &mut s,
        &inform(
            10,
            &[("0 BOOTSTRAP", "")],
            vec![p("Device.DeviceInfo.SoftwareVersion", "1.2")],
        ),
    )
    .unwrap();
    let twin = &s.twins[&key()];
    assert_eq!(twin.meta.oui, "00D09E");
    assert_eq!(twin.meta.software_version, "1.2");
    assert_eq!(twin.meta.root, "Device.");
    assert_eq!(twin.meta.first_contact, Timestamp(10));
    let param = twin
        .param_by_path(&s.dict, "Device.DeviceInfo.SoftwareVersion")
        .unwrap();
    assert_eq!(
        (&*param.value, param.source, param.reported_at),
        ("1.2", Source::Inform, Timestamp(10))
    );
}

#[test]
fn commands_for_unknown_devices_fail() {
    let mut s = ShardState::default();
    assert_eq!(
        apply(&mut s, &set(1, &[("Device.X", "1")])),
        Err(ApplyError::UnknownDevice(key()))
    );
}

#[test]
fn set_params_lifecycle_updates_reported_only_when_done() {
    let mut s = ShardState::default();
    apply(
        &mut s,
        &inform(1, &[], vec![p("Device.WiFi.SSID.1.SSID", "old")]),
    )
    .unwrap();
    let op = apply(&mut s, &set(2, &[("Device.WiFi.SSID.1.SSID", "new")]))
        .unwrap()
        .operation
        .unwrap();
    assert_eq!(status(&s, op), &OperationStatus::Queued);
    apply(
        &mut s,
        &TwinCommand::MarkSent {
            device: key(),
            at: Timestamp(3),
            operation: op,
        },
    )
    .unwrap();
    assert_eq!(
        &*s.twins[&key()]
            .param_by_path(&s.dict, "Device.WiFi.SSID.1.SSID")
            .unwrap()
            .value,
        "old"
    );
    let done = TwinCommand::CompleteOperation {
        device: key(),
        at: Timestamp(4),
        operation: op,
        outcome: Outcome::Done {
            detail: "status 0".into(),
        },
    };
    apply(&mut s, &done).unwrap();
    let param = s.twins[&key()]
        .param_by_path(&s.dict, "Device.WiFi.SSID.1.SSID")
        .unwrap()
        .clone();
    assert_eq!((&*param.value, param.source), ("new", Source::Spv));
    // Redelivery of the same result is a no-op.
    apply(&mut s, &done).unwrap();
    assert!(matches!(
        status(&s, op),
        OperationStatus::Done {
            at: Timestamp(4),
            ..
        }
    ));
}

#[test]
fn fault_keeps_old_value() {
    let mut s = ShardState::default();
    apply(&mut s, &inform(1, &[], vec![p("Device.X", "old")])).unwrap();
    let op = apply(&mut s, &set(2, &[("Device.X", "new")]))
        .unwrap()
        .operation
        .unwrap();
    let failed = Outcome::Failed {
        code: 9008,
        message: "not writable".into(),
    };
    apply(
        &mut s,
        &TwinCommand::CompleteOperation {
            device: key(),
            at: Timestamp(3),
            operation: op,
            outcome: failed,
        },
    )
    .unwrap();
    assert!(matches!(
        status(&s, op),
        OperationStatus::Failed { code: 9008, .. }
    ));
    assert_eq!(
        &*s.twins[&key()]
            .param_by_path(&s.dict, "Device.X")
            .unwrap()
            .value,
        "old"
    );
}

#[test]
fn second_write_to_same_path_supersedes_and_merges() {
    let mut s = ShardState::default();
    apply(&mut s, &inform(1, &[], vec![])).unwrap();
    let first = apply(&mut s, &set(2, &[("Device.A", "1"), ("Device.B", "1")]))
        .unwrap()
        .operation
        .unwrap();
    let second = apply(&mut s, &set(3, &[("Device.A", "2")]))
        .unwrap()
        .operation
        .unwrap();
    assert_eq!(
        status(&s, first),
        &OperationStatus::Superseded {
            at: Timestamp(3),
            by: second
        }
    );
    let OperationKind::SetParams { params } = &s.twins[&key()].operation(second).unwrap().kind
    else {
        panic!()
    };
    assert_eq!(params.get("Device.A").map(String::as_str), Some("2"));
    assert_eq!(params.get("Device.B").map(String::as_str), Some("1"));
}

#[test]
fn reboot_closes_on_m_reboot_with_its_command_key() {
    let mut s = ShardState::default();
    apply(&mut s, &inform(1, &[], vec![])).unwrap();
    let reboot = TwinCommand::EnqueueOperation {
        device: key(),
        at: Timestamp(2),
        kind: OperationKind::Reboot,
        requested_by: "t".into(),
        ttl_ms: None,
    };
    let op = apply(&mut s, &reboot).unwrap().operation.unwrap();
    apply(
        &mut s,
        &TwinCommand::MarkSent {
            device: key(),
            at: Timestamp(3),
            operation: op,
        },
    )
    .unwrap();
    apply(
        &mut s,
        &inform(
            4,
            &[("1 BOOT", ""), ("M Reboot", &format!("radar-op-{op}"))],
            vec![],
        ),
    )
    .unwrap();
    assert!(matches!(status(&s, op), OperationStatus::Done { .. }));
}

#[test]
fn transfer_complete_closes_download_by_command_key() {
    let mut s = ShardState::default();
    apply(&mut s, &inform(1, &[], vec![])).unwrap();
    let kind = OperationKind::Download {
        url: "http://x/fw".into(),
        file_type: "1 Firmware Upgrade Image".into(),
        file_size: 0,
        target_file_name: String::new(),
        username: String::new(),
        password: String::new(),
    };
    let op = apply(
        &mut s,
        &TwinCommand::EnqueueOperation {
            device: key(),
            at: Timestamp(2),
            kind,
            requested_by: "t".into(),
            ttl_ms: None,
        },
    )
    .unwrap()
    .operation
    .unwrap();
    apply(
        &mut s,
        &TwinCommand::CompleteOperation {
            device: key(),
            at: Timestamp(3),
            operation: op,
            outcome: Outcome::Accepted,
        },
    )
    .unwrap();
    assert!(matches!(status(&s, op), OperationStatus::Sent { .. }));
    let tc = TwinCommand::TransferComplete {
        device: key(),
        at: Timestamp(4),
        command_key: format!("radar-op-{op}"),
        fault_code: 9010,
        fault_message: "download failed".into(),
    };
    apply(&mut s, &tc).unwrap();
    assert!(matches!(
        status(&s, op),
        OperationStatus::Failed { code: 9010, .. }
    ));
}

#[test]
fn ttl_expires_queued_operations_and_finished_ones_cannot_be_cancelled() {
    let mut s = ShardState::default();
    apply(&mut s, &inform(1, &[], vec![])).unwrap();
    let cmd = TwinCommand::EnqueueOperation {
        device: key(),
        at: Timestamp(10),
        kind: OperationKind::Reboot,
        requested_by: "t".into(),
        ttl_ms: Some(100),
    };
    let op = apply(&mut s, &cmd).unwrap().operation.unwrap();
    apply(&mut s, &inform(200, &[], vec![])).unwrap();
    assert_eq!(
        status(&s, op),
        &OperationStatus::Expired { at: Timestamp(200) }
    );
    let cancel = TwinCommand::CancelOperation {
        device: key(),
        at: Timestamp(201),
        operation: op,
    };
    assert_eq!(
        apply(&mut s, &cancel),
        Err(ApplyError::NotCancellable {
            id: op,
            status: "expired".into()
        })
    );
}

#[test]
fn report_names_removes_deleted_objects_and_marks_discovery() {
    let mut s = ShardState::default();
    apply(
        &mut s,
        &inform(
            1,
            &[],
            vec![
                p("Device.Hosts.Host.1.IPAddress", "1.1.1.1"),
                p("Device.Hosts.Host.2.IPAddress", "2.2.2.2"),
            ],
        ),
    )
    .unwrap();
    let names = vec![
        ("Device.".to_string(), false),
        ("Device.Hosts.Host.2.IPAddress".to_string(), false),
        ("Device.X".to_string(), true),
    ];
    apply(
        &mut s,
        &TwinCommand::ReportNames {
            device: key(),
            at: Timestamp(2),
            prefix: "Device.".into(),
            names,
        },
    )
    .unwrap();
    let twin = &s.twins[&key()];
    assert!(twin
        .param_by_path(&s.dict, "Device.Hosts.Host.1.IPAddress")
        .is_none());
    assert!(twin
        .param_by_path(&s.dict, "Device.Hosts.Host.2.IPAddress")
        .is_some());
    assert!(twin.param_by_path(&s.dict, "Device.X").unwrap().writable);
    assert_eq!(twin.meta.discovered_at, Some(Timestamp(2)));
}

#[test]
fn bootstrap_resets_discovery() {
    let mut s = ShardState::default();
    apply(&mut s, &inform(1, &[], vec![p("Device.X", "1")])).unwrap();
    apply(
        &mut s,
        &TwinCommand::ReportNames {
            device: key(),
            at: Timestamp(2),
            prefix: "Device.".into(),
            names: vec![],
        },
    )
    .unwrap();
    assert!(s.twins[&key()].meta.discovered_at.is_some());
    apply(&mut s, &inform(3, &[("0 BOOTSTRAP", "")], vec![])).unwrap();
    assert_eq!(s.twins[&key()].meta.discovered_at, None);
}

#[test]
fn event_log_is_bounded_and_counts_repeats() {
    let mut s = ShardState::default();
    for i in 0..200 {
        apply(&mut s, &inform(i, &[("2 PERIODIC", "")], vec![])).unwrap();
    }
    let events = &s.twins[&key()].events;
    assert_eq!(events.len(), 1, "a run of periodic informs is one entry");
    assert_eq!(
        (events[0].repeated, events[0].first_at, events[0].at),
        (200, Timestamp(0), Timestamp(199))
    );
    for i in 0..200 {
        let code = if i % 2 == 0 { "1 BOOT" } else { "2 PERIODIC" };
        apply(&mut s, &inform(1000 + i, &[(code, "")], vec![])).unwrap();
    }
    assert_eq!(
        s.twins[&key()].events.len(),
        crate::model::EVENT_LOG_CAPACITY
    );
}

proptest! {
    /// Coalescing never loses a write: after any sequence of queued writes, the union of pending
    /// set_params operations holds, for every path, the value of the last write to it.
    #[test]
    fn coalesced_writes_keep_last_value_per_path(writes in proptest::collection::vec((0u8..4, 0u32..100), 1..30)) {
        let mut s = ShardState::default();
        apply(&mut s, &inform(0, &[], vec![])).unwrap();
        let mut expected = BTreeMap::new();
        for (i, (path, value)) in writes.iter().enumerate() {
            let path = format!("Device.P{path}");
            apply(&mut s, &set(i as u64 + 1, &[(&path, &value.to_string())])).unwrap();
            expected.insert(path, value.to_string());
        }
        let mut pending = BTreeMap::new();
        for op in s.twins[&key()].pending_operations() {
            if let OperationKind::SetParams { params } = &op.kind {
                for (k, v) in params {
                    prop_assert!(pending.insert(k.clone(), v.clone()).is_none(), "path in two pending ops");
                }
            }
        }
        prop_assert_eq!(pending, expected);
    }

    /// apply is deterministic: two replicas applying the same log end identical.
    #[test]
    fn replicas_converge(values in proptest::collection::vec(0u32..1000, 1..20)) {
        let log: Vec<TwinCommand> = values.iter().enumerate().map(|(i, v)| {
            if i % 3 == 0 { set(i as u64 + 1, &[("Device.A", &v.to_string())]) }
            else { inform(i as u64 + 1, &[("2 PERIODIC", "")], vec![p(&format!("Device.N.{v}.X"), "1")]) }
        }).collect();
        let mut a = ShardState::default();
        let mut b = ShardState::default();
        apply(&mut a, &inform(0, &[], vec![])).unwrap();
        apply(&mut b, &inform(0, &[], vec![])).unwrap();
        for cmd in &log {
            let ra = apply(&mut a, cmd);
            let rb = apply(&mut b, cmd);
            prop_assert_eq!(ra, rb);
        }
        prop_assert_eq!(&a.twins, &b.twins);
        prop_assert_eq!(a.dict.templates(), b.dict.templates());
    }
}

fn usp_connect(at: u64) -> TwinCommand {
    TwinCommand::UspConnected {
        device: key(),
        at: Timestamp(at),
        mtp: "websocket".into(),
        reply_to: String::new(),
    }
}

#[test]
fn usp_connect_creates_an_online_twin_named_by_its_endpoint_id() {
    let mut s = ShardState::default();
    apply(&mut s, &usp_connect(5)).unwrap();
    let meta = &s.twins[&key()].meta;
    assert_eq!(
        (meta.protocol.as_str(), meta.mtp.as_str(), meta.connected),
        ("usp", "websocket", true)
    );
    assert_eq!((meta.oui.as_str(), meta.serial.as_str()), ("00D09E", "SN1"));
    apply(
        &mut s,
        &TwinCommand::ReportValues {
            device: key(),
            at: Timestamp(6),
            source: Source::UspGet,
            params: vec![p("Device.DeviceInfo.ProductClass", "HG-USP")],
        },
    )
    .unwrap();
    assert_eq!(s.twins[&key()].meta.product_class, "HG-USP");
    apply(
        &mut s,
        &TwinCommand::UspDisconnected {
            device: key(),
            at: Timestamp(7),
            reason: "closed".into(),
        },
    )
    .unwrap();
    assert!(!s.twins[&key()].meta.connected);
}

#[test]
fn a_snapshot_replaces_its_subtree_and_completes_discovery() {
    let mut s = ShardState::default();
    apply(&mut s, &usp_connect(1)).unwrap();
    let snapshot = |at, params, complete| TwinCommand::ReportSnapshot {
        device: key(),
        at: Timestamp(at),
        source: Source::UspGet,
        prefix: "Device.Hosts.".into(),
        params,
        complete,
    };
    apply(
        &mut s,
        &snapshot(
            2,
            vec![
                p("Device.Hosts.Host.1.HostName", "a"),
                p("Device.Hosts.Host.2.HostName", "b"),
            ],
            false,
        ),
    )
    .unwrap();
    assert_eq!(s.twins[&key()].meta.discovered_at, None);
    apply(
        &mut s,
        &snapshot(3, vec![p("Device.Hosts.Host.2.HostName", "b")], true),
    )
    .unwrap();
    let twin = &s.twins[&key()];
    assert!(twin
        .param_by_path(&s.dict, "Device.Hosts.Host.1.HostName")
        .is_none());
    assert!(twin
        .param_by_path(&s.dict, "Device.Hosts.Host.2.HostName")
        .is_some());
    assert_eq!(twin.meta.discovered_at, Some(Timestamp(3)));
    apply(
        &mut s,
        &TwinCommand::RemoveObject {
            device: key(),
            at: Timestamp(4),
            path: "Device.Hosts.Host.2.".into(),
        },
    )
    .unwrap();
    assert!(s.twins[&key()].params.is_empty());
}

/// Behaviours found against real peers (obuspa, genieacs-sim): boots, subscriptions, deliveries.
mod field;
