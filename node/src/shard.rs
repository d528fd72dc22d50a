//! One shard replica: an openraft group whose state machine holds the shard's twins and applies
//! committed `TwinCommand`s with the pure `twin::apply` (crates/store). In the embedded mode the
//! group has one voter; in a cluster it has several, on other nodes.
//!
//! Writes go through a group-commit writer: the commands that arrive while an entry is being
//! proposed are batched into the next entry (one fsync for many devices), and a few entries
//! are in flight at once. A proposal is answered only after its entry is committed and applied,
//! which is what lets drivers acknowledge devices safely.

use crate::metrics::Metrics;
use crate::raft::network::{GroupNetwork, PeerChannels};
use crate::raft::service::RaftHost;
use crate::raft::{GroupId, RaftSettings};
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Raft, ServerState};
use radar_core::{DeviceKey, ShardId};
use radar_store::raft::{ShardRaft, TwinBatch};
use radar_store::SledDatabase;
use radar_twin::table::ColdReadError;
use radar_twin::{ApplyError, ApplyOutcome, PathDict, ShardControl, ShardState, Twin, TwinCommand};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tracing::{error, info, warn};

/// Entries one shard has proposed and not yet seen committed. More overlap hides the log
/// flush; the group-commit batch grows while these are out.
const MAX_ENTRIES_IN_FLIGHT: usize = 4;

/// Serializable: a command forwarded to the leader's node comes back with this.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ProposeError {
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error("shard storage failed: {0}")]
    Storage(String),
    #[error("shard is shutting down")]
    Closed,
    /// This replica is not the shard's leader; `leader` is the node id of the one it knows.
    #[error("not the shard leader (leader: {leader:?})")]
    NotLeader {
        leader: Option<u64>,
        leader_addr: Option<String>,
    },
}

/// How a read is served: `Linearizable` confirms leadership with a quorum and waits until the
/// state machine has applied everything committed before the read (openraft's read index);
/// `Stale` reads this replica as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    #[default]
    Linearizable,
    Stale,
}

struct Proposal {
    command: TwinCommand,
    reply: oneshot::Sender<Result<ApplyOutcome, ProposeError>>,
}

/// The store of a node's shard Raft logs (`[raft] log_engine`).
#[derive(Clone, Default)]
pub enum LogBackend {
    /// In the twins' sled database.
    #[default]
    Sled,
    Redb(radar_store::raft::redb_log::RedbLogs),
}

