//! CPE authentication on the ACS endpoint (TR-069 §3.4.4): HTTP Basic and Digest (RFC 7616 with
//! MD5 and `qop=auth`, which is what CPEs implement). Nonces are stateless: a timestamp plus a
//! keyed hash, so any node can verify them and nothing grows with the number of devices.

use crate::config::{Credential, CwmpConfig, DeviceCredential};
use radar_core::DeviceKey;
use radar_cwmp::http_auth::{base64_decode, md5_hex, parse_auth_params};
use radar_cwmp::session::identity::BoundIdentity;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const NONCE_LIFETIME: Duration = Duration::from_secs(300);

#[derive(Debug, PartialEq, Eq)]
pub enum AuthResult {
    Allowed {
        username: Option<String>,
        /// Set when the credentials belong to one device, which alone may then inform.
        identity: Option<BoundIdentity>,
    },
    /// Send 401 with these `WWW-Authenticate` challenges.
    Challenge(Vec<String>),
}

pub struct Authenticator {
    allow_anonymous: bool,
    realm: String,
    /// username → password, and the device the credential belongs to (none: shared).
    credentials: HashMap<String, (String, Option<BoundIdentity>)>,
    secret: [u8; 16],
}

impl Authenticator {
    pub fn new(config: &CwmpConfig) -> Self {
        let mut credentials = HashMap::new();
        for DeviceCredential {
            username,
            password,
            device,
        } in &config.device_credentials
        {
            let device = device.as_deref().and_then(|d| match DeviceKey::parse(d) {
                Ok(key) => Some(key),
                Err(e) => {
                    // Fail closed: the username must then name the device.
                    tracing::warn!(username = %username, error = %e, "device credential names no valid device key");
                    None
                }
            });
            let identity = BoundIdentity {
                username: username.clone(),
                device,
            };
            credentials.insert(username.clone(), (password.clone(), Some(identity)));
        }
        if let Some(Credential { username, password }) = &config.shared_credentials {
            credentials.insert(username.clone(), (password.clone(), None));
        }
        Self {
            allow_anonymous: config.allow_anonymous,
            realm: config.realm.clone(),
            credentials,
            secret: rand::random(),
        }
    }

    pub fn check(&self, method: &str, authorization: Option<&str>) -> AuthResult {
        self.check_at(method, authorization, SystemTime::now())
    }

    fn check_at(&self, method: &str, authorization: Option<&str>, now: SystemTime) -> AuthResult {
        if let Some(header) = authorization {
            if let Some(user) = self.verify(method, header, now) {
                let identity = self.credentials.get(&user).and_then(|(_, i)| i.clone());
                return AuthResult::Allowed {
                    username: Some(user),
                    identity,
                };
            }
        } else if self.allow_anonymous {
            return AuthResult::Allowed {
                username: None,
                identity: None,
            };
        }
        if self.allow_anonymous && self.credentials.is_empty() {
            return AuthResult::Allowed {
                username: None,
                identity: None,
            };
        }
        AuthResult::Challenge(vec![
            format!(
                "Digest realm=\"{}\", qop=\"auth\", nonce=\"{}\", algorithm=MD5",
                self.realm,
                self.nonce(now)
            ),
            format!("Basic realm=\"{}\"", self.realm),
        ])
    }

    fn nonce(&self, now: SystemTime) -> String {
        let ts = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        format!("{ts:x}.{}", self.nonce_mac(ts))
    }

    fn nonce_mac(&self, ts: u64) -> String {
        md5_hex(&format!("{}:{ts}:{}", hex::encode(self.secret), self.realm))
    }

    fn nonce_valid(&self, nonce: &str, now: SystemTime) -> bool {
        let Some((ts_hex, mac)) = nonce.split_once('.') else {
            return false;
        };
        let Ok(ts) = u64::from_str_radix(ts_hex, 16) else {
            return false;
        };
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        mac == self.nonce_mac(ts) && now.saturating_sub(ts) <= NONCE_LIFETIME.as_secs()
    }

