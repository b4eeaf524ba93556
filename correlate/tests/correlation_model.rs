//! The correlation engine against a deliberately simple reference model.
//!
//! The model reads the generated events directly (not the engine's observations), simulates the
//! watermark only to decide lateness (late events take the watermark as their time, or are
//! dropped when behind it by more than the timespan), then sorts each correlation's
//! observations by `(ts, seq)` and evaluates every group by brute force: the whole list of
//! observations since the group's last alert, re-examined at each step.
//!
//! Property tests: random streams (groups, times with ties, rules, events matching two rules,
//! events without a group) fed sorted, shuffled within the allowed lateness, and with late
//! events, in random batches, to the single-threaded `Correlator` and the threaded `Engine`
//! (2–4 shards): all must give the model's alerts.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use cairn_correlate::{Alert, Correlator, Engine, EngineConfig, ObservationBatch};
use cairn_ingest::{Event, Seq, Timestamp};
use common::correlation_rules::{Setup, setup};
use common::{EventExt, event};
use proptest::prelude::*;

const SECOND: i64 = 1_000_000_000;
const BASE: i64 = 1_700_000_000 * SECOND;
const LATENESS: i64 = 5 * SECOND;

// ---------------------------------------------------------------------------------------------
// The reference model.

#[derive(Debug, Clone)]
struct ModelEvent {
    ts: i64,
    seq: u64,
    kind: &'static str,
    group: Option<&'static str>,
    value: &'static str,
}

impl ModelEvent {
    fn matches(&self, rule: &str) -> bool {
        self.kind == rule || (self.kind == "multi" && (rule == "r0" || rule == "r1"))
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Sliding(usize),
    Distinct(usize),
    Closing {
        distinct: bool,
        cap: usize,
        condition: fn(usize) -> bool,
    },
    Temporal(usize),
    Ordered,
    Absence,
}

struct ModelCorrelation {
    label: &'static str,
    kind: Kind,
    timespan: i64,
    /// Rule names, or `@label` for a correlation.
    inputs: &'static [&'static str],
    grouped: bool,
    emits: bool,
}

fn model_correlations() -> Vec<ModelCorrelation> {
    let range: fn(usize) -> bool = |count| (2..=3).contains(&count);
    let fewer_than_three: fn(usize) -> bool = |count| count < 3;
    vec![
        ModelCorrelation {
            label: "c-count",
            kind: Kind::Sliding(3),
            timespan: 10 * SECOND,
            inputs: &["r0", "r1"],
            grouped: true,
            emits: true,
        },
        ModelCorrelation {
            label: "c-range",
            kind: Kind::Closing {
                distinct: false,
                cap: usize::MAX,
                condition: range,
            },
            timespan: 10 * SECOND,
            inputs: &["r0"],
            grouped: true,
            emits: true,
        },
        ModelCorrelation {
            label: "c-value",
            kind: Kind::Distinct(3),
            timespan: 10 * SECOND,
            inputs: &["r1", "r2"],
            grouped: true,
            emits: true,
        },
        ModelCorrelation {
            label: "c-value-close",
            kind: Kind::Closing {
                distinct: true,
                cap: 4,
                condition: fewer_than_three,
            },
            timespan: 10 * SECOND,
            inputs: &["r2"],
            grouped: true,
            emits: true,
        },
        ModelCorrelation {
            label: "c-temporal",
            kind: Kind::Temporal(3),
            timespan: 10 * SECOND,
            inputs: &["r0", "r2", "r3"],
            grouped: true,
            emits: true,
        },
        ModelCorrelation {
            label: "c-temporal2",
            kind: Kind::Temporal(2),
            timespan: 10 * SECOND,
            inputs: &["r1", "r2", "r3"],
            grouped: true,
            emits: true,
        },
        ModelCorrelation {
            label: "c-ordered",
            kind: Kind::Ordered,
            timespan: 10 * SECOND,
            inputs: &["r0", "r1", "r2"],
            grouped: true,
            emits: true,
        },
        ModelCorrelation {
            label: "c-absence",
            kind: Kind::Absence,
            timespan: 10 * SECOND,
            inputs: &["r2", "r3"],
            grouped: true,
            emits: true,
        },
        ModelCorrelation {
            label: "c-chain",
            kind: Kind::Ordered,
            timespan: 20 * SECOND,
            inputs: &["@c-count", "r3"],
            grouped: true,
            emits: true,
        },
        ModelCorrelation {
            label: "c-nogroup",
            kind: Kind::Sliding(4),
            timespan: 5 * SECOND,
            inputs: &["r3"],
            grouped: false,
            emits: true,
        },
    ]
}

