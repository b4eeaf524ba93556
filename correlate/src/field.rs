//! From Sigma field names and logsources to Cairn event fields.

use std::collections::HashMap;
use std::fmt::Write as _;

use cairn_ingest::{Event, FieldValue};

use crate::rule::LogSource;

/// Sigma field name → event field name, applied before the built-in aliases.
///
/// `FieldMapping::new().with("CommandLine", "cmdline")` makes `CommandLine|contains: x` look at
/// the event field `cmdline`. A target may itself be a built-in alias (`"User": "host"` is
/// allowed but unusual) or `sd.<id>.<param>`.
#[derive(Debug, Clone, Default)]
pub struct FieldMapping {
    map: HashMap<String, String>,
}

impl FieldMapping {
    pub fn new() -> FieldMapping {
        FieldMapping::default()
    }

    /// Adds (or replaces) one mapping.
    pub fn insert(&mut self, sigma_name: impl Into<String>, event_field: impl Into<String>) {
        self.map.insert(sigma_name.into(), event_field.into());
    }

    /// Builder form of [`FieldMapping::insert`].
    pub fn with(mut self, sigma_name: impl Into<String>, event_field: impl Into<String>) -> Self {
        self.insert(sigma_name, event_field);
        self
    }

    fn target<'a>(&'a self, sigma_name: &'a str) -> &'a str {
        self.map.get(sigma_name).map_or(sigma_name, String::as_str)
    }
}

/// What a Sigma field name reads from an event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum FieldRef {
    Message,
    Host,
    App,
    ProcId,
    MsgId,
    Severity,
    Facility,
    /// The first event field of that name, else the first structured-data parameter of that
    /// name (any SD-ID).
    Named(Box<str>),
    /// `sd.<id>.<param>`.
    Sd {
        id: Box<str>,
        param: Box<str>,
    },
}

/// Resolves a Sigma field name: the mapping first, then the built-in aliases (ASCII
/// case-insensitive), then `sd.<id>.<param>`, else a named field.
pub(crate) fn resolve_field(sigma_name: &str, mapping: &FieldMapping) -> FieldRef {
    let name = mapping.target(sigma_name);
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "message" | "msg" => return FieldRef::Message,
        "host" | "hostname" | "computer" => return FieldRef::Host,
        "app" | "appname" | "program" | "process.name" => return FieldRef::App,
        "procid" | "pid" => return FieldRef::ProcId,
        "msgid" => return FieldRef::MsgId,
        "severity" => return FieldRef::Severity,
        "facility" => return FieldRef::Facility,
        _ => {}
    }
    if let Some(rest) = name.strip_prefix("sd.")
        && let Some((id, param)) = rest.split_once('.')
        && !id.is_empty()
        && !param.is_empty()
    {
        return FieldRef::Sd {
            id: id.into(),
            param: param.into(),
        };
    }
    FieldRef::Named(name.into())
}

/// Where a resolved field's value is in an event (cheap to copy; resolved lazily).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Source {
    #[default]
    Absent,
    Message,
    Host,
    App,
    ProcId,
    MsgId,
    Severity(u8),
    Facility(u8),
    /// Index into `event.fields`.
    Field(u32),
    /// Element and parameter index into `event.structured_data`.
    Sd(u32, u32),
}

/// A field's value as the tests see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SlotValue<'a> {
    pub text: &'a str,
    /// Set for typed numbers, severity and facility (their codes); text is parsed on demand.
    pub number: Option<f64>,
}

impl SlotValue<'_> {
    pub(crate) fn as_number(&self) -> Option<f64> {
        self.number
            .or_else(|| self.text.trim().parse::<f64>().ok().filter(|n| !n.is_nan()))
    }
}

