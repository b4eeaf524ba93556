//! Rules → one shared program of field slots, literal needles and predicates.
//!
//! Both evaluators run this program: [`crate::NaiveMatcher`] evaluates every rule directly;
//! [`crate::Matcher`] decides literal tests from its scanner hits and evaluates only the
//! rules whose needles hit (see `matcher.md`).

use std::collections::HashMap;

use regex::{Regex, RegexBuilder};
use regex_syntax::hir::{Class, Hir, HirKind};

use crate::condition::{Condition, OfTarget, Quantifier, pattern_matches};
use crate::error::{Error, Rejection};
use crate::field::{FieldMapping, FieldRef, LogsourceMapping, SlotValue, resolve_field};
use crate::rule::{Detection, FieldTest, Level, Modifier, Rule, RuleKind, Value};
use crate::scan::LiteralEngine;
use crate::value::{
    self, Cidr, GlobToken, Token, compile_glob, has_wildcards, literal_tokens, parse_wildcards,
    tokens_to_string,
};

pub(crate) type SlotId = u32;
pub(crate) type NeedleId = u32;
pub(crate) type PredId = u32;

/// Complexity limits applied when compiling rules. Rules beyond them are rejected with
/// [`Error::LimitExceeded`]; untrusted rule files cannot make the matcher use unbounded memory
/// or time.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most search identifiers (selections, filters, keyword lists) in one rule.
    pub max_searches: usize,
    /// Most values in one rule, counted after expansion by `windash`, `base64offset`…
    pub max_values: usize,
    /// Deepest condition expression (`a and (b or not c)` is 4 deep).
    pub max_condition_depth: usize,
    /// Longest regular expression, in bytes.
    pub max_regex_len: usize,
    /// `regex::RegexBuilder::size_limit` for each regex (compiled program size, bytes).
    pub regex_size_limit: usize,
    /// `regex::RegexBuilder::dfa_size_limit` for each regex (lazy DFA cache, bytes per thread).
    pub regex_dfa_size_limit: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_searches: 64,
            max_values: 4096,
            max_condition_depth: 32,
            max_regex_len: 4096,
            regex_size_limit: 1 << 20,
            regex_dfa_size_limit: 256 << 10,
        }
    }
}

/// How rules are compiled.
#[derive(Debug, Clone, Default)]
pub struct CompileOptions {
    pub field_mapping: FieldMapping,
    pub logsource_mapping: LogsourceMapping,
    pub limits: Limits,
    /// How [`crate::Matcher`] finds literals of 4 bytes or more; results do not depend on it.
    pub literal_engine: LiteralEngine,
}

/// What a caller needs to know about a compiled rule.
#[derive(Debug, Clone)]
pub struct CompiledRuleInfo {
    pub id: Option<String>,
    pub title: String,
    pub level: Option<Level>,
    pub tags: Vec<String>,
    /// The rule's `author`: the Detection Rule License (SigmaHQ rules) requires showing it
    /// wherever matches of the rule are shown.
    pub author: Option<String>,
    /// Where the rule came from ([`Rule::source`]).
    pub source: String,
    /// The rule's position in the slice given to `compile`.
    pub rule_position: usize,
    /// True when the rule runs only after one of its literal needles hit; false when it is
    /// evaluated for every event (no literal is required for it to match).
    pub prefiltered: bool,
}

/// A literal that the prefilter looks for in one field slot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct NeedleKey {
    pub slot: SlotId,
    pub cased: bool,
    /// ASCII-lowercased when not `cased`.
    pub text: Box<str>,
}

#[derive(Debug, Clone)]
pub(crate) enum StrPattern {
    Exact(Box<str>),
    Contains(Box<str>),
    StartsWith(Box<str>),
    EndsWith(Box<str>),
    Glob(Vec<GlobToken>),
}

#[derive(Debug, Clone)]
pub(crate) enum Test {
    Str {
        pattern: StrPattern,
        cased: bool,
        /// A literal that must occur in the field for the test to pass. For the four literal
        /// patterns it decides the test exactly (see [`hit`]).
        needle: Option<NeedleId>,
    },
    Regex {
        regex: Regex,
        /// One of these must occur for the regex to match.
        needles: Option<Vec<NeedleId>>,
    },
    /// `|fieldref`: the field's text against another field's text of the same event (both
    /// present); `position` says how (exact, contains, startswith, endswith).
    FieldRef {
        other: SlotId,
        position: Position,
        cased: bool,
    },
    Cidr(Cidr),
    Number(NumberOp, f64),
    Exists(bool),
    /// Field absent or empty.
    Null,
}