/// One observation in the model: time (after lateness), seq, input, group, value.
#[derive(Debug, Clone)]
struct Obs {
    ts: i64,
    seq: u64,
    input: usize,
    value: String,
}

/// An alert, engine-independent, comparable.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Expected {
    rule: String,
    ts: i64,
    first_ts: i64,
    group: Vec<(String, String)>,
    count: u64,
    evidence: Vec<u64>,
}

struct Fired {
    ts: i64,
    first_ts: i64,
    count: u64,
    evidence: Vec<u64>,
    trigger: u64,
}

fn fired(ts: i64, first_ts: i64, count: usize, contributors: &[&Obs], trigger: u64) -> Fired {
    Fired {
        ts,
        first_ts,
        count: count as u64,
        evidence: contributors.iter().take(64).map(|obs| obs.seq).collect(),
        trigger,
    }
}

/// Brute force over one group's observations, sorted.
fn evaluate_group(kind: Kind, timespan: i64, inputs: usize, observations: &[Obs]) -> Vec<Fired> {
    let mut alerts = Vec::new();
    let mut since_reset: Vec<&Obs> = Vec::new();
    let mut window_start: Option<i64> = None;
    for obs in observations {
        let t = obs.ts;
        match kind {
            Kind::Closing {
                distinct,
                cap,
                condition,
            } => {
                if let Some(start) = window_start
                    && t > start + timespan
                {
                    alerts.extend(decide_closing(
                        distinct,
                        cap,
                        condition,
                        start,
                        timespan,
                        &since_reset,
                    ));
                    since_reset.clear();
                    window_start = None;
                }
                window_start.get_or_insert(t);
                since_reset.push(obs);
                continue;
            }
            Kind::Absence => {
                if let Some(start) = window_start
                    && t > start + timespan
                {
                    alerts.push(fired(
                        start + timespan,
                        start,
                        since_reset.len(),
                        &since_reset,
                        since_reset[0].seq,
                    ));
                    since_reset.clear();
                    window_start = None;
                }
                if obs.input == 0 {
                    window_start.get_or_insert(t);
                    since_reset.push(obs);
                } else if window_start.is_some() {
                    since_reset.clear();
                    window_start = None;
                }
                continue;
            }
            _ => {}
        }
        since_reset.push(obs);
        let window: Vec<&Obs> = since_reset
            .iter()
            .copied()
            .filter(|o| o.ts >= t - timespan)
            .collect();
        let result = match kind {
            Kind::Sliding(threshold) => (window.len() >= threshold)
                .then(|| fired(t, window[0].ts, window.len(), &window, obs.seq)),
            Kind::Distinct(threshold) => {
                let newest = newest_by(&window, |o| o.value.clone());
                (newest.len() >= threshold)
                    .then(|| fired(t, newest[0].ts, newest.len(), &newest, obs.seq))
            }
            Kind::Temporal(threshold) => {
                let newest = newest_by(&window, |o| o.input.to_string());
                (newest.len() >= threshold)
                    .then(|| fired(t, newest[0].ts, newest.len(), &newest, obs.seq))
            }
            Kind::Ordered => {
                if obs.input + 1 == inputs {
                    // Latest element of each earlier step, strictly before the next one.
                    let mut chain = vec![obs];
                    let mut position = since_reset.len() - 1;
                    for step in (0..inputs - 1).rev() {
                        match since_reset[..position]
                            .iter()
                            .rposition(|o| o.input == step)
                        {
                            Some(found) => {
                                chain.push(since_reset[found]);
                                position = found;
                            }
                            None => {
                                chain.clear();
                                break;
                            }
                        }
                    }
                    chain.reverse();
                    (!chain.is_empty() && chain[0].ts >= t - timespan)
                        .then(|| fired(t, chain[0].ts, chain.len(), &chain, obs.seq))
                } else {
                    None
                }
            }
            Kind::Closing { .. } | Kind::Absence => None,
        };
        if let Some(alert) = result {
            alerts.push(alert);
            since_reset.clear();
        }
    }
    // End of input: windows decided at their end.
    match kind {
        Kind::Closing {
            distinct,
            cap,
            condition,
        } => {
            if let Some(start) = window_start {
                alerts.extend(decide_closing(
                    distinct,
                    cap,
                    condition,
                    start,
                    timespan,
                    &since_reset,
                ));
            }
        }
        Kind::Absence => {
            if let Some(start) = window_start {
                alerts.push(fired(
                    start + timespan,
                    start,
                    since_reset.len(),
                    &since_reset,
                    since_reset[0].seq,
                ));
            }
        }
        _ => {}
    }
    alerts
}