/// Where a shard replica lives and how its group is reached.
pub struct ReplicaContext<'a> {
    pub db: &'a SledDatabase,
    pub logs: LogBackend,
    pub node_id: u64,
    pub settings: &'a RaftSettings,
    pub peers: Arc<PeerChannels>,
    pub host: Arc<RaftHost>,
    pub max_batch: usize,
    pub metrics: Arc<Metrics>,
    /// Parameter paths the shard's secondary index covers (meta fields always are).
    pub indexed_paths: &'a [String],
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("storage: {0}")]
    Storage(#[from] radar_store::StoreError),
    #[error(transparent)]
    Settings(#[from] crate::raft::SettingsError),
    #[error("raft: {0}")]
    Raft(String),
}

pub struct Shard {
    pub id: ShardId,
    pub group: GroupId,
    node_id: u64,
    state: Arc<RwLock<ShardState>>,
    raft: Raft<ShardRaft>,
    proposals: mpsc::Sender<Proposal>,
    poisoned: Arc<AtomicBool>,
    /// This replica's audit records (see `crate::audit`).
    pub audit: radar_store::raft::audit_log::AuditReader,
}

impl Shard {
    /// Opens this node's replica of shard `id` from its store, joins its Raft group on the
    /// node's transport and starts the writer. The group is not initialized here: see
    /// [`Shard::bootstrap`].
    pub async fn open(id: ShardId, ctx: ReplicaContext<'_>) -> Result<Arc<Self>, OpenError> {
        let group = GroupId::shard(id);
        let state_machine = ctx.db.raft_state_machine(id.0, group.0)?;
        let state = state_machine.state.clone();
        let audit = state_machine.audit_reader();
        let twins_now = {
            let mut state = state.write().unwrap_or_else(|e| e.into_inner());
            radar_twin::index::FieldIndex::open(ctx.indexed_paths, &mut state)
                .map_err(|e| OpenError::Storage(e.into()))?;
            state.twins.len()
        };
        ctx.metrics.twins.add(twins_now as i64);
        let config = ctx.settings.openraft_config(&group.to_string())?;
        let network = GroupNetwork::new(group, ctx.peers.clone());
        let config = Arc::new(config);
        let raft = match &ctx.logs {
            LogBackend::Sled => {
                let log = ctx.db.raft_log(group.0)?;
                Raft::new(ctx.node_id, config, network, log, state_machine).await
            }
            LogBackend::Redb(logs) => {
                let log = logs.group(group.0);
                Raft::new(ctx.node_id, config, network, log, state_machine).await
            }
        }
        .map_err(|e| OpenError::Raft(e.to_string()))?;
        ctx.host.register(group, Arc::new(raft.clone()));
        let max_batch = ctx.max_batch.max(1);
        let (tx, rx) = mpsc::channel(max_batch * 4);
        let poisoned = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            raft: raft.clone(),
            state: state.clone(),
            max_batch,
            metrics: ctx.metrics,
            poisoned: poisoned.clone(),
            in_flight: Arc::new(Semaphore::new(MAX_ENTRIES_IN_FLIGHT)),
            twins_counted: Arc::new(AtomicI64::new(twins_now as i64)),
        };
        tokio::spawn(writer.run(rx));
        Ok(Arc::new(Self {
            id,
            group,
            node_id: ctx.node_id,
            state,
            raft,
            proposals: tx,
            poisoned,
            audit,
        }))
    }

    /// Makes `voters` the group's first membership if it has none yet (a pristine group), then
    /// waits until the group has a leader. Safe to call on every start: openraft refuses a
    /// second initialization and this treats that as done.
    ///
    /// `preferred` is the voter the layout lists first: it initializes at once and so usually
    /// becomes the first leader, which spreads leadership over the nodes as the layout spreads
    /// first voters. The others initialize too (with the same membership, which openraft
    /// allows) only if the group is still pristine after `patience`, so a missing preferred
    /// voter cannot keep the shard leaderless.
    pub async fn bootstrap(
        &self,
        voters: BTreeMap<u64, BasicNode>,
        preferred: bool,
        patience: Duration,
        wait: Duration,
    ) -> Result<(), OpenError> {
        let single_voter_is_me = voters.len() == 1 && voters.contains_key(&self.node_id);
        if !self.raft.is_initialized().await.map_err(raft_error)? {
            if !preferred {
                let _ = self
                    .raft
                    .wait(Some(patience))
                    .metrics(
                        |m| {
                            m.membership_config
                                .membership()
                                .voter_ids()
                                .next()
                                .is_some()
                        },
                        "membership from the preferred voter",
                    )
                    .await;
            }
            if !self.raft.is_initialized().await.map_err(raft_error)? {
                match self.raft.initialize(voters).await {
                    Ok(()) | Err(RaftError::APIError(_)) => {}
                    Err(e) => return Err(raft_error(e)),
                }
            }
        } else if single_voter_is_me {
            // A lone voter that restarts would otherwise wait a whole election timeout before
            // it stands for election.
            self.raft.trigger().elect().await.map_err(raft_error)?;
        }
        self.raft
            .wait(Some(wait))
            .metrics(|m| m.current_leader.is_some(), "shard has a leader")
            .await
            .map_err(|e| OpenError::Raft(format!("{}: no leader: {e}", self.group)))?;
        if single_voter_is_me {
            // Reads right after start see everything committed before the restart.
            self.raft
                .ensure_linearizable()
                .await
                .map_err(|e| OpenError::Raft(e.to_string()))?;
        }
        info!(shard = %self.id, leader = ?self.leader(), "shard ready");
        Ok(())
    }

    /// Applies a command through Raft and waits until it is committed and applied.
    pub async fn propose(&self, command: TwinCommand) -> Result<ApplyOutcome, ProposeError> {
        if self.poisoned.load(Ordering::Relaxed) {
            return Err(ProposeError::Storage(
                "shard stopped after a storage failure".into(),
            ));
        }
        let (reply, rx) = oneshot::channel();
        self.proposals
            .send(Proposal { command, reply })
            .await
            .map_err(|_| ProposeError::Closed)?;
        rx.await.map_err(|_| ProposeError::Closed)?
    }

    /// Commits a shard-level command of a partition move (freeze, release) on its own entry,
    /// outside the group-commit batches; answers once it is applied here.
    pub async fn propose_control(&self, control: ShardControl) -> Result<(), ProposeError> {
        let written = self
            .raft
            .client_write(TwinBatch {
                commands: Vec::new(),
                control: vec![control],
            })
            .await;
        match written {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(ProposeError::NotLeader {
                    leader: f.leader_id,
                    leader_addr: f.leader_node.map(|n| n.addr),
                })
            }
            Err(other) => Err(ProposeError::Storage(other.to_string())),
        }
    }

    /// Waits until a read at `consistency` may be served from this replica.
    pub async fn read_barrier(&self, consistency: Consistency) -> Result<(), ProposeError> {
        if consistency == Consistency::Stale {
            return Ok(());
        }
        self.raft
            .ensure_linearizable()
            .await
            .map(|_| ())
            .map_err(|e| match e {
                RaftError::APIError(openraft::error::CheckIsLeaderError::ForwardToLeader(f)) => {
                    ProposeError::NotLeader {
                        leader: f.leader_id,
                        leader_addr: f.leader_node.map(|n| n.addr),
                    }
                }
                other => ProposeError::Storage(other.to_string()),
            })
    }

    pub fn read(&self) -> RwLockReadGuard<'_, ShardState> {
        // A poisoned lock means a panic mid-apply; apply mutates only after validation, so the
        // state is the last consistent one and serving reads is safe.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the shard's state outside Raft: only for what is local to this replica (index
    /// administration), never for twins, which change only through committed commands.
    pub fn with_state_mut<R>(&self, f: impl FnOnce(&mut ShardState) -> R) -> R {
        f(&mut self.state.write().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn with_twin<R>(
        &self,
        key: &DeviceKey,
        f: impl FnOnce(&Twin, &PathDict) -> R,
    ) -> Option<R> {
        let state = self.read();
        let twin = readable(state.twins.get(key))?;
        Some(f(&twin, &state.dict))
    }

    pub fn healthy(&self) -> bool {
        !self.poisoned.load(Ordering::Relaxed)
    }

    /// The node id of the leader this replica knows of.
    pub fn leader(&self) -> Option<u64> {
        self.raft.metrics().borrow().current_leader
    }

    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    pub fn raft(&self) -> &Raft<ShardRaft> {
        &self.raft
    }

    /// Stops the group (the node is shutting down or drops this replica).
    pub async fn shutdown(&self, host: &RaftHost) {
        host.unregister(self.group);
        if let Err(e) = self.raft.shutdown().await {
            warn!(shard = %self.id, error = %e, "raft shutdown");
        }
    }
}

/// A twin read from the table; a cold twin disk could not give back is logged and skipped
/// (the shard's writes stop on it at their next use, see the state machine).
pub fn readable<T>(read: Result<Option<T>, ColdReadError>) -> Option<T> {
    match read {
        Ok(found) => found,
        Err(e) => {
            error!(error = %e, "twin unreadable from disk");
            None
        }
    }
}

/// Every twin of a shard in key order, cold ones streamed from disk; a read error is logged
/// and ends the pass.
pub fn all_twins(state: &ShardState) -> impl Iterator<Item = Cow<'_, Twin>> + '_ {
    state.twins.iter().map_while(|t| readable(t.map(Some)))
}

fn raft_error(e: impl std::fmt::Display) -> OpenError {
    OpenError::Raft(e.to_string())
}

struct Writer {
    raft: Raft<ShardRaft>,
    state: Arc<RwLock<ShardState>>,
    max_batch: usize,
    metrics: Arc<Metrics>,
    poisoned: Arc<AtomicBool>,
    in_flight: Arc<Semaphore>,
    /// Twins last added to the node's gauge by this shard.
    twins_counted: Arc<AtomicI64>,
}

impl Writer {
    async fn run(self, mut rx: mpsc::Receiver<Proposal>) {
        let mut batch = Vec::with_capacity(self.max_batch);
        loop {
            // Wait for room in the pipeline first, so commands keep gathering into the next
            // batch while the previous entries are being committed.
            let Ok(permit) = self.in_flight.clone().acquire_owned().await else {
                return;
            };
            if rx.recv_many(&mut batch, self.max_batch).await == 0 {
                return;
            }
            self.propose(std::mem::take(&mut batch), permit).await;
        }
    }

    async fn propose(&self, batch: Vec<Proposal>, permit: tokio::sync::OwnedSemaphorePermit) {
        let started = std::time::Instant::now();
        let mut commands = Vec::with_capacity(batch.len());
        let mut replies = Vec::with_capacity(batch.len());
        for proposal in batch {
            self.metrics
                .twin_commands
                .with_label_values(&[command_kind(&proposal.command)])
                .inc();
            commands.push(proposal.command);
            replies.push(proposal.reply);
        }
        let size = commands.len();
        let responder = match self
            .raft
            .client_write_ff(TwinBatch {
                commands,
                control: Vec::new(),
            })
            .await
        {
            Ok(responder) => responder,
            Err(fatal) => {
                error!(error = %fatal, "shard raft stopped; refusing further writes");
                self.poisoned.store(true, Ordering::Relaxed);
                answer_all(replies, Err(ProposeError::Storage(fatal.to_string())));
                return;
            }
        };
        let metrics = self.metrics.clone();
        let state = self.state.clone();
        let twins_counted = self.twins_counted.clone();
        let poisoned = self.poisoned.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let answer = match responder.await {
                Ok(Ok(written)) => Ok(written.data.results),
                Ok(Err(ClientWriteError::ForwardToLeader(f))) => Err(ProposeError::NotLeader {
                    leader: f.leader_id,
                    leader_addr: f.leader_node.map(|n| n.addr),
                }),
                Ok(Err(other)) => Err(ProposeError::Storage(other.to_string())),
                Err(_) => {
                    // openraft dropped the responder: the core stopped (a storage failure
                    // or shutdown). Memory may now be ahead of disk; refuse further writes.
                    poisoned.store(true, Ordering::Relaxed);
                    Err(ProposeError::Closed)
                }
            };
            metrics.twin_commits.inc();
            metrics.twin_batch_size.observe(size as f64);
            metrics
                .twin_commit_seconds
                .observe(started.elapsed().as_secs_f64());
            let twins_now = state.read().unwrap_or_else(|e| e.into_inner()).twins.len() as i64;
            let before = twins_counted.swap(twins_now, Ordering::Relaxed);
            metrics.twins.add(twins_now - before);
            match answer {
                Ok(results) if results.len() == replies.len() => {
                    for (reply, result) in replies.into_iter().zip(results) {
                        send(reply, result.map_err(ProposeError::from));
                    }
                }
                Ok(results) => {
                    let message = format!(
                        "entry applied {} results for {} commands",
                        results.len(),
                        replies.len()
                    );
                    answer_all(replies, Err(ProposeError::Storage(message)));
                }
                Err(e) => answer_all(replies, Err(e)),
            }
        });
    }
}

