//! `POST /api/v1/ingest`: NDJSON events over HTTP.
//!
//! One event per line: a JSON object with `message` and optional `ts`, `host`, `app`, `severity`
//! (any other key becomes a field), or a bare JSON string. `Content-Encoding: gzip` is inflated up
//! to `max_decompressed_bytes` (a bomb is refused with 413 without being inflated further).
//! The answer counts accepted and rejected lines, with the reason for each rejected one.
//! When the pipeline is full the whole request is refused with 429 and `Retry-After` (nothing of
//! it was taken; the client retries it as is).
//!
//! At least once: the accepted lines are appended to the WAL (as `NdjsonLine` records, split
//! when larger than `max_record_bytes`) and the answer is 2xx only once they are durable under
//! the fsync policy; then they are queued, waiting for room if need be (once in the WAL they are
//! never refused). A full disk or an I/O error answers 503 with `Retry-After`, a WAL stopped for
//! good 503; in both cases the client retries the whole body (some of it may then be indexed
//! twice, which at-least-once allows). The WAL write and the queueing run in their own task, so
//! a client that hangs up cannot leave a record appended but never queued.
//!
//! The compatibility APIs (Elasticsearch `_bulk` in [`super::elastic`], Splunk HEC in
//! [`super::hec`]) rewrite their items into NDJSON lines and go through the same
//! [`read_body`] and [`ingest_lines`]: same limits, WAL, durability wait, backpressure and
//! counters, under their own source.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cairn_ingest::batch::{RawBatch, RawFrame, Work, WorkInput};
use cairn_ingest::decode::gzip::gunzip_limited;
use cairn_ingest::decode::ndjson::{LineRejection, NdjsonLimits, NdjsonOutcome, decode_ndjson};
use cairn_ingest::listeners::WalSink;
use cairn_ingest::queue::BatchQueue;
use cairn_ingest::stats::{DropReason, RejectReason, Stats};
use cairn_ingest::wal::{FrameFormat, WalError};
use cairn_ingest::{Event, EventFlags, FrameMeta, IngestError, Seq, Source, Timestamp};
use serde::Serialize;

use super::{ApiError, AppState};

/// Bodies larger than this are decoded on the blocking pool.
const INLINE_DECODE_BYTES: usize = 64 * 1024;
/// At most this many per-line errors are listed in a response (all are counted).
const MAX_LISTED_ERRORS: usize = 100;

/// How many lines were taken, and why the others were not.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct IngestResponse {
    accepted: usize,
    rejected: usize,
    errors: Vec<LineError>,
}

/// A rejected line.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct LineError {
    line: usize,
    reason: &'static str,
    message: String,
}

/// Ingests NDJSON events (one JSON object or string per line; gzip accepted).
#[utoipa::path(
    post,
    path = "/api/v1/ingest",
    tag = "events",
    request_body(
        content(
            (Option<String> = "application/x-ndjson"),
            (Option<String> = "text/plain"),
        ),
        description = "One event per line: an object with `message` (and optional `ts`, `host`, `app`, `severity`, other keys as fields) or a JSON string",
    ),
    responses(
        (status = 200, description = "Accepted (durable in the WAL); rejected lines listed", body = IngestResponse),
        (status = 400, description = "No line could be accepted", body = IngestResponse),
        (status = 413, description = "Body over max_body_bytes or max_decompressed_bytes", body = super::openapi::ErrorBody),
        (status = 415, description = "Unsupported Content-Encoding", body = super::openapi::ErrorBody),
        (status = 429, description = "The pipeline is full; retry after Retry-After", body = super::openapi::ErrorBody),
        (status = 503, description = "Storage unavailable or shutting down", body = super::openapi::ErrorBody),
        (status = 500, description = "Internal error", body = super::openapi::ErrorBody),
    ),
)]
pub(super) async fn ingest(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = read_body(&state, &headers, body)?;
    let outcome = ingest_lines(&state, Source::HttpNdjson, body).await?;
    let rejected = &outcome.rejected;
    let status = if outcome.accepted == 0 && !rejected.is_empty() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let response = IngestResponse {
        accepted: outcome.accepted,
        rejected: rejected.len(),
        errors: rejected
            .iter()
            .take(MAX_LISTED_ERRORS)
            .map(|rejection| LineError {
                line: rejection.line,
                reason: rejection.reason.name(),
                message: rejection.detail.clone(),
            })
            .collect(),
    };
    Ok((status, Json(response)).into_response())
}