/// The newest observation of each distinct `key`, sorted by (ts, seq).
fn newest_by<'a>(window: &[&'a Obs], key: impl Fn(&Obs) -> String) -> Vec<&'a Obs> {
    let mut newest: BTreeMap<String, &Obs> = BTreeMap::new();
    for obs in window {
        newest.insert(key(obs), obs);
    }
    let mut list: Vec<&Obs> = newest.into_values().collect();
    list.sort_by_key(|o| (o.ts, o.seq));
    list
}

fn decide_closing(
    distinct: bool,
    cap: usize,
    condition: fn(usize) -> bool,
    start: i64,
    timespan: i64,
    observations: &[&Obs],
) -> Option<Fired> {
    let contributors: Vec<&Obs> = if distinct {
        let mut seen = HashSet::new();
        observations
            .iter()
            .copied()
            .filter(|o| seen.len() < cap && seen.insert(o.value.clone()))
            .collect()
    } else {
        observations.to_vec()
    };
    let count = contributors.len();
    condition(count).then(|| {
        fired(
            start + timespan,
            start,
            count,
            &contributors,
            observations[0].seq,
        )
    })
}

/// The model's alerts for events arriving in `batches`.
fn model(batches: &[Vec<ModelEvent>]) -> Vec<Expected> {
    let correlations = model_correlations();
    let mut expected = Vec::new();
    // group → observations, per correlation.
    let mut per_correlation: Vec<BTreeMap<String, Vec<Obs>>> =
        correlations.iter().map(|_| BTreeMap::new()).collect();
    let mut watermark = i64::MIN;
    let mut max_ts = i64::MIN;
    for batch in batches {
        for event in batch {
            if event.kind == "r4" {
                expected.push(Expected {
                    rule: "r4-id".into(),
                    ts: event.ts,
                    first_ts: event.ts,
                    group: vec![("host".into(), "h1".into())],
                    count: 1,
                    evidence: vec![event.seq],
                });
            }
            for (index, correlation) in correlations.iter().enumerate() {
                for (input, rule) in correlation.inputs.iter().enumerate() {
                    if rule.starts_with('@') || !event.matches(rule) {
                        continue;
                    }
                    let group = match (correlation.grouped, event.group) {
                        (true, Some(group)) => group.to_owned(),
                        (true, None) => break,
                        (false, _) => String::new(),
                    };
                    let mut ts = event.ts;
                    if ts < watermark {
                        if ts < watermark - correlation.timespan {
                            break;
                        }
                        ts = watermark;
                    }
                    per_correlation[index].entry(group).or_default().push(Obs {
                        ts,
                        seq: event.seq,
                        input,
                        value: event.value.to_owned(),
                    });
                    if matches!(
                        correlation.kind,
                        Kind::Sliding(_) | Kind::Distinct(_) | Kind::Closing { .. }
                    ) {
                        break; // an event counts once
                    }
                }
            }
            max_ts = max_ts.max(event.ts);
        }
        watermark = watermark.max(max_ts - LATENESS);
    }
    // Depth order: correlations over correlations after their inputs.
    for (index, correlation) in correlations.iter().enumerate() {
        for (input, reference) in correlation.inputs.iter().enumerate() {
            let Some(upstream_label) = reference.strip_prefix('@') else {
                continue;
            };
            let upstream = correlations
                .iter()
                .position(|c| c.label == upstream_label)
                .expect("upstream");
            assert!(
                upstream < index,
                "model correlations must be listed in depth order"
            );
            let upstream_alerts =
                run_correlation(&correlations[upstream], &per_correlation[upstream]);
            for (group, alert) in upstream_alerts {
                per_correlation[index].entry(group).or_default().push(Obs {
                    ts: alert.ts,
                    seq: alert.trigger,
                    input,
                    value: String::new(),
                });
            }
        }
        for (group, alert) in run_correlation(correlation, &per_correlation[index]) {
            if correlation.emits {
                expected.push(Expected {
                    rule: correlation.label.to_owned(),
                    ts: alert.ts,
                    first_ts: alert.first_ts,
                    group: if correlation.grouped {
                        vec![("grp".into(), group)]
                    } else {
                        Vec::new()
                    },
                    count: alert.count,
                    evidence: alert.evidence,
                });
            }
        }
    }
    expected.sort();
    expected
}

