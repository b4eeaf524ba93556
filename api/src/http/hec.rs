//! The Splunk HTTP Event Collector API, for Splunk logging libraries and shippers (tested with
//! the PyPI `splunk-handler` and `splunk-hec-handler`):
//!
//! - `POST /services/collector/event` (also `/services/collector` and `…/event/1.0`): one or
//!   more concatenated JSON events (see [`cairn_ingest::decode::hec`] for the body and how an
//!   event becomes a Cairn event);
//! - `POST /services/collector/raw` (`…/raw/1.0`): one event per line, with `host`, `source`,
//!   `sourcetype`, `index` from the query string;
//! - `GET|POST /services/collector/health` (`…/health/1.0`): 200 while Cairn takes events, 503
//!   when its pipeline is full or it cannot write;
//! - `POST /services/collector/ack?channel=…`: indexer acknowledgement (see [`ack`]).
//!
//! Every request but health needs `Authorization: Splunk <token>` with a token of `[[hec.token]]`
//! (compared in constant time): none is 401 (code 2), a header of another form 401 (code 3), an
//! unknown token 403 (code 4); each refusal is counted (`http_unauthorized`). Answers and errors
//! have Splunk's shape, `{"text":"…","code":N}`. A body with bad events keeps the good ones and
//! answers 400 with the first bad event's code and its 0-based `invalid-event-number`. A
//! repeated query parameter is 400 (code 6): which value would apply is ambiguous.
//!
//! A token with `ack = true` requires a channel (`X-Splunk-Request-Channel` or `?channel=`, a
//! GUID; 400 code 10 without, code 11 when not a GUID) and its answers carry an `ackId`.
//!
//! Ingest shares everything with `POST /api/v1/ingest` ([`super::ingest`]): limits, gzip, the
//! WAL (the answer comes only once the events are durable), backpressure (a full pipeline is 503
//! "Server is busy" with `Retry-After`, which Splunk clients retry) and the counters (source
//! `http_hec`).

mod ack;

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cairn_ingest::Source;
use cairn_ingest::decode::hec::{
    HecBatch, HecDefaults, HecOutcome, HecRejection, decode_hec_events, decode_hec_raw,
};
use cairn_ingest::stats::RejectReason;
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

pub use ack::AckLimits;
use ack::AckStore;

use super::ingest::{count_rejected, ingest_lines, read_body};
use super::openapi::HecEventDoc;
use super::{ApiError, AppState};

/// One HEC token (`[[hec.token]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HecToken {
    /// A name for the operator (logs); not secret.
    pub name: String,
    /// The secret senders put in `Authorization: Splunk <token>`.
    pub token: String,
    /// `index` of events that name none.
    pub index: Option<String>,
    /// `source` of events that name none.
    pub source: Option<String>,
    /// `sourcetype` of events that name none.
    pub sourcetype: Option<String>,
    /// Indexer acknowledgement: requests need a channel and are answered with an `ackId`.
    pub ack: bool,
}

/// The HEC settings (`[hec]`). No token: every request is refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HecSettings {
    pub tokens: Vec<HecToken>,
    pub ack: AckLimits,
}

/// The HEC routes' state: the tokens and the ack store.
#[derive(Debug)]
pub(crate) struct Hec {
    settings: HecSettings,
    acks: AckStore,
}

impl Hec {
    pub(crate) fn new(settings: HecSettings) -> Hec {
        Hec {
            acks: AckStore::new(settings.ack),
            settings,
        }
    }
}

/// An answer in Splunk's shape: `{"text":…,"code":N}`, with `invalid-event-number` for a bad
/// event and `Retry-After` when busy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HecError {
    status: StatusCode,
    code: u8,
    text: String,
    invalid_event: Option<usize>,
    retry_after: Option<Duration>,
}

impl HecError {
    fn new(status: StatusCode, code: u8, text: impl Into<String>) -> HecError {
        HecError {
            status,
            code,
            text: text.into(),
            invalid_event: None,
            retry_after: None,
        }
    }

