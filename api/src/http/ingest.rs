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

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cairn_ingest::batch::{RawBatch, RawFrame, Work, WorkInput};
use cairn_ingest::decode::gzip::gunzip_limited;
use cairn_ingest::decode::ndjson::{NdjsonLimits, NdjsonOutcome, decode_ndjson};
use cairn_ingest::listeners::WalSink;
use cairn_ingest::queue::BatchQueue;
use cairn_ingest::stats::{DropReason, Stats};
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
    let stats = &state.inner.stats;
    let limits = &state.inner.limits;
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            stats.http_body_too_large();
            ApiError::PayloadTooLarge(format!(
                "request body is larger than max_body_bytes ({} bytes)",
                limits.max_body_bytes
            ))
        } else {
            ApiError::BadRequest(rejection.body_text())
        }
    })?;
    let body = decode_content(&headers, body, limits.max_decompressed_bytes, stats)?;
    if state.inner.work_queue.is_closed() {
        return Err(ApiError::Unavailable("cairn is shutting down".to_string()));
    }

    let base = FrameMeta {
        seq: Seq(0),
        received_at: Timestamp::now(),
        peer: None,
        source: Source::HttpNdjson,
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
    if accepted > 0 {
        let queue = &state.inner.work_queue;
        if queue.len() >= queue.capacity() {
            stats.http_throttled();
            return Err(ApiError::Throttled {
                retry_after: limits.retry_after,
            });
        }
        let first = state.inner.seqs.allocate(accepted);
        for (offset, event) in events.iter_mut().enumerate() {
            event.seq = Seq(first.0 + offset as u64);
        }
        let logging = tokio::spawn(log_and_queue(
            state.inner.wal.clone(),
            queue.clone(),
            Arc::clone(stats),
            events,
            base.received_at,
        ));
        logging
            .await
            .map_err(|error| ApiError::Internal(format!("ingest task failed: {error}")))?
            .map_err(|error| wal_error(error, limits.retry_after))?;
    }
    stats.record_received(Source::HttpNdjson, rejected.len() as u64, 0);
    for rejection in &rejected {
        stats.record_rejected(rejection.reason, 1);
    }
    let status = if accepted == 0 && !rejected.is_empty() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let response = IngestResponse {
        accepted,
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
) -> Result<(), WalError> {
    let lines = RawBatch {
        source: Source::HttpNdjson,
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
        stats.record_received(Source::HttpNdjson, count as u64, bytes as u64);
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
