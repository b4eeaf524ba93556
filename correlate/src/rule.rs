//! The Sigma rule model and its loading from YAML.
//!
//! Loading checks structure: required attributes, known modifiers and their combinations, value
//! types, the condition syntax and that every identifier it names exists. Value transformations,
//! regex compilation and complexity limits happen when a [`crate::Matcher`] is compiled.

use std::fmt;
use std::path::{Path, PathBuf};

use yaml_rust2::Yaml;

use crate::condition::{Condition, OfTarget, parse_condition, pattern_matches};
use crate::error::{Error, Rejection};
use crate::yaml;

/// Sigma rule level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Level {
    pub fn parse(text: &str) -> Option<Level> {
        Some(match text {
            "informational" => Level::Informational,
            "low" => Level::Low,
            "medium" => Level::Medium,
            "high" => Level::High,
            "critical" => Level::Critical,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }
}

/// The `logsource` of a rule (values lowercased).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogSource {
    pub category: Option<String>,
    pub product: Option<String>,
    pub service: Option<String>,
}

/// One loaded Sigma document.
#[derive(Debug, Clone)]
pub struct Rule {
    /// File path, with ` (document N)` when the file holds several documents.
    pub source: String,
    pub title: String,
    pub id: Option<String>,
    pub name: Option<String>,
    pub status: Option<String>,
    pub level: Option<Level>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub logsource: LogSource,
    pub falsepositives: Vec<String>,
    pub author: Option<String>,
    pub references: Vec<String>,
    /// `generate: true`: a detection rule referenced by a correlation still emits its own alerts.
    pub generate: bool,
    pub kind: RuleKind,
}

/// What a document is.
#[derive(Debug, Clone)]
pub enum RuleKind {
    Detection(Detection),
    /// A Sigma correlation rule, kept aside unparsed (the correlation engine comes later).
    Correlation {
        raw_yaml: String,
    },
}

/// A rule's `detection` section.
#[derive(Debug, Clone)]
pub struct Detection {
    /// Search identifiers in file order.
    pub searches: Vec<Search>,
    /// The condition (several list entries are OR-ed).
    pub condition: Condition,
}

/// A search identifier: an OR of alternatives, each an AND of field tests.
#[derive(Debug, Clone)]
pub struct Search {
    pub name: String,
    pub alternatives: Vec<Vec<FieldTest>>,
}

/// `Field|mod1|mod2: values` (or a keyword list when `field` is `None`).
#[derive(Debug, Clone)]
pub struct FieldTest {
    /// `None` for keywords (matched against the message).
    pub field: Option<String>,
    pub modifiers: Vec<Modifier>,
    pub values: Vec<Value>,
    /// Where in the rule this test is (`detection.selection.CommandLine|contains`), for messages.
    pub path: String,
}

/// A detection value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    String(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::String(text) => write!(f, "{text:?}"),
            Value::Int(number) => write!(f, "{number}"),
            Value::Float(number) => write!(f, "{number}"),
            Value::Bool(flag) => write!(f, "{flag}"),
            Value::Null => f.write_str("null"),
        }
    }
}

/// A value modifier (`|contains`, `|re|i`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Modifier {
    Contains,
    StartsWith,
    EndsWith,
    All,
    Re,
    /// `re` sub-modifier `i`.
    ReInsensitive,
    /// `re` sub-modifier `m`.
    ReMultiLine,
    /// `re` sub-modifier `s`.
    ReDotAll,
    Cidr,
    Gt,
    Gte,
    Lt,
    Lte,
    Exists,
    Cased,
    Neq,
    Base64,
    Base64Offset,
    Utf16Le,
    Utf16Be,
    Utf16,
    Windash,
    /// The values name other fields of the same event to compare with.
    FieldRef,
}

