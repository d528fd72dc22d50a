//! SOAP Fault carrying a CWMP Fault (TR-069 A.5). CPE codes are 9000–9899, ACS codes 8000–8006.

use super::{optional, parse_number};
use crate::xml::{text_element, Element};
use crate::DecodeError;

/// ACS fault codes (TR-069 A.5.1).
pub mod acs_codes {
    pub const METHOD_NOT_SUPPORTED: u32 = 8000;
    pub const REQUEST_DENIED: u32 = 8001;
    pub const INTERNAL_ERROR: u32 = 8002;
    pub const INVALID_ARGUMENTS: u32 = 8003;
    pub const RESOURCES_EXCEEDED: u32 = 8004;
    pub const RETRY_REQUEST: u32 = 8005;
    pub const VERSION_INCOMPATIBLE: u32 = 8006;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetParameterValuesFault {
    pub parameter_name: String,
    pub code: u32,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CwmpFault {
    /// SOAP faultcode, `Client` or `Server` (sometimes prefixed, e.g. `SOAP-ENV:Client`).
    pub soap_code: String,
    pub code: u32,
    pub message: String,
    pub set_parameter_values_faults: Vec<SetParameterValuesFault>,
}

impl CwmpFault {
    pub fn new(code: u32, message: impl Into<String>) -> Self {
        // TR-069 A.5: the SOAP faultcode is Server for internal errors and retry, Client otherwise.
        let soap_code = if matches!(code, 8002 | 8005 | 9002) {
            "Server"
        } else {
            "Client"
        };
        Self {
            soap_code: soap_code.into(),
            code,
            message: message.into(),
            set_parameter_values_faults: Vec::new(),
        }
    }

    /// Decodes the SOAP `Fault` element.
    pub fn decode(el: &Element) -> Result<Self, DecodeError> {
        const RPC: &str = "Fault";
        let soap_code = optional(el, "faultcode");
        let detail = el.child("detail").and_then(|d| d.child("Fault")).ok_or(
            DecodeError::MissingElement {
                rpc: RPC,
                element: "detail/Fault",
            },
        )?;
        let code = parse_number(
            detail.child_text("FaultCode").unwrap_or(""),
            RPC,
            "FaultCode",
        )?;
        let set_parameter_values_faults = detail
            .children_named("SetParameterValuesFault")
            .map(|f| {
                Ok(SetParameterValuesFault {
                    parameter_name: optional(f, "ParameterName"),
                    code: parse_number(f.child_text("FaultCode").unwrap_or(""), RPC, "FaultCode")?,
                    message: optional(f, "FaultString"),
                })
            })
            .collect::<Result<_, DecodeError>>()?;
        Ok(Self {
            soap_code,
            code,
            message: optional(detail, "FaultString"),
            set_parameter_values_faults,
        })
    }

    pub fn encode(&self, out: &mut String) {
        out.push_str("<soap-env:Fault>");
        text_element(out, "faultcode", &self.soap_code);
        out.push_str("<faultstring>CWMP fault</faultstring><detail><cwmp:Fault>");
        text_element(out, "FaultCode", &self.code.to_string());
        text_element(out, "FaultString", &self.message);
        for f in &self.set_parameter_values_faults {
            out.push_str("<SetParameterValuesFault>");
            text_element(out, "ParameterName", &f.parameter_name);
            text_element(out, "FaultCode", &f.code.to_string());
            text_element(out, "FaultString", &f.message);
            out.push_str("</SetParameterValuesFault>");
        }
        out.push_str("</cwmp:Fault></detail></soap-env:Fault>");
    }
}
