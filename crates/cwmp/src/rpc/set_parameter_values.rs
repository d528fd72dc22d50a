//! SetParameterValues and its response (TR-069 A.3.2.1).

use super::{optional, parse_number, required};
use crate::rpc::get_parameter_values::ParameterValue;
use crate::xml::{text_element, Element};
use crate::DecodeError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetParameterValues {
    pub parameters: Vec<ParameterValue>,
    pub parameter_key: String,
}

impl SetParameterValues {
    pub fn decode(el: &Element) -> Result<Self, DecodeError> {
        Ok(Self {
            parameters: ParameterValue::decode_list(el.child("ParameterList"))?,
            parameter_key: optional(el, "ParameterKey"),
        })
    }

    pub fn encode(&self, out: &mut String) {
        out.push_str("<cwmp:SetParameterValues>");
        ParameterValue::encode_list(out, &self.parameters);
        text_element(out, "ParameterKey", &self.parameter_key);
        out.push_str("</cwmp:SetParameterValues>");
    }
}

/// Status 0: applied; 1: applied but committed later (e.g. after a reboot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetParameterValuesResponse {
    pub status: u32,
}

impl SetParameterValuesResponse {
    pub fn decode(el: &Element) -> Result<Self, DecodeError> {
        const RPC: &str = "SetParameterValuesResponse";
        Ok(Self {
            status: parse_number(required(el, RPC, "Status")?, RPC, "Status")?,
        })
    }

    pub fn encode(&self, out: &mut String) {
        out.push_str("<cwmp:SetParameterValuesResponse>");
        text_element(out, "Status", &self.status.to_string());
        out.push_str("</cwmp:SetParameterValuesResponse>");
    }
}
