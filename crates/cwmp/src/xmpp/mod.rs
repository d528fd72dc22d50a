//! XMPP for TR-069 Annex K connection requests, sans-IO: [`framing`] cuts the stream into
//! stanzas, [`client`] is the client session (STARTTLS, SASL PLAIN, resource binding, IQs), and
//! [`connection_request`] is the Annex K payload. Radar's driver and the CPE simulator both
//! run the same session over their own sockets.

pub mod client;
pub mod connection_request;
pub mod framing;

pub use client::{ClientConfig, Event, Iq, IqType, XmppClient, XmppError};

#[cfg(test)]
mod tests;
