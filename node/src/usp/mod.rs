//! The TR-369 (USP) controller driver: MTPs (WebSocket server; MQTT client) around the sans-IO
//! agent session in `radar-usp`.
//!
//! - [`agent`]: one agent's link: session, commits, records out.
//! - [`registry`]: live links by endpoint id (replacement, wake-ups).
//! - [`translate`]: session events → twin commands; operations → USP requests.
//! - [`websocket`]: the WebSocket MTP server.
//! - [`mqtt`]: the MQTT MTP client.

pub mod agent;
pub mod mqtt;
pub mod mqtt_cluster;
pub mod registry;
pub mod translate;
pub mod websocket;
