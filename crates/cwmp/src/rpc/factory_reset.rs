//! FactoryReset and its response (TR-069 A.4.1.7, optional for CPEs).

use crate::xml::Element;
use crate::DecodeError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactoryReset;

impl FactoryReset {
    pub fn decode(_el: &Element) -> Result<Self, DecodeError> {
        Ok(Self)
    }

    pub fn encode(&self, out: &mut String) {
        out.push_str("<cwmp:FactoryReset/>");
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactoryResetResponse;

impl FactoryResetResponse {
    pub fn encode(&self, out: &mut String) {
        out.push_str("<cwmp:FactoryResetResponse/>");
    }
}
