//! The live correlation stage: one thread between the parse workers and the correlation engine,
//! which puts observation batches back into WAL order and checkpoints the engine's state with
//! the alerts it produced.
//!
//! ```text
//! parse workers ──Record{range, rule set, ObservationBatch}──► sequencer (WAL order) ──► Engine
//! indexer ───────Skip{range}──────────────────────────────────►     │                      │ alerts
//!                                                                   ▼                      ▼
//!                          checkpoint { alerts, position P, engine snapshot } ──► incident store
//!                                                                   (one SQLite transaction)
//! ```
//!
//! # The consistent cut
//!
//! Every WAL record reaches the stage exactly once per run, as a `Record` (its observations,
//! detection alerts and latest event time, possibly none) from whichever worker parsed it, or as
//! a `Skip` (appended but never queued, or a gap, forwarded by the indexer). Workers finish out
//! of order; the stage's [`Sequencer`] releases records in WAL order, so at any moment
//! `P = sequencer.next()` splits the WAL in two: every record before P has been submitted to
//! the engine, none after it has. Records before the position the stage resumed at are dropped
//! by the sequencer (their alerts are in the store already).
//!
//! A **checkpoint** at P: [`Engine::snapshot`] (a barrier through the router and every shard:
//! the state after exactly the records before P, and every alert they produced has been sent),
//! then every alert received since the previous checkpoint and the snapshot go to the incident
//! service, which commits the incident changes, P and the snapshot **in one transaction**
//! ([`cairn_correlate::incident::checkpoint`]). Hence the invariant: *the store holds the alerts
//! of exactly the records before its checkpoint's P, and the snapshot is the engine's state at
//! that P.* On start the engine is restored from the snapshot and correlation resumes at P, so a
//! crash at any point yields the alerts of an uninterrupted run (given the same records; see
//! "Idle streams" for the one exception). The cost: alerts reach the incident store at the next
//! checkpoint, at most [`CheckpointPolicy::alert_delay`] after they fire.
//!
//! Checkpoints happen when alerts have waited [`CheckpointPolicy::alert_delay`], when P has
//! moved and [`CheckpointPolicy::snapshot_interval`] passed, when [`MAX_PENDING_ALERTS`] pile
//! up, and at shutdown. One is in flight at a time; the durable P (published through
//! [`CorrelationStage::durable_position`]) moves when the store has committed, and the WAL keeps
//! every segment from `min(index position, durable P)` on. A failed commit keeps its alerts for
//! the next checkpoint (the store wrote nothing).
//!
//! # Idle streams and determinism
//!
//! When no record arrives for [`IDLE_TICK`], the engine is told the wall clock, which moves the
//! watermark on so windows close and absences fire without new events. That input depends on
//! timing, not on the WAL: a restart measures idleness afresh, so if the watermark was moved by
//! idleness before a crash, the replay may close a window at another point. Inputs whose
//! windows close by event time (newer events arriving within the allowed lateness) give the same
//! incidents across crashes whatever the timing.
//!
//! # Reloads
//!
//! The engine is kept across a reload that leaves the correlation rules as they were. When they
//! change, the old engine is stopped *without* ending its input (open windows are dropped, not
//! fired) and a new one starts; the next checkpoint stores the new engine's state. A stored
//! snapshot taken under other rules is not restored (logged): correlation starts empty at P.
//!
//! # Shutdown
//!
//! [`CorrelationStage::shutdown`] (after every worker has stopped): a last checkpoint, waited
//! for, then the engine stops without firing what is not due.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cairn_correlate::incident::{CorrelationCheckpoint, IncidentError, IncidentHandle};
use cairn_correlate::{Alert, Engine, EngineConfig, EngineStats, ObservationBatch};
use cairn_ingest::Timestamp;
use cairn_ingest::wal::{Appended, Position, Sequencer, Wal};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError, bounded, unbounded};

use crate::signatures::RuleSet;

/// How long without a record before the engine is told the wall-clock time.
pub const IDLE_TICK: Duration = Duration::from_millis(250);
/// How often the published figures are refreshed.
const STATS_EVERY: Duration = Duration::from_millis(500);
/// Alerts held for a checkpoint beyond which one is taken at once.
pub const MAX_PENDING_ALERTS: usize = 65_536;
/// Longest wait for input before the stage looks at its timers.
const POLL: Duration = Duration::from_millis(50);