/// Header sources (everything but named and SD fields).
pub(crate) fn header_source(event: &Event, field: &FieldRef) -> Source {
    match field {
        FieldRef::Message => Source::Message,
        FieldRef::Host => present(event.host.is_some(), Source::Host),
        FieldRef::App => present(event.app.is_some(), Source::App),
        FieldRef::ProcId => present(event.procid.is_some(), Source::ProcId),
        FieldRef::MsgId => present(event.msgid.is_some(), Source::MsgId),
        FieldRef::Severity => event
            .severity
            .map_or(Source::Absent, |s| Source::Severity(s.code())),
        FieldRef::Facility => event
            .facility
            .map_or(Source::Absent, |f| Source::Facility(f.code())),
        FieldRef::Named(_) | FieldRef::Sd { .. } => Source::Absent,
    }
}

fn present(is_present: bool, source: Source) -> Source {
    if is_present { source } else { Source::Absent }
}

/// Finds a field the slow, obvious way (the oracle's resolution).
pub(crate) fn find_source(event: &Event, field: &FieldRef) -> Source {
    match field {
        FieldRef::Named(name) => {
            if let Some(index) = event
                .fields
                .iter()
                .position(|f| event.text(&f.name) == &**name)
            {
                return Source::Field(index as u32);
            }
            for (element_index, element) in event.structured_data.iter().enumerate() {
                if let Some(param_index) = element
                    .params
                    .iter()
                    .position(|(param, _)| event.text(param) == &**name)
                {
                    return Source::Sd(element_index as u32, param_index as u32);
                }
            }
            Source::Absent
        }
        FieldRef::Sd { id, param } => {
            for (element_index, element) in event.structured_data.iter().enumerate() {
                if event.text(&element.id) != &**id {
                    continue;
                }
                if let Some(param_index) = element
                    .params
                    .iter()
                    .position(|(name, _)| event.text(name) == &**param)
                {
                    return Source::Sd(element_index as u32, param_index as u32);
                }
            }
            Source::Absent
        }
        header => header_source(event, header),
    }
}

/// Renders a non-text field value into `buffer` (numbers as Rust prints them, booleans as
/// `true`/`false`). Returns false for text values (which need no rendering).
pub(crate) fn render_value(value: &FieldValue, buffer: &mut String) -> bool {
    buffer.clear();
    let _ = match value {
        FieldValue::Text(_) => return false,
        FieldValue::I64(number) => write!(buffer, "{number}"),
        FieldValue::U64(number) => write!(buffer, "{number}"),
        FieldValue::F64(number) => write!(buffer, "{number}"),
        FieldValue::Bool(flag) => write!(buffer, "{flag}"),
    };
    true
}

pub(crate) fn value_number(value: &FieldValue) -> Option<f64> {
    match value {
        FieldValue::I64(number) => Some(*number as f64),
        FieldValue::U64(number) => Some(*number as f64),
        FieldValue::F64(number) => Some(*number).filter(|n| !n.is_nan()),
        FieldValue::Text(_) | FieldValue::Bool(_) => None,
    }
}

/// The value at `source`; `rendered` holds the text of a non-text field value (see
/// [`render_value`]).
pub(crate) fn source_value<'a>(
    event: &'a Event,
    source: Source,
    rendered: &'a str,
) -> Option<SlotValue<'a>> {
    let text_value = |text: Option<&'a str>| text.map(|text| SlotValue { text, number: None });
    match source {
        Source::Absent => None,
        Source::Message => text_value(Some(event.message_str())),
        Source::Host => text_value(event.host_str()),
        Source::App => text_value(event.app_str()),
        Source::ProcId => text_value(event.procid_str()),
        Source::MsgId => text_value(event.msgid_str()),
        Source::Severity(code) => cairn_ingest::Severity::from_code(code).map(|s| SlotValue {
            text: s.name(),
            number: Some(f64::from(code)),
        }),
        Source::Facility(code) => cairn_ingest::Facility::from_code(code).map(|f| SlotValue {
            text: f.name(),
            number: Some(f64::from(code)),
        }),
        Source::Field(index) => {
            let field = event.fields.get(index as usize)?;
            match &field.value {
                FieldValue::Text(text) => text_value(Some(event.text(text))),
                other => Some(SlotValue {
                    text: rendered,
                    number: value_number(other),
                }),
            }
        }
        Source::Sd(element, param) => {
            let (_, value) = event
                .structured_data
                .get(element as usize)?
                .params
                .get(param as usize)?;
            text_value(Some(event.text(value)))
        }
    }
}

