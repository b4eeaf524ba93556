//! The threaded engine: a router thread owning the watermark and shard threads owning the
//! state, joined by crossbeam channels. See `mod.rs` for the protocol.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::thread::JoinHandle;

use cairn_ingest::Timestamp;
use crossbeam_channel::{Receiver, Sender, TrySendError, bounded, select, unbounded};

use super::core::{Admission, EngineConfig, EngineStats, Router};
use super::graph::{Correlations, Observation, ObservationBatch};
use super::shard::{Shard, ShardCounters};
use super::snapshot::{self, SnapshotError, Totals};
use crate::alert::Alert;

/// Why the engine could not take a request.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The engine's threads are gone (finished, or a thread could not run).
    #[error("the correlation engine has stopped")]
    Closed,
    /// A thread could not be started.
    #[error("cannot start a correlation thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// A snapshot could not be restored.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

/// `try_submit` could not queue the batch: it is handed back.
#[derive(Debug)]
pub enum TrySubmitError {
    /// The router's queue is full (apply backpressure and retry).
    Full(ObservationBatch),
    /// The engine has stopped.
    Closed(ObservationBatch),
}

enum ToRouter {
    Batch(ObservationBatch),
    Idle(Timestamp),
    /// Stop without flushing: open windows and pending absences are dropped, not fired.
    Stop,
    /// A barrier: every shard encodes its part after what came before; the router answers
    /// with the whole snapshot.
    Snapshot {
        fingerprint: u64,
        reply: Sender<Vec<u8>>,
    },
}

enum ToShard {
    Observations(Vec<Observation>),
    Advance {
        id: u64,
        watermark: i64,
        flush: bool,
    },
    /// Encode this shard's part of a snapshot and send it back with the shard's index.
    Snapshot(Sender<(usize, Vec<u8>)>),
}

enum Peer {
    Derived(Vec<Observation>),
    StageDone { advance: u64, depth: usize },
}

/// Counters shared by the threads (updated once per batch or per advance, not per event).
#[derive(Debug, Default)]
struct Shared {
    batches: AtomicU64,
    observations: AtomicU64,
    late: AtomicU64,
    late_dropped: AtomicU64,
    missing_group_field: AtomicU64,
    detection_alerts: AtomicU64,
    watermark: AtomicI64,
    shards: Vec<ShardShared>,
}

#[derive(Debug, Default)]
struct ShardShared {
    processed: AtomicU64,
    alerts: AtomicU64,
    evicted: AtomicU64,
    expired: AtomicU64,
    open_groups: AtomicU64,
    queued: AtomicU64,
    timers: AtomicU64,
}

impl ShardShared {
    fn publish(&self, shard: &Shard) {
        let counters = shard.counters;
        self.processed.store(counters.processed, Ordering::Relaxed);
        self.alerts.store(counters.alerts, Ordering::Relaxed);
        self.evicted.store(counters.evicted, Ordering::Relaxed);
        self.expired.store(counters.expired, Ordering::Relaxed);
        self.open_groups
            .store(shard.open_groups(), Ordering::Relaxed);
        self.queued.store(shard.queued() as u64, Ordering::Relaxed);
        self.timers.store(shard.timers() as u64, Ordering::Relaxed);
    }
}

/// The threaded correlation engine. [`Engine::submit`] may be called from several threads; the
/// alerts (detection alerts passed through, and correlation alerts) go to the channel given to
/// [`Engine::start`] in an order that interleaves shards, and are, as a multiset, exactly those
/// of a [`super::Correlator`] fed the same batches in the order the router received them.
#[derive(Debug)]
pub struct Engine {
    to_router: Option<Sender<ToRouter>>,
    router: Option<JoinHandle<()>>,
    shards: Vec<JoinHandle<ShardCounters>>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ToRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ToRouter")
    }
}

impl Engine {
    /// Starts the router and `config.shards` shard threads. Alerts are sent to `alerts`; when
    /// it is bounded and full, the shards wait (and so, in turn, does `submit`).
    pub fn start(
        correlations: Arc<Correlations>,
        config: EngineConfig,
        alerts: Sender<Alert>,
    ) -> Result<Engine, EngineError> {
        let shard_count = config.shard_count();
        let group_cap = config.group_cap_per_shard(shard_count);
        let shards = (0..shard_count)
            .map(|_| Shard::new(Arc::clone(&correlations), group_cap))
            .collect();
        let router = Router::new(config.lateness_nanos());
        Engine::spawn(
            correlations,
            &config,
            alerts,
            router,
            Totals::default(),
            shards,
        )
    }