/// What reaches the stage.
#[derive(Debug)]
pub enum CorrelationInput {
    /// The observations of one WAL record (possibly none), with the rule set that made them.
    Record {
        range: Appended,
        set: Arc<RuleSet>,
        batch: ObservationBatch,
    },
    /// A WAL range that will never arrive as a record.
    Skip(Appended),
    /// Every worker has stopped: checkpoint and stop.
    Finish,
}

/// When the stage checkpoints.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointPolicy {
    /// Longest time the WAL position may move without a snapshot (`[correlation]
    /// snapshot_interval_secs`).
    pub snapshot_interval: Duration,
    /// Longest time an alert waits for the checkpoint that brings it to the incident store
    /// (`[correlation] alert_delay_ms`).
    pub alert_delay: Duration,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy {
            snapshot_interval: Duration::from_secs(2),
            alert_delay: Duration::from_millis(1000),
        }
    }
}

/// Where and how the stage starts.
#[derive(Debug, Clone)]
pub struct CorrelationSetup {
    pub engine: EngineConfig,
    pub checkpoints: CheckpointPolicy,
    /// Where checkpoints (with the alerts in them) are committed.
    pub incidents: IncidentHandle,
    /// Records before this position are already reflected in the incident store.
    pub resume_at: Position,
    /// The engine snapshot stored with `resume_at`, restored when the first record's rule set
    /// has the same correlation fingerprint.
    pub snapshot: Option<Vec<u8>>,
    /// Synced before each checkpoint: a checkpoint never names a position the WAL could lose.
    pub wal: Arc<Wal>,
}

/// The running stage.
#[derive(Debug)]
pub struct CorrelationStage {
    input: Sender<CorrelationInput>,
    thread: Option<JoinHandle<()>>,
    probe: CorrelationProbe,
    durable: Arc<AtomicU64>,
}

/// Reads the engine's latest figures from anywhere.
#[derive(Debug, Clone, Default)]
pub struct CorrelationProbe {
    figures: Arc<Mutex<EngineStats>>,
}

impl CorrelationProbe {
    pub fn stats(&self) -> EngineStats {
        self.figures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn publish(&self, stats: EngineStats) {
        *self.figures.lock().unwrap_or_else(PoisonError::into_inner) = stats;
    }
}

impl CorrelationStage {
    /// Starts the stage's thread; the engine itself starts with the first record. `queue`
    /// bounds the inputs waiting in front of the stage (workers block when it is full).
    pub fn start(setup: CorrelationSetup, queue: usize) -> std::io::Result<CorrelationStage> {
        let (input, receiver) = bounded::<CorrelationInput>(queue.max(1));
        let probe = CorrelationProbe::default();
        let durable = Arc::new(AtomicU64::new(setup.resume_at.0));
        let (engine_alerts, alerts) = unbounded();
        let mut stage = Stage {
            sequencer: Sequencer::new(setup.resume_at),
            checkpointed: setup.resume_at,
            stored_snapshot: setup.snapshot,
            engine_config: setup.engine,
            policy: setup.checkpoints,
            incidents: setup.incidents,
            wal: setup.wal,
            engine_alerts,
            alerts,
            running: None,
            pending: Vec::new(),
            in_flight: None,
            last_checkpoint: Instant::now(),
            durable: Arc::clone(&durable),
            probe: probe.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("cairn-correlate".to_string())
            .spawn(move || stage.run(&receiver))?;
        Ok(CorrelationStage {
            input,
            thread: Some(thread),
            probe,
            durable,
        })
    }

    /// The sender a parse worker (records) or the indexer (skips) uses.
    pub fn input(&self) -> Sender<CorrelationInput> {
        self.input.clone()
    }

    pub fn probe(&self) -> CorrelationProbe {
        self.probe.clone()
    }

    /// The position of the latest committed checkpoint: the WAL must keep every record from it.
    pub fn durable_position(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.durable)
    }

    /// Takes a last checkpoint and stops the engine (call after joining the workers, so that
    /// every record they parsed is in front of the stop) and waits for the stage's thread.
    pub fn shutdown(mut self) {
        let _ = self.input.send(CorrelationInput::Finish);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the correlation stage panicked");
        }
    }
}

struct Running {
    fingerprint: u64,
    engine: Engine,
}

