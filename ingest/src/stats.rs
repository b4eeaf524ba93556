//! Appliance counters. Updated per batch (not per event) with relaxed atomics; read by the API.
//!
//! Reconciliation: `received + replayed = indexed + dropped (all reasons) + rejected (all
//! reasons) + in flight`, where in flight is zero once queues are drained. `received` counts what
//! senders delivered to this process; `replayed` counts events read back from the WAL at start
//! (delivered to an earlier run and not yet indexed then), so that no event is counted as
//! received twice. All counters start at zero with the process.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::event::Source;
use crate::listeners::limits::Refusal;
use crate::tls::HandshakeFailure;

/// Why an event that was received is not indexed. Every drop is counted under one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// UDP datagram arrived while the pipeline queue was full.
    QueueFull,
    /// A frame longer than `max_frame_bytes` was discarded (TCP framing could not keep it).
    FrameTooLong,
    /// The appliance shut down before the event was processed (not acknowledged to any sender).
    Shutdown,
    /// The index refused the document (e.g. an I/O error while adding it).
    IndexError,
    /// The WAL could not take the batch (disk full, I/O error, stopped after a failed fsync):
    /// UDP datagrams, and a TCP connection's batch when the WAL has stopped for good.
    WalUnavailable,
    /// A replayed event whose WAL record the index already holds (not indexed twice).
    AlreadyIndexed,
    /// The event's time is older than the index retention (`[index] retention_days`).
    Expired,
}

impl DropReason {
    pub const ALL: [DropReason; 7] = [
        DropReason::QueueFull,
        DropReason::FrameTooLong,
        DropReason::Shutdown,
        DropReason::IndexError,
        DropReason::WalUnavailable,
        DropReason::AlreadyIndexed,
        DropReason::Expired,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::FrameTooLong => "frame_too_long",
            DropReason::Shutdown => "shutdown",
            DropReason::IndexError => "index_error",
            DropReason::WalUnavailable => "wal_unavailable",
            DropReason::AlreadyIndexed => "already_indexed",
            DropReason::Expired => "expired",
        }
    }
}

/// Why an HTTP-ingested line (an NDJSON line, an Elasticsearch `_bulk` item, a Splunk HEC event)
/// was rejected (answered to the sender, never indexed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The line is neither a JSON object nor a JSON string.
    InvalidJson,
    /// The object has no `message` (nor `msg`/`log`) text.
    MissingMessage,
    /// `ts` is present but neither RFC 3339 nor an epoch number.
    InvalidTimestamp,
    /// The line is longer than `max_line_bytes`.
    LineTooLong,
    /// JSON nesting deeper than the limit.
    TooDeep,
    /// A `_bulk` action that Cairn does not take (`update`, `delete`, or an unknown one).
    UnsupportedAction,
    /// A `_bulk` `index`/`create` action with no document line after it.
    MissingDocument,
    /// A `_bulk` action with no `_index`, on a path that names none.
    MissingIndex,
    /// A HEC event object with no `event` (or a null one).
    MissingEvent,
    /// A HEC event whose `event` is an empty string.
    BlankEvent,
    /// A HEC event whose `fields` is not a JSON object.
    InvalidFields,
}

impl RejectReason {
    pub const ALL: [RejectReason; 11] = [
        RejectReason::InvalidJson,
        RejectReason::MissingMessage,
        RejectReason::InvalidTimestamp,
        RejectReason::LineTooLong,
        RejectReason::TooDeep,
        RejectReason::UnsupportedAction,
        RejectReason::MissingDocument,
        RejectReason::MissingIndex,
        RejectReason::MissingEvent,
        RejectReason::BlankEvent,
        RejectReason::InvalidFields,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RejectReason::InvalidJson => "invalid_json",
            RejectReason::MissingMessage => "missing_message",
            RejectReason::InvalidTimestamp => "invalid_timestamp",
            RejectReason::LineTooLong => "line_too_long",
            RejectReason::TooDeep => "too_deep",
            RejectReason::UnsupportedAction => "unsupported_action",
            RejectReason::MissingDocument => "missing_document",
            RejectReason::MissingIndex => "missing_index",
            RejectReason::MissingEvent => "missing_event",
            RejectReason::BlankEvent => "blank_event",
            RejectReason::InvalidFields => "invalid_fields",
        }
    }
}

