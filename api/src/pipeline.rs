//! The pipeline's OS threads: parse workers and the indexer.
//!
//! ```text
//! listeners ──Work──► work queue ──► parse workers (N threads: parse, normalise, match) ──(Appended, EventBatch)──► index queue ──► indexer
//!     │                                   │ observations, detection alerts                                                     ▲
//!     │                                   ▼                                                                                    │
//!     │                              correlation stage ──► engine ──► alerts ──► incident service                              │
//!     └─────────────────────────────── skips (records appended but never queued) ──────────────────────────────────────────────┘
//! ```
//!
//! Both queues are bounded; the work queue is where backpressure is felt by senders (TCP pauses,
//! HTTP 429, UDP drops). Workers block on the index queue when the indexer falls behind, which
//! fills the work queue in turn. Nothing on the per-event path takes a lock.
//!
//! Every work item carries the WAL range of its record. Workers finish out of order, so the
//! indexer puts batches back into WAL order with a [`Sequencer`] and adds to the index only what
//! it releases. It commits every `commit_interval` (when anything was added or the position
//! moved): first [`Wal::sync`] (the index never gets ahead of the WAL's durable end), then the
//! commit with `wal_position` = the sequencer's next position ("everything before it is
//! indexed") and the highest sequence number, then [`Wal::truncate_before`] that position.
//! Events count as `indexed` only once committed. After a crash the index holds exactly the
//! records before its `wal_position` and replay resumes there: exactly once.
//!
//! Correlation is the WAL's other consumer: every worker hands the correlation stage the
//! observations of every record it parsed, with the record's range (even when there are none),
//! and the indexer forwards the skips, so the stage sees every record once and can put them in
//! WAL order (see [`crate::correlation`]). WAL segments are deleted only before
//! `min(index position, correlation's durable checkpoint position)`.
//!
//! Shutdown: close the work queue, let workers drain it, checkpoint and stop the correlation
//! stage, close the index queue, let the indexer drain it and commit one last time.
//!
//! The indexer also hands every batch it added to the [`IndexedFeed`] (the live tail follows
//! it). The feed never makes the indexer wait: with no follower a batch is dropped at once, and
//! when the follower's bounded channel is full the batch is counted as missed instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cairn_index::{CommitPayload, EventIndex};
use cairn_ingest::batch::{Work, WorkInput, events_weight};
use cairn_ingest::decode::ndjson::{NdjsonLimits, decode_ndjson};
use cairn_ingest::normalise::Normaliser;
use cairn_ingest::parse::{ParseOptions, parse_syslog};
use cairn_ingest::queue::{Admission, BatchQueue, MemoryBudget, PopError};
use cairn_ingest::stats::{DropReason, Stats};
use cairn_ingest::wal::{Appended, Position, Sequencer, Wal};
use cairn_ingest::{Event, EventBatch, EventFlags, Seq, Text};

use crate::correlation::{CorrelationInput, CorrelationProbe, CorrelationSetup, CorrelationStage};
use crate::signatures::{SignatureWorker, Signatures};

/// Pipeline settings.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub workers: usize,
    pub queue_batches: usize,
    pub index_queue_batches: usize,
    /// Bytes the queues (and HTTP bodies in flight) may hold; see [`MemoryBudget`].
    pub memory_budget_bytes: usize,
    pub commit_interval: Duration,
}

/// What the indexer needs of the WAL.
#[derive(Debug)]
pub struct IndexerWal {
    pub wal: Arc<Wal>,
    /// The index's committed `wal_position` (or where replay starts on an index without one):
    /// the first record the indexer adds. Records before it are already in the index.
    pub indexed_up_to: Position,
    /// Ranges appended but never queued (see [`cairn_ingest::listeners::WalSink`]).
    pub skips: crossbeam_channel::Receiver<Appended>,
}

/// A batch of events with the WAL range of the record it came from.
pub type IndexItem = (Appended, EventBatch);

/// The running pipeline threads and their queues.
#[derive(Debug)]
pub struct Pipeline {
    work_queue: BatchQueue<Work>,
    index_queue: BatchQueue<IndexItem>,
    memory: Arc<MemoryBudget>,
    workers: Vec<JoinHandle<()>>,
    correlation: Option<CorrelationStage>,
    indexer: Option<JoinHandle<()>>,
    indexed: IndexedFeed,
}

