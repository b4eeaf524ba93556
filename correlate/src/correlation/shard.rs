//! The state one shard owns: a reorder queue and a timer wheel per chain depth, and the open
//! groups of every correlation whose group keys hash to the shard.
//!
//! A shard is driven in *stages*: `run_stage(depth, watermark)` releases the queued observations
//! of correlations at that depth whose time is before the watermark, in `(ts, seq, input)` order,
//! then fires the timers due. Alerts of a correlation feeding another become observations of the
//! next depth (with times before the watermark), so running depths in order releases every
//! observation of a group in the same order whatever the arrival order or the sharding.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;

use cairn_ingest::{Seq, Timestamp};

use super::graph::{
    Compiled, CorrelationId, Correlations, KEY_SEPARATOR, Observation, StateKind,
    derived_observation,
};
use super::hash::FxBuild;
use super::wheel::{Timer, TimerWheel};
use crate::alert::{Alert, MAX_EVIDENCE};

/// `Group::timer_at` when no timer is armed.
pub(super) const NO_TIMER: i64 = i64::MIN;

/// One contributing observation: its time and sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Contrib {
    pub ts: i64,
    pub seq: u64,
}

/// An ordered temporal chain: the events of rules `0..=i` in order.
#[derive(Debug, Clone)]
pub(crate) struct Chain {
    pub(super) start: i64,
    pub(super) items: Vec<Contrib>,
}

#[derive(Debug)]
pub(crate) struct Closing {
    pub(super) start: i64,
    pub(super) count: u64,
    pub(super) contribs: Vec<Contrib>,
    pub(super) values: Vec<u64>,
}

#[derive(Debug)]
pub(crate) struct Pending {
    pub(super) start: i64,
    pub(super) count: u64,
    pub(super) contribs: Vec<Contrib>,
}

/// Per-group state, by correlation kind. The common case (`event_count` with a threshold) is
/// inline; the others are boxed to keep the enum small.
#[derive(Debug)]
pub(crate) enum GroupState {
    /// Contributions in the sliding window, oldest first (at most threshold − 1 kept).
    Sliding(VecDeque<Contrib>),
    /// Newest contribution of each distinct value in the sliding window.
    Distinct(Vec<(u64, Contrib)>),
    Closing(Box<Closing>),
    /// Newest contribution of each rule (`ts == i64::MIN`: none).
    Temporal(Box<[Contrib]>),
    /// Best chain (latest start) ending with rule `i`.
    Ordered(Box<[Option<Chain>]>),
    Absence(Box<Pending>),
}

#[derive(Debug)]
pub(crate) struct Group {
    pub(super) state: GroupState,
    /// Deadline of the armed timer, or `NO_TIMER`.
    pub(super) timer_at: i64,
    /// A contribution came from an alert flagged `possibly_incomplete`.
    pub(super) incomplete: bool,
}

impl Group {
    /// When the group's window ends: for closing windows and absences, when it must be
    /// decided; for sliding windows, when every contribution has left it.
    fn deadline(&self, timespan: i64) -> i64 {
        match &self.state {
            GroupState::Closing(closing) => closing.start.saturating_add(timespan),
            GroupState::Absence(pending) => pending.start.saturating_add(timespan),
            _ => self.newest_ts().saturating_add(timespan),
        }
    }

    /// Time of the newest contribution kept (for closing windows and absences: the start).
    /// Not stored: a sliding window's state says it, and every byte per group counts.
    fn newest_ts(&self) -> i64 {
        match &self.state {
            GroupState::Sliding(window) => window.back().map_or(i64::MIN, |newest| newest.ts),
            GroupState::Distinct(values) => values
                .iter()
                .map(|(_, seen)| seen.ts)
                .max()
                .unwrap_or(i64::MIN),
            GroupState::Temporal(newest) => {
                newest.iter().map(|seen| seen.ts).max().unwrap_or(i64::MIN)
            }
            GroupState::Ordered(best) => best
                .iter()
                .flatten()
                .filter_map(|chain| chain.items.last().map(|last| last.ts))
                .max()
                .unwrap_or(i64::MIN),
            GroupState::Closing(closing) => closing.start,
            GroupState::Absence(pending) => pending.start,
        }
    }
}

