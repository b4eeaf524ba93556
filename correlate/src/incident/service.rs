//! The incident service: one thread owns the store's writer.
//!
//! It receives alerts on a bounded crossbeam channel and applies whatever is queued as one
//! batch (one transaction, up to [`ServiceOptions::max_batch`]), serves acknowledge/resolve
//! commands between batches, runs the quiet period every [`ServiceOptions::tick`], compacts the
//! change log hourly, and publishes every committed change, in update sequence order, on a
//! `tokio::sync::broadcast` channel. A subscriber that falls more than
//! [`ServiceOptions::broadcast_capacity`] changes behind is told by the channel (`Lagged`) and
//! never slows the service; it resumes from the change log.
//!
//! Reads do not go through the thread: [`IncidentHandle`] reads with its own read-only
//! connections.
//!
//! Stop ([`IncidentService::shutdown`]): the thread drains the alerts already queued, applies
//! them in a final transaction, checkpoints and closes the database.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use cairn_ingest::Timestamp;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, select};
use tokio::sync::broadcast;

use crate::alert::Alert;
use crate::incident::checkpoint::{CorrelationCheckpoint, StoredCheckpoint};
use crate::incident::model::{
    Clock, IncidentChange, IncidentDetail, IncidentId, IncidentStatus, Transition, UpdateSeq,
    duration_nanos,
};
use crate::incident::store::{ChangePage, IncidentError, IncidentReader, IncidentStore};

/// How often the change log is compacted.
const COMPACT_EVERY: Duration = Duration::from_secs(3600);

/// How long a command waits for the service to answer.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Sizes and periods of the service.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Alerts the input channel holds; a full channel blocks the sender (backpressure on the
    /// correlation engine, never a silent drop). Default 65536.
    pub queue_alerts: usize,
    /// Most alerts applied in one transaction. Default 4096.
    pub max_batch: usize,
    /// Period of the quiet-period check. Default 1 s.
    pub tick: Duration,
    /// Changes kept for slow subscribers before they are told they lagged. Default 4096.
    pub broadcast_capacity: usize,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            queue_alerts: 65536,
            max_batch: 4096,
            tick: Duration::from_secs(1),
            broadcast_capacity: 4096,
        }
    }
}

#[derive(Debug)]
enum Command {
    Acknowledge(IncidentId, Sender<Result<Transition, IncidentError>>),
    Resolve(IncidentId, Sender<Result<Transition, IncidentError>>),
    Checkpoint(Box<CheckpointCommand>),
    Stop,
}

#[derive(Debug)]
struct CheckpointCommand {
    alerts: Vec<Alert>,
    checkpoint: CorrelationCheckpoint,
    reply: Sender<Result<(), IncidentError>>,
}

/// The running service. Dropping it without [`IncidentService::shutdown`] stops the thread
/// after it drains (without waiting for it).
#[derive(Debug)]
pub struct IncidentService {
    alerts: Option<Sender<Alert>>,
    commands: Sender<Command>,
    handle: IncidentHandle,
    thread: Option<JoinHandle<Result<(), IncidentError>>>,
}

impl IncidentService {
    /// Starts the thread that owns `store`. `clock` gives wall time (created/updated and the
    /// quiet period).
    ///
    /// # Errors
    /// [`IncidentError::Unavailable`] when the thread cannot be spawned.
    pub fn start(
        store: IncidentStore,
        clock: Arc<dyn Clock>,
        options: &ServiceOptions,
    ) -> Result<IncidentService, IncidentError> {
        let (alerts, alert_input) = crossbeam_channel::bounded(options.queue_alerts.max(1));
        let (commands, command_input) = crossbeam_channel::unbounded();
        let (changes, _) = broadcast::channel(options.broadcast_capacity.max(1));
        let handle = IncidentHandle {
            reader: store.reader(),
            commands: commands.clone(),
            changes: changes.clone(),
        };
        let worker = Worker {
            store,
            clock,
            changes,
            max_batch: options.max_batch.max(1),
            last_compaction: None,
        };
        let tick = options.tick;
        let thread = std::thread::Builder::new()
            .name("cairn-incidents".to_string())
            .spawn(move || worker.run(&alert_input, &command_input, tick))
            .map_err(|error| {
                IncidentError::Unavailable(format!("cannot start the incident thread: {error}"))
            })?;
        Ok(IncidentService {
            alerts: Some(alerts),
            commands,
            handle,
            thread: Some(thread),
        })
    }