    fn busy(retry_after: Duration) -> HecError {
        HecError {
            retry_after: Some(retry_after),
            ..HecError::new(StatusCode::SERVICE_UNAVAILABLE, 9, "Server is busy")
        }
    }

    /// The first rejected event of a body, numbered from 0.
    fn invalid_event(number: usize, reason: RejectReason, detail: &str) -> HecError {
        let (code, text) = match reason {
            RejectReason::MissingEvent => (12, "Event field is required".to_string()),
            RejectReason::BlankEvent => (13, "Event field cannot be blank".to_string()),
            RejectReason::InvalidFields => (15, "Error in handling indexed fields".to_string()),
            _ => (6, format!("Invalid data format: {detail}")),
        };
        HecError {
            invalid_event: Some(number),
            ..HecError::new(StatusCode::BAD_REQUEST, code, text)
        }
    }
}

impl IntoResponse for HecError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() && self.code != 9 {
            tracing::error!(error = %self.text, "hec request failed");
        }
        let mut body = json!({"text": self.text, "code": self.code});
        if let Some(number) = self.invalid_event {
            body["invalid-event-number"] = json!(number);
        }
        let mut response = (self.status, Json(body)).into_response();
        if let Some(retry_after) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

impl From<ApiError> for HecError {
    fn from(error: ApiError) -> HecError {
        match error {
            ApiError::Throttled { retry_after }
            | ApiError::StorageUnavailable { retry_after, .. } => HecError::busy(retry_after),
            ApiError::Unavailable(_) => HecError::busy(Duration::from_secs(1)),
            ApiError::PayloadTooLarge(message) => {
                HecError::new(StatusCode::PAYLOAD_TOO_LARGE, 6, message)
            }
            ApiError::UnsupportedMediaType(message) => {
                HecError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, 6, message)
            }
            ApiError::Internal(message) => {
                HecError::new(StatusCode::INTERNAL_SERVER_ERROR, 8, message)
            }
            other => HecError::new(
                StatusCode::BAD_REQUEST,
                6,
                format!("Invalid data format: {other}"),
            ),
        }
    }
}

/// Finds the token of a request.
///
/// # Errors
/// 401 code 2 without `Authorization`, 401 code 3 when it is not `Splunk <token>`, 403 code 4
/// when the token is not configured.
fn authorize<'a>(state: &'a AppState, headers: &HeaderMap) -> Result<(&'a Hec, usize), HecError> {
    let refuse = |error: HecError| {
        state.inner.stats.http_unauthorized();
        error
    };
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(refuse(HecError::new(
            StatusCode::UNAUTHORIZED,
            2,
            "Token is required",
        )));
    };
    let presented = value
        .to_str()
        .ok()
        .and_then(|text| {
            let (scheme, token) = text.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("splunk").then(|| token.trim())
        })
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            refuse(HecError::new(
                StatusCode::UNAUTHORIZED,
                3,
                "Invalid authorization",
            ))
        })?;
    let hec = state.inner.hec.get();
    // Every configured token is compared, in constant time, whichever matches.
    let mut found = None;
    for (index, token) in hec
        .iter()
        .flat_map(|hec| hec.settings.tokens.iter().enumerate())
    {
        if bool::from(token.token.as_bytes().ct_eq(presented.as_bytes())) {
            found = Some(index);
        }
    }
    match (hec, found) {
        (Some(hec), Some(index)) => Ok((hec, index)),
        _ => Err(refuse(HecError::new(
            StatusCode::FORBIDDEN,
            4,
            "Invalid token",
        ))),
    }
}

/// The query string's parameters.
///
/// # Errors
/// 400 code 6 when one is repeated: which of its values would apply is ambiguous.
fn query_params(pairs: Vec<(String, String)>) -> Result<HashMap<String, String>, HecError> {
    let mut params = HashMap::with_capacity(pairs.len());
    for (key, value) in pairs {
        if params.contains_key(&key) {
            return Err(HecError::new(
                StatusCode::BAD_REQUEST,
                6,
                format!(
                    "Invalid data format: query parameter `{}` is repeated",
                    key.chars().take(64).collect::<String>()
                ),
            ));
        }
        params.insert(key, value);
    }
    Ok(params)
}