/// Batches the indexer has added, for one follower that must never slow it (the live tail).
#[derive(Debug, Clone)]
pub struct IndexedFeed {
    inner: Arc<FeedInner>,
}

#[derive(Debug)]
struct FeedInner {
    /// Set by the follower while it wants batches; batches are dropped unseen otherwise.
    following: AtomicBool,
    sender: crossbeam_channel::Sender<EventBatch>,
    receiver: crossbeam_channel::Receiver<EventBatch>,
    /// Batches not handed over because the follower's channel was full.
    missed: AtomicU64,
}

/// Batches the feed holds for its follower before it counts them as missed.
const FEED_BATCHES: usize = 64;

impl IndexedFeed {
    fn new() -> IndexedFeed {
        let (sender, receiver) = crossbeam_channel::bounded(FEED_BATCHES);
        IndexedFeed {
            inner: Arc::new(FeedInner {
                following: AtomicBool::new(false),
                sender,
                receiver,
                missed: AtomicU64::new(0),
            }),
        }
    }

    /// Hands `batch` to the follower if there is one and it has room. Never blocks.
    fn publish(&self, batch: EventBatch) {
        if !self.inner.following.load(Ordering::Relaxed) {
            return;
        }
        if self.inner.sender.try_send(batch).is_err() {
            self.inner.missed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Starts or stops the hand-over (while stopped, batches are dropped unseen).
    pub fn set_following(&self, following: bool) {
        self.inner.following.store(following, Ordering::Relaxed);
    }

    /// The follower's end of the channel.
    pub fn receiver(&self) -> &crossbeam_channel::Receiver<EventBatch> {
        &self.inner.receiver
    }

    /// Batches the follower missed so far (its channel was full).
    pub fn missed(&self) -> u64 {
        self.inner.missed.load(Ordering::Relaxed)
    }
}

const POLL: Duration = Duration::from_millis(100);

impl Pipeline {
    /// Starts the worker threads and the indexer thread (which takes the index's single writer).
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        config: &PipelineConfig,
        index: Arc<EventIndex>,
        parse_options: ParseOptions,
        normaliser: &Arc<Normaliser>,
        signatures: &Arc<Signatures>,
        stats: Arc<Stats>,
        correlation: CorrelationSetup,
        wal: IndexerWal,
    ) -> Result<Pipeline, cairn_index::IndexError> {
        let memory = MemoryBudget::new(config.memory_budget_bytes);
        let work_queue: BatchQueue<Work> = BatchQueue::with_budget(
            config.queue_batches,
            Arc::clone(&memory),
            Work::weight,
            Admission::Enforced,
        );
        let correlation = CorrelationStage::start(correlation, config.queue_batches)
            .map_err(|error| cairn_index::IndexError::Internal(error.to_string()))?;
        let index_queue: BatchQueue<IndexItem> = BatchQueue::with_budget(
            config.index_queue_batches,
            Arc::clone(&memory),
            |(_, events)| events_weight(events),
            Admission::Counted,
        );
        let parse_options = Arc::new(parse_options);
        let mut workers = Vec::with_capacity(config.workers);
        for worker_id in 0..config.workers.max(1) {
            let work = work_queue.clone();
            let to_index = index_queue.clone();
            let options = Arc::clone(&parse_options);
            let worker_stats = Arc::clone(&stats);
            let mut matcher = signatures.worker();
            let worker_normaliser = Arc::clone(normaliser);
            let to_correlate = correlation.input();
            let handle = std::thread::Builder::new()
                .name(format!("cairn-parse-{worker_id}"))
                .spawn(move || {
                    let stages = WorkerStages {
                        parse_options: &options,
                        normaliser: &worker_normaliser,
                    };
                    parse_worker(
                        &work,
                        &to_index,
                        &to_correlate,
                        &stages,
                        &mut matcher,
                        &worker_stats,
                    );
                })
                .map_err(|error| cairn_index::IndexError::Internal(error.to_string()))?;
            workers.push(handle);
        }
        let writer = index.writer()?;
        let indexer_queue = index_queue.clone();
        let commit_interval = config.commit_interval;
        let indexer_stats = Arc::clone(&stats);
        let indexed = IndexedFeed::new();
        let indexer_feed = indexed.clone();
        let correlation_link = CorrelationLink {
            skips: correlation.input(),
            durable: correlation.durable_position(),
        };
        let indexer = std::thread::Builder::new()
            .name("cairn-indexer".to_string())
            .spawn(move || {
                indexer_loop(
                    writer,
                    &indexer_queue,
                    &wal,
                    &correlation_link,
                    commit_interval,
                    &indexer_stats,
                    &indexer_feed,
                );
            })
            .map_err(|error| cairn_index::IndexError::Internal(error.to_string()))?;
        Ok(Pipeline {
            work_queue,
            index_queue,
            memory,
            workers,
            correlation: Some(correlation),
            indexer: Some(indexer),
            indexed,
        })
    }

    /// Every batch the indexer adds, for the live tail.
    pub fn indexed_feed(&self) -> IndexedFeed {
        self.indexed.clone()
    }

    /// Reads the correlation engine's figures from the API.
    pub fn correlation_probe(&self) -> CorrelationProbe {
        self.correlation
            .as_ref()
            .map(CorrelationStage::probe)
            .unwrap_or_default()
    }

    /// The queue listeners and HTTP ingest push into.
    pub fn work_queue(&self) -> BatchQueue<Work> {
        self.work_queue.clone()
    }

    /// Depth of both queues and the memory they hold, for stats.
    pub fn queue_depths(&self) -> QueueDepths {
        QueueDepths::of(&self.work_queue, &self.index_queue, &self.memory)
    }

    /// The memory budget the queues share; HTTP bodies in flight reserve from it too.
    pub fn memory_budget(&self) -> Arc<MemoryBudget> {
        Arc::clone(&self.memory)
    }

    /// Handles for reading queue depths from the API.
    pub fn depth_probe(&self) -> DepthProbe {
        DepthProbe {
            work: self.work_queue.clone(),
            index: self.index_queue.clone(),
            memory: Arc::clone(&self.memory),
        }
    }

    /// Drains both queues, commits, and joins every thread. Blocking.
    pub fn shutdown(mut self) {
        self.work_queue.close();
        for worker in self.workers.drain(..) {
            if worker.join().is_err() {
                tracing::error!("a parse worker panicked");
            }
        }
        if let Some(correlation) = self.correlation.take() {
            correlation.shutdown();
        }
        self.index_queue.close();
        if let Some(indexer) = self.indexer.take()
            && indexer.join().is_err()
        {
            tracing::error!("the indexer thread panicked");
        }
    }
}

/// Queue depths at one moment.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct QueueDepths {
    pub work_batches: usize,
    pub work_capacity: usize,
    pub index_batches: usize,
    pub index_capacity: usize,
    /// Bytes held by the queues and HTTP bodies in flight.
    pub memory_bytes: usize,
    pub memory_budget_bytes: usize,
    /// Admissions refused because the memory budget was spent.
    pub memory_refusals: u64,
}