/// An observation in a reorder queue, ordered by `(ts, seq, correlation, input)` (inputs of a
/// `temporal_ordered` correlation in reverse, so one event never serves as two steps).
#[derive(Debug)]
struct Queued {
    ts: i64,
    seq: u64,
    order: u64,
    observation: Observation,
}

impl Queued {
    fn key(&self) -> (i64, u64, u64, &str, u64) {
        (
            self.ts,
            self.seq,
            self.order,
            self.observation.group.as_str(),
            self.observation.value,
        )
    }
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Queued {}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Queued {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// Counters of one shard (summed by the engine).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ShardCounters {
    pub processed: u64,
    pub alerts: u64,
    pub evicted: u64,
    pub expired: u64,
}

pub(super) type TimerItem = (u32, Arc<str>);

/// Stale timers a wheel may hold beyond one per open group before they are swept.
const STALE_TIMER_SLACK: usize = 4096;

/// Everything one shard owns.
#[derive(Debug)]
pub(crate) struct Shard {
    pub(super) correlations: Arc<Correlations>,
    queues: Vec<BinaryHeap<Reverse<Queued>>>,
    pub(super) wheels: Vec<TimerWheel<TimerItem>>,
    pub(super) groups: Vec<HashMap<Arc<str>, Group, FxBuild>>,
    /// Effective time of the last eviction per correlation.
    pub(super) last_eviction: Vec<Option<i64>>,
    group_cap: usize,
    pub counters: ShardCounters,
    due: Vec<Timer<TimerItem>>,
}

impl Shard {
    pub fn new(correlations: Arc<Correlations>, group_cap: usize) -> Shard {
        let depths = correlations.max_depth;
        let count = correlations.correlations.len();
        Shard {
            queues: (0..depths).map(|_| BinaryHeap::new()).collect(),
            wheels: (0..depths).map(|_| TimerWheel::new()).collect(),
            groups: (0..count).map(|_| HashMap::default()).collect(),
            last_eviction: vec![None; count],
            group_cap: group_cap.max(1),
            counters: ShardCounters::default(),
            due: Vec::new(),
            correlations,
        }
    }

    /// Open groups of every correlation.
    pub fn open_groups(&self) -> u64 {
        self.groups.iter().map(|groups| groups.len() as u64).sum()
    }

    /// Observations waiting in the reorder queues.
    pub fn queued(&self) -> usize {
        self.queues.iter().map(BinaryHeap::len).sum()
    }

    /// The observations waiting in the reorder queues, in no particular order.
    pub fn queued_observations(&self) -> impl Iterator<Item = &Observation> {
        self.queues
            .iter()
            .flat_map(|queue| queue.iter().map(|Reverse(queued)| &queued.observation))
    }

    /// Puts back a group read from a snapshot and arms its timer again (a snapshot keeps only
    /// each group's live deadline, `timer_at`; stale wheel entries are not worth keeping).
    /// Ignored when `correlation` is out of range (the decoder has checked it).
    pub fn restore_group(&mut self, correlation: u32, key: Arc<str>, group: Group) {
        let Some(compiled) = self.correlations.correlations.get(correlation as usize) else {
            return;
        };
        if group.timer_at != NO_TIMER
            && let Some(wheel) = self.wheels.get_mut(compiled.depth.saturating_sub(1))
        {
            wheel.insert(group.timer_at, (correlation, Arc::clone(&key)));
        }
        if let Some(groups) = self.groups.get_mut(correlation as usize) {
            groups.insert(key, group);
        }
    }

