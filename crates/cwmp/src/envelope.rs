//! The SOAP envelope (TR-069 §3.4, A.2): version detection by namespace URI, the `cwmp:ID` and
//! `HoldRequests` headers, and dispatch of the body element to the RPC codecs.

use crate::message::CwmpMessage;
use crate::xml::{self, escape, Element};
use crate::DecodeError;

pub const SOAP_ENV_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const CWMP_NS_PREFIX: &str = "urn:dslforum-org:cwmp-1-";

/// CWMP protocol versions, told apart by the namespace URI (`urn:dslforum-org:cwmp-1-N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum CwmpVersion {
    #[default]
    V1_0,
    V1_1,
    V1_2,
    V1_3,
    V1_4,
}

impl CwmpVersion {
    pub fn from_namespace(ns: &str) -> Option<Self> {
        match ns.strip_prefix(CWMP_NS_PREFIX)? {
            "0" => Some(Self::V1_0),
            "1" => Some(Self::V1_1),
            "2" => Some(Self::V1_2),
            "3" => Some(Self::V1_3),
            "4" => Some(Self::V1_4),
            _ => None,
        }
    }

    pub fn namespace(self) -> &'static str {
        match self {
            Self::V1_0 => "urn:dslforum-org:cwmp-1-0",
            Self::V1_1 => "urn:dslforum-org:cwmp-1-1",
            Self::V1_2 => "urn:dslforum-org:cwmp-1-2",
            Self::V1_3 => "urn:dslforum-org:cwmp-1-3",
            Self::V1_4 => "urn:dslforum-org:cwmp-1-4",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub version: CwmpVersion,
    /// `cwmp:ID` header; the responder echoes it (TR-069 A.2.2.1). MikroTik sends no header at all.
    pub id: Option<String>,
    /// `HoldRequests` header (the clj.tr069 fixture spells it `HoldRequest`).
    pub hold_requests: bool,
    pub message: CwmpMessage,
}

impl Envelope {
    pub fn new(version: CwmpVersion, id: Option<String>, message: CwmpMessage) -> Self {
        Self {
            version,
            id,
            hold_requests: false,
            message,
        }
    }

    /// Decodes a whole HTTP body. The caller has already capped its size.
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let text = xml::decode_text(body);
        let root = xml::parse(&text)?;
        Self::from_element(&root)
    }

    fn from_element(root: &Element) -> Result<Self, DecodeError> {
        if root.name != "Envelope" || root.namespace.as_deref() != Some(SOAP_ENV_NS) {
            return Err(DecodeError::NotSoapEnvelope {
                found: format!(
                    "{{{}}}{}",
                    root.namespace.as_deref().unwrap_or(""),
                    root.name
                ),
            });
        }
        let soap = |e: &&Element| e.namespace.as_deref() == Some(SOAP_ENV_NS);
        let header = root
            .children
            .iter()
            .filter(soap)
            .find(|c| c.name == "Header");
        let body = root
            .children
            .iter()
            .filter(soap)
            .find(|c| c.name == "Body")
            .ok_or(DecodeError::MissingElement {
                rpc: "Envelope",
                element: "Body",
            })?;
        let mut version = None;
        let mut id = None;
        let mut hold_requests = false;
        if let Some(header) = header {
            for h in &header.children {
                let v = h.namespace.as_deref().and_then(CwmpVersion::from_namespace);
                match h.name.as_str() {
                    "ID" => {
                        id = Some(h.text.trim().to_owned());
                        version = version.or(v);
                    }
                    "HoldRequests" | "HoldRequest" => {
                        hold_requests = matches!(h.text.trim(), "1" | "true")
                    }
                    _ => {}
                }
            }
        }
        let Some(inner) = body.children.first() else {
            return Err(DecodeError::EmptyBody);
        };
        let is_fault = inner.name == "Fault" && inner.namespace.as_deref() == Some(SOAP_ENV_NS);
        let body_version = if is_fault {
            inner
                .child("detail")
                .and_then(|d| d.child("Fault"))
                .and_then(|f| f.namespace.as_deref())
                .and_then(CwmpVersion::from_namespace)
        } else {
            match inner.namespace.as_deref() {
                Some(ns) => Some(CwmpVersion::from_namespace(ns).ok_or_else(|| {
                    DecodeError::UnknownNamespace(ns.chars().take(128).collect())
                })?),
                None => None,
            }
        };
        let message = CwmpMessage::decode(inner, is_fault)?;
        Ok(Envelope {
            version: body_version.or(version).unwrap_or_default(),
            id,
            hold_requests,
            message,
        })
    }

    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(1024);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        out.push_str(
            "<soap-env:Envelope xmlns:soap-enc=\"http://schemas.xmlsoap.org/soap/encoding/\" \
             xmlns:soap-env=\"http://schemas.xmlsoap.org/soap/envelope/\" \
             xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" \
             xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:cwmp=\"",
        );
        out.push_str(self.version.namespace());
        out.push_str("\"><soap-env:Header>");
        if let Some(id) = &self.id {
            out.push_str("<cwmp:ID soap-env:mustUnderstand=\"1\">");
            out.push_str(&escape(id));
            out.push_str("</cwmp:ID>");
        }
        if self.hold_requests {
            out.push_str("<cwmp:HoldRequests soap-env:mustUnderstand=\"1\">1</cwmp:HoldRequests>");
        }
        out.push_str("</soap-env:Header><soap-env:Body>");
        self.message.encode(&mut out);
        out.push_str("</soap-env:Body></soap-env:Envelope>");
        out
    }
}
