//! DUStateChangeComplete (TR-069 A.4.2.6): the CPE reports the outcome of software-module
//! operations. Radar records each result in the twin's event log.

use super::{optional, parse_number};
use crate::xml::{text_element, Element};
use crate::DecodeError;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OpResult {
    pub uuid: String,
    pub deployment_unit_ref: String,
    pub version: String,
    pub current_state: String,
    pub fault_code: u32,
    pub fault_string: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DuStateChangeComplete {
    pub command_key: String,
    pub results: Vec<OpResult>,
}

impl DuStateChangeComplete {
    pub fn decode(el: &Element) -> Result<Self, DecodeError> {
        const RPC: &str = "DUStateChangeComplete";
        let results = match el.child("Results") {
            None => Vec::new(),
            Some(list) => list
                .children_named("OpResultStruct")
                .map(|r| {
                    let fault = r.child("Fault").and_then(|f| f.child("FaultStruct"));
                    Ok(OpResult {
                        uuid: optional(r, "UUID"),
                        deployment_unit_ref: optional(r, "DeploymentUnitRef"),
                        version: optional(r, "Version"),
                        current_state: optional(r, "CurrentState"),
                        fault_code: match fault.and_then(|f| f.child_text("FaultCode")) {
                            Some(c) if !c.is_empty() => parse_number(c, RPC, "FaultCode")?,
                            _ => 0,
                        },
                        fault_string: fault
                            .map(|f| optional(f, "FaultString"))
                            .unwrap_or_default(),
                    })
                })
                .collect::<Result<_, DecodeError>>()?,
        };
        Ok(Self {
            command_key: optional(el, "CommandKey"),
            results,
        })
    }

    pub fn encode(&self, out: &mut String) {
        out.push_str("<cwmp:DUStateChangeComplete>");
        text_element(out, "CommandKey", &self.command_key);
        super::open_array(out, "Results", "OpResultStruct", self.results.len());
        for r in &self.results {
            out.push_str("<OpResultStruct>");
            text_element(out, "UUID", &r.uuid);
            text_element(out, "DeploymentUnitRef", &r.deployment_unit_ref);
            text_element(out, "Version", &r.version);
            text_element(out, "CurrentState", &r.current_state);
            out.push_str("<Fault><FaultStruct>");
            text_element(out, "FaultCode", &r.fault_code.to_string());
            text_element(out, "FaultString", &r.fault_string);
            out.push_str("</FaultStruct></Fault></OpResultStruct>");
        }
        out.push_str("</Results></cwmp:DUStateChangeComplete>");
    }
}
