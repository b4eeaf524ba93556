//! Syslog and JSON parsers.
//!
//! [`parse_syslog`] is the entry point the pipeline calls for every syslog frame: it detects the
//! format (RFC 5424, RFC 3164 and its vendor variants, a bare JSON object) and never fails: a frame
//! that does not parse becomes an [`Event::unparsed`] with [`EventFlags::PARSE_ERROR`].
//!
//! Detection, per frame (after making the frame valid UTF-8):
//! 1. first non-blank byte `{` and the frame is a JSON object → [`Format::Json`] (`message`/`msg`/
//!    `log`, `ts`/`timestamp`/`@timestamp`/`time`, `host`/`hostname`, `app`/`program`,
//!    `severity`/`level`, `facility` are taken, every other key becomes a field);
//! 2. `<PRI>` then digits and a space (`<34>1 `) → RFC 5424 ([`rfc5424`]); an invalid one still
//!    yields its best fields (lenient RFC 5424, else RFC 3164) and is flagged `parse_error`;
//! 3. otherwise RFC 3164 and vendor variants ([`rfc3164`]); a frame with neither PRI nor
//!    timestamp is flagged `parse_error` and its whole text is the message; one with a PRI but
//!    neither timestamp nor tag keeps the PRI's severity/facility and is flagged `parse_error`.
//!
//! In 2 and 3 a message that is a JSON object becomes fields as well (the message is kept).
//! Everything points into the frame with spans; only escaped text is owned.

mod json;
pub mod rfc3164;
pub mod rfc5424;
mod timestamp;

use std::cell::RefCell;

use bytes::Bytes;

pub(crate) use json::{
    JsonError, JsonLimits, JsonObject, JsonScratch, KnownTimestamp, parse_object,
};
pub use rfc5424::{
    Rfc5424Error, Rfc5424ErrorKind, Rfc5424Message, SdElementRef, parse_rfc5424_strict,
};

use crate::event::{
    Event, EventFlags, Facility, Format, FrameMeta, SdElement, Severity, Span, Text, Timestamp,
};

/// Parser settings (from config).
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// Time zone for timestamps without an offset (RFC 3164). Default: UTC.
    pub default_tz: jiff::tz::TimeZone,
    /// At most this many fields are extracted from one JSON body; the rest are dropped and the
    /// event is flagged `fields_truncated`.
    pub max_json_fields: usize,
    /// JSON nesting deeper than this is not flattened further (flagged `fields_truncated`).
    pub max_json_depth: usize,
    /// The year of RFC 3164 timestamps, which carry none (`cairn replay --year`). `None` infers
    /// it from the receive time: the year that puts the timestamp closest to it without being
    /// more than ~31 days ahead.
    pub year: Option<i32>,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            default_tz: jiff::tz::TimeZone::UTC,
            max_json_fields: 256,
            max_json_depth: 16,
            year: None,
        }
    }
}

impl ParseOptions {
    pub(crate) fn json_limits(&self) -> JsonLimits {
        JsonLimits {
            max_fields: self.max_json_fields,
            max_depth: self.max_json_depth,
        }
    }
}

thread_local! {
    static JSON_SCRATCH: RefCell<JsonScratch> = RefCell::new(JsonScratch::default());
}

/// The event time [`parse_syslog`] gives `raw`, found without parsing the rest of the frame,
/// when that is cheap and certain: an RFC 3164 frame whose timestamp resolves. `None` means
/// "parse the frame to know". `cairn replay` uses it for lines no rule can match.
pub fn syslog_timestamp(raw: &[u8], meta: &FrameMeta, options: &ParseOptions) -> Option<Timestamp> {
    let first_non_blank = raw.iter().position(|byte| !byte.is_ascii_whitespace());
    // No UTF-8 check: a frame that is not valid UTF-8 is parsed as its lossy conversion, which
    // only differs where the bytes are invalid, and those can be neither part of the timestamp
    // nor the space after it.
    if first_non_blank.and_then(|start| raw.get(start)) == Some(&b'{')
        || rfc5424::looks_like_rfc5424(raw)
    {
        return None;
    }
    rfc3164::leading_timestamp(raw, &options.default_tz, meta.received_at, options.year)
}

/// Parses one syslog frame (any supported format). Never fails and never panics.
pub fn parse_syslog(raw: Bytes, meta: &FrameMeta, options: &ParseOptions) -> Event {
    let mut event = Event::unparsed(raw, meta);
    let raw = event.raw.clone();
    let Ok(text) = std::str::from_utf8(&raw) else {
        event.flags.insert(EventFlags::PARSE_ERROR);
        return event;
    };
    let first_non_blank = text.bytes().position(|byte| !byte.is_ascii_whitespace());
    if let Some(start) = first_non_blank
        && text.as_bytes().get(start) == Some(&b'{')
        && apply_json_frame(&mut event, text, start, options)
    {
        return event;
    }
    let starts_like_5424 = rfc5424::looks_like_rfc5424(text.as_bytes());
    if starts_like_5424 {
        let (message, error) = rfc5424::parse(text, false);
        if let Some(message) = message {
            apply_rfc5424(&mut event, text, &message, options);
            if error.is_some() {
                event.flags.insert(EventFlags::PARSE_ERROR);
            }
            return event;
        }
    }
    let parsed = rfc3164::parse(text, &options.default_tz, meta.received_at, options.year);
    if !parsed.recognised() {
        event.flags.insert(EventFlags::PARSE_ERROR);
        return event;
    }
    apply_rfc3164(&mut event, text, &parsed, options);
    if starts_like_5424 || !parsed.complete() {
        event.flags.insert(EventFlags::PARSE_ERROR);
    }
    event
}

