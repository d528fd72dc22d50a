//! Bearer tokens from an OpenID Connect provider (issue 13): JWTs signed by a key of the
//! configured issuer's JWKS, for the configured audience, unexpired. The caller is the token's
//! subject (`subject_claim`), and its role comes from `role_claim` (a string or a list; the
//! highest role named wins), through `role_map` when the provider's names are not Radar's.
//!
//! The JWKS is fetched at start and again when a token names a key it does not hold (the
//! provider rotated its keys), at most once per [`REFETCH_PAUSE`], and every `refresh`.

use super::role::Role;
use super::tokens::Principal;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The least time between two fetches of the JWKS for unknown keys.
const REFETCH_PAUSE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The `iss` every token must carry.
    pub issuer: String,
    /// The `aud` every token must include.
    pub audience: String,
    /// Where the provider publishes its signing keys (its discovery document's `jwks_uri`).
    pub jwks_url: String,
    /// The claim naming the caller's role(s).
    #[serde(default = "default_role_claim")]
    pub role_claim: String,
    /// The claim naming the caller (what the audit log records).
    #[serde(default = "default_subject_claim")]
    pub subject_claim: String,
    /// The provider's role or group names → Radar's roles; empty: the claim holds Radar's names.
    #[serde(default)]
    pub role_map: BTreeMap<String, Role>,
    /// How often the JWKS is fetched again.
    #[serde(default = "default_refresh", with = "humantime_serde")]
    pub refresh: Duration,
    /// Trust this CA (PEM) for the JWKS URL, beside the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_role_claim() -> String {
    "radar_role".into()
}

fn default_subject_claim() -> String {
    "sub".into()
}

fn default_refresh() -> Duration {
    Duration::from_secs(600)
}

/// Why a JWT was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtRefusal {
    #[error("the token is not valid: {0}")]
    Invalid(String),
    #[error("the token grants no Radar role (claim {0:?})")]
    NoRole(String),
}

struct Keys {
    set: JwkSet,
    fetched: Option<Instant>,
}

pub struct OidcVerifier {
    config: OidcConfig,
    http: reqwest::Client,
    keys: Mutex<Keys>,
    /// One fetch at a time.
    fetching: tokio::sync::Mutex<()>,
}

/// Whether `token` has a JWT's shape (three base64url parts), so a static token is never sent
/// to the JWT path.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && token.starts_with("eyJ")
}

