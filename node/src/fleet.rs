//! The shards a node serves (its view of the layout: the ring and its local replicas), and the
//! per-shard halves of fleet queries: filter and projection in a shard ([`query_shard`],
//! [`count_shard`]); sort, limit/cursor and group-by counts in the merge ([`merge_pages`],
//! [`merge_counts`]). [`crate::scatter`] fans queries out to every shard.

use crate::shard::Shard;
use radar_core::{DeviceKey, Ring, ShardId, Timestamp};
use radar_twin::query::{self, EvalContext, Expr};
use radar_twin::{PathDict, ShardState, Twin};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub struct Fleet {
    view: RwLock<Arc<FleetView>>,
    pub deadline: Duration,
    pub online_window: Duration,
}

/// What this node serves at one layout version: the ring and its local shard replicas.
pub struct FleetView {
    pub layout_version: u64,
    /// None until the cluster is initialized.
    pub ring: Option<Ring>,
    pub replicas: BTreeMap<ShardId, Arc<Shard>>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
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

#[derive(Debug, Clone, Serialize)]
pub struct DevicesAnswer {
    pub devices: Vec<DeviceSummary>,
    pub next_cursor: Option<String>,
    pub partial: bool,
    pub failed_shards: Vec<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CountAnswer {
    pub total: u64,
    pub groups: BTreeMap<String, u64>,
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
}

impl Fleet {
    pub fn new(view: FleetView, deadline: Duration, online_window: Duration) -> Self {
        Self {
            view: RwLock::new(Arc::new(view)),
            deadline,
            online_window,
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
        }
    }
}

/// Merges the shards' pages: sort by id, cut at the limit, cursor from the last one kept.
pub fn merge_pages(pages: Vec<(ShardId, Option<ShardPage>)>, limit: usize) -> DevicesAnswer {
    let mut devices = Vec::new();
    let mut more = false;
    let mut failed = Vec::new();
    for (shard, page) in pages {
        match page {
            Some(page) => {
                more |= page.more;
                devices.extend(page.devices);
            }
            None => failed.push(shard.0),
        }
    }
    devices.sort_by(|a, b| a.id.cmp(&b.id));
    if devices.len() > limit {
        devices.truncate(limit);
        more = true;
    }
    let next_cursor = if more {
        devices.last().map(|d| d.id.clone())
    } else {
        None
    };
    DevicesAnswer {
        devices,
        next_cursor,
        partial: !failed.is_empty(),
        failed_shards: failed,
    }
}

pub type ShardCount = (u64, BTreeMap<String, u64>);

/// Adds up the shards' counts and groups.
pub fn merge_counts(answers: Vec<(ShardId, Option<ShardCount>)>) -> CountAnswer {
    let mut total = 0;
    let mut groups = BTreeMap::new();
    let mut failed = Vec::new();
    for (shard, answer) in answers {
        match answer {
            Some((n, g)) => {
                total += n;
                for (k, v) in g {
                    *groups.entry(k).or_insert(0) += v;
                }
            }
            None => failed.push(shard.0),
        }
    }
    CountAnswer {
        total,
        groups,
        partial: !failed.is_empty(),
        failed_shards: failed,
    }
}

/// Twins a shard still holds but no longer owns: partitions it froze for a move that the ring
/// of `view` already gives to another shard (between the layout change and the release).
fn handed_over<'a>(
    state: &'a ShardState,
    shard: ShardId,
    view: &'a FleetView,
) -> Option<impl Fn(&DeviceKey) -> bool + 'a> {
    let ring = view.ring.as_ref()?;
    (!state.frozen.partitions.is_empty()).then_some(move |k: &DeviceKey| {
        state.frozen.contains(k) && ring.shard_for_key(k.as_str()) != shard
    })
}

pub fn query_shard(
    shard: &Shard,
    view: &FleetView,
    q: &DeviceQuery,
    ctx: &EvalContext,
) -> ShardPage {
    query_owned(&shard.read(), shard.id, view, q, ctx)
}

/// A shard's page of the twins it owns at `view`'s layout version.
pub fn query_owned(
    state: &ShardState,
    shard: ShardId,
    view: &FleetView,
    q: &DeviceQuery,
    ctx: &EvalContext,
) -> ShardPage {
    match &handed_over(state, shard, view) {
        Some(exclude) => query_state(state, q, ctx, Some(exclude)),
        None => query_state(state, q, ctx, None),
    }
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
    let range = (start, std::ops::Bound::Unbounded);
    // The index gives the candidates in id order; otherwise every twin after the cursor.
    let candidates = state.index.candidates(&q.expr);
    let twins: Box<dyn Iterator<Item = &Twin>> = match &candidates {
        Some(keys) => Box::new(keys.range(range).filter_map(|k| state.twins.get(k))),
        None => Box::new(state.twins.range(range).map(|(_, t)| t)),
    };
    let mut devices = Vec::new();
    let mut more = false;
    for twin in twins {
        if exclude.is_some_and(|f| f(&twin.key)) || !query::matches(&q.expr, twin, &state.dict, ctx)
        {
            continue;
        }
        if devices.len() == q.limit {
            more = true;
            break;
        }
        devices.push(summarize(twin, &state.dict, ctx, &q.fields));
    }
    ShardPage { devices, more }
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
    view: &FleetView,
    expr: &Expr,
    group_by: Option<&str>,
    ctx: &EvalContext,
) -> (u64, BTreeMap<String, u64>) {
    count_owned(&shard.read(), shard.id, view, expr, group_by, ctx)
}

