//! The compiled correlation graph: which detection rules feed which correlations, which rules
//! alert on their own, how group keys are read from events, and the per-worker
//! [`Correlations::observe`] step.

use std::collections::HashMap;
use std::sync::Arc;

use cairn_ingest::{Event, Seq, Timestamp};

use super::hash::hash_text;
use super::rule::{
    CorrelationLimits, CorrelationSpec, CorrelationType, CountCondition, parse_correlation_yaml,
};
use crate::alert::{Alert, AlertKind};
use crate::error::{Error, Rejection};
use crate::field::{
    FieldMapping, FieldRef, Source, find_source, render_value, resolve_field, source_value,
};
use crate::matcher::{Matcher, RuleIndex};
use crate::rule::{Level, Rule, RuleKind};

/// Separates group values inside a [`GroupKey`] (a value holding it is stored with U+FFFD in
/// its place).
pub(crate) const KEY_SEPARATOR: char = '\u{1f}';

/// How correlations are built.
#[derive(Debug, Clone, Default)]
pub struct CorrelationOptions {
    pub limits: CorrelationLimits,
}

/// Position of a correlation in its [`Correlations`]: `0..len()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CorrelationId(pub u32);

/// The values of a correlation's `group-by` fields for one observation, joined by U+001F, with
/// their hash (which picks the shard).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKey {
    hash: u64,
    text: Box<str>,
}

impl GroupKey {
    /// A key from group values in `group-by` order.
    pub fn from_values<'a>(values: impl IntoIterator<Item = &'a str>) -> GroupKey {
        let mut text = String::new();
        for (index, value) in values.into_iter().enumerate() {
            if index > 0 {
                text.push(KEY_SEPARATOR);
            }
            push_value(&mut text, value);
        }
        GroupKey::from_joined(text)
    }

    pub(crate) fn from_joined(text: String) -> GroupKey {
        GroupKey {
            hash: hash_text(&text),
            text: text.into_boxed_str(),
        }
    }

    /// The joined text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The group values in `group-by` order (none for a correlation without `group-by`).
    pub fn values(&self) -> impl Iterator<Item = &str> {
        let empty = self.text.is_empty();
        self.text.split(KEY_SEPARATOR).filter(move |_| !empty)
    }

    pub fn hash_value(&self) -> u64 {
        self.hash
    }
}

fn push_value(out: &mut String, value: &str) {
    if value.contains(KEY_SEPARATOR) {
        out.extend(
            value
                .chars()
                .map(|c| if c == KEY_SEPARATOR { '\u{fffd}' } else { c }),
        );
    } else {
        out.push_str(value);
    }
}

/// What a matched event (or a correlation alert) contributes to one correlation: compact, so the
/// parse workers can hand them to the engine in batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Event time (for a correlation feeding another: the alert's `ts`).
    pub ts: Timestamp,
    /// The event's sequence number (for a correlation alert: the event that completed it).
    pub seq: Seq,
    pub correlation: CorrelationId,
    /// Position of the contributing rule in the correlation's `rules`.
    pub input: u16,
    pub group: GroupKey,
    /// `value_count`: hash of the counted field value(s); 0 otherwise.
    pub value: u64,
    /// The contribution comes from an alert flagged `possibly_incomplete`.
    pub incomplete: bool,
}

/// What the parse workers submit to the engine for one batch of events.
#[derive(Debug, Clone, Default)]
pub struct ObservationBatch {
    /// Latest event time of the whole batch, including events that matched nothing: event time
    /// advances the watermark even when nothing correlates.
    pub max_ts: Option<Timestamp>,
    pub observations: Vec<Observation>,
    /// Detection alerts of the batch; the engine passes them on to its alert channel unchanged.
    pub alerts: Vec<Alert>,
    /// Observations not made because the event lacked a `group-by` (or `value_count`) field
    /// (what [`Correlations::observe`] returned, summed).
    pub missing_group_field: u64,
}

