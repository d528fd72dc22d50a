//! The shards a node serves (its view of the layout: the ring and its local replicas), and the
//! per-shard halves of fleet queries: filter and projection in a shard ([`query_shard`],
//! [`count_shard`]); sort, limit/cursor and group-by counts in the merge ([`merge_pages`],
//! [`merge_counts`]). [`crate::scatter`] fans queries out to every shard.

use crate::shard::Shard;
use radar_core::{DeviceKey, Ring, ShardId, Timestamp};
use radar_twin::index::TwinSet;
use radar_twin::query::{self, EvalContext, Expr};
use radar_twin::{PathDict, ShardState, Twin};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub struct Fleet {
    view: RwLock<Arc<FleetView>>,
    pub deadline: Duration,
    pub online_window: Duration,
    pub overdue_grace: Duration,
}

/// What this node serves at one layout version: the ring and its local shard replicas.
pub struct FleetView {
    pub layout_version: u64,
    /// None until the cluster is initialized.
    pub ring: Option<Ring>,
    pub replicas: BTreeMap<ShardId, Arc<Shard>>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct DeviceSummary {
    pub id: String,
    pub protocol: String,
    /// `websocket` or `mqtt` for USP agents; empty for CWMP.
    pub mtp: String,
    pub online: bool,
    pub last_contact: String,
    pub oui: String,
    pub product_class: String,
    pub serial: String,
    pub software_version: String,
    pub fields: BTreeMap<String, Option<String>>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DevicesAnswer {
    pub devices: Vec<DeviceSummary>,
    pub next_cursor: Option<String>,
    pub partial: bool,
    pub failed_shards: Vec<u32>,
    /// Twins the shards read to evaluate the query (0: indexes answered it).
    pub scanned: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CountAnswer {
    pub total: u64,
    pub groups: BTreeMap<String, u64>,
    /// Twins the shards read to evaluate the query (0: indexes answered it).
    pub scanned: u64,
    pub partial: bool,
    pub failed_shards: Vec<u32>,
}

pub struct DeviceQuery {
    /// The query as written (sent to other nodes, which parse it again).
    pub text: String,
    pub expr: Expr,
    pub limit: usize,
    /// Devices after this id (the previous page's `next_cursor`).
    pub cursor: Option<DeviceKey>,
    pub fields: Vec<String>,
}

pub struct ShardPage {
    pub devices: Vec<DeviceSummary>,
    pub more: bool,
    /// Twins read to evaluate the query (an exact index answer reads none).
    pub scanned: u64,
}

/// Drops from each shard's page the devices the ring does not give that shard (a shard that
/// is handing partitions over still holds their twins until it releases them; a device
/// listed by two shards counts at its owner only), and returns the highest id up to which the
/// merged pages are complete: a shard that had more stopped at its last device, so a page
/// that dropped devices must not run past it.
pub fn keep_owned(
    pages: &mut [(ShardId, Option<ShardPage>)],
    ring: Option<&Ring>,
) -> Option<String> {
    let mut complete_to: Option<String> = None;
    for (id, page) in pages.iter_mut() {
        let Some(page) = page else { continue };
        if page.more {
            if let Some(last) = page.devices.last() {
                if complete_to.as_ref().is_none_or(|c| last.id < *c) {
                    complete_to = Some(last.id.clone());
                }
            }
        }
        if let Some(ring) = ring {
            page.devices.retain(|d| ring.shard_for_key(&d.id) == *id);
        }
    }
    complete_to
}

impl Fleet {
    pub fn new(
        view: FleetView,
        deadline: Duration,
        online_window: Duration,
        overdue_grace: Duration,
    ) -> Self {
        Self {
            view: RwLock::new(Arc::new(view)),
            deadline,
            online_window,
            overdue_grace,
        }
    }

    /// The current view (cheap: an `Arc`).
    pub fn view(&self) -> Arc<FleetView> {
        self.view.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Switches to a new layout version's view.
    pub fn install(&self, view: FleetView) {
        *self.view.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(view);
    }

    /// This node's shard replicas.
    pub fn shards(&self) -> Vec<Arc<Shard>> {
        self.view().replicas.values().cloned().collect()
    }

    /// The shard that owns a device: partition by fixed-seed hash, then the layout's ring.
    pub fn shard_id_for(&self, key: &DeviceKey) -> Option<ShardId> {
        Some(self.view().ring.as_ref()?.shard_for_key(key.as_str()))
    }

    /// This node's replica of the device's shard, if it hosts one.
    pub fn shard_for(&self, key: &DeviceKey) -> Option<Arc<Shard>> {
        let view = self.view();
        let id = view.ring.as_ref()?.shard_for_key(key.as_str());
        view.replicas.get(&id).cloned()
    }

    /// Reads a device's twin from this node's replica; `None` when the twin (or the replica)
    /// is not here.
    pub fn with_twin<R>(
        &self,
        key: &DeviceKey,
        f: impl FnOnce(&Twin, &PathDict) -> R,
    ) -> Option<R> {
        self.shard_for(key)?.with_twin(key, f)
    }

    pub fn context(&self) -> EvalContext {
        EvalContext {
            now: Timestamp::now(),
            online_window: self.online_window,
            overdue_grace: self.overdue_grace,
        }
    }
}

/// Merges the shards' pages: sort by id, cut at the limit and at `complete_to` (see
/// [`keep_owned`]), cursor from the last one kept.
pub fn merge_pages(
    pages: Vec<(ShardId, Option<ShardPage>)>,
    limit: usize,
    complete_to: Option<String>,
) -> DevicesAnswer {
    let mut devices = Vec::new();
    let mut more = false;
    let mut scanned = 0;
    let mut failed = Vec::new();
    for (shard, page) in pages {
        match page {
            Some(page) => {
                more |= page.more;
                scanned += page.scanned;
                devices.extend(page.devices);
            }
            None => failed.push(shard.0),
        }
    }
    devices.sort_by(|a, b| a.id.cmp(&b.id));
    if let Some(bound) = &complete_to {
        devices.retain(|d| d.id <= *bound);
    }
    if devices.len() > limit {
        devices.truncate(limit);
        more = true;
    }
    let next_cursor = if more {
        // Every device of a page may have been dropped: the cursor still moves past them.
        devices.last().map(|d| d.id.clone()).or(complete_to)
    } else {
        None
    };
    DevicesAnswer {
        devices,
        next_cursor,
        partial: !failed.is_empty(),
        failed_shards: failed,
        scanned,
    }
}

/// One shard's count: matches, group-by counts, and the twins it read to evaluate them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardCount {
    pub total: u64,
    pub groups: BTreeMap<String, u64>,
    pub scanned: u64,
}

/// Adds up the shards' counts and groups.
pub fn merge_counts(answers: Vec<(ShardId, Option<ShardCount>)>) -> CountAnswer {
    let mut total = 0;
    let mut scanned = 0;
    let mut groups = BTreeMap::new();
    let mut failed = Vec::new();
    for (shard, answer) in answers {
        match answer {
            Some(count) => {
                total += count.total;
                scanned += count.scanned;
                for (k, v) in count.groups {
                    *groups.entry(k).or_insert(0) += v;
                }
            }
            None => failed.push(shard.0),
        }
    }
    CountAnswer {
        total,
        groups,
        scanned,
        partial: !failed.is_empty(),
        failed_shards: failed,
    }
}

/// Twins a shard still holds but no longer owns: partitions it froze for a move that the ring
/// of `view` already gives to another shard (between the layout change and the release).
/// Counts use it at the asking node's layout version (`None`: the asking node's layout is
/// older than this node's, so the twins still count here).
fn handed_over<'a>(
    state: &'a ShardState,
    shard: ShardId,
    view: Option<&'a FleetView>,
) -> Option<impl Fn(&DeviceKey) -> bool + 'a> {
    let ring = view?.ring.as_ref()?;
    (!state.frozen.partitions.is_empty()).then_some(move |k: &DeviceKey| {
        state.frozen.contains(k) && ring.shard_for_key(k.as_str()) != shard
    })
}

pub fn query_shard(shard: &Shard, q: &DeviceQuery, ctx: &EvalContext) -> ShardPage {
    // Devices of partitions being handed over are listed too; the asking node keeps each at
    // its owner by its own ring (`keep_owned`).
    query_state(&shard.read(), q, ctx, None)
}

/// One shard's page of a device query, over its state, without the twins `exclude` names.
pub fn query_state(
    state: &ShardState,
    q: &DeviceQuery,
    ctx: &EvalContext,
    exclude: Option<&dyn Fn(&DeviceKey) -> bool>,
) -> ShardPage {
    let start = match &q.cursor {
        Some(c) => std::ops::Bound::Excluded(c.clone()),
        None => std::ops::Bound::Unbounded,
    };
    let range = (start.as_ref(), std::ops::Bound::<&DeviceKey>::Unbounded);
    // An exact index answer is the page's ids as they are; candidates are evaluated; otherwise
    // every twin after the cursor is (cold ones streamed from disk).
    let exact = state.index.exact(&q.expr);
    let candidates = match exact {
        Some(_) => None,
        None => state.index.candidates(&q.expr),
    };
    // An exact page shows only meta unless it asks for fields: cold twins' headers suffice.
    let headers_only = exact.is_some() && q.fields.is_empty();
    let twins: Box<dyn Iterator<Item = Cow<'_, Twin>>> = match (&exact, &candidates) {
        (Some(set), _) | (None, Some(set)) => {
            Box::new(keys_in_order(state, set, range.0).filter_map(move |k| {
                crate::shard::readable(match headers_only {
                    true => state.twins.get_header(k),
                    false => state.twins.get(k),
                })
            }))
        }
        (None, None) => Box::new(
            state
                .twins
                .scan(start.as_ref())
                .map_while(|t| crate::shard::readable(t.map(Some))),
        ),
    };
    let mut devices = Vec::new();
    let mut more = false;
    let mut scanned = 0;
    for twin in twins {
        if exact.is_none() {
            scanned += 1;
        }
        if exclude.is_some_and(|f| f(&twin.key))
            || (exact.is_none() && !query::matches(&q.expr, &twin, &state.dict, ctx))
        {
            continue;
        }
        if devices.len() == q.limit {
            more = true;
            break;
        }
        devices.push(summarize(&twin, &state.dict, ctx, &q.fields));
    }
    ShardPage {
        devices,
        more,
        scanned,
    }
}