    /// Queues an observation (already admitted by the router, or derived from an alert).
    pub fn insert(&mut self, observation: Observation) {
        let Some(compiled) = self
            .correlations
            .correlations
            .get(observation.correlation.0 as usize)
        else {
            return;
        };
        let input_order = if matches!(compiled.state, StateKind::Ordered) {
            u64::from(u16::MAX - observation.input)
        } else {
            u64::from(observation.input)
        };
        let Some(queue) = self.queues.get_mut(compiled.depth.saturating_sub(1)) else {
            return;
        };
        queue.push(Reverse(Queued {
            ts: observation.ts.0,
            seq: observation.seq.0,
            order: (u64::from(observation.correlation.0) << 16) | input_order,
            observation,
        }));
    }

    /// Releases the queued observations of correlations at `depth` (1-based) whose time is
    /// before `watermark` (all of them when `flush`), then fires the timers due (all open
    /// windows when `flush`). Alerts to emit go to `alerts`, observations for deeper
    /// correlations to `derived`.
    pub fn run_stage(
        &mut self,
        depth: usize,
        watermark: i64,
        flush: bool,
        derived: &mut Vec<Observation>,
        alerts: &mut Vec<Alert>,
    ) {
        let Some(index) = depth.checked_sub(1) else {
            return;
        };
        if index >= self.queues.len() {
            return;
        }
        let correlations = Arc::clone(&self.correlations);
        while let Some(Reverse(top)) = self.queues[index].peek() {
            if !flush && top.ts >= watermark {
                break;
            }
            let Some(Reverse(queued)) = self.queues[index].pop() else {
                break;
            };
            self.process(&correlations, queued.observation, derived, alerts);
        }
        if flush {
            self.flush_depth(&correlations, depth, derived, alerts);
            return;
        }
        let mut due = std::mem::take(&mut self.due);
        self.wheels[index].advance(watermark, &mut due);
        for timer in due.drain(..) {
            let (correlation, key) = timer.item;
            self.on_timer(
                &correlations,
                index,
                correlation,
                key,
                timer.deadline,
                watermark,
                derived,
                alerts,
            );
        }
        self.due = due;
    }

    #[allow(clippy::too_many_arguments)]
    fn on_timer(
        &mut self,
        correlations: &Correlations,
        wheel: usize,
        correlation: u32,
        key: Arc<str>,
        deadline: i64,
        watermark: i64,
        derived: &mut Vec<Observation>,
        alerts: &mut Vec<Alert>,
    ) {
        let Some(compiled) = correlations.correlations.get(correlation as usize) else {
            return;
        };
        let Some(groups) = self.groups.get_mut(correlation as usize) else {
            return;
        };
        let Some(group) = groups.get_mut(&key) else {
            return;
        };
        if group.timer_at != deadline {
            return; // stale: the group was reset and re-armed since
        }
        let current = group.deadline(compiled.timespan);
        if current >= watermark {
            group.timer_at = current;
            self.wheels[wheel].insert(current, (correlation, key));
            return;
        }
        let Some(group) = groups.remove(&key) else {
            return;
        };
        self.counters.expired += 1;
        let last_eviction = self.last_eviction[correlation as usize];
        let mut ctx = FireContext {
            all: correlations,
            compiled,
            key: &key,
            last_eviction,
            counters: &mut self.counters,
            derived,
            alerts,
        };
        decide(&mut ctx, group);
    }

    fn flush_depth(
        &mut self,
        correlations: &Correlations,
        depth: usize,
        derived: &mut Vec<Observation>,
        alerts: &mut Vec<Alert>,
    ) {
        for (index, compiled) in correlations.correlations.iter().enumerate() {
            if compiled.depth != depth {
                continue;
            }
            let groups = std::mem::take(&mut self.groups[index]);
            let mut sorted: Vec<(Arc<str>, Group)> = groups.into_iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            for (key, group) in sorted {
                self.counters.expired += 1;
                let mut ctx = FireContext {
                    all: correlations,
                    compiled,
                    key: &key,
                    last_eviction: self.last_eviction[index],
                    counters: &mut self.counters,
                    derived,
                    alerts,
                };
                decide(&mut ctx, group);
            }
        }
        if let Some(wheel) = self.wheels.get_mut(depth - 1) {
            *wheel = TimerWheel::new();
        }
    }

