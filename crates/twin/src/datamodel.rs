//! The TR-181 Device:2 data model, compiled in as a compact table (`data/tr181-2-17-cwmp.tsv`,
//! extracted from the Broadband Forum XML; see `data/SOURCES.md`). Used to refuse a desired
//! change before it is sent: read-only paths, wrong types, out-of-range values, unknown enums.

use radar_core::ParamType;
use std::collections::HashMap;
use std::sync::OnceLock;

const TR181_TSV: &str = include_str!("../data/tr181-2-17-cwmp.tsv");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSpec {
    pub ty: ParamType,
    pub writable: bool,
    pub min: Option<i128>,
    pub max: Option<i128>,
    pub max_length: Option<usize>,
    pub enumeration: Vec<String>,
}

#[derive(Debug)]
pub struct DataModel {
    params: HashMap<String, ParamSpec>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ValidationError {
    #[error("{path} is read-only in the data model")]
    ReadOnly { path: String },
    #[error("{path} is read-only on this device")]
    ReadOnlyOnDevice { path: String },
    #[error("{path}: {source}")]
    Value {
        path: String,
        source: radar_core::ValueError,
    },
    #[error("{path}: {value:?} is not one of {allowed}")]
    NotInEnumeration {
        path: String,
        value: String,
        allowed: String,
    },
    #[error("{path} is not a parameter of the TR-181 data model")]
    UnknownPath { path: String },
}

/// What the device itself reported for a path, used for vendor (`X_…`) paths and when the model
/// does not know the path.
#[derive(Debug, Clone, Copy)]
pub struct ReportedSpec {
    pub ty: ParamType,
    pub writable: bool,
}

impl DataModel {
    /// The compiled-in TR-181 model, parsed once.
    pub fn tr181() -> &'static DataModel {
        static MODEL: OnceLock<DataModel> = OnceLock::new();
        MODEL.get_or_init(|| DataModel::parse(TR181_TSV))
    }

    pub fn parse(tsv: &str) -> Self {
        let mut params = HashMap::new();
        for line in tsv.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
            let cols: Vec<&str> = line.split('\t').collect();
            if cols.len() < 7 {
                continue;
            }
            let spec = ParamSpec {
                ty: ParamType::from_name(cols[1]).unwrap_or_default(),
                writable: cols[2] == "rw",
                min: cols[3].parse().ok(),
                max: cols[4].parse().ok(),
                max_length: cols[5].parse().ok(),
                enumeration: if cols[6].is_empty() {
                    Vec::new()
                } else {
                    cols[6].split('|').map(String::from).collect()
                },
            };
            params.insert(cols[0].to_owned(), spec);
        }
        Self { params }
    }

    pub fn len(&self) -> usize {
        self.params.len()
    }

    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// The spec of a concrete path (`Device.WiFi.SSID.1.SSID` → `Device.WiFi.SSID.{i}.SSID`).
    pub fn spec(&self, path: &str) -> Option<&ParamSpec> {
        self.params.get(&template_of(path))
    }

    /// Validates one desired value. Vendor extensions (`X_…` segments) and paths outside the
    /// model (e.g. TR-098 `InternetGatewayDevice.`) are checked against what the device reported.
    pub fn validate(
        &self,
        path: &str,
        value: &str,
        reported: Option<ReportedSpec>,
    ) -> Result<(), ValidationError> {
        let is_vendor = path.split('.').any(|s| s.starts_with("X_"));
        let spec = if is_vendor { None } else { self.spec(path) };
        let Some(spec) = spec else {
            return match reported {
                Some(r) if !r.writable => {
                    Err(ValidationError::ReadOnlyOnDevice { path: path.into() })
                }
                Some(r) => r.ty.check(value).map_err(|source| ValidationError::Value {
                    path: path.into(),
                    source,
                }),
                None if is_vendor || !path.starts_with("Device.") => Ok(()),
                None => Err(ValidationError::UnknownPath { path: path.into() }),
            };
        };
        if !spec.writable {
            return Err(ValidationError::ReadOnly { path: path.into() });
        }
        spec.ty
            .check(value)
            .map_err(|source| ValidationError::Value {
                path: path.into(),
                source,
            })?;
        if let (Some(_), _) | (_, Some(_)) = (spec.min, spec.max) {
            if let Ok(n) = value.trim().parse::<i128>() {
                let (min, max) = (spec.min.unwrap_or(i128::MIN), spec.max.unwrap_or(i128::MAX));
                if n < min || n > max {
                    let source = radar_core::ValueError::OutOfRange {
                        value: value.into(),
                        min,
                        max,
                    };
                    return Err(ValidationError::Value {
                        path: path.into(),
                        source,
                    });
                }
            }
        }
        if let Some(max) = spec.max_length {
            let len = value.chars().count();
            if len > max {
                let source = radar_core::ValueError::TooLong { len, max };
                return Err(ValidationError::Value {
                    path: path.into(),
                    source,
                });
            }
        }
        if !spec.enumeration.is_empty() && !spec.enumeration.iter().any(|e| e == value) {
            return Err(ValidationError::NotInEnumeration {
                path: path.into(),
                value: value.into(),
                allowed: spec.enumeration.join(", "),
            });
        }
        Ok(())
    }
}

fn template_of(path: &str) -> String {
    path.split('.')
        .map(|s| {
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                "{i}"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_loads_thousands_of_parameters() {
        assert!(DataModel::tr181().len() > 6000);
        let ssid = DataModel::tr181().spec("Device.WiFi.SSID.3.SSID").unwrap();
        assert!(ssid.writable);
        assert_eq!(ssid.max_length, Some(32));
    }

    #[test]
    fn read_only_wrong_type_range_length_and_enum_are_refused() {
        let m = DataModel::tr181();
        assert!(matches!(
            m.validate("Device.DeviceInfo.SoftwareVersion", "2", None),
            Err(ValidationError::ReadOnly { .. })
        ));
        assert!(matches!(
            m.validate("Device.WiFi.SSID.1.Enable", "maybe", None),
            Err(ValidationError::Value { .. })
        ));
        assert!(matches!(
            m.validate("Device.ManagementServer.PeriodicInformInterval", "0", None),
            Err(ValidationError::Value { .. })
        ));
        assert!(matches!(
            m.validate("Device.WiFi.SSID.1.SSID", &"x".repeat(33), None),
            Err(ValidationError::Value { .. })
        ));
        assert!(m.validate("Device.WiFi.SSID.1.SSID", "home", None).is_ok());
        assert!(m
            .validate(
                "Device.ManagementServer.PeriodicInformInterval",
                "300",
                None
            )
            .is_ok());
        assert!(matches!(
            m.validate("Device.WiFi.Nope", "1", None),
            Err(ValidationError::UnknownPath { .. })
        ));
    }

    #[test]
    fn vendor_paths_use_what_the_device_reported() {
        let m = DataModel::tr181();
        assert!(m.validate("Device.X_ACME_Foo", "anything", None).is_ok());
        let ro = ReportedSpec {
            ty: ParamType::String,
            writable: false,
        };
        assert!(matches!(
            m.validate("Device.X_ACME_Foo", "a", Some(ro)),
            Err(ValidationError::ReadOnlyOnDevice { .. })
        ));
        let rw_int = ReportedSpec {
            ty: ParamType::UnsignedInt,
            writable: true,
        };
        assert!(m
            .validate("Device.X_ACME_Level", "abc", Some(rw_int))
            .is_err());
        assert!(m
            .validate("InternetGatewayDevice.LANDevice.1.X", "1", None)
            .is_ok());
    }
}