/// Where one text must occur in another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Position {
    Exact,
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumberOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

/// One `Field|modifiers: values` test on one slot.
#[derive(Debug, Clone)]
pub(crate) struct Predicate {
    pub slot: SlotId,
    /// One group per rule value, holding that value's expansions (OR-ed).
    pub groups: Vec<Vec<Test>>,
    /// `|all`: every group must pass (else any).
    pub all: bool,
    /// `|neq`: the field is present and no group passes.
    pub neq: bool,
}

#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Pred(PredId),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
}

#[derive(Debug)]
pub(crate) struct ProgramRule {
    pub info: CompiledRuleInfo,
    pub expr: Expr,
}

/// All rules compiled together.
#[derive(Debug, Default)]
pub(crate) struct Program {
    pub slots: Vec<FieldRef>,
    pub needles: Vec<NeedleKey>,
    pub predicates: Vec<Predicate>,
    pub rules: Vec<ProgramRule>,
}

/// Needle hit flags kept by the fast matcher.
pub(crate) mod hit {
    /// The needle occurs somewhere in the field.
    pub const ANY: u8 = 1;
    /// An occurrence starts at offset 0.
    pub const START: u8 = 2;
    /// An occurrence ends at the end of the field.
    pub const END: u8 = 4;
    /// An occurrence spans the whole field.
    pub const WHOLE: u8 = 8;
}

/// How evaluation reads an event.
pub(crate) trait View {
    fn value(&self, slot: SlotId) -> Option<SlotValue<'_>>;
    /// The needle's hit flags, or `None` when this view has no automaton results (the test is
    /// then evaluated on the text).
    fn needle_flags(&self, needle: NeedleId) -> Option<u8>;
}

impl Program {
    pub(crate) fn eval(&self, expr: &Expr, view: &impl View) -> bool {
        match expr {
            Expr::Pred(id) => self.eval_predicate(&self.predicates[*id as usize], view),
            Expr::And(children) => children.iter().all(|child| self.eval(child, view)),
            Expr::Or(children) => children.iter().any(|child| self.eval(child, view)),
            Expr::Not(inner) => !self.eval(inner, view),
        }
    }

    fn eval_predicate(&self, predicate: &Predicate, view: &impl View) -> bool {
        let value = view.value(predicate.slot);
        let group_passes = |group: &Vec<Test>| {
            group
                .iter()
                .any(|test| eval_test(test, value.as_ref(), view))
        };
        if predicate.neq {
            // A reference to an absent field compares as unknown (SQL `a <> NULL`): no match.
            let reference_absent = predicate.groups.iter().flatten().any(
                |test| matches!(test, Test::FieldRef { other, .. } if view.value(*other).is_none()),
            );
            return value.is_some()
                && !reference_absent
                && !predicate.groups.iter().any(group_passes);
        }
        if predicate.all {
            predicate.groups.iter().all(group_passes)
        } else {
            predicate.groups.iter().any(group_passes)
        }
    }
}

