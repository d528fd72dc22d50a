//! Twin behaviours found against real peers (issue 11): a reboot completes only on its own
//! boot, subscription reports survive the log encoding, deliveries are bounded.

use super::*;

#[test]
fn boot_event_completes_the_reboot_named_by_its_command_key() {
    let mut s = ShardState::default();
    apply(&mut s, &usp_connect(1)).unwrap();
    apply(&mut s, &enqueue(2, OperationKind::FactoryReset)).unwrap();
    apply(&mut s, &mark_sent(3, 1)).unwrap();
    apply(
        &mut s,
        &TwinCommand::ReportSnapshot {
            device: key(),
            at: Timestamp(3),
            source: Source::UspGet,
            prefix: "Device.".into(),
            params: vec![],
            complete: true,
        },
    )
    .unwrap();
    apply(
        &mut s,
        &TwinCommand::DeviceEvent {
            device: key(),
            at: Timestamp(4),
            path: "Device.Boot!".into(),
            args: vec![
                ("Cause".into(), "RemoteFactoryReset".into()),
                ("CommandKey".into(), "radar-op-1".into()),
            ],
        },
    )
    .unwrap();
    assert!(
        matches!(status(&s, 1), OperationStatus::Done { detail, .. } if detail.contains("RemoteFactoryReset"))
    );
    // A factory reset wiped the agent's model: it is read again at the next connect.
    assert_eq!(s.twins[&key()].meta.discovered_at, None);
    assert!(OperationKind::Operate {
        command: "Device.X()".into(),
        input_args: Default::default()
    }
    .supported_by("usp"));
    assert!(!OperationKind::GetRpcMethods.supported_by("usp"));
    assert!(!OperationKind::Operate {
        command: "Device.X()".into(),
        input_args: Default::default()
    }
    .supported_by("cwmp"));
}

/// Seen with obuspa: a pending `Device.Reboot()` (radar-op-1) was marked done by a Boot! whose
/// CommandKey was empty and whose Cause was LocalReboot, after an unrelated restart.
#[test]
fn a_boot_for_another_reason_does_not_complete_a_reboot_and_its_timeout_says_so() {
    use crate::operation::{BOOT_CONFIRMATION_WINDOW_MS, UNCONFIRMED};
    let mut s = ShardState::default();
    apply(&mut s, &usp_connect(1)).unwrap();
    apply(&mut s, &enqueue(2, OperationKind::Reboot)).unwrap();
    apply(&mut s, &mark_sent(3, 1)).unwrap();
    let boot = |at: u64, cause: &str, command_key: &str| TwinCommand::DeviceEvent {
        device: key(),
        at: Timestamp(at),
        path: "Device.Boot!".into(),
        args: vec![
            ("Cause".into(), cause.into()),
            ("CommandKey".into(), command_key.into()),
        ],
    };
    apply(&mut s, &boot(4, "LocalReboot", "")).unwrap();
    assert!(matches!(status(&s, 1), OperationStatus::Sent { .. }));
    apply(&mut s, &boot(5, "RemoteReboot", "radar-op-99")).unwrap();
    assert!(matches!(status(&s, 1), OperationStatus::Sent { .. }));
    let events: Vec<&str> = s.twins[&key()]
        .events
        .iter()
        .filter(|e| e.kind == "unconfirmed_boot")
        .map(|e| e.detail.as_str())
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");

    // Its window closes: the next command records the failure, and says what came instead.
    let late = 3 + BOOT_CONFIRMATION_WINDOW_MS;
    let reading = s.twins[&key()].operations[0].effective_status(Timestamp(late));
    assert!(matches!(
        reading,
        OperationStatus::Failed {
            code: UNCONFIRMED,
            ..
        }
    ));
    apply(
        &mut s,
        &TwinCommand::RecordEvent {
            device: key(),
            at: Timestamp(late),
            kind: "x".into(),
            detail: "y".into(),
        },
    )
    .unwrap();
    match status(&s, 1) {
        OperationStatus::Failed { code, message, .. } => {
            assert_eq!(*code, UNCONFIRMED);
            assert!(message.contains("radar-op-1"), "{message}");
            assert!(message.contains("LocalReboot"), "{message}");
            assert!(message.contains("radar-op-99"), "{message}");
        }
        other => panic!("{other:?}"),
    }

    // The matching Boot! does complete a second reboot.
    apply(&mut s, &enqueue(late + 1, OperationKind::Reboot)).unwrap();
    apply(&mut s, &mark_sent(late + 2, 2)).unwrap();
    apply(&mut s, &boot(late + 3, "RemoteReboot", "radar-op-2")).unwrap();
    assert!(matches!(status(&s, 2), OperationStatus::Done { .. }));
}

