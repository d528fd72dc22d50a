//! Which device a CPE's credentials belong to (issue 13). A CPE that authenticated with
//! credentials of its own (not the fleet's shared ones) may inform only as that device: a
//! stolen or cloned password must not let one box write another's twin. TR-069 §3.4.4 leaves
//! the username's form to the operator; the common ones are accepted: the serial number,
//! `OUI-SerialNumber`, `OUI-ProductClass-SerialNumber`, or the device key, unless the
//! credential names its device outright.

use crate::rpc::inform::DeviceIdStruct;
use radar_core::DeviceKey;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundIdentity {
    pub username: String,
    /// The device the credential was issued for, when the config says so.
    pub device: Option<DeviceKey>,
}

impl BoundIdentity {
    /// Whether a CPE authenticated as this identity may inform with `id` (whose key is `key`).
    pub fn admits(&self, id: &DeviceIdStruct, key: &DeviceKey) -> bool {
        if let Some(device) = &self.device {
            return device == key;
        }
        let user = self.username.trim();
        let oui = id.oui.trim();
        let serial = id.serial_number.trim();
        let product_class = id.product_class.trim();
        let forms = [
            serial.to_owned(),
            format!("{oui}-{serial}"),
            format!("{oui}-{product_class}-{serial}"),
            key.as_str().to_owned(),
            key.as_str().trim_start_matches("os::").to_owned(),
        ];
        forms.iter().any(|form| form.eq_ignore_ascii_case(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(serial: &str) -> (DeviceIdStruct, DeviceKey) {
        let id = DeviceIdStruct {
            manufacturer: "Huawei".into(),
            oui: "00E0FC".into(),
            product_class: "HG8245H".into(),
            serial_number: serial.into(),
        };
        let key = DeviceKey::from_oui_serial(&id.oui, &id.serial_number).unwrap();
        (id, key)
    }

    fn user(name: &str) -> BoundIdentity {
        BoundIdentity {
            username: name.into(),
            device: None,
        }
    }

    #[test]
    fn a_device_credential_admits_its_own_device_only() {
        let (mine, my_key) = id("48575443A1B2C3D4");
        let (other, other_key) = id("48575443FFFFFFFF");
        for name in [
            "48575443A1B2C3D4",
            "00E0FC-48575443A1B2C3D4",
            "00e0fc-hg8245h-48575443a1b2c3d4",
            "os::00E0FC-48575443A1B2C3D4",
        ] {
            assert!(user(name).admits(&mine, &my_key), "{name}");
            assert!(!user(name).admits(&other, &other_key), "{name}");
        }
        assert!(!user("cpe").admits(&mine, &my_key));
        // A prefix of the serial is not the serial.
        assert!(!user("48575443").admits(&mine, &my_key));
        let named = BoundIdentity {
            username: "line-0042".into(),
            device: Some(my_key.clone()),
        };
        assert!(named.admits(&mine, &my_key));
        assert!(!named.admits(&other, &other_key));
    }
}
