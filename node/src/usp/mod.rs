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
