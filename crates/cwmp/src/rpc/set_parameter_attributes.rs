//! SetParameterAttributes and its response (TR-069 A.3.2.4).

use super::{
    open_array, parse_bool, read_string_array, required, required_number, write_string_array,
};
use crate::xml::{text_element, Element};
use crate::DecodeError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetParameterAttributesStruct {
    pub name: String,
    pub notification_change: bool,
    pub notification: u8,
    pub access_list_change: bool,
    pub access_list: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetParameterAttributes {
    pub parameters: Vec<SetParameterAttributesStruct>,
}

impl SetParameterAttributes {
    pub fn decode(el: &Element) -> Result<Self, DecodeError> {
        const RPC: &str = "SetParameterAttributes";
        let parameters = match el.child("ParameterList") {
            None => Vec::new(),
            Some(list) => list
                .children_named("SetParameterAttributesStruct")
                .map(|s| {
                    Ok(SetParameterAttributesStruct {
                        name: required(s, RPC, "Name")?.to_owned(),
                        notification_change: parse_bool(
                            required(s, RPC, "NotificationChange")?,
                            RPC,
                            "NotificationChange",
                        )?,
                        notification: required_number(s, RPC, "Notification")?,
                        access_list_change: parse_bool(
                            required(s, RPC, "AccessListChange")?,
                            RPC,
                            "AccessListChange",
                        )?,
                        access_list: read_string_array(s.child("AccessList")),
                    })
                })
                .collect::<Result<_, DecodeError>>()?,
        };
        Ok(Self { parameters })
    }

    pub fn encode(&self, out: &mut String) {
        out.push_str("<cwmp:SetParameterAttributes>");
        open_array(
            out,
            "ParameterList",
            "SetParameterAttributesStruct",
            self.parameters.len(),
        );
        for p in &self.parameters {
            out.push_str("<SetParameterAttributesStruct>");
            text_element(out, "Name", &p.name);
            text_element(
                out,
                "NotificationChange",
                if p.notification_change { "1" } else { "0" },
            );
            text_element(out, "Notification", &p.notification.to_string());
            text_element(
                out,
                "AccessListChange",
                if p.access_list_change { "1" } else { "0" },
            );
            write_string_array(out, "AccessList", &p.access_list);
            out.push_str("</SetParameterAttributesStruct>");
        }
        out.push_str("</ParameterList></cwmp:SetParameterAttributes>");
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetParameterAttributesResponse;

impl SetParameterAttributesResponse {
    pub fn encode(&self, out: &mut String) {
        out.push_str("<cwmp:SetParameterAttributesResponse/>");
    }
}