    /// Starts an engine from a snapshot ([`Engine::snapshot`] or
    /// [`super::Correlator::snapshot`]) taken under the same correlations and tagged with
    /// `fingerprint`; the shard count may differ from the snapshot's (see
    /// [`super::snapshot`]). Submitting the batches that followed the snapshot gives the
    /// alerts the uninterrupted engine gives.
    ///
    /// # Errors
    /// [`EngineError::Snapshot`] when the snapshot is damaged, of another version or taken
    /// under other correlations; [`EngineError::Spawn`] as [`Engine::start`].
    pub fn restore(
        correlations: Arc<Correlations>,
        config: EngineConfig,
        alerts: Sender<Alert>,
        snapshot: &[u8],
        fingerprint: u64,
    ) -> Result<Engine, EngineError> {
        let decoded = snapshot::decode(snapshot, &correlations, fingerprint)?;
        let shard_count = config.shard_count();
        let router = decoded.router(config.lateness_nanos());
        let totals = decoded.totals;
        let shards = decoded.into_shards(
            &correlations,
            shard_count,
            config.group_cap_per_shard(shard_count),
        );
        Engine::spawn(correlations, &config, alerts, router, totals, shards)
    }

    fn spawn(
        correlations: Arc<Correlations>,
        config: &EngineConfig,
        alerts: Sender<Alert>,
        router: Router,
        totals: Totals,
        shard_states: Vec<Shard>,
    ) -> Result<Engine, EngineError> {
        let shard_count = shard_states.len();
        let capacity = config.queue_capacity.max(1);
        let shared = Arc::new(Shared {
            batches: AtomicU64::new(totals.batches),
            observations: AtomicU64::new(totals.observations),
            late: AtomicU64::new(totals.late),
            late_dropped: AtomicU64::new(totals.late_dropped),
            missing_group_field: AtomicU64::new(totals.missing_group_field),
            detection_alerts: AtomicU64::new(totals.detection_alerts),
            watermark: AtomicI64::new(router.watermark),
            shards: (0..shard_count).map(|_| ShardShared::default()).collect(),
        });
        let mut shard_inputs = Vec::with_capacity(shard_count);
        let mut shard_receivers = Vec::with_capacity(shard_count);
        let mut peer_senders = Vec::with_capacity(shard_count);
        let mut peer_receivers = Vec::with_capacity(shard_count);
        for _ in 0..shard_count {
            let (sender, receiver) = bounded::<ToShard>(capacity);
            shard_inputs.push(sender);
            shard_receivers.push(receiver);
            // Unbounded: shards wait on each other at stage barriers, so a bounded peer
            // channel could deadlock. What flows here is bounded by one advance's alerts.
            let (sender, receiver) = unbounded::<Peer>();
            peer_senders.push(sender);
            peer_receivers.push(receiver);
        }
        let mut shards = Vec::with_capacity(shard_count);
        for (index, ((input, peer_input), shard)) in shard_receivers
            .into_iter()
            .zip(peer_receivers)
            .zip(shard_states)
            .enumerate()
        {
            let worker = ShardWorker {
                index,
                shard,
                correlations: Arc::clone(&correlations),
                input,
                peer_input,
                peers: peer_senders.clone(),
                alerts: alerts.clone(),
                shared: Arc::clone(&shared),
                stage_done: HashMap::new(),
            };
            let handle = std::thread::Builder::new()
                .name(format!("cairn-corr-{index}"))
                .spawn(move || worker.run())
                .map_err(EngineError::Spawn)?;
            shards.push(handle);
        }
        drop(peer_senders);
        let (to_router, router_input) = bounded::<ToRouter>(capacity);
        let router = RouterWorker {
            router,
            correlations,
            input: router_input,
            shards: shard_inputs,
            alerts,
            shared: Arc::clone(&shared),
            next_advance: 0,
        };
        let router = std::thread::Builder::new()
            .name("cairn-corr-router".to_owned())
            .spawn(move || router.run())
            .map_err(EngineError::Spawn)?;
        Ok(Engine {
            to_router: Some(to_router),
            router: Some(router),
            shards,
            shared,
        })
    }

