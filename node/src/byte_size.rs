//! Sizes in config files and flags: `4GiB`, `512 MiB`, `64MB`, `1048576`. Binary units are
//! powers of 1024, decimal ones powers of 1000, as operators write them in Helm values.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not a size (write e.g. 4GiB, 512MiB, 64MB or a number of bytes)")]
pub struct ByteSizeError(String);

const UNITS: &[(&str, u64)] = &[
    ("b", 1),
    ("kb", 1_000),
    ("kib", 1 << 10),
    ("k", 1 << 10),
    ("mb", 1_000_000),
    ("mib", 1 << 20),
    ("m", 1 << 20),
    ("gb", 1_000_000_000),
    ("gib", 1 << 30),
    ("g", 1 << 30),
    ("tb", 1_000_000_000_000),
    ("tib", 1 << 40),
    ("t", 1 << 40),
];

impl FromStr for ByteSize {
    type Err = ByteSizeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || ByteSizeError(text.to_owned());
        let trimmed = text.trim();
        let split = trimmed
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(trimmed.len());
        let (number, unit) = trimmed.split_at(split);
        let unit = unit.trim().to_ascii_lowercase();
        let scale = if unit.is_empty() {
            1
        } else {
            UNITS
                .iter()
                .find(|(name, _)| *name == unit)
                .map(|(_, scale)| *scale)
                .ok_or_else(bad)?
        };
        let value: f64 = number.parse().map_err(|_| bad())?;
        let bytes = value * scale as f64;
        if !bytes.is_finite() || bytes < 0.0 || bytes >= u64::MAX as f64 {
            return Err(bad());
        }
        Ok(ByteSize(bytes as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, scale) in [
            ("TiB", 1u64 << 40),
            ("GiB", 1 << 30),
            ("MiB", 1 << 20),
            ("KiB", 1 << 10),
        ] {
            if self.0 >= scale && self.0.is_multiple_of(scale) {
                return write!(f, "{}{name}", self.0 / scale);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bytes(n) => Ok(ByteSize(n)),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// The memory this process may use: the cgroup limit (a container's `resources.limits`) when
/// there is one, else the machine's memory; `None` when neither can be read.
pub fn available_memory() -> Option<u64> {
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .or_else(|_| std::fs::read_to_string("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        // cgroup v1 says "no limit" with a huge number.
        .filter(|&limit| limit < (1 << 60));
    let machine = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
    });
    match (cgroup, machine) {
        (Some(c), Some(m)) => Some(c.min(m)),
        (c, m) => c.or(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_operators_write_them() {
        let parse = |t: &str| t.parse::<ByteSize>().map(|b| b.0);
        assert_eq!(parse("4GiB"), Ok(4 << 30));
        assert_eq!(parse("4 GiB"), Ok(4 << 30));
        assert_eq!(parse("512MiB"), Ok(512 << 20));
        assert_eq!(parse("64MB"), Ok(64_000_000));
        assert_eq!(parse("1.5g"), Ok(3 << 29));
        assert_eq!(parse("1048576"), Ok(1 << 20));
        for bad in ["", "GiB", "4 parsecs", "-1GiB", "1e400"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(ByteSize(4 << 30).to_string(), "4GiB");
        assert_eq!(ByteSize(1000).to_string(), "1000");
        let from_toml: ByteSize = serde_json::from_value(serde_json::json!("256MiB")).unwrap();
        assert_eq!(from_toml.0, 256 << 20);
        let from_number: ByteSize = serde_json::from_value(serde_json::json!(4096)).unwrap();
        assert_eq!(from_number.0, 4096);
    }

    #[test]
    fn this_machine_has_memory() {
        assert!(available_memory().is_some_and(|m| m > 1 << 20));
    }
}