/// The body of an ingest request, within the limits: over `max_body_bytes` → 413, gzip
/// inflated up to `max_decompressed_bytes` (413 beyond), 503 while shutting down. Shared by
/// every HTTP ingest route (NDJSON, Elasticsearch `_bulk`, Splunk HEC).
pub(super) fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, ApiError> {
    let stats = &state.inner.stats;
    let limits = &state.inner.limits;
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            stats.http_body_too_large();
            ApiError::PayloadTooLarge(format!(
                "request body is larger than max_body_bytes ({} bytes)",
                limits.max_body_bytes
            ))
        } else if super::serve::is_body_timeout(&rejection) {
            stats.http_connections.timed_out();
            ApiError::RequestTimeout(
                "the request body did not arrive within body_timeout_secs".to_string(),
            )
        } else {
            ApiError::BadRequest(rejection.body_text())
        }
    })?;
    let body = decode_content(headers, body, limits.max_decompressed_bytes, stats)?;
    if state.inner.work_queue.is_closed() {
        return Err(ApiError::Unavailable("cairn is shutting down".to_string()));
    }
    Ok(body)
}

/// What became of the NDJSON lines of one body (see [`ingest_lines`]).
#[derive(Debug)]
pub(super) struct LinesOutcome {
    /// The sequence number of the first accepted line; the others follow in line order.
    pub first_seq: Seq,
    pub accepted: usize,
    /// The rejected lines, in line order.
    pub rejected: Vec<LineRejection>,
}

impl LinesOutcome {
    /// The fate of each of the body's first `lines` non-blank lines, in order: the event's
    /// sequence number, or the line's rejection. For bodies without blank lines (the canonical
    /// lines of the compatibility APIs), line `n` of the body is item `n - 1`.
    pub fn per_line(&self, lines: usize) -> Vec<Result<Seq, &LineRejection>> {
        let mut rejected = self.rejected.iter().peekable();
        let mut next_seq = self.first_seq.0;
        (1..=lines)
            .map(
                |line| match rejected.next_if(|rejection| rejection.line == line) {
                    Some(rejection) => Err(rejection),
                    None => {
                        let seq = Seq(next_seq);
                        next_seq += 1;
                        Ok(seq)
                    }
                },
            )
            .collect()
    }
}

/// Decodes an NDJSON body, and makes its accepted lines durable in the WAL and queues them
/// (see the module docs), as events of `source`. Counts every line as received from `source`,
/// and every rejected line by reason.
///
/// # Errors
/// 429 ([`ApiError::Throttled`]) when the pipeline is full (nothing of the body was taken), 503
/// or 413 when the WAL refused (see [`wal_error`]).
pub(super) async fn ingest_lines(
    state: &AppState,
    source: Source,
    body: Bytes,
) -> Result<LinesOutcome, ApiError> {
    let stats = &state.inner.stats;
    let limits = &state.inner.limits;
    let base = FrameMeta {
        seq: Seq(0),
        received_at: Timestamp::now(),
        peer: None,
        source,
        flags: EventFlags::empty(),
    };
    let ndjson_limits = NdjsonLimits {
        max_line_bytes: limits.max_line_bytes,
        max_fields: state.inner.parse_options.max_json_fields,
        max_depth: state.inner.parse_options.max_json_depth,
    };
    let outcome = if body.len() <= INLINE_DECODE_BYTES {
        decode_ndjson(body, &base, &ndjson_limits, &state.inner.parse_options)
    } else {
        let options = state.inner.parse_options.clone();
        tokio::task::spawn_blocking(move || decode_ndjson(body, &base, &ndjson_limits, &options))
            .await
            .map_err(|error| ApiError::Internal(format!("decode task failed: {error}")))?
    };
    let NdjsonOutcome {
        mut events,
        rejected,
    } = outcome;

    let accepted = events.len();
    let mut first_seq = Seq(0);
    if accepted > 0 {
        let queue = &state.inner.work_queue;
        if queue.is_full() {
            stats.http_throttled();
            return Err(ApiError::Throttled {
                retry_after: limits.retry_after,
            });
        }
        first_seq = state.inner.seqs.allocate(accepted);
        for (offset, event) in events.iter_mut().enumerate() {
            event.seq = Seq(first_seq.0 + offset as u64);
        }
        let logging = tokio::spawn(log_and_queue(
            state.inner.wal.clone(),
            queue.clone(),
            Arc::clone(stats),
            events,
            base.received_at,
            source,
        ));
        logging
            .await
            .map_err(|error| ApiError::Internal(format!("ingest task failed: {error}")))?
            .map_err(|error| wal_error(error, limits.retry_after))?;
    }
    count_rejected(
        stats,
        source,
        rejected.iter().map(|rejection| rejection.reason),
    );
    Ok(LinesOutcome {
        first_seq,
        accepted,
        rejected,
    })
}

