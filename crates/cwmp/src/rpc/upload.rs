//! Upload and its response (TR-069 A.4.1.5).

use super::{optional, required, required_number};
use crate::xml::{text_element, Element};
use crate::DecodeError;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Upload {
    pub command_key: String,
    /// e.g. `1 Vendor Configuration File`, `2 Vendor Log File`.
    pub file_type: String,
    pub url: String,
    pub username: String,
    pub password: String,
    pub delay_seconds: u32,
}

impl Upload {
    pub fn decode(el: &Element) -> Result<Self, DecodeError> {
        const RPC: &str = "Upload";
        Ok(Self {
            command_key: optional(el, "CommandKey"),
            file_type: required(el, RPC, "FileType")?.to_owned(),
            url: required(el, RPC, "URL")?.to_owned(),
            username: optional(el, "Username"),
            password: optional(el, "Password"),
            delay_seconds: el
                .child_text("DelaySeconds")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
        })
    }

    pub fn encode(&self, out: &mut String) {
        out.push_str("<cwmp:Upload>");
        text_element(out, "CommandKey", &self.command_key);
        text_element(out, "FileType", &self.file_type);
        text_element(out, "URL", &self.url);
        text_element(out, "Username", &self.username);
        text_element(out, "Password", &self.password);
        text_element(out, "DelaySeconds", &self.delay_seconds.to_string());
        out.push_str("</cwmp:Upload>");
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadResponse {
    pub status: u32,
    pub start_time: String,
    pub complete_time: String,
}

impl UploadResponse {
    pub fn decode(el: &Element) -> Result<Self, DecodeError> {
        Ok(Self {
            status: required_number(el, "UploadResponse", "Status")?,
            start_time: optional(el, "StartTime"),
            complete_time: optional(el, "CompleteTime"),
        })
    }

    pub fn encode(&self, out: &mut String) {
        out.push_str("<cwmp:UploadResponse>");
        text_element(out, "Status", &self.status.to_string());
        text_element(out, "StartTime", &self.start_time);
        text_element(out, "CompleteTime", &self.complete_time);
        out.push_str("</cwmp:UploadResponse>");
    }
}
