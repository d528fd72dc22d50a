//! A shard's audit records on disk (see `radar_twin::audit`). They live in the state machine's
//! tree under `audit/` and the record's key, so they are written in the checkpoint's
//! transaction with the twins and the applied log id: after a crash the entries re-applied are
//! exactly those whose records were not written, under the same keys. Snapshots carry them
//! after the twins; retention removes old ones on each replica.

use radar_core::Timestamp;
use radar_twin::audit::{AuditKey, AuditRecord};
use radar_twin::ShardState;
use std::sync::{Arc, RwLock};

pub const PREFIX: &[u8] = b"audit/";

/// A record as the state machine's tree holds it: its key there and its postcard bytes.
pub(super) type StoredRecord = (Vec<u8>, Vec<u8>);

pub fn tree_key(key: AuditKey) -> Vec<u8> {
    let mut out = PREFIX.to_vec();
    out.extend_from_slice(&key.to_bytes());
    out
}

fn engine(e: impl std::fmt::Display) -> crate::StoreError {
    crate::StoreError::Engine(e.to_string())
}

/// The records applied since the last checkpoint, encoded for the state machine's tree; the
/// state keeps none afterwards.
pub(super) fn take_unwritten(
    audit: &mut radar_twin::audit::ShardAudit,
) -> Result<Vec<StoredRecord>, String> {
    std::mem::take(&mut audit.unwritten)
        .into_iter()
        .map(|(key, record)| {
            let value = postcard::to_allocvec(&record).map_err(|e| e.to_string())?;
            Ok((tree_key(key), value))
        })
        .collect()
}

/// Removes every written record (a snapshot is being installed).
pub(super) fn clear(sm: &sled::Tree) -> Result<(), String> {
    for key in sm.scan_prefix(PREFIX).keys() {
        sm.remove(key.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Every written record as (key without the prefix, encoded record), in key order.
pub(super) fn scan(sm: &sled::Tree) -> impl Iterator<Item = Result<StoredRecord, String>> + '_ {
    sm.scan_prefix(PREFIX).map(|item| {
        let (key, value) = item.map_err(|e| e.to_string())?;
        Ok((key[PREFIX.len()..].to_vec(), value.to_vec()))
    })
}

/// Checks and writes records read from a snapshot file.
pub(super) fn install(sm: &sled::Tree, key: &[u8], record: &[u8]) -> Result<(), String> {
    let key = AuditKey::from_bytes(key).ok_or("a snapshot audit record with a bad key")?;
    postcard::from_bytes::<AuditRecord>(record)
        .map_err(|e| format!("a snapshot audit record does not decode: {e}"))?;
    sm.insert(tree_key(key), record)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub device: Option<String>,
    pub actor: Option<String>,
    /// Records at or after this time.
    pub since: Option<Timestamp>,
    /// Records strictly before this key (a page's cursor).
    pub before: Option<AuditKey>,
    pub limit: usize,
    /// Records looked at, at most, before the page is cut short (`more`).
    pub max_scanned: usize,
}

impl AuditFilter {
    fn matches(&self, record: &AuditRecord) -> bool {
        self.device.as_ref().is_none_or(|d| record.device == *d)
            && self.actor.as_ref().is_none_or(|a| record.actor == *a)
    }
}

/// Records newest first, and whether older ones match too (or the scan was cut short).
#[derive(Debug, Default)]
pub struct AuditPage {
    pub records: Vec<(AuditKey, AuditRecord)>,
    pub more: bool,
}

/// Reads one shard replica's audit records: those written and those applied since.
#[derive(Clone)]
pub struct AuditReader {
    pub(super) sm: sled::Tree,
    pub(super) state: Arc<RwLock<ShardState>>,
}

impl AuditReader {
    pub fn read(&self, filter: &AuditFilter) -> Result<AuditPage, crate::StoreError> {
        let low = AuditKey {
            at: filter.since.map(|t| t.as_millis()).unwrap_or(0),
            entry: 0,
            seq: 0,
        };
        // Every key of the prefix sorts below `audit0` ('0' follows '/').
        let high = filter
            .before
            .map(tree_key)
            .unwrap_or_else(|| b"audit0".to_vec());
        let low_key = tree_key(low);
        let in_range = |key: &AuditKey| *key >= low && filter.before.is_none_or(|b| *key < b);
        // The records not yet written are copied first (a checkpoint's worth at most) and the
        // state's lock released, so a long scan never holds up apply. A record a checkpoint
        // writes meanwhile is then met twice, under one key, and taken once; one applied
        // meanwhile is newer than this read and may or may not be in it.
        let fresh: Vec<(AuditKey, AuditRecord)> = {
            let state = self.state.read().unwrap_or_else(|e| e.into_inner());
            state
                .audit
                .unwritten
                .iter()
                .rev()
                .filter(|(key, _)| in_range(key))
                .map(|(key, record)| (*key, record.clone()))
                .collect()
        };
        let mut fresh = fresh.into_iter().peekable();
        let mut written = self
            .sm
            .range(low_key..high)
            .rev()
            .map(
                |item| -> Result<(AuditKey, AuditRecord), crate::StoreError> {
                    let (key, value) = item.map_err(engine)?;
                    let key = AuditKey::from_bytes(&key[PREFIX.len()..]).ok_or_else(|| {
                        crate::StoreError::Corrupt {
                            key: "audit".into(),
                            message: "a key of the wrong length".into(),
                        }
                    })?;
                    let record =
                        postcard::from_bytes(&value).map_err(|e| crate::StoreError::Corrupt {
                            key: "audit".into(),
                            message: e.to_string(),
                        })?;
                    Ok((key, record))
                },
            )
            .peekable();
        let mut page = AuditPage::default();
        let mut scanned = 0usize;
        loop {
            let (take_fresh, same_key) = match (fresh.peek(), written.peek()) {
                (None, None) => break,
                (Some(_), None) => (true, false),
                (None, Some(_)) => (false, false),
                (Some((f, _)), Some(Ok((w, _)))) => (f >= w, f == w),
                (Some(_), Some(Err(_))) => (false, false),
            };
            if same_key {
                written.next();
            }
            if scanned >= filter.max_scanned {
                page.more = true;
                break;
            }
            let (key, record) = if take_fresh {
                fresh.next().expect("peeked")
            } else {
                written.next().expect("peeked")?
            };
            scanned += 1;
            if filter.matches(&record) {
                if page.records.len() == filter.limit {
                    page.more = true;
                    break;
                }
                page.records.push((key, record));
            }
        }
        Ok(page)
    }

    /// Removes written records older than `before`; how many.
    pub fn trim(&self, before: Timestamp) -> Result<usize, crate::StoreError> {
        let end = tree_key(AuditKey {
            at: before.as_millis(),
            entry: 0,
            seq: 0,
        });
        let mut removed = 0;
        for key in self.sm.range(PREFIX.to_vec()..end).keys() {
            self.sm.remove(key.map_err(engine)?).map_err(engine)?;
            removed += 1;
        }
        Ok(removed)
    }
}