fn eval_test(test: &Test, value: Option<&SlotValue<'_>>, view: &impl View) -> bool {
    match test {
        Test::Exists(expected) => value.is_some() == *expected,
        Test::Null => value.is_none_or(|value| value.text.is_empty()),
        Test::Str {
            pattern,
            cased,
            needle,
        } => {
            let Some(value) = value else { return false };
            if let Some(flags) = needle.and_then(|needle| view.needle_flags(needle)) {
                let wanted = match pattern {
                    StrPattern::Exact(_) => hit::WHOLE,
                    StrPattern::Contains(_) => hit::ANY,
                    StrPattern::StartsWith(_) => hit::START,
                    StrPattern::EndsWith(_) => hit::END,
                    StrPattern::Glob(glob) => {
                        return flags & hit::ANY != 0
                            && value::glob_match(glob, value.text, *cased);
                    }
                };
                return flags & wanted != 0;
            }
            match pattern {
                StrPattern::Exact(literal) => value::eq_text(value.text, literal, *cased),
                StrPattern::Contains(literal) => value::contains_text(value.text, literal, *cased),
                StrPattern::StartsWith(literal) => {
                    value::starts_with_text(value.text, literal, *cased)
                }
                StrPattern::EndsWith(literal) => value::ends_with_text(value.text, literal, *cased),
                StrPattern::Glob(glob) => value::glob_match(glob, value.text, *cased),
            }
        }
        Test::Regex { regex, needles } => {
            let Some(value) = value else { return false };
            if let Some(needles) = needles
                && needles
                    .iter()
                    .all(|needle| view.needle_flags(*needle) == Some(0))
            {
                return false;
            }
            regex.is_match(value.text)
        }
        Test::FieldRef {
            other,
            position,
            cased,
        } => {
            let (Some(value), Some(reference)) = (value, view.value(*other)) else {
                return false;
            };
            let (text, reference) = (value.text, reference.text);
            match position {
                Position::Exact => value::eq_text(text, reference, *cased),
                Position::Contains => value::contains_text(text, reference, *cased),
                Position::StartsWith => value::starts_with_text(text, reference, *cased),
                Position::EndsWith => value::ends_with_text(text, reference, *cased),
            }
        }
        Test::Cidr(network) => value
            .and_then(|value| value.text.trim().parse().ok())
            .is_some_and(|address| network.contains(address)),
        Test::Number(op, bound) => {
            value
                .and_then(SlotValue::as_number)
                .is_some_and(|number| match op {
                    NumberOp::Gt => number > *bound,
                    NumberOp::Gte => number >= *bound,
                    NumberOp::Lt => number < *bound,
                    NumberOp::Lte => number <= *bound,
                })
        }
    }
}

/// Compiles every detection rule; correlation rules are skipped (they feed the correlation
/// engine, not the matcher).
pub(crate) fn compile_program(
    rules: &[Rule],
    options: &CompileOptions,
) -> (Program, Vec<Rejection>) {
    let mut builder = Builder {
        options,
        program: Program::default(),
        slot_index: HashMap::new(),
        needle_index: HashMap::new(),
    };
    let mut rejections = Vec::new();
    for (position, rule) in rules.iter().enumerate() {
        let RuleKind::Detection(detection) = &rule.kind else {
            continue;
        };
        let checkpoint = builder.checkpoint();
        match builder.compile_rule(rule, detection) {
            Ok(expr) => builder.program.rules.push(ProgramRule {
                info: CompiledRuleInfo {
                    id: rule.id.clone(),
                    title: rule.title.clone(),
                    level: rule.level,
                    tags: rule.tags.clone(),
                    author: rule.author.clone(),
                    source: rule.source.clone(),
                    rule_position: position,
                    prefiltered: false,
                },
                expr,
            }),
            Err(error) => {
                builder.rollback(checkpoint);
                rejections.push(Rejection::new(
                    rule.source.clone(),
                    Some(rule.title.clone()),
                    error,
                ));
            }
        }
    }
    (builder.program, rejections)
}

struct Builder<'o> {
    options: &'o CompileOptions,
    program: Program,
    slot_index: HashMap<FieldRef, SlotId>,
    needle_index: HashMap<NeedleKey, NeedleId>,
}

#[derive(Clone, Copy)]
struct Checkpoint {
    slots: usize,
    needles: usize,
    predicates: usize,
}

/// A literal a regex needs, from [`regex_literals`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct RegexLiteral {
    text: String,
    case_insensitive: bool,
}

