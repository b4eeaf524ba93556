//! The pipeline's OS threads: parse workers and the indexer.
//!
//! ```text
//! listeners ──Work──► work queue ──► parse workers (N threads: parse, normalise, match) ──EventBatch──► index queue ──► indexer
//!                                         │ observations, detection alerts
//!                                         ▼
//!                                    correlation stage ──► engine ──► alerts ──► incident service
//! ```
//!
//! Both queues are bounded; the work queue is where backpressure is felt by senders (TCP pauses,
//! HTTP 429, UDP drops). Workers block on the index queue when the indexer falls behind, which
//! fills the work queue in turn. Nothing on the per-event path takes a lock.
//!
//! The indexer commits every `commit_interval` (when anything was added) with a payload naming the
//! highest sequence number in the commit, and counts events as `indexed` only once committed.
//! Shutdown: close the work queue, let workers drain it, stop the correlation stage, close the
//! index queue, let the indexer drain it and commit one last time.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cairn_index::{CommitPayload, EventIndex};
use cairn_ingest::batch::Work;
use cairn_ingest::normalise::Normaliser;
use cairn_ingest::parse::{ParseOptions, parse_syslog};
use cairn_ingest::queue::{BatchQueue, PopError};
use cairn_ingest::stats::{DropReason, Stats};
use cairn_ingest::{Event, EventBatch, EventFlags, Seq, Text};

use crate::correlation::{CorrelationInput, CorrelationProbe, CorrelationStage};
use crate::signatures::{SignatureWorker, Signatures};

/// Pipeline settings.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub workers: usize,
    pub queue_batches: usize,
    pub index_queue_batches: usize,
    pub commit_interval: Duration,
    /// The correlation engine's settings.
    pub correlation: cairn_correlate::EngineConfig,
}

/// The running pipeline threads and their queues.
#[derive(Debug)]
pub struct Pipeline {
    work_queue: BatchQueue<Work>,
    index_queue: BatchQueue<EventBatch>,
    workers: Vec<JoinHandle<()>>,
    correlation: Option<CorrelationStage>,
    indexer: Option<JoinHandle<()>>,
}

const POLL: Duration = Duration::from_millis(100);

