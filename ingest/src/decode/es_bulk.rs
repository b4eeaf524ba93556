//! Elasticsearch `_bulk` bodies: action/metadata lines, each `index` or `create` followed by
//! its document line (NDJSON; the body should end with a line feed, a missing last one is
//! tolerated). Blank lines are skipped.
//!
//! Every action becomes one [`BulkItem`], in body order, so that the response lists one result
//! per action as Elasticsearch does. A good `index`/`create` item becomes one canonical NDJSON
//! line (see [`super::canonical`]) in [`BulkRequest::lines`]; a bad item is rejected on its own
//! with a reason and an Elasticsearch error type, and the others are kept:
//!
//! | input | reason | error type |
//! |---|---|---|
//! | action line not JSON, or not one `{"action":{…}}` member | `unsupported_action` | `illegal_argument_exception` |
//! | `update`, `delete`, or an unknown action | `unsupported_action` | `illegal_argument_exception` |
//! | `index`/`create` as the last line | `missing_document` | `action_request_validation_exception` |
//! | no `_index` in the action nor in the path | `missing_index` | `action_request_validation_exception` |
//! | document not JSON, or not an object | `invalid_json` | `mapper_parsing_exception` |
//! | document longer than `max_line_bytes` | `line_too_long` | `mapper_parsing_exception` |
//!
//! Which line is a document: the line after `index`, `create` and `update` is always their
//! document; `delete` has none. After a malformed or unknown action line, the next line is taken
//! as its document unless it is itself a well-formed action line, so that one bad line never
//! shifts the pairs that follow it. Decoding never fails as a whole and never panics.

use serde_json::{Map, Value};

use super::canonical::{LineWriter, Preset, clip, write_document_keys};
use crate::stats::RejectReason;

/// The longest `_index` or `_id` kept; longer ones are cut (Elasticsearch allows 255 bytes for
/// an index name and 512 for an id).
const MAX_NAME_BYTES: usize = 512;
/// The longest error detail returned to the sender.
const MAX_DETAIL_BYTES: usize = 200;

/// A decoded `_bulk` body.
#[derive(Debug, Default)]
pub struct BulkRequest {
    /// One canonical NDJSON line per item whose outcome is [`BulkOutcome::Line`], in order,
    /// separated by line feeds.
    pub lines: Vec<u8>,
    /// One item per action line, in body order.
    pub items: Vec<BulkItem>,
}

/// One action of a `_bulk` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkItem {
    /// The action as the sender named it (`index`, `create`, `update`, …; `index` when the line
    /// could not be read), echoed as the key of the response item.
    pub action: String,
    /// `_index` of the action, else of the path.
    pub index: Option<String>,
    /// `_id` of the action, when given.
    pub id: Option<String>,
    pub outcome: BulkOutcome,
}

/// What became of one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkOutcome {
    /// The next line of [`BulkRequest::lines`] holds its document.
    Line,
    /// Rejected at this stage.
    Rejected(ItemError),
}

/// Why an item was rejected, for the stats and for the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemError {
    pub reason: RejectReason,
    /// The Elasticsearch error type (`mapper_parsing_exception`, …).
    pub error_type: &'static str,
    /// A short explanation.
    pub detail: String,
}

impl ItemError {
    fn new(reason: RejectReason, error_type: &'static str, detail: String) -> ItemError {
        ItemError {
            reason,
            error_type,
            detail: clip(&detail, MAX_DETAIL_BYTES).to_string(),
        }
    }
}

/// An action line read as one.
#[derive(Debug)]
struct Action {
    name: String,
    index: Option<String>,
    id: Option<String>,
}

