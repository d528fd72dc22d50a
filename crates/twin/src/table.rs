//! The twins of one shard: every key, each twin either resident (in memory) or cold (only on
//! the state machine's disk, read back on its next use).
//!
//! A twin may be evicted only when memory holds nothing disk lacks: the state machine evicts
//! right after a checkpoint, when every twin is written, so a cold twin's disk record is
//! always its current state and reading it back is exact. Writes (`apply`) first make the twin
//! resident; reads of a cold twin decode it from disk for that read alone, so a fleet scan does
//! not push the hot set out.
//!
//! Eviction is a clock over the resident twins only (most slots are cold, and the hand must not
//! walk them): each resident twin has a reference bit, set whenever it is used; the hand takes
//! the oldest-loaded twin, clears a set bit and sends it round again, or evicts it when the bit
//! is already clear. A twin in use (a CWMP session's commands, a USP agent's notifications)
//! keeps its bit set and stays.

use crate::model::Twin;
use radar_core::DeviceKey;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

pub use crate::columns::Columns;

/// Where cold twins are read from: the shard state machine's own storage.
pub trait ColdTwins: Send + Sync {
    /// The twin as last written, or `None` when disk has no twin under `key`.
    fn load(&self, key: &DeviceKey) -> Result<Option<Twin>, ColdReadError>;

    /// The twin as last written without its parameters (meta, operations, events): what a
    /// page of query results shows. Defaults to a whole load.
    fn load_header(&self, key: &DeviceKey) -> Result<Option<Twin>, ColdReadError> {
        self.load(key)
    }

    /// Every written twin after `after`, in key order: one pass over disk, not a load per key.
    fn scan<'a>(
        &'a self,
        after: Bound<&DeviceKey>,
    ) -> Box<dyn Iterator<Item = Result<Twin, ColdReadError>> + 'a>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("reading twin {key} from disk: {message}")]
pub struct ColdReadError {
    pub key: String,
    pub message: String,
}

/// Counters of a node's twin caches (shared by its shards), read by the metrics endpoint.
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Twins resident in memory.
    pub loaded: AtomicI64,
    /// Estimated heap bytes of the resident twins.
    pub bytes: AtomicI64,
    /// Uses of a twin that found it resident / had to read it from disk.
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub evictions: AtomicU64,
}

impl CacheStats {
    pub fn loaded(&self) -> u64 {
        self.loaded.load(Ordering::Relaxed).max(0) as u64
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed).max(0) as u64
    }
}

/// A node's memory budget for resident twins, shared by its shards' tables.
#[derive(Debug)]
pub struct MemoryBudget {
    /// Bytes the node's resident twins may take (estimated); `u64::MAX` for no limit.
    pub limit: u64,
    pub stats: Arc<CacheStats>,
}

impl MemoryBudget {
    pub fn new(limit: u64) -> Self {
        Self {
            limit,
            stats: Arc::new(CacheStats::default()),
        }
    }

    pub fn unlimited() -> Self {
        Self::new(u64::MAX)
    }

    pub fn is_exceeded(&self) -> bool {
        self.stats.bytes() > self.limit
    }
}

/// 24 bytes: this is what every cold twin costs besides its key and its index postings.
struct Slot {
    twin: Option<Box<Resident>>,
    /// The twin's number in this table (see [`TwinTable::number`]).
    number: u32,
    /// [`Columns`], held apart so the slot packs.
    contact_secs: u32,
    periodic_secs: u32,
    flags: u8,
    /// The clock's reference bit (set by reads too, hence atomic).
    referenced: AtomicBool,
}

struct Resident {
    twin: Twin,
    /// Estimated heap bytes of `twin`, as last accounted.
    bytes: u32,
}

impl Slot {
    fn cold(number: u32) -> Self {
        Slot {
            twin: None,
            number,
            contact_secs: 0,
            periodic_secs: 0,
            flags: 0,
            referenced: AtomicBool::new(false),
        }
    }

    fn twin(&self) -> Option<&Twin> {
        self.twin.as_deref().map(|r| &r.twin)
    }

    fn bytes(&self) -> u32 {
        self.twin.as_deref().map_or(0, |r| r.bytes)
    }
}

