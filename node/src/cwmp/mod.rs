//! The CWMP (TR-069) driver: HTTP server, CPE authentication, connection requests, and the glue
//! between the sans-IO session in `radar-cwmp` and the twin.

pub mod auth;
pub mod connection_request;
pub mod overdue;
pub mod server;
pub mod stun_server;
pub mod translate;