impl Modifier {
    /// Parses a known modifier name; unsupported-but-valid ones are an [`Error::Unsupported`].
    fn parse(name: &str) -> Result<Modifier, Option<&'static str>> {
        Ok(match name {
            "contains" => Modifier::Contains,
            "startswith" => Modifier::StartsWith,
            "endswith" => Modifier::EndsWith,
            "all" => Modifier::All,
            "re" => Modifier::Re,
            "i" => Modifier::ReInsensitive,
            "m" => Modifier::ReMultiLine,
            "s" => Modifier::ReDotAll,
            "cidr" => Modifier::Cidr,
            "gt" => Modifier::Gt,
            "gte" => Modifier::Gte,
            "lt" => Modifier::Lt,
            "lte" => Modifier::Lte,
            "exists" => Modifier::Exists,
            "cased" => Modifier::Cased,
            "neq" => Modifier::Neq,
            "base64" => Modifier::Base64,
            "base64offset" => Modifier::Base64Offset,
            "utf16le" | "wide" => Modifier::Utf16Le,
            "utf16be" => Modifier::Utf16Be,
            "utf16" => Modifier::Utf16,
            "windash" => Modifier::Windash,
            "expand" => return Err(Some("placeholders need a processing pipeline")),
            "fieldref" => Modifier::FieldRef,
            "minute" | "hour" | "day" | "week" | "month" | "year" => {
                return Err(Some("time part modifiers"));
            }
            _ => return Err(None),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Modifier::Contains => "contains",
            Modifier::StartsWith => "startswith",
            Modifier::EndsWith => "endswith",
            Modifier::All => "all",
            Modifier::Re => "re",
            Modifier::ReInsensitive => "i",
            Modifier::ReMultiLine => "m",
            Modifier::ReDotAll => "s",
            Modifier::Cidr => "cidr",
            Modifier::Gt => "gt",
            Modifier::Gte => "gte",
            Modifier::Lt => "lt",
            Modifier::Lte => "lte",
            Modifier::Exists => "exists",
            Modifier::Cased => "cased",
            Modifier::Neq => "neq",
            Modifier::Base64 => "base64",
            Modifier::Base64Offset => "base64offset",
            Modifier::Utf16Le => "utf16le",
            Modifier::Utf16Be => "utf16be",
            Modifier::Utf16 => "utf16",
            Modifier::Windash => "windash",
            Modifier::FieldRef => "fieldref",
        }
    }

    pub(crate) fn is_numeric(self) -> bool {
        matches!(
            self,
            Modifier::Gt | Modifier::Gte | Modifier::Lt | Modifier::Lte
        )
    }

    fn is_position(self) -> bool {
        matches!(
            self,
            Modifier::Contains | Modifier::StartsWith | Modifier::EndsWith
        )
    }

    fn is_re_flag(self) -> bool {
        matches!(
            self,
            Modifier::ReInsensitive | Modifier::ReMultiLine | Modifier::ReDotAll
        )
    }

    fn is_encoding(self) -> bool {
        matches!(
            self,
            Modifier::Base64
                | Modifier::Base64Offset
                | Modifier::Utf16Le
                | Modifier::Utf16Be
                | Modifier::Utf16
                | Modifier::Windash
        )
    }
}

/// Rules loaded and documents rejected.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub loaded: Vec<Rule>,
    pub rejected: Vec<Rejection>,
}

impl LoadReport {
    /// Appends another report.
    pub fn extend(&mut self, other: LoadReport) {
        self.loaded.extend(other.loaded);
        self.rejected.extend(other.rejected);
    }
}

/// Loads rule files and folders (recursively, `.yml` and `.yaml`, in sorted order).
///
/// Never fails as a whole: unreadable files and invalid documents become [`Rejection`]s.
pub fn load_rules(paths: &[PathBuf]) -> LoadReport {
    let mut report = LoadReport::default();
    for path in paths {
        load_path(path, 0, &mut report);
    }
    report
}

/// Deepest folder recursion followed when loading rule folders.
const MAX_FOLDER_DEPTH: usize = 32;

