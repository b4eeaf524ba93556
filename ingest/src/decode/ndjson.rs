//! NDJSON bodies (`POST /api/v1/ingest`): one event per non-empty line.
//!
//! A line is a JSON object with `message` (or `msg`/`log`), optional `ts` (RFC 3339, or epoch
//! seconds/milliseconds/microseconds/nanoseconds as a number or numeric string, picked by
//! magnitude), `host`, `app`, `severity` (name or number), `facility`; every other key becomes a
//! field (nested objects flattened with dotted names, arrays kept as JSON text). A line that is a
//! bare JSON string is a message only. Each event's raw frame is its line, a zero-copy slice of
//! the body. Lines that cannot be accepted are reported with their 1-based number and reason.

use bytes::Bytes;

use crate::event::{Event, EventFlags, FrameMeta, Seq};
use crate::parse::{
    JsonError, JsonLimits, JsonScratch, KnownTimestamp, ParseOptions, apply_json_object,
    parse_object,
};
use crate::stats::RejectReason;

/// Per-line limits (from config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdjsonLimits {
    /// A longer line (without its line end) is rejected with `line_too_long`.
    pub max_line_bytes: usize,
    /// At most this many fields per line; the rest are dropped and the event flagged
    /// `fields_truncated`.
    pub max_fields: usize,
    /// Object nesting deeper than this rejects the line with `too_deep`.
    pub max_depth: usize,
}

impl Default for NdjsonLimits {
    fn default() -> Self {
        NdjsonLimits {
            max_line_bytes: 64 * 1024,
            max_fields: 256,
            max_depth: 16,
        }
    }
}

/// One rejected line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRejection {
    /// 1-based line number in the body.
    pub line: usize,
    pub reason: RejectReason,
    /// A short explanation for the sender.
    pub detail: String,
}

/// Accepted events (in body order) and rejected lines.
#[derive(Debug, Default)]
pub struct NdjsonOutcome {
    pub events: Vec<Event>,
    pub rejected: Vec<LineRejection>,
}

/// Decodes an NDJSON body. `base.seq` is the first event's sequence number; it increments per
/// accepted event. Never fails as a whole: bad lines are listed in [`NdjsonOutcome::rejected`].
pub fn decode_ndjson(
    body: Bytes,
    base: &FrameMeta,
    limits: &NdjsonLimits,
    options: &ParseOptions,
) -> NdjsonOutcome {
    let mut outcome = NdjsonOutcome::default();
    let mut scratch = JsonScratch::default();
    let json_limits = JsonLimits {
        max_fields: limits.max_fields,
        max_depth: limits.max_depth,
    };
    let mut start = 0;
    let mut line_number = 0;
    while start < body.len() {
        line_number += 1;
        let rest = body.get(start..).unwrap_or_default();
        let line_end = memchr::memchr(b'\n', rest).map_or(body.len(), |position| start + position);
        let next = line_end + 1;
        let mut end = line_end;
        if end > start && body.get(end - 1) == Some(&b'\r') {
            end -= 1;
        }
        let line_start = start;
        start = next;
        let line = body.slice(line_start..end);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let reject = |reason: RejectReason, detail: String| LineRejection {
            line: line_number,
            reason,
            detail,
        };
        if line.len() > limits.max_line_bytes {
            outcome.rejected.push(reject(
                RejectReason::LineTooLong,
                format!(
                    "line is {} bytes, the limit is {}",
                    line.len(),
                    limits.max_line_bytes
                ),
            ));
            continue;
        }
        let Ok(text) = std::str::from_utf8(&line) else {
            outcome.rejected.push(reject(
                RejectReason::InvalidJson,
                "line is not valid utf-8".into(),
            ));
            continue;
        };
        let json_start = text.len() - text.trim_start().len();
        let json_end = text.trim_end().len();
        if !matches!(text.as_bytes().get(json_start), Some(b'{' | b'"')) {
            outcome.rejected.push(reject(
                RejectReason::InvalidJson,
                "line is not a json object or string".into(),
            ));
            continue;
        }
        let object = match parse_object(
            text,
            json_start,
            json_end,
            &mut scratch,
            json_limits,
            true,
            &options.default_tz,
        ) {
            Ok(Some(object)) => object,
            Ok(None) => {
                outcome.rejected.push(reject(
                    RejectReason::InvalidJson,
                    "line is not a json object or string".into(),
                ));
                continue;
            }
            Err(JsonError::TooDeep) => {
                outcome.rejected.push(reject(
                    RejectReason::TooDeep,
                    format!("nesting deeper than {}", limits.max_depth),
                ));
                continue;
            }
            Err(JsonError::Invalid(detail)) => {
                outcome
                    .rejected
                    .push(reject(RejectReason::InvalidJson, truncate_detail(detail)));
                continue;
            }
        };
        if object.depth_exceeded {
            outcome.rejected.push(reject(
                RejectReason::TooDeep,
                format!("nesting deeper than {}", limits.max_depth),
            ));
            continue;
        }
        if object.known.message.is_none() {
            outcome.rejected.push(reject(
                RejectReason::MissingMessage,
                "no message, msg or log text".into(),
            ));
            continue;
        }
        if object.known.ts == Some(KnownTimestamp::Invalid) {
            outcome.rejected.push(reject(
                RejectReason::InvalidTimestamp,
                "ts is neither rfc 3339 nor an epoch number".into(),
            ));
            continue;
        }
        let accepted = u64::try_from(outcome.events.len()).unwrap_or(u64::MAX);
        let meta = FrameMeta {
            seq: Seq(base.seq.0.saturating_add(accepted)),
            ..*base
        };
        let mut event = Event::unparsed(line, &meta);
        apply_json_object(&mut event, object);
        event.flags.remove(EventFlags::PARSE_ERROR);
        outcome.events.push(event);
    }
    outcome
}