/// Commands travel through the Raft log in postcard, which reads only externally tagged enums.
#[test]
fn subscription_reports_survive_the_log_encoding() {
    use crate::model::{SubscriptionStanding, SubscriptionStatus};
    let command = TwinCommand::UspSubscriptions {
        device: key(),
        at: Timestamp(1),
        subscriptions: [
            SubscriptionStanding::InPlace { note: "n".into() },
            SubscriptionStanding::Refused {
                code: 7013,
                message: "read-only".into(),
            },
            SubscriptionStanding::NotInDataModel { reason: "r".into() },
        ]
        .into_iter()
        .map(|standing| SubscriptionStatus {
            notif_type: "ValueChange".into(),
            reference: "Device.WiFi.SSID.".into(),
            standing,
        })
        .collect(),
        removed: 1,
    };
    let bytes = postcard::to_allocvec(&command).unwrap();
    assert_eq!(
        postcard::from_bytes::<TwinCommand>(&bytes).unwrap(),
        command
    );
    let mut s = ShardState::default();
    apply(&mut s, &usp_connect(1)).unwrap();
    apply(&mut s, &command).unwrap();
    let twin = &s.twins[&key()];
    assert_eq!(twin.meta.subscriptions.len(), 3);
    assert!(twin.events.iter().any(|e| e.kind == "subscriptions"
        && e.detail.contains("1 refused")
        && e.detail.contains("7013")));
}

/// Seen with genieacs-sim: a GetParameterValues of an object path crashed the device at every
/// session; Radar sent it again each time (5 attempts) and refused to cancel it.
#[test]
fn an_operation_whose_sessions_keep_dying_fails_and_a_sent_one_can_be_cancelled() {
    use crate::operation::MAX_DELIVERY_ATTEMPTS;
    let mut s = ShardState::default();
    apply(&mut s, &inform(1, &[], vec![])).unwrap();
    let refresh = |at: u64| {
        enqueue(
            at,
            OperationKind::Refresh {
                prefix: "Device.ManagementServer.".into(),
            },
        )
    };
    let op = apply(&mut s, &refresh(2)).unwrap().operation.unwrap();
    for attempt in 1..=MAX_DELIVERY_ATTEMPTS {
        let at = 10 * u64::from(attempt);
        apply(&mut s, &mark_sent(at, op)).unwrap();
        apply(
            &mut s,
            &TwinCommand::RequeueOperation {
                device: key(),
                at: Timestamp(at + 1),
                operation: op,
            },
        )
        .unwrap();
        let expect_failed = attempt == MAX_DELIVERY_ATTEMPTS;
        assert_eq!(
            matches!(status(&s, op), OperationStatus::Failed { .. }),
            expect_failed,
            "attempt {attempt}: {:?}",
            status(&s, op)
        );
    }
    assert!(
        matches!(status(&s, op), OperationStatus::Failed { message, .. } if message.contains("3 deliveries"))
    );

    // A sent operation can be cancelled; a late answer does not reopen it.
    let sent = apply(&mut s, &refresh(100)).unwrap().operation.unwrap();
    apply(&mut s, &mark_sent(101, sent)).unwrap();
    apply(
        &mut s,
        &TwinCommand::CancelOperation {
            device: key(),
            at: Timestamp(102),
            operation: sent,
        },
    )
    .unwrap();
    apply(
        &mut s,
        &TwinCommand::CompleteOperation {
            device: key(),
            at: Timestamp(103),
            operation: sent,
            outcome: Outcome::Done {
                detail: "late".into(),
            },
        },
    )
    .unwrap();
    assert!(matches!(
        status(&s, sent),
        OperationStatus::Cancelled { .. }
    ));
}