impl Builder<'_> {
    fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            slots: self.program.slots.len(),
            needles: self.program.needles.len(),
            predicates: self.program.predicates.len(),
        }
    }

    fn rollback(&mut self, checkpoint: Checkpoint) {
        self.program.slots.truncate(checkpoint.slots);
        self.program.needles.truncate(checkpoint.needles);
        self.program.predicates.truncate(checkpoint.predicates);
        self.slot_index
            .retain(|_, slot| (*slot as usize) < checkpoint.slots);
        self.needle_index
            .retain(|_, needle| (*needle as usize) < checkpoint.needles);
    }

    fn slot(&mut self, field: FieldRef) -> SlotId {
        if let Some(slot) = self.slot_index.get(&field) {
            return *slot;
        }
        let slot = self.program.slots.len() as SlotId;
        self.program.slots.push(field.clone());
        self.slot_index.insert(field, slot);
        slot
    }

    fn needle(&mut self, slot: SlotId, cased: bool, text: &str) -> Option<NeedleId> {
        if text.is_empty() {
            return None;
        }
        let key = NeedleKey {
            slot,
            cased,
            text: if cased {
                text.into()
            } else {
                text.to_ascii_lowercase().into()
            },
        };
        if let Some(needle) = self.needle_index.get(&key) {
            return Some(*needle);
        }
        let needle = self.program.needles.len() as NeedleId;
        self.program.needles.push(key.clone());
        self.needle_index.insert(key, needle);
        Some(needle)
    }

    fn compile_rule(&mut self, rule: &Rule, detection: &Detection) -> Result<Expr, Error> {
        let limits = &self.options.limits;
        if detection.searches.len() > limits.max_searches {
            return Err(Error::LimitExceeded(format!(
                "detection: {} search identifiers, more than the {} allowed",
                detection.searches.len(),
                limits.max_searches
            )));
        }
        let depth = detection.condition.depth();
        if depth > limits.max_condition_depth {
            return Err(Error::LimitExceeded(format!(
                "detection.condition: nested {depth} deep, more than the {} allowed",
                limits.max_condition_depth
            )));
        }
        let mut budget = limits.max_values;
        let mut searches = Vec::with_capacity(detection.searches.len());
        for search in &detection.searches {
            let mut alternatives = Vec::with_capacity(search.alternatives.len());
            for alternative in &search.alternatives {
                let mut tests = Vec::with_capacity(alternative.len());
                for test in alternative {
                    tests.push(Expr::Pred(self.compile_test(test, &mut budget)?));
                }
                alternatives.push(simplify_and(tests));
            }
            searches.push((search.name.as_str(), simplify_or(alternatives)));
        }
        let condition = condition_expr(&detection.condition, &searches)?;
        let mut parts = Vec::new();
        for (field, values) in self
            .options
            .logsource_mapping
            .conditions_for(&rule.logsource)
        {
            let test = FieldTest {
                path: format!("logsource mapping: {field}"),
                field: Some(field),
                modifiers: Vec::new(),
                values: values.into_iter().map(Value::String).collect(),
            };
            let mut unlimited = usize::MAX;
            parts.push(Expr::Pred(self.compile_test(&test, &mut unlimited)?));
        }
        parts.push(condition);
        Ok(simplify_and(parts))
    }

    fn compile_test(&mut self, test: &FieldTest, budget: &mut usize) -> Result<PredId, Error> {
        let path = &test.path;
        let slot = match &test.field {
            Some(name) => self.slot(resolve_field(name, &self.options.field_mapping)),
            None => self.slot(FieldRef::Message),
        };
        let has = |modifier: Modifier| test.modifiers.contains(&modifier);
        let mut groups = Vec::with_capacity(test.values.len());
        let spend = |count: usize, budget: &mut usize| -> Result<(), Error> {
            *budget = budget.checked_sub(count).ok_or_else(|| {
                Error::LimitExceeded(format!(
                    "{path}: more than {} values in this rule (after expansion)",
                    self.options.limits.max_values
                ))
            })?;
            Ok(())
        };
        if has(Modifier::Exists) {
            let expected = matches!(test.values.as_slice(), [Value::Bool(true)]);
            groups.push(vec![Test::Exists(expected)]);
        } else if test.values.contains(&Value::Null) {
            groups.push(vec![Test::Null]);
        } else if let Some(op) = test.modifiers.iter().find_map(|m| number_op(*m)) {
            for value in &test.values {
                spend(1, budget)?;
                let number = match value {
                    Value::Int(number) => *number as f64,
                    Value::Float(number) => *number,
                    Value::String(text) => text.trim().parse::<f64>().map_err(|_| {
                        Error::InvalidRule(format!("{path}: {value} is not a number"))
                    })?,
                    _ => {
                        return Err(Error::InvalidRule(format!(
                            "{path}: {value} is not a number"
                        )));
                    }
                };
                groups.push(vec![Test::Number(op, number)]);
            }
        } else if has(Modifier::FieldRef) {
            let position = if has(Modifier::Contains) {
                Position::Contains
            } else if has(Modifier::StartsWith) {
                Position::StartsWith
            } else if has(Modifier::EndsWith) {
                Position::EndsWith
            } else {
                Position::Exact
            };
            for value in &test.values {
                spend(1, budget)?;
                let Value::String(name) = value else {
                    return Err(Error::InvalidRule(format!(
                        "{path}: 'fieldref' needs field names, not {value}"
                    )));
                };
                let other = self.slot(resolve_field(name, &self.options.field_mapping));
                groups.push(vec![Test::FieldRef {
                    other,
                    position,
                    cased: has(Modifier::Cased),
                }]);
            }
        } else if has(Modifier::Cidr) {
            for value in &test.values {
                spend(1, budget)?;
                let network = value_text(value)
                    .as_deref()
                    .and_then(Cidr::parse)
                    .ok_or_else(|| {
                        Error::InvalidRule(format!("{path}: {value} is not a CIDR network"))
                    })?;
                groups.push(vec![Test::Cidr(network)]);
            }
        } else if has(Modifier::Re) {
            for value in &test.values {
                spend(1, budget)?;
                let pattern = value_text(value).ok_or_else(|| {
                    Error::InvalidRule(format!("{path}: {value} is not a regular expression"))
                })?;
                groups.push(vec![self.compile_regex(test, slot, &pattern)?]);
            }
        } else {
            let cased = has(Modifier::Cased);
            for value in &test.values {
                let expansions = self.expand_string(test, value)?;
                spend(expansions.len(), budget)?;
                let mut group = Vec::with_capacity(expansions.len());
                for tokens in expansions {
                    group.push(self.string_test(slot, cased, &tokens));
                }
                groups.push(group);
            }
        }
        let id = self.program.predicates.len() as PredId;
        self.program.predicates.push(Predicate {
            slot,
            groups,
            all: has(Modifier::All),
            neq: has(Modifier::Neq),
        });
        Ok(id)
    }

    /// A value through the encoding modifiers (in the order written) and then the position
    /// modifiers; keywords without a position modifier match anywhere in the message.
    fn expand_string(&self, test: &FieldTest, value: &Value) -> Result<Vec<Vec<Token>>, Error> {
        enum Stage {
            Text(Vec<Token>),
            Bytes(Vec<u8>),
        }
        let path = &test.path;
        let max = self.options.limits.max_values;
        let initial = match value {
            Value::String(text) => parse_wildcards(text),
            Value::Int(number) => literal_tokens(&number.to_string()),
            Value::Float(number) => literal_tokens(&number.to_string()),
            Value::Bool(flag) => literal_tokens(&flag.to_string()),
            Value::Null => {
                return Err(Error::InvalidRule(format!("{path}: null is not a string")));
            }
        };
        let mut stages = vec![Stage::Text(initial)];
        let plain = |tokens: &[Token], modifier: Modifier| -> Result<String, Error> {
            if has_wildcards(tokens) {
                return Err(Error::InvalidRule(format!(
                    "{path}: '{}' cannot encode a value with wildcards ({:?})",
                    modifier.name(),
                    tokens_to_string(tokens)
                )));
            }
            Ok(tokens_to_string(tokens))
        };
        for modifier in &test.modifiers {
            let mut next = Vec::with_capacity(stages.len());
            for stage in stages {
                match (modifier, stage) {
                    (Modifier::Windash, Stage::Text(tokens)) => {
                        let variants = value::windash(&tokens, max).ok_or_else(|| {
                            Error::LimitExceeded(format!(
                                "{path}: 'windash' expands {:?} to more than {max} values",
                                tokens_to_string(&tokens)
                            ))
                        })?;
                        next.extend(variants.into_iter().map(Stage::Text));
                    }
                    (Modifier::Base64 | Modifier::Base64Offset, stage) => {
                        let bytes = match stage {
                            Stage::Text(tokens) => plain(&tokens, *modifier)?.into_bytes(),
                            Stage::Bytes(bytes) => bytes,
                        };
                        if *modifier == Modifier::Base64 {
                            next.push(Stage::Text(literal_tokens(&value::base64_encode(&bytes))));
                        } else {
                            for variant in value::base64_offsets(&bytes) {
                                next.push(Stage::Text(literal_tokens(&variant)));
                            }
                        }
                    }
                    (
                        Modifier::Utf16Le | Modifier::Utf16Be | Modifier::Utf16,
                        Stage::Text(tokens),
                    ) => {
                        let text = plain(&tokens, *modifier)?;
                        next.push(Stage::Bytes(value::utf16(
                            &text,
                            *modifier == Modifier::Utf16Be,
                            *modifier == Modifier::Utf16,
                        )));
                    }
                    (
                        Modifier::Windash | Modifier::Utf16Le | Modifier::Utf16Be | Modifier::Utf16,
                        Stage::Bytes(_),
                    ) => {
                        return Err(Error::InvalidRule(format!(
                            "{path}: '{}' cannot follow a utf16 modifier",
                            modifier.name()
                        )));
                    }
                    (_, stage) => next.push(stage),
                }
            }
            if next.len() > max {
                return Err(Error::LimitExceeded(format!(
                    "{path}: modifiers expand one value to more than {max} values"
                )));
            }
            stages = next;
        }
        let has = |modifier: Modifier| test.modifiers.contains(&modifier);
        let (lead, trail) = if has(Modifier::Contains)
            || (test.field.is_none() && !has(Modifier::StartsWith) && !has(Modifier::EndsWith))
        {
            (true, true)
        } else {
            (has(Modifier::EndsWith), has(Modifier::StartsWith))
        };
        let mut out = Vec::with_capacity(stages.len());
        for stage in stages {
            let Stage::Text(mut tokens) = stage else {
                return Err(Error::Unsupported(format!(
                    "{path}: utf16 modifiers are only supported before 'base64' or \
                     'base64offset' (events are text)"
                )));
            };
            if lead && tokens.first() != Some(&Token::Star) {
                tokens.insert(0, Token::Star);
            }
            if trail && tokens.last() != Some(&Token::Star) {
                tokens.push(Token::Star);
            }
            out.push(tokens);
        }
        Ok(out)
    }

    fn string_test(&mut self, slot: SlotId, cased: bool, tokens: &[Token]) -> Test {
        let lead = tokens.iter().take_while(|t| **t == Token::Star).count();
        let trail = tokens[lead..]
            .iter()
            .rev()
            .take_while(|t| **t == Token::Star)
            .count();
        let inner = &tokens[lead..tokens.len() - trail];
        let only_stars = inner.is_empty() && lead + trail > 0;
        if !has_wildcards(inner) && !only_stars {
            let literal = tokens_to_string(inner);
            let literal = if cased {
                literal
            } else {
                literal.to_ascii_lowercase()
            };
            let needle = self.needle(slot, cased, &literal);
            let literal: Box<str> = literal.into();
            let pattern = match (lead > 0, trail > 0) {
                (false, false) => StrPattern::Exact(literal),
                (true, true) => StrPattern::Contains(literal),
                (false, true) => StrPattern::StartsWith(literal),
                (true, false) => StrPattern::EndsWith(literal),
            };
            return Test::Str {
                pattern,
                cased,
                needle,
            };
        }
        // The longest literal run is a necessary substring of any match.
        let mut best = String::new();
        let mut current = String::new();
        for token in tokens {
            match token {
                Token::Literal(c) => current.push(*c),
                _ => {
                    if current.len() > best.len() {
                        best = std::mem::take(&mut current);
                    }
                    current.clear();
                }
            }
        }
        if current.len() > best.len() {
            best = current;
        }
        let needle = self.needle(slot, cased, &best);
        Test::Str {
            pattern: StrPattern::Glob(compile_glob(tokens, cased)),
            cased,
            needle,
        }
    }

    fn compile_regex(
        &mut self,
        test: &FieldTest,
        slot: SlotId,
        pattern: &str,
    ) -> Result<Test, Error> {
        let path = &test.path;
        let limits = &self.options.limits;
        if pattern.len() > limits.max_regex_len {
            return Err(Error::LimitExceeded(format!(
                "{path}: regular expression of {} bytes, longer than the {} allowed",
                pattern.len(),
                limits.max_regex_len
            )));
        }
        let has = |modifier: Modifier| test.modifiers.contains(&modifier);
        let (insensitive, multi_line, dot_all) = (
            has(Modifier::ReInsensitive),
            has(Modifier::ReMultiLine),
            has(Modifier::ReDotAll),
        );
        let regex = RegexBuilder::new(pattern)
            .case_insensitive(insensitive)
            .multi_line(multi_line)
            .dot_matches_new_line(dot_all)
            .nest_limit(REGEX_NEST_LIMIT)
            .size_limit(limits.regex_size_limit)
            .dfa_size_limit(limits.regex_dfa_size_limit)
            .build()
            .map_err(|error| match error {
                regex::Error::CompiledTooBig(limit) => Error::LimitExceeded(format!(
                    "{path}: regular expression compiles to more than {limit} bytes"
                )),
                other => Error::InvalidRule(format!(
                    "{path}: invalid regular expression: {}",
                    other.to_string().lines().last().unwrap_or("").trim()
                )),
            })?;
        let hir = regex_syntax::ParserBuilder::new()
            .case_insensitive(insensitive)
            .multi_line(multi_line)
            .dot_matches_new_line(dot_all)
            .nest_limit(REGEX_NEST_LIMIT)
            .build()
            .parse(pattern)
            .ok();
        let needles = hir.as_ref().and_then(regex_literals).map(|literals| {
            literals
                .iter()
                .filter_map(|literal| self.needle(slot, !literal.case_insensitive, &literal.text))
                .collect::<Vec<_>>()
        });
        Ok(Test::Regex {
            regex,
            needles: needles.filter(|needles| !needles.is_empty()),
        })
    }
}

