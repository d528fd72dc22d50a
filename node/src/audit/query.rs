//! `GET /api/v1/audit`: the audit records of every shard, newest first, merged by the node
//! that takes the call (scatter-gather like fleet queries: a shard led here is read in place,
//! any other over gRPC `Fleet.AuditShard` at its leader's node).
//!
//! Records order by (time, shard, Raft entry, place in the entry), newest first. A page that
//! stops early gives `next`, a cursor naming its last record; the next page asks each shard
//! for the records that order before it.

use crate::api::{ApiError, ApiResult};
use crate::core::NodeCore;
use crate::scatter::{scatter, target, Target};
use crate::shard::{Consistency, Shard};
use axum::extract::{RawQuery, State};
use axum::Json;
use radar_core::{ErrorCode, ShardId, Timestamp};
use radar_proto::fleet as pb;
use radar_store::raft::audit_log::{AuditFilter, AuditPage};
use radar_twin::audit::{AuditKey, AuditRecord};
use serde_json::{json, Value};
use std::sync::Arc;

/// Records per page when the caller names no limit, and at most.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;
/// Records one shard looks at for one page before it stops (a narrow filter over a long log).
const MAX_SCANNED: usize = 200_000;

/// A record's place in the merged order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Position {
    at: u64,
    shard: u32,
    entry: u64,
    seq: u32,
}

impl Position {
    fn new(shard: ShardId, key: AuditKey) -> Self {
        Self {
            at: key.at,
            shard: shard.0,
            entry: key.entry,
            seq: key.seq,
        }
    }

    fn cursor(self) -> String {
        format!("{}.{}.{}.{}", self.at, self.shard, self.entry, self.seq)
    }

    fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('.');
        let position = Self {
            at: parts.next()?.parse().ok()?,
            shard: parts.next()?.parse().ok()?,
            entry: parts.next()?.parse().ok()?,
            seq: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(position)
    }

    /// The key below which shard `shard`'s records order before this position.
    fn bound_in(self, shard: u32) -> AuditKey {
        let key = |at| AuditKey {
            at,
            entry: 0,
            seq: 0,
        };
        match shard.cmp(&self.shard) {
            std::cmp::Ordering::Less => key(self.at.saturating_add(1)),
            std::cmp::Ordering::Equal => AuditKey {
                at: self.at,
                entry: self.entry,
                seq: self.seq,
            },
            std::cmp::Ordering::Greater => key(self.at),
        }
    }
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::BadRequest, message.into())
}

/// `since`: an RFC 3339 time, or a duration back from now (`24h`).
fn parse_since(text: &str) -> ApiResult<Timestamp> {
    if let Ok(ago) = humantime::parse_duration(text) {
        return Ok(Timestamp::now().saturating_sub(ago));
    }
    let at = humantime::parse_rfc3339_weak(text).map_err(|_| {
        bad(format!(
            "since must be an RFC 3339 time or a duration such as 24h, not {text:?}"
        ))
    })?;
    let ms = at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Ok(Timestamp::from_millis(ms))
}

struct Request {
    filter: AuditFilter,
    after: Option<Position>,
    stale: bool,
}

fn parse_request(raw: Option<String>) -> ApiResult<Request> {
    let p = crate::api::params(raw);
    let nonempty = |k: &str| p.get(k).filter(|v| !v.is_empty()).cloned();
    let limit = crate::api::page_limit(&p, DEFAULT_LIMIT, MAX_LIMIT)?;
    let after = nonempty("cursor")
        .map(|c| Position::parse(&c).ok_or_else(|| bad("cursor is not one this API gave")))
        .transpose()?;
    let stale = crate::api::consistency(&p)? == Consistency::Stale;
    Ok(Request {
        filter: AuditFilter {
            device: nonempty("device"),
            actor: nonempty("actor"),
            since: nonempty("since").map(|s| parse_since(&s)).transpose()?,
            before: None,
            limit,
            max_scanned: MAX_SCANNED,
        },
        after,
        stale,
    })
}

async fn read_local(shard: Arc<Shard>, filter: AuditFilter) -> Option<AuditPage> {
    let reader = shard.audit.clone();
    tokio::task::spawn_blocking(move || reader.read(&filter))
        .await
        .ok()?
        .map_err(|e| tracing::warn!(shard = %shard.id, error = %e, "audit read"))
        .ok()
}

async fn read_remote(
    core: &NodeCore,
    node: &radar_core::NodeInfo,
    shard: ShardId,
    filter: &AuditFilter,
    stale: bool,
) -> Option<AuditPage> {
    let request = pb::AuditQuery {
        shard: shard.0,
        device: filter.device.clone().unwrap_or_default(),
        actor: filter.actor.clone().unwrap_or_default(),
        since_ms: filter.since.map(|t| t.as_millis()).unwrap_or(0),
        before: filter
            .before
            .map(|k| k.to_bytes().to_vec())
            .unwrap_or_default(),
        limit: filter.limit as u32,
        stale,
    };
    let reply = crate::scatter::fleet_client(core, node)?
        .audit_shard(request)
        .await
        .map_err(|s| tracing::warn!(shard = shard.0, node = node.id, error = %s.message(), "remote audit read"))
        .ok()?
        .into_inner();
    from_reply(reply)
}