impl QueueDepths {
    fn of(
        work: &BatchQueue<Work>,
        index: &BatchQueue<IndexItem>,
        memory: &MemoryBudget,
    ) -> QueueDepths {
        QueueDepths {
            work_batches: work.len(),
            work_capacity: work.capacity(),
            index_batches: index.len(),
            index_capacity: index.capacity(),
            memory_bytes: memory.used(),
            memory_budget_bytes: memory.limit(),
            memory_refusals: memory.refusals(),
        }
    }
}

/// Reads queue depths without owning the pipeline.
#[derive(Debug, Clone)]
pub struct DepthProbe {
    work: BatchQueue<Work>,
    index: BatchQueue<IndexItem>,
    memory: Arc<MemoryBudget>,
}

impl DepthProbe {
    pub fn depths(&self) -> QueueDepths {
        QueueDepths::of(&self.work, &self.index, &self.memory)
    }
}

/// The stateless stages a worker runs on every event.
struct WorkerStages<'a> {
    parse_options: &'a ParseOptions,
    normaliser: &'a Normaliser,
}

fn parse_worker(
    work_queue: &BatchQueue<Work>,
    index_queue: &BatchQueue<IndexItem>,
    to_correlate: &crossbeam_channel::Sender<CorrelationInput>,
    stages: &WorkerStages<'_>,
    matcher: &mut SignatureWorker,
    stats: &Stats,
) {
    loop {
        let work = match work_queue.pop_timeout(POLL) {
            Ok(work) => work,
            Err(PopError::Timeout) => continue,
            Err(PopError::Closed) => return,
        };
        let range = work.range;
        let mut events = match work.input {
            WorkInput::Frames(batch) => {
                let mut events = Vec::with_capacity(batch.frames.len());
                for (index, frame) in batch.frames.iter().enumerate() {
                    let mut event = parse_syslog(
                        frame.bytes.clone(),
                        &batch.meta(index),
                        stages.parse_options,
                    );
                    host_from_peer(&mut event);
                    events.push(event);
                }
                events
            }
            WorkInput::NdjsonLines(batch) => decode_replayed_lines(&batch, stages.parse_options),
            WorkInput::Events(events) => events,
        };
        for event in &mut events {
            stages.normaliser.normalise(event);
        }
        let (set, batch) = matcher.match_batch(&mut events);
        // Every record, even one without observations: the stage puts records in WAL order.
        // Blocks while the correlation stage is behind (backpressure); fails only when it has
        // stopped, which happens after the workers.
        let _ = to_correlate.send(CorrelationInput::Record { range, set, batch });
        let mut malformed = 0u64;
        let mut truncated = 0u64;
        let mut invalid_utf8 = 0u64;
        let mut fields_truncated = 0u64;
        for event in &events {
            malformed += u64::from(event.flags.contains(EventFlags::PARSE_ERROR));
            truncated += u64::from(event.flags.contains(EventFlags::TRUNCATED));
            invalid_utf8 += u64::from(event.flags.contains(EventFlags::INVALID_UTF8));
            fields_truncated += u64::from(event.flags.contains(EventFlags::FIELDS_TRUNCATED));
        }
        let total = events.len() as u64;
        stats.record_parsed(total - malformed, malformed, truncated, invalid_utf8);
        stats.record_fields_truncated(fields_truncated);
        if index_queue.push_blocking((range, events)).is_err() {
            stats.record_dropped(DropReason::Shutdown, total);
        }
    }
}