const SOURCES: [Source; 8] = [
    Source::SyslogUdp,
    Source::SyslogTcp,
    Source::HttpNdjson,
    Source::File,
    Source::HttpElastic,
    Source::HttpHec,
    Source::SyslogTls,
    Source::Relp,
];

/// The HTTP sources, whose rejections are also counted per source.
const HTTP_SOURCES: [Source; 3] = [Source::HttpNdjson, Source::HttpElastic, Source::HttpHec];

fn source_index(source: Source) -> usize {
    match source {
        Source::SyslogUdp => 0,
        Source::SyslogTcp => 1,
        Source::HttpNdjson => 2,
        Source::File => 3,
        Source::HttpElastic => 4,
        Source::HttpHec => 5,
        Source::SyslogTls => 6,
        Source::Relp => 7,
    }
}

/// All counters of one appliance. Shared as `Arc<Stats>`.
#[derive(Debug, Default)]
pub struct Stats {
    received: [AtomicU64; 8],
    received_bytes: [AtomicU64; 8],
    replayed: AtomicU64,
    parsed: AtomicU64,
    malformed: AtomicU64,
    truncated: AtomicU64,
    invalid_utf8: AtomicU64,
    fields_truncated: AtomicU64,
    indexed: AtomicU64,
    dropped: [AtomicU64; DropReason::ALL.len()],
    rejected: [AtomicU64; 11],
    /// Rejections by HTTP source (index into `HTTP_SOURCES`) and reason.
    rejected_by_source: [[AtomicU64; 11]; 3],
    batches: AtomicU64,
    commits: AtomicU64,
    connections_accepted: AtomicU64,
    connections_refused: AtomicU64,
    connections_refused_per_source: AtomicU64,
    connections_open: AtomicU64,
    connections_idle_closed: AtomicU64,
    http_throttled: AtomicU64,
    http_body_too_large: AtomicU64,
    http_unauthorized: AtomicU64,
    tls_handshake_failed: [AtomicU64; 5],
    relp_sessions: AtomicU64,
    relp_protocol_errors: AtomicU64,
    /// Connections to the HTTP listener.
    pub http_connections: ConnectionCounters,
}

/// Counters of one stream listener's connections.
#[derive(Debug, Default)]
pub struct ConnectionCounters {
    accepted: AtomicU64,
    open: AtomicU64,
    refused: AtomicU64,
    refused_per_source: AtomicU64,
    timed_out: AtomicU64,
}

impl ConnectionCounters {
    pub fn opened(&self) {
        add(&self.accepted, 1);
        add(&self.open, 1);
    }

    pub fn closed(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// A connection refused by a limit (it is counted once, under `refused`, and also under
    /// `refused_per_source` when that was the limit).
    pub fn refused(&self, refusal: Refusal) {
        add(&self.refused, 1);
        if refusal == Refusal::PerSource {
            add(&self.refused_per_source, 1);
        }
    }

    /// A connection closed because it sent nothing (or too little) for too long.
    pub fn timed_out(&self) {
        add(&self.timed_out, 1);
    }

    pub fn snapshot(&self) -> ConnectionSnapshot {
        ConnectionSnapshot {
            accepted: get(&self.accepted),
            open: get(&self.open),
            refused: get(&self.refused),
            refused_per_source: get(&self.refused_per_source),
            timed_out: get(&self.timed_out),
        }
    }
}

/// A copy of [`ConnectionCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ConnectionSnapshot {
    pub accepted: u64,
    pub open: u64,
    /// Refused by any limit, including `refused_per_source`.
    pub refused: u64,
    pub refused_per_source: u64,
    /// Closed for sending nothing, or a request head too slowly, within the timeout.
    pub timed_out: u64,
}