impl ObservationBatch {
    /// Raises `max_ts` to `ts`.
    pub fn saw(&mut self, ts: Timestamp) {
        self.max_ts = Some(self.max_ts.map_or(ts, |max| max.max(ts)));
    }

    pub fn is_empty(&self) -> bool {
        self.max_ts.is_none() && self.observations.is_empty() && self.alerts.is_empty()
    }
}

/// Label, title and level of a rule, as put on its alerts.
#[derive(Debug, Clone)]
pub(crate) struct AlertMeta {
    pub rule: Arc<str>,
    pub title: Arc<str>,
    pub level: Level,
}

impl AlertMeta {
    fn new(id: Option<&str>, title: &str, level: Option<Level>) -> AlertMeta {
        AlertMeta {
            rule: Arc::from(id.unwrap_or(title)),
            title: Arc::from(title),
            level: level.unwrap_or(Level::Medium),
        }
    }
}

/// How a correlation keeps state per group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StateKind {
    /// `event_count` with only lower bounds: a sliding window, fires when the count reaches
    /// `threshold`.
    CountSliding { threshold: u64 },
    /// `value_count` with only lower bounds: distinct values in a sliding window.
    DistinctSliding { threshold: u64 },
    /// `event_count` / `value_count` with an upper bound: a window from the group's first
    /// event, decided when it closes. `distinct_cap` (value_count) is the most distinct values
    /// tracked (max number in the condition + 1).
    Closing { distinct: bool, distinct_cap: u64 },
    /// `temporal`: at least `threshold` distinct rules within the timespan.
    Temporal { threshold: u64 },
    /// `temporal_ordered`: every rule, in order, within the timespan.
    Ordered,
    /// `a and not b`.
    Absence { started: u16, awaited: u16 },
}

/// Where one correlation input's values come from.
#[derive(Debug, Clone)]
pub(crate) enum InputSource {
    Rule(RuleIndex),
    /// Another correlation: values are positions in its group values.
    Correlation(CorrelationId),
}

#[derive(Debug, Clone)]
pub(crate) struct Input {
    pub source: InputSource,
    /// For a rule input: the event fields of each group-by entry.
    pub group_fields: Vec<FieldRef>,
    pub value_fields: Vec<FieldRef>,
    /// For a correlation input: positions in the upstream group values.
    pub group_positions: Vec<usize>,
    pub value_positions: Vec<usize>,
}

/// One built correlation.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    pub meta: AlertMeta,
    pub alert_kind: AlertKind,
    pub state: StateKind,
    pub condition: CountCondition,
    pub timespan: i64,
    pub group_names: Vec<Arc<str>>,
    pub inputs: Vec<Input>,
    /// 1 for a correlation over detection rules only, else 1 + the deepest input.
    pub depth: usize,
    /// Its alerts are emitted (not referenced by another correlation, or `generate: true`).
    pub emits: bool,
    /// `(correlation, input)` fed by this correlation's alerts.
    pub downstream: Vec<(CorrelationId, u16)>,
    /// Counting correlations take an event once even when it matches several of their rules.
    pub counts_events: bool,
}

#[derive(Debug, Clone, Default)]
struct DetectionRoute {
    meta: Option<AlertMeta>,
    emits: bool,
    feeds: Vec<(CorrelationId, u16)>,
}

/// Every correlation built against one [`Matcher`]: immutable, `Send + Sync`; share it as
/// `Arc<Correlations>` between the parse workers (which call [`Correlations::observe`]) and the
/// engine.
#[derive(Debug)]
pub struct Correlations {
    pub(crate) correlations: Vec<Compiled>,
    detection: Vec<DetectionRoute>,
    pub(crate) max_depth: usize,
}