/// Counts items of `source` rejected before they became lines (or as lines): each is received
/// and rejected with its reason.
pub(super) fn count_rejected(
    stats: &Stats,
    source: Source,
    reasons: impl IntoIterator<Item = RejectReason>,
) {
    let mut count = 0u64;
    for reason in reasons {
        stats.record_rejected_from(source, reason, 1);
        count += 1;
    }
    stats.record_received(source, count, 0);
}

/// Appends the accepted events' lines to the WAL, waits until they are durable, and queues them.
/// Counts as received every event whose record was appended.
///
/// # Errors
/// The WAL's error when a record could not be appended or made durable. Records appended
/// before the failure are queued all the same (they are in the WAL; a retry by the client
/// duplicates them, which at-least-once allows).
async fn log_and_queue(
    wal: WalSink,
    queue: BatchQueue<Work>,
    stats: Arc<Stats>,
    events: Vec<Event>,
    received_at: Timestamp,
    source: Source,
) -> Result<(), WalError> {
    let lines = RawBatch {
        source,
        peer: None,
        peers: Vec::new(),
        received_at,
        first_seq: events.first().map_or(Seq(0), |event| event.seq),
        frames: events
            .iter()
            .map(|event| RawFrame {
                bytes: event.raw.clone(),
                flags: EventFlags::empty(),
            })
            .collect(),
    };
    let parts = lines.split_to_fit(wal.wal.options().max_record_bytes);
    let mut appended = Vec::with_capacity(parts.len());
    let mut failure = None;
    for part in &parts {
        match wal.wal.append(FrameFormat::NdjsonLine, part) {
            Ok(range) => appended.push((range, part.frames.len(), part.byte_len())),
            Err(error) => {
                failure = Some(error);
                break;
            }
        }
    }
    let durable = match appended.last() {
        Some((last, _, _)) => wal.wal.wait_durable(last.end).await,
        None => Ok(()),
    };
    let mut events = events.into_iter();
    for (range, count, bytes) in appended {
        let chunk: Vec<Event> = events.by_ref().take(count).collect();
        stats.record_received(source, count as u64, bytes as u64);
        if durable.is_err() {
            // Not known to be on disk: the client is told to retry; not indexed by this run.
            wal.skip(range);
            stats.record_dropped(DropReason::WalUnavailable, count as u64);
            continue;
        }
        let work = Work {
            range,
            input: WorkInput::Events(chunk),
        };
        if queue.push(work).await.is_err() {
            // Durable in the WAL: the next start replays it.
            stats.record_dropped(DropReason::Shutdown, count as u64);
        }
    }
    durable?;
    match failure {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// What the client is told when the WAL refused.
fn wal_error(error: WalError, retry_after: std::time::Duration) -> ApiError {
    match error {
        WalError::DiskFull { .. } | WalError::Io { .. } => ApiError::StorageUnavailable {
            message: format!("cannot store the events now: {error}"),
            retry_after,
        },
        WalError::RecordTooLarge { .. } => ApiError::PayloadTooLarge(error.to_string()),
        other => ApiError::Unavailable(format!("cannot store the events: {other}")),
    }
}

/// Applies `Content-Encoding` (gzip or identity).
fn decode_content(
    headers: &HeaderMap,
    body: Bytes,
    max_decompressed_bytes: usize,
    stats: &Stats,
) -> Result<Bytes, ApiError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|value| value.to_str().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default();
    match encoding.as_str() {
        "" | "identity" => Ok(body),
        "gzip" | "x-gzip" => {
            gunzip_limited(&body, max_decompressed_bytes).map_err(|error| match error {
                IngestError::TooLarge(message) => {
                    stats.http_body_too_large();
                    ApiError::PayloadTooLarge(message)
                }
                other => ApiError::BadRequest(other.to_string()),
            })
        }
        other => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Encoding `{other}` is not supported (use gzip or identity)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_line_numbers_accepted_lines_in_order_around_rejections() {
        let rejection = |line| LineRejection {
            line,
            reason: RejectReason::InvalidJson,
            detail: String::new(),
        };
        let outcome = LinesOutcome {
            first_seq: Seq(10),
            accepted: 3,
            rejected: vec![rejection(2), rejection(5)],
        };
        let fates: Vec<Result<u64, usize>> = outcome
            .per_line(5)
            .into_iter()
            .map(|fate| fate.map(|seq| seq.0).map_err(|rejection| rejection.line))
            .collect();
        assert_eq!(fates, vec![Ok(10), Err(2), Ok(11), Ok(12), Err(5)]);
    }
}
