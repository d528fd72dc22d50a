//! A small, bounded XML tree built with quick-xml's namespace-resolving reader, and the writer
//! helpers the encoders use.
//!
//! Why a tree: SOAP bodies are small (capped by the driver), and RPC decoders read far more clearly
//! from a tree than from a pull parser. Why bounded: a device is untrusted input, so depth and
//! element count are capped, DTDs are refused (SOAP 1.1 §3: a message MUST NOT contain a DTD), and
//! only the five predefined entities and character references are resolved, which makes
//! entity-expansion bombs impossible.

use compact_str::CompactString;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use std::borrow::Cow;

pub const MAX_DEPTH: usize = 64;
pub const MAX_ELEMENTS: usize = 500_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum XmlError {
    #[error("malformed xml at byte {position}: {message}")]
    Malformed { position: u64, message: String },
    #[error("document type declarations are not allowed in soap messages")]
    DoctypeNotAllowed,
    #[error("unknown entity reference &{0};")]
    UnknownEntity(String),
    #[error("xml nesting deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("more than {MAX_ELEMENTS} xml elements")]
    TooManyElements,
    #[error("document has no root element")]
    NoRoot,
}

/// One element with its resolved namespace URI, local name, attributes (by local name) and text.
/// Names and most values are short, so they are held inline (`CompactString`, up to 24 bytes):
/// decoding an Inform allocates for the tree's vectors, not for every name and value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    pub namespace: Option<CompactString>,
    pub name: CompactString,
    pub attributes: Vec<(CompactString, CompactString)>,
    pub children: Vec<Element>,
    pub text: CompactString,
}

impl Element {
    /// First child with this local name, whatever its namespace or prefix: CWMP argument elements
    /// are unqualified, but real devices qualify them in all sorts of ways.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Trimmed text of a child, or `None` when the child is absent.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }

    pub fn attribute(&self, local_name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == local_name)
            .map(|(_, v)| v.as_str())
    }
}

/// Decodes device bytes to text. CWMP devices declare UTF-8 or ISO-8859-1 (Thomson); anything that
/// is not valid UTF-8 is read as Latin-1, which maps every byte to a char and never fails.
pub fn decode_text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(bytes.iter().map(|&b| b as char).collect()),
    }
}

pub fn parse(input: &str) -> Result<Element, XmlError> {
    let mut reader = NsReader::from_str(input);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let position = reader.buffer_position();
        let malformed = |e: &dyn std::fmt::Display| XmlError::Malformed {
            position,
            message: e.to_string(),
        };
        let (ns, event) = reader.read_resolved_event().map_err(|e| malformed(&e))?;
        match event {
            Event::Start(start) | Event::Empty(start) if root.is_some() && stack.is_empty() => {
                let _ = start;
                return Err(malformed(&"content after the root element"));
            }
            Event::Start(ref start) | Event::Empty(ref start) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(XmlError::TooManyElements);
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                let namespace = match ns {
                    ResolveResult::Bound(n) => Some(CompactString::from(n.0)),
                    _ => None,
                };
                let mut element = Element {
                    namespace,
                    name: CompactString::from(start.local_name().as_ref()),
                    ..Default::default()
                };
                for attr in start.attributes().with_checks(false) {
                    let attr = attr.map_err(|e| malformed(&e))?;
                    let key = CompactString::from(attr.key.local_name().as_ref());
                    if attr.key.as_ref().starts_with("xmlns") {
                        continue;
                    }
                    let value = unescape(&attr.value)?;
                    element.attributes.push((key, value.into()));
                }
                if matches!(event, Event::Empty(_)) {
                    attach(&mut stack, &mut root, element);
                } else {
                    stack.push(element);
                }
            }
            Event::End(_) => {
                let element = stack
                    .pop()
                    .ok_or_else(|| malformed(&"unexpected end tag"))?;
                attach(&mut stack, &mut root, element);
            }
            Event::Text(text) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&text.xml10_content());
                } else if !text.trim().is_empty() {
                    return Err(malformed(&"text outside the root element"));
                }
            }
            Event::CData(data) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&data);
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = if reference.is_char_ref() {
                    reference
                        .resolve_char_ref()
                        .map_err(|e| malformed(&e))?
                        .ok_or_else(|| XmlError::UnknownEntity(reference.to_string()))?
                        .to_string()
                } else {
                    predefined_entity(&reference)
                        .ok_or_else(|| XmlError::UnknownEntity(reference.to_string()))?
                        .to_string()
                };
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&resolved);
                }
            }
            Event::DocType(_) => return Err(XmlError::DoctypeNotAllowed),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => {
                if !stack.is_empty() {
                    return Err(malformed(&"unexpected end of document"));
                }
                return root.ok_or(XmlError::NoRoot);
            }
        }
    }
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, element: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None => *root = Some(element),
    }
}