/// Read-only facts about a built correlation (for `rules check`, the rules API and tests).
#[derive(Debug, Clone)]
pub struct CorrelationInfo {
    /// The alert label (id, or title when it has none).
    pub rule: Arc<str>,
    pub title: Arc<str>,
    pub level: Level,
    pub kind: AlertKind,
    pub timespan_nanos: i64,
    pub group_by: Vec<Arc<str>>,
    pub depth: usize,
    /// Whether its alerts are emitted (false when it only feeds another correlation).
    pub emits: bool,
}

enum Resolved {
    Rule(RuleIndex),
    Correlation(usize),
}

/// Per-correlation build progress (graph walk).
#[derive(Clone)]
enum Walk {
    Pending,
    InProgress,
    Done(usize),
    Failed,
}

impl Correlations {
    /// No correlations: every matched rule alerts on its own.
    pub fn empty(matcher: &Matcher) -> Correlations {
        let (correlations, _) = Correlations::build(
            &[],
            matcher,
            &FieldMapping::new(),
            &CorrelationOptions::default(),
        );
        correlations
    }

    /// Builds the correlation rules among `rules` (the slice `matcher` was compiled from)
    /// against `matcher`. A correlation that is malformed, unsupported, references an unknown,
    /// ambiguous, rejected or uncompiled rule, is part of a cycle or exceeds a limit is
    /// returned as a [`Rejection`]; the others run.
    pub fn build(
        rules: &[Rule],
        matcher: &Matcher,
        mapping: &FieldMapping,
        options: &CorrelationOptions,
    ) -> (Correlations, Vec<Rejection>) {
        let limits = &options.limits;
        let mut rejections = Vec::new();
        // Position in `rules` → compiled rule index.
        let mut compiled_at: HashMap<usize, RuleIndex> = HashMap::new();
        for (index, info) in matcher.rules().enumerate() {
            compiled_at.insert(info.rule_position, RuleIndex(index as u32));
        }
        // Lookup of names and ids.
        let mut by_reference: HashMap<&str, Vec<usize>> = HashMap::new();
        for (position, rule) in rules.iter().enumerate() {
            for reference in [rule.name.as_deref(), rule.id.as_deref()]
                .into_iter()
                .flatten()
            {
                let positions = by_reference.entry(reference).or_default();
                if !positions.contains(&position) {
                    positions.push(position);
                }
            }
        }
        // Parse every correlation document.
        let mut specs: Vec<(usize, CorrelationSpec)> = Vec::new();
        let mut spec_at: HashMap<usize, usize> = HashMap::new();
        for (position, rule) in rules.iter().enumerate() {
            let RuleKind::Correlation { raw_yaml } = &rule.kind else {
                continue;
            };
            match parse_correlation_yaml(raw_yaml, limits) {
                Ok(spec) => {
                    spec_at.insert(position, specs.len());
                    specs.push((position, spec));
                }
                Err(error) => rejections.push(reject(rule, error)),
            }
        }
        // Resolve references.
        let mut resolved: Vec<Result<Vec<Resolved>, Error>> = Vec::with_capacity(specs.len());
        for (_, spec) in &specs {
            let mut inputs = Vec::new();
            let mut failure = None;
            for (index, reference) in spec.rules.iter().enumerate() {
                let path = format!("correlation.rules[{index}]");
                match by_reference.get(reference.as_str()).map(Vec::as_slice) {
                    None | Some([]) => {
                        failure = Some(Error::InvalidRule(format!(
                            "{path}: no loaded rule has the name or id '{reference}'"
                        )));
                    }
                    Some([position]) => match &rules[*position].kind {
                        RuleKind::Detection(_) => match compiled_at.get(position) {
                            Some(index) => inputs.push(Resolved::Rule(*index)),
                            None => {
                                failure = Some(Error::InvalidRule(format!(
                                    "{path}: rule '{reference}' was rejected when compiling"
                                )));
                            }
                        },
                        RuleKind::Correlation { .. } => match spec_at.get(position) {
                            Some(spec_index) => inputs.push(Resolved::Correlation(*spec_index)),
                            None => {
                                failure = Some(Error::InvalidRule(format!(
                                    "{path}: correlation '{reference}' was rejected"
                                )));
                            }
                        },
                    },
                    Some(several) => {
                        failure = Some(Error::InvalidRule(format!(
                            "{path}: '{reference}' is ambiguous ({} rules have that name or id)",
                            several.len()
                        )));
                    }
                }
                if failure.is_some() {
                    break;
                }
            }
            if failure.is_none()
                && let Err(error) = compile_inputs(spec, &inputs, None, &specs, mapping, rules)
            {
                failure = Some(error);
            }
            resolved.push(match failure {
                Some(error) => Err(error),
                None => Ok(inputs),
            });
        }
        // Depths, cycles and failures propagated along references (walk bounded by the depth
        // limit, so hostile chains cannot exhaust the stack).
        let mut walk = vec![Walk::Pending; specs.len()];
        let mut reasons: Vec<Option<Error>> = (0..specs.len()).map(|_| None).collect();
        for index in 0..specs.len() {
            depth_of(
                index,
                &resolved,
                &mut walk,
                &mut reasons,
                limits.max_chain_depth,
                0,
                &specs,
                rules,
            );
        }
        // Keep the good ones, numbered in document order.
        let mut new_id: Vec<Option<CorrelationId>> = vec![None; specs.len()];
        let mut next = 0u32;
        for (index, state) in walk.iter().enumerate() {
            if matches!(state, Walk::Done(_)) {
                new_id[index] = Some(CorrelationId(next));
                next += 1;
            }
        }
        let mut correlations: Vec<Compiled> = Vec::new();
        let mut generates: Vec<bool> = Vec::new();
        for (index, (position, spec)) in specs.iter().enumerate() {
            let rule = &rules[*position];
            let built = match (&walk[index], &resolved[index]) {
                (Walk::Done(depth), Ok(inputs)) => {
                    compile_inputs(spec, inputs, Some(&new_id), &specs, mapping, rules)
                        .map(|inputs| (*depth, inputs))
                }
                _ => Err(reasons[index].take().unwrap_or_else(|| {
                    Error::InvalidRule(
                        "correlation.rules: a referenced correlation was rejected".to_owned(),
                    )
                })),
            };
            match built {
                Ok((depth, inputs)) => {
                    correlations.push(Compiled {
                        meta: AlertMeta::new(rule.id.as_deref(), &rule.title, rule.level),
                        alert_kind: alert_kind(spec),
                        state: state_kind(spec),
                        condition: spec.condition.clone(),
                        timespan: spec.timespan_nanos,
                        group_names: spec
                            .group_by
                            .iter()
                            .map(|name| Arc::from(name.as_str()))
                            .collect(),
                        inputs,
                        depth,
                        emits: true,
                        downstream: Vec::new(),
                        counts_events: matches!(
                            spec.kind,
                            CorrelationType::EventCount | CorrelationType::ValueCount
                        ),
                    });
                    generates.push(rule.generate);
                }
                Err(error) => rejections.push(reject(rule, error)),
            }
        }
        // Routes, downstream links and who alerts on their own.
        let mut detection = vec![DetectionRoute::default(); matcher.len()];
        let mut rule_generates = vec![false; matcher.len()];
        for (index, info) in matcher.rules().enumerate() {
            rule_generates[index] = rules
                .get(info.rule_position)
                .is_some_and(|rule| rule.generate);
            detection[index].meta =
                Some(AlertMeta::new(info.id.as_deref(), &info.title, info.level));
        }
        let mut referenced_correlations = vec![false; correlations.len()];
        let mut links: Vec<(CorrelationId, CorrelationId, u16)> = Vec::new();
        for (index, compiled) in correlations.iter().enumerate() {
            for (input_index, input) in compiled.inputs.iter().enumerate() {
                let target = (CorrelationId(index as u32), input_index as u16);
                match input.source {
                    InputSource::Rule(rule) => {
                        if let Some(route) = detection.get_mut(rule.0 as usize) {
                            route.feeds.push(target);
                        }
                    }
                    InputSource::Correlation(upstream) => {
                        links.push((upstream, target.0, target.1));
                        if let Some(flag) = referenced_correlations.get_mut(upstream.0 as usize) {
                            *flag = true;
                        }
                    }
                }
            }
        }
        for (upstream, target, input) in links {
            if let Some(compiled) = correlations.get_mut(upstream.0 as usize) {
                compiled.downstream.push((target, input));
            }
        }
        for (route, generate) in detection.iter_mut().zip(&rule_generates) {
            route.emits = route.feeds.is_empty() || *generate;
        }
        for (index, compiled) in correlations.iter_mut().enumerate() {
            compiled.emits = !referenced_correlations[index] || generates[index];
        }
        let max_depth = correlations.iter().map(|c| c.depth).max().unwrap_or(0);
        (
            Correlations {
                correlations,
                detection,
                max_depth,
            },
            rejections,
        )
    }

