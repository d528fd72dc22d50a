//! What every driver and the API share: the shards, configuration, metrics, the connection
//! requester and the data model.

use crate::config::{Credential, NodeConfig};
use crate::cwmp::connection_request::{ConnectionRequester, Target};
use crate::fleet::Fleet;
use crate::metrics::Metrics;
use crate::shard::ProposeError;
use radar_core::{DeviceKey, ShardId, Timestamp};
use radar_twin::datamodel::DataModel;
use radar_twin::planner::{self, PlanConfig, PlannedTask};
use radar_twin::{ApplyError, ApplyOutcome, Operation, OperationKind, TwinCommand};
use std::sync::Arc;
use std::time::Duration;
use tracing::debug;

/// How long a write for a device whose partition is moving waits for the new layout. A move
/// freezes a partition only while its twins are copied, normally well under a second.
const MOVE_WAIT: Duration = Duration::from_secs(30);

pub struct NodeCore {
    pub config: NodeConfig,
    pub fleet: Fleet,
    pub metrics: Arc<Metrics>,
    pub requester: ConnectionRequester,
    pub model: &'static DataModel,
    pub plan_config: PlanConfig,
    /// What every USP agent session shares (controller id, subscriptions, timeouts).
    pub usp_session: Arc<radar_usp::session::SessionConfig>,
    /// USP agents with a live link on this node.
    pub usp_agents: crate::usp::registry::AgentRegistry,
    /// The USP MTPs running here (each registers itself; the core names none).
    pub usp_mtps: crate::usp::mtp::UspMtps,
    /// The metadata group replica, in the cluster mode.
    pub meta: Option<Arc<crate::cluster::meta::MetaGroup>>,
    /// Per-device rate limit for protocol warnings.
    pub log_limit: crate::log_limit::LogLimiter,
    /// Indexes added while the node runs.
    pub indexes: Arc<crate::index_admin::IndexAdmin>,
}

impl NodeCore {
    /// Commits a twin command in the device's shard (here, or at the node leading it). A
    /// command refused because the device's partition is moving to another shard waits for the
    /// layout that names the new owner and goes there (see `radar_twin::moving`).
    ///
    /// A command committed while an API call is served carries the call's audit record.
    pub async fn propose(&self, command: TwinCommand) -> Result<ApplyOutcome, ProposeError> {
        let command = crate::audit::attach(command);
        loop {
            let version = self.fleet.view().layout_version;
            let result = self.propose_once(&command).await;
            match result {
                Err(ProposeError::Apply(ApplyError::Moving(_))) if self.meta.is_some() => {
                    if !self.wait_for_layout_after(version, MOVE_WAIT).await {
                        return result;
                    }
                }
                other => return other,
            }
        }
    }

    async fn propose_once(&self, command: &TwinCommand) -> Result<ApplyOutcome, ProposeError> {
        let shard = self.fleet.shard_for(command.device());
        let Some(meta) = &self.meta else {
            return match shard {
                Some(shard) => shard.propose(command.clone()).await,
                None => Err(ProposeError::Closed),
            };
        };
        if let Some(shard) = shard.as_ref().filter(|s| s.is_leader()) {
            return shard.propose(command.clone()).await;
        }
        let Some(shard_id) = self.fleet.shard_id_for(command.device()) else {
            return Err(ProposeError::NotLeader {
                leader: None,
                leader_addr: None,
            });
        };
        let hint = shard.and_then(|s| s.leader());
        crate::cluster::forward::propose_remote(meta, shard_id, hint, command).await
    }

    /// Commits a command in a given shard, whatever the ring says (a partition move writes the
    /// receiving shard before it serves).
    pub async fn propose_to(
        &self,
        shard_id: ShardId,
        command: TwinCommand,
    ) -> Result<ApplyOutcome, ProposeError> {
        let local = self.fleet.view().replicas.get(&shard_id).cloned();
        if let Some(shard) = local.as_ref().filter(|s| s.is_leader()) {
            return shard.propose(command).await;
        }
        let Some(meta) = &self.meta else {
            return Err(ProposeError::Closed);
        };
        let hint = local.and_then(|s| s.leader());
        crate::cluster::forward::propose_remote(meta, shard_id, hint, &command).await
    }

