//! The shards a node serves and fleet queries over them: every query fans out to every shard in
//! parallel with a per-shard deadline and the answers are merged (filter and projection in the
//! shard; sort, limit/cursor and group-by counts in the merge). A shard that misses its deadline
//! makes the answer `partial` and is named in `failed_shards`; the query never hangs. This is the
//! code path that cross-node scatter-gather plugs into.

use crate::shard::Shard;
use radar_core::{DeviceKey, Ring, ShardId, Timestamp};
use radar_twin::query::{self, EvalContext, Expr};
use radar_twin::{PathDict, Twin};
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
    pub expr: Expr,
    pub limit: usize,
    /// Devices after this id (the previous page's `next_cursor`).
    pub cursor: Option<DeviceKey>,
    pub fields: Vec<String>,
}

struct ShardPage {
    devices: Vec<DeviceSummary>,
    more: bool,
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

    pub async fn devices(&self, q: DeviceQuery) -> DevicesAnswer {
        let limit = q.limit;
        let q = Arc::new(q);
        let ctx = self.context();
        let pages = self
            .scatter(move |shard| {
                let q = q.clone();
                move || query_shard(&shard, &q, &ctx)
            })
            .await;
        let mut devices = Vec::new();
        let mut more = false;
        let mut failed = Vec::new();
        for (shard, page) in pages.results {
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

    pub async fn count(&self, expr: Expr, group_by: Option<String>) -> CountAnswer {
        let expr = Arc::new(expr);
        let group_by = Arc::new(group_by);
        let ctx = self.context();
        let answers = self
            .scatter(move |shard| {
                let expr = expr.clone();
                let group_by = group_by.clone();
                move || count_shard(&shard, &expr, group_by.as_deref(), &ctx)
            })
            .await;
        let mut total = 0;
        let mut groups = BTreeMap::new();
        let mut failed = Vec::new();
        for (shard, answer) in answers.results {
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

    /// Runs `task` on every shard on the blocking pool, each bounded by the deadline.
    async fn scatter<T, F, G>(&self, make: G) -> Scattered<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
        G: Fn(Arc<Shard>) -> F,
    {
        let mut handles = Vec::new();
        for shard in self.shards() {
            let task = make(shard.clone());
            handles.push((
                shard.id,
                tokio::time::timeout(self.deadline, tokio::task::spawn_blocking(task)),
            ));
        }
        let mut results = Vec::new();
        for (id, handle) in handles {
            let value = match handle.await {
                Ok(Ok(v)) => Some(v),
                Ok(Err(e)) => {
                    tracing::error!(shard = id.0, error = %e, "shard query task failed");
                    None
                }
                Err(_) => {
                    tracing::warn!(shard = id.0, "shard missed the query deadline");
                    None
                }
            };
            results.push((id, value));
        }
        Scattered { results }
    }
}

struct Scattered<T> {
    results: Vec<(ShardId, Option<T>)>,
}

fn query_shard(shard: &Shard, q: &DeviceQuery, ctx: &EvalContext) -> ShardPage {
    let state = shard.read();
    let start = match &q.cursor {
        Some(c) => std::ops::Bound::Excluded(c.clone()),
        None => std::ops::Bound::Unbounded,
    };
    let mut devices = Vec::new();
    let mut more = false;
    for twin in state
        .twins
        .range((start, std::ops::Bound::Unbounded))
        .map(|(_, t)| t)
    {
        if !query::matches(&q.expr, twin, &state.dict, ctx) {
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

fn count_shard(
    shard: &Shard,
    expr: &Expr,
    group_by: Option<&str>,
    ctx: &EvalContext,
) -> (u64, BTreeMap<String, u64>) {
    let state = shard.read();
    let mut total = 0;
    let mut groups = BTreeMap::new();
    for twin in state.twins.values() {
        if !query::matches(expr, twin, &state.dict, ctx) {
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