    fn process(
        &mut self,
        correlations: &Correlations,
        observation: Observation,
        derived: &mut Vec<Observation>,
        alerts: &mut Vec<Alert>,
    ) {
        let index = observation.correlation.0 as usize;
        let Some(compiled) = correlations.correlations.get(index) else {
            return;
        };
        self.counters.processed += 1;
        let ts = observation.ts.0;
        let timespan = compiled.timespan;
        let contrib = Contrib {
            ts,
            seq: observation.seq.0,
        };
        let key = observation.group.as_str();
        let groups = &mut self.groups[index];
        let mut ctx = FireContext {
            all: correlations,
            compiled,
            key,
            last_eviction: self.last_eviction[index],
            counters: &mut self.counters,
            derived,
            alerts,
        };

        // Windows decided at their end close first when this observation is past it.
        if matches!(
            compiled.state,
            StateKind::Closing { .. } | StateKind::Absence { .. }
        ) && let Some(group) = groups.get(key)
            && ts > group.deadline(timespan)
            && let Some(group) = groups.remove(key)
        {
            decide(&mut ctx, group);
        }

        let creates = match compiled.state {
            StateKind::Ordered => observation.input == 0,
            StateKind::Absence { started, .. } => observation.input == started,
            _ => true,
        };
        let mut created: Option<Arc<str>> = None;
        if !groups.contains_key(key) {
            if !creates {
                return;
            }
            if groups.len() >= self.group_cap {
                evict_one(groups);
                ctx.counters.evicted += 1;
                self.last_eviction[index] = Some(ts);
                ctx.last_eviction = Some(ts);
            }
            // The one allocation of the key: the map and the group's timer share it.
            let shared_key: Arc<str> = Arc::from(key);
            groups.insert(
                Arc::clone(&shared_key),
                Group {
                    state: new_state(compiled, ts),
                    timer_at: NO_TIMER,
                    incomplete: false,
                },
            );
            created = Some(shared_key);
        }
        let Some(group) = groups.get_mut(key) else {
            return;
        };
        group.incomplete |= observation.incomplete;
        let window_start = ts.saturating_sub(timespan);
        let fired = match (&mut group.state, compiled.state) {
            (GroupState::Sliding(window), StateKind::CountSliding { threshold }) => {
                window.push_back(contrib);
                while window
                    .front()
                    .is_some_and(|oldest| oldest.ts < window_start)
                {
                    window.pop_front();
                }
                if window.len() as u64 >= threshold {
                    let first_ts = window.front().map_or(ts, |oldest| oldest.ts);
                    ctx.fire(
                        ts,
                        first_ts,
                        window.len() as u64,
                        window.iter().copied(),
                        contrib.seq,
                        group.incomplete,
                    );
                    true
                } else {
                    false
                }
            }
            (GroupState::Distinct(values), StateKind::DistinctSliding { threshold }) => {
                values.retain(|(_, seen)| seen.ts >= window_start);
                match values
                    .iter_mut()
                    .find(|(value, _)| *value == observation.value)
                {
                    Some((_, seen)) => *seen = contrib,
                    None => values.push((observation.value, contrib)),
                }
                if values.len() as u64 >= threshold {
                    let mut contribs: Vec<Contrib> = values.iter().map(|(_, seen)| *seen).collect();
                    contribs.sort_by_key(|seen| (seen.ts, seen.seq));
                    let first_ts = contribs.first().map_or(ts, |seen| seen.ts);
                    ctx.fire(
                        ts,
                        first_ts,
                        contribs.len() as u64,
                        contribs.into_iter(),
                        contrib.seq,
                        group.incomplete,
                    );
                    true
                } else {
                    false
                }
            }
            (
                GroupState::Closing(closing),
                StateKind::Closing {
                    distinct,
                    distinct_cap,
                },
            ) => {
                closing.count += 1;
                if distinct {
                    if !closing.values.contains(&observation.value)
                        && (closing.values.len() as u64) < distinct_cap
                    {
                        closing.values.push(observation.value);
                        if closing.contribs.len() < MAX_EVIDENCE {
                            closing.contribs.push(contrib);
                        }
                    }
                } else if closing.contribs.len() < MAX_EVIDENCE {
                    closing.contribs.push(contrib);
                }
                false
            }
            (GroupState::Temporal(newest), StateKind::Temporal { threshold }) => {
                if let Some(slot) = newest.get_mut(observation.input as usize) {
                    *slot = contrib;
                }
                let present = newest
                    .iter()
                    .filter(|seen| seen.ts != i64::MIN && seen.ts >= window_start)
                    .count() as u64;
                if present >= threshold {
                    let mut contribs: Vec<Contrib> = newest
                        .iter()
                        .filter(|seen| seen.ts != i64::MIN && seen.ts >= window_start)
                        .copied()
                        .collect();
                    contribs.sort_by_key(|seen| (seen.ts, seen.seq));
                    let first_ts = contribs.first().map_or(ts, |seen| seen.ts);
                    ctx.fire(
                        ts,
                        first_ts,
                        present,
                        contribs.into_iter(),
                        contrib.seq,
                        group.incomplete,
                    );
                    true
                } else {
                    false
                }
            }
            (GroupState::Ordered(best), StateKind::Ordered) => {
                let step = observation.input as usize;
                let last = best.len().saturating_sub(1);
                if step == 0 {
                    if let Some(slot) = best.get_mut(0) {
                        *slot = Some(Chain {
                            start: ts,
                            items: vec![contrib],
                        });
                    }
                    false
                } else {
                    let extended = match best.get(step - 1) {
                        Some(Some(previous)) if previous.start >= window_start => {
                            let better = best
                                .get(step)
                                .and_then(Option::as_ref)
                                .is_none_or(|current| previous.start >= current.start);
                            better.then(|| {
                                let mut items = previous.items.clone();
                                items.push(contrib);
                                Chain {
                                    start: previous.start,
                                    items,
                                }
                            })
                        }
                        _ => None,
                    };
                    match extended {
                        Some(chain) if step == last => {
                            ctx.fire(
                                ts,
                                chain.start,
                                chain.items.len() as u64,
                                chain.items.into_iter(),
                                contrib.seq,
                                group.incomplete,
                            );
                            true
                        }
                        Some(chain) => {
                            if let Some(slot) = best.get_mut(step) {
                                *slot = Some(chain);
                            }
                            false
                        }
                        None => false,
                    }
                }
            }
            (GroupState::Absence(pending), StateKind::Absence { started, awaited }) => {
                if observation.input == started {
                    pending.count += 1;
                    if pending.contribs.len() < MAX_EVIDENCE {
                        pending.contribs.push(contrib);
                    }
                    false
                } else {
                    // The awaited event came in time: the window closes without an alert.
                    observation.input == awaited
                }
            }
            _ => false,
        };
        if fired {
            groups.remove(key);
            return;
        }
        if group.timer_at == NO_TIMER
            && let Some(shared_key) = created
            && let Some(wheel) = self.wheels.get_mut(compiled.depth.saturating_sub(1))
        {
            let deadline = group.deadline(timespan);
            group.timer_at = deadline;
            wheel.insert(deadline, (observation.correlation.0, shared_key));
            self.sweep_stale_timers(compiled.depth.saturating_sub(1));
        }
    }

