//! Webhooks: every incident change, delivered to the configured targets, durably.
//!
//! # Design
//!
//! The incident change log is already an ordered, durable record of every change. Each target
//! keeps a cursor into it, and an outbox row per change it owes, in the incident store's file
//! (`cairn_correlate::incident::outbox`). One tokio task per target ([`dispatch`]):
//!
//! 1. reads the log after its cursor, keeps the changes its filters want (`min_level`, `rules`,
//!    `events`), and records them as `pending` deliveries together with the new cursor, in one
//!    transaction (so a crash neither skips nor doubles a change);
//! 2. sends its oldest pending delivery (by update sequence) and nothing else until that one is
//!    delivered or dead: deliveries to a target are in change order, so change N+1 of an
//!    incident never arrives before change N;
//! 3. marks it `delivered` after a 2xx; otherwise records the attempt's error and retries after
//!    `backoff_base_ms × 2^(attempts−1)` (at most `backoff_max_ms`, and at least a 429/503's
//!    `Retry-After`), until `max_attempts`, then marks it `dead`. A 4xx other than 408, 425 and
//!    429 is a refusal retrying cannot fix: dead at once. `POST /api/v1/webhooks/{name}/retry`
//!    revives dead deliveries.
//!
//! It wakes on the incident service's change feed, on a retry coming due, or on the retry
//! endpoint; it never polls. Store calls run on the blocking pool, the HTTP request on the
//! runtime (reqwest, rustls): nothing here blocks ingest or the incident thread.
//!
//! # Delivery guarantee
//!
//! At least once on the wire, exactly once in the common case. A graceful stop (SIGTERM) lets
//! the attempt in flight finish and records its outcome, so nothing is sent twice; pending
//! deliveries go out after the restart. A crash (SIGKILL, power loss) between a receiver's 2xx
//! and the mark resends that one delivery (per target, at most the one in flight) after the
//! restart, with the same `X-Cairn-Delivery` id and `update_seq`: receivers dedupe on either.
//!
//! # Wire format
//!
//! `POST` to the target's URL, `Content-Type: application/json`, with headers
//! `X-Cairn-Delivery` (the outbox row id, stable across retries and restarts),
//! `X-Cairn-Event` (`open`, `update`, `acknowledge`, `resolve`), `X-Cairn-Timestamp` and, when
//! the target has a secret, `X-Cairn-Signature` ([`signature`]). Bodies: [`payload`].
//! Redirects are not followed (a 3xx is a failed attempt).

pub mod config;
mod dispatch;
pub mod payload;
pub mod signature;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cairn_correlate::incident::{
    Delivery, DeliveryStatus, IncidentError, IncidentHandle, IncidentId, Outbox, TargetSummary,
};
use cairn_ingest::Timestamp;
use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use config::{WebhookTarget, WebhooksConfig, WebhooksSection};

/// How often old delivered and dead rows are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Counters of one target since the process started.
#[derive(Debug, Default)]
struct TargetCounters {
    delivered: AtomicU64,
    failed_attempts: AtomicU64,
    dead: AtomicU64,
}

/// A snapshot of a target's counters.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct TargetCounts {
    /// Deliveries the receiver answered 2xx.
    pub delivered: u64,
    /// Attempts that failed (timeouts, connection errors, non-2xx), final or not.
    pub failed_attempts: u64,
    /// Deliveries given up (attempts exhausted or refused for good).
    pub dead: u64,
}

#[derive(Debug)]
struct TargetState {
    target: WebhookTarget,
    /// Wakes the target's task (the retry endpoint).
    wake: Notify,
    counters: TargetCounters,
}

/// The webhook targets, their outbox and counters. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Webhooks {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    outbox: Outbox,
    targets: Vec<TargetState>,
    history_retention: Duration,
}

/// Why a webhook API call failed.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("no webhook target `{0}`")]
    UnknownTarget(String),
    #[error(transparent)]
    Store(#[from] IncidentError),
}