    /// Queues a batch (blocks while the router's queue is full).
    pub fn submit(&self, batch: ObservationBatch) -> Result<(), EngineError> {
        let sender = self.to_router.as_ref().ok_or(EngineError::Closed)?;
        sender
            .send(ToRouter::Batch(batch))
            .map_err(|_| EngineError::Closed)
    }

    /// Queues a batch without blocking; a full queue hands it back.
    pub fn try_submit(&self, batch: ObservationBatch) -> Result<(), TrySubmitError> {
        let Some(sender) = self.to_router.as_ref() else {
            return Err(TrySubmitError::Closed(batch));
        };
        match sender.try_send(ToRouter::Batch(batch)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(ToRouter::Batch(batch))) => Err(TrySubmitError::Full(batch)),
            Err(TrySendError::Disconnected(ToRouter::Batch(batch))) => {
                Err(TrySubmitError::Closed(batch))
            }
            Err(_) => Err(TrySubmitError::Closed(ObservationBatch::default())),
        }
    }

    /// The input is idle and the wall clock says `now` (see [`super::Correlator::advance_idle`]).
    pub fn advance_idle(&self, now: Timestamp) -> Result<(), EngineError> {
        let sender = self.to_router.as_ref().ok_or(EngineError::Closed)?;
        sender
            .send(ToRouter::Idle(now))
            .map_err(|_| EngineError::Closed)
    }

    /// The complete state after every batch submitted before this call, encoded (see
    /// [`super::snapshot`]) and tagged with `fingerprint`. A barrier: every alert those
    /// batches produced has been sent to the alert channel when it returns. Blocks until every
    /// shard has answered, so the alert channel must not be full meanwhile (drain it from
    /// another thread, or make it unbounded).
    ///
    /// # Errors
    /// [`EngineError::Closed`] when the engine has stopped.
    pub fn snapshot(&self, fingerprint: u64) -> Result<Vec<u8>, EngineError> {
        let sender = self.to_router.as_ref().ok_or(EngineError::Closed)?;
        let (reply, answer) = bounded(1);
        sender
            .send(ToRouter::Snapshot { fingerprint, reply })
            .map_err(|_| EngineError::Closed)?;
        answer.recv().map_err(|_| EngineError::Closed)
    }

    /// Current figures (each shard's published after its latest advance).
    pub fn stats(&self) -> EngineStats {
        collect_stats(&self.shared)
    }

    /// End of input: flushes everything (watermark → +∞, pending absences fire), waits for
    /// every thread and returns the final figures. Every alert has been sent when it returns.
    pub fn finish(mut self) -> EngineStats {
        self.join();
        collect_stats(&self.shared)
    }

    /// Stops without ending the input: what the watermark has not passed yet (open windows,
    /// pending absences, reordering) is dropped without firing, as a live appliance must on
    /// shutdown or when its correlation rules change (ending the input would fire absences
    /// that are not due). Alerts already due have been sent when it returns.
    pub fn stop(mut self) -> EngineStats {
        if let Some(sender) = self.to_router.as_ref() {
            let _ = sender.send(ToRouter::Stop);
        }
        self.join();
        collect_stats(&self.shared)
    }

    fn join(&mut self) {
        self.to_router.take();
        if let Some(router) = self.router.take() {
            let _ = router.join();
        }
        for shard in self.shards.drain(..) {
            let _ = shard.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Without `finish`, the threads still flush and stop on their own once the router sees
        // its queue closed; they are not waited for.
        self.to_router.take();
    }
}

fn collect_stats(shared: &Shared) -> EngineStats {
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let watermark = shared.watermark.load(Ordering::Relaxed);
    let mut stats = EngineStats {
        batches: load(&shared.batches),
        observations: load(&shared.observations),
        late: load(&shared.late),
        late_dropped: load(&shared.late_dropped),
        missing_group_field: load(&shared.missing_group_field),
        detection_alerts: load(&shared.detection_alerts),
        watermark: (watermark != i64::MIN).then_some(Timestamp(watermark)),
        ..EngineStats::default()
    };
    for shard in &shared.shards {
        stats.processed += load(&shard.processed);
        stats.correlation_alerts += load(&shard.alerts);
        stats.evicted_groups += load(&shard.evicted);
        stats.expired_groups += load(&shard.expired);
        stats.open_groups += load(&shard.open_groups);
        stats.queued += load(&shard.queued);
        stats.timers += load(&shard.timers);
    }
    stats
}

