//! The TR-369 (USP) controller driver: MTPs (WebSocket server; MQTT client) around the sans-IO
//! agent session in `radar-usp`.
//!
//! - [`agent`]: one agent's link: session, commits, records out (MTP-independent).
//! - [`registry`]: live links by endpoint id (replacement, wake-ups).
//! - [`translate`]: session events → twin commands; operations → USP requests.
//! - [`mtp`]: the one interface the core has to the MTPs.
//! - [`broker`]: agent links over a broker, shared by the MQTT and STOMP MTPs.
//! - [`websocket`]: the WebSocket MTP server (its own folder).
//! - [`mqtt`]: the MQTT MTP client and its cluster forwarding (its own folder).
//! - [`stomp`]: the STOMP MTP client (its own folder).

pub mod agent;
pub mod broker;
pub mod mqtt;
pub mod mtp;
pub mod registry;
pub mod stomp;
pub mod translate;
pub mod websocket;

use std::time::Duration;

/// Sleeps for `d`, or forever when there is nothing to wait for (select! arms of the MTP
/// drivers' link loops).
pub(crate) async fn sleep_opt(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// Says when the controller's certificate does not carry its Endpoint ID (TR-369, Security:
/// an Endpoint's certificate names it in a subjectAltName URI `urn:bbf:usp:id:<eid>`, which
/// agents that check certificates require). A warning, not a refusal: a certificate that
/// predates the rule still encrypts, and the operator learns what to reissue.
pub fn check_controller_certificate(
    cert: &std::path::Path,
    controller_id: &str,
) -> Result<(), crate::tls::TlsError> {
    let names = crate::tls::usp_endpoint_ids_of_file(cert)?;
    if !names.iter().any(|n| n == controller_id) {
        tracing::warn!(
            cert = %cert.display(),
            controller_id,
            names = ?names,
            "the USP certificate does not name this controller's endpoint id as a subjectAltName URI urn:bbf:usp:id:{controller_id}; agents that check it will refuse the controller"
        );
    }
    Ok(())
}