fn load_path(path: &Path, depth: usize, report: &mut LoadReport) {
    let display = path.display().to_string();
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(source) => {
            let error = Error::Io {
                path: path.to_owned(),
                source,
            };
            report.rejected.push(Rejection::new(display, None, error));
            return;
        }
    };
    if metadata.is_dir() {
        if depth >= MAX_FOLDER_DEPTH {
            let error = Error::InvalidRule(format!(
                "folder nesting deeper than {MAX_FOLDER_DEPTH} levels"
            ));
            report.rejected.push(Rejection::new(display, None, error));
            return;
        }
        let entries = match std::fs::read_dir(path) {
            Ok(entries) => entries,
            Err(source) => {
                let error = Error::Io {
                    path: path.to_owned(),
                    source,
                };
                report.rejected.push(Rejection::new(display, None, error));
                return;
            }
        };
        let mut children: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        children.sort();
        for child in children {
            let is_dir = child.is_dir();
            let is_yaml = child
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("yml") || e.eq_ignore_ascii_case("yaml"));
            if is_dir || is_yaml {
                load_path(&child, depth + 1, report);
            }
        }
        return;
    }
    if metadata.len() > yaml::MAX_RULE_FILE_BYTES as u64 {
        let error = Error::Yaml(format!(
            "file is {} bytes, more than the {} bytes accepted",
            metadata.len(),
            yaml::MAX_RULE_FILE_BYTES
        ));
        report.rejected.push(Rejection::new(display, None, error));
        return;
    }
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => report.extend(parse_rules_str(&text, &display)),
            Err(_) => {
                let error = Error::Yaml("file is not valid utf-8".to_owned());
                report.rejected.push(Rejection::new(display, None, error));
            }
        },
        Err(source) => {
            let error = Error::Io {
                path: path.to_owned(),
                source,
            };
            report.rejected.push(Rejection::new(display, None, error));
        }
    }
}

/// Parses the Sigma documents of one YAML text; `source_name` names it in rules and rejections.
pub fn parse_rules_str(yaml_text: &str, source_name: &str) -> LoadReport {
    let mut report = LoadReport::default();
    let documents = match yaml::load_documents(yaml_text) {
        Ok(documents) => documents,
        Err(error) => {
            report
                .rejected
                .push(Rejection::new(source_name, None, error));
            return report;
        }
    };
    let several = documents.len() > 1;
    for (index, document) in documents.iter().enumerate() {
        if matches!(document, Yaml::Null) {
            continue;
        }
        let source = if several {
            format!("{source_name} (document {})", index + 1)
        } else {
            source_name.to_owned()
        };
        let title = document["title"].as_str().map(str::to_owned);
        match parse_document(document, &source) {
            Ok(rule) => report.loaded.push(rule),
            Err(error) => report.rejected.push(Rejection::new(source, title, error)),
        }
    }
    report
}

fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidRule(message.into())
}

fn key_name(key: &Yaml) -> Option<&str> {
    key.as_str()
}

fn optional_string(document: &Yaml, key: &str) -> Result<Option<String>, Error> {
    match &document[key] {
        Yaml::BadValue | Yaml::Null => Ok(None),
        Yaml::String(text) => Ok(Some(text.clone())),
        Yaml::Integer(number) => Ok(Some(number.to_string())),
        Yaml::Real(number) => Ok(Some(number.clone())),
        Yaml::Boolean(flag) => Ok(Some(flag.to_string())),
        _ => Err(invalid(format!("{key}: expected a string"))),
    }
}

/// A string or a list of strings (Sigma writers use both for `author`, `references`…).
fn string_list(document: &Yaml, key: &str) -> Result<Vec<String>, Error> {
    match &document[key] {
        Yaml::BadValue | Yaml::Null => Ok(Vec::new()),
        Yaml::String(text) => Ok(vec![text.clone()]),
        Yaml::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| match item {
                Yaml::String(text) => Ok(text.clone()),
                Yaml::Integer(number) => Ok(number.to_string()),
                Yaml::Real(number) => Ok(number.clone()),
                _ => Err(invalid(format!("{key}[{index}]: expected a string"))),
            })
            .collect(),
        _ => Err(invalid(format!("{key}: expected a list of strings"))),
    }
}