const REGEX_NEST_LIMIT: u32 = 64;

fn number_op(modifier: Modifier) -> Option<NumberOp> {
    Some(match modifier {
        Modifier::Gt => NumberOp::Gt,
        Modifier::Gte => NumberOp::Gte,
        Modifier::Lt => NumberOp::Lt,
        Modifier::Lte => NumberOp::Lte,
        _ => return None,
    })
}

fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Int(number) => Some(number.to_string()),
        Value::Float(number) => Some(number.to_string()),
        Value::Bool(_) | Value::Null => None,
    }
}

fn simplify_and(mut parts: Vec<Expr>) -> Expr {
    if parts.len() == 1 {
        parts.remove(0)
    } else {
        Expr::And(parts)
    }
}

fn simplify_or(mut parts: Vec<Expr>) -> Expr {
    if parts.len() == 1 {
        parts.remove(0)
    } else {
        Expr::Or(parts)
    }
}

fn condition_expr(condition: &Condition, searches: &[(&str, Expr)]) -> Result<Expr, Error> {
    Ok(match condition {
        Condition::Search(name) => searches
            .iter()
            .find(|(search, _)| search == name)
            .map(|(_, expr)| expr.clone())
            .ok_or_else(|| {
                Error::InvalidRule(format!(
                    "detection.condition: '{name}' is not a search identifier of this rule"
                ))
            })?,
        Condition::Of { quantifier, target } => {
            let matched: Vec<Expr> = searches
                .iter()
                .filter(|(name, _)| match target {
                    OfTarget::Them => !name.starts_with('_'),
                    OfTarget::Pattern(pattern) => pattern_matches(pattern, name),
                })
                .map(|(_, expr)| expr.clone())
                .collect();
            if matched.is_empty() {
                return Err(Error::InvalidRule(format!(
                    "detection.condition: '{condition}' matches no search identifier"
                )));
            }
            match quantifier {
                Quantifier::Any => simplify_or(matched),
                Quantifier::All => simplify_and(matched),
            }
        }
        Condition::Not(inner) => Expr::Not(Box::new(condition_expr(inner, searches)?)),
        Condition::And(children) => Expr::And(
            children
                .iter()
                .map(|child| condition_expr(child, searches))
                .collect::<Result<_, _>>()?,
        ),
        Condition::Or(children) => Expr::Or(
            children
                .iter()
                .map(|child| condition_expr(child, searches))
                .collect::<Result<_, _>>()?,
        ),
    })
}

