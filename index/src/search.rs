//! Search requests, the newest-first collector, cursors and the hits returned to the API.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::Ipv6Addr;

use cairn_ingest::{Seq, Timestamp};
use serde::{Deserialize, Serialize};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::schema::TantivyDocument;
use tantivy::schema::document::CompactDocValue;
use tantivy::schema::document::{ReferenceValue, ReferenceValueLeaf, Value};
use tantivy::{DateTime, DocAddress, DocId, Score, SegmentOrdinal, SegmentReader};

use crate::aggregation::AggregationRequest;
use crate::error::IndexError;
use crate::schema::{self, EventFields};

/// Most events one search returns; larger limits are clamped.
pub const MAX_SEARCH_LIMIT: usize = 1000;

/// One search: a query, an event-time range, a page and optional aggregations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchRequest {
    /// tantivy query syntax over `message` by default; empty (or blank) matches every event.
    pub query: String,
    /// Inclusive lower bound on event time `ts`.
    pub from: Option<Timestamp>,
    /// Exclusive upper bound on event time `ts`.
    pub to: Option<Timestamp>,
    /// Events to return, clamped to [`MAX_SEARCH_LIMIT`]. Zero returns only `total`.
    pub limit: usize,
    /// `next_cursor` of a previous page: only events strictly after it (older) are returned.
    pub cursor: Option<String>,
    /// Aggregations over every event that matches the query and the time range (the cursor and
    /// the limit do not restrict them).
    pub aggregations: Option<AggregationRequest>,
    /// Oldest first instead of newest first (cursors of one order do not work in the other).
    pub oldest_first: bool,
}

/// One page of results, newest first by `(ts, seq)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResponse {
    /// Events that match the query and the time range, whatever the cursor and limit.
    pub total: u64,
    pub events: Vec<EventHit>,
    /// Present when more events follow this page; pass it back as [`SearchRequest::cursor`].
    pub next_cursor: Option<String>,
    /// The results of [`SearchRequest::aggregations`], Elasticsearch-shaped (see
    /// [`AggregationRequest`]); absent when none were asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregations: Option<serde_json::Value>,
}

/// An event as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventHit {
    pub seq: u64,
    /// Event time, RFC 3339 UTC.
    pub ts: String,
    /// Receive time, RFC 3339 UTC.
    pub received_at: String,
    pub host: Option<String>,
    pub app: Option<String>,
    pub procid: Option<String>,
    pub msgid: Option<String>,
    /// Keyword (`err`, `info`…).
    pub severity: Option<String>,
    /// Keyword (`auth`, `local0`…).
    pub facility: Option<String>,
    pub message: String,
    /// Key/value fields; RFC 5424 structured data under `sd.<SD-ID>.<PARAM>`.
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// Ids of the signatures (rules) that matched the event (`signature:<id>`, exact).
    pub signatures: Vec<String>,
    /// Titles of those rules, same order (`rule:ssh`, `rule:"brute force"`: words, any case).
    #[serde(default)]
    pub rules: Vec<String>,
    /// Sender address, `ip:port` (`[v6]:port` for IPv6).
    pub peer: Option<String>,
    /// Quality flags (`parse_error`, `truncated`…).
    pub flags: Vec<String>,
    pub format: String,
    pub source: String,
    /// The frame as received.
    pub raw: String,
}

/// A position in the newest-first order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct SortKey {
    pub ts: i64,
    pub seq: u64,
}

impl SortKey {
    /// The cursor text: `<ts nanos>_<seq>`. Callers treat it as opaque.
    pub(crate) fn to_cursor(self) -> String {
        format!("{}_{}", self.ts, self.seq)
    }

    pub(crate) fn from_cursor(cursor: &str) -> Result<SortKey, IndexError> {
        let invalid = || IndexError::BadQuery(format!("invalid cursor `{cursor}`"));
        let (ts, seq) = cursor.split_once('_').ok_or_else(invalid)?;
        Ok(SortKey {
            ts: ts.parse().map_err(|_| invalid())?,
            seq: seq.parse().map_err(|_| invalid())?,
        })
    }
}

/// Collects the `limit` newest matches (by `ts` then `seq`, both descending) that come strictly
/// after `after`, reading only the `ts` and `seq` fast fields, and counts all matches.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewestFirst {
    pub limit: usize,
    pub after: Option<SortKey>,
    /// Collect the oldest instead: keys are mirrored (`!ts`, `!seq`), which reverses their
    /// order, so the same code keeps the "largest" keys.
    pub oldest_first: bool,
}

/// What one segment (and, merged, the whole search) found.
#[derive(Debug, Default)]
pub(crate) struct NewestFirstFruit {
    /// All matches.
    pub total: u64,
    /// Matches strictly after the cursor (all matches without a cursor).
    pub after_cursor: u64,
    /// At most `limit` hits, newest first once merged.
    pub hits: Vec<(SortKey, DocAddress)>,
}

