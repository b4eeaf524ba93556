//! Splunk HTTP Event Collector bodies.
//!
//! `/services/collector/event` takes one or more JSON objects, concatenated (not an array; line
//! feeds or any whitespace between them are optional):
//!
//! ```json
//! {"time":1714564800.25,"host":"web1","source":"app.log","sourcetype":"_json","index":"main",
//!  "event":{"message":"payment failed","level":"error"},"fields":{"region":"eu"}}
//! {"event":"a plain text event"}
//! ```
//!
//! Each becomes one canonical NDJSON line (see [`super::canonical`]): `time` (epoch seconds, a
//! number or a numeric string) → `ts`; `host` → host; `source`, `sourcetype`, `index` → fields
//! of those names (the token's defaults when the event has none); a string `event` → message; an
//! object `event` → its members, with the well-known names mapped as for an Elasticsearch
//! document (its own JSON text is the message when it has none); `fields` → fields.
//!
//! Splunk's rules decide what is refused: an event without `event` (or with `null`) is
//! `missing_event`, an empty string `blank_event`, a `fields` that is not an object
//! `invalid_fields`, a value that is not an object `invalid_json`. Those events are rejected one
//! by one and the others kept. A body that stops being JSON cannot be split further: the events
//! before that point are kept and the rest is one `invalid_json` rejection.
//!
//! `/services/collector/raw` takes text: one event per non-empty line, whose message is the line
//! (invalid UTF-8 converted lossily), with the request's metadata.
//!
//! Decoding never fails as a whole and never panics.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::canonical::{LineWriter, Preset, clip, write_document_keys};
use crate::stats::RejectReason;

/// The longest error detail returned to the sender.
const MAX_DETAIL_BYTES: usize = 200;

/// Metadata that applies to events that do not carry their own: the token's defaults, or the
/// query parameters of a raw request.
#[derive(Debug, Clone, Copy, Default)]
pub struct HecDefaults<'a> {
    pub host: Option<&'a str>,
    pub source: Option<&'a str>,
    pub sourcetype: Option<&'a str>,
    pub index: Option<&'a str>,
}

/// A decoded HEC body.
#[derive(Debug, Default)]
pub struct HecBatch {
    /// One canonical NDJSON line per event whose outcome is [`HecOutcome::Line`], in order,
    /// separated by line feeds.
    pub lines: Vec<u8>,
    /// One outcome per event, in body order.
    pub events: Vec<HecOutcome>,
}

/// What became of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HecOutcome {
    /// The next line of [`HecBatch::lines`] holds it.
    Line,
    /// Rejected at this stage.
    Rejected(HecRejection),
}

/// Why an event was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HecRejection {
    pub reason: RejectReason,
    /// A short explanation.
    pub detail: String,
}

fn reject(reason: RejectReason, detail: impl AsRef<str>) -> HecOutcome {
    HecOutcome::Rejected(HecRejection {
        reason,
        detail: clip(detail.as_ref(), MAX_DETAIL_BYTES).to_string(),
    })
}

/// The members of an event object that Cairn reads; the others are ignored, as Splunk does.
#[derive(Debug, Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    event: Option<&'a RawValue>,
    #[serde(borrow, default)]
    time: Option<&'a RawValue>,
    #[serde(borrow, default)]
    host: Option<&'a RawValue>,
    #[serde(borrow, default)]
    source: Option<&'a RawValue>,
    #[serde(borrow, default)]
    sourcetype: Option<&'a RawValue>,
    #[serde(borrow, default)]
    index: Option<&'a RawValue>,
    #[serde(borrow, default)]
    fields: Option<&'a RawValue>,
}

/// Decodes an `/services/collector/event` body.
pub fn decode_hec_events(body: &[u8], defaults: &HecDefaults<'_>) -> HecBatch {
    let mut batch = HecBatch::default();
    let (text, utf8_error) = match std::str::from_utf8(body) {
        Ok(text) => (text, None),
        Err(error) => (
            std::str::from_utf8(body.get(..error.valid_up_to()).unwrap_or_default())
                .unwrap_or_default(),
            Some(error.valid_up_to()),
        ),
    };
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<&RawValue>();
    loop {
        match stream.next() {
            None => break,
            Some(Ok(raw)) => {
                let outcome = write_event(&mut batch.lines, raw, defaults);
                batch.events.push(outcome);
            }
            Some(Err(error)) => {
                batch.events.push(reject(
                    RejectReason::InvalidJson,
                    format!(
                        "invalid data format at byte {}: {error}",
                        stream.byte_offset()
                    ),
                ));
                return batch;
            }
        }
    }
    if let Some(offset) = utf8_error {
        batch.events.push(reject(
            RejectReason::InvalidJson,
            format!("invalid data format: invalid utf-8 at byte {offset}"),
        ));
    }
    batch
}