pub fn summarize(
    twin: &Twin,
    dict: &PathDict,
    ctx: &EvalContext,
    fields: &[String],
) -> DeviceSummary {
    DeviceSummary {
        id: twin.key.to_string(),
        protocol: twin.meta.protocol.clone(),
        mtp: twin.meta.mtp.clone(),
        online: query::is_online(twin, ctx),
        last_contact: twin.meta.last_contact.to_rfc3339(),
        oui: twin.meta.oui.clone(),
        product_class: twin.meta.product_class.clone(),
        serial: twin.meta.serial.clone(),
        software_version: twin.meta.software_version.clone(),
        fields: fields
            .iter()
            .map(|f| {
                (
                    f.clone(),
                    query::field(twin, dict, ctx, f).map(|v| v.to_text()),
                )
            })
            .collect(),
    }
}

pub fn count_shard(
    shard: &Shard,
    view: Option<&FleetView>,
    expr: &Expr,
    group_by: Option<&str>,
    ctx: &EvalContext,
) -> ShardCount {
    count_owned(&shard.read(), shard.id, view, expr, group_by, ctx)
}

/// A shard's count of the twins it owns at `view`'s layout version.
pub fn count_owned(
    state: &ShardState,
    shard: ShardId,
    view: Option<&FleetView>,
    expr: &Expr,
    group_by: Option<&str>,
    ctx: &EvalContext,
) -> ShardCount {
    match &handed_over(state, shard, view) {
        Some(exclude) => count_state(state, expr, group_by, ctx, Some(exclude)),
        None => count_state(state, expr, group_by, ctx, None),
    }
}