/// Decodes NDJSON lines read back from the WAL, one event per line, numbered as they were when
/// accepted. A line was accepted under the limits of its time; should it not decode now (the
/// limits were lowered), it is kept as an unparsed event rather than lost.
fn decode_replayed_lines(
    batch: &cairn_ingest::batch::RawBatch,
    options: &ParseOptions,
) -> EventBatch {
    let limits = NdjsonLimits {
        max_line_bytes: usize::MAX,
        max_fields: options.max_json_fields,
        max_depth: options.max_json_depth,
    };
    let mut events = Vec::with_capacity(batch.frames.len());
    for (index, frame) in batch.frames.iter().enumerate() {
        let meta = batch.meta(index);
        let mut decoded = decode_ndjson(frame.bytes.clone(), &meta, &limits, options).events;
        match decoded.pop() {
            Some(event) if decoded.is_empty() => events.push(event),
            _ => {
                let mut event = Event::unparsed(frame.bytes.clone(), &meta);
                event.flags.insert(EventFlags::PARSE_ERROR);
                events.push(event);
            }
        }
    }
    events
}

/// A frame without a hostname (Python's SysLogHandler, many devices) is attributed to the
/// sender's address, as rsyslog and syslog-ng do.
fn host_from_peer(event: &mut Event) {
    if event.host.is_none()
        && let Some(peer) = event.peer
    {
        event.host = Some(Text::owned(peer.ip().to_string()));
    }
}

/// What the indexer shares with the correlation stage.
struct CorrelationLink {
    /// Where skipped ranges are forwarded.
    skips: crossbeam_channel::Sender<CorrelationInput>,
    /// Correlation's durable checkpoint position (WAL retention).
    durable: Arc<AtomicU64>,
}

