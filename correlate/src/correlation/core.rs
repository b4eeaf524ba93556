//! The watermark (router) and the deterministic single-threaded [`Correlator`].

use std::sync::Arc;
use std::time::Duration;

use cairn_ingest::Timestamp;

use super::graph::{Correlations, Observation, ObservationBatch};
use super::shard::{Shard, ShardCounters};
use super::snapshot::{self, SnapshotError, Totals};
use crate::alert::Alert;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Shard threads of the threaded [`super::Engine`] (the [`Correlator`] is one shard).
    pub shards: usize,
    /// How far behind the latest event time an event may arrive and still be correlated in
    /// its own time order. Later ones are counted as late and correlated at the watermark.
    pub allowed_lateness: Duration,
    /// Most open groups per correlation rule (split evenly between shards). When a new group
    /// would exceed it, the least recently updated of a sample of groups is evicted, counted,
    /// and the rule's alerts within a timespan after it are flagged `possibly_incomplete`.
    pub max_groups_per_rule: usize,
    /// Batches queued in front of the router and of each shard before `submit` blocks (and
    /// `try_submit` hands the batch back).
    pub queue_capacity: usize,
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            shards: 2,
            allowed_lateness: Duration::from_secs(60),
            max_groups_per_rule: 100_000,
            queue_capacity: 64,
        }
    }
}

impl EngineConfig {
    pub(crate) fn lateness_nanos(&self) -> i64 {
        i64::try_from(self.allowed_lateness.as_nanos()).unwrap_or(i64::MAX)
    }

    pub(crate) fn shard_count(&self) -> usize {
        self.shards.clamp(1, 256)
    }

    pub(crate) fn group_cap_per_shard(&self, shards: usize) -> usize {
        self.max_groups_per_rule.div_ceil(shards.max(1)).max(1)
    }
}

/// Figures of the engine (cumulative unless said otherwise).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub batches: u64,
    /// Observations submitted.
    pub observations: u64,
    /// Observations processed by the shards (submitted and derived from correlation alerts,
    /// minus dropped ones).
    pub processed: u64,
    /// Observations that arrived behind the watermark (event time < watermark): correlated as
    /// if they happened at the watermark.
    pub late: u64,
    /// Late observations so late that their window had closed (event time < watermark −
    /// timespan): dropped.
    pub late_dropped: u64,
    /// Observations not made because an event lacked a group-by or counted field.
    pub missing_group_field: u64,
    /// Groups evicted because a rule reached `max_groups_per_rule`.
    pub evicted_groups: u64,
    /// Groups whose window ended (closed, fired absences, or expired sliding windows).
    pub expired_groups: u64,
    /// Groups open now (gauge).
    pub open_groups: u64,
    /// Observations waiting in reorder queues now (gauge).
    pub queued: u64,
    /// Window timers armed now, including stale ones whose group has gone (gauge). Stale
    /// timers are swept once they outnumber the open groups, so this stays within about twice
    /// `open_groups` plus a few thousand.
    pub timers: u64,
    /// Correlation alerts emitted.
    pub correlation_alerts: u64,
    /// Detection alerts passed through.
    pub detection_alerts: u64,
    /// The current watermark (`None` before the first event).
    pub watermark: Option<Timestamp>,
}

impl EngineStats {
    /// The engine-wide counters a snapshot keeps.
    pub(crate) fn totals(&self) -> Totals {
        Totals {
            batches: self.batches,
            observations: self.observations,
            late: self.late,
            late_dropped: self.late_dropped,
            missing_group_field: self.missing_group_field,
            detection_alerts: self.detection_alerts,
        }
    }

    /// Figures starting from a snapshot's counters.
    pub(crate) fn from_totals(totals: Totals) -> EngineStats {
        EngineStats {
            batches: totals.batches,
            observations: totals.observations,
            late: totals.late,
            late_dropped: totals.late_dropped,
            missing_group_field: totals.missing_group_field,
            detection_alerts: totals.detection_alerts,
            ..EngineStats::default()
        }
    }

    pub(crate) fn add_shard(&mut self, counters: &ShardCounters) {
        self.processed += counters.processed;
        self.correlation_alerts += counters.alerts;
        self.evicted_groups += counters.evicted;
        self.expired_groups += counters.expired;
    }
}

