//! GetParameterAttributes and its response (TR-069 A.3.2.5).

use super::{open_array, read_string_array, required, required_number, write_string_array};
use crate::xml::{text_element, Element};
use crate::DecodeError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetParameterAttributes {
    pub names: Vec<String>,
}

impl GetParameterAttributes {
    pub fn decode(el: &Element) -> Result<Self, DecodeError> {
        Ok(Self {
            names: read_string_array(el.child("ParameterNames")),
        })
    }

    pub fn encode(&self, out: &mut String) {
        out.push_str("<cwmp:GetParameterAttributes>");
        write_string_array(out, "ParameterNames", &self.names);
        out.push_str("</cwmp:GetParameterAttributes>");
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterAttribute {
    pub name: String,
    /// 0 off, 1 passive, 2 active (TR-069 A.3.2.4).
    pub notification: u8,
    pub access_list: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetParameterAttributesResponse {
    pub parameters: Vec<ParameterAttribute>,
}

impl GetParameterAttributesResponse {
    pub fn decode(el: &Element) -> Result<Self, DecodeError> {
        const RPC: &str = "GetParameterAttributesResponse";
        let parameters = match el.child("ParameterList") {
            None => Vec::new(),
            Some(list) => list
                .children_named("ParameterAttributeStruct")
                .map(|s| {
                    Ok(ParameterAttribute {
                        name: required(s, RPC, "Name")?.to_owned(),
                        notification: required_number(s, RPC, "Notification")?,
                        access_list: read_string_array(s.child("AccessList")),
                    })
                })
                .collect::<Result<_, DecodeError>>()?,
        };
        Ok(Self { parameters })
    }

    pub fn encode(&self, out: &mut String) {
        out.push_str("<cwmp:GetParameterAttributesResponse>");
        open_array(
            out,
            "ParameterList",
            "ParameterAttributeStruct",
            self.parameters.len(),
        );
        for p in &self.parameters {
            out.push_str("<ParameterAttributeStruct>");
            text_element(out, "Name", &p.name);
            text_element(out, "Notification", &p.notification.to_string());
            write_string_array(out, "AccessList", &p.access_list);
            out.push_str("</ParameterAttributeStruct>");
        }
        out.push_str("</ParameterList></cwmp:GetParameterAttributesResponse>");
    }
}