    /// Number of correlations built.
    pub fn len(&self) -> usize {
        self.correlations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.correlations.is_empty()
    }

    /// The deepest chain of correlations (0 when there are none).
    pub fn max_depth(&self) -> usize {
        self.max_depth
    }

    /// Facts about one correlation.
    pub fn info(&self, id: CorrelationId) -> Option<CorrelationInfo> {
        let compiled = self.correlations.get(id.0 as usize)?;
        Some(CorrelationInfo {
            rule: compiled.meta.rule.clone(),
            title: compiled.meta.title.clone(),
            level: compiled.meta.level,
            kind: compiled.alert_kind,
            timespan_nanos: compiled.timespan,
            group_by: compiled.group_names.clone(),
            depth: compiled.depth,
            emits: compiled.emits,
        })
    }

    /// Finds a correlation by its alert label (id, or title).
    pub fn find(&self, label: &str) -> Option<CorrelationId> {
        self.correlations
            .iter()
            .position(|compiled| &*compiled.meta.rule == label)
            .map(|index| CorrelationId(index as u32))
    }

    /// Whether a matched detection rule emits its own alerts (not referenced by a correlation,
    /// or `generate: true`).
    pub fn rule_alerts_alone(&self, rule: RuleIndex) -> bool {
        self.detection
            .get(rule.0 as usize)
            .is_none_or(|route| route.emits)
    }

