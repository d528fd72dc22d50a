//! Download and its response (TR-069 A.3.2.8). Status 1 means the transfer runs after the session
//! and completes later with a TransferComplete carrying the same CommandKey.

use super::{optional, required, required_number};
use crate::xml::{text_element, Element};
use crate::DecodeError;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Download {
    pub command_key: String,
    /// e.g. `1 Firmware Upgrade Image`, `3 Vendor Configuration File`.
    pub file_type: String,
    pub url: String,
    pub username: String,
    pub password: String,
    pub file_size: u64,
    pub target_file_name: String,
    pub delay_seconds: u32,
    pub success_url: String,
    pub failure_url: String,
}

impl Download {
    pub fn decode(el: &Element) -> Result<Self, DecodeError> {
        const RPC: &str = "Download";
        Ok(Self {
            command_key: optional(el, "CommandKey"),
            file_type: required(el, RPC, "FileType")?.to_owned(),
            url: required(el, RPC, "URL")?.to_owned(),
            username: optional(el, "Username"),
            password: optional(el, "Password"),
            file_size: el
                .child_text("FileSize")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            target_file_name: optional(el, "TargetFileName"),
            delay_seconds: el
                .child_text("DelaySeconds")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            success_url: optional(el, "SuccessURL"),
            failure_url: optional(el, "FailureURL"),
        })
    }

    pub fn encode(&self, out: &mut String) {
        out.push_str("<cwmp:Download>");
        text_element(out, "CommandKey", &self.command_key);
        text_element(out, "FileType", &self.file_type);
        text_element(out, "URL", &self.url);
        text_element(out, "Username", &self.username);
        text_element(out, "Password", &self.password);
        text_element(out, "FileSize", &self.file_size.to_string());
        text_element(out, "TargetFileName", &self.target_file_name);
        text_element(out, "DelaySeconds", &self.delay_seconds.to_string());
        text_element(out, "SuccessURL", &self.success_url);
        text_element(out, "FailureURL", &self.failure_url);
        out.push_str("</cwmp:Download>");
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadResponse {
    pub status: u32,
    pub start_time: String,
    pub complete_time: String,
}

impl DownloadResponse {
    pub fn decode(el: &Element) -> Result<Self, DecodeError> {
        Ok(Self {
            status: required_number(el, "DownloadResponse", "Status")?,
            start_time: optional(el, "StartTime"),
            complete_time: optional(el, "CompleteTime"),
        })
    }

    pub fn encode(&self, out: &mut String) {
        out.push_str("<cwmp:DownloadResponse>");
        text_element(out, "Status", &self.status.to_string());
        text_element(out, "StartTime", &self.start_time);
        text_element(out, "CompleteTime", &self.complete_time);
        out.push_str("</cwmp:DownloadResponse>");
    }
}