/// The shard owning a group of a correlation.
pub(crate) fn shard_of(observation: &Observation, shards: usize) -> usize {
    shard_for(
        observation.correlation.0,
        observation.group.hash_value(),
        shards,
    )
}

/// The shard owning the group whose key hashes to `group_hash` in `correlation`.
pub(crate) fn shard_for(correlation: u32, group_hash: u64, shards: usize) -> usize {
    let mixed = group_hash ^ u64::from(correlation).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    ((mixed >> 32) % shards.max(1) as u64) as usize
}

struct RouterWorker {
    router: Router,
    correlations: Arc<Correlations>,
    input: Receiver<ToRouter>,
    shards: Vec<Sender<ToShard>>,
    alerts: Sender<Alert>,
    shared: Arc<Shared>,
    next_advance: u64,
}

impl RouterWorker {
    fn run(mut self) {
        let shard_count = self.shards.len();
        let mut outgoing: Vec<Vec<Observation>> = (0..shard_count).map(|_| Vec::new()).collect();
        while let Ok(message) = self.input.recv() {
            match message {
                ToRouter::Batch(batch) => {
                    self.shared.batches.fetch_add(1, Ordering::Relaxed);
                    self.shared
                        .missing_group_field
                        .fetch_add(batch.missing_group_field, Ordering::Relaxed);
                    self.shared
                        .detection_alerts
                        .fetch_add(batch.alerts.len() as u64, Ordering::Relaxed);
                    for alert in batch.alerts {
                        let _ = self.alerts.send(alert);
                    }
                    let (mut late, mut dropped) = (0u64, 0u64);
                    self.shared
                        .observations
                        .fetch_add(batch.observations.len() as u64, Ordering::Relaxed);
                    for mut observation in batch.observations {
                        let Some(compiled) = self
                            .correlations
                            .correlations
                            .get(observation.correlation.0 as usize)
                        else {
                            continue;
                        };
                        match self.router.admit(&mut observation, compiled.timespan) {
                            Admission::OnTime => {}
                            Admission::Late => late += 1,
                            Admission::Dropped => {
                                late += 1;
                                dropped += 1;
                                continue;
                            }
                        }
                        outgoing[shard_of(&observation, shard_count)].push(observation);
                    }
                    self.shared.late.fetch_add(late, Ordering::Relaxed);
                    self.shared
                        .late_dropped
                        .fetch_add(dropped, Ordering::Relaxed);
                    for (shard, observations) in outgoing.iter_mut().enumerate() {
                        if !observations.is_empty() {
                            let _ = self.shards[shard]
                                .send(ToShard::Observations(std::mem::take(observations)));
                        }
                    }
                    if let Some(watermark) = self.router.after_batch(batch.max_ts) {
                        self.advance(watermark, false);
                    }
                }
                ToRouter::Idle(now) => {
                    if let Some(watermark) = self.router.idle(now) {
                        self.advance(watermark, false);
                    }
                }
                // Dropping the shard senders ends the shards without a flush.
                ToRouter::Stop => return,
                ToRouter::Snapshot { fingerprint, reply } => {
                    let _ = reply.send(self.snapshot(fingerprint));
                }
            }
        }
        // Input closed: end of input.
        self.advance(i64::MAX, true);
    }

    /// Collects every shard's part (each after everything sent to it before) and encodes the
    /// whole. A shard that has gone contributes nothing (the engine is stopping anyway).
    fn snapshot(&self, fingerprint: u64) -> Vec<u8> {
        let (reply, answers) = bounded(self.shards.len().max(1));
        for shard in &self.shards {
            let _ = shard.send(ToShard::Snapshot(reply.clone()));
        }
        drop(reply);
        let mut parts: Vec<(usize, Vec<u8>)> = answers.iter().collect();
        parts.sort_by_key(|(index, _)| *index);
        let parts: Vec<Vec<u8>> = parts.into_iter().map(|(_, part)| part).collect();
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let totals = Totals {
            batches: load(&self.shared.batches),
            observations: load(&self.shared.observations),
            late: load(&self.shared.late),
            late_dropped: load(&self.shared.late_dropped),
            missing_group_field: load(&self.shared.missing_group_field),
            detection_alerts: load(&self.shared.detection_alerts),
        };
        snapshot::encode(
            fingerprint,
            &self.correlations,
            &self.router,
            &totals,
            &parts,
        )
    }

