//! GetParameterValues and its response (TR-069 A.3.2.2). The ParameterValueStruct codec also
//! serves Inform and SetParameterValues.

use super::{open_array, read_string_array, write_string_array};
use crate::xml::{escape, text_element, Element};
use crate::DecodeError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterValue {
    pub name: String,
    pub value: String,
    /// The `xsi:type` as sent, e.g. `xsd:string`; `None` when the device omitted it.
    pub xsd_type: Option<String>,
}

impl ParameterValue {
    pub fn new(name: impl Into<String>, value: impl Into<String>, xsd_type: &str) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
            xsd_type: Some(xsd_type.to_owned()),
        }
    }

    /// Decodes a ParameterList. A struct without `<Value>` (Cisco SPA122) is kept with an empty
    /// value rather than failing the whole response; a struct without `<Name>` is an error.
    pub fn decode_list(list: Option<&Element>) -> Result<Vec<Self>, DecodeError> {
        let Some(list) = list else {
            return Ok(Vec::new());
        };
        list.children_named("ParameterValueStruct")
            .map(|s| {
                let name = s.child_text("Name").ok_or(DecodeError::MissingElement {
                    rpc: "ParameterValueStruct",
                    element: "Name",
                })?;
                let value = s.child("Value");
                Ok(ParameterValue {
                    name: name.to_owned(),
                    // Values keep their inner whitespace; only a value made purely of layout is empty.
                    value: value.map(|v| v.text.to_string()).unwrap_or_default(),
                    xsd_type: value.and_then(|v| v.attribute("type")).map(str::to_owned),
                })
            })
            .collect()
    }

    pub fn encode_list(out: &mut String, params: &[ParameterValue]) {
        open_array(out, "ParameterList", "ParameterValueStruct", params.len());
        for p in params {
            out.push_str("<ParameterValueStruct>");
            text_element(out, "Name", &p.name);
            match &p.xsd_type {
                Some(ty) => out.push_str(&format!(
                    "<Value xsi:type=\"{}\">{}</Value>",
                    escape(ty),
                    escape(&p.value)
                )),
                None => text_element(out, "Value", &p.value),
            }
            out.push_str("</ParameterValueStruct>");
        }
        out.push_str("</ParameterList>");
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetParameterValues {
    pub names: Vec<String>,
}

impl GetParameterValues {
    pub fn decode(el: &Element) -> Result<Self, DecodeError> {
        Ok(Self {
            names: read_string_array(el.child("ParameterNames")),
        })
    }

    pub fn encode(&self, out: &mut String) {
        out.push_str("<cwmp:GetParameterValues>");
        write_string_array(out, "ParameterNames", &self.names);
        out.push_str("</cwmp:GetParameterValues>");
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetParameterValuesResponse {
    pub parameters: Vec<ParameterValue>,
}

impl GetParameterValuesResponse {
    pub fn decode(el: &Element) -> Result<Self, DecodeError> {
        Ok(Self {
            parameters: ParameterValue::decode_list(el.child("ParameterList"))?,
        })
    }

    pub fn encode(&self, out: &mut String) {
        out.push_str("<cwmp:GetParameterValuesResponse>");
        ParameterValue::encode_list(out, &self.parameters);
        out.push_str("</cwmp:GetParameterValuesResponse>");
    }
}