fn add(counter: &AtomicU64, n: u64) {
    if n != 0 {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

fn reject_index(reason: RejectReason) -> usize {
    RejectReason::ALL
        .iter()
        .position(|candidate| *candidate == reason)
        .unwrap_or(0)
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl Stats {
    pub fn new() -> Stats {
        Stats::default()
    }

    /// `events` events totalling `bytes` bytes arrived from `source`.
    pub fn record_received(&self, source: Source, events: u64, bytes: u64) {
        add(&self.received[source_index(source)], events);
        add(&self.received_bytes[source_index(source)], bytes);
    }

    /// `events` events were read back from the WAL at start (received by an earlier run).
    pub fn record_replayed(&self, events: u64) {
        add(&self.replayed, events);
    }

    /// Parse outcome of one batch.
    pub fn record_parsed(&self, parsed: u64, malformed: u64, truncated: u64, invalid_utf8: u64) {
        add(&self.parsed, parsed);
        add(&self.malformed, malformed);
        add(&self.truncated, truncated);
        add(&self.invalid_utf8, invalid_utf8);
        add(&self.batches, 1);
    }

    /// `events` events kept with only part of their JSON fields (over `max_json_fields` or
    /// `max_json_depth`; flagged `fields_truncated`).
    pub fn record_fields_truncated(&self, events: u64) {
        add(&self.fields_truncated, events);
    }

    pub fn record_indexed(&self, events: u64) {
        add(&self.indexed, events);
    }

    pub fn record_commit(&self) {
        add(&self.commits, 1);
    }

    pub fn record_dropped(&self, reason: DropReason, events: u64) {
        let index = DropReason::ALL
            .iter()
            .position(|candidate| *candidate == reason)
            .unwrap_or(0);
        add(&self.dropped[index], events);
    }

    pub fn record_rejected(&self, reason: RejectReason, events: u64) {
        add(&self.rejected[reject_index(reason)], events);
    }

    /// `events` events from the HTTP source `source` were rejected for `reason`: counted in the
    /// totals by reason and by source (a non-HTTP source only in the totals).
    pub fn record_rejected_from(&self, source: Source, reason: RejectReason, events: u64) {
        self.record_rejected(reason, events);
        if let Some(by_source) = HTTP_SOURCES
            .iter()
            .position(|candidate| *candidate == source)
            .and_then(|index| self.rejected_by_source.get(index))
        {
            add(&by_source[reject_index(reason)], events);
        }
    }

    pub fn connection_opened(&self) {
        add(&self.connections_accepted, 1);
        add(&self.connections_open, 1);
    }

    pub fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    /// A TCP connection refused by a limit (counted once under `connections_refused`, and also
    /// under `connections_refused_per_source` when that was the limit).
    pub fn connection_refused(&self, refusal: Refusal) {
        add(&self.connections_refused, 1);
        if refusal == Refusal::PerSource {
            add(&self.connections_refused_per_source, 1);
        }
    }

    pub fn connection_idle_closed(&self) {
        add(&self.connections_idle_closed, 1);
    }

    pub fn http_throttled(&self) {
        add(&self.http_throttled, 1);
    }

    pub fn http_body_too_large(&self) {
        add(&self.http_body_too_large, 1);
    }

    /// An HTTP ingest request was refused for a missing or wrong token.
    pub fn http_unauthorized(&self) {
        add(&self.http_unauthorized, 1);
    }

    /// A TLS handshake failed (the connection was closed before any frame was read).
    pub fn tls_handshake_failed(&self, reason: HandshakeFailure) {
        let index = HandshakeFailure::ALL
            .iter()
            .position(|candidate| *candidate == reason)
            .unwrap_or(0);
        add(&self.tls_handshake_failed[index], 1);
    }

    /// A RELP client opened a session (`open` answered `200 OK`).
    pub fn relp_session_opened(&self) {
        add(&self.relp_sessions, 1);
    }

    /// A RELP session was closed for a protocol error (bad frame, unknown command, oversized).
    pub fn relp_protocol_error(&self) {
        add(&self.relp_protocol_errors, 1);
    }

    pub fn indexed(&self) -> u64 {
        get(&self.indexed)
    }

    /// A consistent-enough copy for the API (each counter read once, relaxed).
    pub fn snapshot(&self) -> StatsSnapshot {
        let received_by_source = SOURCES
            .iter()
            .map(|source| {
                (
                    source.name(),
                    get(&self.received[source_index(*source)]),
                    get(&self.received_bytes[source_index(*source)]),
                )
            })
            .collect::<Vec<_>>();
        let dropped = DropReason::ALL
            .iter()
            .zip(&self.dropped)
            .map(|(reason, counter)| (reason.name(), get(counter)))
            .collect::<Vec<_>>();
        let rejected = RejectReason::ALL
            .iter()
            .zip(&self.rejected)
            .map(|(reason, counter)| (reason.name(), get(counter)))
            .collect::<Vec<_>>();
        let received: u64 = received_by_source.iter().map(|(_, events, _)| events).sum();
        let replayed = get(&self.replayed);
        let indexed = get(&self.indexed);
        let dropped_total: u64 = dropped.iter().map(|(_, n)| n).sum();
        let rejected_total: u64 = rejected.iter().map(|(_, n)| n).sum();
        let inputs = received + replayed;
        let outputs = indexed + dropped_total + rejected_total;
        StatsSnapshot {
            received,
            replayed,
            reconcile: Reconcile {
                inputs,
                outputs,
                in_flight: inputs.saturating_sub(outputs),
            },
            received_by_source: received_by_source
                .iter()
                .map(|(name, events, _)| (name.to_string(), *events))
                .collect(),
            received_bytes_by_source: received_by_source
                .iter()
                .map(|(name, _, bytes)| (name.to_string(), *bytes))
                .collect(),
            parsed: get(&self.parsed),
            malformed: get(&self.malformed),
            truncated: get(&self.truncated),
            invalid_utf8: get(&self.invalid_utf8),
            fields_truncated: get(&self.fields_truncated),
            indexed,
            dropped_total,
            dropped: dropped
                .iter()
                .map(|(name, n)| (name.to_string(), *n))
                .collect(),
            rejected_total,
            rejected: rejected
                .iter()
                .map(|(name, n)| (name.to_string(), *n))
                .collect(),
            batches: get(&self.batches),
            commits: get(&self.commits),
            connections_accepted: get(&self.connections_accepted),
            connections_refused: get(&self.connections_refused),
            connections_refused_per_source: get(&self.connections_refused_per_source),
            connections_open: get(&self.connections_open),
            connections_idle_closed: get(&self.connections_idle_closed),
            http_throttled: get(&self.http_throttled),
            http_body_too_large: get(&self.http_body_too_large),
            http_connections: self.http_connections.snapshot(),
            http_unauthorized: get(&self.http_unauthorized),
            rejected_by_source: HTTP_SOURCES
                .iter()
                .zip(&self.rejected_by_source)
                .map(|(source, counters)| {
                    let by_reason = RejectReason::ALL
                        .iter()
                        .zip(counters)
                        .map(|(reason, counter)| (reason.name().to_string(), get(counter)))
                        .collect();
                    (source.name().to_string(), by_reason)
                })
                .collect(),
            tls_handshake_failed: HandshakeFailure::ALL
                .iter()
                .zip(&self.tls_handshake_failed)
                .map(|(reason, counter)| (reason.name().to_string(), get(counter)))
                .collect(),
            relp_sessions: get(&self.relp_sessions),
            relp_protocol_errors: get(&self.relp_protocol_errors),
        }
    }
}

/// A point-in-time copy of [`Stats`], as served by `/api/v1/stats`.
#[derive(Debug, Clone, Serialize)]
pub struct StatsSnapshot {
    /// Events delivered by senders to this process (HTTP: accepted and rejected lines).
    pub received: u64,
    /// Events read back from the WAL at start, not counted in `received`.
    pub replayed: u64,
    /// `received + replayed` against `indexed + dropped_total + rejected_total`.
    pub reconcile: Reconcile,
    pub received_by_source: std::collections::BTreeMap<String, u64>,
    pub received_bytes_by_source: std::collections::BTreeMap<String, u64>,
    pub parsed: u64,
    pub malformed: u64,
    pub truncated: u64,
    pub invalid_utf8: u64,
    /// Events kept with only part of their JSON fields (flag `fields_truncated`).
    pub fields_truncated: u64,
    pub indexed: u64,
    pub dropped_total: u64,
    pub dropped: std::collections::BTreeMap<String, u64>,
    pub rejected_total: u64,
    pub rejected: std::collections::BTreeMap<String, u64>,
    pub batches: u64,
    pub commits: u64,
    pub connections_accepted: u64,
    pub connections_refused: u64,
    pub connections_refused_per_source: u64,
    pub connections_open: u64,
    pub connections_idle_closed: u64,
    pub http_throttled: u64,
    pub http_body_too_large: u64,
    pub http_connections: ConnectionSnapshot,
    /// HTTP ingest requests refused for a missing or wrong token (Splunk HEC).
    pub http_unauthorized: u64,
    /// HTTP rejections by source (`http_ndjson`, `http_elastic`, `http_hec`), then by reason.
    pub rejected_by_source:
        std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>,
    /// Failed TLS handshakes (syslog over TLS), by reason (`untrusted_certificate`, …).
    pub tls_handshake_failed: std::collections::BTreeMap<String, u64>,
    /// RELP sessions opened.
    pub relp_sessions: u64,
    /// RELP sessions closed for a protocol error.
    pub relp_protocol_errors: u64,
}

/// The reconciliation of the counters: once the queues are drained, `in_flight` is zero and
/// `inputs == outputs`. Read from relaxed counters, so a snapshot under load is approximate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Reconcile {
    /// `received + replayed`.
    pub inputs: u64,
    /// `indexed + dropped_total + rejected_total`.
    pub outputs: u64,
    /// `inputs - outputs` (zero when outputs are ahead, as a snapshot under load may be).
    pub in_flight: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_sums_reasons() {
        let stats = Stats::new();
        stats.record_received(Source::SyslogUdp, 10, 1000);
        stats.record_received(Source::HttpNdjson, 5, 500);
        stats.record_dropped(DropReason::QueueFull, 3);
        stats.record_dropped(DropReason::FrameTooLong, 1);
        stats.record_rejected(RejectReason::InvalidJson, 2);
        stats.record_indexed(9);
        let snapshot = stats.snapshot();
        assert_eq!(snapshot.received, 15);
        assert_eq!(snapshot.dropped_total, 4);
        assert_eq!(snapshot.dropped["queue_full"], 3);
        assert_eq!(snapshot.rejected_total, 2);
        assert_eq!(
            snapshot.received,
            snapshot.indexed + snapshot.dropped_total + snapshot.rejected_total
        );
        assert_eq!(snapshot.reconcile.in_flight, 0);
        stats.record_replayed(4);
        stats.record_dropped(DropReason::WalUnavailable, 1);
        let snapshot = stats.snapshot();
        assert_eq!(snapshot.reconcile.inputs, 19);
        assert_eq!(snapshot.reconcile.outputs, 16);
        assert_eq!(snapshot.reconcile.in_flight, 3);
        assert_eq!(snapshot.dropped["wal_unavailable"], 1);
    }

    #[test]
    fn rejections_are_counted_by_http_source() {
        let stats = Stats::new();
        stats.record_rejected_from(Source::HttpElastic, RejectReason::MissingDocument, 2);
        stats.record_rejected_from(Source::HttpHec, RejectReason::BlankEvent, 1);
        stats.record_rejected_from(Source::SyslogTcp, RejectReason::InvalidJson, 1);
        let snapshot = stats.snapshot();
        assert_eq!(snapshot.rejected_total, 4);
        assert_eq!(
            snapshot.rejected_by_source["http_elastic"]["missing_document"],
            2
        );
        assert_eq!(snapshot.rejected_by_source["http_hec"]["blank_event"], 1);
        assert_eq!(
            snapshot.rejected_by_source["http_ndjson"]["invalid_json"],
            0
        );
        assert!(!snapshot.rejected_by_source.contains_key("syslog_tcp"));
    }
}