impl Webhooks {
    /// Opens the outbox in the incident store at `store_path` (which must have been opened by
    /// the incident store first), forgets the cursors of targets no longer configured, and
    /// prunes old history. Blocking.
    ///
    /// # Errors
    /// The outbox cannot be opened or written.
    pub fn open(config: WebhooksConfig, store_path: &Path) -> Result<Webhooks, IncidentError> {
        let outbox = Outbox::open(store_path)?;
        let names: Vec<&str> = config
            .targets
            .iter()
            .map(|target| target.name.as_str())
            .collect();
        let forgotten = outbox.retain_targets(&names)?;
        if forgotten > 0 {
            tracing::info!(
                forgotten,
                "webhook targets no longer configured were forgotten"
            );
        }
        let webhooks = Webhooks {
            inner: Arc::new(Inner {
                outbox,
                targets: config
                    .targets
                    .into_iter()
                    .map(|target| TargetState {
                        target,
                        wake: Notify::new(),
                        counters: TargetCounters::default(),
                    })
                    .collect(),
                history_retention: config.history_retention,
            }),
        };
        webhooks.prune()?;
        Ok(webhooks)
    }

    /// Starts one delivery task per target, and the pruning task, in `tasks`. They stop when
    /// `shutdown` is cancelled, after the attempt in flight (bounded by its timeout) is
    /// recorded.
    pub fn spawn(
        &self,
        incidents: &IncidentHandle,
        shutdown: &CancellationToken,
        tasks: &mut tokio::task::JoinSet<()>,
    ) {
        for index in 0..self.inner.targets.len() {
            tasks.spawn(dispatch::run(
                self.clone(),
                index,
                incidents.clone(),
                shutdown.clone(),
            ));
            tracing::info!(
                target_name = %self.inner.targets[index].target.name,
                "webhook target started"
            );
        }
        if !self.inner.targets.is_empty() {
            let webhooks = self.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move {
                loop {
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(PRUNE_EVERY) => {}
                    }
                    let pruner = webhooks.clone();
                    match tokio::task::spawn_blocking(move || pruner.prune()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(error)) => tracing::error!(%error, "cannot prune webhook history"),
                        Err(error) => tracing::error!(%error, "webhook prune task failed"),
                    }
                }
            });
        }
    }

    fn prune(&self) -> Result<(), IncidentError> {
        let now = Timestamp::now();
        let retention = i64::try_from(self.inner.history_retention.as_nanos()).unwrap_or(i64::MAX);
        let pruned = self
            .inner
            .outbox
            .prune(Timestamp(now.0.saturating_sub(retention)))?;
        if pruned > 0 {
            tracing::info!(pruned, "old webhook deliveries pruned");
        }
        Ok(())
    }

    fn state(&self, name: &str) -> Result<&TargetState, WebhookError> {
        self.inner
            .targets
            .iter()
            .find(|state| state.target.name == name)
            .ok_or_else(|| WebhookError::UnknownTarget(name.to_string()))
    }

    /// The configured targets, in config order.
    pub fn targets(&self) -> impl Iterator<Item = &WebhookTarget> {
        self.inner.targets.iter().map(|state| &state.target)
    }

    /// The target's figures from the outbox. Blocking.
    pub fn summary(&self, name: &str) -> Result<TargetSummary, WebhookError> {
        self.state(name)?;
        Ok(self.inner.outbox.summary(name)?)
    }

    /// The target's deliveries, newest change first. Blocking.
    pub fn deliveries(
        &self,
        name: &str,
        status: Option<DeliveryStatus>,
        limit: usize,
    ) -> Result<Vec<Delivery>, WebhookError> {
        self.state(name)?;
        Ok(self.inner.outbox.deliveries(name, status, limit)?)
    }

    /// Deliveries of an incident's changes, to every target. Blocking.
    pub fn deliveries_for_incident(
        &self,
        incident: IncidentId,
        limit: usize,
    ) -> Result<Vec<Delivery>, IncidentError> {
        self.inner.outbox.deliveries_for_incident(incident, limit)
    }

    /// Puts the target's dead deliveries back to pending and wakes its task; returns how
    /// many. Blocking.
    pub fn retry_dead(&self, name: &str) -> Result<usize, WebhookError> {
        let state = self.state(name)?;
        let revived = self.inner.outbox.retry_dead(name, Timestamp::now())?;
        state.wake.notify_one();
        Ok(revived)
    }

    /// Counters per target since the process started.
    pub fn counts(&self) -> BTreeMap<String, TargetCounts> {
        self.inner
            .targets
            .iter()
            .map(|state| {
                let counters = &state.counters;
                (
                    state.target.name.clone(),
                    TargetCounts {
                        delivered: counters.delivered.load(Ordering::Relaxed),
                        failed_attempts: counters.failed_attempts.load(Ordering::Relaxed),
                        dead: counters.dead.load(Ordering::Relaxed),
                    },
                )
            })
            .collect()
    }
}