    /// Waits until this node serves a layout newer than `version`; false after `patience`.
    async fn wait_for_layout_after(&self, version: u64, patience: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + patience;
        while self.fleet.view().layout_version <= version {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// The planner's tasks for a device's session.
    pub fn plan(&self, device: &DeviceKey, now: Timestamp) -> Vec<PlannedTask> {
        self.fleet
            .with_twin(device, |twin, dict| {
                planner::plan(twin, dict, now, &self.plan_config)
            })
            .unwrap_or_default()
    }

    /// How a connection request reaches `device`, as its twin says now: its URL and
    /// credentials, and for a CPE behind a NAT the UDP address it learnt through STUN and its
    /// Jabber ID (read from the parameters, which active notification keeps current).
    pub fn connection_request_target(&self, device: &DeviceKey) -> Option<Target> {
        self.fleet.with_twin(device, |twin, dict| {
            let meta = &twin.meta;
            let root = if meta.root.is_empty() {
                "Device."
            } else {
                meta.root.as_str()
            };
            let param = |name: &str| {
                twin.param_by_path(dict, &format!("{root}ManagementServer.{name}"))
                    .map(|p| p.value.to_string())
                    .unwrap_or_default()
            };
            let credentials = (!meta.connection_request_username.is_empty()).then(|| Credential {
                username: meta.connection_request_username.clone(),
                password: meta.connection_request_password.clone(),
            });
            Target {
                url: meta.connection_request_url.clone(),
                credentials,
                udp_address: param("UDPConnectionRequestAddress"),
                nat_detected: matches!(param("NATDetected").as_str(), "true" | "1"),
                jabber_id: param("ConnReqJabberID"),
            }
        })
    }

    /// Records a connection request's result on the twin when it says something new: a
    /// refusal (401) or an unreachable device is a visible state until a request succeeds.
    pub async fn record_connection_request(
        &self,
        device: &DeviceKey,
        result: &crate::cwmp::connection_request::RequestResult,
    ) {
        let Some((outcome, detail)) = result.outcome() else {
            return;
        };
        let known = self
            .fleet
            .with_twin(device, |twin, _| {
                twin.meta
                    .connection_request_status
                    .as_ref()
                    .is_some_and(|s| s.outcome == outcome && s.detail == detail)
            })
            .unwrap_or(true);
        if known {
            return;
        }
        let command = TwinCommand::ConnectionRequestOutcome {
            device: device.clone(),
            at: Timestamp::now(),
            outcome: outcome.into(),
            detail,
        };
        if let Err(e) = self.propose(command).await {
            debug!(device = %device, error = %e, "connection-request outcome not recorded");
        }
    }

    /// Queues an operation and, if the device was seen recently, wakes it with a connection
    /// request so delivery is immediate. Returns the operation as committed.
    pub async fn enqueue(
        self: &Arc<Self>,
        device: &DeviceKey,
        kind: OperationKind,
        requested_by: &str,
        ttl_ms: Option<u64>,
    ) -> Result<Operation, ProposeError> {
        let ttl_ms = ttl_ms.or(self
            .config
            .twin
            .default_operation_ttl
            .map(|d| d.as_millis() as u64));
        let command = TwinCommand::EnqueueOperation {
            device: device.clone(),
            at: Timestamp::now(),
            kind,
            requested_by: requested_by.to_owned(),
            ttl_ms,
        };
        let outcome = self.propose(command).await?;
        let id = outcome
            .operation
            .ok_or_else(|| ProposeError::Storage("enqueue returned no operation".into()))?;
        let (operation, wake) = self
            .fleet
            .with_twin(device, |twin, _| {
                let op = twin.operation(id).cloned();
                let recent = Timestamp::now().duration_since(twin.meta.last_contact)
                    <= self.requester.recently_seen_window();
                // A live USP link takes the work at once; otherwise a dual-stack device is also
                // woken over CWMP, and whichever channel comes first delivers.
                let mut delivered = false;
                if twin.meta.speaks("usp") {
                    delivered = self.usp_agents.wake(device);
                    if !delivered {
                        // An agent with no live link may still be reachable through its MTP
                        // (a broker): the MTP tries.
                        self.usp_mtps.reach(self, device, &twin.meta.mtp);
                    }
                }
                (op, recent && !delivered && twin.meta.speaks("cwmp"))
            })
            .ok_or_else(|| ProposeError::Storage("twin vanished after enqueue".into()))?;
        if wake && self.requester.enabled() {
            let core = self.clone();
            let device = device.clone();
            tokio::spawn(async move {
                let result = core
                    .requester
                    .request(&device, || core.connection_request_target(&device))
                    .await;
                core.record_connection_request(&device, &result).await;
            });
        }
        operation.ok_or(ProposeError::Storage(
            "operation vanished after enqueue".into(),
        ))
    }
}