impl OidcVerifier {
    pub fn new(config: OidcConfig) -> Result<Self, String> {
        let mut http = reqwest::Client::builder().timeout(Duration::from_secs(10));
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("{}: {e}", path.display()))?
            {
                http = http.add_root_certificate(cert);
            }
        }
        Ok(Self {
            config,
            http: http.build().map_err(|e| e.to_string())?,
            keys: Mutex::new(Keys {
                set: JwkSet { keys: Vec::new() },
                fetched: None,
            }),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    /// Fetches the JWKS unless another caller just did (within `pause`).
    async fn fetch(&self, pause: Duration) -> Result<(), String> {
        let _one = self.fetching.lock().await;
        let recent = self
            .keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .fetched
            .is_some_and(|at| at.elapsed() < pause);
        if recent {
            return Ok(());
        }
        let answer = self
            .http
            .get(&self.config.jwks_url)
            .send()
            .await
            .and_then(|r| r.error_for_status());
        // A failed fetch also waits out the pause: a provider that is down is not hammered.
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).fetched = Some(Instant::now());
        let set: JwkSet = answer
            .map_err(|e| format!("fetching {}: {e}", self.config.jwks_url))?
            .json()
            .await
            .map_err(|e| format!("{} is not a JWKS: {e}", self.config.jwks_url))?;
        tracing::info!(keys = set.keys.len(), url = %self.config.jwks_url, "oidc keys fetched");
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).set = set;
        Ok(())
    }

    fn key(&self, kid: Option<&str>) -> Option<jsonwebtoken::jwk::Jwk> {
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        match kid {
            Some(kid) => keys.set.find(kid).cloned(),
            // A token without a kid: only a provider with a single key can be meant.
            None if keys.set.keys.len() == 1 => keys.set.keys.first().cloned(),
            None => None,
        }
    }

    /// The caller `token` names, if it is a valid JWT of the provider.
    pub async fn verify(&self, token: &str) -> Result<Principal, JwtRefusal> {
        let invalid = |e: &dyn std::fmt::Display| JwtRefusal::Invalid(e.to_string());
        let header = jsonwebtoken::decode_header(token).map_err(|e| invalid(&e))?;
        let stale = {
            let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
            keys.fetched
                .is_none_or(|at| at.elapsed() >= self.config.refresh)
        };
        if stale {
            self.fetch(Duration::ZERO).await.map_err(|e| invalid(&e))?;
        }
        let jwk = match self.key(header.kid.as_deref()) {
            Some(jwk) => jwk,
            None => {
                // The provider may have rotated its keys since the last fetch.
                if let Err(e) = self.fetch(REFETCH_PAUSE).await {
                    tracing::warn!(error = %e, "oidc keys not refreshed");
                }
                self.key(header.kid.as_deref())
                    .ok_or_else(|| invalid(&"signed by a key the provider does not publish"))?
            }
        };
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| invalid(&e))?;
        // The key decides the algorithm, never the token alone (no "none", no confusion).
        let algorithm = match jwk.common.key_algorithm {
            Some(alg) => alg
                .to_string()
                .parse::<jsonwebtoken::Algorithm>()
                .map_err(|e| invalid(&e))?,
            None => header.alg,
        };
        if algorithm != header.alg {
            return Err(invalid(&"the token's algorithm is not its key's"));
        }
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = 30;
        let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
            .map_err(|e| invalid(&e))?
            .claims;
        let subject = claims
            .get(&self.config.subject_claim)
            .and_then(|s| s.as_str())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid(&format!("no {:?} claim", self.config.subject_claim)))?;
        let role = self
            .role_of(claims.get(&self.config.role_claim))
            .ok_or_else(|| JwtRefusal::NoRole(self.config.role_claim.clone()))?;
        Ok(Principal {
            id: subject.chars().take(128).collect(),
            role,
        })
    }

    /// The highest role the claim's names map to.
    fn role_of(&self, claim: Option<&serde_json::Value>) -> Option<Role> {
        let names: Vec<&str> = match claim? {
            serde_json::Value::String(name) => vec![name.as_str()],
            serde_json::Value::Array(items) => items.iter().filter_map(|i| i.as_str()).collect(),
            _ => Vec::new(),
        };
        names
            .into_iter()
            .filter_map(|name| match self.config.role_map.is_empty() {
                true => name.parse().ok(),
                false => self.config.role_map.get(name).copied(),
            })
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier(role_map: &[(&str, Role)]) -> OidcVerifier {
        OidcVerifier::new(OidcConfig {
            issuer: "https://idp".into(),
            audience: "radar".into(),
            jwks_url: "http://127.0.0.1:9/keys".into(),
            role_claim: default_role_claim(),
            subject_claim: default_subject_claim(),
            role_map: role_map.iter().map(|(k, r)| (k.to_string(), *r)).collect(),
            refresh: default_refresh(),
            ca_file: None,
        })
        .unwrap()
    }

    #[test]
    fn the_highest_role_named_wins() {
        let v = verifier(&[]);
        let json = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        assert_eq!(
            v.role_of(Some(&json(r#""operator""#))),
            Some(Role::Operator)
        );
        assert_eq!(
            v.role_of(Some(&json(r#"["viewer","admin","x"]"#))),
            Some(Role::Admin)
        );
        assert_eq!(v.role_of(Some(&json(r#"["x"]"#))), None);
        assert_eq!(v.role_of(None), None);
        let mapped = verifier(&[("noc", Role::Viewer), ("field", Role::Operator)]);
        assert_eq!(
            mapped.role_of(Some(&json(r#"["noc","field"]"#))),
            Some(Role::Operator)
        );
        assert_eq!(mapped.role_of(Some(&json(r#""admin""#))), None);
    }

    #[test]
    fn only_jwt_shaped_tokens_take_the_jwt_path() {
        assert!(looks_like_jwt("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"));
        assert!(!looks_like_jwt("radar_abc.def"));
        assert!(!looks_like_jwt("radar-test-admin-token"));
    }
}
