//! Sans-IO USP (TR-369): the Broadband Forum protobufs (USP 1.4, wire-compatible with agents that
//! speak 1.3), Record and Msg helpers for the controller role, and request correlation.
//!
//! Modules:
//! - [`proto`]: the generated `usp_record` and `usp` types.
//! - [`record`]: decoding inbound Records (size cap, `to_id` check, record kinds) and encoding ours.
//! - [`correlation`]: msg-id correlation with per-request deadlines.
//! - [`mqtt`]: MQTT MTP topic conventions (controller topic, `/reply-to=` for 3.1.1).
//! - [`msg`]: builders for the Msgs a controller sends.
//! - [`inbound`]: classifying agent Msgs; flattening GetResp into full paths.
//! - [`subscriptions`]: the subscriptions Radar owns on each agent, and their reconciliation.
//! - [`errors`]: the TR-369 error codes Radar uses.
//! - [`request`]: operation requests (Get/Set/Add/Delete/Operate) and what their answers mean.
//! - [`supported_dm`]: the agent's schema from GetSupportedDM.
//! - [`session`]: the controller side of one agent connection, sans-IO.
//! - [`websocket`]: WebSocket MTP handshake rules (eid, `v1.usp`).
//! - [`stomp`]: STOMP 1.2 frames (streaming decoder, encoder, heart-beat negotiation) for the
//!   STOMP MTP.
//! - [`subscription_support`]: which wanted subscriptions an agent's data model can carry.

pub mod correlation;
pub mod errors;
pub mod inbound;
pub mod mqtt;
pub mod msg;
pub mod record;
pub mod request;
pub mod session;
pub mod stomp;
pub mod subscription_support;
pub mod subscriptions;
pub mod supported_dm;
pub mod websocket;

/// Generated from `protos/` by `build.rs`.
pub mod proto {
    #[allow(clippy::all, missing_docs)]
    pub mod record {
        include!(concat!(env!("OUT_DIR"), "/usp_record.rs"));
    }
    #[allow(clippy::all, missing_docs)]
    pub mod msg {
        include!(concat!(env!("OUT_DIR"), "/usp.rs"));
    }
}
