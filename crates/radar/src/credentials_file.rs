//! The CLI's credentials file, `$XDG_CONFIG_HOME/radar/credentials` (else
//! `~/.config/radar/credentials`), mode 0600: one token per API address, written by `radar up`
//! when it makes the first admin token (as k3s writes its kubeconfig), read by every client
//! command that is given no `--token` or `RADAR_TOKEN`.
//!
//! ```toml
//! ["http://127.0.0.1:7557"]
//! token = "radar_…"
//! ```

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Serialize, Deserialize)]
struct Entry {
    token: String,
}

pub fn path() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var_os("HOME")?).join(".config"),
    };
    Some(base.join("radar").join("credentials"))
}

pub fn path_text() -> String {
    path()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "~/.config/radar/credentials".into())
}

fn key(api: &str) -> String {
    api.trim_end_matches('/').to_ascii_lowercase()
}

fn read() -> Result<BTreeMap<String, Entry>> {
    let Some(path) = path() else {
        return Ok(BTreeMap::new());
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).with_context(|| format!("parsing {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The token saved for `api`, if any.
pub fn token_for(api: &str) -> Result<Option<String>> {
    Ok(read()?.remove(&key(api)).map(|e| e.token))
}

/// Saves `token` for each of `apis`, keeping other entries; returns the file's path.
pub fn save(apis: &[String], token: &str) -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let path = path().context("neither XDG_CONFIG_HOME nor HOME is set")?;
    let dir = path.parent().context("credentials path has a parent")?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let mut entries = read()?;
    for api in apis {
        entries.insert(
            key(api),
            Entry {
                token: token.to_owned(),
            },
        );
    }
    radar_node::auth::tokens::write_private_file(&path, toml::to_string(&entries)?.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