    fn verify(&self, method: &str, header: &str, now: SystemTime) -> Option<String> {
        let (scheme, rest) = header.trim().split_once(' ')?;
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64_decode(rest.trim())?;
            let text = String::from_utf8(decoded).ok()?;
            let (user, pass) = text.split_once(':')?;
            return (self.credentials.get(user).map(|(p, _)| p.as_str()) == Some(pass))
                .then(|| user.to_owned());
        }
        if !scheme.eq_ignore_ascii_case("digest") {
            return None;
        }
        let fields = parse_auth_params(rest);
        let user = fields.get("username")?;
        let (password, _) = self.credentials.get(user.as_str())?;
        let nonce = fields.get("nonce")?;
        if !self.nonce_valid(nonce, now)
            || fields.get("realm").map(String::as_str) != Some(self.realm.as_str())
        {
            return None;
        }
        let ha1 = md5_hex(&format!("{user}:{}:{password}", self.realm));
        let ha2 = md5_hex(&format!("{method}:{}", fields.get("uri")?));
        let expected = match fields.get("qop").map(String::as_str) {
            Some("auth") => md5_hex(&format!(
                "{ha1}:{nonce}:{}:{}:auth:{ha2}",
                fields.get("nc")?,
                fields.get("cnonce")?
            )),
            None => md5_hex(&format!("{ha1}:{nonce}:{ha2}")),
            Some(_) => return None,
        };
        (fields.get("response")? == &expected).then(|| user.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use radar_cwmp::http_auth::{base64_encode, digest_authorization};

    fn auth(anonymous: bool) -> Authenticator {
        let config = CwmpConfig {
            allow_anonymous: anonymous,
            shared_credentials: Some(Credential {
                username: "cpe".into(),
                password: "secret".into(),
            }),
            ..Default::default()
        };
        Authenticator::new(&config)
    }

    #[test]
    fn basic_round_trip() {
        let a = auth(false);
        let header = format!("Basic {}", base64_encode(b"cpe:secret"));
        assert_eq!(
            a.check("POST", Some(&header)),
            AuthResult::Allowed {
                username: Some("cpe".into()),
                identity: None,
            }
        );
        let wrong = format!("Basic {}", base64_encode(b"cpe:nope"));
        assert!(matches!(
            a.check("POST", Some(&wrong)),
            AuthResult::Challenge(_)
        ));
        assert!(matches!(a.check("POST", None), AuthResult::Challenge(_)));
    }

    #[test]
    fn digest_round_trip_and_stale_nonce() {
        let a = auth(false);
        let now = SystemTime::now();
        let AuthResult::Challenge(challenges) = a.check_at("POST", None, now) else {
            panic!()
        };
        let header =
            digest_authorization(&challenges[0], "POST", "/", "cpe", "secret", "abc").unwrap();
        assert_eq!(
            a.check_at("POST", Some(&header), now),
            AuthResult::Allowed {
                username: Some("cpe".into()),
                identity: None,
            }
        );
        let bad = digest_authorization(&challenges[0], "POST", "/", "cpe", "wrong", "abc").unwrap();
        assert!(matches!(
            a.check_at("POST", Some(&bad), now),
            AuthResult::Challenge(_)
        ));
        let later = now + Duration::from_secs(600);
        assert!(matches!(
            a.check_at("POST", Some(&header), later),
            AuthResult::Challenge(_)
        ));
    }

    #[test]
    fn a_device_credential_carries_its_device() {
        let config = CwmpConfig {
            device_credentials: vec![
                DeviceCredential {
                    username: "00E0FC-SN1".into(),
                    password: "p1".into(),
                    device: None,
                },
                DeviceCredential {
                    username: "line-42".into(),
                    password: "p2".into(),
                    device: Some("os::00E0FC-SN2".into()),
                },
            ],
            ..Default::default()
        };
        let a = Authenticator::new(&config);
        let basic =
            |u: &str, p: &str| format!("Basic {}", base64_encode(format!("{u}:{p}").as_bytes()));
        let AuthResult::Allowed { identity, .. } =
            a.check("POST", Some(&basic("00E0FC-SN1", "p1")))
        else {
            panic!()
        };
        assert_eq!(identity.unwrap().device, None);
        let AuthResult::Allowed { identity, .. } = a.check("POST", Some(&basic("line-42", "p2")))
        else {
            panic!()
        };
        assert_eq!(
            identity.unwrap().device.map(|d| d.to_string()),
            Some("os::00E0FC-SN2".into())
        );
    }

    #[test]
    fn anonymous_only_when_configured() {
        assert_eq!(
            auth(true).check("POST", None),
            AuthResult::Allowed {
                username: None,
                identity: None
            }
        );
        assert!(matches!(
            auth(false).check("POST", None),
            AuthResult::Challenge(_)
        ));
    }
}
