//! TR-106 parameter types (TR-106 §3.2, carried as `xsd:` types in CWMP, TR-069 A.3.2.1) and the
//! checks a desired value must pass before it is sent to a device.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum ParamType {
    #[default]
    String,
    Int,
    UnsignedInt,
    Long,
    UnsignedLong,
    Boolean,
    DateTime,
    Base64,
    HexBinary,
    Decimal,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ValueError {
    #[error("{value:?} is not a valid {ty}")]
    WrongType { value: String, ty: &'static str },
    #[error("{value} is outside the range {min}..={max}")]
    OutOfRange { value: String, min: i128, max: i128 },
    #[error("value is {len} characters long, more than the maximum {max}")]
    TooLong { len: usize, max: usize },
}

impl ParamType {
    /// Maps an `xsi:type` such as `xsd:unsignedInt` (any prefix, or none) to a type. Unknown
    /// types are treated as strings: devices invent types (`xsd:int32`), and we must not drop values.
    pub fn from_xsd(xsi_type: &str) -> Self {
        let local = xsi_type.rsplit(':').next().unwrap_or(xsi_type);
        match local {
            "int" => ParamType::Int,
            "unsignedInt" => ParamType::UnsignedInt,
            "long" => ParamType::Long,
            "unsignedLong" => ParamType::UnsignedLong,
            "boolean" => ParamType::Boolean,
            "dateTime" => ParamType::DateTime,
            "base64" | "base64Binary" => ParamType::Base64,
            "hexBinary" => ParamType::HexBinary,
            "decimal" => ParamType::Decimal,
            _ => ParamType::String,
        }
    }

    /// The TR-106 name, as the data model XML and the API spell it.
    pub fn name(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Int => "int",
            ParamType::UnsignedInt => "unsignedInt",
            ParamType::Long => "long",
            ParamType::UnsignedLong => "unsignedLong",
            ParamType::Boolean => "boolean",
            ParamType::DateTime => "dateTime",
            ParamType::Base64 => "base64",
            ParamType::HexBinary => "hexBinary",
            ParamType::Decimal => "decimal",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "string" => ParamType::String,
            "int" => ParamType::Int,
            "unsignedInt" => ParamType::UnsignedInt,
            "long" => ParamType::Long,
            "unsignedLong" => ParamType::UnsignedLong,
            "boolean" => ParamType::Boolean,
            "dateTime" => ParamType::DateTime,
            "base64" => ParamType::Base64,
            "hexBinary" => ParamType::HexBinary,
            "decimal" => ParamType::Decimal,
            _ => return None,
        })
    }

    /// The `xsi:type` to put on a value we send.
    pub fn xsd(self) -> &'static str {
        match self {
            ParamType::String => "xsd:string",
            ParamType::Int => "xsd:int",
            ParamType::UnsignedInt => "xsd:unsignedInt",
            ParamType::Long => "xsd:long",
            ParamType::UnsignedLong => "xsd:unsignedLong",
            ParamType::Boolean => "xsd:boolean",
            ParamType::DateTime => "xsd:dateTime",
            ParamType::Base64 => "xsd:base64",
            ParamType::HexBinary => "xsd:hexBinary",
            ParamType::Decimal => "xsd:decimal",
        }
    }

    /// Checks that `value` is a lexically valid value of this type (TR-106 §3.2).
    pub fn check(self, value: &str) -> Result<(), ValueError> {
        let wrong = || ValueError::WrongType {
            value: value.to_owned(),
            ty: self.name(),
        };
        let in_range = |min: i128, max: i128| -> Result<(), ValueError> {
            let n: i128 = value.trim().parse().map_err(|_| wrong())?;
            if n < min || n > max {
                return Err(ValueError::OutOfRange {
                    value: value.to_owned(),
                    min,
                    max,
                });
            }
            Ok(())
        };
        match self {
            ParamType::String | ParamType::Base64 => Ok(()),
            ParamType::Int => in_range(i32::MIN.into(), i32::MAX.into()),
            ParamType::UnsignedInt => in_range(0, u32::MAX.into()),
            ParamType::Long => in_range(i64::MIN.into(), i64::MAX.into()),
            ParamType::UnsignedLong => in_range(0, u64::MAX.into()),
            ParamType::Boolean => match value.trim() {
                "true" | "false" | "0" | "1" => Ok(()),
                _ => Err(wrong()),
            },
            ParamType::Decimal => value.trim().parse::<f64>().map(|_| ()).map_err(|_| wrong()),
            ParamType::HexBinary => {
                if value.len().is_multiple_of(2) && value.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Ok(())
                } else {
                    Err(wrong())
                }
            }
            ParamType::DateTime => {
                // TR-106 §3.2.1: ISO 8601 `YYYY-MM-DDThh:mm:ss` with optional fraction and zone.
                let b = value.as_bytes();
                let shape_ok = b.len() >= 19
                    && b[4] == b'-'
                    && b[7] == b'-'
                    && b[10] == b'T'
                    && b[13] == b':'
                    && b[16] == b':'
                    && [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
                        .iter()
                        .all(|&i| b[i].is_ascii_digit());
                if shape_ok {
                    Ok(())
                } else {
                    Err(wrong())
                }
            }
        }
    }

    /// Canonical boolean spelling, since devices report `0`/`1` and `true`/`false` alike.
    pub fn normalize_bool(value: &str) -> Option<bool> {
        match value.trim() {
            "1" | "true" | "True" | "TRUE" => Some(true),
            "0" | "false" | "False" | "FALSE" => Some(false),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xsd_types_map_with_any_prefix() {
        assert_eq!(
            ParamType::from_xsd("xsd:unsignedInt"),
            ParamType::UnsignedInt
        );
        assert_eq!(ParamType::from_xsd("xs:boolean"), ParamType::Boolean);
        assert_eq!(ParamType::from_xsd("dateTime"), ParamType::DateTime);
        assert_eq!(ParamType::from_xsd("xsd:weird"), ParamType::String);
        assert_eq!(ParamType::UnsignedInt.xsd(), "xsd:unsignedInt");
        assert_eq!(
            ParamType::from_name("unsignedLong"),
            Some(ParamType::UnsignedLong)
        );
    }

    #[test]
    fn values_are_checked_against_their_type() {
        assert!(ParamType::UnsignedInt.check("42").is_ok());
        assert!(matches!(
            ParamType::UnsignedInt.check("-1"),
            Err(ValueError::OutOfRange { .. })
        ));
        assert!(matches!(
            ParamType::Int.check("abc"),
            Err(ValueError::WrongType { .. })
        ));
        assert!(ParamType::Boolean.check("1").is_ok());
        assert!(ParamType::Boolean.check("yes").is_err());
        assert!(ParamType::DateTime.check("2024-01-01T00:00:00Z").is_ok());
        assert!(ParamType::DateTime.check("yesterday").is_err());
        assert!(ParamType::HexBinary.check("0aFF").is_ok());
        assert!(ParamType::HexBinary.check("0aF").is_err());
        assert_eq!(ParamType::normalize_bool("0"), Some(false));
    }
}
