//! Reboot and its response (TR-069 A.3.2.8). The device confirms the reboot with an Inform that
//! carries `1 BOOT` and `M Reboot` with the same CommandKey.

use super::optional;
use crate::xml::{text_element, Element};
use crate::DecodeError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reboot {
    pub command_key: String,
}

impl Reboot {
    pub fn decode(el: &Element) -> Result<Self, DecodeError> {
        Ok(Self {
            command_key: optional(el, "CommandKey"),
        })
    }

    pub fn encode(&self, out: &mut String) {
        out.push_str("<cwmp:Reboot>");
        text_element(out, "CommandKey", &self.command_key);
        out.push_str("</cwmp:Reboot>");
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebootResponse;

impl RebootResponse {
    pub fn encode(&self, out: &mut String) {
        out.push_str("<cwmp:RebootResponse/>");
    }
}