/// One shard's count (and group-by counts) of a query, over its state, without the twins
/// `exclude` names.
pub fn count_state(
    state: &ShardState,
    expr: &Expr,
    group_by: Option<&str>,
    ctx: &EvalContext,
    exclude: Option<&dyn Fn(&DeviceKey) -> bool>,
) -> ShardCount {
    if let Some((total, groups)) = count_from_index(state, expr, group_by, exclude) {
        return ShardCount {
            total,
            groups,
            scanned: 0,
        };
    }
    let mut total = 0;
    let mut scanned = 0;
    let mut groups = BTreeMap::new();
    let candidates = state.index.candidates(expr);
    let twins: Box<dyn Iterator<Item = Cow<'_, Twin>>> = match &candidates {
        Some(set) => Box::new(
            set.iter()
                .filter_map(|n| state.twins.key_of(n))
                .filter_map(|k| crate::shard::readable(state.twins.get(k))),
        ),
        None => Box::new(crate::shard::all_twins(state)),
    };
    for twin in twins {
        scanned += 1;
        if exclude.is_some_and(|f| f(&twin.key)) || !query::matches(expr, &twin, &state.dict, ctx) {
            continue;
        }
        total += 1;
        if let Some(field) = group_by {
            let key = query::field(&twin, &state.dict, ctx, field)
                .map(|v| v.to_text())
                .unwrap_or_else(|| "(none)".into());
            *groups.entry(key).or_insert(0) += 1;
        }
    }
    ShardCount {
        total,
        groups,
        scanned,
    }
}