pub struct TwinTable {
    slots: BTreeMap<DeviceKey, Slot>,
    /// Key of each twin number; numbers of removed twins are reused (`free`), so the index's
    /// posting lists of numbers stay dense.
    keys_by_number: Vec<Option<DeviceKey>>,
    free: Vec<u32>,
    cold: Option<Arc<dyn ColdTwins>>,
    stats: Arc<CacheStats>,
    /// Resident twins and their bytes in this table (the stats hold the node's sum).
    resident: usize,
    resident_bytes: u64,
    /// The clock: resident twins in the order the hand meets them (entries of twins since
    /// evicted or removed are skipped when met).
    clock: std::collections::VecDeque<DeviceKey>,
}

impl Default for TwinTable {
    fn default() -> Self {
        Self {
            slots: BTreeMap::new(),
            keys_by_number: Vec::new(),
            free: Vec::new(),
            cold: None,
            stats: Arc::new(CacheStats::default()),
            resident: 0,
            resident_bytes: 0,
            clock: std::collections::VecDeque::new(),
        }
    }
}

impl std::fmt::Debug for TwinTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwinTable")
            .field("twins", &self.slots.len())
            .field("resident", &self.resident)
            .field("resident_bytes", &self.resident_bytes)
            .finish()
    }
}

impl Drop for TwinTable {
    fn drop(&mut self) {
        self.stats
            .loaded
            .fetch_sub(self.resident as i64, Ordering::Relaxed);
        self.stats
            .bytes
            .fetch_sub(self.resident_bytes as i64, Ordering::Relaxed);
    }
}

impl TwinTable {
    /// A table whose twins `keys` are all cold, read from `cold` when used, numbered from 0 in
    /// the order given.
    pub fn with_cold(
        cold: Arc<dyn ColdTwins>,
        keys: impl IntoIterator<Item = DeviceKey>,
        stats: Arc<CacheStats>,
    ) -> Self {
        let mut table = Self::default();
        table.cold = Some(cold);
        table.stats = stats;
        let keys: Vec<DeviceKey> = keys.into_iter().collect();
        // Built in one pass (`FromIterator` sorts, then fills each node), the map's nodes are
        // full; inserted one by one in key order they would be about half full, ~30 B more per
        // twin (B10).
        table.slots = keys
            .iter()
            .enumerate()
            .map(|(number, key)| (key.clone(), Slot::cold(number as u32)))
            .collect();
        if table.slots.len() == keys.len() {
            table.keys_by_number = keys.into_iter().map(Some).collect();
        } else {
            // A key given twice keeps its first number, as `add_cold` does.
            table.slots.clear();
            for key in keys {
                table.add_cold(key);
            }
        }
        table
    }

    /// Lists a twin that is on disk only (a new key; an existing one is left as it is).
    fn add_cold(&mut self, key: DeviceKey) -> u32 {
        if let Some(slot) = self.slots.get(&key) {
            return slot.number;
        }
        let number = match self.free.pop() {
            Some(n) => {
                self.keys_by_number[n as usize] = Some(key.clone());
                n
            }
            None => {
                self.keys_by_number.push(Some(key.clone()));
                (self.keys_by_number.len() - 1) as u32
            }
        };
        self.slots.insert(key, Slot::cold(number));
        number
    }

    /// The twin's number: small, dense and stable while the twin is in this table (not across
    /// restarts), so sets of twins are bitmaps of numbers.
    pub fn number(&self, key: &DeviceKey) -> Option<u32> {
        self.slots.get(key).map(|s| s.number)
    }

    /// The key of twin number `number`.
    pub fn key_of(&self, number: u32) -> Option<&DeviceKey> {
        self.keys_by_number.get(number as usize)?.as_ref()
    }

    /// Keys after `after` with their numbers, in key order.
    pub fn numbered_keys(
        &self,
        after: Bound<&DeviceKey>,
    ) -> impl Iterator<Item = (&DeviceKey, u32)> + '_ {
        self.slots
            .range::<DeviceKey, _>((after, Bound::Unbounded))
            .map(|(k, s)| (k, s.number))
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Twins resident in memory, and their estimated bytes.
    pub fn resident(&self) -> (usize, u64) {
        (self.resident, self.resident_bytes)
    }

    pub fn stats(&self) -> &Arc<CacheStats> {
        &self.stats
    }

    pub fn contains_key(&self, key: &DeviceKey) -> bool {
        self.slots.contains_key(key)
    }