fn parse_document(document: &Yaml, source: &str) -> Result<Rule, Error> {
    let Yaml::Hash(_) = document else {
        return Err(invalid("document is not a mapping"));
    };
    if !matches!(document["action"], Yaml::BadValue) {
        return Err(Error::Unsupported(
            "rule collections ('action: global/reset/repeat', Sigma 1.0) are not supported"
                .to_owned(),
        ));
    }
    if !matches!(document["filter"], Yaml::BadValue) {
        return Err(Error::Unsupported(
            "Sigma filter documents are not supported yet".to_owned(),
        ));
    }
    let title = match &document["title"] {
        Yaml::String(title) if !title.trim().is_empty() => title.clone(),
        Yaml::BadValue | Yaml::Null => return Err(invalid("title: missing")),
        _ => return Err(invalid("title: expected a non-empty string")),
    };
    let level = match optional_string(document, "level")? {
        None => None,
        Some(text) => Some(
            Level::parse(&text).ok_or_else(|| invalid(format!("level: unknown level '{text}'")))?,
        ),
    };
    let generate = match &document["generate"] {
        Yaml::BadValue | Yaml::Null => false,
        Yaml::Boolean(flag) => *flag,
        _ => return Err(invalid("generate: expected true or false")),
    };
    let is_correlation = !matches!(document["correlation"], Yaml::BadValue);
    let logsource = if is_correlation {
        LogSource::default()
    } else {
        parse_logsource(&document["logsource"])?
    };
    let kind = if is_correlation {
        if !matches!(document["detection"], Yaml::BadValue) {
            return Err(invalid(
                "a document cannot have both 'correlation' and 'detection'",
            ));
        }
        RuleKind::Correlation {
            raw_yaml: yaml::emit(document),
        }
    } else {
        RuleKind::Detection(parse_detection(&document["detection"])?)
    };
    Ok(Rule {
        source: source.to_owned(),
        title,
        id: optional_string(document, "id")?,
        name: optional_string(document, "name")?,
        status: optional_string(document, "status")?,
        level,
        description: optional_string(document, "description")?,
        tags: string_list(document, "tags")?,
        logsource,
        falsepositives: string_list(document, "falsepositives")?,
        author: optional_string(document, "author")?,
        references: string_list(document, "references")?,
        generate,
        kind,
    })
}

fn parse_logsource(node: &Yaml) -> Result<LogSource, Error> {
    let Yaml::Hash(map) = node else {
        return Err(match node {
            Yaml::BadValue => invalid("logsource: missing"),
            _ => invalid("logsource: expected a mapping"),
        });
    };
    let mut logsource = LogSource::default();
    for (key, value) in map {
        let Some(key) = key_name(key) else {
            return Err(invalid("logsource: keys must be strings"));
        };
        let slot = match key {
            "category" => &mut logsource.category,
            "product" => &mut logsource.product,
            "service" => &mut logsource.service,
            _ => continue, // `definition` and custom attributes are descriptive only
        };
        match value {
            Yaml::String(text) => *slot = Some(text.to_ascii_lowercase()),
            Yaml::Null => {}
            _ => return Err(invalid(format!("logsource.{key}: expected a string"))),
        }
    }
    Ok(logsource)
}