/// Decodes a `_bulk` body. `default_index` is the `{index}` of `/{index}/_bulk`. Documents
/// longer than `max_line_bytes` are rejected without being parsed.
pub fn decode_bulk(body: &[u8], default_index: Option<&str>, max_line_bytes: usize) -> BulkRequest {
    let mut request = BulkRequest::default();
    let mut lines = body
        .split(|byte| *byte == b'\n')
        .map(trim_line)
        .filter(|line| !line.is_empty())
        .enumerate()
        .peekable();
    while let Some((number, line)) = lines.next() {
        let line_number = number + 1;
        let action = match parse_action(line) {
            Ok(action) => action,
            Err(detail) => {
                let takes_document = lines
                    .peek()
                    .is_some_and(|(_, next)| parse_action(next).is_err());
                if takes_document {
                    lines.next();
                }
                request.items.push(BulkItem {
                    action: "index".to_string(),
                    index: default_index.map(str::to_string),
                    id: None,
                    outcome: BulkOutcome::Rejected(ItemError::new(
                        RejectReason::UnsupportedAction,
                        "illegal_argument_exception",
                        format!("malformed action/metadata line [{line_number}]: {detail}"),
                    )),
                });
                continue;
            }
        };
        let index = action
            .index
            .or_else(|| default_index.map(|name| clip(name, MAX_NAME_BYTES).to_string()));
        let mut item = BulkItem {
            action: action.name,
            index,
            id: action.id,
            outcome: BulkOutcome::Line,
        };
        match item.action.as_str() {
            "index" | "create" => {}
            "delete" => {
                item.outcome = unsupported(&item.action);
                request.items.push(item);
                continue;
            }
            _ => {
                // `update` has a document line; an unknown action is taken to have one.
                lines.next();
                item.outcome = unsupported(&item.action);
                request.items.push(item);
                continue;
            }
        }
        let Some((_, document)) = lines.next() else {
            item.outcome = BulkOutcome::Rejected(ItemError::new(
                RejectReason::MissingDocument,
                "action_request_validation_exception",
                format!(
                    "the {} action on line [{line_number}] has no document line",
                    item.action
                ),
            ));
            request.items.push(item);
            continue;
        };
        let Some(index) = item.index.clone() else {
            item.outcome = BulkOutcome::Rejected(ItemError::new(
                RejectReason::MissingIndex,
                "action_request_validation_exception",
                "index is missing".to_string(),
            ));
            request.items.push(item);
            continue;
        };
        item.outcome = match write_document(
            &mut request.lines,
            document,
            &index,
            item.id.as_deref(),
            max_line_bytes,
        ) {
            Ok(()) => BulkOutcome::Line,
            Err(error) => BulkOutcome::Rejected(error),
        };
        request.items.push(item);
    }
    request
}

fn unsupported(action: &str) -> BulkOutcome {
    BulkOutcome::Rejected(ItemError::new(
        RejectReason::UnsupportedAction,
        "illegal_argument_exception",
        format!("the {action} action is not supported: cairn only appends (use index or create)"),
    ))
}

/// A line without its trailing carriage return and surrounding whitespace.
fn trim_line(line: &[u8]) -> &[u8] {
    line.trim_ascii()
}

/// Reads an action line: one member whose value is an object with optional `_index` and `_id`.
/// Elasticsearch names: `index`, `create`, `update`, `delete`; anything else is returned too
/// (and rejected by the caller) as long as the line has that shape.
fn parse_action(line: &[u8]) -> Result<Action, String> {
    let map: Map<String, Value> =
        serde_json::from_slice(line).map_err(|error| format!("not a json object ({error})"))?;
    let mut members = map.into_iter();
    let (Some((name, metadata)), None) = (members.next(), members.next()) else {
        return Err("expected exactly one action".to_string());
    };
    let Value::Object(metadata) = metadata else {
        return Err(format!(
            "the metadata of [{}] is not an object",
            clip(&name, 64)
        ));
    };
    let name_of = |key: &str| match metadata.get(key) {
        Some(Value::String(text)) => Some(clip(text, MAX_NAME_BYTES).to_string()),
        Some(Value::Number(number)) => Some(number.to_string()),
        _ => None,
    };
    Ok(Action {
        index: name_of("_index"),
        id: name_of("_id"),
        name: clip(&name, 64).to_string(),
    })
}

