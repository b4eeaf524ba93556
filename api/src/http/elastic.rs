//! The Elasticsearch-compatible API, for shippers and clients that write with `_bulk` (tested
//! with the official Python client):
//!
//! - `GET /` (and `HEAD /`) answers like an Elasticsearch 8 node (`version.number`, `tagline`);
//! - `POST|PUT /_bulk` and `/{index}/_bulk` take `index` and `create` actions (see
//!   [`cairn_ingest::decode::es_bulk`] for the body and how a document becomes an event) and
//!   answer one result per action, in order, as Elasticsearch does: `201 created` with an `_id`
//!   (the event's `seq` unless the action gave one), or the item's own error
//!   (`{"status":400,"error":{"type":"mapper_parsing_exception","reason":…}}`) with
//!   `"errors":true`; one bad item never fails the others.
//!
//! Every response of these routes, errors included, carries `X-Elastic-Product: Elasticsearch`
//! (the official clients refuse a server without it) and errors have Elasticsearch's shape
//! (`{"error":{"root_cause":[…],"type":…,"reason":…},"status":N}`): see [`EsError`] and
//! [`add_product_header`], which other Elasticsearch-compatible routes reuse.
//!
//! Ingest shares everything with `POST /api/v1/ingest` ([`super::ingest`]): body and line
//! limits, gzip, the WAL (the answer comes only once the accepted items are durable), 429 with
//! `Retry-After` when the pipeline is full, 503 when the WAL cannot write, and the counters
//! (source `http_elastic`).

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cairn_ingest::Source;
use cairn_ingest::decode::es_bulk::{BulkItem, BulkOutcome, BulkRequest, decode_bulk};
use cairn_ingest::stats::RejectReason;
use serde_json::{Value, json};

use super::ingest::{count_rejected, ingest_lines, read_body};
use super::{ApiError, AppState};

/// The header every Elasticsearch response carries, which the official clients check.
pub(crate) const PRODUCT_HEADER: HeaderName = HeaderName::from_static("x-elastic-product");
/// Its value.
pub(crate) const PRODUCT: HeaderValue = HeaderValue::from_static("Elasticsearch");
/// The Elasticsearch version Cairn answers as: clients of 8.x and 9.x accept it.
const COMPATIBLE_VERSION: &str = "8.17.0";
/// Bodies larger than this are decoded on the blocking pool.
const INLINE_DECODE_BYTES: usize = 64 * 1024;

/// Adds `X-Elastic-Product: Elasticsearch` to a response. Wrap Elasticsearch-compatible routes
/// with `.layer(axum::middleware::map_response(add_product_header))`.
pub(crate) async fn add_product_header(mut response: Response) -> Response {
    response.headers_mut().insert(PRODUCT_HEADER, PRODUCT);
    response
}

/// An error in Elasticsearch's shape, with its status (and `Retry-After` for 429 and 503).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EsError {
    pub status: StatusCode,
    /// Elasticsearch's error type (`illegal_argument_exception`, …).
    pub error_type: &'static str,
    pub reason: String,
    pub retry_after: Option<Duration>,
}

impl EsError {
    /// An error of `status` and `error_type`.
    pub(crate) fn new(status: StatusCode, error_type: &'static str, reason: String) -> EsError {
        EsError {
            status,
            error_type,
            reason,
            retry_after: None,
        }
    }
}

impl IntoResponse for EsError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(error = %self.reason, "elasticsearch-compatible request failed");
        }
        let cause = json!({"type": self.error_type, "reason": self.reason});
        let body = json!({
            "error": {"root_cause": [cause], "type": self.error_type, "reason": self.reason},
            "status": self.status.as_u16(),
        });
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(PRODUCT_HEADER, PRODUCT);
        if let Some(retry_after) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string())
        {
            headers.insert(header::RETRY_AFTER, value);
        }
        response
    }
}

impl From<ApiError> for EsError {
    fn from(error: ApiError) -> EsError {
        let reason = error.to_string();
        let (status, error_type, retry_after) = match error {
            ApiError::BadRequest(_) | ApiError::BadQuery(_) => {
                (StatusCode::BAD_REQUEST, "illegal_argument_exception", None)
            }
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "resource_not_found_exception", None),
            ApiError::MethodNotAllowed(_) => (
                StatusCode::METHOD_NOT_ALLOWED,
                "illegal_argument_exception",
                None,
            ),
            ApiError::PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "content_too_long_exception",
                None,
            ),
            ApiError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "media_type_header_exception",
                None,
            ),
            ApiError::RequestTimeout(_) => (
                StatusCode::REQUEST_TIMEOUT,
                "elasticsearch_timeout_exception",
                None,
            ),
            ApiError::Throttled { retry_after } | ApiError::RateLimited { retry_after, .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "es_rejected_execution_exception",
                Some(retry_after),
            ),
            ApiError::Unauthorized { .. } => (StatusCode::UNAUTHORIZED, "security_exception", None),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "security_exception", None),
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable_shards_exception",
                None,
            ),
            ApiError::StorageUnavailable { retry_after, .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable_shards_exception",
                Some(retry_after),
            ),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "exception", None),
        };
        EsError {
            status,
            error_type,
            reason,
            retry_after,
        }
    }
}

