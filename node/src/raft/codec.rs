//! The body encoding of Raft RPCs: postcard over openraft's serde types. Nodes of one cluster
//! run one Radar version, so the encoding needs no schema evolution; a body that does not
//! decode is answered with an error, never a panic.

use serde::de::DeserializeOwned;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
#[error("raft message encoding: {0}")]
pub struct CodecError(#[from] postcard::Error);

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    Ok(postcard::to_allocvec(value)?)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    Ok(postcard::from_bytes(bytes)?)
}
