//! Connection-request credentials (TR-069 §3.2.2, `ManagementServer.ConnectionRequestUsername`
//! and `…Password`) and secrets in general: what the twin believes the device will accept, where
//! that belief came from, and what must never be shown back.

use crate::model::{ConnectionRequestStatus, Twin};
use radar_core::Timestamp;
use serde::{Deserialize, Serialize};

const USERNAME: &str = "ManagementServer.ConnectionRequestUsername";
const PASSWORD: &str = "ManagementServer.ConnectionRequestPassword";

/// Where the twin's connection-request credentials came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum CredentialSource {
    #[default]
    None,
    /// Radar generated them and the device accepted the write (bootstrap).
    Radar,
    /// An operator's write of the parameters, which the device accepted.
    OperatorWrite,
    /// An operator told Radar what the device already has (factory, another ACS).
    OperatorKnown,
}

impl CredentialSource {
    pub fn name(self) -> &'static str {
        match self {
            CredentialSource::None => "none",
            CredentialSource::Radar => "radar",
            CredentialSource::OperatorWrite => "operator_write",
            CredentialSource::OperatorKnown => "operator_known",
        }
    }
}

/// Parameters whose values are never shown back by a read route: TR-181 passwords, passphrases
/// and keys (TR-069 A.3.2.1 has devices read them back as empty strings for the same reason).
pub fn is_secret(path: &str) -> bool {
    let name = path.rsplit('.').next().unwrap_or(path);
    [
        "Password",
        "Passphrase",
        "PreSharedKey",
        "WEPKey",
        "Secret",
        "PSK",
    ]
    .iter()
    .any(|s| name.ends_with(s))
}

/// A write the device accepted changed its connection-request credentials: from now on they
/// are the ones Radar uses.
pub(crate) fn adopt_written(twin: &mut Twin, at: Timestamp, written: &[(String, String)]) {
    let mut changed = false;
    for (path, value) in written {
        if path.ends_with(USERNAME) {
            twin.meta.connection_request_username = value.clone();
            changed = true;
        } else if path.ends_with(PASSWORD) {
            twin.meta.connection_request_password = value.clone();
            changed = true;
        }
    }
    if changed {
        twin.meta.connection_request_credentials_source = CredentialSource::OperatorWrite;
        twin.log(
            at,
            "credentials",
            format!(
                "connection-request credentials now {} (written by an operator)",
                twin.meta.connection_request_username
            ),
        );
    }
}

/// Radar (at bootstrap) or an operator (`known`) set the credentials.
pub(crate) fn set(
    twin: &mut Twin,
    dict: &mut crate::paths::PathDict,
    at: Timestamp,
    username: &str,
    password: &str,
    source: CredentialSource,
) {
    twin.meta.connection_request_username = username.into();
    twin.meta.connection_request_password = password.into();
    twin.meta.connection_request_credentials_source = source;
    if source == CredentialSource::Radar {
        // The device accepted the write: its parameter now holds the username (the password
        // reads back empty on a CPE, and is never shown).
        let root = if twin.meta.root.is_empty() {
            "Device."
        } else {
            twin.meta.root.as_str()
        };
        let path = format!("{root}{USERNAME}");
        crate::command::report_values(
            twin,
            dict,
            at,
            crate::Source::Spv,
            &[crate::ReportedParam {
                path,
                value: username.into(),
                ty: None,
                writable: None,
            }],
        );
    }
    let detail = match source {
        CredentialSource::OperatorKnown => {
            format!("connection-request credentials {username} recorded as the device's own")
        }
        _ => format!("connection-request credentials set for {username}"),
    };
    twin.log(at, "credentials", detail);
}

/// The result of a connection request. A refusal is a state of the device, shown until a
/// later request succeeds; only changes reach the event log.
pub(crate) fn record_outcome(twin: &mut Twin, at: Timestamp, outcome: &str, detail: &str) {
    let previous = twin.meta.connection_request_status.as_ref();
    let changed = previous.is_none_or(|p| p.outcome != outcome);
    if changed && outcome != "sent" {
        twin.log(at, "connection_request", format!("{outcome}: {detail}"));
    }
    twin.meta.connection_request_status = Some(ConnectionRequestStatus {
        at,
        outcome: outcome.into(),
        detail: detail.chars().take(200).collect(),
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_are_recognised_by_name() {
        for p in [
            "Device.ManagementServer.ConnectionRequestPassword",
            "Device.WiFi.AccessPoint.1.Security.KeyPassphrase",
            "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.PreSharedKey.1.PreSharedKey",
            "Device.PPP.Interface.1.Password",
        ] {
            assert!(super::is_secret(p), "{p}");
        }
        assert!(!super::is_secret(
            "Device.ManagementServer.ConnectionRequestUsername"
        ));
        assert!(!super::is_secret("Device.WiFi.SSID.1.SSID"));
    }
}
