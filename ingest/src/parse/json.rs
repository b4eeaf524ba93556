//! JSON objects → event fields, shared by the syslog parsers (a JSON body, a JSON frame) and the
//! NDJSON decoder.
//!
//! simd-json parses a mutable copy of the text (one reused scratch buffer); strings that appear
//! verbatim in the frame become [`Text::Span`]s, strings with escapes become [`Text::Owned`].
//! Nested objects are flattened with dotted names; arrays are kept as JSON text.

use std::fmt;

use simd_json::StaticNode;
use simd_json::tape::Node;

use super::timestamp::parse_rfc3339;
use crate::event::{Facility, Field, FieldValue, Severity, Span, Text, Timestamp};

/// Reusable parse buffers (one per thread or per request).
pub(crate) struct JsonScratch {
    bytes: Vec<u8>,
    buffers: simd_json::Buffers,
}

impl fmt::Debug for JsonScratch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonScratch")
            .field("capacity", &self.bytes.capacity())
            .finish()
    }
}

impl Default for JsonScratch {
    fn default() -> Self {
        JsonScratch {
            bytes: Vec::new(),
            buffers: simd_json::Buffers::new(512),
        }
    }
}

/// Limits on what one object may contribute.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JsonLimits {
    pub max_fields: usize,
    pub max_depth: usize,
}

/// Why a text is not a usable JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JsonError {
    /// Not JSON at all (detail for the sender).
    Invalid(String),
    /// Nesting deeper than simd-json's own limit.
    TooDeep,
}

/// A `ts`-like value: parsed, or present but unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KnownTimestamp {
    Valid(Timestamp),
    Invalid,
}

/// The well-known top-level keys (`message`/`msg`/`log`, `ts`/`timestamp`/`@timestamp`/`time`,
/// `host`/`hostname`, `app`/`program`, `severity`/`level`, `facility`).
#[derive(Debug, Default)]
pub(crate) struct KnownKeys {
    pub message: Option<Text>,
    pub ts: Option<KnownTimestamp>,
    pub host: Option<Text>,
    pub app: Option<Text>,
    pub severity: Option<Severity>,
    pub facility: Option<Facility>,
    /// `message`-like keys were present but none was text (or a scalar).
    message_rank: u8,
    ts_rank: u8,
    host_rank: u8,
    app_rank: u8,
    severity_rank: u8,
}

/// The result of [`parse_object`].
#[derive(Debug, Default)]
pub(crate) struct JsonObject {
    pub fields: Vec<Field>,
    pub known: KnownKeys,
    /// A field-count or depth limit cut the extraction short.
    pub fields_truncated: bool,
    /// Nesting went deeper than `max_depth`.
    pub depth_exceeded: bool,
}