/// Literals of which at least one occurs in every match of the regex (`None`: no such set
/// found). Case-insensitive literals come from `(?i)` letters, which the regex parser turns
/// into two-letter ASCII classes.
fn regex_literals(hir: &Hir) -> Option<Vec<RegexLiteral>> {
    match hir.kind() {
        HirKind::Literal(literal) => {
            let text = std::str::from_utf8(&literal.0).ok()?;
            Some(vec![RegexLiteral {
                text: text.to_owned(),
                case_insensitive: false,
            }])
        }
        HirKind::Class(class) => ascii_case_pair(class).map(|letter| {
            vec![RegexLiteral {
                text: letter.to_string(),
                case_insensitive: true,
            }]
        }),
        HirKind::Capture(capture) => regex_literals(&capture.sub),
        HirKind::Repetition(repetition) if repetition.min >= 1 => regex_literals(&repetition.sub),
        HirKind::Concat(children) => {
            let mut candidates: Vec<Vec<RegexLiteral>> = Vec::new();
            let mut run = String::new();
            let mut run_insensitive = false;
            let close_run = |run: &mut String,
                             insensitive: &mut bool,
                             candidates: &mut Vec<Vec<RegexLiteral>>| {
                if !run.is_empty() {
                    let text = if *insensitive {
                        run.to_ascii_lowercase()
                    } else {
                        run.clone()
                    };
                    candidates.push(vec![RegexLiteral {
                        text,
                        case_insensitive: *insensitive,
                    }]);
                }
                run.clear();
                *insensitive = false;
            };
            for child in children {
                match child.kind() {
                    HirKind::Literal(literal) if std::str::from_utf8(&literal.0).is_ok() => {
                        run.push_str(std::str::from_utf8(&literal.0).unwrap_or(""));
                    }
                    HirKind::Class(class) if ascii_case_pair(class).is_some() => {
                        run.push(ascii_case_pair(class).unwrap_or(' '));
                        run_insensitive = true;
                    }
                    _ => {
                        close_run(&mut run, &mut run_insensitive, &mut candidates);
                        if let Some(literals) = regex_literals(child) {
                            candidates.push(literals);
                        }
                    }
                }
            }
            close_run(&mut run, &mut run_insensitive, &mut candidates);
            candidates
                .into_iter()
                .max_by_key(|set| literal_set_score(set))
        }
        HirKind::Alternation(children) => {
            let mut union = Vec::new();
            for child in children {
                union.extend(regex_literals(child)?);
            }
            Some(union)
        }
        _ => None,
    }
}