/// The request's channel: `X-Splunk-Request-Channel`, else `?channel=`.
fn channel<'a>(headers: &'a HeaderMap, query: &'a HashMap<String, String>) -> Option<&'a str> {
    headers
        .get("x-splunk-request-channel")
        .and_then(|value| value.to_str().ok())
        .or_else(|| query.get("channel").map(String::as_str))
        .map(str::trim)
        .filter(|channel| !channel.is_empty())
}

/// A channel as Splunk wants it: a GUID (`8-4-4-4-12` hex digits).
fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, len)| group.len() == len && group.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The channel an ack-enabled token must send on.
///
/// # Errors
/// 400 code 10 without a channel, code 11 when it is not a GUID.
fn ack_channel<'a>(
    headers: &'a HeaderMap,
    query: &'a HashMap<String, String>,
) -> Result<&'a str, HecError> {
    let channel = channel(headers, query)
        .ok_or_else(|| HecError::new(StatusCode::BAD_REQUEST, 10, "Data channel is missing"))?;
    if !is_guid(channel) {
        return Err(HecError::new(
            StatusCode::BAD_REQUEST,
            11,
            "Invalid data channel",
        ));
    }
    Ok(channel)
}

/// Which endpoint a body came to.
#[derive(Debug, Clone, Copy)]
enum Endpoint {
    Event,
    Raw,
}

/// `POST /services/collector`, `/services/collector/event` and `…/event/1.0` (documented by
/// [`collector`], [`collector_event`] and [`collector_event_1_0`]).
pub(super) async fn event(
    State(state): State<AppState>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, HecError> {
    collect(state, Endpoint::Event, query, headers, body).await
}

/// `POST /services/collector/raw` and `…/raw/1.0` (documented by [`collector_raw`] and
/// [`collector_raw_1_0`]).
pub(super) async fn raw(
    State(state): State<AppState>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, HecError> {
    collect(state, Endpoint::Raw, query, headers, body).await
}

/// The OpenAPI operations of the HEC routes served by [`event`], [`raw`] and [`health`]: utoipa
/// documents one method and path per function, so each route gets a documentation-only function.
macro_rules! document_collect {
    ($($path:tt => $name:ident, $summary:tt, $body:tt, $content_type:tt, $body_description:tt;)*) => {$(
        /// Documentation only: served by [`event`] or [`raw`].
        #[utoipa::path(
            post,
            path = $path,
            tag = "splunk",
            summary = $summary,
            params(
                ("channel" = Option<String>, Query, description = "Data channel (a GUID), when not in X-Splunk-Request-Channel; required for tokens with `ack = true`"),
                ("X-Splunk-Request-Channel" = Option<String>, Header, description = "Data channel (a GUID); required for tokens with `ack = true`"),
                ("host" = Option<String>, Query, description = "`host` of the events that name none"),
                ("source" = Option<String>, Query, description = "`source` of the events that name none (default: the token's)"),
                ("sourcetype" = Option<String>, Query, description = "`sourcetype` of the events that name none (default: the token's)"),
                ("index" = Option<String>, Query, description = "`index` of the events that name none (default: the token's)"),
            ),
            request_body(
                content(($body = $content_type)),
                description = $body_description,
            ),
            responses(
                (status = 200, description = "Taken: every event is durable in the WAL (`code` 0; `ackId` for tokens with `ack = true`)", body = super::openapi::HecAnswerDoc),
                (status = 400, description = "No data (code 5); a refused event (6 invalid data format, 12 event field required, 13 event field blank, 15 bad indexed fields; `invalid-event-number` is the first, the others are kept); data channel missing (10) or not a GUID (11) for tokens with `ack = true`; a repeated query parameter, or a body that could not be read in time (6)", body = super::openapi::HecAnswerDoc),
                (status = 401, description = "No `Authorization` (code 2), or not `Splunk <token>` (code 3)", body = super::openapi::HecAnswerDoc),
                (status = 403, description = "Unknown token (code 4)", body = super::openapi::HecAnswerDoc),
                (status = 413, description = "Body over max_body_bytes or max_decompressed_bytes (code 6)", body = super::openapi::HecAnswerDoc),
                (status = 415, description = "Unsupported Content-Encoding (code 6)", body = super::openapi::HecAnswerDoc),
                (status = 503, description = "Server is busy (code 9): the pipeline or the request memory budget is full, storage is unavailable, Cairn is shutting down, or there are too many ack channels; nothing was taken, retry after Retry-After", body = super::openapi::HecAnswerDoc,
                    headers(("Retry-After" = u64, description = "Seconds to wait"))),
                (status = 500, description = "Internal error (code 8)", body = super::openapi::HecAnswerDoc),
            ),
            security(("splunk" = [])),
        )]
        #[allow(dead_code)]
        pub(super) fn $name() {}
    )*};
}

