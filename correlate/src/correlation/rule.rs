//! Parsing the `correlation:` section of a Sigma correlation rule (Sigma correlation rules v2.1,
//! plus the extended temporal condition `a and not b` for absence).
//!
//! Parsing checks the section alone (types, timespan, condition, aliases, caps). Whether the
//! referenced rules exist, are unambiguous, form no cycle and fit the chain depth is checked
//! when the correlations are built into a graph ([`super::Correlations::build`]).

use yaml_rust2::Yaml;

use crate::error::Error;
use crate::yaml;

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// Caps on correlation rules. Rules beyond them are rejected with [`Error::LimitExceeded`], so
/// untrusted rule files cannot make the engine keep unbounded state per group.
#[derive(Debug, Clone)]
pub struct CorrelationLimits {
    /// Most rules one correlation may reference (`rules:`).
    pub max_rules: usize,
    /// Most `group-by` fields.
    pub max_group_by: usize,
    /// Most fields in a `value_count` `field` list.
    pub max_value_fields: usize,
    /// Shortest accepted `timespan`, in seconds.
    pub min_timespan_secs: i64,
    /// Longest accepted `timespan`, in seconds.
    pub max_timespan_secs: i64,
    /// Deepest chain of correlations over correlations (a correlation over detection rules only
    /// is 1 deep).
    pub max_chain_depth: usize,
    /// Largest number accepted in a `condition` (bounds the state kept per group: an
    /// `event_count` with `gte: N` keeps up to N timestamps per open group).
    pub max_condition_value: u64,
}

impl Default for CorrelationLimits {
    fn default() -> CorrelationLimits {
        CorrelationLimits {
            max_rules: 16,
            max_group_by: 8,
            max_value_fields: 8,
            min_timespan_secs: 1,
            max_timespan_secs: 30 * 24 * 3600,
            max_chain_depth: 4,
            max_condition_value: 10_000,
        }
    }
}

/// The Sigma correlation types Cairn runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CorrelationType {
    EventCount,
    ValueCount,
    Temporal,
    TemporalOrdered,
}

impl CorrelationType {
    pub fn name(self) -> &'static str {
        match self {
            CorrelationType::EventCount => "event_count",
            CorrelationType::ValueCount => "value_count",
            CorrelationType::Temporal => "temporal",
            CorrelationType::TemporalOrdered => "temporal_ordered",
        }
    }
}

/// A comparison of a count against a number (`gte: 5`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bound {
    Gt(u64),
    Gte(u64),
    Lt(u64),
    Lte(u64),
    Eq(u64),
    Neq(u64),
}

impl Bound {
    fn holds(self, count: u64) -> bool {
        match self {
            Bound::Gt(value) => count > value,
            Bound::Gte(value) => count >= value,
            Bound::Lt(value) => count < value,
            Bound::Lte(value) => count <= value,
            Bound::Eq(value) => count == value,
            Bound::Neq(value) => count != value,
        }
    }

    fn value(self) -> u64 {
        match self {
            Bound::Gt(value)
            | Bound::Gte(value)
            | Bound::Lt(value)
            | Bound::Lte(value)
            | Bound::Eq(value)
            | Bound::Neq(value) => value,
        }
    }

    fn is_lower(self) -> bool {
        matches!(self, Bound::Gt(_) | Bound::Gte(_))
    }
}

/// A correlation `condition`: every bound must hold (an AND, as the spec's ranges).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CountCondition {
    pub bounds: Vec<Bound>,
}

impl CountCondition {
    /// `gte: n`.
    pub fn at_least(n: u64) -> CountCondition {
        CountCondition {
            bounds: vec![Bound::Gte(n)],
        }
    }

    /// True when `count` satisfies every bound.
    pub fn holds(&self, count: u64) -> bool {
        self.bounds.iter().all(|bound| bound.holds(count))
    }

    /// True when the condition only has lower bounds (`gt`, `gte`): once true for a count it
    /// stays true for larger counts, so the engine fires as soon as it holds. Other conditions
    /// can only be decided when the window closes.
    pub fn is_monotone(&self) -> bool {
        self.bounds.iter().all(|bound| bound.is_lower())
    }

