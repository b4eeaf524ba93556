//! Canonical NDJSON lines: how an Elasticsearch document or a Splunk HEC event becomes the one
//! NDJSON line that is written to the WAL, decoded into an event, and decoded again on replay.
//!
//! The compatibility decoders ([`super::es_bulk`], [`super::hec`]) do not build events
//! themselves: they rewrite each item into a line that [`super::ndjson::decode_ndjson`]
//! understands, and that decoder makes the event, at ingest and on replay alike. So an item is
//! indexed the same before and after a restart, and the WAL keeps one record format for every
//! HTTP source.
//!
//! A canonical line is a JSON object whose first members are the ones the sender's protocol puts
//! outside the document (HEC `time` → `ts`, HEC `host`), then the ones derived from well-known
//! nested names of the document (`host.name` → `host`, `service.name` → `app`, `log.level` →
//! `severity`, a synthesised `message`), then metadata fields (`index`, `_id`, `source`,
//! `sourcetype`), then the document's own members verbatim. [`decode_ndjson`] takes the first
//! of each well-known key by rank and flattens the rest into fields, so a member written first
//! wins and the document's own members stay fields with their own names (a duplicate name keeps
//! both values).
//!
//! Invariant: a canonical line is one line. Everything written is valid JSON, in which a raw
//! line feed or carriage return can only be whitespace between tokens, so [`LineWriter::finish`]
//! replaces them with spaces.
//!
//! [`decode_ndjson`]: super::ndjson::decode_ndjson

use serde_json::{Map, Value};

use crate::event::Severity;

/// Writes one canonical line (members in call order) at the end of a body of lines.
#[derive(Debug)]
pub(crate) struct LineWriter<'a> {
    out: &'a mut Vec<u8>,
    start: usize,
    empty: bool,
}

impl<'a> LineWriter<'a> {
    /// Starts a line at the end of `out` (after a line feed when `out` is not empty).
    pub(crate) fn begin(out: &'a mut Vec<u8>) -> LineWriter<'a> {
        if !out.is_empty() {
            out.push(b'\n');
        }
        let start = out.len();
        out.push(b'{');
        LineWriter {
            out,
            start,
            empty: true,
        }
    }

    fn key(&mut self, key: &str) {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        // Keys are ours or come from a validated document: write them as JSON strings.
        let _ = serde_json::to_writer(&mut *self.out, key);
        self.out.push(b':');
    }

    /// A member whose value is already JSON text (validated by the caller).
    pub(crate) fn raw(&mut self, key: &str, json: &str) {
        self.key(key);
        self.out.extend_from_slice(json.trim().as_bytes());
    }

    /// A member whose value is a string, escaped here.
    pub(crate) fn string(&mut self, key: &str, value: &str) {
        self.key(key);
        let _ = serde_json::to_writer(&mut *self.out, value);
    }

    /// A member whose value is a JSON value.
    fn value(&mut self, key: &str, value: &Value) {
        self.key(key);
        let _ = serde_json::to_writer(&mut *self.out, value);
    }

    /// The members of `object_json`, a JSON object's text validated by the caller, verbatim.
    pub(crate) fn members_of(&mut self, object_json: &str) {
        let trimmed = object_json.trim();
        let inner = trimmed
            .strip_prefix('{')
            .and_then(|rest| rest.strip_suffix('}'))
            .unwrap_or("");
        if inner.trim().is_empty() {
            return;
        }
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.out.extend_from_slice(inner.as_bytes());
    }

    /// Closes the object and makes the line one line.
    pub(crate) fn finish(self) {
        self.out.push(b'}');
        if let Some(line) = self.out.get_mut(self.start..) {
            for byte in line {
                if matches!(*byte, b'\n' | b'\r') {
                    *byte = b' ';
                }
            }
        }
    }
}

/// Members the sender's protocol already set, so the document's nested names must not.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Preset {
    pub host: bool,
}