    /// The input of the service: the correlation engine sends every alert here. Bounded: a
    /// `send` blocks while the channel is full.
    pub fn alert_sender(&self) -> Sender<Alert> {
        match &self.alerts {
            Some(alerts) => alerts.clone(),
            None => crossbeam_channel::bounded(0).0,
        }
    }

    /// Reads and commands for the API.
    pub fn handle(&self) -> IncidentHandle {
        self.handle.clone()
    }

    /// Stops the service: applies the alerts already queued in a final transaction, closes the
    /// store, and joins the thread. Stop the alert producers first so nothing is left behind.
    pub fn shutdown(mut self) -> Result<(), IncidentError> {
        self.alerts = None;
        let _ = self.commands.send(Command::Stop);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(IncidentError::Unavailable(
                "the incident thread panicked".to_string(),
            )),
            None => Ok(()),
        }
    }
}

impl Drop for IncidentService {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Stop);
    }
}

/// Reads (own read-only connections) and commands (through the service thread). Cheap to
/// clone. Every method blocks: call it from a blocking thread, not an async task.
#[derive(Debug, Clone)]
pub struct IncidentHandle {
    reader: IncidentReader,
    commands: Sender<Command>,
    changes: broadcast::Sender<Arc<IncidentChange>>,
}

impl IncidentHandle {
    /// One incident with its evidence; `None` if the id is unknown.
    pub fn get(&self, id: IncidentId) -> Result<Option<IncidentDetail>, IncidentError> {
        self.reader.get(id)
    }

    /// See [`IncidentReader::changes_since`].
    pub fn changes_since(
        &self,
        since: UpdateSeq,
        status: Option<IncidentStatus>,
        limit: usize,
    ) -> Result<ChangePage, IncidentError> {
        self.reader.changes_since(since, status, limit)
    }

    /// See [`IncidentReader::current`].
    pub fn current(
        &self,
        status: Option<IncidentStatus>,
        limit: usize,
    ) -> Result<ChangePage, IncidentError> {
        self.reader.current(status, limit)
    }

    /// The newest update sequence.
    pub fn last_seq(&self) -> Result<UpdateSeq, IncidentError> {
        self.reader.last_seq()
    }

    /// Acknowledges an incident (see [`IncidentStore::acknowledge`]); returns once committed.
    pub fn acknowledge(&self, id: IncidentId) -> Result<Transition, IncidentError> {
        self.command(|reply| Command::Acknowledge(id, reply))
    }

    /// Resolves an incident (see [`IncidentStore::resolve`]); returns once committed.
    pub fn resolve(&self, id: IncidentId) -> Result<Transition, IncidentError> {
        self.command(|reply| Command::Resolve(id, reply))
    }

    /// Queues a correlation checkpoint: `alerts` and `checkpoint` are committed in one
    /// transaction (see [`crate::incident::checkpoint`]). Does not wait: the returned channel
    /// gets the outcome once committed (or failed; then nothing was written, and the caller
    /// keeps the alerts for its next checkpoint).
    ///
    /// # Errors
    /// [`IncidentError::Unavailable`] when the service has stopped.
    pub fn commit_checkpoint(
        &self,
        alerts: Vec<Alert>,
        checkpoint: CorrelationCheckpoint,
    ) -> Result<Receiver<Result<(), IncidentError>>, IncidentError> {
        let (reply, outcome) = crossbeam_channel::bounded(1);
        self.commands
            .send(Command::Checkpoint(Box::new(CheckpointCommand {
                alerts,
                checkpoint,
                reply,
            })))
            .map_err(|_| {
                IncidentError::Unavailable("the incident service has stopped".to_string())
            })?;
        Ok(outcome)
    }

    /// The latest committed correlation checkpoint (read at start-up).
    pub fn correlation_checkpoint(&self) -> Result<Option<StoredCheckpoint>, IncidentError> {
        self.reader.correlation_checkpoint()
    }