fn run_correlation(
    correlation: &ModelCorrelation,
    groups: &BTreeMap<String, Vec<Obs>>,
) -> Vec<(String, Fired)> {
    let mut out = Vec::new();
    let ordered = matches!(correlation.kind, Kind::Ordered);
    for (group, observations) in groups {
        let mut sorted = observations.clone();
        // Processing order: (ts, seq, input); a temporal_ordered takes later steps of one event
        // first, so one event is never two steps.
        sorted.sort_by_key(|o| {
            (
                o.ts,
                o.seq,
                if ordered {
                    usize::MAX - o.input
                } else {
                    o.input
                },
            )
        });
        for alert in evaluate_group(
            correlation.kind,
            correlation.timespan,
            correlation.inputs.len(),
            &sorted,
        ) {
            out.push((group.clone(), alert));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The engine side.

fn engine_event(model: &ModelEvent) -> Event {
    let mut built = event("test event")
        .host("h1")
        .text("kind", model.kind)
        .text("val", model.value);
    if let Some(group) = model.group {
        built = built.text("grp", group);
    }
    built.ts = Timestamp(model.ts);
    built.seq = Seq(model.seq);
    built
}

fn batches_for(setup: &Setup, batches: &[Vec<ModelEvent>]) -> Vec<ObservationBatch> {
    let mut scratch = setup.matcher.scratch();
    let mut matched = Vec::new();
    batches
        .iter()
        .map(|events| {
            let mut batch = ObservationBatch::default();
            for model in events {
                let event = engine_event(model);
                setup
                    .matcher
                    .match_event(&event, &mut scratch, &mut matched);
                batch.missing_group_field += setup.correlations.observe(
                    &event,
                    &matched,
                    &mut batch.observations,
                    &mut batch.alerts,
                );
                batch.saw(event.ts);
            }
            batch
        })
        .collect()
}

fn config(shards: usize) -> EngineConfig {
    EngineConfig {
        shards,
        allowed_lateness: Duration::from_nanos(LATENESS as u64),
        max_groups_per_rule: 1_000_000,
        queue_capacity: 4,
    }
}

fn comparable(alerts: &[Alert]) -> Vec<Expected> {
    let mut out: Vec<Expected> = alerts
        .iter()
        .map(|alert| Expected {
            rule: alert.rule.to_string(),
            ts: alert.ts.0,
            first_ts: alert.first_ts.0,
            group: alert
                .group
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            count: alert.event_count,
            evidence: alert.evidence.iter().map(|seq| seq.0).collect(),
        })
        .collect();
    out.sort();
    out
}

fn run_correlator(setup: &Setup, batches: &[Vec<ModelEvent>]) -> Vec<Expected> {
    let mut correlator = Correlator::new(Arc::clone(&setup.correlations), &config(1));
    let mut alerts = Vec::new();
    for batch in batches_for(setup, batches) {
        correlator.submit(batch, &mut alerts);
    }
    let stats = correlator.finish(&mut alerts);
    assert_eq!(stats.open_groups, 0);
    assert_eq!(stats.queued, 0);
    assert!(alerts.iter().all(|alert| !alert.possibly_incomplete));
    comparable(&alerts)
}

fn run_engine(setup: &Setup, batches: &[Vec<ModelEvent>], shards: usize) -> Vec<Expected> {
    let (sender, receiver) = crossbeam_channel::unbounded();
    let engine = Engine::start(Arc::clone(&setup.correlations), config(shards), sender)
        .expect("engine starts");
    for batch in batches_for(setup, batches) {
        engine.submit(batch).expect("engine running");
    }
    let stats = engine.finish();
    assert_eq!(stats.open_groups, 0);
    let alerts: Vec<Alert> = receiver.try_iter().collect();
    comparable(&alerts)
}

// ---------------------------------------------------------------------------------------------
// Stream generation.

const KINDS: &[&str] = &["r0", "r1", "r2", "r3", "r4", "multi", "none"];
const GROUPS: &[Option<&str>] = &[Some("g0"), Some("g1"), Some("g2"), None];
const VALUES: &[&str] = &["v0", "v1", "v2", "v3", "v4"];

/// (second offset, kind, group, value) per event; seqs are assigned in generation order.
fn events_strategy() -> impl Strategy<Value = Vec<ModelEvent>> {
    prop::collection::vec(
        (
            0i64..80,
            0..KINDS.len(),
            0..GROUPS.len(),
            0..VALUES.len(),
            0i64..1000,
        ),
        0..70,
    )
    .prop_map(|items| {
        items
            .into_iter()
            .enumerate()
            .map(|(index, (second, kind, group, value, millis))| ModelEvent {
                // Mostly whole seconds (ties), sometimes a fraction.
                ts: BASE + second * SECOND + if millis < 700 { 0 } else { millis * 1_000_000 },
                seq: index as u64 + 1,
                kind: KINDS[kind],
                group: GROUPS[group],
                value: VALUES[value],
            })
            .collect()
    })
}

fn split(events: Vec<ModelEvent>, sizes: &[usize]) -> Vec<Vec<ModelEvent>> {
    let mut batches = Vec::new();
    let mut rest = events.into_iter().peekable();
    let mut index = 0;
    while rest.peek().is_some() {
        let size = sizes
            .get(index % sizes.len().max(1))
            .copied()
            .unwrap_or(1)
            .max(1);
        batches.push(rest.by_ref().take(size).collect());
        index += 1;
    }
    batches
}

fn sorted(mut events: Vec<ModelEvent>) -> Vec<ModelEvent> {
    events.sort_by_key(|e| (e.ts, e.seq));
    events
}

/// Arrival order by `ts + delay`: delays below the lateness never make an event late.
fn delayed(events: &[ModelEvent], delays: &[i64]) -> Vec<ModelEvent> {
    let mut keyed: Vec<(i64, u64, ModelEvent)> = events
        .iter()
        .enumerate()
        .map(|(index, e)| {
            (
                e.ts + delays
                    .get(index % delays.len().max(1))
                    .copied()
                    .unwrap_or(0),
                e.seq,
                e.clone(),
            )
        })
        .collect();
    keyed.sort_by_key(|(arrival, seq, _)| (*arrival, *seq));
    keyed.into_iter().map(|(_, _, e)| e).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn correlator_matches_the_model_in_order_and_shuffled_within_lateness(
        events in events_strategy(),
        sizes in prop::collection::vec(1usize..6, 1..5),
        delays in prop::collection::vec(0i64..LATENESS, 1..20),
    ) {
        let setup = setup();
        let in_order = split(sorted(events.clone()), &sizes);
        let expected = model(&in_order);
        prop_assert_eq!(&run_correlator(&setup, &in_order), &expected);
        // Shuffled within the lateness bound: exactly the alerts of the sorted input.
        let shuffled = split(delayed(&events, &delays), &sizes);
        prop_assert_eq!(&model(&shuffled), &expected);
        prop_assert_eq!(&run_correlator(&setup, &shuffled), &expected);
    }

    #[test]
    fn correlator_matches_the_model_with_late_events(
        events in events_strategy(),
        sizes in prop::collection::vec(1usize..6, 1..5),
        delays in prop::collection::vec(prop_oneof![3 => 0i64..LATENESS, 1 => LATENESS..30 * SECOND], 1..20),
    ) {
        let setup = setup();
        let batches = split(delayed(&events, &delays), &sizes);
        prop_assert_eq!(run_correlator(&setup, &batches), model(&batches));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn threaded_engine_matches_the_model(
        events in events_strategy(),
        sizes in prop::collection::vec(1usize..6, 1..5),
        delays in prop::collection::vec(prop_oneof![3 => 0i64..LATENESS, 1 => LATENESS..30 * SECOND], 1..20),
        shards in 2usize..=4,
    ) {
        let setup = setup();
        let batches = split(delayed(&events, &delays), &sizes);
        prop_assert_eq!(run_engine(&setup, &batches, shards), model(&batches));
    }
}

#[test]
fn late_events_are_counted_and_too_late_ones_dropped() {
    let setup = setup();
    let at = |second: i64, seq: u64, kind: &'static str| ModelEvent {
        ts: BASE + second * SECOND,
        seq,
        kind,
        group: Some("g0"),
        value: "v0",
    };
    // Watermark after the first batch: 100 − 5 = 95 s. Then 93 s (late, within c-count's 10 s:
    // taken at 95 s) and 50 s (behind by more than every timespan: dropped).
    let batches = vec![
        vec![at(100, 1, "r4")],
        vec![at(93, 2, "r0"), at(50, 3, "r3")],
    ];
    let mut correlator = Correlator::new(Arc::clone(&setup.correlations), &config(1));
    let mut alerts = Vec::new();
    for batch in batches_for(&setup, &batches) {
        correlator.submit(batch, &mut alerts);
    }
    let stats = correlator.stats();
    // r0 feeds c-count, c-range, c-temporal, c-ordered (4 late); r3 feeds c-temporal,
    // c-temporal2, c-absence, c-chain, c-nogroup (5 dropped).
    assert_eq!(stats.late, 9, "{stats:?}");
    assert_eq!(stats.late_dropped, 5, "{stats:?}");
    assert_eq!(stats.watermark, Some(Timestamp(BASE + 95 * SECOND)));
    let stats = correlator.finish(&mut alerts);
    assert_eq!(comparable(&alerts), model(&batches));
    assert_eq!(stats.open_groups, 0);
}

#[test]
fn events_without_the_group_field_are_counted_not_correlated() {
    let setup = setup();
    let events: Vec<ModelEvent> = (0..5)
        .map(|index| ModelEvent {
            ts: BASE + index * SECOND,
            seq: index as u64 + 1,
            kind: "r0",
            group: None,
            value: "v0",
        })
        .collect();
    let mut correlator = Correlator::new(Arc::clone(&setup.correlations), &config(1));
    let mut alerts = Vec::new();
    for batch in batches_for(&setup, &[events]) {
        correlator.submit(batch, &mut alerts);
    }
    let stats = correlator.finish(&mut alerts);
    // r0 feeds four grouped correlations: 5 events × 4.
    assert_eq!(stats.missing_group_field, 20);
    assert!(alerts.is_empty(), "{alerts:?}");
}

#[test]
fn idle_input_advances_the_watermark_with_the_wall_clock() {
    let setup = setup();
    // r2 without r3: the absence fires only once the watermark passes its window end.
    let batches = vec![vec![ModelEvent {
        ts: BASE,
        seq: 1,
        kind: "r2",
        group: Some("g0"),
        value: "v0",
    }]];
    let mut correlator = Correlator::new(Arc::clone(&setup.correlations), &config(1));
    let mut alerts = Vec::new();
    for batch in batches_for(&setup, &batches) {
        correlator.submit(batch, &mut alerts);
    }
    assert!(alerts.is_empty());
    let wall = 5_000 * SECOND; // the wall clock need not agree with event time
    correlator.advance_idle(Timestamp(wall), &mut alerts); // starts the idle period
    assert!(alerts.is_empty());
    correlator.advance_idle(Timestamp(wall + 10 * SECOND), &mut alerts);
    assert!(
        alerts.is_empty(),
        "window end is not before the watermark yet"
    );
    correlator.advance_idle(Timestamp(wall + 16 * SECOND), &mut alerts);
    // The absence, and the closing window of "few values" (1 distinct value < 3).
    let mut fired: Vec<(&str, Timestamp)> =
        alerts.iter().map(|a| (a.rule.as_ref(), a.ts)).collect();
    fired.sort();
    assert_eq!(
        fired,
        vec![
            ("c-absence", Timestamp(BASE + 10 * SECOND)),
            ("c-value-close", Timestamp(BASE + 10 * SECOND))
        ]
    );
    assert_eq!(correlator.watermark(), Some(Timestamp(BASE + 11 * SECOND)));
}

#[test]
fn threaded_engine_stats_and_try_submit() {
    let setup = setup();
    let events: Vec<ModelEvent> = (0..9)
        .map(|index| ModelEvent {
            ts: BASE + index * SECOND,
            seq: index as u64 + 1,
            kind: "r0",
            group: Some("g1"),
            value: "v0",
        })
        .collect();
    let batches = split(events, &[2]);
    let (sender, receiver) = crossbeam_channel::unbounded();
    let engine = Engine::start(Arc::clone(&setup.correlations), config(3), sender).expect("starts");
    for batch in batches_for(&setup, &batches) {
        let mut pending = batch;
        loop {
            match engine.try_submit(pending) {
                Ok(()) => break,
                Err(cairn_correlate::correlation::TrySubmitError::Full(back)) => {
                    pending = back;
                    std::thread::yield_now();
                }
                Err(cairn_correlate::correlation::TrySubmitError::Closed(_)) => panic!("closed"),
            }
        }
    }
    let stats = engine.finish();
    assert_eq!(stats.batches, 5);
    assert_eq!(stats.observations, 9 * 4);
    let alerts: Vec<Alert> = receiver.try_iter().collect();
    assert_eq!(comparable(&alerts), model(&batches));
    assert_eq!(stats.correlation_alerts, alerts.len() as u64);
}

/// Guards the property tests against vacuity: on a dense deterministic stream every correlation
/// fires, and engine and model agree.
#[test]
fn every_correlation_fires_on_a_dense_stream() {
    let setup = setup();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = |bound: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % bound as u64) as usize
    };
    let events: Vec<ModelEvent> = (0..3000)
        .map(|index| ModelEvent {
            ts: BASE + (index as i64 / 4) * SECOND + next(3) as i64 * SECOND,
            seq: index as u64 + 1,
            kind: KINDS[next(KINDS.len())],
            group: GROUPS[next(GROUPS.len())],
            value: VALUES[next(VALUES.len())],
        })
        .collect();
    let batches = split(events, &[7, 1, 3]);
    let expected = model(&batches);
    let rules: HashSet<&str> = expected.iter().map(|alert| alert.rule.as_str()).collect();
    for label in model_correlations()
        .iter()
        .map(|c| c.label)
        .chain(["r4-id"])
    {
        assert!(rules.contains(label), "{label} never fired");
    }
    assert_eq!(run_correlator(&setup, &batches), expected);
    assert_eq!(run_engine(&setup, &batches, 3), expected);
}

#[test]
fn group_cap_evicts_counts_and_flags_alerts() {
    let setup = setup();
    let event = |second: i64, seq: u64, group: &'static str| ModelEvent {
        ts: BASE + second * SECOND,
        seq,
        kind: "r0",
        group: Some(group),
        value: "v0",
    };
    // Three groups for a cap of two: creating g2 evicts the least recently updated (g0).
    let batches = vec![
        vec![event(0, 1, "g0"), event(1, 2, "g1"), event(2, 3, "g2")],
        vec![event(3, 4, "g2"), event(4, 5, "g2")],
    ];
    let mut correlator = Correlator::new(
        Arc::clone(&setup.correlations),
        &EngineConfig {
            max_groups_per_rule: 2,
            ..config(1)
        },
    );
    let mut alerts = Vec::new();
    for batch in batches_for(&setup, &batches) {
        correlator.submit(batch, &mut alerts);
    }
    let stats = correlator.finish(&mut alerts);
    assert!(stats.evicted_groups >= 1, "{stats:?}");
    let count = alerts
        .iter()
        .find(|alert| alert.rule.as_ref() == "c-count")
        .expect("c-count fires for g2");
    assert_eq!(count.group, vec![(Arc::from("grp"), "g2".to_owned())]);
    assert!(count.possibly_incomplete);
    // The chained correlation inherits the flag through its observation.
    assert!(
        alerts
            .iter()
            .all(|alert| alert.rule.as_ref() != "c-chain" || alert.possibly_incomplete)
    );
}

