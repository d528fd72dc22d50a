//! The digital twin: a device's reported parameters, desired changes, operation queue, meta and
//! event log, and the pure `apply` that every mutation goes through, so Raft can carry
//! [`TwinCommand`]s as log entries and every replica applies them identically.
//!
//! Modules:
//! - [`paths`]: the per-shard path dictionary (templates interned, instance numbers held apart).
//! - [`model`]: `Twin`, `Param`, `Meta`, event log.
//! - [`operation`]: operations and their life cycle.
//! - [`command`]: `TwinCommand` and the pure `apply`.
//! - [`planner`]: what to send a device in its next session.
//! - [`query`]: the fleet query language: parse and evaluate.
//! - [`moving`]: twins and shard commands of a partition move between shards.
//! - [`table`]: the shard's twins, resident or cold (read back from disk), with clock eviction.
//! - [`audit`]: who changed what through the API; records kept with the shard.
//! - [`columns`]: the few fields per twin the background passes read, kept for cold twins.
//! - [`index`]: the shard's secondary index (value → devices) that narrows queries.
//! - [`datamodel`]: the TR-181 model for validation of desired values.
//! - `usp`: what USP connects and events do to a twin.

pub mod audit;
pub mod columns;
pub mod command;
pub mod credentials;
pub mod datamodel;
pub mod index;
pub mod model;
pub mod moving;
pub mod operation;
pub mod paths;
pub mod planner;
pub mod query;
pub mod quirks;
pub mod table;
mod usp;

pub use command::{apply, ApplyError, ApplyOutcome, ReportedParam, Source, TwinCommand};
pub use model::{
    Meta, Param, ParamChanges, ShardState, SubscriptionStanding, SubscriptionStatus, Twin,
    TwinEvent,
};
pub use moving::{MovedTwin, ShardControl};
pub use operation::{Operation, OperationKind, OperationStatus};
pub use paths::{PathDict, PathId};
