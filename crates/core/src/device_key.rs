//! The twin key. TR-369 R-ARC.3 defines endpoint ids as `authority-scheme ":" [authority-id] ":" instance-id`;
//! for the `os` scheme the instance id is `<OUI>-<SerialNumber>` (or with ProductClass). A CWMP device
//! therefore gets the same key a USP agent on the same box would use, and a hybrid device has one twin.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Longest key we accept; TR-369 does not bound endpoint ids, but storage keys must be bounded.
pub const MAX_DEVICE_KEY_LEN: usize = 256;

/// Shared text: the twin table, its number map and the index refer to one copy of each key
/// (issue 12: a cold twin's key is most of what it costs in memory).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceKey(Arc<str>);

impl Serialize for DeviceKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DeviceKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(Self(text.into()))
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeviceKeyError {
    #[error("device key is empty")]
    Empty,
    #[error("device key is longer than {MAX_DEVICE_KEY_LEN} bytes")]
    TooLong,
    #[error("device key contains a control character")]
    ControlCharacter,
    #[error("oui {0:?} is not a short alphanumeric organisation id")]
    BadOui(String),
    #[error("serial number is empty")]
    EmptySerial,
}

impl DeviceKey {
    /// Parses an endpoint id as given by an operator or a USP agent.
    pub fn parse(raw: &str) -> Result<Self, DeviceKeyError> {
        if raw.is_empty() {
            return Err(DeviceKeyError::Empty);
        }
        if raw.len() > MAX_DEVICE_KEY_LEN {
            return Err(DeviceKeyError::TooLong);
        }
        if raw.chars().any(char::is_control) {
            return Err(DeviceKeyError::ControlCharacter);
        }
        Ok(Self(raw.into()))
    }

    /// The TR-369 `os::<OUI>-<SerialNumber>` key of a CWMP device.
    ///
    /// Real devices send lower-case OUIs (Zhone, Cytco) and surrounding whitespace, so the OUI is
    /// trimmed and upper-cased. Serial characters outside the TR-369 instance-id set
    /// (unreserved URI characters) are percent-encoded, as R-ARC.3 requires.
    pub fn from_oui_serial(oui: &str, serial: &str) -> Result<Self, DeviceKeyError> {
        let oui = oui.trim().to_ascii_uppercase();
        // TR-069 says 6 hex digits; synthetic and odd devices send fewer, which we keep rather
        // than lock the device out. Only characters that would break the key are refused.
        if oui.is_empty() || oui.len() > 16 || !oui.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(DeviceKeyError::BadOui(oui));
        }
        let serial = serial.trim();
        if serial.is_empty() {
            return Err(DeviceKeyError::EmptySerial);
        }
        let mut key = String::with_capacity(5 + 6 + 1 + serial.len());
        key.push_str("os::");
        key.push_str(&oui);
        key.push('-');
        for byte in serial.bytes() {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                key.push(byte as char);
            } else {
                key.push_str(&format!("%{byte:02X}"));
            }
        }
        Self::parse(&key)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for DeviceKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cwmp_key_uses_tr369_os_form_and_uppercases_oui() {
        let key = DeviceKey::from_oui_serial("00d09e", "CP0644JTHJ4").unwrap();
        assert_eq!(key.as_str(), "os::00D09E-CP0644JTHJ4");
    }

    #[test]
    fn serial_outside_instance_id_charset_is_percent_encoded() {
        let key = DeviceKey::from_oui_serial("E48D8C", "AB 12/3").unwrap();
        assert_eq!(key.as_str(), "os::E48D8C-AB%2012%2F3");
    }

    #[test]
    fn bad_identities_are_rejected() {
        assert!(matches!(
            DeviceKey::from_oui_serial("X-Z", "1"),
            Err(DeviceKeyError::BadOui(_))
        ));
        assert!(matches!(
            DeviceKey::from_oui_serial("", "1"),
            Err(DeviceKeyError::BadOui(_))
        ));
        assert_eq!(
            DeviceKey::from_oui_serial("00147F", "  "),
            Err(DeviceKeyError::EmptySerial)
        );
        assert_eq!(DeviceKey::parse(""), Err(DeviceKeyError::Empty));
        assert_eq!(
            DeviceKey::parse("a\nb"),
            Err(DeviceKeyError::ControlCharacter)
        );
        assert_eq!(
            DeviceKey::parse(&"x".repeat(300)),
            Err(DeviceKeyError::TooLong)
        );
    }
}