    /// Every change committed from now on, in update sequence order. Subscribe **before**
    /// reading the log to resume without a gap; drop entries with a sequence already seen.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<IncidentChange>> {
        self.changes.subscribe()
    }

    fn command(
        &self,
        make: impl FnOnce(Sender<Result<Transition, IncidentError>>) -> Command,
    ) -> Result<Transition, IncidentError> {
        let stopped = || IncidentError::Unavailable("the incident service has stopped".to_string());
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.commands.send(make(reply)).map_err(|_| stopped())?;
        match answer.recv_timeout(COMMAND_TIMEOUT) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => Err(IncidentError::Unavailable(
                "the incident service did not answer in time".to_string(),
            )),
            Err(RecvTimeoutError::Disconnected) => Err(stopped()),
        }
    }
}

struct Worker {
    store: IncidentStore,
    clock: Arc<dyn Clock>,
    changes: broadcast::Sender<Arc<IncidentChange>>,
    max_batch: usize,
    last_compaction: Option<Timestamp>,
}

impl Worker {
    fn run(
        mut self,
        alert_input: &Receiver<Alert>,
        command_input: &Receiver<Command>,
        tick: Duration,
    ) -> Result<(), IncidentError> {
        let ticker = crossbeam_channel::tick(tick);
        let never = crossbeam_channel::never();
        let mut alerts_open = true;
        let mut batch: Vec<Alert> = Vec::with_capacity(self.max_batch);
        self.periodic();
        loop {
            let alerts = if alerts_open { alert_input } else { &never };
            select! {
                recv(alerts) -> received => match received {
                    Ok(alert) => {
                        batch.push(alert);
                        batch.extend(alert_input.try_iter().take(self.max_batch - 1));
                        self.apply(&mut batch);
                    }
                    Err(_) => alerts_open = false,
                },
                recv(command_input) -> received => match received {
                    Ok(Command::Acknowledge(id, reply)) => {
                        let now = self.clock.now();
                        let result = self.store.acknowledge(id, now);
                        self.publish_transition(&result);
                        let _ = reply.send(result);
                    }
                    Ok(Command::Resolve(id, reply)) => {
                        let now = self.clock.now();
                        let result = self.store.resolve(id, now);
                        self.publish_transition(&result);
                        let _ = reply.send(result);
                    }
                    Ok(Command::Checkpoint(command)) => self.checkpoint(*command),
                    Ok(Command::Stop) | Err(_) => break,
                },
                recv(ticker) -> _ => self.periodic(),
            }
        }
        loop {
            batch.extend(alert_input.try_iter().take(self.max_batch));
            if batch.is_empty() {
                break;
            }
            self.apply(&mut batch);
        }
        tracing::info!(path = %self.store.path().display(), "incident store closing");
        self.store.close()
    }

    fn apply(&mut self, batch: &mut Vec<Alert>) {
        let now = self.clock.now();
        match self.store.apply_alerts(batch, now) {
            Ok(changes) => self.publish(changes),
            Err(error) => {
                tracing::error!(%error, alerts = batch.len(), "cannot apply alerts to incidents");
            }
        }
        batch.clear();
    }

    fn checkpoint(&mut self, command: CheckpointCommand) {
        let now = self.clock.now();
        let result = self
            .store
            .commit_checkpoint(&command.alerts, &command.checkpoint, now)
            .map(|changes| self.publish(changes));
        if let Err(error) = &result {
            tracing::error!(%error, alerts = command.alerts.len(), "cannot commit a correlation checkpoint");
        }
        let _ = command.reply.send(result);
    }

    fn periodic(&mut self) {
        let now = self.clock.now();
        match self.store.auto_resolve(now) {
            Ok(changes) => self.publish(changes),
            Err(error) => tracing::error!(%error, "cannot auto-resolve incidents"),
        }
        let due = self
            .last_compaction
            .is_none_or(|last| now.0.saturating_sub(last.0) >= duration_nanos(COMPACT_EVERY));
        if due {
            self.last_compaction = Some(now);
            match self.store.compact(now) {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "incident change log compacted"),
                Err(error) => tracing::error!(%error, "cannot compact the incident change log"),
            }
        }
    }

    fn publish(&self, changes: Vec<IncidentChange>) {
        for change in changes {
            let _ = self.changes.send(Arc::new(change));
        }
    }

    fn publish_transition(&self, result: &Result<Transition, IncidentError>) {
        if let Ok(Transition::Changed(change)) = result {
            let _ = self.changes.send(Arc::new(change.clone()));
        }
    }
}