document_collect! {
    "/services/collector" => collector, "Ingests HEC events (as /services/collector/event)",
        HecEventDoc, "application/json", "One or more JSON event objects, concatenated (not an array; whitespace between them optional); `Content-Encoding: gzip` accepted";
    "/services/collector/event" => collector_event, "Ingests HEC events",
        HecEventDoc, "application/json", "One or more JSON event objects, concatenated (not an array; whitespace between them optional); `Content-Encoding: gzip` accepted";
    "/services/collector/event/1.0" => collector_event_1_0, "Ingests HEC events (as /services/collector/event)",
        HecEventDoc, "application/json", "One or more JSON event objects, concatenated (not an array; whitespace between them optional); `Content-Encoding: gzip` accepted";
    "/services/collector/raw" => collector_raw, "Ingests raw text, one event per non-empty line",
        String, "text/plain", "Text: each non-empty line is one event's message, with the request's metadata; `Content-Encoding: gzip` accepted";
    "/services/collector/raw/1.0" => collector_raw_1_0, "Ingests raw text, one event per non-empty line (as /services/collector/raw)",
        String, "text/plain", "Text: each non-empty line is one event's message, with the request's metadata; `Content-Encoding: gzip` accepted";
}

/// The OpenAPI operations of the health routes, all served by [`health`].
macro_rules! document_health {
    ($($method:ident $path:tt => $name:ident;)*) => {$(
        /// Documentation only: served by [`health`].
        #[utoipa::path(
            $method,
            path = $path,
            tag = "splunk",
            summary = "Whether HEC would take events now (no token needed)",
            responses(
                (status = 200, description = "HEC is healthy (code 17)", body = super::openapi::HecAnswerDoc),
                (status = 503, description = "HEC is unhealthy (code 18): not ready, stopping, or the pipeline is full; or the request memory budget is full (code 9)", body = super::openapi::HecAnswerDoc),
            ),
        )]
        #[allow(dead_code)]
        pub(super) fn $name() {}
    )*};
}

document_health! {
    get "/services/collector/health" => health_get;
    post "/services/collector/health" => health_post;
    get "/services/collector/health/1.0" => health_1_0_get;
    post "/services/collector/health/1.0" => health_1_0_post;
}

/// Bodies larger than this are decoded on the blocking pool.
const INLINE_DECODE_BYTES: usize = 64 * 1024;

