//! API bearer tokens. A token is `radar_` and 64 hex digits (256 random bits); only its
//! SHA-256 is ever stored (issue 13: never in clear). A hash of a 256-bit random secret needs no
//! slow KDF: there is nothing to guess.
//!
//! Tokens come from `[auth] tokens` in the config, from `[auth] tokens_file`, and from the data
//! dir's `api-tokens.json`, where the first admin token is kept (generated on first start, or
//! given in `RADAR_BOOTSTRAP_TOKEN`).

use super::role::Role;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The file in the data dir that holds the bootstrap admin token's hash.
pub const DATA_DIR_FILE: &str = "api-tokens.json";
/// The id of the first admin token.
pub const BOOTSTRAP_ID: &str = "bootstrap-admin";
const PREFIX: &str = "radar_";
/// A token given from outside (`RADAR_BOOTSTRAP_TOKEN`) must be at least this long.
pub const MIN_TOKEN_LEN: usize = 32;

/// One token as configured: its id (what the audit log names), role and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    pub id: String,
    pub role: Role,
    /// Lowercase hex SHA-256 of the token (`radar token hash` prints it).
    pub sha256: String,
}

/// Who a request authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: String,
    pub role: Role,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("token {id:?}: sha256 must be 64 hex digits")]
    BadHash { id: String },
    #[error("the bootstrap token must be at least {MIN_TOKEN_LEN} characters")]
    WeakBootstrap,
}

pub fn sha256_hex(token: &str) -> String {
    hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        token.as_bytes(),
    ))
}

/// A new random token.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .expect("the system's random source");
    format!("{PREFIX}{}", hex::encode(bytes))
}

/// The tokens a node accepts, by hash.
#[derive(Debug, Default)]
pub struct TokenStore {
    by_hash: HashMap<String, Principal>,
}

impl TokenStore {
    pub fn new(entries: impl IntoIterator<Item = TokenEntry>) -> Result<Self, TokenError> {
        let mut by_hash = HashMap::new();
        for entry in entries {
            let hash = entry.sha256.to_ascii_lowercase();
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(TokenError::BadHash { id: entry.id });
            }
            by_hash.insert(
                hash,
                Principal {
                    id: entry.id,
                    role: entry.role,
                },
            );
        }
        Ok(Self { by_hash })
    }

    pub fn verify(&self, token: &str) -> Option<&Principal> {
        self.by_hash.get(&sha256_hex(token))
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

/// Reads a file of token entries (a JSON array); a missing file holds none.
pub fn read_file(path: &Path) -> Result<Vec<TokenEntry>, TokenError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(TokenError::File {
                path: path.to_owned(),
                message: e.to_string(),
            })
        }
    };
    serde_json::from_str(&text).map_err(|e| TokenError::File {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// Writes `bytes` to `path` whole (a temporary file, fsynced, then renamed into place), readable
/// by its owner only: token hashes here, the CLI's credentials file in the binary.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

fn write_file(path: &Path, entries: &[TokenEntry]) -> Result<(), TokenError> {
    let text = serde_json::to_string_pretty(entries).expect("token entries serialize");
    write_private_file(path, text.as_bytes()).map_err(|e| TokenError::File {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// Makes sure the data dir holds an admin token. `given` (`RADAR_BOOTSTRAP_TOKEN`) becomes the
/// bootstrap admin token, replacing an earlier one; without it, a token is generated only when
/// the data dir has none yet. Returns the generated token, to be shown once.
pub fn ensure_bootstrap(
    data_dir: &Path,
    given: Option<&str>,
) -> Result<Option<String>, TokenError> {
    let path = data_dir.join(DATA_DIR_FILE);
    let mut entries = read_file(&path)?;
    let (token, generated) = match given {
        Some(token) if token.len() < MIN_TOKEN_LEN => return Err(TokenError::WeakBootstrap),
        Some(token) => {
            let hash = sha256_hex(token);
            if entries
                .iter()
                .any(|e| e.id == BOOTSTRAP_ID && e.sha256 == hash)
            {
                return Ok(None);
            }
            (token.to_owned(), false)
        }
        None if entries.iter().any(|e| e.role == Role::Admin) => return Ok(None),
        None => (generate(), true),
    };
    entries.retain(|e| e.id != BOOTSTRAP_ID);
    entries.push(TokenEntry {
        id: BOOTSTRAP_ID.into(),
        role: Role::Admin,
        sha256: sha256_hex(&token),
    });
    write_file(&path, &entries)?;
    Ok(generated.then_some(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_by_hash_and_never_by_text() {
        let token = generate();
        assert_eq!(token.len(), PREFIX.len() + 64);
        assert_ne!(token, generate());
        let store = TokenStore::new([TokenEntry {
            id: "ops".into(),
            role: Role::Operator,
            sha256: sha256_hex(&token).to_uppercase(),
        }])
        .unwrap();
        assert_eq!(store.verify(&token).map(|p| p.role), Some(Role::Operator));
        assert!(store.verify("radar_wrong").is_none());
        assert!(store.verify(&sha256_hex(&token)).is_none());
        let bad = TokenStore::new([TokenEntry {
            id: "x".into(),
            role: Role::Admin,
            sha256: "abc".into(),
        }]);
        assert!(matches!(bad, Err(TokenError::BadHash { .. })));
    }

    #[test]
    fn the_bootstrap_token_is_generated_once_and_stored_as_a_hash() {
        let dir = tempfile::tempdir().unwrap();
        let token = ensure_bootstrap(dir.path(), None).unwrap().unwrap();
        let text = std::fs::read_to_string(dir.path().join(DATA_DIR_FILE)).unwrap();
        assert!(
            !text.contains(&token),
            "the token is stored in clear: {text}"
        );
        assert!(text.contains(&sha256_hex(&token)));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(DATA_DIR_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // A restart does not make another.
        assert_eq!(ensure_bootstrap(dir.path(), None).unwrap(), None);
        let entries = read_file(&dir.path().join(DATA_DIR_FILE)).unwrap();
        let store = TokenStore::new(entries).unwrap();
        assert_eq!(store.verify(&token).map(|p| p.role), Some(Role::Admin));

        // One given from outside replaces it, and is not echoed.
        let given = "an-automation-token-of-enough-length-0123";
        assert_eq!(ensure_bootstrap(dir.path(), Some(given)).unwrap(), None);
        let store = TokenStore::new(read_file(&dir.path().join(DATA_DIR_FILE)).unwrap()).unwrap();
        assert!(store.verify(&token).is_none());
        assert_eq!(
            store.verify(given).map(|p| p.id.as_str()),
            Some(BOOTSTRAP_ID)
        );
        assert!(matches!(
            ensure_bootstrap(dir.path(), Some("short")),
            Err(TokenError::WeakBootstrap)
        ));
    }
}
