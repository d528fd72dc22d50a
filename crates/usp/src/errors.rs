//! USP error codes (TR-369 §7.7 "Error Codes") that Radar sends or interprets. Agents may also
//! send vendor codes 7800–7999, which are passed through as they are.

/// Message failed (general failure, described in `err_msg`).
pub const MESSAGE_FAILED: u32 = 7000;
/// Message not supported.
pub const MESSAGE_NOT_SUPPORTED: u32 = 7001;
/// Request denied.
pub const REQUEST_DENIED: u32 = 7002;
/// Internal error.
pub const INTERNAL_ERROR: u32 = 7003;
/// Invalid arguments.
pub const INVALID_ARGUMENTS: u32 = 7004;
/// Resources exceeded (e.g. a ValueChange subscription on all of `Device.`).
pub const RESOURCES_EXCEEDED: u32 = 7005;
/// Parameter read only.
pub const PARAM_READ_ONLY: u32 = 7013;
/// Object does not exist.
pub const OBJECT_DOES_NOT_EXIST: u32 = 7016;
/// Not a table (ObjectCreation/ObjectDeletion on a single-instance object).
pub const NOT_A_TABLE: u32 = 7018;
/// Command failure.
pub const COMMAND_FAILURE: u32 = 7022;
/// Unique key conflict (e.g. re-adding an existing subscription ID).
pub const UNIQUE_KEY_CONFLICT: u32 = 7025;
/// Invalid path (not in the agent's supported data model).
pub const INVALID_PATH: u32 = 7026;
/// Record could not be parsed (Disconnect reason code).
pub const RECORD_NOT_PARSED: u32 = 7100;
/// A Record field was invalid (Disconnect reason code).
pub const RECORD_FIELD_INVALID: u32 = 7104;
/// Session context not allowed (Disconnect reason code, TR-369 §6.1).
pub const SESSION_CONTEXT_NOT_ALLOWED: u32 = 7106;
/// No answer within the request timeout: not a TR-369 code; Radar's own, in the vendor range.
pub const RADAR_TIMEOUT: u32 = 7800;
