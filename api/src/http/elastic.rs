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
use axum::extract::rejection::{BytesRejection, PathRejection};
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
#[utoipa::path(
    get,
    path = "/",
    tag = "elasticsearch",
    responses(
        (status = 200, description = "This node, as an Elasticsearch 8 node describes itself", body = super::openapi::ElasticNodeInfo,
            headers(("X-Elastic-Product" = String, description = "`Elasticsearch`, on every answer of these routes"))),
        (status = 401, description = "No API token, or not a valid one (`security_exception`)", body = super::openapi::ElasticErrorBody),
        (status = 403, description = "The token's role does not allow this route (`security_exception`)", body = super::openapi::ElasticErrorBody),
        (status = 429, description = "The token is over its rate limit (`es_rejected_execution_exception`; see Retry-After)", body = super::openapi::ElasticErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
)]
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

/// `POST|PUT /_bulk` (documented by [`bulk_post`] and [`bulk_put`]).
pub(super) async fn bulk(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, EsError> {
    bulk_request(state, None, headers, body).await
}

/// `POST|PUT /{index}/_bulk` (documented by [`bulk_into_post`] and [`bulk_into_put`]).
pub(super) async fn bulk_into(
    State(state): State<AppState>,
    index: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, EsError> {
    let Path(index) = index.map_err(|rejection| {
        EsError::new(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            rejection.body_text(),
        )
    })?;
    bulk_request(state, Some(index), headers, body).await
}

/// The OpenAPI operations of the `_bulk` routes: utoipa documents one method and path per
/// function, and [`bulk`] and [`bulk_into`] each serve two, so each gets a documentation-only
/// function with the same description.
macro_rules! document_bulk {
    ($($method:ident $path:tt => $name:ident $(, params($($params:tt)*))?;)*) => {$(
        /// Documentation only: served by [`bulk`] or [`bulk_into`].
        #[utoipa::path(
            $method,
            path = $path,
            tag = "elasticsearch",
            summary = "Ingests an Elasticsearch `_bulk` body",
            description = "Action/metadata lines, each `index` or `create` followed by its document line \
                (NDJSON; `Content-Encoding: gzip` accepted). One result per action, in order: `201 created` \
                with an `_id` (the event's `seq` unless the action gave one), or the item's own error with \
                `\"errors\":true`; one bad item never fails the others. The answer comes once the accepted \
                items are durable in the WAL.",
            $(params($($params)*),)?
            request_body(
                content(
                    (String = "application/x-ndjson"),
                    (String = "application/vnd.elasticsearch+x-ndjson"),
                ),
                description = "`{\"index\":{\"_index\":…,\"_id\":…}}` or `{\"create\":{…}}` lines, each followed by its document (a JSON object)",
            ),
            responses(
                (status = 200, description = "One result per action (items refused one by one: `errors` is true)", body = super::openapi::BulkResponseDoc,
                    headers(("X-Elastic-Product" = String, description = "`Elasticsearch`, on every answer of these routes"))),
                (status = 400, description = "No action in the body (`action_request_validation_exception`), or the body or path could not be read (`illegal_argument_exception`)", body = super::openapi::ElasticErrorBody),
                (status = 401, description = "No API token, or not a valid one (`security_exception`)", body = super::openapi::ElasticErrorBody),
                (status = 403, description = "The token's role does not allow this route (`security_exception`)", body = super::openapi::ElasticErrorBody),
                (status = 408, description = "The body did not arrive within body_timeout_secs (`elasticsearch_timeout_exception`)", body = super::openapi::ElasticErrorBody),
                (status = 413, description = "Body over max_body_bytes or max_decompressed_bytes (`content_too_long_exception`)", body = super::openapi::ElasticErrorBody),
                (status = 415, description = "Unsupported Content-Encoding (`media_type_header_exception`)", body = super::openapi::ElasticErrorBody),
                (status = 429, description = "The pipeline or the request memory budget is full, or the token is over its rate limit (`es_rejected_execution_exception`): nothing was taken, retry after Retry-After", body = super::openapi::ElasticErrorBody,
                    headers(("Retry-After" = u64, description = "Seconds to wait"))),
                (status = 503, description = "Storage unavailable, or shutting down (`unavailable_shards_exception`)", body = super::openapi::ElasticErrorBody,
                    headers(("Retry-After" = u64, description = "Seconds to wait (storage errors)"))),
                (status = 500, description = "Internal error", body = super::openapi::ElasticErrorBody),
            ),
        )]
        #[allow(dead_code)]
        pub(super) fn $name() {}
    )*};
}

document_bulk! {
    post "/_bulk" => bulk_post;
    put "/_bulk" => bulk_put;
    post "/{index}/_bulk" => bulk_into_post, params(("index" = String, Path, description = "`_index` of the actions that name none"));
    put "/{index}/_bulk" => bulk_into_put, params(("index" = String, Path, description = "`_index` of the actions that name none"));
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
