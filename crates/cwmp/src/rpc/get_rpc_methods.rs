//! GetRPCMethods and its response (TR-069 A.3.1.1). Either side may call it.

use super::{read_string_array, write_string_array};
use crate::xml::Element;
use crate::DecodeError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetRpcMethods;

impl GetRpcMethods {
    pub fn encode(&self, out: &mut String) {
        out.push_str("<cwmp:GetRPCMethods/>");
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetRpcMethodsResponse {
    pub methods: Vec<String>,
}

impl GetRpcMethodsResponse {
    pub fn decode(el: &Element) -> Result<Self, DecodeError> {
        Ok(Self {
            methods: read_string_array(el.child("MethodList")),
        })
    }

    pub fn encode(&self, out: &mut String) {
        out.push_str("<cwmp:GetRPCMethodsResponse>");
        write_string_array(out, "MethodList", &self.methods);
        out.push_str("</cwmp:GetRPCMethodsResponse>");
    }

    /// The methods an ACS supports as a responder (TR-069 A.3.1.1: ACS methods).
    pub fn acs_methods() -> Self {
        Self {
            methods: [
                "Inform",
                "GetRPCMethods",
                "TransferComplete",
                "AutonomousTransferComplete",
                "RequestDownload",
                "Kicked",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}