    /// Drops the wheel's stale timers once they outnumber the live ones (plus
    /// [`STALE_TIMER_SLACK`]). A timer goes stale when its group goes before its deadline:
    /// evicted at the group cap, fired, or reset. Stale timers are otherwise only dropped at
    /// their deadline, and each keeps its group's key alive: at a high rate of new groups (a
    /// scan of distinct source addresses) the wheel would hold every group created in the last
    /// timespan, however small `max_groups_per_rule` is. Amortised `O(1)` per timer armed: a
    /// sweep costs `O(timers)` and leaves at most one live timer per open group.
    fn sweep_stale_timers(&mut self, wheel: usize) {
        let Some(timers) = self.wheels.get(wheel).map(TimerWheel::len) else {
            return;
        };
        if timers <= STALE_TIMER_SLACK {
            return;
        }
        let live: usize = self
            .correlations
            .correlations
            .iter()
            .zip(&self.groups)
            .filter(|(compiled, _)| compiled.depth.saturating_sub(1) == wheel)
            .map(|(_, groups)| groups.len())
            .sum();
        if timers <= live.saturating_mul(2).saturating_add(STALE_TIMER_SLACK) {
            return;
        }
        let groups = &self.groups;
        self.wheels[wheel].retain(|deadline, (correlation, key)| {
            groups
                .get(*correlation as usize)
                .and_then(|groups| groups.get(key))
                .is_some_and(|group| group.timer_at == deadline)
        });
    }

