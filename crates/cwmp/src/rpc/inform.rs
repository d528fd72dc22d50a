//! Inform and InformResponse (TR-069 A.3.3.1).

use super::{open_array, optional, parse_number, required, required_number};
use crate::rpc::get_parameter_values::ParameterValue;
use crate::xml::{text_element, Element};
use crate::DecodeError;

const RPC: &str = "Inform";

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceIdStruct {
    pub manufacturer: String,
    pub oui: String,
    pub product_class: String,
    pub serial_number: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventStruct {
    pub code: String,
    pub command_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inform {
    pub device_id: DeviceIdStruct,
    pub events: Vec<EventStruct>,
    pub max_envelopes: u32,
    /// Kept as sent: devices send `1970-…`, `0000-00-00T00:00:00` and times without a zone.
    pub current_time: String,
    pub retry_count: u32,
    pub parameters: Vec<ParameterValue>,
}

impl Inform {
    pub fn decode(el: &Element) -> Result<Self, DecodeError> {
        let device = el.child("DeviceId").ok_or(DecodeError::MissingElement {
            rpc: RPC,
            element: "DeviceId",
        })?;
        let device_id = DeviceIdStruct {
            manufacturer: optional(device, "Manufacturer"),
            oui: required(device, RPC, "OUI")?.to_owned(),
            product_class: optional(device, "ProductClass"),
            serial_number: required(device, RPC, "SerialNumber")?.to_owned(),
        };
        let events = el
            .child("Event")
            .map(|e| {
                e.children_named("EventStruct")
                    .map(|s| EventStruct {
                        code: optional(s, "EventCode"),
                        command_key: optional(s, "CommandKey"),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let max_envelopes = match el.child_text("MaxEnvelopes") {
            Some(t) if !t.is_empty() => parse_number(t, RPC, "MaxEnvelopes")?,
            _ => 1,
        };
        let retry_count = match el.child_text("RetryCount") {
            Some(t) if !t.is_empty() => parse_number(t, RPC, "RetryCount")?,
            _ => 0,
        };
        let parameters = ParameterValue::decode_list(el.child("ParameterList"))?;
        Ok(Inform {
            device_id,
            events,
            max_envelopes,
            current_time: optional(el, "CurrentTime"),
            retry_count,
            parameters,
        })
    }

    pub fn has_event(&self, code: &str) -> bool {
        self.events
            .iter()
            .any(|e| e.code.eq_ignore_ascii_case(code))
    }

    pub fn encode(&self, out: &mut String) {
        out.push_str("<cwmp:Inform><DeviceId>");
        text_element(out, "Manufacturer", &self.device_id.manufacturer);
        text_element(out, "OUI", &self.device_id.oui);
        text_element(out, "ProductClass", &self.device_id.product_class);
        text_element(out, "SerialNumber", &self.device_id.serial_number);
        out.push_str("</DeviceId>");
        open_array(out, "Event", "EventStruct", self.events.len());
        for event in &self.events {
            out.push_str("<EventStruct>");
            text_element(out, "EventCode", &event.code);
            text_element(out, "CommandKey", &event.command_key);
            out.push_str("</EventStruct>");
        }
        out.push_str("</Event>");
        text_element(out, "MaxEnvelopes", &self.max_envelopes.to_string());
        text_element(out, "CurrentTime", &self.current_time);
        text_element(out, "RetryCount", &self.retry_count.to_string());
        ParameterValue::encode_list(out, &self.parameters);
        out.push_str("</cwmp:Inform>");
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InformResponse {
    pub max_envelopes: u32,
}

impl InformResponse {
    pub fn decode(el: &Element) -> Result<Self, DecodeError> {
        Ok(InformResponse {
            max_envelopes: required_number(el, "InformResponse", "MaxEnvelopes")?,
        })
    }

    pub fn encode(&self, out: &mut String) {
        out.push_str("<cwmp:InformResponse>");
        text_element(out, "MaxEnvelopes", &self.max_envelopes.to_string());
        out.push_str("</cwmp:InformResponse>");
    }
}