fn indexer_loop(
    mut writer: cairn_index::EventWriter,
    index_queue: &BatchQueue<IndexItem>,
    wal: &IndexerWal,
    correlation: &CorrelationLink,
    commit_interval: Duration,
    stats: &Stats,
    indexed: &IndexedFeed,
) {
    let mut sequencer: Sequencer<EventBatch> = Sequencer::new(wal.indexed_up_to);
    let mut committed_position = wal.indexed_up_to;
    // Segments before this have been deleted (or never needed).
    let mut kept_from = Position(0);
    let mut pending = 0u64;
    // Events inserted into the sequencer and not released yet (waiting for an earlier record).
    let mut held_back = 0u64;
    let mut last_seq = Seq(0);
    let mut last_commit = Instant::now();
    loop {
        // At most POLL: a closed queue is only noticed when a wait ends.
        let wait = commit_interval
            .saturating_sub(last_commit.elapsed())
            .clamp(Duration::from_millis(1), POLL);
        let closed = match index_queue.pop_timeout(wait) {
            Ok((range, batch)) => {
                let count = batch.len() as u64;
                match sequencer.insert(range, batch) {
                    Ok(()) => held_back += count,
                    // A record before the committed position: the index holds it already.
                    Err(_duplicate) => stats.record_dropped(DropReason::AlreadyIndexed, count),
                }
                false
            }
            Err(PopError::Timeout) => false,
            Err(PopError::Closed) => true,
        };
        for skipped in wal.skips.try_iter() {
            sequencer.skip(skipped);
            // Fails only once the stage has stopped (shutdown): nothing left to tell it.
            let _ = correlation.skips.send(CorrelationInput::Skip(skipped));
        }
        while let Some((range, batch)) = sequencer.pop() {
            let count = batch.len() as u64;
            held_back -= count;
            if let Some(max_seq) = batch.iter().map(|event| event.seq).max() {
                last_seq = last_seq.max(max_seq);
            }
            match writer.add_record(range.end.0, &batch) {
                Ok(outcome) => {
                    pending += outcome.added;
                    // A partition that committed this record before a crash holds it already.
                    stats.record_dropped(DropReason::AlreadyIndexed, outcome.already_indexed);
                    stats.record_dropped(DropReason::Expired, outcome.expired);
                    indexed.publish(batch);
                }
                Err(error) => {
                    tracing::error!(%error, events = count, "indexing a batch failed");
                    stats.record_dropped(DropReason::IndexError, count);
                }
            }
        }
        // Too many partition writers open (a backfill over many days): commit early so that the
        // idle ones close, but not more often than ten times per interval should commits fail.
        let early = writer.wants_commit() && last_commit.elapsed() >= commit_interval / 10;
        if closed || early || last_commit.elapsed() >= commit_interval {
            let position = sequencer.next();
            if (pending > 0 || position > committed_position)
                && commit(
                    &mut writer,
                    wal,
                    position,
                    last_seq,
                    commit_interval,
                    pending,
                )
            {
                stats.record_indexed(pending);
                stats.record_commit();
                pending = 0;
                committed_position = position;
            }
            // Correlation's checkpoint may have moved without an index commit: look each time.
            let correlated = Position(correlation.durable.load(Ordering::Acquire));
            let keep_from = committed_position.min(correlated);
            if keep_from > kept_from && retain_wal_from(&wal.wal, keep_from) {
                kept_from = keep_from;
            }
            last_commit = Instant::now();
        }
        // Drops index partitions past retention (checks every few seconds, never touches
        // uncommitted events).
        writer.run_retention_if_due();
        if closed {
            if pending + held_back > 0 {
                // Not committed: the WAL still has them and the next start replays them.
                tracing::info!(
                    events = pending + held_back,
                    "events left for replay at the next start"
                );
                stats.record_dropped(DropReason::Shutdown, pending + held_back);
            }
            return;
        }
    }
}

/// Makes the WAL durable up to `position`, then commits the index with it. Returns whether the
/// commit happened (on failure the documents stay in the writer; the next commit retries).
fn commit(
    writer: &mut cairn_index::EventWriter,
    wal: &IndexerWal,
    position: Position,
    last_seq: Seq,
    commit_interval: Duration,
    pending: u64,
) -> bool {
    // The index must never name a position the WAL could lose: sync first.
    if let Err(error) = wal.wal.sync() {
        tracing::error!(%error, "wal sync failed, the index does not commit");
        return false;
    }
    let payload = CommitPayload {
        last_seq,
        wal_position: Some(position.0),
    };
    let commit_started = Instant::now();
    let committed = writer.commit(&payload);
    let commit_took = commit_started.elapsed();
    if commit_took > commit_interval {
        tracing::info!(took = ?commit_took, events = pending, "slow index commit");
    }
    match committed {
        Ok(()) => true,
        Err(error) => {
            tracing::error!(%error, "index commit failed");
            false
        }
    }
}

/// Deletes WAL segments every consumer is done with: `keep_from` is the smallest position the
/// index or correlation still needs. Returns whether it succeeded.
fn retain_wal_from(wal: &Wal, keep_from: Position) -> bool {
    match wal.truncate_before(keep_from) {
        Ok(_) => true,
        Err(error) => {
            tracing::warn!(%error, "wal segments could not be deleted (retried at the next commit)");
            false
        }
    }
}