    /// The smallest count that satisfies a monotone condition.
    pub fn threshold(&self) -> u64 {
        self.bounds
            .iter()
            .map(|bound| match bound {
                Bound::Gt(value) => value.saturating_add(1),
                Bound::Gte(value) => *value,
                _ => 0,
            })
            .max()
            .unwrap_or(1)
            .max(1)
    }

    /// The largest number named by the condition.
    pub fn max_value(&self) -> u64 {
        self.bounds
            .iter()
            .map(|bound| bound.value())
            .max()
            .unwrap_or(0)
    }
}

/// A parsed correlation section.
#[derive(Debug, Clone)]
pub struct CorrelationSpec {
    pub kind: CorrelationType,
    /// Referenced rules (`name` or `id`), as written.
    pub rules: Vec<String>,
    /// `group-by` field names (alias names or plain field names), in rule order.
    pub group_by: Vec<String>,
    /// `alias name → [(referenced rule as written, field name)]`.
    pub aliases: Vec<(String, Vec<(String, String)>)>,
    /// The timespan in nanoseconds.
    pub timespan_nanos: i64,
    /// The count condition; for `temporal`/`temporal_ordered` without one: all rules.
    pub condition: CountCondition,
    /// `value_count`: the fields whose distinct values are counted (several: distinct
    /// combinations).
    pub value_fields: Vec<String>,
    /// The extended temporal condition `a and not b`: `(a, b)` as positions in `rules`.
    pub absence: Option<(usize, usize)>,
}

impl CorrelationSpec {
    /// The field of `group_by[position]` for events of the referenced rule `rule` (as written in
    /// `rules`): its alias mapping when the group-by name is an alias, else the name itself.
    pub fn field_for<'a>(&'a self, group_name: &'a str, rule: &str) -> Option<&'a str> {
        match self.aliases.iter().find(|(alias, _)| alias == group_name) {
            Some((_, mapping)) => mapping
                .iter()
                .find(|(mapped_rule, _)| mapped_rule == rule)
                .map(|(_, field)| field.as_str()),
            None => Some(group_name),
        }
    }
}

fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidRule(message.into())
}

/// Parses the correlation section of a correlation document kept aside by the loader
/// (`RuleKind::Correlation { raw_yaml }`).
pub(crate) fn parse_correlation_yaml(
    raw_yaml: &str,
    limits: &CorrelationLimits,
) -> Result<CorrelationSpec, Error> {
    let documents = yaml::load_documents(raw_yaml)?;
    let Some(document) = documents.first() else {
        return Err(invalid("correlation: missing"));
    };
    parse_correlation(&document["correlation"], limits)
}