/// What the router decided for one observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    OnTime,
    /// Behind the watermark: its time was set to the watermark.
    Late,
    /// Behind the watermark by more than its correlation's timespan.
    Dropped,
}

/// The event-time clock: watermark = latest event time − allowed lateness, advanced by batches
/// and, when idle, by the wall clock.
#[derive(Debug, Clone)]
pub(crate) struct Router {
    lateness: i64,
    pub(super) watermark: i64,
    pub(super) max_ts: i64,
    /// `(wall clock, latest event time)` when the stream was first seen idle.
    idle_since: Option<(i64, i64)>,
}

impl Router {
    pub fn new(lateness: i64) -> Router {
        Router {
            lateness: lateness.max(0),
            watermark: i64::MIN,
            max_ts: i64::MIN,
            idle_since: None,
        }
    }

    /// A router resuming a snapshot's clock; idleness is measured afresh.
    pub fn resumed(lateness: i64, watermark: i64, max_ts: i64) -> Router {
        Router {
            watermark,
            max_ts,
            ..Router::new(lateness)
        }
    }

    pub fn watermark(&self) -> Option<Timestamp> {
        (self.watermark != i64::MIN).then_some(Timestamp(self.watermark))
    }

    /// Decides an observation's fate against the current watermark (before the batch that
    /// carries it moves the watermark).
    pub fn admit(&self, observation: &mut Observation, timespan: i64) -> Admission {
        let ts = observation.ts.0;
        if ts >= self.watermark {
            return Admission::OnTime;
        }
        if ts < self.watermark.saturating_sub(timespan) {
            return Admission::Dropped;
        }
        observation.ts = Timestamp(self.watermark);
        Admission::Late
    }

    /// Takes a batch's latest event time; returns the new watermark when it moved.
    pub fn after_batch(&mut self, max_ts: Option<Timestamp>) -> Option<i64> {
        self.idle_since = None;
        let max_ts = max_ts?.0;
        self.max_ts = self.max_ts.max(max_ts);
        self.raise(self.max_ts.saturating_sub(self.lateness))
    }

    /// The wall clock says `now` and no batch came since the previous call: event time is
    /// taken to have moved on with the wall clock since the stream went idle (so a sender
    /// whose clock is off does not matter). Returns the new watermark when it moved.
    pub fn idle(&mut self, now: Timestamp) -> Option<i64> {
        match self.idle_since {
            None => {
                self.idle_since = Some((now.0, self.max_ts));
                None
            }
            Some((since, latest)) => {
                if latest == i64::MIN {
                    return None;
                }
                let elapsed = now.0.saturating_sub(since);
                if elapsed <= 0 {
                    return None;
                }
                self.raise(latest.saturating_add(elapsed).saturating_sub(self.lateness))
            }
        }
    }

    fn raise(&mut self, candidate: i64) -> Option<i64> {
        if candidate > self.watermark {
            self.watermark = candidate;
            Some(candidate)
        } else {
            None
        }
    }
}

/// The deterministic single-threaded correlation engine: one shard holding every group, driven
/// by the caller. The same input (batches and idle calls, in the same order) always gives the
/// same alerts in the same order; the threaded [`super::Engine`] gives the same alerts as a
/// multiset. Use it directly for tests and replays.
#[derive(Debug)]
pub struct Correlator {
    correlations: Arc<Correlations>,
    router: Router,
    shard: Shard,
    derived: Vec<Observation>,
    stats: EngineStats,
    finished: bool,
}

impl Correlator {
    pub fn new(correlations: Arc<Correlations>, config: &EngineConfig) -> Correlator {
        Correlator {
            router: Router::new(config.lateness_nanos()),
            shard: Shard::new(Arc::clone(&correlations), config.max_groups_per_rule),
            derived: Vec::new(),
            stats: EngineStats::default(),
            finished: false,
            correlations,
        }
    }