fn parse_detection(node: &Yaml) -> Result<Detection, Error> {
    let Yaml::Hash(map) = node else {
        return Err(match node {
            Yaml::BadValue => invalid("detection: missing"),
            _ => invalid("detection: expected a mapping"),
        });
    };
    let mut searches = Vec::new();
    let mut condition_node = None;
    for (key, value) in map {
        let Some(key) = key_name(key) else {
            return Err(invalid("detection: keys must be strings"));
        };
        match key {
            "condition" => condition_node = Some(value),
            "timeframe" => {
                return Err(Error::Unsupported(
                    "detection.timeframe (Sigma 1.0 aggregation) is not supported; use a \
                     correlation rule"
                        .to_owned(),
                ));
            }
            _ => {
                if !key
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
                {
                    return Err(invalid(format!(
                        "detection.{key}: a search identifier may only hold letters, digits, \
                         '_', '-' and '.'"
                    )));
                }
                let path = format!("detection.{key}");
                searches.push(Search {
                    name: key.to_owned(),
                    alternatives: parse_search(value, &path)?,
                });
            }
        }
    }
    let condition = match condition_node {
        None => return Err(invalid("detection.condition: missing")),
        Some(Yaml::String(text)) => parse_condition(text)
            .map_err(|reason| condition_error(&reason, "detection.condition"))?,
        Some(Yaml::Array(items)) if !items.is_empty() => {
            let mut alternatives = Vec::new();
            for (index, item) in items.iter().enumerate() {
                let path = format!("detection.condition[{index}]");
                let Yaml::String(text) = item else {
                    return Err(invalid(format!("{path}: expected a string")));
                };
                alternatives
                    .push(parse_condition(text).map_err(|reason| condition_error(&reason, &path))?);
            }
            if alternatives.len() == 1 {
                alternatives.remove(0)
            } else {
                Condition::Or(alternatives)
            }
        }
        Some(_) => {
            return Err(invalid(
                "detection.condition: expected a string or a list of strings",
            ));
        }
    };
    check_references(&condition, &searches)?;
    Ok(Detection {
        searches,
        condition,
    })
}

fn condition_error(reason: &str, path: &str) -> Error {
    if reason.contains("not supported") {
        Error::Unsupported(format!("{path}: {reason}"))
    } else {
        invalid(format!("{path}: {reason}"))
    }
}

fn check_references(condition: &Condition, searches: &[Search]) -> Result<(), Error> {
    match condition {
        Condition::Search(name) => {
            if searches.iter().any(|search| &search.name == name) {
                Ok(())
            } else {
                Err(invalid(format!(
                    "detection.condition: '{name}' is not a search identifier of this rule"
                )))
            }
        }
        Condition::Of { target, .. } => match target {
            OfTarget::Them => {
                if searches.iter().any(|search| !search.name.starts_with('_')) {
                    Ok(())
                } else {
                    Err(invalid(
                        "detection.condition: 'them' matches no search identifier",
                    ))
                }
            }
            OfTarget::Pattern(pattern) => {
                if searches
                    .iter()
                    .any(|search| pattern_matches(pattern, &search.name))
                {
                    Ok(())
                } else {
                    Err(invalid(format!(
                        "detection.condition: '{pattern}' matches no search identifier"
                    )))
                }
            }
        },
        Condition::Not(inner) => check_references(inner, searches),
        Condition::And(children) | Condition::Or(children) => children
            .iter()
            .try_for_each(|child| check_references(child, searches)),
    }
}

