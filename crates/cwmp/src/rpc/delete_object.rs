//! DeleteObject and its response (TR-069 A.3.2.7).

use super::{optional, required, required_number};
use crate::xml::{text_element, Element};
use crate::DecodeError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteObject {
    /// An instance path ending in a dot, e.g. `Device.NAT.PortMapping.3.`.
    pub object_name: String,
    pub parameter_key: String,
}

impl DeleteObject {
    pub fn decode(el: &Element) -> Result<Self, DecodeError> {
        Ok(Self {
            object_name: required(el, "DeleteObject", "ObjectName")?.to_owned(),
            parameter_key: optional(el, "ParameterKey"),
        })
    }

    pub fn encode(&self, out: &mut String) {
        out.push_str("<cwmp:DeleteObject>");
        text_element(out, "ObjectName", &self.object_name);
        text_element(out, "ParameterKey", &self.parameter_key);
        out.push_str("</cwmp:DeleteObject>");
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteObjectResponse {
    pub status: u32,
}

impl DeleteObjectResponse {
    pub fn decode(el: &Element) -> Result<Self, DecodeError> {
        Ok(Self {
            status: required_number(el, "DeleteObjectResponse", "Status")?,
        })
    }

    pub fn encode(&self, out: &mut String) {
        out.push_str("<cwmp:DeleteObjectResponse>");
        text_element(out, "Status", &self.status.to_string());
        out.push_str("</cwmp:DeleteObjectResponse>");
    }
}