fn parse_correlation(node: &Yaml, limits: &CorrelationLimits) -> Result<CorrelationSpec, Error> {
    let Yaml::Hash(map) = node else {
        return Err(match node {
            Yaml::BadValue => invalid("correlation: missing"),
            _ => invalid("correlation: expected a mapping"),
        });
    };
    for key in map.keys() {
        let Some(key) = key.as_str() else {
            return Err(invalid("correlation: keys must be strings"));
        };
        if !matches!(
            key,
            "type" | "rules" | "group-by" | "timespan" | "condition" | "aliases" | "generate"
        ) {
            return Err(invalid(format!("correlation.{key}: unknown attribute")));
        }
    }
    let kind = match &node["type"] {
        Yaml::String(text) => match text.as_str() {
            "event_count" => CorrelationType::EventCount,
            "value_count" => CorrelationType::ValueCount,
            "temporal" => CorrelationType::Temporal,
            "temporal_ordered" => CorrelationType::TemporalOrdered,
            "value_sum" | "value_avg" | "value_percentile" => {
                return Err(Error::Unsupported(format!(
                    "correlation.type: '{text}' (metric correlation) is not supported"
                )));
            }
            other => return Err(invalid(format!("correlation.type: unknown type '{other}'"))),
        },
        Yaml::BadValue | Yaml::Null => return Err(invalid("correlation.type: missing")),
        _ => return Err(invalid("correlation.type: expected a string")),
    };
    let rules = parse_rules(&node["rules"], limits)?;
    let group_by = parse_group_by(&node["group-by"], limits)?;
    let aliases = parse_aliases(&node["aliases"], &rules, &group_by)?;
    let timespan_nanos = parse_timespan(&node["timespan"], limits)?;

    let mut condition = None;
    let mut value_fields = Vec::new();
    let mut absence = None;
    match &node["condition"] {
        Yaml::BadValue | Yaml::Null => {}
        Yaml::String(text) => {
            if kind != CorrelationType::Temporal {
                return Err(invalid(format!(
                    "correlation.condition: a condition expression ('{text}') is only accepted \
                     on a temporal correlation"
                )));
            }
            absence = Some(parse_absence(text, &rules)?);
        }
        Yaml::Hash(_) => {
            let (parsed, fields) = parse_condition_map(&node["condition"], limits)?;
            condition = Some(parsed);
            value_fields = fields;
        }
        _ => {
            return Err(invalid(
                "correlation.condition: expected a mapping (gte: 5) or, on a temporal \
                 correlation, an expression (a and not b)",
            ));
        }
    }
    if value_fields.len() > limits.max_value_fields {
        return Err(Error::LimitExceeded(format!(
            "correlation.condition.field: {} fields, more than the {} accepted",
            value_fields.len(),
            limits.max_value_fields
        )));
    }
    let rule_count = rules.len() as u64;
    let condition = match kind {
        CorrelationType::EventCount | CorrelationType::ValueCount => {
            let Some(condition) = condition else {
                return Err(invalid(format!(
                    "correlation.condition: missing (required for {})",
                    kind.name()
                )));
            };
            if kind == CorrelationType::ValueCount && value_fields.is_empty() {
                return Err(invalid(
                    "correlation.condition.field: missing (required for value_count)",
                ));
            }
            if kind == CorrelationType::EventCount && !value_fields.is_empty() {
                return Err(invalid(
                    "correlation.condition.field: only value_count counts the values of a field",
                ));
            }
            condition
        }
        CorrelationType::Temporal | CorrelationType::TemporalOrdered => {
            if !value_fields.is_empty() {
                return Err(invalid(format!(
                    "correlation.condition.field: not used by {}",
                    kind.name()
                )));
            }
            if absence.is_some() {
                CountCondition::at_least(1)
            } else {
                match condition {
                    None => CountCondition::at_least(rule_count),
                    Some(condition) => temporal_condition(kind, condition, rule_count)?,
                }
            }
        }
    };
    if let Some(unsatisfiable) = unsatisfiable(&condition, kind, rule_count) {
        return Err(invalid(format!("correlation.condition: {unsatisfiable}")));
    }
    if kind == CorrelationType::TemporalOrdered && rules.len() < 2 {
        return Err(invalid(
            "correlation.rules: temporal_ordered needs at least two rules",
        ));
    }
    Ok(CorrelationSpec {
        kind,
        rules,
        group_by,
        aliases,
        timespan_nanos,
        condition,
        value_fields,
        absence,
    })
}

/// Checks a temporal condition (a count of distinct rules seen): only lower bounds, or `eq` /
/// `lte` meaning all rules (a count of distinct rules never exceeds the number of rules).
fn temporal_condition(
    kind: CorrelationType,
    condition: CountCondition,
    rule_count: u64,
) -> Result<CountCondition, Error> {
    let mut lower = Vec::new();
    for bound in &condition.bounds {
        match *bound {
            Bound::Gt(_) | Bound::Gte(_) => lower.push(*bound),
            Bound::Eq(value) if value == rule_count => lower.push(Bound::Gte(value)),
            Bound::Lte(value) if value >= rule_count => {}
            _ => {
                return Err(Error::Unsupported(format!(
                    "correlation.condition: {} counts distinct rules seen in the timespan; only \
                     gt/gte (or eq: {rule_count}, all rules) are supported",
                    kind.name()
                )));
            }
        }
    }
    if lower.is_empty() {
        lower.push(Bound::Gte(rule_count));
    }
    let condition = CountCondition { bounds: lower };
    if kind == CorrelationType::TemporalOrdered && condition.threshold() != rule_count {
        return Err(Error::Unsupported(format!(
            "correlation.condition: temporal_ordered needs all {rule_count} rules in order; \
             a partial count is not supported"
        )));
    }
    Ok(condition)
}