/// A scan: every event a new group key (a new source address), far more per timespan than the
/// group cap. The open groups stay at the cap, and so must the window timers they armed: an
/// evicted group's timer used to stay in the wheel (holding its key) until its deadline, so the
/// wheel held every group created in the last timespan whatever the cap.
#[test]
fn timers_of_evicted_groups_stay_bounded_by_the_group_cap() {
    let setup = setup();
    let mut correlator = Correlator::new(
        Arc::clone(&setup.correlations),
        &EngineConfig {
            max_groups_per_rule: 100,
            ..config(1)
        },
    );
    let mut scratch = setup.matcher.scratch();
    let mut matched = Vec::new();
    let mut alerts = Vec::new();
    let mut peak_timers = 0;
    // 100k events within 9 s of event time: the watermark (5 s behind) releases the first 4 s,
    // all inside their 10 s windows, so no timer is due yet.
    for chunk in 0..100u64 {
        let mut batch = ObservationBatch::default();
        for index in 0..1000u64 {
            let seq = chunk * 1000 + index;
            let mut built = event("scan")
                .host("h1")
                .text("kind", "r0")
                .text("val", "v0")
                .text(
                    "grp",
                    &format!("10.{}.{}.{}", seq >> 16, (seq >> 8) & 255, seq & 255),
                );
            built.ts = Timestamp(BASE + i64::try_from(seq).expect("small") * 90_000);
            built.seq = Seq(seq + 1);
            setup
                .matcher
                .match_event(&built, &mut scratch, &mut matched);
            batch.missing_group_field += setup.correlations.observe(
                &built,
                &matched,
                &mut batch.observations,
                &mut batch.alerts,
            );
            batch.saw(built.ts);
        }
        correlator.submit(batch, &mut alerts);
        peak_timers = peak_timers.max(correlator.stats().timers);
    }
    let stats = correlator.stats();
    assert!(stats.evicted_groups > 50_000, "{stats:?}");
    assert!(stats.open_groups <= 100 * 10, "{stats:?}");
    // At most one live timer per open group, plus the stale ones tolerated before a sweep.
    assert!(
        peak_timers <= 2 * stats.open_groups + 2 * 4096 + 1000,
        "peak {peak_timers} timers for {stats:?}"
    );
    let stats = correlator.finish(&mut alerts);
    assert_eq!((stats.open_groups, stats.timers), (0, 0), "{stats:?}");
}

