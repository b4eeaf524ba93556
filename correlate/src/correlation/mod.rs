//! The Sigma correlation engine, on event time, sharded.
//!
//! # Pieces
//!
//! - [`rule`]: parsing a correlation section (`event_count`, `value_count`, `temporal`,
//!   `temporal_ordered`, `group-by`, `aliases`, `timespan`, `condition`, and the extended
//!   temporal condition `a and not b` for absence), with precise rejections and caps
//!   ([`CorrelationLimits`]).
//! - [`Correlations::build`]: the compiled graph: for every detection rule of the [`crate::Matcher`],
//!   the correlation inputs it feeds and whether it alerts on its own; correlations of
//!   correlations; depth; no cycles.
//! - [`Correlations::observe`]: the cheap per-event step in the parse workers: detection alerts
//!   and compact [`Observation`]s (time, seq, correlation input, group key, counted value).
//! - [`Correlator`]: the deterministic single-threaded engine; [`Engine`]: the same with a
//!   router thread and shard threads.
//!
//! # Event time and the watermark
//!
//! The watermark is the latest event time seen (the `max_ts` of every submitted batch, matched
//! or not) minus the allowed lateness; an idle input moves it with the wall clock
//! ([`Correlator::advance_idle`]). Observations wait in a per-shard reorder queue and are
//! released in `(ts, seq, correlation, input)` order once their time is before the watermark,
//! so input shuffled within the allowed lateness gives exactly the alerts of the sorted input.
//! An observation whose time is already behind the watermark when it arrives is *late*: it is
//! counted, and correlated as if it happened at the watermark (its group's open window still
//! takes it), unless it is behind by more than its correlation's timespan (its window has
//! closed everywhere): then it is dropped and counted.
//!
//! # Semantics per type (per group, after the reorder queue)
//!
//! - Windows span `[t − timespan, t]` inclusive (five events 60 s apart in total fit in `60s`).
//! - `event_count` / `value_count` whose condition has only lower bounds (`gt`, `gte`) slide
//!   and fire at the event that makes the condition true. A condition with an upper bound
//!   (`lt`, `lte`, `eq`, `neq`, ranges) cannot be decided before the window ends: the window
//!   opens at the group's first event, takes events up to `first + timespan`, and is decided
//!   when it ends (alert time = window end). `value_count` counts distinct values of `field`
//!   (several fields: distinct combinations), and with an upper bound tracks at most the
//!   largest number of the condition + 1 values (enough to decide it).
//! - `temporal`: events of at least N distinct rules (default: all) within the timespan.
//! - `temporal_ordered`: events of every rule, in the order of `rules`, within the timespan;
//!   one event never serves as two steps.
//! - Absence (`a and not b`): the first `a` of a group opens a window `[t_a, t_a + timespan]`;
//!   a `b` inside it closes the window silently; otherwise it fires at the window end (alert
//!   time = window end, `first_ts` = `t_a`, `event_count` = the `a`s).
//! - After a correlation fires for a group, that group's state is dropped (the next event
//!   starts afresh): one burst gives one alert.
//! - An event missing a `group-by` field (or the counted field) does not feed that
//!   correlation; it is counted (`missing_group_field`).
//! - A detection rule that no correlation references (or with `generate: true`) alerts on each
//!   match; a referenced rule only feeds. The same holds for correlations referenced by other
//!   correlations. Alerts of a correlation feeding another become observations of the next one
//!   (time = alert time, seq = the event that completed it, group values taken from the
//!   upstream group by name).
//!
//! # Invariants
//!
//! - **Determinism.** The state of one (correlation, group) depends only on the ordered
//!   sequence of its observations, and the order is fixed by the observations' keys, never by
//!   arrival, threads or sharding. Chains are processed in *stages*: depth 1 everywhere, then
//!   depth 2…; in the threaded engine, shards exchange the observations derived from alerts and
//!   a "stage done" marker per depth before going on, so every observation of depth `d` below
//!   the watermark is queued before any of depth `d` is released. Hence the threaded
//!   [`Engine`] (any shard count) emits the same multiset of alerts as the [`Correlator`].
//! - **No locks on state.** Each group lives in exactly one shard (hash of correlation and
//!   group key); shards only exchange messages.
//! - **Bounded.** Per group the state is bounded by the condition (a sliding `gte: N` keeps at
//!   most N − 1 contributions; evidence at most [`crate::MAX_EVIDENCE`]); open groups per rule
//!   are capped (`max_groups_per_rule`, evictions counted and flagged on alerts); timers live in
//!   a hashed wheel on event time, one live timer per group.
//! - **Nothing panics on rule input**; malformed correlations are [`crate::Rejection`]s naming
//!   the place (`correlation.timespan: '90x' is not a number and a unit`).

mod core;
mod engine;
mod graph;
mod hash;
pub mod rule;
mod shard;
pub mod snapshot;
mod wheel;

pub use self::core::{Correlator, EngineConfig, EngineStats};
pub use engine::{Engine, EngineError, TrySubmitError};
pub use graph::{
    CorrelationId, CorrelationInfo, CorrelationOptions, Correlations, GroupKey, Observation,
    ObservationBatch,
};
pub use rule::{Bound, CorrelationLimits, CorrelationSpec, CorrelationType, CountCondition};
pub use snapshot::{SNAPSHOT_VERSION, SnapshotError, snapshot_fingerprint};