/// Why a condition can never fire, if so.
fn unsatisfiable(condition: &CountCondition, kind: CorrelationType, rules: u64) -> Option<String> {
    let max_count = match kind {
        CorrelationType::Temporal | CorrelationType::TemporalOrdered => rules,
        _ => u64::MAX,
    };
    // A window opens on an event, so counts of 0 are never observed.
    let satisfiable = if condition.is_monotone() {
        condition.threshold() <= max_count
    } else {
        let limit = condition.max_value().saturating_add(1).min(max_count);
        (1..=limit).any(|count| condition.holds(count))
    };
    if satisfiable {
        None
    } else if kind == CorrelationType::Temporal || kind == CorrelationType::TemporalOrdered {
        Some(format!(
            "can never be true: the correlation has {rules} rule(s)"
        ))
    } else {
        Some(
            "can never be true for a count of 1 or more (a window opens on an event, so a \
             count of 0 is never observed)"
                .to_owned(),
        )
    }
}

fn parse_rules(node: &Yaml, limits: &CorrelationLimits) -> Result<Vec<String>, Error> {
    let items = match node {
        Yaml::Array(items) => items,
        Yaml::String(text) => return single_rule(text),
        Yaml::BadValue | Yaml::Null => return Err(invalid("correlation.rules: missing")),
        _ => {
            return Err(invalid(
                "correlation.rules: expected a list of rule names or ids",
            ));
        }
    };
    if items.is_empty() {
        return Err(invalid("correlation.rules: empty list"));
    }
    if items.len() > limits.max_rules {
        return Err(Error::LimitExceeded(format!(
            "correlation.rules: {} rules, more than the {} accepted",
            items.len(),
            limits.max_rules
        )));
    }
    let mut rules: Vec<String> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let text = match item {
            Yaml::String(text) if !text.trim().is_empty() => text.trim().to_owned(),
            _ => {
                return Err(invalid(format!(
                    "correlation.rules[{index}]: expected a rule name or id"
                )));
            }
        };
        if rules.contains(&text) {
            return Err(invalid(format!(
                "correlation.rules[{index}]: '{text}' is listed twice"
            )));
        }
        rules.push(text);
    }
    Ok(rules)
}

fn single_rule(text: &str) -> Result<Vec<String>, Error> {
    if text.trim().is_empty() {
        return Err(invalid(
            "correlation.rules: expected a list of rule names or ids",
        ));
    }
    Ok(vec![text.trim().to_owned()])
}

fn parse_group_by(node: &Yaml, limits: &CorrelationLimits) -> Result<Vec<String>, Error> {
    let list: Vec<&Yaml> = match node {
        Yaml::BadValue | Yaml::Null => return Ok(Vec::new()),
        Yaml::String(_) => vec![node],
        Yaml::Array(items) => items.iter().collect(),
        _ => {
            return Err(invalid(
                "correlation.group-by: expected a list of field names",
            ));
        }
    };
    if list.len() > limits.max_group_by {
        return Err(Error::LimitExceeded(format!(
            "correlation.group-by: {} fields, more than the {} accepted",
            list.len(),
            limits.max_group_by
        )));
    }
    let mut fields: Vec<String> = Vec::with_capacity(list.len());
    for (index, item) in list.into_iter().enumerate() {
        let Yaml::String(text) = item else {
            return Err(invalid(format!(
                "correlation.group-by[{index}]: expected a field name"
            )));
        };
        let text = text.trim();
        if text.is_empty() {
            return Err(invalid(format!(
                "correlation.group-by[{index}]: empty field name"
            )));
        }
        if fields.iter().any(|field| field == text) {
            return Err(invalid(format!(
                "correlation.group-by[{index}]: '{text}' is listed twice"
            )));
        }
        fields.push(text.to_owned());
    }
    Ok(fields)
}

type Aliases = Vec<(String, Vec<(String, String)>)>;

