//! Sans-IO CWMP (TR-069): the SOAP codec and the ACS-side session state machine. No sockets, no
//! clock, no runtime: the node driver feeds HTTP bodies and timestamps in and carries outputs out.
//!
//! Modules:
//! - [`xml`]: bounded XML tree with namespace resolution; escaping helpers.
//! - [`envelope`]: SOAP envelope, CWMP version detection, `cwmp:ID` echo.
//! - [`message`]: the `CwmpMessage` enum over every RPC.
//! - [`rpc`]: one file per RPC, request and response, both directions.
//! - [`session`]: the ACS session state machine.
//! - [`cookie`]: the session cookie, which names the node running the session.
//! - [`http_auth`]: Basic/Digest helpers (TR-069 §3.4.4).
//! - [`stun`]: STUN Binding (RFC 5389 and RFC 3489) with the TR-069 Annex G attributes, for
//!   connection requests to CPEs behind a NAT.
//! - [`udp_connection_request`]: the signed UDP connection request of Annex G.
//! - [`xmpp`]: the XMPP client session and the connection request of Annex K.

pub mod cookie;
pub mod envelope;
pub mod http_auth;
pub mod message;
pub mod rpc;
pub mod session;
pub mod stun;
pub mod udp_connection_request;
pub mod xml;
pub mod xmpp;

pub use envelope::{CwmpVersion, Envelope};
pub use message::CwmpMessage;
pub use rpc::fault::{acs_codes, CwmpFault};

/// Why a device message could not be decoded. Each maps to an ACS fault code (TR-069 A.5.1).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error(transparent)]
    Xml(#[from] xml::XmlError),
    #[error("root element {found} is not a soap 1.1 envelope")]
    NotSoapEnvelope { found: String },
    #[error("soap body is empty")]
    EmptyBody,
    #[error("namespace {0:?} is not a cwmp namespace")]
    UnknownNamespace(String),
    #[error("unknown cwmp method {0:?}")]
    UnknownMethod(String),
    #[error("{rpc} is missing {element}")]
    MissingElement {
        rpc: &'static str,
        element: &'static str,
    },
    #[error("{rpc} has an invalid {element}: {value:?}")]
    InvalidValue {
        rpc: &'static str,
        element: &'static str,
        value: String,
    },
}

impl DecodeError {
    pub fn fault_code(&self) -> u32 {
        match self {
            DecodeError::UnknownMethod(_) => acs_codes::METHOD_NOT_SUPPORTED,
            DecodeError::UnknownNamespace(_) => acs_codes::VERSION_INCOMPATIBLE,
            _ => acs_codes::INVALID_ARGUMENTS,
        }
    }
}