fn from_reply(reply: pb::AuditReply) -> Option<AuditPage> {
    let mut page = AuditPage {
        records: Vec::with_capacity(reply.keys.len()),
        more: reply.more,
    };
    for (key, record) in reply.keys.iter().zip(&reply.records) {
        let key = AuditKey::from_bytes(key)?;
        let record: AuditRecord = postcard::from_bytes(record).ok()?;
        page.records.push((key, record));
    }
    Some(page)
}

/// The gRPC side: one page of `shard`, a replica on this node ready to be read.
pub async fn serve_shard(
    shard: Arc<Shard>,
    request: pb::AuditQuery,
) -> Result<pb::AuditReply, tonic::Status> {
    let before = match request.before.as_slice() {
        [] => None,
        bytes => Some(
            AuditKey::from_bytes(bytes)
                .ok_or_else(|| tonic::Status::invalid_argument("a bad record key"))?,
        ),
    };
    let filter = AuditFilter {
        device: Some(request.device).filter(|d| !d.is_empty()),
        actor: Some(request.actor).filter(|a| !a.is_empty()),
        since: (request.since_ms > 0).then(|| Timestamp::from_millis(request.since_ms)),
        before,
        limit: (request.limit as usize).clamp(1, MAX_LIMIT),
        max_scanned: MAX_SCANNED,
    };
    let page = read_local(shard, filter)
        .await
        .ok_or_else(|| tonic::Status::internal("the shard's audit records could not be read"))?;
    let mut reply = pb::AuditReply {
        more: page.more,
        ..Default::default()
    };
    for (key, record) in page.records {
        reply.keys.push(key.to_bytes().to_vec());
        reply.records.push(
            postcard::to_allocvec(&record).map_err(|e| tonic::Status::internal(e.to_string()))?,
        );
    }
    Ok(reply)
}

pub fn record_json(record: &AuditRecord) -> Value {
    json!({
        "at": record.at.to_rfc3339(),
        "request": record.request,
        "actor": record.actor,
        "role": record.role,
        "source": record.source,
        "method": record.method,
        "route": record.route,
        "path": record.path,
        "device": (!record.device.is_empty()).then_some(&record.device),
        "detail": record.detail,
        "status": (record.status != 0).then_some(record.status),
        "result": record.result,
        "operation": record.operation,
    })
}

/// `GET /api/v1/audit?device=&actor=&since=&limit=&cursor=&consistency=`
pub async fn list(
    State(core): State<Arc<NodeCore>>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let request = Arc::new(parse_request(raw)?);
    let limit = request.filter.limit;
    let view = core.fleet.view();
    let pages = scatter(&core, &view, |core, id| {
        let request = request.clone();
        async move {
            let mut filter = request.filter.clone();
            filter.before = request.after.map(|p| p.bound_in(id.0));
            match target(&core, id, request.stale).await? {
                Target::Local(shard) => {
                    if !request.stale {
                        shard.read_barrier(Consistency::Linearizable).await.ok()?;
                    }
                    read_local(shard, filter).await
                }
                Target::Remote(node) => read_remote(&core, &node, id, &filter, request.stale).await,
            }
        }
    })
    .await;
    let mut failed_shards = Vec::new();
    let mut more = false;
    let mut merged: Vec<(Position, AuditRecord)> = Vec::new();
    for (id, page) in pages {
        match page {
            Some(page) => {
                more |= page.more;
                merged.extend(
                    page.records
                        .into_iter()
                        .map(|(key, record)| (Position::new(id, key), record)),
                );
            }
            None => failed_shards.push(id.0),
        }
    }
    merged.sort_by_key(|(position, _)| std::cmp::Reverse(*position));
    if merged.len() > limit {
        merged.truncate(limit);
        more = true;
    }
    let next = more
        .then(|| merged.last().map(|(p, _)| p.cursor()))
        .flatten();
    Ok(Json(json!({
        "records": merged.iter().map(|(_, r)| record_json(r)).collect::<Vec<_>>(),
        "next": next,
        "partial": !failed_shards.is_empty(),
        "failed_shards": failed_shards,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each shard's bound selects exactly the records that order before the cursor.
    #[test]
    fn a_cursor_bounds_every_shard() {
        let cursor = Position {
            at: 100,
            shard: 2,
            entry: 7,
            seq: 1,
        };
        assert_eq!(Position::parse(&cursor.cursor()), Some(cursor));
        assert_eq!(Position::parse("1.2.3"), None);
        let records = [
            (1u32, 100u64, 50u64),
            (1, 101, 0),
            (2, 100, 7),
            (2, 100, 6),
            (3, 100, 1),
            (3, 99, 9),
        ];
        for (shard, at, entry) in records {
            let key = AuditKey { at, entry, seq: 0 };
            let position = Position::new(ShardId(shard), key);
            let selected = key < cursor.bound_in(shard);
            assert_eq!(selected, position < cursor, "{position:?}");
        }
        assert!(parse_since("24h").ok().unwrap() < Timestamp::now());
        assert_eq!(
            parse_since("1970-01-01T00:00:01Z").ok().unwrap(),
            Timestamp::from_millis(1000)
        );
        assert!(parse_since("yesterday").is_err());
    }
}