/// Longer shortest literal first, then fewer literals.
fn literal_set_score(set: &[RegexLiteral]) -> (usize, std::cmp::Reverse<usize>) {
    let shortest = set
        .iter()
        .map(|literal| literal.text.len())
        .min()
        .unwrap_or(0);
    (shortest, std::cmp::Reverse(set.len()))
}

/// `[Aa]` → `a`.
fn ascii_case_pair(class: &Class) -> Option<char> {
    let Class::Unicode(class) = class else {
        return None;
    };
    let ranges = class.ranges();
    if ranges.len() != 2 || ranges.iter().any(|range| range.start() != range.end()) {
        return None;
    }
    let (upper, lower) = (ranges[0].start(), ranges[1].start());
    (upper.is_ascii_uppercase() && upper.to_ascii_lowercase() == lower).then_some(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn literals(pattern: &str, insensitive: bool) -> Option<Vec<(String, bool)>> {
        let hir = regex_syntax::ParserBuilder::new()
            .case_insensitive(insensitive)
            .build()
            .parse(pattern)
            .unwrap();
        regex_literals(&hir).map(|set| {
            set.into_iter()
                .map(|l| (l.text, l.case_insensitive))
                .collect()
        })
    }

    #[test]
    fn regex_literal_extraction() {
        assert_eq!(
            literals(r"foo\d+barbaz", false),
            Some(vec![("barbaz".into(), false)])
        );
        assert_eq!(
            literals(r"(?:\s-[^-\s]{0,20}i|\s--inode\s)", false).map(|s| s.len()),
            Some(2)
        );
        assert_eq!(
            literals(r"Hello\s+Worldz", true),
            Some(vec![("worldz".into(), true)])
        );
        assert_eq!(literals(r"(.){200,}", false), None);
        assert_eq!(literals(r"a|.*", false), None);
        assert_eq!(literals(r"x-1", true), Some(vec![("x-1".into(), true)]));
        // U+212A KELVIN SIGN folds to k: that class is not a plain ASCII pair.
        assert_eq!(literals(r"kkk\d", true), None);
    }
}
