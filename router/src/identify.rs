//! Device identity from the first POST of a CWMP session. The router must pin a session to the
//! owning node before any node has seen it, so it decodes just the Inform (with the same bounded
//! codec as the ACS) and derives the TR-369 `os::<OUI>-<Serial>` key.

use radar_core::{DeviceKey, DeviceKeyError};
use radar_cwmp::{CwmpMessage, DecodeError, Envelope};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentifyError {
    #[error("first request is not a decodable cwmp message: {0}")]
    Decode(#[from] DecodeError),
    #[error("first request of a session is {0}, not an Inform")]
    NotInform(&'static str),
    #[error("inform carries an unusable device identity: {0}")]
    Identity(#[from] DeviceKeyError),
}

/// The device key of the Inform in `body`.
pub fn device_key_from_first_post(body: &[u8]) -> Result<DeviceKey, IdentifyError> {
    let envelope = Envelope::decode(body)?;
    match envelope.message {
        CwmpMessage::Inform(inform) => Ok(DeviceKey::from_oui_serial(
            &inform.device_id.oui,
            &inform.device_id.serial_number,
        )?),
        other => Err(IdentifyError::NotInform(other.name())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tests/fixtures/cwmp")
                .join(name),
        )
        .unwrap()
    }

    #[test]
    fn real_informs_identify_their_device() {
        assert_eq!(
            device_key_from_first_post(&fixture("thomson_Inform_2.xml"))
                .unwrap()
                .as_str(),
            "os::00147F-CP0644JTHJ4"
        );
        assert_eq!(
            device_key_from_first_post(&fixture("mikrotik_Inform_1.xml"))
                .unwrap()
                .as_str(),
            "os::E48D8C-XXXXXXXXXXXX"
        );
    }

    #[test]
    fn anything_else_is_refused() {
        assert_eq!(
            device_key_from_first_post(&fixture("generic_TransferComplete_1.xml")),
            Err(IdentifyError::NotInform("TransferComplete"))
        );
        assert!(matches!(
            device_key_from_first_post(b"<garbage"),
            Err(IdentifyError::Decode(_))
        ));
    }
}