    /// Whether a detection rule feeds at least one correlation.
    pub fn rule_feeds_correlations(&self, rule: RuleIndex) -> bool {
        self.detection
            .get(rule.0 as usize)
            .is_some_and(|route| !route.feeds.is_empty())
    }

    /// The cheap per-event step, run in the parse workers right after matching: appends a
    /// detection [`Alert`] for each rule in `matched` that alerts on its own, and an
    /// [`Observation`] for each correlation input a matched rule feeds. Group-by values are read
    /// through the same field resolution as the matcher (field mapping, built-in aliases,
    /// extracted fields, JSON, structured data). Returns how many observations were not made
    /// because the event lacks a group-by or counted field (or it is empty).
    ///
    /// `matched` must come from the [`Matcher`] these correlations were built with.
    pub fn observe(
        &self,
        event: &Event,
        matched: &[RuleIndex],
        out_obs: &mut Vec<Observation>,
        out_alerts: &mut Vec<Alert>,
    ) -> u64 {
        let mut missing = 0u64;
        let first_new = out_obs.len();
        let mut rendered = String::new();
        for rule in matched {
            let Some(route) = self.detection.get(rule.0 as usize) else {
                continue;
            };
            if route.emits
                && let Some(meta) = &route.meta
            {
                out_alerts.push(detection_alert(meta, event));
            }
            for &(correlation, input_index) in &route.feeds {
                let Some(compiled) = self.correlations.get(correlation.0 as usize) else {
                    continue;
                };
                if compiled.counts_events
                    && out_obs[first_new..]
                        .iter()
                        .any(|observation| observation.correlation == correlation)
                {
                    continue;
                }
                let Some(input) = compiled.inputs.get(input_index as usize) else {
                    continue;
                };
                let mut key = String::new();
                let mut complete = true;
                for (index, field) in input.group_fields.iter().enumerate() {
                    match field_text(event, field, &mut rendered) {
                        Some(value) => {
                            if index > 0 {
                                key.push(KEY_SEPARATOR);
                            }
                            push_value(&mut key, value);
                        }
                        None => {
                            complete = false;
                            break;
                        }
                    }
                }
                let mut value = 0u64;
                if complete && !input.value_fields.is_empty() {
                    let mut joined = String::new();
                    for (index, field) in input.value_fields.iter().enumerate() {
                        match field_text(event, field, &mut rendered) {
                            Some(text) => {
                                if index > 0 {
                                    joined.push(KEY_SEPARATOR);
                                }
                                push_value(&mut joined, text);
                            }
                            None => {
                                complete = false;
                                break;
                            }
                        }
                    }
                    value = hash_text(&joined);
                }
                if !complete {
                    missing += 1;
                    continue;
                }
                out_obs.push(Observation {
                    ts: event.ts,
                    seq: event.seq,
                    correlation,
                    input: input_index,
                    group: GroupKey::from_joined(key),
                    value,
                    incomplete: false,
                });
            }
        }
        missing
    }
}

