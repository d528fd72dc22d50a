//! Cuts an XMPP stream (RFC 6120 §4) into its parts as bytes arrive: the stream header, each
//! top-level element (a stanza, `<stream:features/>`, a SASL or TLS negotiation element), and
//! the stream's end. Each complete stanza is then parsed on its own with the bounded tree of
//! [`crate::xml`], inside the stream's namespace declarations.
//!
//! Bounded: a stanza larger than [`MAX_STANZA`] is an error, and so are comments, processing
//! instructions and DTDs, which RFC 6120 §11.1 forbids in a stream.

use crate::xml::{self, Element};

/// Largest top-level element accepted. Connection-request IQs are a few hundred bytes; servers
/// commonly cap stanzas at 64–256 KiB.
pub const MAX_STANZA: usize = 64 * 1024;

const STREAM_WRAP_OPEN: &str =
    "<stream:stream xmlns=\"jabber:client\" xmlns:stream=\"http://etherx.jabber.org/streams\">";
const STREAM_WRAP_CLOSE: &str = "</stream:stream>";

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FramingError {
    #[error("xmpp element larger than {MAX_STANZA} bytes")]
    TooLarge,
    #[error("xmpp stream holds a comment, processing instruction or DTD (RFC 6120 §11.1)")]
    Forbidden,
    #[error("xmpp stream is not xml: {0}")]
    Malformed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// `<stream:stream …>` with its attributes (`id`, `from`, `version`).
    StreamOpen(Vec<(String, String)>),
    Element(Element),
    StreamClose,
}

/// Largest single tag (name and attributes).
const MAX_TAG: usize = 8 * 1024;

#[derive(Debug, Default)]
pub struct Framer {
    buffer: Vec<u8>,
    /// Inside the stream header (depth 1): top-level elements are at depth 2.
    open: bool,
    /// How far the element at the buffer's start has been scanned (the next tag's offset and
    /// the depth there), so bytes arriving one at a time are not rescanned from the start.
    scan_at: usize,
    scan_depth: usize,
}

impl Framer {
    /// Forgets everything: a stream restarts after STARTTLS and after SASL (RFC 6120 §5.4.3.3,
    /// §6.4.6).
    pub fn reset(&mut self) {
        self.buffer.clear();
        self.open = false;
        self.scan_at = 0;
        self.scan_depth = 0;
    }

    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Part>, FramingError> {
        self.buffer.extend_from_slice(bytes);
        let mut parts = Vec::new();
        loop {
            let start = self
                .buffer
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(self.buffer.len());
            // Whitespace between elements is a keepalive (RFC 6120 §4.6.1).
            self.buffer.drain(..start);
            if self.buffer.is_empty() {
                return Ok(parts);
            }
            if self.buffer[0] != b'<' {
                // Text at the stream level is not allowed; cap what we hold while looking.
                return Err(FramingError::Malformed("text between stanzas".into()));
            }
            let Some((end, kind)) = self.complete_element()? else {
                if self.buffer.len() > MAX_STANZA {
                    return Err(FramingError::TooLarge);
                }
                return Ok(parts);
            };
            self.scan_at = 0;
            self.scan_depth = 0;
            let raw: Vec<u8> = self.buffer.drain(..end).collect();
            let text = xml::decode_text(&raw).into_owned();
            match kind {
                Kind::Declaration => {}
                Kind::StreamOpen => {
                    self.open = true;
                    let element = xml::parse(&format!("{text}{STREAM_WRAP_CLOSE}"))
                        .map_err(|e| FramingError::Malformed(e.to_string()))?;
                    parts.push(Part::StreamOpen(
                        element
                            .attributes
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                    ));
                }
                Kind::StreamClose => {
                    self.open = false;
                    parts.push(Part::StreamClose);
                }
                Kind::Element => {
                    let wrapped =
                        xml::parse(&format!("{STREAM_WRAP_OPEN}{text}{STREAM_WRAP_CLOSE}"))
                            .map_err(|e| FramingError::Malformed(e.to_string()))?;
                    let element = wrapped
                        .children
                        .into_iter()
                        .next()
                        .ok_or_else(|| FramingError::Malformed("empty element".into()))?;
                    parts.push(Part::Element(element));
                }
            }
        }
    }

