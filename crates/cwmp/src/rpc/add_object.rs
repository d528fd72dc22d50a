//! AddObject and its response (TR-069 A.3.2.6).

use super::{optional, required, required_number};
use crate::xml::{text_element, Element};
use crate::DecodeError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddObject {
    /// A multi-instance object path ending in a dot, e.g. `Device.NAT.PortMapping.`.
    pub object_name: String,
    pub parameter_key: String,
}

impl AddObject {
    pub fn decode(el: &Element) -> Result<Self, DecodeError> {
        Ok(Self {
            object_name: required(el, "AddObject", "ObjectName")?.to_owned(),
            parameter_key: optional(el, "ParameterKey"),
        })
    }

    pub fn encode(&self, out: &mut String) {
        out.push_str("<cwmp:AddObject>");
        text_element(out, "ObjectName", &self.object_name);
        text_element(out, "ParameterKey", &self.parameter_key);
        out.push_str("</cwmp:AddObject>");
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddObjectResponse {
    pub instance_number: u32,
    pub status: u32,
}

impl AddObjectResponse {
    pub fn decode(el: &Element) -> Result<Self, DecodeError> {
        const RPC: &str = "AddObjectResponse";
        Ok(Self {
            instance_number: required_number(el, RPC, "InstanceNumber")?,
            status: required_number(el, RPC, "Status")?,
        })
    }

    pub fn encode(&self, out: &mut String) {
        out.push_str("<cwmp:AddObjectResponse>");
        text_element(out, "InstanceNumber", &self.instance_number.to_string());
        text_element(out, "Status", &self.status.to_string());
        out.push_str("</cwmp:AddObjectResponse>");
    }
}