async fn collect(
    state: AppState,
    endpoint: Endpoint,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, HecError> {
    let (hec, token_index) = authorize(&state, &headers)?;
    let query = query_params(query)?;
    let token = hec
        .settings
        .tokens
        .get(token_index)
        .ok_or_else(|| HecError::new(StatusCode::INTERNAL_SERVER_ERROR, 8, "token vanished"))?;
    let channel = if token.ack {
        Some(ack_channel(&headers, &query)?.to_string())
    } else {
        None
    };
    let body = read_body(&state, &headers, body)?;
    let defaults = Defaults::of(token, &query);
    let inline = body.len() <= INLINE_DECODE_BYTES;
    let decode = move || {
        let defaults = defaults.as_hec();
        match endpoint {
            Endpoint::Event => decode_hec_events(&body, &defaults),
            Endpoint::Raw => decode_hec_raw(&body, &defaults),
        }
    };
    let batch = if inline {
        decode()
    } else {
        tokio::task::spawn_blocking(decode).await.map_err(|error| {
            HecError::new(StatusCode::INTERNAL_SERVER_ERROR, 8, error.to_string())
        })?
    };
    let HecBatch { lines, events } = batch;
    if events.is_empty() {
        return Err(HecError::new(StatusCode::BAD_REQUEST, 5, "No data"));
    }
    let line_count = events
        .iter()
        .filter(|outcome| **outcome == HecOutcome::Line)
        .count();
    let outcome = ingest_lines(&state, Source::HttpHec, Bytes::from(lines)).await?;
    count_rejected(
        &state.inner.stats,
        Source::HttpHec,
        events.iter().filter_map(|outcome| match outcome {
            HecOutcome::Rejected(rejection) => Some(rejection.reason),
            HecOutcome::Line => None,
        }),
    );
    let mut per_line = outcome.per_line(line_count).into_iter();
    let first_rejected = events
        .iter()
        .enumerate()
        .find_map(|(number, outcome)| match outcome {
            HecOutcome::Line => match per_line.next() {
                Some(Err(rejection)) => Some((number, rejection.reason, rejection.detail.clone())),
                _ => None,
            },
            HecOutcome::Rejected(HecRejection { reason, detail }) => {
                Some((number, *reason, detail.clone()))
            }
        });
    if let Some((number, reason, detail)) = first_rejected {
        return Err(HecError::invalid_event(number, reason, &detail));
    }
    let mut answer = json!({"text": "Success", "code": 0});
    if let Some(channel) = channel {
        let id = hec
            .acks
            .issue(token_index, &channel)
            .map_err(|_| HecError::busy(state.inner.limits.retry_after))?;
        answer["ackId"] = json!(id);
    }
    Ok(Json(answer).into_response())
}

/// Owned per-request metadata defaults: the query's (raw endpoint), else the token's.
#[derive(Debug)]
struct Defaults {
    host: Option<String>,
    source: Option<String>,
    sourcetype: Option<String>,
    index: Option<String>,
}

impl Defaults {
    fn of(token: &HecToken, query: &HashMap<String, String>) -> Defaults {
        let pick = |key: &str, fallback: &Option<String>| {
            query.get(key).cloned().or_else(|| fallback.clone())
        };
        Defaults {
            host: query.get("host").cloned(),
            source: pick("source", &token.source),
            sourcetype: pick("sourcetype", &token.sourcetype),
            index: pick("index", &token.index),
        }
    }

    fn as_hec(&self) -> HecDefaults<'_> {
        HecDefaults {
            host: self.host.as_deref(),
            source: self.source.as_deref(),
            sourcetype: self.sourcetype.as_deref(),
            index: self.index.as_deref(),
        }
    }
}

/// `GET|POST /services/collector/health` and `…/health/1.0`: whether events would be taken now
/// (documented by [`health_get`], [`health_post`], [`health_1_0_get`], [`health_1_0_post`]).
pub(super) async fn health(State(state): State<AppState>) -> Response {
    let queue = &state.inner.work_queue;
    if !state.is_ready() {
        return HecError::new(StatusCode::SERVICE_UNAVAILABLE, 18, "HEC is unhealthy")
            .into_response();
    }
    if queue.is_full() {
        return HecError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            18,
            "HEC is unhealthy, queues are full",
        )
        .into_response();
    }
    Json(json!({"text": "HEC is healthy", "code": 17})).into_response()
}

/// The body of an ack query.
#[derive(Debug, Deserialize)]
struct AckQuery {
    acks: Vec<u64>,
}

/// The most ids one ack query may ask about.
const MAX_ACKS_PER_QUERY: usize = 10_000;