/// The text of a field of an event; `None` when absent or empty.
fn field_text<'a>(event: &'a Event, field: &FieldRef, rendered: &'a mut String) -> Option<&'a str> {
    let source = find_source(event, field);
    if let Source::Field(index) = source
        && let Some(found) = event.fields.get(index as usize)
    {
        render_value(&found.value, rendered);
    }
    let value = source_value(event, source, rendered)?;
    (!value.text.is_empty()).then_some(value.text)
}

fn detection_alert(meta: &AlertMeta, event: &Event) -> Alert {
    Alert {
        rule: meta.rule.clone(),
        title: meta.title.clone(),
        level: meta.level,
        kind: AlertKind::Detection,
        ts: event.ts,
        first_ts: event.ts,
        group: event
            .host_str()
            .map(|host| vec![(Arc::from("host"), host.to_owned())])
            .unwrap_or_default(),
        event_count: 1,
        evidence: vec![event.seq],
        possibly_incomplete: false,
    }
}

fn reject(rule: &Rule, error: Error) -> Rejection {
    Rejection::new(rule.source.clone(), Some(rule.title.clone()), error)
}

fn alert_kind(spec: &CorrelationSpec) -> AlertKind {
    match spec.kind {
        CorrelationType::EventCount => AlertKind::EventCount,
        CorrelationType::ValueCount => AlertKind::ValueCount,
        CorrelationType::Temporal if spec.absence.is_some() => AlertKind::Absence,
        CorrelationType::Temporal => AlertKind::Temporal,
        CorrelationType::TemporalOrdered => AlertKind::TemporalOrdered,
    }
}

fn state_kind(spec: &CorrelationSpec) -> StateKind {
    let condition = &spec.condition;
    match spec.kind {
        CorrelationType::EventCount if condition.is_monotone() => StateKind::CountSliding {
            threshold: condition.threshold(),
        },
        CorrelationType::ValueCount if condition.is_monotone() => StateKind::DistinctSliding {
            threshold: condition.threshold(),
        },
        CorrelationType::EventCount => StateKind::Closing {
            distinct: false,
            distinct_cap: 0,
        },
        CorrelationType::ValueCount => StateKind::Closing {
            distinct: true,
            distinct_cap: condition.max_value().saturating_add(1),
        },
        CorrelationType::Temporal => match spec.absence {
            Some((started, awaited)) => StateKind::Absence {
                started: started as u16,
                awaited: awaited as u16,
            },
            None => StateKind::Temporal {
                threshold: condition.threshold(),
            },
        },
        CorrelationType::TemporalOrdered => StateKind::Ordered,
    }
}

