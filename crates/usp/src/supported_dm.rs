//! GetSupportedDM (TR-369 §7.6.7): the agent's schema, flattened to parameter templates with a
//! type and writability, so values read with Get enter the twin typed.

use crate::proto::msg::{get_supported_dm_resp as gsdm, GetSupportedDmResp};
use radar_core::ParamType;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamSchema {
    pub ty: ParamType,
    pub writable: bool,
}

/// Parameter templates (`Device.WiFi.SSID.{i}.SSID`) → schema.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    params: HashMap<String, ParamSchema>,
    /// Multi-instance object templates (`Device.Hosts.Host.{i}.`).
    pub tables: Vec<String>,
    /// First-level objects under the root, for fetching the data model in chunks.
    pub top_level: Vec<String>,
}

impl Schema {
    pub fn from_response(resp: &GetSupportedDmResp) -> Self {
        let mut schema = Schema::default();
        for requested in resp.req_obj_results.iter().filter(|r| r.err_code == 0) {
            for obj in &requested.supported_objs {
                let path = obj.supported_obj_path.as_str();
                if obj.is_multi_instance {
                    schema.tables.push(path.to_owned());
                }
                if path.matches('.').count() == 2 && !path.contains('{') {
                    schema.top_level.push(path.to_owned());
                }
                for p in &obj.supported_params {
                    schema.params.insert(
                        format!("{path}{}", p.param_name),
                        ParamSchema {
                            ty: value_type(p.value_type),
                            writable: p.access != gsdm::ParamAccessType::ParamReadOnly as i32,
                        },
                    );
                }
            }
        }
        schema.top_level.sort();
        schema.top_level.dedup();
        schema
    }

    /// The schema of a concrete parameter path.
    pub fn lookup(&self, path: &str) -> Option<ParamSchema> {
        self.params.get(&template_of(path)).copied()
    }
}

fn value_type(t: i32) -> ParamType {
    use gsdm::ParamValueType as V;
    match V::try_from(t).unwrap_or(V::ParamUnknown) {
        V::ParamBase64 => ParamType::Base64,
        V::ParamBoolean => ParamType::Boolean,
        V::ParamDateTime => ParamType::DateTime,
        V::ParamDecimal => ParamType::Decimal,
        V::ParamHexBinary => ParamType::HexBinary,
        V::ParamInt => ParamType::Int,
        V::ParamLong => ParamType::Long,
        V::ParamUnsignedInt => ParamType::UnsignedInt,
        V::ParamUnsignedLong => ParamType::UnsignedLong,
        V::ParamString | V::ParamUnknown => ParamType::String,
    }
}

/// Replaces instance numbers with `{i}`, as supported paths write them (TR-369 §7.6.7).
pub fn template_of(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 8);
    for (i, segment) in path.split('.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str("{i}");
        } else {
            out.push_str(segment);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concrete_paths_find_their_template() {
        assert_eq!(
            template_of("Device.WiFi.SSID.12.SSID"),
            "Device.WiFi.SSID.{i}.SSID"
        );
        assert_eq!(
            template_of("Device.IP.Interface.1.IPv4Address.2."),
            "Device.IP.Interface.{i}.IPv4Address.{i}."
        );
        let resp = GetSupportedDmResp {
            req_obj_results: vec![gsdm::RequestedObjectResult {
                req_obj_path: "Device.".into(),
                supported_objs: vec![
                    gsdm::SupportedObjectResult {
                        supported_obj_path: "Device.WiFi.".into(),
                        ..Default::default()
                    },
                    gsdm::SupportedObjectResult {
                        supported_obj_path: "Device.WiFi.SSID.{i}.".into(),
                        is_multi_instance: true,
                        supported_params: vec![
                            gsdm::SupportedParamResult {
                                param_name: "SSID".into(),
                                access: gsdm::ParamAccessType::ParamReadWrite as i32,
                                value_type: gsdm::ParamValueType::ParamString as i32,
                                ..Default::default()
                            },
                            gsdm::SupportedParamResult {
                                param_name: "LastChange".into(),
                                access: gsdm::ParamAccessType::ParamReadOnly as i32,
                                value_type: gsdm::ParamValueType::ParamUnsignedInt as i32,
                                ..Default::default()
                            },
                        ],
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
        };
        let schema = Schema::from_response(&resp);
        assert_eq!(
            schema.lookup("Device.WiFi.SSID.3.SSID"),
            Some(ParamSchema {
                ty: ParamType::String,
                writable: true
            })
        );
        assert_eq!(
            schema.lookup("Device.WiFi.SSID.3.LastChange"),
            Some(ParamSchema {
                ty: ParamType::UnsignedInt,
                writable: false
            })
        );
        assert_eq!(schema.tables, vec!["Device.WiFi.SSID.{i}.".to_string()]);
        assert_eq!(schema.top_level, vec!["Device.WiFi.".to_string()]);
    }
}