    /// Resumes from a [`Correlator::snapshot`] (or an [`super::Engine::snapshot`]: the format is
    /// the same) taken under the same correlations and tagged with `fingerprint`. Feeding it the
    /// batches that followed the snapshot gives the alerts the uninterrupted correlator gives.
    ///
    /// # Errors
    /// [`SnapshotError`] when the snapshot is damaged, of another version, or was taken under
    /// other correlations.
    pub fn restore(
        correlations: Arc<Correlations>,
        config: &EngineConfig,
        snapshot: &[u8],
        fingerprint: u64,
    ) -> Result<Correlator, SnapshotError> {
        let decoded = snapshot::decode(snapshot, &correlations, fingerprint)?;
        let router = decoded.router(config.lateness_nanos());
        let stats = EngineStats::from_totals(decoded.totals);
        let shard = decoded
            .into_shards(&correlations, 1, config.max_groups_per_rule)
            .pop()
            .unwrap_or_else(|| Shard::new(Arc::clone(&correlations), config.max_groups_per_rule));
        Ok(Correlator {
            router,
            shard,
            derived: Vec::new(),
            stats,
            finished: false,
            correlations,
        })
    }

    /// The complete state, encoded (see [`super::snapshot`]) and tagged with `fingerprint`
    /// (whatever identifies the rules to the caller; [`Correlator::restore`] wants it back).
    pub fn snapshot(&self, fingerprint: u64) -> Vec<u8> {
        let mut part = Vec::new();
        snapshot::encode_part(&self.shard, &mut part);
        snapshot::encode(
            fingerprint,
            &self.correlations,
            &self.router,
            &self.stats.totals(),
            &[part],
        )
    }

    /// Takes one batch: its detection alerts go straight to `alerts`; its observations are
    /// admitted against the watermark and queued; then the watermark moves to the batch's
    /// latest event time − lateness and everything before it is correlated.
    ///
    /// After [`Correlator::finish`], batches are ignored.
    pub fn submit(&mut self, batch: ObservationBatch, alerts: &mut Vec<Alert>) {
        if self.finished {
            return;
        }
        self.stats.batches += 1;
        self.stats.detection_alerts += batch.alerts.len() as u64;
        self.stats.missing_group_field += batch.missing_group_field;
        alerts.extend(batch.alerts);
        for mut observation in batch.observations {
            self.stats.observations += 1;
            let Some(compiled) = self
                .correlations
                .correlations
                .get(observation.correlation.0 as usize)
            else {
                continue;
            };
            match self.router.admit(&mut observation, compiled.timespan) {
                Admission::OnTime => self.shard.insert(observation),
                Admission::Late => {
                    self.stats.late += 1;
                    self.shard.insert(observation);
                }
                Admission::Dropped => {
                    self.stats.late += 1;
                    self.stats.late_dropped += 1;
                }
            }
        }
        if let Some(watermark) = self.router.after_batch(batch.max_ts) {
            self.advance(watermark, false, alerts);
        }
    }

    /// Moves the watermark with the wall clock when no batch came since the previous call
    /// (call it periodically, e.g. every second, while the input is idle).
    pub fn advance_idle(&mut self, now: Timestamp, alerts: &mut Vec<Alert>) {
        if self.finished {
            return;
        }
        if let Some(watermark) = self.router.idle(now) {
            self.advance(watermark, false, alerts);
        }
    }

    /// End of input: the watermark goes to +∞, every queued observation is correlated, closing
    /// windows are decided and pending absences fire. Returns the final figures.
    pub fn finish(&mut self, alerts: &mut Vec<Alert>) -> EngineStats {
        if !self.finished {
            self.advance(i64::MAX, true, alerts);
            self.finished = true;
        }
        self.stats()
    }

    /// Current figures.
    pub fn stats(&self) -> EngineStats {
        let mut stats = self.stats.clone();
        stats.add_shard(&self.shard.counters);
        stats.open_groups = self.shard.open_groups();
        stats.queued = self.shard.queued() as u64;
        stats.timers = self.shard.timers() as u64;
        stats.watermark = self.router.watermark();
        stats
    }

    /// The current watermark.
    pub fn watermark(&self) -> Option<Timestamp> {
        self.router.watermark()
    }

    /// Approximate bytes of per-group state of one correlation (see
    /// `tests/correlation_memory.rs` for an allocator-measured figure).
    pub fn approximate_group_bytes(&self, correlation: super::CorrelationId) -> usize {
        self.shard.approximate_group_bytes(correlation)
    }

    fn advance(&mut self, watermark: i64, flush: bool, alerts: &mut Vec<Alert>) {
        for depth in 1..=self.correlations.max_depth {
            self.shard
                .run_stage(depth, watermark, flush, &mut self.derived, alerts);
            for observation in self.derived.drain(..) {
                self.shard.insert(observation);
            }
        }
    }
}