/// The span of `part`, a subslice of `text`.
fn span_of(text: &str, part: &str) -> Span {
    let start = (part.as_ptr() as usize).saturating_sub(text.as_ptr() as usize);
    Span::new(start, start + part.len())
}

fn set_priority(event: &mut Event, priority: u8) {
    event.severity = Severity::from_code(priority & 7);
    event.facility = Facility::from_code(priority >> 3);
}

fn apply_rfc5424(
    event: &mut Event,
    text: &str,
    message: &Rfc5424Message<'_>,
    options: &ParseOptions,
) {
    event.format = Format::Rfc5424;
    set_priority(event, message.priority);
    if let Some(ts) = message.timestamp {
        event.ts = ts;
        event.flags.remove(EventFlags::TS_FROM_RECEIVE);
    }
    let span = |part: &str| Text::Span(span_of(text, part));
    event.host = message.hostname.map(span);
    event.app = message.app_name.map(span);
    event.procid = message.procid.map(span);
    event.msgid = message.msgid.map(span);
    event.structured_data = message
        .structured_data
        .iter()
        .map(|element| SdElement {
            id: span(element.id),
            params: element
                .params
                .iter()
                .map(|(name, value)| {
                    let value = match value {
                        std::borrow::Cow::Borrowed(borrowed) => span(borrowed),
                        std::borrow::Cow::Owned(owned) => Text::owned(owned.as_str()),
                    };
                    (span(name), value)
                })
                .collect(),
        })
        .collect();
    let message_span = match message.message {
        Some(body) => span_of(text, body),
        None => Span::new(text.len(), text.len()),
    };
    event.message = Text::Span(message_span);
    apply_json_body(event, text, message_span, options);
}

fn apply_rfc3164(
    event: &mut Event,
    text: &str,
    parsed: &rfc3164::Parsed3164,
    options: &ParseOptions,
) {
    event.format = Format::Rfc3164;
    if let Some(priority) = parsed.priority {
        set_priority(event, priority);
    }
    if let Some(ts) = parsed.timestamp {
        event.ts = ts;
        event.flags.remove(EventFlags::TS_FROM_RECEIVE);
    }
    let span = |(start, end): (usize, usize)| Text::Span(Span::new(start, end));
    event.host = parsed.host.map(span);
    event.app = parsed.app.map(span);
    event.procid = parsed.procid.map(span);
    let message_span = Span::new(parsed.message.0, parsed.message.1);
    event.message = Text::Span(message_span);
    apply_json_body(event, text, message_span, options);
}

/// A message that is a JSON object becomes fields (the message itself is kept).
fn apply_json_body(event: &mut Event, text: &str, message: Span, options: &ParseOptions) {
    let body = text.get(message.range()).unwrap_or("");
    let trimmed = body.trim_end();
    if !(trimmed.starts_with('{') && trimmed.ends_with('}')) {
        return;
    }
    let start = message.start as usize;
    let result = JSON_SCRATCH.with_borrow_mut(|scratch| {
        parse_object(
            text,
            start,
            start + trimmed.len(),
            scratch,
            options.json_limits(),
            false,
            &options.default_tz,
        )
    });
    match result {
        Ok(Some(object)) => {
            if object.fields_truncated {
                event.flags.insert(EventFlags::FIELDS_TRUNCATED);
            }
            event.fields = object.fields;
        }
        Ok(None) => {}
        Err(JsonError::TooDeep) => event.flags.insert(EventFlags::FIELDS_TRUNCATED),
        Err(JsonError::Invalid(_)) => {}
    }
}

/// A frame that is one JSON object. `false` (event untouched) when it is not valid JSON.
fn apply_json_frame(event: &mut Event, text: &str, start: usize, options: &ParseOptions) -> bool {
    let end = text.trim_end().len();
    let result = JSON_SCRATCH.with_borrow_mut(|scratch| {
        parse_object(
            text,
            start,
            end,
            scratch,
            options.json_limits(),
            true,
            &options.default_tz,
        )
    });
    let object = match result {
        Ok(Some(object)) => object,
        Ok(None) | Err(JsonError::Invalid(_)) => return false,
        Err(JsonError::TooDeep) => {
            event.format = Format::Json;
            event.flags.insert(EventFlags::FIELDS_TRUNCATED);
            return true;
        }
    };
    apply_json_object(event, object);
    true
}

/// Moves a parsed JSON object into the event (used by syslog JSON frames and NDJSON lines).
pub(crate) fn apply_json_object(event: &mut Event, object: JsonObject) {
    event.format = Format::Json;
    let known = object.known;
    if let Some(message) = known.message {
        event.message = message;
    }
    if let Some(KnownTimestamp::Valid(ts)) = known.ts {
        event.ts = ts;
        event.flags.remove(EventFlags::TS_FROM_RECEIVE);
    }
    event.host = known.host;
    event.app = known.app;
    event.severity = known.severity;
    event.facility = known.facility;
    event.fields = object.fields;
    if object.fields_truncated {
        event.flags.insert(EventFlags::FIELDS_TRUNCATED);
    }
}

#[cfg(test)]
mod tests;
