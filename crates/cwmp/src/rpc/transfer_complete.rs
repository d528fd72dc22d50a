//! TransferComplete and AutonomousTransferComplete with their responses (TR-069 A.3.3.2, A.3.3.3).

use super::{optional, parse_bool, parse_number};
use crate::xml::{text_element, Element};
use crate::DecodeError;

/// FaultStruct of a transfer: code 0 means success.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TransferFault {
    pub code: u32,
    pub message: String,
}

impl TransferFault {
    fn decode(el: &Element, rpc: &'static str) -> Result<Self, DecodeError> {
        match el.child("FaultStruct") {
            None => Ok(Self::default()),
            Some(f) => Ok(Self {
                code: match f.child_text("FaultCode") {
                    Some(c) if !c.is_empty() => parse_number(c, rpc, "FaultCode")?,
                    _ => 0,
                },
                message: optional(f, "FaultString"),
            }),
        }
    }

    fn encode(&self, out: &mut String) {
        out.push_str("<FaultStruct>");
        text_element(out, "FaultCode", &self.code.to_string());
        text_element(out, "FaultString", &self.message);
        out.push_str("</FaultStruct>");
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TransferComplete {
    pub command_key: String,
    pub fault: TransferFault,
    pub start_time: String,
    pub complete_time: String,
}

impl TransferComplete {
    pub fn decode(el: &Element) -> Result<Self, DecodeError> {
        Ok(Self {
            command_key: optional(el, "CommandKey"),
            fault: TransferFault::decode(el, "TransferComplete")?,
            start_time: optional(el, "StartTime"),
            complete_time: optional(el, "CompleteTime"),
        })
    }

    pub fn encode(&self, out: &mut String) {
        out.push_str("<cwmp:TransferComplete>");
        text_element(out, "CommandKey", &self.command_key);
        self.fault.encode(out);
        text_element(out, "StartTime", &self.start_time);
        text_element(out, "CompleteTime", &self.complete_time);
        out.push_str("</cwmp:TransferComplete>");
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AutonomousTransferComplete {
    pub announce_url: String,
    pub transfer_url: String,
    pub is_download: bool,
    pub file_type: String,
    pub file_size: u64,
    pub target_file_name: String,
    pub fault: TransferFault,
    pub start_time: String,
    pub complete_time: String,
}

impl AutonomousTransferComplete {
    pub fn decode(el: &Element) -> Result<Self, DecodeError> {
        const RPC: &str = "AutonomousTransferComplete";
        Ok(Self {
            announce_url: optional(el, "AnnounceURL"),
            transfer_url: optional(el, "TransferURL"),
            is_download: match el.child_text("IsDownload") {
                Some(v) if !v.is_empty() => parse_bool(v, RPC, "IsDownload")?,
                _ => false,
            },
            file_type: optional(el, "FileType"),
            file_size: el
                .child_text("FileSize")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            target_file_name: optional(el, "TargetFileName"),
            fault: TransferFault::decode(el, RPC)?,
            start_time: optional(el, "StartTime"),
            complete_time: optional(el, "CompleteTime"),
        })
    }

    pub fn encode(&self, out: &mut String) {
        out.push_str("<cwmp:AutonomousTransferComplete>");
        text_element(out, "AnnounceURL", &self.announce_url);
        text_element(out, "TransferURL", &self.transfer_url);
        text_element(out, "IsDownload", if self.is_download { "1" } else { "0" });
        text_element(out, "FileType", &self.file_type);
        text_element(out, "FileSize", &self.file_size.to_string());
        text_element(out, "TargetFileName", &self.target_file_name);
        self.fault.encode(out);
        text_element(out, "StartTime", &self.start_time);
        text_element(out, "CompleteTime", &self.complete_time);
        out.push_str("</cwmp:AutonomousTransferComplete>");
    }
}