#[test]
fn threaded_engine_advances_when_idle() {
    let setup = setup();
    let (sender, receiver) = crossbeam_channel::unbounded();
    let engine = Engine::start(Arc::clone(&setup.correlations), config(2), sender).expect("starts");
    let batches = vec![vec![ModelEvent {
        ts: BASE,
        seq: 1,
        kind: "r2",
        group: Some("g0"),
        value: "v0",
    }]];
    for batch in batches_for(&setup, &batches) {
        engine.submit(batch).expect("running");
    }
    let wall = 9_000 * SECOND;
    engine.advance_idle(Timestamp(wall)).expect("running");
    engine
        .advance_idle(Timestamp(wall + 16 * SECOND))
        .expect("running");
    // Wait (bounded) for the absence and the closing window, without finishing the engine.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut received = Vec::new();
    while received.len() < 2 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match receiver.recv_timeout(left) {
            Ok(alert) => received.push(alert.rule.to_string()),
            Err(_) => break,
        }
    }
    received.sort();
    assert_eq!(received, ["c-absence", "c-value-close"]);
    assert_eq!(
        engine.stats().watermark,
        Some(Timestamp(BASE + 11 * SECOND))
    );
    engine.finish();
}

/// Throughput of the engine core and of the threaded engine on a dense synthetic stream (ten
/// correlations of every type, one chained; 20,000 groups; events slightly out of order).
/// `cargo test -p cairn-correlate --release --test correlation_model -- --ignored --nocapture`
#[test]
#[ignore = "a measurement; run in release"]
fn throughput_of_core_and_engine() {
    let setup = setup();
    let groups: Vec<&'static str> = (0..20_000)
        .map(|g| &*Box::leak(format!("g{g}").into_boxed_str()))
        .collect();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = |bound: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % bound as u64) as usize
    };
    let events: Vec<ModelEvent> = (0..1_000_000)
        .map(|index| ModelEvent {
            ts: BASE + index as i64 * 2_000_000 + next(3) as i64 * SECOND,
            seq: index as u64 + 1,
            kind: KINDS[next(KINDS.len() - 1)],
            group: Some(groups[next(groups.len())]),
            value: VALUES[next(VALUES.len())],
        })
        .collect();
    let batches = batches_for(&setup, &split(events, &[1024]));
    let observations: usize = batches.iter().map(|b| b.observations.len()).sum();
    let mut best = Duration::MAX;
    let mut alerts_core = 0;
    for _ in 0..3 {
        let copies = batches.clone();
        let mut correlator = Correlator::new(Arc::clone(&setup.correlations), &config(1));
        let mut alerts = Vec::new();
        let started = std::time::Instant::now();
        for batch in copies {
            correlator.submit(batch, &mut alerts);
        }
        correlator.finish(&mut alerts);
        best = best.min(started.elapsed());
        alerts_core = alerts.len();
    }
    println!(
        "Correlator: 1M events, {observations} observations, {alerts_core} alerts: {:.1} ms, {:.2} M observations/s, {:.3} µs/event",
        best.as_secs_f64() * 1e3,
        observations as f64 / best.as_secs_f64() / 1e6,
        best.as_secs_f64() * 1e6 / 1e6
    );
    for shards in [1, 2, 4] {
        let copies = batches.clone();
        let (sender, receiver) = crossbeam_channel::unbounded();
        let started = std::time::Instant::now();
        let engine =
            Engine::start(Arc::clone(&setup.correlations), config(shards), sender).expect("starts");
        for batch in copies {
            engine.submit(batch).expect("running");
        }
        engine.finish();
        let elapsed = started.elapsed();
        let alerts = receiver.try_iter().count();
        println!(
            "Engine {shards} shard(s): {alerts} alerts: {:.1} ms, {:.2} M observations/s",
            elapsed.as_secs_f64() * 1e3,
            observations as f64 / elapsed.as_secs_f64() / 1e6
        );
        assert_eq!(alerts, alerts_core);
    }
}