fn answer_all(
    replies: Vec<oneshot::Sender<Result<ApplyOutcome, ProposeError>>>,
    answer: Result<ApplyOutcome, ProposeError>,
) {
    for reply in replies {
        send(reply, answer.clone());
    }
}

fn send(
    reply: oneshot::Sender<Result<ApplyOutcome, ProposeError>>,
    answer: Result<ApplyOutcome, ProposeError>,
) {
    if reply.send(answer).is_err() {
        warn!("proposer went away before its commit was acknowledged");
    }
}

fn command_kind(command: &TwinCommand) -> &'static str {
    match command {
        TwinCommand::Inform { .. } => "inform",
        TwinCommand::ReportValues { .. } => "report_values",
        TwinCommand::ReportNames { .. } => "report_names",
        TwinCommand::EnqueueOperation { .. } => "enqueue_operation",
        TwinCommand::MarkSent { .. } => "mark_sent",
        TwinCommand::CompleteOperation { .. } => "complete_operation",
        TwinCommand::RequeueOperation { .. } => "requeue_operation",
        TwinCommand::CancelOperation { .. } => "cancel_operation",
        TwinCommand::TransferComplete { .. } => "transfer_complete",
        TwinCommand::NotificationsConfigured { .. } => "notifications_configured",
        TwinCommand::ConnectionRequestCredentials { .. } => "connection_request_credentials",
        TwinCommand::RecordEvent { .. } => "record_event",
        TwinCommand::UspConnected { .. } => "usp_connected",
        TwinCommand::UspDisconnected { .. } => "usp_disconnected",
        TwinCommand::UspProtocol { .. } => "usp_protocol",
        TwinCommand::ReportSnapshot { .. } => "report_snapshot",
        TwinCommand::RemoveObject { .. } => "remove_object",
        TwinCommand::ImportTwin { .. } => "import_twin",
        TwinCommand::DeviceEvent { .. } => "device_event",
        TwinCommand::UspSubscriptions { .. } => "usp_subscriptions",
        TwinCommand::KnownConnectionRequestCredentials { .. } => "known_cr_credentials",
        TwinCommand::ConnectionRequestOutcome { .. } => "connection_request_outcome",
        TwinCommand::NotificationsFailed { .. } => "notifications_failed",
        TwinCommand::RecordQuirk { .. } => "record_quirk",
        // Counted as the change they carry.
        TwinCommand::Audited { command, .. } => command_kind(&command.0),
        TwinCommand::Audit { .. } => "audit",
    }
}