    /// Timers armed in every wheel (live and stale).
    pub fn timers(&self) -> usize {
        self.wheels.iter().map(TimerWheel::len).sum()
    }

    /// Bytes of the per-group state kept for `correlation` (for memory measurements): the
    /// map's table and each group's heap allocations (key, window, timer), not allocator
    /// overhead.
    pub fn approximate_group_bytes(&self, correlation: CorrelationId) -> usize {
        let Some(groups) = self.groups.get(correlation.0 as usize) else {
            return 0;
        };
        let slot = std::mem::size_of::<(Arc<str>, Group)>() + 1;
        // hashbrown keeps 1/8 of its buckets free; buckets are a power of two.
        let buckets = (groups.capacity() * 8 / 7).next_power_of_two();
        let table = buckets * slot;
        let heap: usize = groups
            .iter()
            .map(|(key, group)| {
                let key_bytes = 16 + key.len();
                let timer = std::mem::size_of::<Timer<TimerItem>>();
                let state = match &group.state {
                    GroupState::Sliding(window) => window.capacity() * 16,
                    GroupState::Distinct(values) => values.capacity() * 24,
                    GroupState::Closing(closing) => {
                        48 + closing.contribs.capacity() * 16 + closing.values.capacity() * 8
                    }
                    GroupState::Temporal(newest) => newest.len() * 16,
                    GroupState::Ordered(best) => best
                        .iter()
                        .map(|chain| 32 + chain.as_ref().map_or(0, |c| c.items.capacity() * 16))
                        .sum(),
                    GroupState::Absence(pending) => 40 + pending.contribs.capacity() * 16,
                };
                key_bytes + timer + state
            })
            .sum();
        table + heap
    }
}

fn new_state(compiled: &Compiled, ts: i64) -> GroupState {
    let inputs = compiled.inputs.len();
    match compiled.state {
        StateKind::CountSliding { threshold } => {
            // Holds at most threshold − 1 between events (it fires and goes at threshold).
            GroupState::Sliding(VecDeque::with_capacity(
                threshold.saturating_sub(1).clamp(1, 64) as usize,
            ))
        }
        StateKind::DistinctSliding { .. } => GroupState::Distinct(Vec::new()),
        StateKind::Closing { .. } => GroupState::Closing(Box::new(Closing {
            start: ts,
            count: 0,
            contribs: Vec::new(),
            values: Vec::new(),
        })),
        StateKind::Temporal { .. } => GroupState::Temporal(
            vec![
                Contrib {
                    ts: i64::MIN,
                    seq: 0
                };
                inputs
            ]
            .into_boxed_slice(),
        ),
        StateKind::Ordered => GroupState::Ordered((0..inputs).map(|_| None).collect()),
        StateKind::Absence { .. } => GroupState::Absence(Box::new(Pending {
            start: ts,
            count: 0,
            contribs: Vec::new(),
        })),
    }
}

/// Evicts the least recently updated of a few groups (a sample, not a full scan).
fn evict_one(groups: &mut HashMap<Arc<str>, Group, FxBuild>) {
    let victim = groups
        .iter()
        .take(16)
        .min_by_key(|(_, group)| group.newest_ts())
        .map(|(key, _)| Arc::clone(key));
    if let Some(victim) = victim {
        groups.remove(&victim);
    }
}

/// A group whose window ended (timer, flush, or an observation past it): closing windows are
/// decided, pending absences fire, sliding windows just go.
fn decide(ctx: &mut FireContext<'_>, group: Group) {
    let timespan = ctx.compiled.timespan;
    match (group.state, ctx.compiled.state) {
        (GroupState::Closing(closing), StateKind::Closing { distinct, .. }) => {
            let count = if distinct {
                closing.values.len() as u64
            } else {
                closing.count
            };
            if ctx.compiled.condition.holds(count) {
                let trigger = closing.contribs.first().map_or(0, |first| first.seq);
                ctx.fire(
                    closing.start.saturating_add(timespan),
                    closing.start,
                    count,
                    closing.contribs.into_iter(),
                    trigger,
                    group.incomplete,
                );
            }
        }
        (GroupState::Absence(pending), StateKind::Absence { .. }) => {
            let trigger = pending.contribs.first().map_or(0, |first| first.seq);
            ctx.fire(
                pending.start.saturating_add(timespan),
                pending.start,
                pending.count,
                pending.contribs.into_iter(),
                trigger,
                group.incomplete,
            );
        }
        _ => {}
    }
}

struct FireContext<'a> {
    all: &'a Correlations,
    compiled: &'a Compiled,
    key: &'a str,
    last_eviction: Option<i64>,
    counters: &'a mut ShardCounters,
    derived: &'a mut Vec<Observation>,
    alerts: &'a mut Vec<Alert>,
}