/// A checkpoint handed to the incident service and not yet committed.
struct InFlight {
    outcome: Receiver<Result<(), IncidentError>>,
    /// Kept to be sent again should the commit fail.
    alerts: Vec<Alert>,
    position: Position,
}

struct Stage {
    engine_config: EngineConfig,
    policy: CheckpointPolicy,
    incidents: IncidentHandle,
    wal: Arc<Wal>,
    /// The engine's alert channel: unbounded, drained after every input (the engine's output
    /// per input is bounded by its input), so `Engine::snapshot` never waits on it.
    engine_alerts: Sender<Alert>,
    alerts: Receiver<Alert>,
    running: Option<Running>,
    /// Restored into the first engine when its fingerprint matches; kept as the checkpoint's
    /// snapshot until an engine runs.
    stored_snapshot: Option<Vec<u8>>,
    sequencer: Sequencer<(Arc<RuleSet>, ObservationBatch)>,
    /// Alerts of records before `sequencer.next()` not handed to a checkpoint yet.
    pending: Vec<Alert>,
    in_flight: Option<InFlight>,
    /// Position of the latest checkpoint handed over.
    checkpointed: Position,
    last_checkpoint: Instant,
    durable: Arc<AtomicU64>,
    probe: CorrelationProbe,
}

impl Stage {
    fn run(&mut self, input: &Receiver<CorrelationInput>) {
        let mut published = Instant::now();
        let mut last_record = Instant::now();
        let mut last_idle_tick = Instant::now();
        loop {
            match input.recv_timeout(POLL) {
                Ok(CorrelationInput::Record { range, set, batch }) => {
                    // A record before the resume position: already correlated (a replay).
                    if self.sequencer.insert(range, (set, batch)).is_ok() {
                        self.release();
                    }
                    last_record = Instant::now();
                }
                Ok(CorrelationInput::Skip(range)) => {
                    self.sequencer.skip(range);
                    self.release();
                }
                Ok(CorrelationInput::Finish) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            if last_record.elapsed() >= IDLE_TICK && last_idle_tick.elapsed() >= IDLE_TICK {
                last_idle_tick = Instant::now();
                if let Some(running) = &self.running {
                    let _ = running.engine.advance_idle(Timestamp::now());
                }
            }
            self.pending.extend(self.alerts.try_iter());
            self.poll_in_flight(false);
            if self.checkpoint_due() {
                self.checkpoint();
            }
            if published.elapsed() >= STATS_EVERY {
                if let Some(running) = &self.running {
                    self.probe.publish(running.engine.stats());
                }
                published = Instant::now();
            }
        }
        self.checkpoint();
        self.poll_in_flight(true);
        if let Some(running) = self.running.take() {
            self.probe.publish(running.engine.stop());
        }
    }

    /// Submits every record the sequencer releases, in WAL order.
    fn release(&mut self) {
        while let Some((_range, (set, batch))) = self.sequencer.pop() {
            self.submit(&set, batch);
        }
    }

    fn submit(&mut self, set: &Arc<RuleSet>, batch: ObservationBatch) {
        let current = self.running.as_ref().map(|running| running.fingerprint);
        if current != Some(set.correlation_fingerprint) {
            if let Some(old) = self.running.take() {
                let stats = old.engine.stop();
                self.pending.extend(self.alerts.try_iter());
                tracing::warn!(
                    open_groups = stats.open_groups,
                    "correlation rules changed: open correlation windows were dropped"
                );
            }
            self.running = self.start_engine(set);
        }
        if let Some(running) = &self.running
            && let Err(error) = running.engine.submit(batch)
        {
            tracing::error!(%error, "correlation engine refused a batch");
        }
    }

    /// Starts an engine for `set`, from the stored snapshot when it was taken under the same
    /// correlation rules.
    fn start_engine(&mut self, set: &RuleSet) -> Option<Running> {
        let correlations = Arc::clone(&set.correlations);
        let fingerprint = set.correlation_fingerprint;
        let config = self.engine_config.clone();
        let alerts = self.engine_alerts.clone();
        let restored = self.stored_snapshot.take().and_then(|snapshot| {
            match Engine::restore(
                Arc::clone(&correlations),
                config.clone(),
                alerts.clone(),
                &snapshot,
                fingerprint,
            ) {
                Ok(engine) => {
                    let stats = engine.stats();
                    tracing::info!(
                        open_groups = stats.open_groups,
                        queued = stats.queued,
                        bytes = snapshot.len(),
                        "correlation state restored from its snapshot"
                    );
                    Some(engine)
                }
                Err(error) => {
                    tracing::warn!(
                        %error,
                        "correlation snapshot not restored: correlation starts with no open windows"
                    );
                    None
                }
            }
        });
        let engine = match restored {
            Some(engine) => engine,
            None => match Engine::start(correlations, config, alerts) {
                Ok(engine) => engine,
                Err(error) => {
                    tracing::error!(%error, "cannot start the correlation engine");
                    return None;
                }
            },
        };
        tracing::info!(
            correlations = set.correlations.len(),
            shards = self.engine_config.shards,
            lateness = ?self.engine_config.allowed_lateness,
            "correlation engine started"
        );
        Some(Running {
            fingerprint,
            engine,
        })
    }

    fn checkpoint_due(&self) -> bool {
        let since = self.last_checkpoint.elapsed();
        let moved = self.sequencer.next() > self.checkpointed;
        self.pending.len() >= MAX_PENDING_ALERTS
            || (!self.pending.is_empty() && since >= self.policy.alert_delay)
            || (moved && since >= self.policy.snapshot_interval)
    }

    /// Hands a checkpoint at the sequencer's position to the incident service (after the
    /// previous one committed). Nothing to do when neither the position nor the alerts moved.
    fn checkpoint(&mut self) {
        self.poll_in_flight(true);
        self.last_checkpoint = Instant::now();
        let position = self.sequencer.next();
        if position <= self.checkpointed && self.pending.is_empty() {
            return;
        }
        let started = Instant::now();
        let snapshot = match &self.running {
            Some(running) => match running.engine.snapshot(running.fingerprint) {
                Ok(snapshot) => Some(snapshot),
                Err(error) => {
                    tracing::error!(%error, "correlation snapshot failed; no checkpoint");
                    return;
                }
            },
            // No engine ran since the start: the stored state still holds at this position.
            None => self.stored_snapshot.clone(),
        };
        let snapshot_took = started.elapsed();
        if let Err(error) = self.wal.sync() {
            tracing::error!(%error, "wal sync failed, correlation does not checkpoint");
            return;
        }
        // The barrier has passed: every alert of the records before `position` is queued.
        self.pending.extend(self.alerts.try_iter());
        let alerts = std::mem::take(&mut self.pending);
        let bytes = snapshot.as_ref().map_or(0, Vec::len);
        let checkpoint = CorrelationCheckpoint {
            wal_position: position.0,
            snapshot,
        };
        match self.incidents.commit_checkpoint(alerts.clone(), checkpoint) {
            Ok(outcome) => {
                tracing::debug!(
                    position = position.0,
                    alerts = alerts.len(),
                    bytes,
                    took = ?snapshot_took,
                    "correlation checkpoint"
                );
                self.checkpointed = position;
                self.in_flight = Some(InFlight {
                    outcome,
                    alerts,
                    position,
                });
            }
            Err(error) => {
                tracing::error!(%error, "cannot hand a correlation checkpoint to the incident store");
                self.pending = alerts;
            }
        }
    }

    /// Looks at the checkpoint in flight (waiting for it when `wait`): committed, its position
    /// becomes durable; failed, its alerts go back in front of the pending ones.
    fn poll_in_flight(&mut self, wait: bool) {
        let Some(in_flight) = self.in_flight.take() else {
            return;
        };
        let outcome = if wait {
            in_flight
                .outcome
                .recv()
                .map_err(|_| TryRecvError::Disconnected)
        } else {
            in_flight.outcome.try_recv()
        };
        match outcome {
            Ok(Ok(())) => {
                self.durable.store(in_flight.position.0, Ordering::Release);
            }
            Ok(Err(_)) => {
                // Logged by the service; nothing was written. Retried with the next checkpoint.
                let mut alerts = in_flight.alerts;
                alerts.append(&mut self.pending);
                self.pending = alerts;
                self.checkpointed = Position(self.durable.load(Ordering::Acquire));
            }
            Err(TryRecvError::Empty) => self.in_flight = Some(in_flight),
            Err(TryRecvError::Disconnected) => {
                tracing::error!(
                    alerts = in_flight.alerts.len(),
                    "the incident service stopped before a correlation checkpoint committed; \
                     its alerts come back from the wal at the next start"
                );
            }
        }
    }
}
