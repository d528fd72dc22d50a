//! radar-router: the stateless front door that maps each CPE to the node leading its shard.
//!
//! Today it holds the device-identity extraction the router needs (DESIGN §2): from the first
//! POST of a CWMP session, which carries the Inform, it derives the device key without running
//! a session. Listeners, the layout/leader cache and proxying arrive with the cluster work.
//!
//! Modules:
//! - [`identify`]: device key from a CWMP Inform body.

pub mod identify;