fn parse_aliases(node: &Yaml, rules: &[String], group_by: &[String]) -> Result<Aliases, Error> {
    let map = match node {
        Yaml::BadValue | Yaml::Null => return Ok(Vec::new()),
        Yaml::Hash(map) => map,
        _ => return Err(invalid("correlation.aliases: expected a mapping")),
    };
    let mut aliases = Vec::new();
    for (alias, mapping) in map {
        let Some(alias) = alias.as_str() else {
            return Err(invalid("correlation.aliases: alias names must be strings"));
        };
        let path = format!("correlation.aliases.{alias}");
        let Yaml::Hash(mapping) = mapping else {
            return Err(invalid(format!(
                "{path}: expected a mapping of rule name to field name"
            )));
        };
        let mut fields = Vec::new();
        for (rule, field) in mapping {
            let Some(rule) = rule.as_str() else {
                return Err(invalid(format!("{path}: rule names must be strings")));
            };
            if !rules.iter().any(|listed| listed == rule) {
                return Err(invalid(format!(
                    "{path}.{rule}: '{rule}' is not one of the correlation's rules"
                )));
            }
            let Some(field) = field.as_str().map(str::trim).filter(|f| !f.is_empty()) else {
                return Err(invalid(format!("{path}.{rule}: expected a field name")));
            };
            fields.push((rule.to_owned(), field.to_owned()));
        }
        if group_by.iter().any(|field| field == alias) {
            for rule in rules {
                if !fields.iter().any(|(mapped, _)| mapped == rule) {
                    return Err(invalid(format!(
                        "{path}: no field for rule '{rule}' (every rule of the correlation \
                         needs one when the alias is grouped by)"
                    )));
                }
            }
        }
        aliases.push((alias.to_owned(), fields));
    }
    Ok(aliases)
}

/// Parses `30s`, `5m`, `1h`, `1d` (and `1w`) into nanoseconds.
pub(crate) fn parse_timespan(node: &Yaml, limits: &CorrelationLimits) -> Result<i64, Error> {
    let text = match node {
        Yaml::String(text) => text.trim(),
        Yaml::BadValue | Yaml::Null => return Err(invalid("correlation.timespan: missing")),
        _ => {
            return Err(invalid(
                "correlation.timespan: expected a number and a unit (30s, 5m, 1h, 1d)",
            ));
        }
    };
    let bad = || {
        invalid(format!(
            "correlation.timespan: '{text}' is not a number and a unit (30s, 5m, 1h, 1d)"
        ))
    };
    let split = text.len().checked_sub(1).ok_or_else(bad)?;
    if !text.is_char_boundary(split) {
        return Err(bad());
    }
    let (number, unit) = text.split_at(split);
    if number.is_empty() || !number.bytes().all(|byte| byte.is_ascii_digit()) || number.len() > 12 {
        return Err(bad());
    }
    let number: i64 = number.parse().map_err(|_| bad())?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    let seconds = number.checked_mul(unit_secs).ok_or_else(bad)?;
    if seconds < limits.min_timespan_secs || seconds > limits.max_timespan_secs {
        return Err(Error::LimitExceeded(format!(
            "correlation.timespan: '{text}' is outside the accepted {}s..={}s",
            limits.min_timespan_secs, limits.max_timespan_secs
        )));
    }
    seconds.checked_mul(NANOS_PER_SECOND).ok_or_else(bad)
}

fn parse_condition_map(
    node: &Yaml,
    limits: &CorrelationLimits,
) -> Result<(CountCondition, Vec<String>), Error> {
    let Yaml::Hash(map) = node else {
        return Err(invalid("correlation.condition: expected a mapping"));
    };
    let mut bounds = Vec::new();
    let mut fields = Vec::new();
    for (key, value) in map {
        let Some(key) = key.as_str() else {
            return Err(invalid("correlation.condition: keys must be strings"));
        };
        let path = format!("correlation.condition.{key}");
        if key == "field" {
            fields = match value {
                Yaml::String(text) if !text.trim().is_empty() => vec![text.trim().to_owned()],
                Yaml::Array(items) if !items.is_empty() => {
                    let mut fields = Vec::new();
                    for (index, item) in items.iter().enumerate() {
                        match item.as_str().map(str::trim) {
                            Some(text) if !text.is_empty() => fields.push(text.to_owned()),
                            _ => {
                                return Err(invalid(format!(
                                    "{path}[{index}]: expected a field name"
                                )));
                            }
                        }
                    }
                    fields
                }
                _ => return Err(invalid(format!("{path}: expected a field name"))),
            };
            continue;
        }
        let number = match value {
            Yaml::Integer(number) if *number >= 0 => *number as u64,
            Yaml::Integer(_) => {
                return Err(invalid(format!("{path}: a count cannot be negative")));
            }
            _ => return Err(invalid(format!("{path}: expected a whole number"))),
        };
        if number > limits.max_condition_value {
            return Err(Error::LimitExceeded(format!(
                "{path}: {number} is more than the {} accepted",
                limits.max_condition_value
            )));
        }
        let bound = match key {
            "gt" => Bound::Gt(number),
            "gte" => Bound::Gte(number),
            "lt" => Bound::Lt(number),
            "lte" => Bound::Lte(number),
            "eq" => Bound::Eq(number),
            "neq" => Bound::Neq(number),
            _ => {
                return Err(invalid(format!(
                    "{path}: unknown comparison (expected gt, gte, lt, lte, eq, neq or field)"
                )));
            }
        };
        bounds.push(bound);
    }
    if bounds.is_empty() {
        return Err(invalid(
            "correlation.condition: no comparison (gt, gte, lt, lte, eq, neq)",
        ));
    }
    Ok((CountCondition { bounds }, fields))
}