#[allow(clippy::too_many_arguments)]
fn depth_of(
    index: usize,
    resolved: &[Result<Vec<Resolved>, Error>],
    walk: &mut [Walk],
    reasons: &mut [Option<Error>],
    max_depth: usize,
    nesting: usize,
    specs: &[(usize, CorrelationSpec)],
    rules: &[Rule],
) -> Option<usize> {
    match walk[index] {
        Walk::Done(depth) => return Some(depth),
        Walk::Failed => return None,
        Walk::InProgress => {
            walk[index] = Walk::Failed;
            reasons[index] = Some(Error::InvalidRule(
                "correlation.rules: the correlation is part of a reference cycle".to_owned(),
            ));
            return None;
        }
        Walk::Pending => {}
    }
    if nesting > max_depth {
        walk[index] = Walk::Failed;
        reasons[index] = Some(Error::LimitExceeded(format!(
            "correlation.rules: chain of correlations deeper than {max_depth}"
        )));
        return None;
    }
    let inputs = match &resolved[index] {
        Ok(inputs) => inputs,
        Err(error) => {
            walk[index] = Walk::Failed;
            reasons[index] = Some(clone_error(error));
            return None;
        }
    };
    walk[index] = Walk::InProgress;
    let mut depth = 1usize;
    for (position, input) in inputs.iter().enumerate() {
        if let Resolved::Correlation(upstream) = input {
            match depth_of(
                *upstream,
                resolved,
                walk,
                reasons,
                max_depth,
                nesting + 1,
                specs,
                rules,
            ) {
                Some(upstream_depth) => depth = depth.max(upstream_depth + 1),
                None => {
                    if matches!(walk[index], Walk::Failed) {
                        // We are in the cycle that was just detected.
                        return None;
                    }
                    let upstream_title = rules
                        .get(specs[*upstream].0)
                        .map(|rule| rule.title.as_str())
                        .unwrap_or("");
                    let cycle = matches!(
                        reasons[*upstream].as_ref(),
                        Some(Error::InvalidRule(text)) if text.contains("cycle")
                    );
                    let limit =
                        matches!(reasons[*upstream].as_ref(), Some(Error::LimitExceeded(_)));
                    walk[index] = Walk::Failed;
                    reasons[index] = Some(if cycle {
                        Error::InvalidRule(
                            "correlation.rules: the correlation is part of a reference cycle"
                                .to_owned(),
                        )
                    } else if limit {
                        Error::LimitExceeded(format!(
                            "correlation.rules: chain of correlations deeper than {max_depth}"
                        ))
                    } else {
                        Error::InvalidRule(format!(
                            "correlation.rules[{position}]: correlation '{upstream_title}' was rejected"
                        ))
                    });
                    return None;
                }
            }
        }
    }
    if depth > max_depth {
        walk[index] = Walk::Failed;
        reasons[index] = Some(Error::LimitExceeded(format!(
            "correlation.rules: chain of correlations deeper than {max_depth}"
        )));
        return None;
    }
    walk[index] = Walk::Done(depth);
    Some(depth)
}

