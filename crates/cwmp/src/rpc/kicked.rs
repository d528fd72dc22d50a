//! Kicked (TR-069 A.4.2.1, deprecated). Radar does not implement web-identity kicks, so it answers
//! with fault 8000 (Method not supported), which the CPE reports back to its user.

use super::optional;
use crate::xml::{text_element, Element};
use crate::DecodeError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kicked {
    pub command: String,
    pub referer: String,
    pub arg: String,
    pub next: String,
}

impl Kicked {
    pub fn decode(el: &Element) -> Result<Self, DecodeError> {
        Ok(Self {
            command: optional(el, "Command"),
            referer: optional(el, "Referer"),
            arg: optional(el, "Arg"),
            next: optional(el, "Next"),
        })
    }

    pub fn encode(&self, out: &mut String) {
        out.push_str("<cwmp:Kicked>");
        text_element(out, "Command", &self.command);
        text_element(out, "Referer", &self.referer);
        text_element(out, "Arg", &self.arg);
        text_element(out, "Next", &self.next);
        out.push_str("</cwmp:Kicked>");
    }
}