fn truncate_detail(mut detail: String) -> String {
    const MAX: usize = 160;
    if detail.len() > MAX {
        let mut cut = MAX;
        while !detail.is_char_boundary(cut) {
            cut -= 1;
        }
        detail.truncate(cut);
    }
    format!("invalid json: {detail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{FieldValue, Format, Severity, Source, Timestamp};

    fn base() -> FrameMeta {
        FrameMeta {
            seq: Seq(100),
            received_at: Timestamp(1_000),
            peer: None,
            source: Source::HttpNdjson,
            flags: EventFlags::empty(),
        }
    }

    fn decode(body: &'static str) -> NdjsonOutcome {
        decode_ndjson(
            Bytes::from_static(body.as_bytes()),
            &base(),
            &NdjsonLimits::default(),
            &ParseOptions::default(),
        )
    }

    fn reasons(outcome: &NdjsonOutcome) -> Vec<(usize, RejectReason)> {
        outcome
            .rejected
            .iter()
            .map(|rejection| (rejection.line, rejection.reason))
            .collect()
    }

    #[test]
    fn accepted_lines_get_consecutive_seqs_and_known_keys() {
        let outcome = decode(concat!(
            "{\"message\":\"a\",\"ts\":\"2024-01-02T03:04:05Z\",\"host\":\"h\",\"app\":\"x\",\"severity\":\"err\",\"facility\":\"auth\",\"user\":{\"id\":7}}\r\n",
            "\n",
            "\"just text\"\n",
            "{\"msg\":\"b\",\"ts\":1700000000123}",
        ));
        assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
        let [first, second, third] = &outcome.events[..] else {
            panic!("3 events")
        };
        assert_eq!(
            (first.seq, second.seq, third.seq),
            (Seq(100), Seq(101), Seq(102))
        );
        assert_eq!(first.format, Format::Json);
        assert_eq!(first.source, Source::HttpNdjson);
        assert_eq!(first.message_str(), "a");
        assert_eq!(first.host_str(), Some("h"));
        assert_eq!(first.app_str(), Some("x"));
        assert_eq!(first.severity, Some(Severity::Error));
        assert_eq!(first.facility.map(|facility| facility.name()), Some("auth"));
        assert_eq!(first.ts.to_rfc3339(), "2024-01-02T03:04:05Z");
        assert_eq!(first.field("user.id"), Some(&FieldValue::I64(7)));
        assert!(!first.flags.contains(EventFlags::TS_FROM_RECEIVE));
        assert_eq!(&first.raw[..1], b"{");
        assert!(!first.raw.ends_with(b"\r"));
        assert_eq!(second.message_str(), "just text");
        assert_eq!(second.ts, Timestamp(1_000));
        assert_eq!(third.ts, Timestamp(1_700_000_000_123_000_000));
    }

    #[test]
    fn rejections_table() {
        let outcome = decode(concat!(
            "{\"message\":\"ok\"}\n",
            "{not json\n",
            "{\"level\":\"info\"}\n",
            "{\"message\":\"x\",\"ts\":\"last tuesday\"}\n",
            "{\"message\":\"x\",\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{\"h\":{\"i\":{\"j\":{\"k\":{\"l\":{\"m\":{\"n\":{\"o\":{\"p\":{\"q\":1}}}}}}}}}}}}}}}}}\n",
            "[1,2]\n",
            "42\n",
        ));
        assert_eq!(outcome.events.len(), 1);
        assert_eq!(
            reasons(&outcome),
            vec![
                (2, RejectReason::InvalidJson),
                (3, RejectReason::MissingMessage),
                (4, RejectReason::InvalidTimestamp),
                (5, RejectReason::TooDeep),
                (6, RejectReason::InvalidJson),
                (7, RejectReason::InvalidJson),
            ]
        );
    }

    #[test]
    fn long_line_is_rejected_and_following_lines_still_decode() {
        let limits = NdjsonLimits {
            max_line_bytes: 20,
            ..NdjsonLimits::default()
        };
        let body =
            Bytes::from_static(b"{\"message\":\"this line is too long\"}\n{\"message\":\"ok\"}\n");
        let outcome = decode_ndjson(body, &base(), &limits, &ParseOptions::default());
        assert_eq!(reasons(&outcome), vec![(1, RejectReason::LineTooLong)]);
        assert_eq!(outcome.events.len(), 1);
        assert_eq!(outcome.events[0].seq, Seq(100));
    }

    #[test]
    fn field_limit_truncates_without_rejecting() {
        let limits = NdjsonLimits {
            max_fields: 1,
            ..NdjsonLimits::default()
        };
        let body = Bytes::from_static(b"{\"message\":\"m\",\"a\":1,\"b\":2}");
        let outcome = decode_ndjson(body, &base(), &limits, &ParseOptions::default());
        assert_eq!(outcome.events[0].fields.len(), 1);
        assert!(
            outcome.events[0]
                .flags
                .contains(EventFlags::FIELDS_TRUNCATED)
        );
    }

    #[test]
    fn invalid_utf8_line_is_rejected() {
        let body = Bytes::from_static(b"{\"message\":\"\xff\"}\n");
        let outcome = decode_ndjson(
            body,
            &base(),
            &NdjsonLimits::default(),
            &ParseOptions::default(),
        );
        assert_eq!(reasons(&outcome), vec![(1, RejectReason::InvalidJson)]);
    }
}