/// Validates one event object and appends its canonical line.
fn write_event(out: &mut Vec<u8>, raw: &RawValue, defaults: &HecDefaults<'_>) -> HecOutcome {
    // serde also reads a struct from an array: only an object is an event.
    let envelope = match serde_json::from_str::<Envelope<'_>>(raw.get()) {
        Ok(envelope) if raw.get().starts_with('{') => envelope,
        _ => return reject(RejectReason::InvalidJson, "an event must be a json object"),
    };
    let Some(event) = envelope.event.map(RawValue::get).map(str::trim) else {
        return reject(RejectReason::MissingEvent, "event field is required");
    };
    enum Body<'a> {
        Message(&'a str),
        Text(String),
        Document(Map<String, Value>),
    }
    let body = match event.as_bytes().first() {
        Some(b'"') => match serde_json::from_str::<String>(event) {
            Ok(text) if text.trim().is_empty() => {
                return reject(RejectReason::BlankEvent, "event field cannot be blank");
            }
            Ok(_) => Body::Message(event),
            Err(_) => return reject(RejectReason::InvalidJson, "event is not valid json"),
        },
        Some(b'{') => match serde_json::from_str::<Map<String, Value>>(event) {
            Ok(map) => Body::Document(map),
            Err(_) => return reject(RejectReason::InvalidJson, "event is not valid json"),
        },
        Some(b'n') => return reject(RejectReason::MissingEvent, "event field is required"),
        // A number, a boolean or an array: its JSON text is the message.
        _ => Body::Text(event.to_string()),
    };
    let fields = match envelope.fields.map(RawValue::get) {
        None | Some("null") => None,
        Some(fields) if serde_json::from_str::<Map<String, Value>>(fields).is_ok() => Some(fields),
        Some(_) => {
            return reject(
                RejectReason::InvalidFields,
                "error in handling indexed fields: fields must be a json object",
            );
        }
    };
    let mut line = LineWriter::begin(out);
    match present(envelope.time).map(|time| (time, epoch_nanos(time))) {
        Some((_, Some(nanos))) => line.raw("ts", &nanos.to_string()),
        Some((time, None)) => line.raw("ts", time),
        None => {}
    }
    let host = present(envelope.host);
    match (host, defaults.host) {
        (Some(host), _) => line.raw("host", host),
        (None, Some(host)) => line.string("host", host),
        (None, None) => {}
    }
    let preset = Preset {
        host: host.is_some() || defaults.host.is_some(),
    };
    match &body {
        Body::Message(json) => line.raw("message", json),
        Body::Text(text) => line.string("message", text),
        Body::Document(map) => write_document_keys(&mut line, event, map, preset),
    }
    for (key, value, default) in [
        ("index", envelope.index, defaults.index),
        ("source", envelope.source, defaults.source),
        ("sourcetype", envelope.sourcetype, defaults.sourcetype),
    ] {
        match (present(value), default) {
            (Some(json), _) => line.raw(key, json),
            (None, Some(text)) => line.string(key, text),
            (None, None) => {}
        }
    }
    if let Body::Document(_) = body {
        line.members_of(event);
    }
    if let Some(fields) = fields {
        line.members_of(fields);
    }
    line.finish();
    HecOutcome::Line
}

