//! The few fields of a twin the node's background passes read (overdue CWMP devices, USP
//! agents to mark offline or probe), kept per twin by `crate::table` for cold twins too.

use crate::model::Twin;

/// What the node's background passes ask of every twin (overdue CWMP devices, USP agents
/// to mark offline or probe), kept for cold twins too so those passes read no twin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Columns {
    /// Last contact, seconds since the epoch (0: never).
    pub contact_secs: u32,
    /// The CWMP periodic inform interval it reported, seconds (0: none).
    pub periodic_secs: u32,
    pub flags: u8,
}

impl Columns {
    /// The latest contact was CWMP.
    pub const CWMP: u8 = 1;
    /// It has a ConnectionRequestURL.
    pub const CONNECTION_REQUEST_URL: u8 = 2;
    /// A USP agent whose MTP connection is up.
    pub const CONNECTED: u8 = 4;
    /// A USP agent reached over MQTT / STOMP, with a reply-to address.
    pub const MQTT: u8 = 8;
    pub const STOMP: u8 = 16;
    pub const REPLY_TO: u8 = 32;

    pub fn of(twin: &Twin, dict: &crate::paths::PathDict) -> Self {
        let meta = &twin.meta;
        let mut flags = 0;
        for (on, flag) in [
            (meta.protocol == "cwmp", Self::CWMP),
            (
                !meta.connection_request_url.is_empty(),
                Self::CONNECTION_REQUEST_URL,
            ),
            (meta.connected, Self::CONNECTED),
            (meta.mtp == "mqtt", Self::MQTT),
            (meta.mtp == "stomp", Self::STOMP),
            (!meta.usp_reply_to.is_empty(), Self::REPLY_TO),
        ] {
            if on {
                flags |= flag;
            }
        }
        let secs = |s: u64| u32::try_from(s).unwrap_or(u32::MAX);
        Self {
            contact_secs: secs(meta.last_contact.0 / 1000),
            periodic_secs: crate::query::periodic_interval(twin, dict)
                .map_or(0, |d| secs(d.as_secs())),
            flags,
        }
    }

    pub fn has(self, flag: u8) -> bool {
        self.flags & flag == flag
    }

    /// `query::is_overdue` from the columns: a CWMP device silent for more than two periodic
    /// intervals and `grace`.
    pub fn is_overdue(self, now: radar_core::Timestamp, grace: std::time::Duration) -> bool {
        self.has(Self::CWMP)
            && self.contact_secs > 0
            && self.periodic_secs > 0
            && (now.0 / 1000).saturating_sub(u64::from(self.contact_secs))
                > 2 * u64::from(self.periodic_secs) + grace.as_secs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{apply, Identity, ReportedParam, TwinCommand};
    use crate::model::ShardState;
    use crate::query::{self, EvalContext};
    use radar_core::{DeviceKey, Timestamp};
    use std::time::Duration;

    fn inform(serial: &str, at_secs: u64, interval: &str, url: &str) -> TwinCommand {
        let p = |path: &str, value: &str| ReportedParam {
            path: path.into(),
            value: value.into(),
            ty: None,
            writable: Some(true),
        };
        TwinCommand::Inform {
            device: DeviceKey::from_oui_serial("00D09E", serial).unwrap(),
            at: Timestamp(at_secs * 1000),
            identity: Identity {
                oui: "00D09E".into(),
                product_class: "HG".into(),
                serial: serial.into(),
                manufacturer: "Acme".into(),
            },
            events: vec![],
            params: vec![
                p("Device.ManagementServer.PeriodicInformInterval", interval),
                p("Device.ManagementServer.ConnectionRequestURL", url),
            ],
        }
    }

    /// The columns answer what the background passes ask exactly as the twins do: overdue
    /// (over time, with and without grace), a connection-request URL, the protocol.
    #[test]
    fn columns_answer_as_the_twins_do() {
        let mut state = ShardState::default();
        let start = 1_700_000_000;
        apply(
            &mut state,
            &inform("A", start, "300", "http://10.0.0.1:7547/"),
        )
        .unwrap();
        apply(
            &mut state,
            &inform("B", start + 50, "0", "http://10.0.0.2:7547/"),
        )
        .unwrap();
        apply(&mut state, &inform("C", start + 90, "60", "")).unwrap();
        let columns: Vec<(DeviceKey, Columns)> =
            state.twins.columns().map(|(k, c)| (k.clone(), c)).collect();
        assert_eq!(columns.len(), 3);
        for (key, c) in &columns {
            let twin = &state.twins[key];
            assert_eq!(*c, Columns::of(twin, &state.dict));
            assert!(c.has(Columns::CWMP));
            assert_eq!(
                c.has(Columns::CONNECTION_REQUEST_URL),
                !twin.meta.connection_request_url.is_empty()
            );
            for grace in [Duration::ZERO, Duration::from_secs(60)] {
                for offset in (0..1500).step_by(7) {
                    let ctx = EvalContext {
                        now: Timestamp((start + offset) * 1000),
                        online_window: Duration::from_secs(600),
                        overdue_grace: grace,
                    };
                    assert_eq!(
                        c.is_overdue(ctx.now, grace),
                        query::is_overdue(twin, &state.dict, &ctx),
                        "{key} at +{offset}s, grace {grace:?}"
                    );
                }
            }
        }
        let overdue_at_end = columns
            .iter()
            .filter(|(_, c)| c.is_overdue(Timestamp((start + 1500) * 1000), Duration::ZERO))
            .count();
        assert_eq!(
            overdue_at_end, 2,
            "A (300 s) and C (60 s); B reports no interval"
        );
    }
}