/// `GET /`: who answers, as an Elasticsearch node would.
pub(super) async fn node_info() -> Json<Value> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "cairn".to_string());
    let uuid = {
        use std::hash::Hasher as _;
        let mut hasher = cairn_ingest::hash::FnvHasher::default();
        hasher.write(name.as_bytes());
        format!("cairn-{:016x}", hasher.finish())
    };
    Json(json!({
        "name": name,
        "cluster_name": "cairn",
        "cluster_uuid": uuid,
        "version": {
            "number": COMPATIBLE_VERSION,
            "build_flavor": "default",
            "build_type": "cairn",
            "build_hash": env!("CARGO_PKG_VERSION"),
            "build_snapshot": false,
            "lucene_version": "9.12.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0",
        },
        "tagline": "You Know, for Search",
    }))
}

pub(super) async fn bulk(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, EsError> {
    bulk_request(state, None, headers, body).await
}

pub(super) async fn bulk_into(
    State(state): State<AppState>,
    Path(index): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, EsError> {
    bulk_request(state, Some(index), headers, body).await
}

async fn bulk_request(
    state: AppState,
    default_index: Option<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, EsError> {
    let started = Instant::now();
    let body = read_body(&state, &headers, body)?;
    let max_line_bytes = state.inner.limits.max_line_bytes;
    let request = if body.len() <= INLINE_DECODE_BYTES {
        decode_bulk(&body, default_index.as_deref(), max_line_bytes)
    } else {
        tokio::task::spawn_blocking(move || {
            decode_bulk(&body, default_index.as_deref(), max_line_bytes)
        })
        .await
        .map_err(|error| ApiError::Internal(format!("decode task failed: {error}")))?
    };
    if request.items.is_empty() {
        return Err(EsError::new(
            StatusCode::BAD_REQUEST,
            "action_request_validation_exception",
            "Validation Failed: 1: no requests added;".to_string(),
        ));
    }
    let BulkRequest { lines, items } = request;
    let line_count = items
        .iter()
        .filter(|item| item.outcome == BulkOutcome::Line)
        .count();
    let outcome = ingest_lines(&state, Source::HttpElastic, Bytes::from(lines)).await?;
    count_rejected(
        &state.inner.stats,
        Source::HttpElastic,
        items.iter().filter_map(|item| match &item.outcome {
            BulkOutcome::Rejected(error) => Some(error.reason),
            BulkOutcome::Line => None,
        }),
    );
    let mut per_line = outcome.per_line(line_count).into_iter();
    let mut errors = false;
    let results: Vec<Value> = items
        .iter()
        .map(|item| {
            let result = match &item.outcome {
                BulkOutcome::Line => match per_line.next() {
                    Some(Ok(seq)) => Ok(seq.0),
                    Some(Err(rejection)) => Err((
                        "mapper_parsing_exception",
                        line_reason(rejection.reason, &rejection.detail),
                    )),
                    None => Err(("exception", "the item was lost in decoding".to_string())),
                },
                BulkOutcome::Rejected(error) => Err((error.error_type, error.detail.clone())),
            };
            errors |= result.is_err();
            item_result(item, result)
        })
        .collect();
    let took = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(Json(json!({"took": took, "errors": errors, "items": results})).into_response())
}

/// What the sender is told about a document the line decoder refused.
fn line_reason(reason: RejectReason, detail: &str) -> String {
    match reason {
        RejectReason::InvalidTimestamp => "failed to parse field [@timestamp]: \
             neither an RFC 3339 date nor an epoch number"
            .to_string(),
        _ => format!("failed to parse: {detail}"),
    }
}

/// One entry of `items`: `{"<action>": {…}}`.
fn item_result(item: &BulkItem, result: Result<u64, (&'static str, String)>) -> Value {
    let body = match result {
        Ok(seq) => json!({
            "_index": item.index,
            "_id": item.id.clone().unwrap_or_else(|| seq.to_string()),
            "_version": 1,
            "result": "created",
            "_shards": {"total": 1, "successful": 1, "failed": 0},
            "_seq_no": seq,
            "_primary_term": 1,
            "status": 201,
        }),
        Err((error_type, reason)) => json!({
            "_index": item.index,
            "_id": item.id,
            "status": 400,
            "error": {"type": error_type, "reason": reason},
        }),
    };
    let mut entry = serde_json::Map::with_capacity(1);
    entry.insert(item.action.clone(), body);
    Value::Object(entry)
}