/// A count answered by the index alone, reading no twin: every term of the query indexed (or
/// no term at all), and the group-by field indexed. `None` when the twins must be read.
fn count_from_index(
    state: &ShardState,
    expr: &Expr,
    group_by: Option<&str>,
    exclude: Option<&dyn Fn(&DeviceKey) -> bool>,
) -> Option<(u64, BTreeMap<String, u64>)> {
    const NONE: &str = "(none)";
    let index = &state.index;
    if group_by.is_some_and(|field| !index.is_indexed(field)) {
        return None;
    }
    // `None`: every twin.
    let mut matching = match expr {
        Expr::All => None,
        _ => Some(index.exact(expr)?),
    };
    if let Some(exclude) = exclude {
        let mut kept = match matching {
            Some(set) => set.into_owned(),
            None => state
                .twins
                .numbered_keys(Bound::Unbounded)
                .map(|(_, n)| n)
                .collect(),
        };
        let excluded: Vec<u32> = kept
            .iter()
            .filter(|n| state.twins.key_of(*n).is_some_and(exclude))
            .collect();
        for n in excluded {
            kept.remove(n);
        }
        matching = Some(Cow::Owned(kept));
    }
    let total = matching
        .as_ref()
        .map_or(state.twins.len() as u64, |set| set.len());
    let mut groups = BTreeMap::new();
    if let Some(field) = group_by {
        groups = index.value_counts(field, matching.as_deref())?;
        let valued: u64 = groups.values().sum();
        if total > valued {
            groups.insert(NONE.to_string(), total - valued);
        }
    }
    Some((total, groups))
}

/// Sets at most this large are paged by sorting their keys; larger ones by walking the keys.
const SORTED_PAGE_LIMIT: u64 = 16_384;

/// The keys of the twins in `set` after `after`, in key order. A small or selective set is
/// sorted; otherwise the shard's keys are walked in order and tested against the set, which
/// reaches a page after about `page × twins / matches` keys.
fn keys_in_order<'a>(
    state: &'a ShardState,
    set: &'a TwinSet,
    after: Bound<&'a DeviceKey>,
) -> Box<dyn Iterator<Item = &'a DeviceKey> + 'a> {
    let twins = state.twins.len() as u64;
    if set.len() <= SORTED_PAGE_LIMIT || set.len().saturating_mul(64) <= twins {
        let mut keys: Vec<&DeviceKey> = set
            .iter()
            .filter_map(|n| state.twins.key_of(n))
            .filter(|k| match after {
                Bound::Excluded(a) => *k > a,
                Bound::Included(a) => *k >= a,
                Bound::Unbounded => true,
            })
            .collect();
        keys.sort_unstable();
        Box::new(keys.into_iter())
    } else {
        Box::new(
            state
                .twins
                .numbered_keys(after)
                .filter(move |(_, n)| set.contains(*n))
                .map(|(k, _)| k),
        )
    }
}

#[cfg(test)]
#[path = "fleet_tests.rs"]
mod tests;
