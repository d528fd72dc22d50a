//! Parameter and object paths as devices report them (TR-106 §3.1 naming: dot-separated, objects
//! end with a dot, instance numbers are path segments).

use serde::{Deserialize, Serialize};
use std::fmt;

/// TR-106 §3.1: a full parameter name is at most 256 characters.
pub const MAX_PATH_LEN: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ParamPath(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    #[error("path is empty")]
    Empty,
    #[error("path is longer than {MAX_PATH_LEN} characters")]
    TooLong,
    #[error("path {0:?} has an empty segment")]
    EmptySegment(String),
    #[error("path {0:?} contains a character outside TR-106 names")]
    BadCharacter(String),
}

impl ParamPath {
    /// Validates a path from an operator. Device-reported names are taken as they are (see
    /// [`ParamPath::from_device`]) because real devices send names such as `.ExternalIPAddress`.
    pub fn parse(raw: &str) -> Result<Self, PathError> {
        if raw.is_empty() {
            return Err(PathError::Empty);
        }
        if raw.len() > MAX_PATH_LEN {
            return Err(PathError::TooLong);
        }
        let body = raw.strip_suffix('.').unwrap_or(raw);
        if body.split('.').any(str::is_empty) {
            return Err(PathError::EmptySegment(raw.to_owned()));
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '{' | '}' | '*'))
        {
            return Err(PathError::BadCharacter(raw.to_owned()));
        }
        Ok(Self(raw.to_owned()))
    }

    /// Accepts a name a device reported, only bounding its length: the twin records what the
    /// device says, quirks included.
    pub fn from_device(raw: &str) -> Result<Self, PathError> {
        if raw.is_empty() {
            return Err(PathError::Empty);
        }
        if raw.len() > MAX_PATH_LEN * 4 {
            return Err(PathError::TooLong);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_object(&self) -> bool {
        self.0.ends_with('.')
    }

    /// Segments of the path, without the trailing empty segment of an object path.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.strip_suffix('.').unwrap_or(&self.0).split('.')
    }
}

impl fmt::Display for ParamPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_paths_are_validated() {
        assert!(ParamPath::parse("Device.WiFi.SSID.1.SSID").is_ok());
        assert!(ParamPath::parse("Device.WiFi.").unwrap().is_object());
        assert!(matches!(
            ParamPath::parse("Device..X"),
            Err(PathError::EmptySegment(_))
        ));
        assert!(matches!(
            ParamPath::parse("Device.X Y"),
            Err(PathError::BadCharacter(_))
        ));
        assert_eq!(ParamPath::parse(""), Err(PathError::Empty));
    }

    #[test]
    fn device_paths_keep_their_quirks() {
        let p = ParamPath::from_device(".ExternalIPAddress").unwrap();
        assert_eq!(p.as_str(), ".ExternalIPAddress");
        let segs: Vec<_> = ParamPath::parse("Device.A.1.")
            .unwrap()
            .segments()
            .map(String::from)
            .collect();
        assert_eq!(segs, ["Device", "A", "1"]);
    }
}
