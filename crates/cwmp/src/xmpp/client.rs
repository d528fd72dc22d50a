//! An XMPP client session (RFC 6120), sans-IO: the driver feeds the bytes it reads and sends
//! what [`XmppClient::take_transmit`] returns; the session opens the stream, negotiates
//! STARTTLS when the driver can, authenticates with SASL PLAIN, binds a resource, and then
//! exchanges IQ stanzas. Both ends of a TR-069 Annex K connection request use it: the ACS
//! (which sends the `connectionRequest` IQ) and the simulated CPE (which answers it).

use super::framing::{Framer, FramingError, Part};
use crate::http_auth::base64_encode;
use crate::xml::{escape, Element};
use std::collections::VecDeque;

const NS_STREAMS: &str = "http://etherx.jabber.org/streams";
const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
const NS_SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
const NS_PING: &str = "urn:xmpp:ping";

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The account's local part and domain (`radar`, `example.net`).
    pub local: String,
    pub domain: String,
    pub password: String,
    /// The resource asked for at bind; the server may assign another.
    pub resource: String,
    /// The driver can upgrade the connection with STARTTLS.
    pub tls_available: bool,
    /// Send the password (SASL PLAIN) over a stream that is not encrypted. Only for servers
    /// on a trusted segment or loopback.
    pub allow_plaintext_auth: bool,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum XmppError {
    #[error(transparent)]
    Framing(#[from] FramingError),
    #[error("xmpp server requires TLS and this connection cannot offer it")]
    TlsRequired,
    #[error("xmpp server offers no SASL mechanism this client speaks (PLAIN): {0}")]
    NoMechanism(String),
    #[error("refusing to send the password unencrypted (allow_plaintext_auth is off)")]
    PlaintextAuthRefused,
    #[error("xmpp authentication failed: {0}")]
    AuthFailed(String),
    #[error("xmpp server refused the resource binding: {0}")]
    BindFailed(String),
    #[error("xmpp stream error: {0}")]
    StreamError(String),
    #[error("xmpp server closed the stream")]
    StreamClosed,
    #[error("xmpp protocol: {0}")]
    Protocol(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IqType {
    Get,
    Set,
    Result,
    Error,
}

impl IqType {
    fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "get" => IqType::Get,
            "set" => IqType::Set,
            "result" => IqType::Result,
            "error" => IqType::Error,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            IqType::Get => "get",
            IqType::Set => "set",
            IqType::Result => "result",
            IqType::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Iq {
    pub id: String,
    pub kind: IqType,
    pub from: String,
    pub to: String,
    /// The first child that is not `<error/>`: the request's or result's payload.
    pub payload: Option<Element>,
    /// For `error`: the defined condition (`service-unavailable`, `not-authorized`, …).
    pub error_condition: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The server accepted STARTTLS: the driver wraps the connection in TLS and calls
    /// [`XmppClient::tls_established`].
    StartTls,
    /// Authenticated and bound: stanzas can flow. `jid` is the full JID the server assigned.
    Ready { jid: String },
    /// An IQ for the driver: a request to answer, or the result or error of one it sent.
    Iq(Iq),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitFeatures,
    AwaitProceed,
    AwaitSaslResult,
    AwaitBind,
    AwaitSession,
    Ready,
    Closed,
}

pub struct XmppClient {
    config: ClientConfig,
    state: State,
    framer: Framer,
    encrypted: bool,
    authenticated: bool,
    jid: String,
    session_needed: bool,
    out: Vec<u8>,
    events: VecDeque<Event>,
    next_id: u64,
}

impl XmppClient {
    pub fn new(config: ClientConfig) -> Self {
        let mut client = Self {
            config,
            state: State::AwaitFeatures,
            framer: Framer::default(),
            encrypted: false,
            authenticated: false,
            jid: String::new(),
            session_needed: false,
            out: Vec::new(),
            events: VecDeque::new(),
            next_id: 1,
        };
        client.open_stream();
        client
    }

    /// The bytes to send now.
    pub fn take_transmit(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// The connection is now TLS: the stream starts over (RFC 6120 §5.4.3.3).
    pub fn tls_established(&mut self) {
        self.encrypted = true;
        self.framer.reset();
        self.state = State::AwaitFeatures;
        self.open_stream();
    }

    /// Feeds bytes read from the server. An error ends the session: the driver closes the
    /// connection and may start over.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), XmppError> {
        if self.state == State::Closed {
            return Err(XmppError::StreamClosed);
        }
        let parts = match self.framer.push(bytes) {
            Ok(parts) => parts,
            Err(e) => return Err(self.fail(e.into())),
        };
        for part in parts {
            if let Err(e) = self.on_part(part) {
                return Err(self.fail(e));
            }
            // STARTTLS: what follows <proceed/> is TLS, not this stream.
            if self.state == State::AwaitFeatures
                && !self.encrypted
                && self.events.back() == Some(&Event::StartTls)
            {
                break;
            }
        }
        Ok(())
    }

    /// Sends an IQ request; returns its id, which the result or error will carry.
    pub fn send_iq(&mut self, to: &str, kind: IqType, payload_xml: &str) -> String {
        let id = format!("radar-{}", self.next_id);
        self.next_id += 1;
        self.push(&format!(
            "<iq type=\"{}\" id=\"{}\" from=\"{}\" to=\"{}\">{payload_xml}</iq>",
            kind.as_str(),
            escape(&id),
            escape(&self.jid),
            escape(to)
        ));
        id
    }

    /// Answers an IQ request with an empty result.
    pub fn reply_result(&mut self, request: &Iq) {
        self.push(&format!(
            "<iq type=\"result\" id=\"{}\" to=\"{}\"/>",
            escape(&request.id),
            escape(&request.from)
        ));
    }

    /// Answers an IQ request with an error (RFC 6120 §8.3: `error_type` is `cancel`, `auth`,
    /// `modify`, `wait`; `condition` a defined condition such as `not-authorized`).
    pub fn reply_error(&mut self, request: &Iq, error_type: &str, condition: &str) {
        self.push(&format!(
            "<iq type=\"error\" id=\"{}\" to=\"{}\"><error type=\"{}\"><{} xmlns=\"{NS_STANZAS}\"/></error></iq>",
            escape(&request.id),
            escape(&request.from),
            escape(error_type),
            escape(condition)
        ));
    }

    /// A whitespace keepalive (RFC 6120 §4.6.1).
    pub fn keepalive(&mut self) {
        if self.state == State::Ready {
            self.out.push(b' ');
        }
    }

    /// Ends the stream politely.
    pub fn close(&mut self) {
        if self.state != State::Closed {
            self.push("</stream:stream>");
            self.state = State::Closed;
        }
    }

    fn fail(&mut self, error: XmppError) -> XmppError {
        self.state = State::Closed;
        error
    }

    fn push(&mut self, xml: &str) {
        self.out.extend_from_slice(xml.as_bytes());
    }

    fn open_stream(&mut self) {
        let header = format!(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='{NS_STREAMS}' to='{}' version='1.0'>",
            escape(&self.config.domain)
        );
        self.push(&header);
    }

    fn on_part(&mut self, part: Part) -> Result<(), XmppError> {
        let element = match part {
            Part::StreamOpen(_) => return Ok(()),
            Part::StreamClose => {
                self.state = State::Closed;
                return Err(XmppError::StreamClosed);
            }
            Part::Element(e) => e,
        };
        let ns = element.namespace.as_deref().unwrap_or_default();
        if element.name == "error" && ns == NS_STREAMS {
            let condition = element
                .children
                .iter()
                .find(|c| c.name != "text")
                .map(|c| c.name.to_string())
                .unwrap_or_default();
            // RFC 6120 §4.9.2: an optional <text/> explains (prosody: "No stream features to
            // proceed with" when it requires TLS the client did not ask for).
            let explained = match element.child_text("text") {
                Some(text) if !text.is_empty() => format!("{condition}: {text}"),
                _ => condition,
            };
            return Err(XmppError::StreamError(explained));
        }
        match self.state {
            State::AwaitFeatures if element.name == "features" => self.on_features(&element),
            State::AwaitProceed if element.name == "proceed" && ns == NS_TLS => {
                self.framer.reset();
                self.events.push_back(Event::StartTls);
                self.state = State::AwaitFeatures;
                Ok(())
            }
            State::AwaitProceed => Err(XmppError::Protocol("server refused STARTTLS".into())),
            State::AwaitSaslResult if element.name == "success" && ns == NS_SASL => {
                // RFC 6120 §6.4.6: the stream restarts, without closing.
                self.authenticated = true;
                self.framer.reset();
                self.state = State::AwaitFeatures;
                self.open_stream();
                Ok(())
            }
            State::AwaitSaslResult if element.name == "failure" => {
                let condition = element
                    .children
                    .iter()
                    .find(|c| c.name != "text")
                    .map(|c| c.name.to_string())
                    .unwrap_or_default();
                Err(XmppError::AuthFailed(condition))
            }
            State::AwaitBind | State::AwaitSession | State::Ready if element.name == "iq" => {
                self.on_iq(&element)
            }
            State::Ready if element.name == "message" || element.name == "presence" => Ok(()),
            _ => Err(XmppError::Protocol(format!(
                "unexpected <{}> while {:?}",
                element.name, self.state
            ))),
        }
    }

    fn on_features(&mut self, features: &Element) -> Result<(), XmppError> {
        let has = |name: &str, ns: &str| {
            features
                .children
                .iter()
                .find(|c| c.name == name && c.namespace.as_deref() == Some(ns))
        };
        if !self.encrypted {
            if let Some(starttls) = has("starttls", NS_TLS) {
                if self.config.tls_available {
                    self.push(&format!("<starttls xmlns='{NS_TLS}'/>"));
                    self.state = State::AwaitProceed;
                    return Ok(());
                }
                if starttls.child("required").is_some() {
                    return Err(XmppError::TlsRequired);
                }
            }
        }
        if !self.authenticated {
            let mechanisms: Vec<String> = has("mechanisms", NS_SASL)
                .map(|m| {
                    m.children_named("mechanism")
                        .map(|c| c.text.trim().to_owned())
                        .collect()
                })
                .unwrap_or_default();
            if !mechanisms.iter().any(|m| m == "PLAIN") {
                return Err(XmppError::NoMechanism(mechanisms.join(" ")));
            }
            if !self.encrypted && !self.config.allow_plaintext_auth {
                return Err(XmppError::PlaintextAuthRefused);
            }
            // RFC 4616: authzid (empty), authcid, password, NUL-separated.
            let credentials = format!("\0{}\0{}", self.config.local, self.config.password);
            self.push(&format!(
                "<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{}</auth>",
                base64_encode(credentials.as_bytes())
            ));
            self.state = State::AwaitSaslResult;
            return Ok(());
        }
        if has("bind", NS_BIND).is_none() {
            return Err(XmppError::BindFailed(
                "server offers no resource binding".into(),
            ));
        }
        // RFC 3921's session establishment, still required by servers that do not mark it
        // optional (RFC 6121 dropped it).
        let session_needed =
            has("session", NS_SESSION).is_some_and(|s| s.child("optional").is_none());
        self.push(&format!(
            "<iq type='set' id='bind'><bind xmlns='{NS_BIND}'><resource>{}</resource></bind></iq>",
            escape(&self.config.resource)
        ));
        self.state = State::AwaitBind;
        self.session_needed = session_needed;
        Ok(())
    }

    fn on_iq(&mut self, element: &Element) -> Result<(), XmppError> {
        let iq = Iq {
            id: element.attribute("id").unwrap_or_default().to_owned(),
            kind: IqType::parse(element.attribute("type").unwrap_or_default()).ok_or_else(
                || {
                    XmppError::Protocol(format!(
                        "iq with type {:?}",
                        element.attribute("type").unwrap_or_default()
                    ))
                },
            )?,
            from: element.attribute("from").unwrap_or_default().to_owned(),
            to: element.attribute("to").unwrap_or_default().to_owned(),
            payload: element.children.iter().find(|c| c.name != "error").cloned(),
            error_condition: element.child("error").map(|e| {
                e.children
                    .iter()
                    .find(|c| c.name != "text")
                    .map(|c| c.name.to_string())
                    .unwrap_or_default()
            }),
        };
        match self.state {
            State::AwaitBind if iq.id == "bind" => {
                if iq.kind != IqType::Result {
                    return Err(XmppError::BindFailed(
                        iq.error_condition.unwrap_or_default(),
                    ));
                }
                self.jid = iq
                    .payload
                    .as_ref()
                    .and_then(|b| b.child_text("jid"))
                    .map(str::to_owned)
                    .unwrap_or_else(|| {
                        format!(
                            "{}@{}/{}",
                            self.config.local, self.config.domain, self.config.resource
                        )
                    });
                if self.session_needed {
                    self.push(&format!(
                        "<iq type='set' id='session'><session xmlns='{NS_SESSION}'/></iq>"
                    ));
                    self.state = State::AwaitSession;
                } else {
                    self.become_ready();
                }
                Ok(())
            }
            State::AwaitSession if iq.id == "session" => {
                self.become_ready();
                Ok(())
            }
            State::Ready => {
                let is_ping = iq.kind == IqType::Get
                    && iq.payload.as_ref().is_some_and(|p| {
                        p.name == "ping" && p.namespace.as_deref() == Some(NS_PING)
                    });
                if is_ping {
                    // XEP-0199: servers ping idle clients; answering keeps the session.
                    self.reply_result(&iq);
                } else {
                    self.events.push_back(Event::Iq(iq));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn become_ready(&mut self) {
        // Initial presence: available, so the server routes to this resource.
        self.push("<presence/>");
        self.state = State::Ready;
        self.events.push_back(Event::Ready {
            jid: self.jid.clone(),
        });
    }
}