/// Validates one document and appends its canonical line.
fn write_document(
    out: &mut Vec<u8>,
    document: &[u8],
    index: &str,
    id: Option<&str>,
    max_line_bytes: usize,
) -> Result<(), ItemError> {
    let mapper_error = |reason, detail| ItemError::new(reason, "mapper_parsing_exception", detail);
    if document.len() > max_line_bytes {
        return Err(mapper_error(
            RejectReason::LineTooLong,
            format!(
                "document is {} bytes, the limit is {max_line_bytes}",
                document.len()
            ),
        ));
    }
    let text = std::str::from_utf8(document).map_err(|_| {
        mapper_error(
            RejectReason::InvalidJson,
            "document is not valid utf-8".into(),
        )
    })?;
    let map = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return Err(mapper_error(
                RejectReason::InvalidJson,
                "failed to parse: the document is not a json object".into(),
            ));
        }
        Err(error) => {
            return Err(mapper_error(
                RejectReason::InvalidJson,
                format!("failed to parse: {error}"),
            ));
        }
    };
    let mut line = LineWriter::begin(out);
    write_document_keys(&mut line, text, &map, Preset::default());
    line.string("index", index);
    if let Some(id) = id {
        line.string("_id", id);
    }
    line.members_of(text);
    line.finish();
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::decode::ndjson::{NdjsonLimits, decode_ndjson};
    use crate::event::{EventFlags, FieldValue, FrameMeta, Seq, Severity, Source, Timestamp};
    use crate::parse::ParseOptions;

    fn decode(body: &str) -> BulkRequest {
        decode_bulk(body.as_bytes(), Some("default-index"), 64 * 1024)
    }

    fn outcomes(request: &BulkRequest) -> Vec<Result<&str, RejectReason>> {
        request
            .items
            .iter()
            .map(|item| match &item.outcome {
                BulkOutcome::Line => Ok(item.action.as_str()),
                BulkOutcome::Rejected(error) => Err(error.reason),
            })
            .collect()
    }

    fn text_field<'a>(event: &'a crate::Event, name: &str) -> Option<&'a str> {
        match event.field(name) {
            Some(FieldValue::Text(text)) => Some(event.text(text)),
            _ => None,
        }
    }

    fn line_count(request: &BulkRequest) -> usize {
        if request.lines.is_empty() {
            0
        } else {
            request.lines.split(|byte| *byte == b'\n').count()
        }
    }

    #[test]
    fn documents_become_events_with_index_and_ecs_fields() {
        let request = decode(concat!(
            "{\"index\":{\"_index\":\"logs-web\"}}\n",
            "{\"@timestamp\":\"2024-05-01T12:00:00Z\",\"host\":{\"name\":\"web1\"},\"log\":{\"level\":\"error\"},\"service\":{\"name\":\"shop\"},\"message\":\"payment failed\",\"order\":{\"id\":7}}\n",
            "{\"create\":{\"_id\":\"abc\"}}\n",
            "{\"message\":\"second\"}\n",
        ));
        assert_eq!(outcomes(&request), vec![Ok("index"), Ok("create")]);
        assert_eq!(request.items[1].index.as_deref(), Some("default-index"));
        assert_eq!(request.items[1].id.as_deref(), Some("abc"));
        let base = FrameMeta {
            seq: Seq(1),
            received_at: Timestamp(5),
            peer: None,
            source: Source::HttpElastic,
            flags: EventFlags::empty(),
        };
        let decoded = decode_ndjson(
            Bytes::from(request.lines),
            &base,
            &NdjsonLimits::default(),
            &ParseOptions::default(),
        );
        assert!(decoded.rejected.is_empty(), "{:?}", decoded.rejected);
        let [first, second] = &decoded.events[..] else {
            panic!("two events")
        };
        assert_eq!(first.message_str(), "payment failed");
        assert_eq!(first.host_str(), Some("web1"));
        assert_eq!(first.app_str(), Some("shop"));
        assert_eq!(first.severity, Some(Severity::Error));
        assert_eq!(first.ts.to_rfc3339(), "2024-05-01T12:00:00Z");
        assert_eq!(first.field("order.id"), Some(&FieldValue::I64(7)));
        assert_eq!(text_field(first, "index"), Some("logs-web"));
        assert_eq!(text_field(first, "host.name"), Some("web1"));
        assert_eq!(text_field(second, "_id"), Some("abc"));
        assert_eq!(text_field(second, "index"), Some("default-index"));
    }

    #[test]
    fn bad_items_are_rejected_one_by_one() {
        let request = decode(concat!(
            "{\"index\":{}}\n",
            "{not json\n",
            "{\"index\":{}}\n",
            "[1,2]\n",
            "{\"delete\":{\"_id\":\"1\"}}\n",
            "{\"update\":{\"_id\":\"1\"}}\n",
            "{\"doc\":{\"a\":1}}\n",
            "{\"frobnicate\":{}}\n",
            "{\"message\":\"doc of the unknown action\"}\n",
            "garbage action\n",
            "{\"index\":{}}\n",
            "{\"message\":\"kept\"}\n",
            "{\"index\":{}}",
        ));
        assert_eq!(
            outcomes(&request),
            vec![
                Err(RejectReason::InvalidJson),
                Err(RejectReason::InvalidJson),
                Err(RejectReason::UnsupportedAction),
                Err(RejectReason::UnsupportedAction),
                Err(RejectReason::UnsupportedAction),
                Err(RejectReason::UnsupportedAction),
                Ok("index"),
                Err(RejectReason::MissingDocument),
            ]
        );
        assert_eq!(line_count(&request), 1);
        assert!(String::from_utf8_lossy(&request.lines).contains("kept"));
    }

    #[test]
    fn missing_index_and_long_documents_are_item_errors() {
        let request = decode_bulk(
            b"{\"index\":{}}\n{\"message\":\"m\"}\n{\"index\":{\"_index\":\"i\"}}\n{\"message\":\"this is too long\"}\n",
            None,
            20,
        );
        assert_eq!(
            outcomes(&request),
            vec![
                Err(RejectReason::MissingIndex),
                Err(RejectReason::LineTooLong)
            ]
        );
        let BulkOutcome::Rejected(error) = &request.items[0].outcome else {
            panic!("rejected")
        };
        assert_eq!(error.error_type, "action_request_validation_exception");
    }

    #[test]
    fn crlf_and_blank_lines_are_tolerated() {
        let request = decode("\r\n{\"index\":{}}\r\n\r\n{\"message\":\"a\"}\r\n");
        assert_eq!(outcomes(&request), vec![Ok("index")]);
    }

    proptest::proptest! {
        #[test]
        fn any_body_gives_one_outcome_per_action_and_one_line_per_kept_item(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)
        ) {
            let request = decode_bulk(&body, Some("i"), 256);
            let kept = request.items.iter().filter(|item| item.outcome == BulkOutcome::Line).count();
            proptest::prop_assert_eq!(line_count(&request), kept);
        }

        #[test]
        fn any_document_line_is_kept_or_rejected_and_kept_lines_are_valid_json(
            document in "[ -~]{0,80}",
            action in proptest::sample::select(vec!["index", "create", "update", "delete", "x"]),
        ) {
            let body = format!("{{\"{action}\":{{}}}}\n{document}\n");
            let request = decode_bulk(body.as_bytes(), Some("i"), 1024);
            proptest::prop_assert!(!request.items.is_empty());
            for line in request.lines.split(|byte| *byte == b'\n').filter(|line| !line.is_empty()) {
                let value: Result<Value, _> = serde_json::from_slice(line);
                proptest::prop_assert!(value.is_ok(), "{}", String::from_utf8_lossy(line));
            }
        }
    }
}