/// Writes the members derived from a document's well-known names (see the module docs), then
/// returns. The caller writes metadata and then the document's own members
/// ([`LineWriter::members_of`]).
///
/// - `message`: when the document has no scalar `message`, `msg` or `log`, its
///   `event.original` text, else the document's own JSON text (as Splunk keeps `_raw`);
/// - `host`: `host.name`, else `host.hostname`, when `host`/`hostname` are not strings;
/// - `app`: `service.name`, else `process.name`, when `app`/`program` are not strings;
/// - `severity`: `log.level`, else `log_level`, when `severity`/`level` do not name one.
pub(crate) fn write_document_keys(
    line: &mut LineWriter<'_>,
    document_json: &str,
    document: &Map<String, Value>,
    preset: Preset,
) {
    let is_scalar = |key: &str| {
        matches!(
            document.get(key),
            Some(Value::String(_) | Value::Number(_) | Value::Bool(_))
        )
    };
    let is_string = |key: &str| matches!(document.get(key), Some(Value::String(_)));
    if !["message", "msg", "log"].iter().any(|key| is_scalar(key)) {
        match lookup(document, "event.original") {
            Some(Value::String(original)) => line.string("message", original),
            _ => line.string("message", document_json.trim()),
        }
    }
    if !preset.host
        && !is_string("host")
        && !is_string("hostname")
        && let Some(host) = first_string(document, &["host.name", "host.hostname"])
    {
        line.string("host", host);
    }
    if !is_string("app")
        && !is_string("program")
        && let Some(app) = first_string(document, &["service.name", "process.name"])
    {
        line.string("app", app);
    }
    let names_severity = |key: &str| document.get(key).is_some_and(severity_of);
    if !names_severity("severity")
        && !names_severity("level")
        && let Some(level) = ["log.level", "log_level"]
            .iter()
            .filter_map(|path| lookup(document, path))
            .find(|value| severity_of(value))
    {
        line.value("severity", level);
    }
}

/// Whether a JSON value names a syslog severity as `decode_ndjson` reads it.
fn severity_of(value: &Value) -> bool {
    match value {
        Value::String(text) => Severity::parse(text).is_some(),
        Value::Number(number) => number
            .as_u64()
            .and_then(|code| u8::try_from(code).ok())
            .and_then(Severity::from_code)
            .is_some(),
        _ => false,
    }
}

fn first_string<'a>(document: &'a Map<String, Value>, paths: &[&str]) -> Option<&'a str> {
    paths
        .iter()
        .filter_map(|path| lookup(document, path))
        .find_map(Value::as_str)
        .filter(|text| !text.is_empty())
}

/// The value at a dotted path, nested (`{"host":{"name":…}}`) or as one dotted key
/// (`{"host.name":…}`), as Elasticsearch treats both.
fn lookup<'a>(document: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut keys = path.split('.');
    let mut current = keys.next().and_then(|first| document.get(first));
    for key in keys {
        current = current
            .and_then(Value::as_object)
            .and_then(|map| map.get(key));
    }
    current.or_else(|| document.get(path))
}

/// `text` cut to at most `max` bytes on a char boundary, for error details.
pub(crate) fn clip(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.get(..cut).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(document: &str, preset: Preset) -> String {
        let map: Map<String, Value> = serde_json::from_str(document).expect("object");
        let mut out = Vec::new();
        let mut line = LineWriter::begin(&mut out);
        write_document_keys(&mut line, document, &map, preset);
        line.string("index", "logs");
        line.members_of(document);
        line.finish();
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn ecs_names_become_known_keys_and_the_document_stays() {
        let line = canonical(
            r#"{"@timestamp":"2024-05-01T12:00:00Z","host":{"name":"web1","ip":"10.0.0.1"},"service":{"name":"shop"},"log":{"level":"warn"},"message":"hi"}"#,
            Preset::default(),
        );
        assert_eq!(
            line,
            r#"{"host":"web1","app":"shop","severity":"warn","index":"logs","@timestamp":"2024-05-01T12:00:00Z","host":{"name":"web1","ip":"10.0.0.1"},"service":{"name":"shop"},"log":{"level":"warn"},"message":"hi"}"#
        );
    }

    #[test]
    fn a_document_without_message_is_its_own_message() {
        let line = canonical(
            "{\"user\":\"alice\",\n \"dotted.key\":1}",
            Preset::default(),
        );
        assert!(!line.contains('\n'), "{line}");
        let value: Value = serde_json::from_str(&line).expect("valid json");
        assert_eq!(value["message"], "{\"user\":\"alice\",\n \"dotted.key\":1}");
        assert_eq!(value["index"], "logs");
    }

    #[test]
    fn top_level_names_win_over_nested_ones() {
        let line = canonical(
            r#"{"host":"h","host.name":"other","level":"error","log":{"level":"debug"},"program":"p","process":{"name":"q"},"msg":"m"}"#,
            Preset::default(),
        );
        assert!(line.starts_with(r#"{"index":"logs","#), "{line}");
        let line = canonical(r#"{"host.name":"dotted"}"#, Preset { host: true });
        assert!(!line.contains(r#""host":"dotted""#), "{line}");
    }

    #[test]
    fn empty_document_members_add_nothing() {
        assert_eq!(
            canonical("{ }", Preset::default()),
            r#"{"message":"{ }","index":"logs"}"#
        );
    }

    #[test]
    fn clip_respects_char_boundaries() {
        assert_eq!(clip("héllo", 2), "h");
        assert_eq!(clip("abc", 10), "abc");
    }
}
