//! One shard: its twins in memory, a single writer that applies `TwinCommand`s with the pure
//! `twin::apply`, and group commit to the shard store. A proposal is answered only after its
//! batch is durable, which is what lets drivers acknowledge devices safely.
//!
//! In the embedded mode this is the whole replication story (a single voter). The Raft-replicated
//! shard replaces the writer with an openraft group whose state machine calls the same `apply`.

use crate::metrics::Metrics;
use radar_core::{DeviceKey, ShardId};
use radar_store::{Batch, ShardStore, StoreError};
use radar_twin::{apply, ApplyError, ApplyOutcome, PathDict, ShardState, Twin, TwinCommand};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, warn};

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ProposeError {
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error("shard storage failed: {0}")]
    Storage(String),
    #[error("shard is shutting down")]
    Closed,
}

struct Proposal {
    command: TwinCommand,
    reply: oneshot::Sender<Result<ApplyOutcome, ProposeError>>,
}

pub struct Shard {
    pub id: ShardId,
    state: Arc<RwLock<ShardState>>,
    proposals: mpsc::Sender<Proposal>,
    poisoned: Arc<AtomicBool>,
}

impl Shard {
    /// Loads the shard from its store and starts its writer.
    pub fn open(
        id: ShardId,
        store: Arc<dyn ShardStore>,
        max_batch: usize,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, StoreError> {
        let loaded = store.load()?;
        let mut state = ShardState {
            dict: PathDict::from_templates(loaded.templates),
            ..Default::default()
        };
        for twin in loaded.twins {
            state.twins.insert(twin.key.clone(), twin);
        }
        metrics.twins.add(state.twins.len() as i64);
        let state = Arc::new(RwLock::new(state));
        let (tx, rx) = mpsc::channel(max_batch.max(1) * 4);
        let poisoned = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            state: state.clone(),
            store,
            max_batch: max_batch.max(1),
            metrics,
            poisoned: poisoned.clone(),
        };
        tokio::spawn(writer.run(rx));
        Ok(Arc::new(Self {
            id,
            state,
            proposals: tx,
            poisoned,
        }))
    }

    /// Applies a command and waits until it is durable.
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

    pub fn read(&self) -> RwLockReadGuard<'_, ShardState> {
        // A poisoned lock means a writer panicked mid-apply; the state is still the last
        // consistent one because apply mutates only after validation. Serving reads is safe.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn with_twin<R>(
        &self,
        key: &DeviceKey,
        f: impl FnOnce(&Twin, &PathDict) -> R,
    ) -> Option<R> {
        let state = self.read();
        state.twins.get(key).map(|t| f(t, &state.dict))
    }

    pub fn healthy(&self) -> bool {
        !self.poisoned.load(Ordering::Relaxed)
    }
}

struct Writer {
    state: Arc<RwLock<ShardState>>,
    store: Arc<dyn ShardStore>,
    max_batch: usize,
    metrics: Arc<Metrics>,
    poisoned: Arc<AtomicBool>,
}

impl Writer {
    async fn run(self, mut rx: mpsc::Receiver<Proposal>) {
        let mut batch = Vec::with_capacity(self.max_batch);
        while rx.recv_many(&mut batch, self.max_batch).await > 0 {
            self.commit(std::mem::take(&mut batch)).await;
        }
    }

    /// Applies a batch in order, persists every touched twin once, flushes once, then answers.
    async fn commit(&self, batch: Vec<Proposal>) {
        let started = std::time::Instant::now();
        let mut results = Vec::with_capacity(batch.len());
        let (encoded, twins_before, twins_after) = {
            let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
            let twins_before = state.twins.len();
            let first_template_id = state.dict.len() as u32;
            let mut touched = BTreeSet::new();
            for proposal in &batch {
                self.metrics
                    .twin_commands
                    .with_label_values(&[command_kind(&proposal.command)])
                    .inc();
                let result = apply(&mut state, &proposal.command).map_err(ProposeError::from);
                if result.is_ok() {
                    touched.insert(proposal.command.device().clone());
                }
                results.push(result);
            }
            let new_templates: Vec<Box<str>> =
                state.dict.templates()[first_template_id as usize..].to_vec();
            let twins: Result<Vec<_>, _> = touched
                .iter()
                .filter_map(|k| state.twins.get_mut(k).map(radar_store::encode_changes))
                .collect();
            (
                (first_template_id, new_templates, twins),
                twins_before,
                state.twins.len(),
            )
        };
        self.metrics
            .twins
            .add(twins_after as i64 - twins_before as i64);
        let store = self.store.clone();
        let (first_template_id, new_templates, twins) = encoded;
        let outcome = tokio::task::spawn_blocking(move || {
            let batch = Batch {
                first_template_id,
                new_templates: &new_templates,
                twins: twins?,
                deleted: vec![],
            };
            store.write(&batch)?;
            store.flush()
        })
        .await;
        let durable = match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(format!("storage task failed: {e}")),
        };
        if let Err(message) = &durable {
            // Memory is now ahead of disk: stop accepting writes rather than acknowledge
            // anything that might not survive a restart.
            error!(%message, "shard storage failed; refusing further writes");
            self.poisoned.store(true, Ordering::Relaxed);
        }
        self.metrics.twin_commits.inc();
        self.metrics.twin_batch_size.observe(batch.len() as f64);
        self.metrics
            .twin_commit_seconds
            .observe(started.elapsed().as_secs_f64());
        for (proposal, result) in batch.into_iter().zip(results) {
            let answer = match (&durable, result) {
                (Err(message), _) => Err(ProposeError::Storage(message.clone())),
                (Ok(()), result) => result,
            };
            if proposal.reply.send(answer).is_err() {
                warn!("proposer went away before its commit was acknowledged");
            }
        }
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
        TwinCommand::DeviceEvent { .. } => "device_event",
    }
}
