//! One file per CWMP RPC (TR-069 Annex A.3), each holding the request and its response, with
//! `decode` from a parsed element and `encode` to XML, in both directions, so the ACS and the
//! simulator share one codec.

pub mod add_object;
pub mod delete_object;
pub mod download;
pub mod du_state_change_complete;
pub mod factory_reset;
pub mod fault;
pub mod get_parameter_attributes;
pub mod get_parameter_names;
pub mod get_parameter_values;
pub mod get_rpc_methods;
pub mod inform;
pub mod kicked;
pub mod reboot;
pub mod request_download;
pub mod schedule_inform;
pub mod set_parameter_attributes;
pub mod set_parameter_values;
pub mod transfer_complete;
pub mod upload;

use crate::xml::{text_element, Element};
use crate::DecodeError;

/// Required child text, or an `Invalid arguments` decode error naming what is missing.
pub(crate) fn required<'a>(
    el: &'a Element,
    rpc: &'static str,
    name: &'static str,
) -> Result<&'a str, DecodeError> {
    el.child_text(name)
        .ok_or(DecodeError::MissingElement { rpc, element: name })
}

/// Optional child text; real devices omit optional-looking fields such as CommandKey.
pub(crate) fn optional(el: &Element, name: &str) -> String {
    el.child_text(name).unwrap_or_default().to_owned()
}

pub(crate) fn parse_number<T: std::str::FromStr>(
    text: &str,
    rpc: &'static str,
    element: &'static str,
) -> Result<T, DecodeError> {
    // Devices pad numbers (`<RetryCount>00</RetryCount>`), which parse fine; whitespace is trimmed.
    text.trim().parse().map_err(|_| DecodeError::InvalidValue {
        rpc,
        element,
        value: text.chars().take(64).collect(),
    })
}

pub(crate) fn required_number<T: std::str::FromStr>(
    el: &Element,
    rpc: &'static str,
    name: &'static str,
) -> Result<T, DecodeError> {
    parse_number(required(el, rpc, name)?, rpc, name)
}

/// TR-069 booleans are `0`/`1`, `true`/`false` in practice.
pub(crate) fn parse_bool(
    text: &str,
    rpc: &'static str,
    element: &'static str,
) -> Result<bool, DecodeError> {
    match text.trim() {
        "1" | "true" | "True" => Ok(true),
        "0" | "false" | "False" => Ok(false),
        other => Err(DecodeError::InvalidValue {
            rpc,
            element,
            value: other.chars().take(64).collect(),
        }),
    }
}

/// Writes a SOAP-encoded string array: `<tag soap-enc:arrayType="xsd:string[n]"><string>…</string></tag>`.
pub(crate) fn write_string_array(out: &mut String, tag: &str, items: &[String]) {
    out.push_str(&format!(
        "<{tag} soap-enc:arrayType=\"xsd:string[{}]\">",
        items.len()
    ));
    for item in items {
        text_element(out, "string", item);
    }
    out.push_str(&format!("</{tag}>"));
}

/// Reads the items of an array element whatever the item element is called (`string`, `Name`, …).
pub(crate) fn read_string_array(el: Option<&Element>) -> Vec<String> {
    el.map(|a| {
        a.children
            .iter()
            .map(|c| c.text.trim().to_owned())
            .collect()
    })
    .unwrap_or_default()
}

pub(crate) fn open_array(out: &mut String, tag: &str, item_type: &str, len: usize) {
    out.push_str(&format!(
        "<{tag} soap-enc:arrayType=\"cwmp:{item_type}[{len}]\">"
    ));
}