/// A search identifier's value: a map (AND of fields), a list of maps (OR), a list of keywords,
/// or a single keyword.
fn parse_search(node: &Yaml, path: &str) -> Result<Vec<Vec<FieldTest>>, Error> {
    match node {
        Yaml::Hash(_) => Ok(vec![parse_selection_map(node, path)?]),
        Yaml::Array(items) => {
            if items.is_empty() {
                return Err(invalid(format!("{path}: empty list")));
            }
            if items.iter().all(is_scalar) {
                let values = items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| scalar_value(item, &format!("{path}[{index}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                if values.iter().any(|value| matches!(value, Value::Null)) {
                    return Err(invalid(format!("{path}: null cannot be a keyword")));
                }
                return Ok(vec![vec![FieldTest {
                    field: None,
                    modifiers: Vec::new(),
                    values,
                    path: path.to_owned(),
                }]]);
            }
            let mut alternatives = Vec::new();
            for (index, item) in items.iter().enumerate() {
                let item_path = format!("{path}[{index}]");
                match item {
                    Yaml::Hash(_) => alternatives.push(parse_selection_map(item, &item_path)?),
                    item if is_scalar(item) => {
                        let value = scalar_value(item, &item_path)?;
                        if value == Value::Null {
                            return Err(invalid(format!("{item_path}: null cannot be a keyword")));
                        }
                        alternatives.push(vec![FieldTest {
                            field: None,
                            modifiers: Vec::new(),
                            values: vec![value],
                            path: item_path,
                        }]);
                    }
                    _ => {
                        return Err(invalid(format!(
                            "{item_path}: expected a mapping or a keyword string"
                        )));
                    }
                }
            }
            Ok(alternatives)
        }
        Yaml::String(_) | Yaml::Integer(_) | Yaml::Real(_) => Ok(vec![vec![FieldTest {
            field: None,
            modifiers: Vec::new(),
            values: vec![scalar_value(node, path)?],
            path: path.to_owned(),
        }]]),
        _ => Err(invalid(format!(
            "{path}: expected a mapping, a list of mappings or a list of keywords"
        ))),
    }
}

fn is_scalar(node: &Yaml) -> bool {
    matches!(
        node,
        Yaml::String(_) | Yaml::Integer(_) | Yaml::Real(_) | Yaml::Boolean(_) | Yaml::Null
    )
}

fn scalar_value(node: &Yaml, path: &str) -> Result<Value, Error> {
    Ok(match node {
        Yaml::String(text) => Value::String(text.clone()),
        Yaml::Integer(number) => Value::Int(*number),
        Yaml::Real(text) => match text.parse::<f64>() {
            Ok(number) if number.is_finite() => Value::Float(number),
            _ => Value::String(text.clone()),
        },
        Yaml::Boolean(flag) => Value::Bool(*flag),
        Yaml::Null => Value::Null,
        _ => {
            return Err(invalid(format!(
                "{path}: expected a string, number, boolean or null"
            )));
        }
    })
}

fn parse_selection_map(node: &Yaml, path: &str) -> Result<Vec<FieldTest>, Error> {
    let Yaml::Hash(map) = node else {
        return Err(invalid(format!("{path}: expected a mapping")));
    };
    if map.is_empty() {
        return Err(invalid(format!("{path}: empty mapping")));
    }
    let mut tests = Vec::new();
    for (key, value) in map {
        let key = match key {
            Yaml::String(text) => text.clone(),
            Yaml::Integer(number) => number.to_string(),
            Yaml::Null => String::new(),
            _ => return Err(invalid(format!("{path}: field names must be strings"))),
        };
        let test_path = format!("{path}.{key}");
        let mut parts = key.split('|');
        let field = parts.next().unwrap_or("").trim().to_owned();
        let mut modifiers = Vec::new();
        for name in parts {
            match Modifier::parse(name) {
                Ok(modifier) => modifiers.push(modifier),
                Err(Some(what)) => {
                    return Err(Error::Unsupported(format!(
                        "{test_path}: modifier '{name}' ({what}) is not supported"
                    )));
                }
                Err(None) => {
                    return Err(invalid(format!("{test_path}: unknown modifier '{name}'")));
                }
            }
        }
        let values = match value {
            Yaml::Array(items) => {
                if items.is_empty() {
                    return Err(invalid(format!("{test_path}: empty value list")));
                }
                let values = items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| scalar_value(item, &format!("{test_path}[{index}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                if values.len() > 1 && values.contains(&Value::Null) {
                    return Err(invalid(format!(
                        "{test_path}: null cannot be part of a list of values (use its own \
                         selection)"
                    )));
                }
                values
            }
            Yaml::Hash(_) => {
                return Err(invalid(format!("{test_path}: a value cannot be a mapping")));
            }
            other => vec![scalar_value(other, &test_path)?],
        };
        let test = FieldTest {
            field: (!field.is_empty()).then_some(field),
            modifiers,
            values,
            path: test_path,
        };
        validate_modifiers(&test)?;
        tests.push(test);
    }
    Ok(tests)
}

/// Checks modifier combinations and value types.
fn validate_modifiers(test: &FieldTest) -> Result<(), Error> {
    let path = &test.path;
    let has = |modifier: Modifier| test.modifiers.contains(&modifier);
    let mut seen = Vec::new();
    for modifier in &test.modifiers {
        if seen.contains(modifier) {
            return Err(invalid(format!(
                "{path}: modifier '{}' given twice",
                modifier.name()
            )));
        }
        seen.push(*modifier);
    }
    let positions: Vec<&Modifier> = test.modifiers.iter().filter(|m| m.is_position()).collect();
    if positions.len() > 1 {
        return Err(invalid(format!(
            "{path}: modifiers '{}' and '{}' cannot be combined",
            positions[0].name(),
            positions[1].name()
        )));
    }
    // Modifiers that make the value something other than a string pattern.
    let typed: Vec<Modifier> = test
        .modifiers
        .iter()
        .copied()
        .filter(|m| {
            matches!(
                m,
                Modifier::Re | Modifier::Cidr | Modifier::Exists | Modifier::FieldRef
            ) || m.is_numeric()
        })
        .collect();
    if typed.len() > 1 {
        return Err(invalid(format!(
            "{path}: modifiers '{}' and '{}' cannot be combined",
            typed[0].name(),
            typed[1].name()
        )));
    }
    if let Some(kind) = typed.first() {
        // `fieldref` compares with another field's text: position and case apply, encodings
        // (which transform a literal) do not.
        let text_kind = matches!(kind, Modifier::Re | Modifier::FieldRef);
        let conflicting = test.modifiers.iter().find(|m| {
            m.is_encoding()
                || (m.is_position() && *kind != Modifier::FieldRef)
                || (**m == Modifier::Cased && !text_kind)
        });
        if let Some(conflicting) = conflicting {
            return Err(invalid(format!(
                "{path}: modifier '{}' cannot be combined with '{}'",
                conflicting.name(),
                kind.name()
            )));
        }
    }
    if let Some(flag) = test.modifiers.iter().find(|m| m.is_re_flag())
        && !has(Modifier::Re)
    {
        return Err(invalid(format!(
            "{path}: modifier '{}' is a sub-modifier of 're' and needs it",
            flag.name()
        )));
    }
    if has(Modifier::Exists) {
        if test.modifiers.len() > 1 {
            return Err(invalid(format!(
                "{path}: 'exists' cannot be combined with other modifiers"
            )));
        }
        if !matches!(test.values.as_slice(), [Value::Bool(_)]) {
            return Err(invalid(format!(
                "{path}: 'exists' needs a single true or false"
            )));
        }
        return Ok(());
    }
    if has(Modifier::FieldRef) {
        if test.field.is_none() {
            return Err(invalid(format!("{path}: 'fieldref' needs a field")));
        }
        if let Some(value) = test
            .values
            .iter()
            .find(|value| !matches!(value, Value::String(name) if !name.is_empty()))
        {
            return Err(invalid(format!(
                "{path}: 'fieldref' needs field names, not {value}"
            )));
        }
    }
    if has(Modifier::Neq) && has(Modifier::All) {
        return Err(invalid(format!(
            "{path}: 'neq' cannot be combined with 'all'"
        )));
    }
    if test.field.is_none() && has(Modifier::Neq) {
        return Err(invalid(format!("{path}: 'neq' needs a field")));
    }
    let has_null = test.values.contains(&Value::Null);
    if has_null && !test.modifiers.is_empty() {
        return Err(invalid(format!(
            "{path}: null cannot be used with modifiers"
        )));
    }
    if has_null && test.field.is_none() {
        return Err(invalid(format!("{path}: null cannot be a keyword")));
    }
    for value in &test.values {
        let numeric_only = test.modifiers.iter().any(|m| m.is_numeric());
        match value {
            Value::Int(_) | Value::Float(_) => {}
            Value::String(text) if numeric_only && text.trim().parse::<f64>().is_ok() => {}
            Value::String(_) | Value::Bool(_) if numeric_only => {
                return Err(invalid(format!(
                    "{path}: '{}' needs a number, not {value}",
                    typed[0].name()
                )));
            }
            Value::Bool(_) if has(Modifier::Re) || has(Modifier::Cidr) => {
                return Err(invalid(format!("{path}: expected a string, not {value}")));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reject_reason(yaml: &str) -> String {
        let report = parse_rules_str(yaml, "test.yml");
        assert!(
            report.loaded.is_empty(),
            "unexpectedly loaded: {:?}",
            report.loaded
        );
        assert_eq!(report.rejected.len(), 1);
        report.rejected[0].reason.clone()
    }

    const HEAD: &str = "title: t\nlogsource: {product: linux}\n";

    #[test]
    fn unknown_modifier_names_the_place() {
        let reason = reject_reason(&format!(
            "{HEAD}detection:\n  selection:\n    CommandLine|contians: x\n  condition: selection\n"
        ));
        assert_eq!(
            reason,
            "detection.selection.CommandLine|contians: unknown modifier 'contians'"
        );
    }

    #[test]
    fn missing_identifier_and_bad_condition() {
        let reason = reject_reason(&format!(
            "{HEAD}detection:\n  selection:\n    a: x\n  condition: selection and filter\n"
        ));
        assert!(
            reason.contains("'filter' is not a search identifier"),
            "{reason}"
        );
        let reason = reject_reason(&format!(
            "{HEAD}detection:\n  selection:\n    a: x\n  condition: selection and\n"
        ));
        assert!(
            reason.starts_with("detection.condition: unexpected end"),
            "{reason}"
        );
    }

    #[test]
    fn unsupported_modifiers_are_unsupported_not_invalid() {
        let report = parse_rules_str(
            &format!("{HEAD}detection:\n  sel:\n    a|expand: '%x%'\n  condition: sel\n"),
            "t.yml",
        );
        assert_eq!(report.rejected[0].error.kind(), "unsupported");
    }

    #[test]
    fn multi_document_files_name_each_document() {
        let yaml = format!(
            "{HEAD}detection:\n  sel: [a]\n  condition: sel\n---\ntitle: c\ncorrelation:\n  \
             type: event_count\n  rules: [x]\n---\ntitle: bad\n"
        );
        let report = parse_rules_str(&yaml, "multi.yml");
        assert_eq!(report.loaded.len(), 2);
        assert!(matches!(
            report.loaded[1].kind,
            RuleKind::Correlation { .. }
        ));
        assert_eq!(report.rejected[0].source, "multi.yml (document 3)");
        assert_eq!(report.rejected[0].reason, "logsource: missing");
    }

    #[test]
    fn hostile_yaml_is_rejected() {
        let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(reject_reason(&deep).contains("invalid yaml"));
        let deep_block = format!("title: x\ndetection:\n{}x\n", "- ".repeat(10_000));
        let reason = reject_reason(&deep_block);
        assert!(reason.contains("nesting deeper"), "{reason}");
        let laughs = "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n";
        assert!(reject_reason(laughs).contains("aliases"));
        assert!(reject_reason("{").contains("invalid yaml"));
        assert!(reject_reason("- 1\n- 2\n").contains("not a mapping"));
    }

    #[test]
    fn modifier_combinations() {
        for (key, expected) in [
            ("a|contains|startswith: x", "cannot be combined"),
            ("a|i: x", "sub-modifier of 're'"),
            ("a|re|contains: x", "cannot be combined with 're'"),
            ("a|gt: abc", "needs a number"),
            ("a|exists: yes please", "single true or false"),
            ("a|contains: [x, null]", "null cannot be part"),
        ] {
            let reason = reject_reason(&format!(
                "{HEAD}detection:\n  sel:\n    {key}\n  condition: sel\n"
            ));
            assert!(reason.contains(expected), "{key}: {reason}");
        }
    }
}