fn clone_error(error: &Error) -> Error {
    match error {
        Error::Io { path, source } => Error::Io {
            path: path.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        Error::Yaml(text) => Error::Yaml(text.clone()),
        Error::InvalidRule(text) => Error::InvalidRule(text.clone()),
        Error::Unsupported(text) => Error::Unsupported(text.clone()),
        Error::LimitExceeded(text) => Error::LimitExceeded(text.clone()),
    }
}

/// Resolves the group-by and counted fields of every input. With `new_id` `None` this only
/// checks (before the graph walk); with the final numbering it builds the inputs.
fn compile_inputs(
    spec: &CorrelationSpec,
    inputs: &[Resolved],
    new_id: Option<&[Option<CorrelationId>]>,
    specs: &[(usize, CorrelationSpec)],
    mapping: &FieldMapping,
    rules: &[Rule],
) -> Result<Vec<Input>, Error> {
    let mut compiled = Vec::with_capacity(inputs.len());
    for (index, (resolved, reference)) in inputs.iter().zip(&spec.rules).enumerate() {
        let mut group_names = Vec::with_capacity(spec.group_by.len());
        for group_name in &spec.group_by {
            let field = spec.field_for(group_name, reference).ok_or_else(|| {
                Error::InvalidRule(format!(
                    "correlation.aliases.{group_name}: no field for rule '{reference}'"
                ))
            })?;
            group_names.push(field);
        }
        let value_names: Vec<&str> = spec
            .value_fields
            .iter()
            .map(|name| spec.field_for(name, reference).unwrap_or(name))
            .collect();
        match resolved {
            Resolved::Rule(rule_index) => compiled.push(Input {
                source: InputSource::Rule(*rule_index),
                group_fields: group_names
                    .iter()
                    .map(|name| resolve_field(name, mapping))
                    .collect(),
                value_fields: value_names
                    .iter()
                    .map(|name| resolve_field(name, mapping))
                    .collect(),
                group_positions: Vec::new(),
                value_positions: Vec::new(),
            }),
            Resolved::Correlation(upstream) => {
                let id = match new_id {
                    None => CorrelationId(u32::MAX),
                    Some(ids) => ids.get(*upstream).copied().flatten().ok_or_else(|| {
                        Error::InvalidRule(format!(
                            "correlation.rules[{index}]: correlation '{reference}' was rejected"
                        ))
                    })?,
                };
                let upstream_spec = &specs[*upstream].1;
                let upstream_title = rules
                    .get(specs[*upstream].0)
                    .map_or("", |rule| rule.title.as_str());
                let position_of = |name: &str, what: &str| {
                    upstream_spec
                        .group_by
                        .iter()
                        .position(|upstream_name| upstream_name == name)
                        .ok_or_else(|| {
                            Error::InvalidRule(format!(
                                "correlation.{what}: '{name}' is not a group-by field of \
                                 correlation '{upstream_title}' (its alerts carry only {:?})",
                                upstream_spec.group_by
                            ))
                        })
                };
                let group_positions = group_names
                    .iter()
                    .map(|name| position_of(name, "group-by"))
                    .collect::<Result<Vec<_>, _>>()?;
                let value_positions = value_names
                    .iter()
                    .map(|name| position_of(name, "condition.field"))
                    .collect::<Result<Vec<_>, _>>()?;
                compiled.push(Input {
                    source: InputSource::Correlation(id),
                    group_fields: Vec::new(),
                    value_fields: Vec::new(),
                    group_positions,
                    value_positions,
                });
            }
        }
    }
    Ok(compiled)
}

/// The observation a correlation alert makes for a downstream correlation input.
pub(crate) fn derived_observation(
    compiled_downstream: &Compiled,
    target: (CorrelationId, u16),
    upstream_values: &[&str],
    ts: Timestamp,
    seq: Seq,
    incomplete: bool,
) -> Option<Observation> {
    let input = compiled_downstream.inputs.get(target.1 as usize)?;
    let mut key = String::new();
    for (index, position) in input.group_positions.iter().enumerate() {
        if index > 0 {
            key.push(KEY_SEPARATOR);
        }
        push_value(&mut key, upstream_values.get(*position)?);
    }
    let mut value = 0;
    if !input.value_positions.is_empty() {
        let mut joined = String::new();
        for (index, position) in input.value_positions.iter().enumerate() {
            if index > 0 {
                joined.push(KEY_SEPARATOR);
            }
            push_value(&mut joined, upstream_values.get(*position)?);
        }
        value = hash_text(&joined);
    }
    Some(Observation {
        ts,
        seq,
        correlation: target.0,
        input: target.1,
        group: GroupKey::from_joined(key),
        value,
        incomplete,
    })
}