/// HEC `time` (epoch seconds with an optional decimal fraction, as a JSON number or string) as
/// integer nanoseconds, read exactly from the digits (an `f64` would lose the sub-microsecond
/// part). `None` for any other form (exponents, text), which the line decoder then reads.
fn epoch_nanos(json: &str) -> Option<i64> {
    let digits = json
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or(json);
    let (seconds, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if seconds.is_empty()
        || !seconds.bytes().all(|byte| byte.is_ascii_digit())
        || !fraction.bytes().all(|byte| byte.is_ascii_digit())
        || seconds.len() > 12
    {
        return None;
    }
    let whole: i64 = seconds.parse().ok()?;
    let mut nanos = 0i64;
    for position in 0..9 {
        let digit = fraction
            .as_bytes()
            .get(position)
            .map_or(0, |byte| i64::from(byte - b'0'));
        nanos = nanos * 10 + digit;
    }
    whole.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// The JSON text of a member that is present and not `null`.
fn present(value: Option<&RawValue>) -> Option<&str> {
    value.map(RawValue::get).filter(|json| *json != "null")
}

/// Decodes an `/services/collector/raw` body: one event per non-empty line.
pub fn decode_hec_raw(body: &[u8], defaults: &HecDefaults<'_>) -> HecBatch {
    let mut batch = HecBatch::default();
    for line in body.split(|byte| *byte == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.trim_ascii().is_empty() {
            continue;
        }
        let text = String::from_utf8_lossy(line);
        let mut writer = LineWriter::begin(&mut batch.lines);
        if let Some(host) = defaults.host {
            writer.string("host", host);
        }
        writer.string("message", &text);
        for (key, value) in [
            ("index", defaults.index),
            ("source", defaults.source),
            ("sourcetype", defaults.sourcetype),
        ] {
            if let Some(value) = value {
                writer.string(key, value);
            }
        }
        writer.finish();
        batch.events.push(HecOutcome::Line);
    }
    batch
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::decode::ndjson::{NdjsonLimits, NdjsonOutcome, decode_ndjson};
    use crate::event::{
        Event, EventFlags, FieldValue, FrameMeta, Seq, Severity, Source, Timestamp,
    };
    use crate::parse::ParseOptions;

    const DEFAULTS: HecDefaults<'static> = HecDefaults {
        host: None,
        source: None,
        sourcetype: Some("token-type"),
        index: Some("main"),
    };

    fn events_of(batch: HecBatch) -> NdjsonOutcome {
        let base = FrameMeta {
            seq: Seq(1),
            received_at: Timestamp(5),
            peer: None,
            source: Source::HttpHec,
            flags: EventFlags::empty(),
        };
        decode_ndjson(
            Bytes::from(batch.lines),
            &base,
            &NdjsonLimits::default(),
            &ParseOptions::default(),
        )
    }

    fn text_field<'a>(event: &'a Event, name: &str) -> Option<&'a str> {
        match event.field(name) {
            Some(FieldValue::Text(text)) => Some(event.text(text)),
            _ => None,
        }
    }

    fn reasons(batch: &HecBatch) -> Vec<Option<RejectReason>> {
        batch
            .events
            .iter()
            .map(|outcome| match outcome {
                HecOutcome::Line => None,
                HecOutcome::Rejected(rejection) => Some(rejection.reason),
            })
            .collect()
    }

    #[test]
    fn concatenated_events_with_metadata_and_fields() {
        let body = concat!(
            r#"{"time":1714564800.25,"host":"web1","source":"app.log","event":{"message":"payment failed","log_level":"ERROR","user":"bob"},"fields":{"region":"eu"}}"#,
            r#"{"event":"plain text","time":"1714564801","sourcetype":"syslog"}"#,
            "\n  ",
            r#"{"event":42}"#,
        );
        let batch = decode_hec_events(body.as_bytes(), &DEFAULTS);
        assert_eq!(reasons(&batch), vec![None, None, None]);
        let decoded = events_of(batch);
        assert!(decoded.rejected.is_empty(), "{:?}", decoded.rejected);
        let [first, second, third] = &decoded.events[..] else {
            panic!("three events")
        };
        assert_eq!(first.message_str(), "payment failed");
        assert_eq!(first.host_str(), Some("web1"));
        assert_eq!(first.severity, Some(Severity::Error));
        assert_eq!(first.ts.to_rfc3339(), "2024-05-01T12:00:00.25Z");
        assert_eq!(text_field(first, "source"), Some("app.log"));
        assert_eq!(text_field(first, "sourcetype"), Some("token-type"));
        assert_eq!(text_field(first, "index"), Some("main"));
        assert_eq!(text_field(first, "region"), Some("eu"));
        assert_eq!(text_field(first, "user"), Some("bob"));
        assert_eq!(second.message_str(), "plain text");
        assert_eq!(second.ts.to_rfc3339(), "2024-05-01T12:00:01Z");
        assert_eq!(text_field(second, "sourcetype"), Some("syslog"));
        assert_eq!(third.message_str(), "42");
    }

    #[test]
    fn bad_events_are_rejected_one_by_one() {
        let body = concat!(
            r#"{"event":"ok 1"}"#,
            r#"{"time":1}"#,
            r#"{"event":null}"#,
            r#"{"event":"  "}"#,
            r#"{"event":"x","fields":[1]}"#,
            r#"[1]"#,
            r#"{"event":"ok 2"}"#,
        );
        let batch = decode_hec_events(body.as_bytes(), &DEFAULTS);
        assert_eq!(
            reasons(&batch),
            vec![
                None,
                Some(RejectReason::MissingEvent),
                Some(RejectReason::MissingEvent),
                Some(RejectReason::BlankEvent),
                Some(RejectReason::InvalidFields),
                Some(RejectReason::InvalidJson),
                None,
            ]
        );
        assert_eq!(events_of(batch).events.len(), 2);
    }

    #[test]
    fn a_syntax_error_keeps_the_events_before_it() {
        let batch = decode_hec_events(
            br#"{"event":"a"}{"event":"b"}{"event": oops}{"event":"c"}"#,
            &DEFAULTS,
        );
        assert_eq!(
            reasons(&batch),
            vec![None, None, Some(RejectReason::InvalidJson)]
        );
        let batch = decode_hec_events(b"{\"event\":\"a\"}\xff{\"event\":\"b\"}", &DEFAULTS);
        assert_eq!(reasons(&batch), vec![None, Some(RejectReason::InvalidJson)]);
    }

    #[test]
    fn an_unparseable_time_is_rejected_by_the_line_decoder() {
        let batch = decode_hec_events(br#"{"event":"a","time":"yesterday"}"#, &DEFAULTS);
        assert_eq!(reasons(&batch), vec![None]);
        let decoded = events_of(batch);
        assert_eq!(decoded.rejected[0].reason, RejectReason::InvalidTimestamp);
    }

    #[test]
    fn epoch_seconds_are_read_exactly() {
        assert_eq!(
            epoch_nanos("1714564800.123456"),
            Some(1_714_564_800_123_456_000)
        );
        assert_eq!(
            epoch_nanos("\"1714564800\""),
            Some(1_714_564_800_000_000_000)
        );
        assert_eq!(epoch_nanos("1.7e9"), None);
        assert_eq!(epoch_nanos("-1"), None);
        assert_eq!(epoch_nanos("\"soon\""), None);
        assert_eq!(epoch_nanos("99999999999999999"), None);
    }

    #[test]
    fn raw_lines_are_messages_with_the_request_metadata() {
        let defaults = HecDefaults {
            host: Some("fw1"),
            source: Some("raw-src"),
            ..DEFAULTS
        };
        let batch = decode_hec_raw(b"first line\r\n\n  \nsecond \xff line\n", &defaults);
        assert_eq!(reasons(&batch), vec![None, None]);
        let decoded = events_of(batch);
        let [first, second] = &decoded.events[..] else {
            panic!("two events")
        };
        assert_eq!(first.message_str(), "first line");
        assert_eq!(first.host_str(), Some("fw1"));
        assert_eq!(text_field(first, "source"), Some("raw-src"));
        assert_eq!(second.message_str(), "second \u{fffd} line");
    }

    proptest::proptest! {
        #[test]
        fn any_body_gives_one_line_per_kept_event(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)
        ) {
            for batch in [decode_hec_events(&body, &DEFAULTS), decode_hec_raw(&body, &DEFAULTS)] {
                let kept = batch.events.iter().filter(|outcome| **outcome == HecOutcome::Line).count();
                let lines = batch.lines.split(|byte| *byte == b'\n').filter(|line| !line.is_empty()).count();
                proptest::prop_assert_eq!(lines, kept);
            }
        }

        #[test]
        fn json_like_bodies_give_valid_json_lines(
            events in proptest::collection::vec(
                ("[ -~]{0,20}", proptest::option::of("[ -~]{0,10}"), proptest::bool::ANY),
                0..6,
            )
        ) {
            let mut body = String::new();
            for (text, time, object) in &events {
                let event = if *object {
                    format!("{{\"message\":{}}}", serde_json::to_string(text).unwrap_or_default())
                } else {
                    serde_json::to_string(text).unwrap_or_default()
                };
                let time = time
                    .as_ref()
                    .map(|time| format!(",\"time\":{}", serde_json::to_string(time).unwrap_or_default()))
                    .unwrap_or_default();
                body.push_str(&format!("{{\"event\":{event}{time}}}\n"));
            }
            let batch = decode_hec_events(body.as_bytes(), &DEFAULTS);
            proptest::prop_assert_eq!(batch.events.len(), events.len());
            for line in batch.lines.split(|byte| *byte == b'\n').filter(|line| !line.is_empty()) {
                let value: Result<Value, _> = serde_json::from_slice(line);
                proptest::prop_assert!(value.is_ok(), "{}", String::from_utf8_lossy(line));
            }
        }
    }
}