impl Collector for NewestFirst {
    type Fruit = NewestFirstFruit;
    type Child = NewestFirstSegment;

    fn for_segment(
        &self,
        segment_ord: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<NewestFirstSegment> {
        Ok(NewestFirstSegment {
            segment_ord,
            ts: segment.fast_fields().date(schema::TS)?,
            seq: segment.fast_fields().u64(schema::SEQ)?,
            limit: self.limit,
            after: self.after,
            oldest_first: self.oldest_first,
            total: 0,
            after_cursor: 0,
            heap: BinaryHeap::with_capacity(self.limit.min(MAX_SEARCH_LIMIT)),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<NewestFirstFruit>) -> tantivy::Result<NewestFirstFruit> {
        let mut merged = NewestFirstFruit::default();
        for fruit in fruits {
            merged.total += fruit.total;
            merged.after_cursor += fruit.after_cursor;
            merged.hits.extend(fruit.hits);
        }
        merged.hits.sort_unstable_by_key(|(key, _)| Reverse(*key));
        merged.hits.truncate(self.limit);
        Ok(merged)
    }
}

/// Per-segment state of [`NewestFirst`]: a min-heap of the best `limit` keys so far.
pub(crate) struct NewestFirstSegment {
    segment_ord: SegmentOrdinal,
    ts: Column<DateTime>,
    seq: Column<u64>,
    limit: usize,
    after: Option<SortKey>,
    oldest_first: bool,
    total: u64,
    after_cursor: u64,
    heap: BinaryHeap<Reverse<(SortKey, DocId)>>,
}

impl SegmentCollector for NewestFirstSegment {
    type Fruit = NewestFirstFruit;

    fn collect(&mut self, doc: DocId, _score: Score) {
        self.total += 1;
        let Some(ts) = self.ts.first(doc).map(DateTime::into_timestamp_nanos) else {
            return;
        };
        let ts = if self.oldest_first { !ts } else { ts };
        if self.after.is_some_and(|after| ts > after.ts) {
            return;
        }
        // Fast reject without reading `seq`: older than the oldest kept hit and clearly past the
        // cursor.
        let strictly_past_cursor = self.after.is_none_or(|after| ts < after.ts);
        let heap_full = self.heap.len() >= self.limit;
        let oldest_kept_ts = self.heap.peek().map(|Reverse((key, _))| key.ts);
        if strictly_past_cursor && heap_full && oldest_kept_ts.is_none_or(|oldest| ts < oldest) {
            self.after_cursor += 1;
            return;
        }
        let seq = self.seq.first(doc).unwrap_or(0);
        let key = SortKey {
            ts,
            seq: if self.oldest_first { !seq } else { seq },
        };
        if self.after.is_some_and(|after| key >= after) {
            return;
        }
        self.after_cursor += 1;
        if self.limit == 0 {
            return;
        }
        if self.heap.len() < self.limit {
            self.heap.push(Reverse((key, doc)));
        } else if let Some(mut oldest) = self.heap.peek_mut()
            && key > oldest.0.0
        {
            *oldest = Reverse((key, doc));
        }
    }

    fn harvest(self) -> NewestFirstFruit {
        let segment_ord = self.segment_ord;
        NewestFirstFruit {
            total: self.total,
            after_cursor: self.after_cursor,
            hits: self
                .heap
                .into_iter()
                .map(|Reverse((key, doc))| (key, DocAddress::new(segment_ord, doc)))
                .collect(),
        }
    }
}

fn nanos_to_rfc3339(value: Option<CompactDocValue<'_>>) -> String {
    let nanos = value
        .and_then(|value| value.as_datetime())
        .map_or(0, DateTime::into_timestamp_nanos);
    Timestamp(nanos).to_rfc3339()
}

fn string_of(value: Option<CompactDocValue<'_>>) -> Option<String> {
    value.and_then(|value| value.as_str()).map(str::to_owned)
}

/// Converts a stored JSON value back to `serde_json`.
fn to_json<'a>(value: CompactDocValue<'a>) -> serde_json::Value {
    match value.as_value() {
        ReferenceValue::Leaf(leaf) => match leaf {
            ReferenceValueLeaf::Null => serde_json::Value::Null,
            ReferenceValueLeaf::Str(text) => serde_json::Value::from(text),
            ReferenceValueLeaf::U64(number) => serde_json::Value::from(number),
            ReferenceValueLeaf::I64(number) => serde_json::Value::from(number),
            ReferenceValueLeaf::F64(number) => serde_json::Value::from(number),
            ReferenceValueLeaf::Bool(flag) => serde_json::Value::from(flag),
            ReferenceValueLeaf::Date(date) => {
                serde_json::Value::from(Timestamp(date.into_timestamp_nanos()).to_rfc3339())
            }
            ReferenceValueLeaf::IpAddr(ip) => serde_json::Value::from(ip_to_string(ip)),
            ReferenceValueLeaf::Facet(text) => serde_json::Value::from(text),
            ReferenceValueLeaf::Bytes(_)
            | ReferenceValueLeaf::Custom(_)
            | ReferenceValueLeaf::PreTokStr(_) => serde_json::Value::Null,
        },
        ReferenceValue::Array(items) => items.map(to_json).collect(),
        ReferenceValue::Object(entries) => serde_json::Value::Object(
            entries
                .map(|(key, value)| (key.to_owned(), to_json(value)))
                .collect(),
        ),
    }
}

fn ip_to_string(ip: Ipv6Addr) -> String {
    match ip.to_ipv4_mapped() {
        Some(v4) => v4.to_string(),
        None => ip.to_string(),
    }
}

/// Builds the API view of a stored document.
pub(crate) fn hit_from_document(document: &TantivyDocument, fields: &EventFields) -> EventHit {
    let all_strings = |field| {
        document
            .get_all(field)
            .filter_map(|value| value.as_str().map(str::to_owned))
            .collect()
    };
    let peer_ip = document
        .get_first(fields.peer)
        .and_then(|value| value.as_ip_addr());
    let peer_port = document
        .get_first(fields.peer_port)
        .and_then(|value| value.as_u64());
    let peer = peer_ip.map(|ip| {
        let ip_text = ip_to_string(ip);
        match peer_port {
            Some(port) if ip.to_ipv4_mapped().is_some() => format!("{ip_text}:{port}"),
            Some(port) => format!("[{ip_text}]:{port}"),
            None => ip_text,
        }
    });
    let fields_object = match document.get_first(fields.fields).map(to_json) {
        Some(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    EventHit {
        seq: document
            .get_first(fields.seq)
            .and_then(|value| value.as_u64())
            .unwrap_or(0),
        ts: nanos_to_rfc3339(document.get_first(fields.ts)),
        received_at: nanos_to_rfc3339(document.get_first(fields.received_at)),
        host: string_of(document.get_first(fields.host)),
        app: string_of(document.get_first(fields.app)),
        procid: string_of(document.get_first(fields.procid)),
        msgid: string_of(document.get_first(fields.msgid)),
        severity: string_of(document.get_first(fields.severity)),
        facility: string_of(document.get_first(fields.facility)),
        message: string_of(document.get_first(fields.message)).unwrap_or_default(),
        fields: fields_object,
        signatures: all_strings(fields.signature),
        rules: all_strings(fields.rule),
        peer,
        flags: all_strings(fields.flags),
        format: string_of(document.get_first(fields.format)).unwrap_or_default(),
        source: string_of(document.get_first(fields.source)).unwrap_or_default(),
        raw: string_of(document.get_first(fields.raw)).unwrap_or_default(),
    }
}

/// The largest `seq` of a segment set (used on restart).
pub(crate) fn max_seq(
    searcher: &tantivy::Searcher,
    dir: &std::path::Path,
) -> Result<Option<Seq>, IndexError> {
    let mut max: Option<u64> = None;
    for segment in searcher.segment_readers() {
        if segment.num_docs() == 0 {
            continue;
        }
        let column = segment
            .fast_fields()
            .u64(schema::SEQ)
            .map_err(|error| IndexError::from_runtime(dir, error))?;
        let segment_max = column.max_value();
        max = Some(max.map_or(segment_max, |current| current.max(segment_max)));
    }
    Ok(max.map(Seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_including_negative_timestamps() {
        for key in [
            SortKey { ts: 0, seq: 0 },
            SortKey {
                ts: -5_000_000_000,
                seq: 3,
            },
            SortKey {
                ts: i64::MAX,
                seq: u64::MAX,
            },
        ] {
            assert_eq!(SortKey::from_cursor(&key.to_cursor()).ok(), Some(key));
        }
    }

    #[test]
    fn garbage_cursor_is_a_bad_query() {
        for cursor in ["", "12", "a_b", "1_-2", "1_2_3"] {
            assert!(
                matches!(SortKey::from_cursor(cursor), Err(IndexError::BadQuery(_))),
                "{cursor}"
            );
        }
    }

    #[test]
    fn ipv4_peers_render_without_the_mapped_prefix() {
        let mapped = "10.0.0.1"
            .parse::<std::net::Ipv4Addr>()
            .expect("ip")
            .to_ipv6_mapped();
        assert_eq!(ip_to_string(mapped), "10.0.0.1");
        assert_eq!(ip_to_string(Ipv6Addr::LOCALHOST), "::1");
    }
}
