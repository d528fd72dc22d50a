//! Shared vocabulary of Radar: identities, parameter paths and values, time, and
//! the error codes that every interface (HTTP, CWMP, later gRPC) maps from.
//!
//! Modules:
//! - [`device_key`]: the twin key, a TR-369 endpoint id (`os::<OUI>-<Serial>` for CWMP).
//! - [`path`]: validated TR-181/TR-098 parameter paths.
//! - [`value`]: TR-106 parameter types and typed value checks.
//! - [`time`]: millisecond timestamps, so protocol cores never read a clock.
//! - [`partition`]: the fixed-seed hash from device key to partition.
//! - [`ring`]: the consistent-hash ring from partitions to shards, per layout version.
//! - [`error`]: `ErrorCode`, mapped to HTTP status codes.

pub mod cluster_tls;
pub mod device_key;
pub mod error;
pub mod layout;
pub mod partition;
pub mod path;
pub mod ring;
pub mod source_limit;
pub mod time;
pub mod value;

pub use device_key::{DeviceKey, DeviceKeyError};
pub use error::ErrorCode;
pub use layout::{Layout, LayoutCommand, LayoutError, NodeInfo, ShardLayout};
pub use partition::{partition_of, PartitionId, ShardId};
pub use path::{ParamPath, PathError};
pub use ring::{Ring, RingError};
pub use time::Timestamp;
pub use value::{ParamType, ValueError};