/// Parses the extended temporal condition `a and not b` (names as written in `rules`).
fn parse_absence(text: &str, rules: &[String]) -> Result<(usize, usize), Error> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let shape = || {
        Error::Unsupported(format!(
            "correlation.condition: '{text}': the only supported expression is \
             '<rule> and not <rule>' (absence)"
        ))
    };
    let [first, and, not, second] = words.as_slice() else {
        return Err(shape());
    };
    if !and.eq_ignore_ascii_case("and") || !not.eq_ignore_ascii_case("not") {
        return Err(shape());
    }
    let position = |name: &str| {
        rules.iter().position(|rule| rule == name).ok_or_else(|| {
            invalid(format!(
                "correlation.condition: '{name}' is not one of the correlation's rules"
            ))
        })
    };
    let started = position(first)?;
    let awaited = position(second)?;
    if started == awaited {
        return Err(invalid(
            "correlation.condition: an absence needs two different rules",
        ));
    }
    if rules.len() != 2 {
        return Err(Error::Unsupported(format!(
            "correlation.condition: an absence ('{text}') needs exactly the two rules it names \
             in correlation.rules"
        )));
    }
    Ok((started, awaited))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(section: &str) -> Result<CorrelationSpec, Error> {
        let text = format!("title: t\ncorrelation:\n{section}");
        parse_correlation_yaml(&text, &CorrelationLimits::default())
    }

    fn reason(section: &str) -> String {
        match parse(section) {
            Ok(spec) => panic!("unexpectedly parsed: {spec:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn event_count_with_range() {
        let spec = parse(
            "  type: event_count\n  rules: [a]\n  group-by: [src_ip]\n  timespan: 5m\n  \
             condition:\n    gt: 100\n    lte: 200\n",
        )
        .expect("parses");
        assert_eq!(spec.timespan_nanos, 300 * NANOS_PER_SECOND);
        assert!(!spec.condition.is_monotone());
        assert!(spec.condition.holds(150));
        assert!(!spec.condition.holds(100));
        assert!(!spec.condition.holds(201));
    }

    #[test]
    fn temporal_defaults_to_all_rules_and_absence_parses() {
        let spec =
            parse("  type: temporal\n  rules: [a, b, c]\n  group-by: [host]\n  timespan: 1h\n")
                .expect("parses");
        assert_eq!(spec.condition.threshold(), 3);
        let spec = parse(
            "  type: temporal\n  rules: [started, finished]\n  group-by: [host]\n  timespan: 1h\n  \
             condition: started and not finished\n",
        )
        .expect("parses");
        assert_eq!(spec.absence, Some((0, 1)));
    }

    #[test]
    fn precise_rejections() {
        for (section, expected) in [
            (
                "  type: value_sum\n  rules: [a]\n  timespan: 1h\n  condition: {gt: 1, field: x}\n",
                "unsupported: correlation.type: 'value_sum'",
            ),
            (
                "  type: bogus\n  rules: [a]\n  timespan: 1h\n",
                "correlation.type: unknown type 'bogus'",
            ),
            (
                "  type: event_count\n  rules: [a]\n  timespan: 1h\n",
                "correlation.condition: missing",
            ),
            (
                "  type: event_count\n  rules: [a]\n  timespan: 90x\n  condition: {gte: 1}\n",
                "correlation.timespan: '90x'",
            ),
            (
                "  type: event_count\n  rules: [a]\n  timespan: 0s\n  condition: {gte: 1}\n",
                "limit exceeded: correlation.timespan: '0s'",
            ),
            (
                "  type: event_count\n  rules: [a]\n  timespan: 400d\n  condition: {gte: 1}\n",
                "outside the accepted",
            ),
            (
                "  type: event_count\n  rules: [a]\n  timespan: 1h\n  condition: {gte: x}\n",
                "correlation.condition.gte: expected a whole number",
            ),
            (
                "  type: event_count\n  rules: [a]\n  timespan: 1h\n  condition: {gt: 5, lt: 3}\n",
                "correlation.condition: can never be true",
            ),
            (
                "  type: event_count\n  rules: [a]\n  timespan: 1h\n  condition: {lt: 1}\n",
                "can never be true",
            ),
            (
                "  type: event_count\n  rules: [a]\n  timespan: 1h\n  condition: {about: 1}\n",
                "correlation.condition.about: unknown comparison",
            ),
            (
                "  type: value_count\n  rules: [a]\n  timespan: 1h\n  condition: {gte: 3}\n",
                "correlation.condition.field: missing",
            ),
            (
                "  type: event_count\n  rules: [a, a]\n  timespan: 1h\n  condition: {gte: 3}\n",
                "correlation.rules[1]: 'a' is listed twice",
            ),
            (
                "  type: event_count\n  rules: []\n  timespan: 1h\n  condition: {gte: 3}\n",
                "correlation.rules: empty list",
            ),
            (
                "  type: temporal\n  rules: [a, b]\n  timespan: 1h\n  condition: a or b\n",
                "the only supported expression",
            ),
            (
                "  type: temporal\n  rules: [a, b]\n  timespan: 1h\n  condition: a and not c\n",
                "'c' is not one of the correlation's rules",
            ),
            (
                "  type: event_count\n  rules: [a]\n  timespan: 1h\n  condition: a and not b\n",
                "only accepted on a temporal correlation",
            ),
            (
                "  type: temporal\n  rules: [a, b]\n  timespan: 1h\n  condition: {gte: 3}\n",
                "can never be true: the correlation has 2 rule(s)",
            ),
            (
                "  type: temporal_ordered\n  rules: [a, b, c]\n  timespan: 1h\n  condition: {gte: 2}\n",
                "unsupported: correlation.condition: temporal_ordered needs all 3",
            ),
            (
                "  type: temporal\n  rules: [a, b]\n  group-by: [ip]\n  timespan: 1h\n  aliases:\n    ip:\n      a: src_ip\n",
                "correlation.aliases.ip: no field for rule 'b'",
            ),
            (
                "  type: temporal\n  rules: [a, b]\n  group-by: [ip]\n  timespan: 1h\n  aliases:\n    ip:\n      a: src_ip\n      z: dst_ip\n",
                "correlation.aliases.ip.z: 'z' is not one of the correlation's rules",
            ),
            (
                "  type: event_count\n  rules: [a]\n  timespan: 1h\n  condition: {gte: 3}\n  window: 5\n",
                "correlation.window: unknown attribute",
            ),
            (
                "  type: event_count\n  rules: [a]\n  timespan: 1h\n  condition: {gte: 99999999}\n",
                "limit exceeded: correlation.condition.gte",
            ),
            (
                "  type: event_count\n  rules: [a]\n  group-by: [a, b, c, d, e, f, g, h, i]\n  timespan: 1h\n  condition: {gte: 3}\n",
                "limit exceeded: correlation.group-by: 9 fields",
            ),
        ] {
            let reason = reason(section);
            assert!(
                reason.contains(expected),
                "{section}\n  gave: {reason}\n  expected: {expected}"
            );
        }
    }

    #[test]
    fn timespans() {
        let limits = CorrelationLimits::default();
        for (text, seconds) in [
            ("30s", 30),
            ("5m", 300),
            ("1h", 3600),
            ("1d", 86_400),
            ("2w", 1_209_600),
        ] {
            let nanos = parse_timespan(&Yaml::String(text.to_owned()), &limits).expect(text);
            assert_eq!(nanos, seconds * NANOS_PER_SECOND, "{text}");
        }
        for text in [
            "",
            "s",
            "5",
            "-5m",
            "5 m",
            "5M",
            "1.5h",
            "5mé",
            "é",
            "99999999999999d",
        ] {
            assert!(
                parse_timespan(&Yaml::String(text.to_owned()), &limits).is_err(),
                "{text}"
            );
        }
    }
}