    fn advance(&mut self, watermark: i64, flush: bool) {
        if !flush {
            self.shared.watermark.store(watermark, Ordering::Relaxed);
        }
        self.next_advance += 1;
        for shard in &self.shards {
            let _ = shard.send(ToShard::Advance {
                id: self.next_advance,
                watermark,
                flush,
            });
        }
    }
}

struct ShardWorker {
    index: usize,
    shard: Shard,
    correlations: Arc<Correlations>,
    input: Receiver<ToShard>,
    peer_input: Receiver<Peer>,
    peers: Vec<Sender<Peer>>,
    alerts: Sender<Alert>,
    shared: Arc<Shared>,
    /// `(advance, depth)` → shards done with that stage.
    stage_done: HashMap<(u64, usize), usize>,
}

impl ShardWorker {
    fn run(mut self) -> ShardCounters {
        self.shared.shards[self.index].publish(&self.shard);
        loop {
            select! {
                recv(self.input) -> message => match message {
                    Ok(ToShard::Observations(observations)) => {
                        for observation in observations {
                            self.shard.insert(observation);
                        }
                    }
                    Ok(ToShard::Advance { id, watermark, flush }) => {
                        self.advance(id, watermark, flush);
                        if flush {
                            break;
                        }
                    }
                    Ok(ToShard::Snapshot(reply)) => {
                        let mut part = Vec::new();
                        snapshot::encode_part(&self.shard, &mut part);
                        let _ = reply.send((self.index, part));
                    }
                    Err(_) => break,
                },
                recv(self.peer_input) -> message => {
                    if let Ok(message) = message {
                        self.on_peer(message);
                    }
                }
            }
        }
        self.shared.shards[self.index].publish(&self.shard);
        self.shard.counters
    }

    fn on_peer(&mut self, message: Peer) {
        match message {
            Peer::Derived(observations) => {
                for observation in observations {
                    self.shard.insert(observation);
                }
            }
            Peer::StageDone { advance, depth } => {
                *self.stage_done.entry((advance, depth)).or_insert(0) += 1;
            }
        }
    }

    fn advance(&mut self, id: u64, watermark: i64, flush: bool) {
        let depths = self.correlations.max_depth;
        let shard_count = self.peers.len();
        let mut derived = Vec::new();
        let mut alerts = Vec::new();
        let mut outgoing: Vec<Vec<Observation>> = (0..shard_count).map(|_| Vec::new()).collect();
        for depth in 1..=depths {
            self.shard
                .run_stage(depth, watermark, flush, &mut derived, &mut alerts);
            for alert in alerts.drain(..) {
                let _ = self.alerts.send(alert);
            }
            if depth == depths {
                break;
            }
            // Hand the observations for deeper correlations to their shards, then wait until
            // every shard is done with this depth: only then are all of them queued.
            for observation in derived.drain(..) {
                outgoing[shard_of(&observation, shard_count)].push(observation);
            }
            for (shard, observations) in outgoing.iter_mut().enumerate() {
                if observations.is_empty() {
                    continue;
                }
                if shard == self.index {
                    for observation in observations.drain(..) {
                        self.shard.insert(observation);
                    }
                } else {
                    let _ = self.peers[shard].send(Peer::Derived(std::mem::take(observations)));
                }
            }
            for (shard, peer) in self.peers.iter().enumerate() {
                if shard != self.index {
                    let _ = peer.send(Peer::StageDone { advance: id, depth });
                }
            }
            while self.stage_done.get(&(id, depth)).copied().unwrap_or(0) + 1 < shard_count {
                match self.peer_input.recv() {
                    Ok(message) => self.on_peer(message),
                    Err(_) => break,
                }
            }
            self.stage_done.remove(&(id, depth));
        }
        self.shared.shards[self.index].publish(&self.shard);
    }
}
