//! The storage encoding (postcard: compact, varint integers, no field names).
//!
//! - `twins`: device key → header (everything but parameters).
//! - `params`: device key ‖ 0xFF ‖ chunk (u8) → the twin's parameters whose template id falls in
//!   that chunk (`template / CHUNK_TEMPLATES`), as one sorted list. 0xFF never occurs in UTF-8,
//!   so it cleanly ends the device key.
//!
//! Why chunks: a whole-twin record rewrites every parameter at every inform (B1), while one
//! record per parameter cost sled over 300 bytes per parameter on disk (B6). Templates are
//! interned in first-seen order, so the parameters every Inform carries share the first chunk
//! and a periodic inform rewrites the header and one small chunk.

use crate::StoreError;
use radar_core::DeviceKey;
use radar_twin::model::{Meta, Twin, TwinEvent};
use radar_twin::{Operation, Param, PathId};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

pub const KEY_END: u8 = 0xFF;
/// Templates per parameter chunk.
pub const CHUNK_TEMPLATES: u32 = 32;

pub fn chunk_of(id: &PathId) -> u8 {
    (id.template / CHUNK_TEMPLATES).min(u32::from(u8::MAX)) as u8
}

#[derive(Serialize)]
struct HeaderRef<'a> {
    key: &'a DeviceKey,
    meta: &'a Meta,
    operations: &'a [Operation],
    next_operation_id: u64,
    events: &'a VecDeque<TwinEvent>,
}

#[derive(Deserialize)]
struct HeaderOwned {
    key: DeviceKey,
    meta: Meta,
    operations: Vec<Operation>,
    next_operation_id: u64,
    events: VecDeque<TwinEvent>,
}

/// The records to write for one twin.
#[derive(Debug)]
pub struct TwinWrite {
    pub key: DeviceKey,
    /// None when the header did not change (value-only updates).
    pub header: Option<Vec<u8>>,
    pub put: Vec<(Vec<u8>, Vec<u8>)>,
    pub removed: Vec<Vec<u8>>,
}

fn corrupt(key: &DeviceKey, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        key: key.to_string(),
        message: e.to_string(),
    }
}

pub fn chunk_key(device: &DeviceKey, chunk: u8) -> Vec<u8> {
    let mut key = Vec::with_capacity(device.as_str().len() + 2);
    key.extend_from_slice(device.as_str().as_bytes());
    key.push(KEY_END);
    key.push(chunk);
    key
}

/// Splits a `params` key into the device key and the chunk number.
pub fn split_chunk_key(key: &[u8]) -> Option<(&str, u8)> {
    let end = key.iter().position(|&b| b == KEY_END)?;
    let device = std::str::from_utf8(&key[..end]).ok()?;
    match &key[end + 1..] {
        [chunk] => Some((device, *chunk)),
        _ => None,
    }
}

fn header(twin: &Twin) -> Result<Vec<u8>, StoreError> {
    let h = HeaderRef {
        key: &twin.key,
        meta: &twin.meta,
        operations: &twin.operations,
        next_operation_id: twin.next_operation_id,
        events: &twin.events,
    };
    postcard::to_allocvec(&h).map_err(|e| corrupt(&twin.key, e))
}

fn encode_chunk(twin: &Twin, chunk: u8) -> Result<Option<Vec<u8>>, StoreError> {
    // Params are sorted by template, so a chunk is one contiguous run: find it by binary search
    // instead of scanning every parameter on every write (B4).
    let first = u32::from(chunk) * CHUNK_TEMPLATES;
    let start = twin.params.partition_point(|(id, _)| id.template < first);
    let end = if chunk == u8::MAX {
        twin.params.len()
    } else {
        start + twin.params[start..].partition_point(|(id, _)| chunk_of(id) == chunk)
    };
    let params = &twin.params[start..end];
    if params.is_empty() {
        return Ok(None);
    }
    postcard::to_allocvec(&params)
        .map(Some)
        .map_err(|e| corrupt(&twin.key, e))
}

fn encode_chunks(
    twin: &Twin,
    with_header: bool,
    chunks: impl IntoIterator<Item = u8>,
) -> Result<TwinWrite, StoreError> {
    let mut write = TwinWrite {
        key: twin.key.clone(),
        header: with_header.then(|| header(twin)).transpose()?,
        put: Vec::new(),
        removed: Vec::new(),
    };
    for chunk in chunks {
        let key = chunk_key(&twin.key, chunk);
        match encode_chunk(twin, chunk)? {
            Some(bytes) => write.put.push((key, bytes)),
            None => write.removed.push(key),
        }
    }
    Ok(write)
}

/// The header and the parameter chunks changed since the last write-back; clears the change list.
pub fn encode_changes(twin: &mut Twin) -> Result<TwinWrite, StoreError> {
    let changes = twin.changes.take();
    let mut chunks: Vec<u8> = changes
        .put
        .iter()
        .chain(&changes.removed)
        .map(chunk_of)
        .collect();
    chunks.sort_unstable();
    chunks.dedup();
    encode_chunks(twin, changes.header, chunks)
}

/// Every record of a twin (first write, bulk load, tests).
pub fn encode_full(twin: &Twin) -> Result<TwinWrite, StoreError> {
    let mut chunks: Vec<u8> = twin.params.iter().map(|(id, _)| chunk_of(id)).collect();
    chunks.dedup();
    encode_chunks(twin, true, chunks)
}

pub fn decode_header(bytes: &[u8], key_hint: &str) -> Result<Twin, StoreError> {
    let h: HeaderOwned = postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        key: key_hint.to_owned(),
        message: e.to_string(),
    })?;
    let mut twin = Twin::new(h.key);
    twin.meta = h.meta;
    twin.operations = h.operations;
    twin.next_operation_id = h.next_operation_id;
    twin.events = h.events;
    Ok(twin)
}

pub fn decode_chunk(bytes: &[u8], key_hint: &str) -> Result<Vec<(PathId, Param)>, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        key: key_hint.to_owned(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_keys_split_back() {
        let device = DeviceKey::parse("os::000000-A").unwrap();
        for chunk in [0u8, 7, 254] {
            assert_eq!(
                split_chunk_key(&chunk_key(&device, chunk)),
                Some(("os::000000-A", chunk))
            );
        }
        assert_eq!(split_chunk_key(b"no-separator"), None);
        assert_eq!(
            chunk_of(&PathId {
                template: 31,
                instances: [0; 3]
            }),
            0
        );
        assert_eq!(
            chunk_of(&PathId {
                template: 32,
                instances: [0; 3]
            }),
            1
        );
        assert_eq!(
            chunk_of(&PathId {
                template: u32::MAX,
                instances: [0; 3]
            }),
            255
        );
    }
}