impl Pipeline {
    /// Starts the worker threads and the indexer thread (which takes the index's single writer).
    pub fn start(
        config: &PipelineConfig,
        index: Arc<EventIndex>,
        parse_options: ParseOptions,
        normaliser: &Arc<Normaliser>,
        signatures: &Arc<Signatures>,
        stats: Arc<Stats>,
        alerts: crossbeam_channel::Sender<cairn_correlate::Alert>,
    ) -> Result<Pipeline, cairn_index::IndexError> {
        let work_queue: BatchQueue<Work> = BatchQueue::new(config.queue_batches);
        let correlation =
            CorrelationStage::start(config.correlation.clone(), alerts, config.queue_batches)
                .map_err(|error| cairn_index::IndexError::Internal(error.to_string()))?;
        let index_queue: BatchQueue<EventBatch> = BatchQueue::new(config.index_queue_batches);
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
        let indexer = std::thread::Builder::new()
            .name("cairn-indexer".to_string())
            .spawn(move || indexer_loop(writer, &indexer_queue, commit_interval, &indexer_stats))
            .map_err(|error| cairn_index::IndexError::Internal(error.to_string()))?;
        Ok(Pipeline {
            work_queue,
            index_queue,
            workers,
            correlation: Some(correlation),
            indexer: Some(indexer),
        })
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

    /// Depth of both queues, for stats: (work len, work capacity, index len, index capacity).
    pub fn queue_depths(&self) -> QueueDepths {
        QueueDepths::of(&self.work_queue, &self.index_queue)
    }

    /// Handles for reading queue depths from the API.
    pub fn depth_probe(&self) -> DepthProbe {
        DepthProbe {
            work: self.work_queue.clone(),
            index: self.index_queue.clone(),
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
}

impl QueueDepths {
    fn of(work: &BatchQueue<Work>, index: &BatchQueue<EventBatch>) -> QueueDepths {
        QueueDepths {
            work_batches: work.len(),
            work_capacity: work.capacity(),
            index_batches: index.len(),
            index_capacity: index.capacity(),
        }
    }
}

/// Reads queue depths without owning the pipeline.
#[derive(Debug, Clone)]
pub struct DepthProbe {
    work: BatchQueue<Work>,
    index: BatchQueue<EventBatch>,
}

impl DepthProbe {
    pub fn depths(&self) -> QueueDepths {
        QueueDepths::of(&self.work, &self.index)
    }
}

/// The stateless stages a worker runs on every event.
struct WorkerStages<'a> {
    parse_options: &'a ParseOptions,
    normaliser: &'a Normaliser,
}

fn parse_worker(
    work_queue: &BatchQueue<Work>,
    index_queue: &BatchQueue<EventBatch>,
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
        let mut events = match work {
            Work::Frames(batch) => {
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
            Work::Events(events) => events,
        };
        for event in &mut events {
            stages.normaliser.normalise(event);
        }
        let (set, observations) = matcher.match_batch(&mut events);
        if !observations.is_empty() {
            // Blocks while the correlation stage is behind (backpressure); fails only when it
            // has stopped, which happens after the workers.
            let _ = to_correlate.send((set, observations));
        }
        let mut malformed = 0u64;
        let mut truncated = 0u64;
        let mut invalid_utf8 = 0u64;
        for event in &events {
            malformed += u64::from(event.flags.contains(EventFlags::PARSE_ERROR));
            truncated += u64::from(event.flags.contains(EventFlags::TRUNCATED));
            invalid_utf8 += u64::from(event.flags.contains(EventFlags::INVALID_UTF8));
        }
        let total = events.len() as u64;
        stats.record_parsed(total - malformed, malformed, truncated, invalid_utf8);
        if index_queue.push_blocking(events).is_err() {
            stats.record_dropped(DropReason::Shutdown, total);
        }
    }
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

fn indexer_loop(
    mut writer: cairn_index::EventWriter,
    index_queue: &BatchQueue<EventBatch>,
    commit_interval: Duration,
    stats: &Stats,
) {
    let mut pending = 0u64;
    let mut last_seq = Seq(0);
    let mut last_commit = Instant::now();
    loop {
        let wait = commit_interval
            .saturating_sub(last_commit.elapsed())
            .max(Duration::from_millis(1));
        let closed = match index_queue.pop_timeout(wait) {
            Ok(batch) => {
                let count = batch.len() as u64;
                if let Some(max_seq) = batch.iter().map(|event| event.seq).max() {
                    last_seq = last_seq.max(max_seq);
                }
                match writer.add_batch(&batch) {
                    Ok(added) => {
                        pending += added;
                        stats.record_dropped(DropReason::IndexError, count.saturating_sub(added));
                    }
                    Err(error) => {
                        tracing::error!(%error, events = count, "indexing a batch failed");
                        stats.record_dropped(DropReason::IndexError, count);
                    }
                }
                false
            }
            Err(PopError::Timeout) => false,
            Err(PopError::Closed) => true,
        };
        if closed || last_commit.elapsed() >= commit_interval {
            if pending > 0 {
                let payload = CommitPayload {
                    last_seq,
                    wal_position: None,
                };
                let commit_started = Instant::now();
                let committed = writer.commit(&payload);
                let commit_took = commit_started.elapsed();
                if commit_took > commit_interval {
                    tracing::info!(took = ?commit_took, events = pending, "slow index commit");
                }
                match committed {
                    Ok(()) => {
                        stats.record_indexed(pending);
                        stats.record_commit();
                        pending = 0;
                    }
                    Err(error) => {
                        // The documents stay in the writer; the next commit retries them.
                        tracing::error!(%error, "index commit failed");
                    }
                }
            }
            last_commit = Instant::now();
        }
        if closed {
            if pending > 0 {
                stats.record_dropped(DropReason::IndexError, pending);
            }
            return;
        }
    }
}