    pub fn is_resident(&self, key: &DeviceKey) -> bool {
        self.slots.get(key).is_some_and(|s| s.twin.is_some())
    }

    /// Every key, in order.
    pub fn keys(&self) -> impl Iterator<Item = &DeviceKey> + '_ {
        self.slots.keys()
    }

    /// A twin: borrowed when resident, read from disk (for this read alone) when cold.
    pub fn get(&self, key: &DeviceKey) -> Result<Option<Cow<'_, Twin>>, ColdReadError> {
        let Some(slot) = self.slots.get(key) else {
            return Ok(None);
        };
        if let Some(twin) = slot.twin() {
            slot.referenced.store(true, Ordering::Relaxed);
            self.stats.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(Cow::Borrowed(twin)));
        }
        self.stats.misses.fetch_add(1, Ordering::Relaxed);
        Ok(self.read_cold(key)?.map(Cow::Owned))
    }

    /// A twin for its meta, operations and events only: resident ones whole, cold ones read
    /// from disk without their parameters (a page of query results reads only headers).
    pub fn get_header(&self, key: &DeviceKey) -> Result<Option<Cow<'_, Twin>>, ColdReadError> {
        let Some(slot) = self.slots.get(key) else {
            return Ok(None);
        };
        if let Some(twin) = slot.twin() {
            self.stats.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(Cow::Borrowed(twin)));
        }
        self.stats.misses.fetch_add(1, Ordering::Relaxed);
        let Some(cold) = &self.cold else {
            return Ok(None);
        };
        Ok(cold.load_header(key)?.map(Cow::Owned))
    }

    /// A resident twin, without reading disk.
    pub fn get_resident(&self, key: &DeviceKey) -> Option<&Twin> {
        self.slots.get(key).and_then(Slot::twin)
    }

    /// Resident twins, in key order.
    pub fn resident_twins(&self) -> impl Iterator<Item = &Twin> + '_ {
        self.slots.values().filter_map(Slot::twin)
    }

    fn read_cold(&self, key: &DeviceKey) -> Result<Option<Twin>, ColdReadError> {
        let Some(cold) = &self.cold else {
            return Ok(None);
        };
        let twin = cold.load(key)?;
        match twin {
            Some(twin) if twin.key == *key => Ok(Some(twin)),
            Some(other) => Err(ColdReadError {
                key: key.to_string(),
                message: format!("disk holds twin {} under this key", other.key),
            }),
            None => Err(ColdReadError {
                key: key.to_string(),
                message: "the twin is listed but not on disk".into(),
            }),
        }
    }

    /// Makes `key`'s twin resident (reading it from disk if cold); false when there is none.
    pub fn load(&mut self, key: &DeviceKey) -> Result<bool, ColdReadError> {
        let Some(slot) = self.slots.get(key) else {
            return Ok(false);
        };
        slot.referenced.store(true, Ordering::Relaxed);
        if slot.twin.is_some() {
            self.stats.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(true);
        }
        self.stats.misses.fetch_add(1, Ordering::Relaxed);
        let twin = self
            .read_cold(key)?
            .expect("read_cold refuses a missing twin");
        self.put_resident(key.clone(), twin);
        Ok(true)
    }

    /// A twin to change, made resident first.
    pub fn get_mut(&mut self, key: &DeviceKey) -> Result<Option<&mut Twin>, ColdReadError> {
        if !self.load(key)? {
            return Ok(None);
        }
        Ok(self.get_resident_mut(key))
    }

    /// A resident twin to change, without reading disk (writing back dirty twins).
    pub fn get_resident_mut(&mut self, key: &DeviceKey) -> Option<&mut Twin> {
        self.slots
            .get_mut(key)
            .and_then(|s| s.twin.as_deref_mut())
            .map(|r| &mut r.twin)
    }

    /// The twin under `key`, made resident, or `make()` inserted when there is none.
    pub fn get_or_insert_with(
        &mut self,
        key: &DeviceKey,
        make: impl FnOnce() -> Twin,
    ) -> Result<&mut Twin, ColdReadError> {
        if !self.load(key)? {
            self.put_resident(key.clone(), make());
        }
        Ok(self.get_resident_mut(key).expect("made resident above"))
    }

    /// Inserts or replaces a twin (resident).
    pub fn insert(&mut self, key: DeviceKey, twin: Twin) {
        self.put_resident(key, twin);
    }

    /// Drops a twin; true when there was one.
    pub fn remove(&mut self, key: &DeviceKey) -> bool {
        match self.slots.remove(key) {
            Some(slot) => {
                if slot.twin.is_some() {
                    self.count(-1, -i64::from(slot.bytes()));
                }
                self.keys_by_number[slot.number as usize] = None;
                self.free.push(slot.number);
                true
            }
            None => false,
        }
    }

    fn put_resident(&mut self, key: DeviceKey, twin: Twin) {
        let bytes = twin.estimated_bytes();
        self.add_cold(key.clone());
        let slot = self.slots.get_mut(&key).expect("listed above");
        let (loaded, before) = match slot.twin {
            Some(_) => (0, i64::from(slot.bytes())),
            None => (1, 0),
        };
        if loaded == 1 {
            self.clock.push_back(key.clone());
        }
        slot.twin = Some(Box::new(Resident { twin, bytes }));
        slot.referenced.store(true, Ordering::Relaxed);
        self.count(loaded, i64::from(bytes) - before);
    }

    /// Re-estimates a resident twin's bytes after a change and marks it used.
    pub fn account(&mut self, key: &DeviceKey, dict: &crate::paths::PathDict) {
        let Some(slot) = self.slots.get_mut(key) else {
            return;
        };
        let Some(resident) = slot.twin.as_deref_mut() else {
            return;
        };
        let bytes = resident.twin.estimated_bytes();
        let delta = i64::from(bytes) - i64::from(resident.bytes);
        resident.bytes = bytes;
        let columns = Columns::of(&resident.twin, dict);
        slot.referenced.store(true, Ordering::Relaxed);
        Self::put_columns(slot, columns);
        self.count(0, delta);
    }

    fn put_columns(slot: &mut Slot, columns: Columns) {
        slot.contact_secs = columns.contact_secs;
        slot.periodic_secs = columns.periodic_secs;
        slot.flags = columns.flags;
    }

    /// Sets a twin's columns (opening a shard: read from each twin as the index is built).
    pub fn set_columns(&mut self, key: &DeviceKey, columns: Columns) {
        if let Some(slot) = self.slots.get_mut(key) {
            Self::put_columns(slot, columns);
        }
    }

    /// Opening a shard, every twin cold: one pass over disk fills each twin's columns and
    /// shows it, with its number, to `visit` (which builds the index). With resident twins it
    /// walks the table instead.
    pub fn open_pass(
        &mut self,
        dict: &crate::paths::PathDict,
        mut visit: impl FnMut(u32, &Twin),
    ) -> Result<(), ColdReadError> {
        let cold = match &self.cold {
            Some(cold) if self.resident == 0 => cold.clone(),
            _ => {
                let keys: Vec<DeviceKey> = self.slots.keys().cloned().collect();
                for key in keys {
                    let Some(twin) = self.get(&key)?.map(Cow::into_owned) else {
                        continue;
                    };
                    let slot = self.slots.get_mut(&key).expect("listed");
                    Self::put_columns(slot, Columns::of(&twin, dict));
                    visit(slot.number, &twin);
                }
                return Ok(());
            }
        };
        for twin in cold.scan(Bound::Unbounded) {
            let twin = twin?;
            // Disk may hold a twin this table no longer lists.
            if let Some(slot) = self.slots.get_mut(&twin.key) {
                Self::put_columns(slot, Columns::of(&twin, dict));
                visit(slot.number, &twin);
            }
        }
        Ok(())
    }

    /// Every twin's columns, in key order, without reading a twin.
    pub fn columns(&self) -> impl Iterator<Item = (&DeviceKey, Columns)> + '_ {
        self.slots.iter().map(|(key, slot)| {
            (
                key,
                Columns {
                    contact_secs: slot.contact_secs,
                    periodic_secs: slot.periodic_secs,
                    flags: slot.flags,
                },
            )
        })
    }

    fn count(&mut self, loaded: i64, bytes: i64) {
        self.resident = (self.resident as i64 + loaded) as usize;
        self.resident_bytes = (self.resident_bytes as i64 + bytes).max(0) as u64;
        self.stats.loaded.fetch_add(loaded, Ordering::Relaxed);
        self.stats.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Evicts resident twins until `over_budget()` is false, the clock has gone round twice
    /// (every twin in use), or there is nothing left to evict. Only twins `evictable` allows
    /// go, and only with a cold store to read them back from. The caller guarantees that disk
    /// holds every twin as it is in memory. Returns how many were evicted.
    pub fn evict(
        &mut self,
        mut over_budget: impl FnMut() -> bool,
        evictable: impl Fn(&Twin) -> bool,
    ) -> usize {
        if self.cold.is_none() || self.resident == 0 {
            return 0;
        }
        let mut evicted = 0;
        // At most two rounds: the first may only clear reference bits.
        let mut steps = 2 * self.clock.len();
        while steps > 0 && self.resident > 0 && over_budget() {
            steps -= 1;
            let Some(key) = self.clock.pop_front() else {
                break;
            };
            let Some(slot) = self.slots.get_mut(&key) else {
                continue; // removed
            };
            let Some(twin) = slot.twin() else {
                continue; // evicted since this entry was queued
            };
            if slot.referenced.swap(false, Ordering::Relaxed) || !evictable(twin) {
                self.clock.push_back(key);
                continue;
            }
            let bytes = i64::from(slot.bytes());
            slot.twin = None;
            self.count(-1, -bytes);
            self.stats.evictions.fetch_add(1, Ordering::Relaxed);
            evicted += 1;
        }
        evicted
    }

    /// Every twin after `after`, in key order: resident ones as they are, cold ones streamed
    /// from disk in one pass. A read error ends the stream with that error.
    pub fn scan(&self, after: Bound<&DeviceKey>) -> TwinScan<'_> {
        let disk = match &self.cold {
            Some(cold) if self.resident < self.slots.len() => Some(cold.scan(after)),
            _ => None,
        };
        TwinScan {
            keys: Box::new(self.slots.range::<DeviceKey, _>((after, Bound::Unbounded))),
            disk: disk.map(|d| d.peekable()),
            stats: &self.stats,
            failed: false,
        }
    }

    /// Every twin, in key order (see [`TwinTable::scan`]).
    pub fn iter(&self) -> TwinScan<'_> {
        self.scan(Bound::Unbounded)
    }
}