impl FireContext<'_> {
    /// Emits the correlation's alert (when it emits) and the observations it makes for the
    /// correlations it feeds.
    fn fire(
        &mut self,
        ts: i64,
        first_ts: i64,
        event_count: u64,
        contribs: impl Iterator<Item = Contrib>,
        trigger_seq: u64,
        group_incomplete: bool,
    ) {
        let compiled = self.compiled;
        let evicted_recently = self
            .last_eviction
            .is_some_and(|evicted_at| evicted_at >= ts.saturating_sub(compiled.timespan));
        let incomplete = group_incomplete || evicted_recently;
        let values: Vec<&str> = if compiled.group_names.is_empty() {
            Vec::new()
        } else {
            self.key.split(KEY_SEPARATOR).collect()
        };
        if compiled.emits {
            self.counters.alerts += 1;
            self.alerts.push(Alert {
                rule: compiled.meta.rule.clone(),
                title: compiled.meta.title.clone(),
                level: compiled.meta.level,
                kind: compiled.alert_kind,
                ts: Timestamp(ts),
                first_ts: Timestamp(first_ts),
                group: compiled
                    .group_names
                    .iter()
                    .zip(&values)
                    .map(|(name, value)| (name.clone(), (*value).to_owned()))
                    .collect(),
                event_count,
                evidence: contribs.take(MAX_EVIDENCE).map(|c| Seq(c.seq)).collect(),
                possibly_incomplete: incomplete,
            });
        }
        for target in &compiled.downstream {
            if let Some(observation) =
                self.all
                    .correlations
                    .get(target.0.0 as usize)
                    .and_then(|downstream| {
                        derived_observation(
                            downstream,
                            *target,
                            &values,
                            Timestamp(ts),
                            Seq(trigger_seq),
                            incomplete,
                        )
                    })
            {
                self.derived.push(observation);
            }
        }
    }
}
