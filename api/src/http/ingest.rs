//! `POST /api/v1/ingest`: NDJSON events over HTTP.
//!
//! One event per line: a JSON object with `message` and optional `ts`, `host`, `app`, `severity`
//! (any other key becomes a field), or a bare JSON string. `Content-Encoding: gzip` is inflated up
//! to `max_decompressed_bytes` (a bomb is refused with 413 without being inflated further).
//! The answer counts accepted and rejected lines, with the reason for each rejected one.
//! When the pipeline is full the whole request is refused with 429 and `Retry-After` (nothing of
//! it was taken; the client retries it as is).

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cairn_ingest::batch::Work;
use cairn_ingest::decode::gzip::gunzip_limited;
use cairn_ingest::decode::ndjson::{NdjsonLimits, NdjsonOutcome, decode_ndjson};
use cairn_ingest::queue::PushError;
use cairn_ingest::stats::Stats;
use cairn_ingest::{EventFlags, FrameMeta, IngestError, Seq, Source, Timestamp};
use serde::Serialize;

use super::{ApiError, AppState};

/// Bodies larger than this are decoded on the blocking pool.
const INLINE_DECODE_BYTES: usize = 64 * 1024;
/// At most this many per-line errors are listed in a response (all are counted).
const MAX_LISTED_ERRORS: usize = 100;

#[derive(Debug, Serialize)]
pub(super) struct IngestResponse {
    accepted: usize,
    rejected: usize,
    errors: Vec<LineError>,
}

#[derive(Debug, Serialize)]
struct LineError {
    line: usize,
    reason: &'static str,
    message: String,
}

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
        let first = state.inner.seqs.allocate(accepted);
        for (offset, event) in events.iter_mut().enumerate() {
            event.seq = Seq(first.0 + offset as u64);
        }
        let bytes: usize = events.iter().map(|event| event.raw.len()).sum();
        match state.inner.work_queue.try_push(Work::Events(events)) {
            Ok(()) => stats.record_received(Source::HttpNdjson, accepted as u64, bytes as u64),
            Err(PushError::Full(_)) => {
                stats.http_throttled();
                return Err(ApiError::Throttled {
                    retry_after: limits.retry_after,
                });
            }
            Err(PushError::Closed(_)) => {
                return Err(ApiError::Unavailable("cairn is shutting down".to_string()));
            }
        }
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