type DiskStream<'a> =
    std::iter::Peekable<Box<dyn Iterator<Item = Result<Twin, ColdReadError>> + 'a>>;

/// A pass over a table's twins in key order (see [`TwinTable::scan`]).
pub struct TwinScan<'a> {
    keys: Box<dyn Iterator<Item = (&'a DeviceKey, &'a Slot)> + 'a>,
    disk: Option<DiskStream<'a>>,
    stats: &'a CacheStats,
    failed: bool,
}

impl<'a> Iterator for TwinScan<'a> {
    type Item = Result<Cow<'a, Twin>, ColdReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let (key, slot) = self.keys.next()?;
        if let Some(twin) = slot.twin() {
            return Some(Ok(Cow::Borrowed(twin)));
        }
        self.stats.misses.fetch_add(1, Ordering::Relaxed);
        // Disk also holds twins that are resident (perhaps stale) or already removed from
        // memory: skip to this key.
        let disk = self.disk.as_mut()?;
        loop {
            match disk.peek() {
                None => break,
                Some(Err(_)) => {
                    self.failed = true;
                    return disk.next().map(|r| r.map(Cow::Owned));
                }
                Some(Ok(twin)) if twin.key < *key => {
                    disk.next();
                }
                Some(Ok(twin)) if twin.key == *key => {
                    return disk.next().map(|r| r.map(Cow::Owned));
                }
                Some(Ok(_)) => break,
            }
        }
        self.failed = true;
        Some(Err(ColdReadError {
            key: key.to_string(),
            message: "the twin is listed but not on disk".into(),
        }))
    }
}