/// `POST /services/collector/ack?channel=…` with `{"acks":[ids]}` → `{"acks":{"id":bool}}`.
#[utoipa::path(
    post,
    path = "/services/collector/ack",
    tag = "splunk",
    summary = "Asks which acknowledgement ids are durable (indexer acknowledgement)",
    params(
        ("channel" = Option<String>, Query, description = "Data channel (a GUID) the ids were issued on, when not in X-Splunk-Request-Channel"),
        ("X-Splunk-Request-Channel" = Option<String>, Header, description = "Data channel (a GUID) the ids were issued on"),
    ),
    request_body(
        content((super::openapi::HecAckQueryDoc = "application/json")),
        description = "The ack ids to ask about (at most 10000)",
    ),
    responses(
        (status = 200, description = "For each id asked, whether its events are durable (each is answered true once)", body = super::openapi::HecAckAnswerDoc),
        (status = 400, description = "The token has no `ack = true` (code 14); data channel missing (10) or not a GUID (11); a body that is not `{\"acks\":[ids]}`, has over 10000 ids, or could not be read in time, or a repeated query parameter (6)", body = super::openapi::HecAnswerDoc),
        (status = 401, description = "No `Authorization` (code 2), or not `Splunk <token>` (code 3)", body = super::openapi::HecAnswerDoc),
        (status = 403, description = "Unknown token (code 4)", body = super::openapi::HecAnswerDoc),
        (status = 413, description = "Body over max_body_bytes or max_decompressed_bytes (code 6)", body = super::openapi::HecAnswerDoc),
        (status = 415, description = "Unsupported Content-Encoding (code 6)", body = super::openapi::HecAnswerDoc),
        (status = 503, description = "Server is busy (code 9): the request memory budget is full or Cairn is shutting down", body = super::openapi::HecAnswerDoc,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 500, description = "Internal error (code 8)", body = super::openapi::HecAnswerDoc),
    ),
    security(("splunk" = [])),
)]
pub(super) async fn acknowledge(
    State(state): State<AppState>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, HecError> {
    let (hec, token_index) = authorize(&state, &headers)?;
    if !hec
        .settings
        .tokens
        .get(token_index)
        .is_some_and(|token| token.ack)
    {
        return Err(HecError::new(
            StatusCode::BAD_REQUEST,
            14,
            "ACK is disabled",
        ));
    }
    let query = query_params(query)?;
    let channel = ack_channel(&headers, &query)?;
    let body = read_body(&state, &headers, body)?;
    let asked: AckQuery = serde_json::from_slice(&body).map_err(|error| {
        HecError::new(
            StatusCode::BAD_REQUEST,
            6,
            format!("Invalid data format: {error}"),
        )
    })?;
    if asked.acks.len() > MAX_ACKS_PER_QUERY {
        return Err(HecError::new(
            StatusCode::BAD_REQUEST,
            6,
            format!("Invalid data format: at most {MAX_ACKS_PER_QUERY} acks per query"),
        ));
    }
    let answers: serde_json::Map<String, Value> = hec
        .acks
        .query(token_index, channel, &asked.acks)
        .into_iter()
        .map(|(id, acknowledged)| (id.to_string(), Value::Bool(acknowledged)))
        .collect();
    Ok(Json(json!({"acks": answers})).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_must_be_guids() {
        assert!(is_guid("0A1B2C3D-0000-4000-8000-00000000abcd"));
        assert!(!is_guid("0A1B2C3D-0000-4000-8000-00000000abc"));
        assert!(!is_guid("not-a-guid"));
        assert!(!is_guid(""));
    }

    #[test]
    fn rejections_map_to_splunk_codes() {
        let error = HecError::invalid_event(3, RejectReason::BlankEvent, "");
        assert_eq!(
            (error.status, error.code, error.invalid_event),
            (StatusCode::BAD_REQUEST, 13, Some(3))
        );
        let error = HecError::invalid_event(0, RejectReason::InvalidTimestamp, "ts is bad");
        assert_eq!(error.code, 6);
        assert!(error.text.contains("ts is bad"));
        let error = HecError::from(ApiError::Throttled {
            retry_after: Duration::from_secs(2),
        });
        assert_eq!(
            (error.status, error.code),
            (StatusCode::SERVICE_UNAVAILABLE, 9)
        );
    }
}
