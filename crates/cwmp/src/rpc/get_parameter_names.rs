//! GetParameterNames and its response (TR-069 A.3.2.3).

use super::{open_array, optional, parse_bool, required};
use crate::xml::{text_element, Element};
use crate::DecodeError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetParameterNames {
    pub path: String,
    pub next_level: bool,
}

impl GetParameterNames {
    pub fn decode(el: &Element) -> Result<Self, DecodeError> {
        Ok(Self {
            path: optional(el, "ParameterPath"),
            next_level: parse_bool(
                required(el, "GetParameterNames", "NextLevel")?,
                "GetParameterNames",
                "NextLevel",
            )?,
        })
    }

    pub fn encode(&self, out: &mut String) {
        out.push_str("<cwmp:GetParameterNames>");
        text_element(out, "ParameterPath", &self.path);
        text_element(
            out,
            "NextLevel",
            if self.next_level { "true" } else { "false" },
        );
        out.push_str("</cwmp:GetParameterNames>");
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterInfo {
    pub name: String,
    pub writable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetParameterNamesResponse {
    pub parameters: Vec<ParameterInfo>,
}

impl GetParameterNamesResponse {
    pub fn decode(el: &Element) -> Result<Self, DecodeError> {
        const RPC: &str = "GetParameterNamesResponse";
        let parameters = el
            .child("ParameterList")
            .map(|list| {
                list.children_named("ParameterInfoStruct")
                    .map(|s| {
                        Ok(ParameterInfo {
                            name: required(s, RPC, "Name")?.to_owned(),
                            // Writable is `0`/`1` on Thomson and the anonymised IAD; absent means read-only.
                            writable: match s.child_text("Writable") {
                                Some(w) if !w.is_empty() => parse_bool(w, RPC, "Writable")?,
                                _ => false,
                            },
                        })
                    })
                    .collect::<Result<Vec<_>, DecodeError>>()
            })
            .transpose()?
            .unwrap_or_default();
        Ok(Self { parameters })
    }

    pub fn encode(&self, out: &mut String) {
        out.push_str("<cwmp:GetParameterNamesResponse>");
        open_array(
            out,
            "ParameterList",
            "ParameterInfoStruct",
            self.parameters.len(),
        );
        for p in &self.parameters {
            out.push_str("<ParameterInfoStruct>");
            text_element(out, "Name", &p.name);
            text_element(out, "Writable", if p.writable { "1" } else { "0" });
            out.push_str("</ParameterInfoStruct>");
        }
        out.push_str("</ParameterList></cwmp:GetParameterNamesResponse>");
    }
}