/// A resident twin, like `BTreeMap` indexing: panics when there is none in memory.
impl std::ops::Index<&DeviceKey> for TwinTable {
    type Output = Twin;

    fn index(&self, key: &DeviceKey) -> &Twin {
        self.get_resident(key)
            .unwrap_or_else(|| panic!("twin {key} is not resident"))
    }
}

/// Tables are equal when they hold the same twins, wherever each one is.
impl PartialEq for TwinTable {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self.iter().zip(other.iter()).all(|(a, b)| match (a, b) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Disk for the clock's unit test: the twins as they were last "written".
    struct Written(std::sync::Mutex<std::collections::BTreeMap<DeviceKey, Twin>>);

    impl ColdTwins for Written {
        fn load(&self, key: &DeviceKey) -> Result<Option<Twin>, ColdReadError> {
            Ok(self.0.lock().unwrap().get(key).cloned())
        }

        fn scan<'a>(
            &'a self,
            after: Bound<&DeviceKey>,
        ) -> Box<dyn Iterator<Item = Result<Twin, ColdReadError>> + 'a> {
            let twins: Vec<Twin> = self
                .0
                .lock()
                .unwrap()
                .range::<DeviceKey, _>((after, Bound::Unbounded))
                .map(|(_, t)| t.clone())
                .collect();
            Box::new(twins.into_iter().map(Ok))
        }
    }

    /// Keys given at open are numbered in the order given (the index's numbers come from that
    /// order), in key order or not, and a key given twice keeps its first number.
    #[test]
    fn cold_keys_are_numbered_in_the_order_given() {
        let key = |i: u32| DeviceKey::from_oui_serial("00D09E", &format!("K{i:02}")).unwrap();
        let cold: Arc<dyn ColdTwins> = Arc::new(Written(Default::default()));
        let stats = Arc::new(CacheStats::default());
        let table = TwinTable::with_cold(cold.clone(), [key(3), key(1), key(2)], stats.clone());
        let numbers: Vec<_> = (1..=3).map(|i| table.number(&key(i))).collect();
        assert_eq!(numbers, [Some(1), Some(2), Some(0)]);
        assert_eq!(table.key_of(2), Some(&key(2)));
        let ordered: Vec<_> = table
            .numbered_keys(Bound::Unbounded)
            .map(|(_, n)| n)
            .collect();
        assert_eq!(ordered, [1, 2, 0]);

        let table = TwinTable::with_cold(cold, [key(1), key(2), key(1)], stats);
        assert_eq!(table.len(), 2);
        assert_eq!(table.number(&key(1)), Some(0));
        assert_eq!(table.number(&key(2)), Some(1));
        assert_eq!(table.key_of(0), Some(&key(1)));
    }

    /// The clock evicts twins not used since it last passed, keeps pinned ones whatever the
    /// budget, gives a used twin a second round, and reads an evicted twin back whole.
    #[test]
    fn the_clock_evicts_idle_twins_and_keeps_pinned_and_used_ones() {
        let written = Arc::new(Written(Default::default()));
        let stats = Arc::new(CacheStats::default());
        let cold: Arc<dyn ColdTwins> = written.clone();
        let mut table = TwinTable::with_cold(cold, [], stats.clone());
        let key = |i: u32| DeviceKey::from_oui_serial("00D09E", &format!("K{i:02}")).unwrap();
        for i in 0..10 {
            let mut twin = Twin::new(key(i));
            twin.meta.connected = i < 3;
            twin.meta.software_version = format!("v{i}");
            written.0.lock().unwrap().insert(key(i), twin.clone());
            table.insert(key(i), twin);
        }
        assert_eq!(stats.loaded(), 10);
        // Everything was just used: the first round only clears bits; the second evicts all
        // but the pinned three.
        let evicted = table.evict(|| true, |t| !t.meta.connected);
        assert_eq!(evicted, 7);
        assert_eq!(stats.loaded(), 3);
        assert!((0..3).all(|i| table.is_resident(&key(i))));
        // A twin used again is resident again and survives the hand's next pass once.
        assert!(table.load(&key(5)).unwrap());
        assert_eq!(
            table.get_resident(&key(5)).unwrap().meta.software_version,
            "v5"
        );
        let evicted = table.evict(|| stats.loaded() > 3, |t| !t.meta.connected);
        assert_eq!(evicted, 1, "the second round takes it");
        assert!(!table.is_resident(&key(5)));
        // A removed twin's clock entry is skipped.
        assert!(table.load(&key(6)).unwrap());
        assert!(table.remove(&key(6)));
        assert_eq!(table.evict(|| true, |t| !t.meta.connected), 0);
        assert_eq!(stats.loaded(), 3);
        assert_eq!(stats.evictions.load(Ordering::Relaxed), 8);
    }
}