fn predefined_entity(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        _ => return None,
    })
}

/// Unescapes an attribute value, resolving only predefined entities and character references.
fn unescape(raw: &str) -> Result<String, XmlError> {
    if !raw.contains('&') {
        return Ok(raw.to_owned());
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let semi = after
            .find(';')
            .ok_or_else(|| XmlError::UnknownEntity(after.chars().take(16).collect()))?;
        let name = &after[..semi];
        let ch = if let Some(num) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
            u32::from_str_radix(num, 16).ok().and_then(char::from_u32)
        } else if let Some(num) = name.strip_prefix('#') {
            num.parse::<u32>().ok().and_then(char::from_u32)
        } else {
            predefined_entity(name)
        };
        out.push(ch.ok_or_else(|| XmlError::UnknownEntity(name.to_owned()))?);
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Escapes text for element content and double-quoted attribute values.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Appends `<tag>escaped text</tag>`.
pub fn text_element(out: &mut String, tag: &str, text: &str) {
    out.push('<');
    out.push_str(tag);
    out.push('>');
    out.push_str(&escape(text));
    out.push_str("</");
    out.push_str(tag);
    out.push('>');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_namespaces_not_prefixes() {
        let doc = r#"<a:Envelope xmlns:a="urn:x" xmlns:b="urn:y"><b:Body><c>1 &amp; 2</c></b:Body></a:Envelope>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.namespace.as_deref(), Some("urn:x"));
        let body = root.child("Body").unwrap();
        assert_eq!(body.namespace.as_deref(), Some("urn:y"));
        assert_eq!(body.child_text("c"), Some("1 & 2"));
    }

    #[test]
    fn refuses_doctype_and_unknown_entities() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><a>&lol2;</a>"#;
        assert_eq!(parse(bomb), Err(XmlError::DoctypeNotAllowed));
        assert_eq!(
            parse("<a>&lol;</a>"),
            Err(XmlError::UnknownEntity("lol".into()))
        );
    }

    #[test]
    fn character_references_and_attributes_unescape() {
        let root = parse(r#"<a t='x&lt;y'>&#65;&#x42;</a>"#).unwrap();
        assert_eq!(root.attribute("t"), Some("x<y"));
        assert_eq!(root.text, "AB");
    }

    #[test]
    fn malformed_and_deep_documents_are_errors() {
        assert!(matches!(
            parse("<a><b></a>"),
            Err(XmlError::Malformed { .. })
        ));
        assert!(matches!(parse("<a>"), Err(XmlError::Malformed { .. })));
        assert_eq!(parse(""), Err(XmlError::NoRoot));
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert_eq!(parse(&deep), Err(XmlError::TooDeep));
    }

    #[test]
    fn latin1_bodies_decode() {
        assert_eq!(decode_text(&[0x41, 0xE9]), "Aé");
    }

    #[test]
    fn escaping_round_trips() {
        let mut out = String::new();
        text_element(&mut out, "V", "a<b&\"c\"");
        assert_eq!(out, "<V>a&lt;b&amp;&quot;c&quot;</V>");
        let root = parse(&out).unwrap();
        assert_eq!(root.text, "a<b&\"c\"");
    }
}
