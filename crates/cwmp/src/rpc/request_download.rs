//! RequestDownload (TR-069 A.4.2.2): the CPE asks the ACS for a file. Radar records the request
//! in the twin's event log and acknowledges it.

use super::{optional, required};
use crate::xml::{text_element, Element};
use crate::DecodeError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestDownload {
    pub file_type: String,
    pub arguments: Vec<(String, String)>,
}

impl RequestDownload {
    pub fn decode(el: &Element) -> Result<Self, DecodeError> {
        let arguments = el
            .child("FileTypeArg")
            .map(|a| {
                a.children_named("ArgStruct")
                    .map(|s| (optional(s, "Name"), optional(s, "Value")))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            file_type: required(el, "RequestDownload", "FileType")?.to_owned(),
            arguments,
        })
    }

    pub fn encode(&self, out: &mut String) {
        out.push_str("<cwmp:RequestDownload>");
        text_element(out, "FileType", &self.file_type);
        super::open_array(out, "FileTypeArg", "ArgStruct", self.arguments.len());
        for (name, value) in &self.arguments {
            out.push_str("<ArgStruct>");
            text_element(out, "Name", name);
            text_element(out, "Value", value);
            out.push_str("</ArgStruct>");
        }
        out.push_str("</FileTypeArg></cwmp:RequestDownload>");
    }
}
