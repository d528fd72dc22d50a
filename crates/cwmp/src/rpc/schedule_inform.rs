//! ScheduleInform and its response (TR-069 A.4.1.4).

use super::{optional, required_number};
use crate::xml::{text_element, Element};
use crate::DecodeError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleInform {
    pub delay_seconds: u32,
    pub command_key: String,
}

impl ScheduleInform {
    pub fn decode(el: &Element) -> Result<Self, DecodeError> {
        Ok(Self {
            delay_seconds: required_number(el, "ScheduleInform", "DelaySeconds")?,
            command_key: optional(el, "CommandKey"),
        })
    }

    pub fn encode(&self, out: &mut String) {
        out.push_str("<cwmp:ScheduleInform>");
        text_element(out, "DelaySeconds", &self.delay_seconds.to_string());
        text_element(out, "CommandKey", &self.command_key);
        out.push_str("</cwmp:ScheduleInform>");
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleInformResponse;

impl ScheduleInformResponse {
    pub fn encode(&self, out: &mut String) {
        out.push_str("<cwmp:ScheduleInformResponse/>");
    }
}