/// One logsource mapping entry: when a rule's logsource has every key this entry sets, the
/// rule only applies to events meeting all of `conditions` (each: field is one of the values,
/// ASCII case-insensitive).
#[derive(Debug, Clone, Default)]
pub struct LogsourceEntry {
    pub category: Option<String>,
    pub product: Option<String>,
    pub service: Option<String>,
    /// `(Sigma field name, allowed values)`, AND-ed; values are OR-ed.
    pub conditions: Vec<(String, Vec<String>)>,
}

impl LogsourceEntry {
    fn applies_to(&self, logsource: &LogSource) -> bool {
        let key_matches = |entry: &Option<String>, rule: &Option<String>| match entry {
            None => true,
            Some(entry) => rule
                .as_deref()
                .is_some_and(|rule| rule.eq_ignore_ascii_case(entry)),
        };
        (self.category.is_some() || self.product.is_some() || self.service.is_some())
            && key_matches(&self.category, &logsource.category)
            && key_matches(&self.product, &logsource.product)
            && key_matches(&self.service, &logsource.service)
    }
}

/// Logsource → event restriction.
///
/// A rule's logsource restricts matching only through entries that apply to it; a logsource no
/// entry covers (`category: process_creation`, `product: windows`, `service: auditd` by
/// default) does not restrict at all. This is deliberate: Cairn receives syslog and JSON from
/// anywhere and cannot know which events are, say, process creations, so an unmapped rule is
/// evaluated against every event and relies on its field tests (which name fields such
/// events carry). An operator who wants a rule set confined maps the logsource explicitly.
#[derive(Debug, Clone)]
pub struct LogsourceMapping {
    pub entries: Vec<LogsourceEntry>,
}

impl LogsourceMapping {
    /// No restriction for any logsource.
    pub fn empty() -> LogsourceMapping {
        LogsourceMapping {
            entries: Vec::new(),
        }
    }

    pub fn push(&mut self, entry: LogsourceEntry) {
        self.entries.push(entry);
    }

    /// Replaces the entry with the same `category`/`product`/`service` (compared ASCII
    /// case-insensitively), or appends `entry`. An entry without conditions removes the
    /// restriction an earlier entry for that logsource made.
    pub fn set(&mut self, entry: LogsourceEntry) {
        let same = |a: &Option<String>, b: &Option<String>| match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        };
        match self.entries.iter_mut().find(|existing| {
            same(&existing.category, &entry.category)
                && same(&existing.product, &entry.product)
                && same(&existing.service, &entry.service)
        }) {
            Some(existing) => *existing = entry,
            None => self.entries.push(entry),
        }
    }

    /// The conditions of every entry that applies to `logsource`.
    pub(crate) fn conditions_for(&self, logsource: &LogSource) -> Vec<(String, Vec<String>)> {
        self.entries
            .iter()
            .filter(|entry| entry.applies_to(logsource))
            .flat_map(|entry| entry.conditions.iter().cloned())
            .collect()
    }
}

impl Default for LogsourceMapping {
    /// Linux syslog services whose program name is reliable: `sshd`, `sudo`, `su`, `cron`,
    /// `vsftpd`, `clamav`; and `service: auth` → facility `auth` or `authpriv`.
    fn default() -> LogsourceMapping {
        let service = |name: &str, field: &str, values: &[&str]| LogsourceEntry {
            service: Some(name.to_owned()),
            conditions: vec![(
                field.to_owned(),
                values.iter().map(|v| (*v).to_owned()).collect(),
            )],
            ..LogsourceEntry::default()
        };
        LogsourceMapping {
            entries: vec![
                service("sshd", "app", &["sshd"]),
                service("sudo", "app", &["sudo"]),
                service("su", "app", &["su"]),
                service("cron", "app", &["cron", "crond", "anacron"]),
                service("vsftpd", "app", &["vsftpd"]),
                service(
                    "clamav",
                    "app",
                    &["clamd", "freshclam", "clamscan", "clamav"],
                ),
                service("auth", "facility", &["auth", "authpriv"]),
            ],
        }
    }
}