/// Nesting depth of a JSON text (brackets outside strings). Used only to classify a parse error.
fn nesting_depth(bytes: &[u8]) -> usize {
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Parses `raw[start..end]` as a JSON value. `Ok(None)` when it is valid JSON but not an object
/// (a bare string is returned as `Ok(Some)` with only `known.message` set when `allow_string`).
pub(crate) fn parse_object(
    raw: &str,
    start: usize,
    end: usize,
    scratch: &mut JsonScratch,
    limits: JsonLimits,
    extract_known: bool,
    default_tz: &jiff::tz::TimeZone,
) -> Result<Option<JsonObject>, JsonError> {
    let Some(text) = raw.as_bytes().get(start..end) else {
        return Err(JsonError::Invalid("empty".into()));
    };
    scratch.bytes.clear();
    scratch.bytes.extend_from_slice(text);
    let base = scratch.bytes.as_ptr() as usize;
    let tape = match simd_json::to_tape_with_buffers(&mut scratch.bytes, &mut scratch.buffers) {
        Ok(tape) => tape,
        Err(error) => {
            if matches!(error.error(), simd_json::ErrorType::DepthLimitExceeded)
                || nesting_depth(text) > limits.max_depth
            {
                return Err(JsonError::TooDeep);
            }
            return Err(JsonError::Invalid(error.to_string()));
        }
    };
    let nodes = tape.0.as_slice();
    let mut walker = Walker {
        raw,
        json_start: start,
        json: text,
        base,
        limits,
        default_tz,
        out: JsonObject::default(),
        path: String::new(),
    };
    match nodes.first() {
        Some(Node::Object { .. }) => {
            walker.object(nodes, 0, 1, extract_known);
            Ok(Some(walker.out))
        }
        Some(Node::String(value)) if extract_known => {
            walker.out.known.message = Some(walker.text(value));
            Ok(Some(walker.out))
        }
        _ => Ok(None),
    }
}

/// Number of tape nodes the value at `index` occupies.
fn node_len(nodes: &[Node<'_>], index: usize) -> usize {
    match nodes.get(index) {
        Some(Node::Object { count, .. } | Node::Array { count, .. }) => count + 1,
        _ => 1,
    }
}

struct Walker<'a> {
    raw: &'a str,
    json_start: usize,
    json: &'a [u8],
    base: usize,
    limits: JsonLimits,
    default_tz: &'a jiff::tz::TimeZone,
    out: JsonObject,
    path: String,
}

impl Walker<'_> {
    /// A span when `value` lies verbatim in the frame (no escapes), else an owned copy.
    fn text(&self, value: &str) -> Text {
        let pointer = value.as_ptr() as usize;
        if let Some(offset) = pointer.checked_sub(self.base) {
            let end = offset + value.len();
            if self.json.get(offset..end) == Some(value.as_bytes()) {
                let start = self.json_start + offset;
                if self.raw.is_char_boundary(start)
                    && self.raw.is_char_boundary(start + value.len())
                {
                    return Text::Span(Span::new(start, start + value.len()));
                }
            }
        }
        Text::owned(value)
    }

    fn object(&mut self, nodes: &[Node<'_>], index: usize, depth: usize, extract_known: bool) {
        let Some(Node::Object { len, .. }) = nodes.get(index) else {
            return;
        };
        let mut cursor = index + 1;
        for _ in 0..*len {
            let Some(Node::String(key)) = nodes.get(cursor) else {
                return;
            };
            let value_index = cursor + 1;
            cursor = value_index + node_len(nodes, value_index);
            if extract_known && depth == 1 && self.known(key, nodes, value_index) {
                continue;
            }
            let path_len = self.path.len();
            if !self.path.is_empty() {
                self.path.push('.');
            }
            self.path.push_str(key);
            self.value(nodes, value_index, depth, key);
            self.path.truncate(path_len);
        }
    }

    fn value(&mut self, nodes: &[Node<'_>], index: usize, depth: usize, key: &str) {
        let field_value = match nodes.get(index) {
            Some(Node::Object { .. }) => {
                if depth >= self.limits.max_depth {
                    self.out.depth_exceeded = true;
                    self.out.fields_truncated = true;
                    return;
                }
                self.object(nodes, index, depth + 1, false);
                return;
            }
            Some(Node::Array { .. }) => {
                let mut text = String::new();
                write_json(nodes, index, &mut text);
                FieldValue::Text(Text::owned(text))
            }
            Some(Node::String(value)) => FieldValue::Text(self.text(value)),
            Some(Node::Static(StaticNode::I64(value))) => FieldValue::I64(*value),
            Some(Node::Static(StaticNode::U64(value))) => {
                i64::try_from(*value).map_or(FieldValue::U64(*value), FieldValue::I64)
            }
            Some(Node::Static(StaticNode::F64(value))) => FieldValue::F64(*value),
            Some(Node::Static(StaticNode::Bool(value))) => FieldValue::Bool(*value),
            Some(Node::Static(StaticNode::Null)) | None => return,
        };
        if self.out.fields.len() >= self.limits.max_fields {
            self.out.fields_truncated = true;
            return;
        }
        let name = if depth == 1 {
            self.text(key)
        } else {
            Text::owned(self.path.as_str())
        };
        self.out.fields.push(Field {
            name,
            value: field_value,
        });
    }

    /// Takes a well-known key; `false` if `key` is not one (or its value is not usable).
    fn known(&mut self, key: &str, nodes: &[Node<'_>], index: usize) -> bool {
        let node = nodes.get(index);
        let scalar_text = |walker: &Walker<'_>| -> Option<Text> {
            match node? {
                Node::String(value) => Some(walker.text(value)),
                Node::Static(StaticNode::I64(value)) => Some(Text::owned(value.to_string())),
                Node::Static(StaticNode::U64(value)) => Some(Text::owned(value.to_string())),
                Node::Static(StaticNode::F64(value)) => Some(Text::owned(value.to_string())),
                Node::Static(StaticNode::Bool(value)) => Some(Text::owned(value.to_string())),
                _ => None,
            }
        };
        match key {
            "message" | "msg" | "log" => {
                let rank = match key {
                    "message" => 3,
                    "msg" => 2,
                    _ => 1,
                };
                if rank <= self.out.known.message_rank {
                    return false;
                }
                let Some(text) = scalar_text(self) else {
                    return false;
                };
                self.out.known.message = Some(text);
                self.out.known.message_rank = rank;
                true
            }
            "ts" | "timestamp" | "@timestamp" | "time" => {
                let rank = match key {
                    "ts" => 4,
                    "@timestamp" => 3,
                    "timestamp" => 2,
                    _ => 1,
                };
                if rank <= self.out.known.ts_rank {
                    return false;
                }
                let parsed = match node {
                    Some(Node::String(value)) => timestamp_from_str(value, self.default_tz),
                    Some(Node::Static(StaticNode::I64(value))) => epoch_from_i64(*value),
                    Some(Node::Static(StaticNode::U64(value))) => {
                        i64::try_from(*value).ok().and_then(epoch_from_i64)
                    }
                    Some(Node::Static(StaticNode::F64(value))) => epoch_to_timestamp(*value),
                    _ => None,
                };
                self.out.known.ts =
                    Some(parsed.map_or(KnownTimestamp::Invalid, KnownTimestamp::Valid));
                self.out.known.ts_rank = rank;
                true
            }
            "host" | "hostname" => {
                let rank = if key == "host" { 2 } else { 1 };
                if rank <= self.out.known.host_rank {
                    return false;
                }
                let Some(Node::String(value)) = node else {
                    return false;
                };
                self.out.known.host = Some(self.text(value));
                self.out.known.host_rank = rank;
                true
            }
            "app" | "program" => {
                let rank = if key == "app" { 2 } else { 1 };
                if rank <= self.out.known.app_rank {
                    return false;
                }
                let Some(Node::String(value)) = node else {
                    return false;
                };
                self.out.known.app = Some(self.text(value));
                self.out.known.app_rank = rank;
                true
            }
            "severity" | "level" => {
                let rank = if key == "severity" { 2 } else { 1 };
                if rank <= self.out.known.severity_rank {
                    return false;
                }
                let severity = match node {
                    Some(Node::String(value)) => Severity::parse(value),
                    Some(Node::Static(StaticNode::I64(value))) => {
                        u8::try_from(*value).ok().and_then(Severity::from_code)
                    }
                    Some(Node::Static(StaticNode::U64(value))) => {
                        u8::try_from(*value).ok().and_then(Severity::from_code)
                    }
                    _ => None,
                };
                let Some(severity) = severity else {
                    return false;
                };
                self.out.known.severity = Some(severity);
                self.out.known.severity_rank = rank;
                true
            }
            "facility" => {
                let facility = match node {
                    Some(Node::String(value)) => Facility::parse(value),
                    Some(Node::Static(StaticNode::I64(value))) => {
                        u8::try_from(*value).ok().and_then(Facility::from_code)
                    }
                    Some(Node::Static(StaticNode::U64(value))) => {
                        u8::try_from(*value).ok().and_then(Facility::from_code)
                    }
                    _ => None,
                };
                let Some(facility) = facility else {
                    return false;
                };
                self.out.known.facility = Some(facility);
                true
            }
            _ => false,
        }
    }
}

/// Renders the value at `index` as compact JSON text.
fn write_json(nodes: &[Node<'_>], index: usize, out: &mut String) {
    use std::fmt::Write;
    match nodes.get(index) {
        Some(Node::String(value)) => {
            out.push_str(&serde_json::to_string(value).unwrap_or_default());
        }
        Some(Node::Static(StaticNode::I64(value))) => {
            let _ = write!(out, "{value}");
        }
        Some(Node::Static(StaticNode::U64(value))) => {
            let _ = write!(out, "{value}");
        }
        Some(Node::Static(StaticNode::F64(value))) => {
            let _ = write!(out, "{value}");
        }
        Some(Node::Static(StaticNode::Bool(value))) => {
            let _ = write!(out, "{value}");
        }
        Some(Node::Static(StaticNode::Null)) | None => out.push_str("null"),
        Some(Node::Array { len, .. }) => {
            out.push('[');
            let mut cursor = index + 1;
            for position in 0..*len {
                if position > 0 {
                    out.push(',');
                }
                write_json(nodes, cursor, out);
                cursor += node_len(nodes, cursor);
            }
            out.push(']');
        }
        Some(Node::Object { len, .. }) => {
            out.push('{');
            let mut cursor = index + 1;
            for position in 0..*len {
                if position > 0 {
                    out.push(',');
                }
                write_json(nodes, cursor, out);
                out.push(':');
                write_json(nodes, cursor + 1, out);
                cursor += 1 + node_len(nodes, cursor + 1);
            }
            out.push('}');
        }
    }
}

/// An epoch number in seconds, milliseconds, microseconds or nanoseconds, picked by magnitude.
pub(crate) fn epoch_to_timestamp(value: f64) -> Option<Timestamp> {
    if !value.is_finite() {
        return None;
    }
    let magnitude = value.abs();
    let nanos = if magnitude < 1e11 {
        value * 1e9
    } else if magnitude < 1e14 {
        value * 1e6
    } else if magnitude < 1e17 {
        value * 1e3
    } else {
        value
    };
    if nanos.abs() >= 9.2e18 {
        return None;
    }
    Some(Timestamp(nanos as i64))
}

/// An RFC 3339 string, or an epoch number written as a string.
pub(crate) fn timestamp_from_str(text: &str, default_tz: &jiff::tz::TimeZone) -> Option<Timestamp> {
    let trimmed = text.trim();
    if let Some((parsed, used)) = parse_rfc3339(trimmed.as_bytes(), false)
        && used == trimmed.len()
    {
        return parsed.to_timestamp(default_tz);
    }
    if let Ok(integer) = trimmed.parse::<i64>() {
        return epoch_integer_to_timestamp(integer);
    }
    if trimmed
        .bytes()
        .all(|byte| byte.is_ascii_digit() || byte == b'.' || byte == b'-')
    {
        return trimmed.parse::<f64>().ok().and_then(epoch_to_timestamp);
    }
    None
}

/// Integer epochs without float rounding (nanosecond values keep every digit).
fn epoch_integer_to_timestamp(value: i64) -> Option<Timestamp> {
    let magnitude = value.unsigned_abs();
    let nanos = if magnitude < 100_000_000_000 {
        value.checked_mul(1_000_000_000)?
    } else if magnitude < 100_000_000_000_000 {
        value.checked_mul(1_000_000)?
    } else if magnitude < 100_000_000_000_000_000 {
        value.checked_mul(1_000)?
    } else {
        value
    };
    Some(Timestamp(nanos))
}

/// Integer epoch from a JSON integer node (keeps precision).
pub(crate) fn epoch_from_i64(value: i64) -> Option<Timestamp> {
    epoch_integer_to_timestamp(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(
        text: &str,
        max_fields: usize,
        max_depth: usize,
    ) -> Result<Option<JsonObject>, JsonError> {
        let mut scratch = JsonScratch::default();
        parse_object(
            text,
            0,
            text.len(),
            &mut scratch,
            JsonLimits {
                max_fields,
                max_depth,
            },
            true,
            &jiff::tz::TimeZone::UTC,
        )
    }

    fn names(object: &JsonObject, raw: &str) -> Vec<String> {
        object
            .fields
            .iter()
            .map(|field| field.name.resolve(raw).to_string())
            .collect()
    }

    #[test]
    fn nested_objects_flatten_with_dotted_names_in_document_order() {
        let raw = r#"{"msg":"hi","b":{"c":1,"d":{"e":"x"}},"a":[1,"two",{"z":null}],"f":true}"#;
        let object = parse(raw, 100, 16).unwrap().unwrap();
        assert_eq!(
            object.known.message.as_ref().map(|text| text.resolve(raw)),
            Some("hi")
        );
        assert_eq!(names(&object, raw), ["b.c", "b.d.e", "a", "f"]);
        assert_eq!(
            object.fields[2].value,
            FieldValue::Text(Text::owned(r#"[1,"two",{"z":null}]"#))
        );
        assert!(matches!(
            object.fields[1].value,
            FieldValue::Text(Text::Span(_))
        ));
    }

    #[test]
    fn escaped_strings_are_owned() {
        let raw = r#"{"message":"a\"b","k":"plain"}"#;
        let object = parse(raw, 100, 16).unwrap().unwrap();
        assert_eq!(object.known.message, Some(Text::owned("a\"b")));
        assert!(matches!(
            object.fields[0].value,
            FieldValue::Text(Text::Span(_))
        ));
    }

    #[test]
    fn limits_flag_truncation() {
        let raw = r#"{"a":1,"b":2,"c":3}"#;
        let object = parse(raw, 2, 16).unwrap().unwrap();
        assert_eq!(object.fields.len(), 2);
        assert!(object.fields_truncated);
        let deep = r#"{"a":{"b":{"c":1}}}"#;
        let object = parse(deep, 10, 2).unwrap().unwrap();
        assert!(object.depth_exceeded);
        assert!(object.fields.is_empty());
    }

    #[test]
    fn invalid_and_non_object_json() {
        assert!(matches!(parse("{", 10, 4), Err(JsonError::Invalid(_))));
        assert!(parse("[1]", 10, 4).unwrap().is_none());
        let deep = "[".repeat(2000) + &"]".repeat(2000);
        assert_eq!(parse(&deep, 10, 4).err(), Some(JsonError::TooDeep));
    }

    #[test]
    fn epoch_magnitudes() {
        let second = 1_700_000_000_i64;
        let expected = Some(Timestamp(second * 1_000_000_000));
        assert_eq!(epoch_from_i64(second), expected);
        assert_eq!(epoch_from_i64(second * 1000), expected);
        assert_eq!(epoch_from_i64(second * 1_000_000_000), expected);
        assert_eq!(
            timestamp_from_str("1700000000000", &jiff::tz::TimeZone::UTC),
            expected
        );
        assert_eq!(
            epoch_to_timestamp(1_700_000_000.5),
            Some(Timestamp(second * 1_000_000_000 + 500_000_000))
        );
        assert_eq!(
            timestamp_from_str("yesterday", &jiff::tz::TimeZone::UTC),
            None
        );
    }
}