    /// Where the element at the start of the buffer ends, if it is complete.
    fn complete_element(&mut self) -> Result<Option<(usize, Kind)>, FramingError> {
        let b = &self.buffer;
        let mut depth = self.scan_depth;
        let mut at = self.scan_at;
        loop {
            // Text runs to the next tag.
            match b[at..].iter().position(|&c| c == b'<') {
                Some(i) => at += i,
                None => {
                    self.scan_at = b.len();
                    self.scan_depth = depth;
                    return Ok(None);
                }
            }
            let Some(tag_end) = tag_end(b, at) else {
                if b.len() - at > MAX_TAG {
                    return Err(FramingError::TooLarge);
                }
                self.scan_at = at;
                self.scan_depth = depth;
                return Ok(None);
            };
            let tag = &b[at..tag_end];
            if tag.starts_with(b"<?xml") || tag.starts_with(b"<?XML") {
                if depth == 0 {
                    return Ok(Some((tag_end, Kind::Declaration)));
                }
                return Err(FramingError::Forbidden);
            }
            if tag.starts_with(b"<?") || tag.starts_with(b"<!--") || tag.starts_with(b"<!D") {
                return Err(FramingError::Forbidden);
            }
            if tag.starts_with(b"<![CDATA[") {
                // Inside an element: text.
            } else if tag.starts_with(b"</") {
                if depth == 0 {
                    if !self.open || !is_stream_tag(&tag[2..]) {
                        return Err(FramingError::Malformed("unexpected end tag".into()));
                    }
                    return Ok(Some((tag_end, Kind::StreamClose)));
                }
                depth -= 1;
            } else if tag.ends_with(b"/>") {
                // Self-closing: no change.
            } else {
                if depth == 0 && !self.open && is_stream_tag(&tag[1..]) {
                    return Ok(Some((tag_end, Kind::StreamOpen)));
                }
                depth += 1;
            }
            if depth == 0 {
                return Ok(Some((tag_end, Kind::Element)));
            }
            at = tag_end;
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Declaration,
    StreamOpen,
    StreamClose,
    Element,
}

fn is_stream_tag(after_lt: &[u8]) -> bool {
    let name_end = after_lt
        .iter()
        .position(|c| c.is_ascii_whitespace() || *c == b'>' || *c == b'/')
        .unwrap_or(after_lt.len());
    let name = &after_lt[..name_end];
    name == b"stream:stream" || name == b"stream"
}

/// The end (exclusive) of the tag starting at `at`, honouring quoted attribute values and
/// CDATA sections; `None` if the buffer ends first.
fn tag_end(b: &[u8], at: usize) -> Option<usize> {
    if b[at..].starts_with(b"<![CDATA[") {
        let rest = &b[at + 9..];
        return rest
            .windows(3)
            .position(|w| w == b"]]>")
            .map(|i| at + 9 + i + 3);
    }
    let mut quote: Option<u8> = None;
    for (i, &c) in b.iter().enumerate().skip(at + 1) {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'"' || c == b'\'' => quote = Some(c),
            None if c == b'>' => return Some(i + 1),
            None => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='abc' from='localhost' version='1.0'>";

    #[test]
    fn splits_a_stream_fed_a_byte_at_a_time() {
        let stream = format!(
            "{HEADER}<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features> <iq type='result' id='a&apos;>b' to='x@y/z'/>\n<iq type='get' id='2'><q a='>'>t<![CDATA[<not a tag>]]></q></iq></stream:stream>"
        );
        let mut framer = Framer::default();
        let mut parts = Vec::new();
        for b in stream.as_bytes() {
            parts.extend(framer.push(&[*b]).unwrap());
        }
        assert_eq!(parts.len(), 5, "{parts:?}");
        assert!(
            matches!(&parts[0], Part::StreamOpen(a) if a.contains(&("id".into(), "abc".into())))
        );
        let Part::Element(features) = &parts[1] else {
            panic!()
        };
        assert_eq!(features.name, "features");
        assert_eq!(
            features.namespace.as_deref(),
            Some("http://etherx.jabber.org/streams")
        );
        assert_eq!(
            features
                .child("mechanisms")
                .unwrap()
                .child_text("mechanism"),
            Some("PLAIN")
        );
        let Part::Element(iq) = &parts[2] else {
            panic!()
        };
        assert_eq!(iq.attribute("id"), Some("a'>b"));
        assert_eq!(iq.namespace.as_deref(), Some("jabber:client"));
        let Part::Element(iq) = &parts[3] else {
            panic!()
        };
        assert_eq!(iq.child("q").unwrap().text, "t<not a tag>");
        assert_eq!(parts[4], Part::StreamClose);
    }

    #[test]
    fn forbidden_and_oversized_input_is_an_error() {
        let mut framer = Framer::default();
        framer.push(HEADER.as_bytes()).unwrap();
        assert_eq!(framer.push(b"<!-- hi -->"), Err(FramingError::Forbidden));
        let mut framer = Framer::default();
        framer.push(HEADER.as_bytes()).unwrap();
        assert_eq!(
            framer.push(b"<!DOCTYPE x [<!ENTITY a 'b'>]>"),
            Err(FramingError::Forbidden)
        );
        let mut framer = Framer::default();
        framer.push(HEADER.as_bytes()).unwrap();
        framer.push(b"<iq>").unwrap();
        assert_eq!(
            framer.push(&vec![b'a'; MAX_STANZA + 1]),
            Err(FramingError::TooLarge)
        );
        let mut framer = Framer::default();
        framer.push(HEADER.as_bytes()).unwrap();
        assert!(framer.push(b"<iq><a></b></iq>").is_err());
    }

    #[test]
    fn deep_nesting_is_refused_by_the_tree() {
        let mut framer = Framer::default();
        framer.push(HEADER.as_bytes()).unwrap();
        let deep = format!("<iq>{}{}</iq>", "<a>".repeat(200), "</a>".repeat(200));
        assert!(matches!(
            framer.push(deep.as_bytes()),
            Err(FramingError::Malformed(_))
        ));
    }
}
