//! Reading twins back from a shard's sled trees: the cold side of the twin cache
//! (`radar_twin::table`). A twin is its header record plus its parameter chunks; both are read
//! as the last checkpoint wrote them.

use crate::format::{decode_chunk, decode_header, KEY_END};
use crate::sled_store::SledShardStore;
use crate::StoreError;
use radar_core::DeviceKey;
use radar_twin::table::{ColdReadError, ColdTwins};
use radar_twin::Twin;
use std::ops::Bound;

fn cold_error(key: &str, e: impl std::fmt::Display) -> ColdReadError {
    ColdReadError {
        key: key.to_owned(),
        message: e.to_string(),
    }
}

impl From<StoreError> for ColdReadError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Corrupt { key, message } => ColdReadError { key, message },
            other => cold_error("", other),
        }
    }
}

impl From<ColdReadError> for StoreError {
    fn from(e: ColdReadError) -> Self {
        StoreError::Corrupt {
            key: e.key,
            message: e.message,
        }
    }
}

impl SledShardStore {
    /// The twin whose header is `header`, with its parameters read from its chunks.
    fn assemble(&self, key: &[u8], header: &[u8]) -> Result<Twin, ColdReadError> {
        let hint = String::from_utf8_lossy(key);
        let mut twin = decode_header(header, &hint)?;
        let mut prefix = key.to_vec();
        prefix.push(KEY_END);
        for chunk in self.params.scan_prefix(&prefix).values() {
            let chunk = chunk.map_err(|e| cold_error(&hint, e))?;
            twin.params.extend(decode_chunk(&chunk, &hint)?);
        }
        // Chunks come in chunk order and each is sorted, so this is already sorted; the sort
        // only guards against a record written by hand.
        if !twin.params.is_sorted_by_key(|(id, _)| *id) {
            twin.params.sort_unstable_by_key(|(id, _)| *id);
        }
        twin.params.shrink_to_fit();
        Ok(twin)
    }

    /// Every twin on disk, in key order, read whole into memory (tests, tools).
    pub fn load_twins(&self) -> Result<Vec<Twin>, ColdReadError> {
        self.scan(Bound::Unbounded).collect()
    }

    /// Iterates every header and parameter record without decoding them (a baseline for
    /// scans); returns how many there are.
    pub fn raw_record_count(&self) -> u64 {
        let mut records = 0;
        let mut bytes = 0usize;
        for (key, value) in self.twins.iter().chain(self.params.iter()).flatten() {
            records += 1;
            bytes = bytes.wrapping_add(key.len() + value.len());
        }
        std::hint::black_box(bytes);
        records
    }

    /// Every key with a twin on disk, in order.
    pub fn twin_keys(&self) -> impl Iterator<Item = Result<DeviceKey, StoreError>> + '_ {
        self.twins.iter().keys().map(|key| {
            let key = key.map_err(|e| StoreError::Engine(e.to_string()))?;
            let text = std::str::from_utf8(&key).map_err(|e| StoreError::Corrupt {
                key: format!("{key:?}"),
                message: e.to_string(),
            })?;
            DeviceKey::parse(text).map_err(|e| StoreError::Corrupt {
                key: text.to_owned(),
                message: e.to_string(),
            })
        })
    }
}

impl ColdTwins for SledShardStore {
    fn load(&self, key: &DeviceKey) -> Result<Option<Twin>, ColdReadError> {
        let bytes = key.as_str().as_bytes();
        match self
            .twins
            .get(bytes)
            .map_err(|e| cold_error(key.as_str(), e))?
        {
            Some(header) => self.assemble(bytes, &header).map(Some),
            None => Ok(None),
        }
    }

    fn load_header(&self, key: &DeviceKey) -> Result<Option<Twin>, ColdReadError> {
        match self
            .twins
            .get(key.as_str().as_bytes())
            .map_err(|e| cold_error(key.as_str(), e))?
        {
            Some(header) => Ok(Some(decode_header(&header, key.as_str())?)),
            None => Ok(None),
        }
    }

    fn scan<'a>(
        &'a self,
        after: Bound<&DeviceKey>,
    ) -> Box<dyn Iterator<Item = Result<Twin, ColdReadError>> + 'a> {
        let start: Bound<&[u8]> = match after {
            Bound::Included(k) => Bound::Included(k.as_str().as_bytes()),
            Bound::Excluded(k) => Bound::Excluded(k.as_str().as_bytes()),
            Bound::Unbounded => Bound::Unbounded,
        };
        let headers = self.twins.range::<&[u8], _>((start, Bound::Unbounded));
        Box::new(headers.map(move |item| {
            let (key, header) = item.map_err(|e| cold_error("", e))?;
            self.assemble(&key, &header)
        }))
    }
}
