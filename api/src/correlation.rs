//! The live correlation stage: one thread between the parse workers and the correlation engine.
//!
//! ```text
//! parse workers ──(rule set, ObservationBatch)──► correlation stage ──► Engine (router + shards)
//!                                                                          │ alerts
//!                                                                          ▼
//!                                                                   incident service
//! ```
//!
//! The parse workers match each batch and hand over what the engine needs from it (observations,
//! detection alerts, the batch's latest event time) together with the rule set that made it.
//! This stage owns the [`Engine`]:
//!
//! - **Idle streams**: when no batch arrives for [`IDLE_TICK`], it tells the engine the wall
//!   clock, which moves the watermark on so windows close and absences fire without new events.
//! - **Reloads**: the engine is kept across a reload that leaves the correlation rules as they
//!   were (only detection rules changed). When the correlations themselves change, the old
//!   engine is stopped *without* ending its input (open windows are dropped, not fired: ending
//!   the input would fire absences that are not due) and a new one starts; this is logged.
//! - **Shutdown**: once every worker has dropped its sender, the engine is stopped the same way.
//!   Correlation state is not persisted across restarts yet.

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cairn_correlate::{Alert, Engine, EngineConfig, EngineStats, ObservationBatch};
use cairn_ingest::Timestamp;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};

use crate::signatures::RuleSet;

/// How long without a batch before the engine is told the wall-clock time.
pub const IDLE_TICK: Duration = Duration::from_millis(250);
/// How often the published figures are refreshed.
const STATS_EVERY: Duration = Duration::from_millis(500);

/// What a parse worker hands over per batch.
pub type CorrelationInput = (Arc<RuleSet>, ObservationBatch);

/// The running stage.
#[derive(Debug)]
pub struct CorrelationStage {
    input: Option<Sender<CorrelationInput>>,
    thread: Option<JoinHandle<()>>,
    probe: CorrelationProbe,
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
    /// Starts the stage's thread; the engine itself starts with the first batch. `queue` bounds
    /// the batches waiting in front of the stage (workers block when it is full).
    pub fn start(
        config: EngineConfig,
        alerts: Sender<Alert>,
        queue: usize,
    ) -> std::io::Result<CorrelationStage> {
        let (input, receiver) = bounded::<CorrelationInput>(queue.max(1));
        let probe = CorrelationProbe::default();
        let thread_probe = probe.clone();
        let thread = std::thread::Builder::new()
            .name("cairn-correlate".to_string())
            .spawn(move || run(&receiver, &config, &alerts, &thread_probe))?;
        Ok(CorrelationStage {
            input: Some(input),
            thread: Some(thread),
            probe,
        })
    }

    /// The sender a parse worker uses.
    pub fn input(&self) -> Sender<CorrelationInput> {
        self.input.clone().unwrap_or_else(|| bounded(1).0)
    }

    pub fn probe(&self) -> CorrelationProbe {
        self.probe.clone()
    }

    /// Stops the engine once every worker's sender is gone (call after joining the workers)
    /// and waits for the stage's thread. Alerts already due have been sent when it returns.
    pub fn shutdown(mut self) {
        self.input.take();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the correlation stage panicked");
        }
    }
}

fn run(
    input: &Receiver<CorrelationInput>,
    config: &EngineConfig,
    alerts: &Sender<Alert>,
    probe: &CorrelationProbe,
) {
    let mut running: Option<(u64, Engine)> = None;
    let mut published = Instant::now();
    loop {
        match input.recv_timeout(IDLE_TICK) {
            Ok((set, batch)) => {
                let current = running.as_ref().map(|(fingerprint, _)| *fingerprint);
                if current != Some(set.correlation_fingerprint) {
                    if let Some((_, old)) = running.take() {
                        let stats = old.stop();
                        tracing::warn!(
                            open_groups = stats.open_groups,
                            "correlation rules changed: open correlation windows were dropped"
                        );
                    }
                    match Engine::start(
                        Arc::clone(&set.correlations),
                        config.clone(),
                        alerts.clone(),
                    ) {
                        Ok(engine) => {
                            tracing::info!(
                                correlations = set.correlations.len(),
                                shards = config.shards,
                                lateness = ?config.allowed_lateness,
                                "correlation engine started"
                            );
                            running = Some((set.correlation_fingerprint, engine));
                        }
                        Err(error) => {
                            tracing::error!(%error, "cannot start the correlation engine");
                        }
                    }
                }
                if let Some((_, engine)) = &running
                    && let Err(error) = engine.submit(batch)
                {
                    tracing::error!(%error, "correlation engine refused a batch");
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if let Some((_, engine)) = &running {
                    let _ = engine.advance_idle(Timestamp::now());
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if published.elapsed() >= STATS_EVERY {
            if let Some((_, engine)) = &running {
                probe.publish(engine.stats());
            }
            published = Instant::now();
        }
    }
    if let Some((_, engine)) = running.take() {
        probe.publish(engine.stop());
    }
}