/// A shard's count of the twins it owns at `view`'s layout version.
pub fn count_owned(
    state: &ShardState,
    shard: ShardId,
    view: &FleetView,
    expr: &Expr,
    group_by: Option<&str>,
    ctx: &EvalContext,
) -> (u64, BTreeMap<String, u64>) {
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
) -> (u64, BTreeMap<String, u64>) {
    let mut total = 0;
    let mut groups = BTreeMap::new();
    let candidates = state.index.candidates(expr);
    let twins: Box<dyn Iterator<Item = &Twin>> = match &candidates {
        Some(keys) => Box::new(keys.iter().filter_map(|k| state.twins.get(k))),
        None => Box::new(state.twins.values()),
    };
    for twin in twins {
        if exclude.is_some_and(|f| f(&twin.key)) || !query::matches(expr, twin, &state.dict, ctx) {
            continue;
        }
        total += 1;
        if let Some(field) = group_by {
            let key = query::field(twin, &state.dict, ctx, field)
                .map(|v| v.to_text())
                .unwrap_or_else(|| "(none)".into());
            *groups.entry(key).or_insert(0) += 1;
        }
    }
    (total, groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use radar_twin::{apply, ShardControl, TwinCommand};

    const PARTITIONS: u32 = 64;

    fn ring(shards: &[u32]) -> Ring {
        let ids: Vec<ShardId> = shards.iter().map(|s| ShardId(*s)).collect();
        Ring::new(PARTITIONS, &ids, 16).unwrap()
    }

    fn view(ring: Ring, version: u64) -> FleetView {
        FleetView {
            layout_version: version,
            ring: Some(ring),
            replicas: BTreeMap::new(),
        }
    }

    fn all() -> DeviceQuery {
        DeviceQuery {
            text: String::new(),
            expr: query::parse("").unwrap(),
            limit: 1000,
            cursor: None,
            fields: Vec::new(),
        }
    }

    fn ctx() -> EvalContext {
        EvalContext {
            now: Timestamp(0),
            online_window: Duration::from_secs(60),
        }
    }

    /// Between the layout that gives frozen partitions to the new shard and their release, the
    /// source still holds their twins; it must not list them, or they would be listed twice.
    #[test]
    fn a_source_shard_stops_listing_frozen_twins_once_the_ring_gives_them_away() {
        let (old, new) = (ring(&[0, 1]), ring(&[0, 1, 2]));
        let moving: Vec<u32> = old
            .moves_to(&new)
            .into_iter()
            .filter(|(_, from, _)| *from == ShardId(0))
            .map(|(p, _, _)| p.0)
            .collect();
        assert!(!moving.is_empty());
        let mut state = ShardState::default();
        let mut owned = Vec::new();
        for i in 0..400 {
            let key = DeviceKey::parse(&format!("os::00D09E-F{i:04}")).unwrap();
            if old.shard_for_key(key.as_str()) != ShardId(0) {
                continue;
            }
            let command = TwinCommand::UspConnected {
                device: key.clone(),
                at: Timestamp(1),
                mtp: "websocket".into(),
                reply_to: String::new(),
            };
            apply(&mut state, &command).unwrap();
            owned.push(key);
        }
        radar_twin::moving::apply_control(
            &mut state,
            &ShardControl::Freeze {
                partition_count: PARTITIONS,
                partitions: moving.clone(),
            },
        );
        let listed = |v: &FleetView| {
            query_owned(&state, ShardId(0), v, &all(), &ctx())
                .devices
                .len()
        };
        // Still the owner at the old version: everything is listed.
        assert_eq!(listed(&view(old.clone(), 5)), owned.len());
        let staying = owned
            .iter()
            .filter(|k| new.shard_for_key(k.as_str()) == ShardId(0))
            .count();
        assert!(staying < owned.len());
        let after = view(new, 6);
        assert_eq!(listed(&after), staying);
        let counted = count_owned(&state, ShardId(0), &after, &all().expr, None, &ctx());
        assert_eq!(counted.0, staying as u64);
    }
}
