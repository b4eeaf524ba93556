//! `GET /api/v1/search` and `POST /api/v1/search`.
//!
//! GET takes `q`, `from`, `to`, `limit`, `cursor` and `aggs` as query parameters; `aggs` is the
//! compact aggregation form (`terms:host,terms:fields.user:5,date_histogram:1h`, see
//! [`AggregationRequest::parse_compact`]). POST takes the same keys as a JSON object, with `aggs`
//! either that compact string or Elasticsearch's aggregation object
//! (`{"by_host":{"terms":{"field":"host"}}}`). Both answer
//! `{"total","events","next_cursor"}` plus `aggregations` when asked.

use axum::Json;
use axum::extract::{Query, State};
use cairn_index::{AggregationRequest, SearchRequest, SearchResponse};
use cairn_ingest::Timestamp;
use serde::Deserialize;

use super::{ApiError, AppState};

/// Default and largest page size.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SearchParams {
    #[serde(default)]
    q: String,
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    aggs: Option<String>,
}

/// The JSON body of `POST /api/v1/search`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SearchBody {
    #[serde(default)]
    q: String,
    from: Option<serde_json::Value>,
    to: Option<serde_json::Value>,
    limit: Option<usize>,
    cursor: Option<String>,
    aggs: Option<serde_json::Value>,
}

/// Searches events, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/search",
    tag = "events",
    params(
        ("q" = Option<String>, Query, description = "Query (tantivy syntax; empty: every event)"),
        ("from" = Option<String>, Query, description = "Inclusive lower bound on event time: RFC 3339 or epoch seconds"),
        ("to" = Option<String>, Query, description = "Exclusive upper bound on event time: RFC 3339 or epoch seconds"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Events per page (default 100)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("aggs" = Option<String>, Query, description = "Aggregations over every match, e.g. `terms:host,terms:fields.user:5,date_histogram:1h`"),
    ),
    responses(
        (status = 200, description = "One page of events, with `aggregations` when asked", body = super::openapi::SearchPage),
        (status = 400, description = "Bad parameter or query", body = super::openapi::ErrorBody),
        (status = 503, description = "The index cannot be read now", body = super::openapi::ErrorBody),
        (status = 500, description = "Internal error", body = super::openapi::ErrorBody),
    ),
)]
pub(super) async fn search(
    State(state): State<AppState>,
    params: Result<Query<SearchParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SearchResponse>, ApiError> {
    let Query(params) = params.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    let limit = match params.limit.as_deref() {
        None | Some("") => DEFAULT_LIMIT,
        Some(text) => text.parse::<usize>().map_err(|_| limit_error())?,
    };
    let aggregations = params
        .aggs
        .as_deref()
        .filter(|text| !text.trim().is_empty())
        .map(AggregationRequest::parse_compact)
        .transpose()?;
    let request = SearchRequest {
        query: params.q,
        // Empty means absent, as for every other parameter.
        from: params
            .from
            .as_deref()
            .filter(|text| !text.trim().is_empty())
            .map(|text| parse_time("from", text))
            .transpose()?,
        to: params
            .to
            .as_deref()
            .filter(|text| !text.trim().is_empty())
            .map(|text| parse_time("to", text))
            .transpose()?,
        limit: checked_limit(limit)?,
        cursor: params.cursor.filter(|cursor| !cursor.is_empty()),
        aggregations,
        oldest_first: false,
    };
    run_search(&state, request).await.map(Json)
}

/// `POST /api/v1/search`: the same search with a JSON body; `aggs` is the compact form or
/// Elasticsearch's aggregation JSON.
#[utoipa::path(
    post,
    path = "/api/v1/search",
    tag = "events",
    request_body(
        content = Object,
        content_type = "application/json",
        description = "`{\"q\": …, \"from\": …, \"to\": …, \"limit\": N, \"cursor\": …, \"aggs\": \"terms:host\" | {…}}`; every key optional"
    ),
    responses(
        (status = 200, description = "One page of events, with `aggregations` when asked", body = super::openapi::SearchPage),
        (status = 400, description = "Bad body, query or aggregation", body = super::openapi::ErrorBody),
        (status = 503, description = "The index cannot be read now", body = super::openapi::ErrorBody),
        (status = 500, description = "Internal error", body = super::openapi::ErrorBody),
    ),
)]
pub(super) async fn search_json(
    State(state): State<AppState>,
    body: Result<Json<SearchBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<SearchResponse>, ApiError> {
    let Json(body) = body.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    let aggregations = match body.aggs {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(text)) => Some(AggregationRequest::parse_compact(&text)?),
        Some(json) => Some(AggregationRequest::from_json(json, &|field| {
            Some(field.to_owned())
        })?),
    };
    let request = SearchRequest {
        query: body.q,
        from: body
            .from
            .as_ref()
            .map(|value| json_time("from", value))
            .transpose()?,
        to: body
            .to
            .as_ref()
            .map(|value| json_time("to", value))
            .transpose()?,
        limit: checked_limit(body.limit.unwrap_or(DEFAULT_LIMIT))?,
        cursor: body.cursor.filter(|cursor| !cursor.is_empty()),
        aggregations,
        oldest_first: false,
    };
    run_search(&state, request).await.map(Json)
}

/// Runs a search on the blocking pool.
pub(crate) async fn run_search(
    state: &AppState,
    request: SearchRequest,
) -> Result<SearchResponse, ApiError> {
    let index = std::sync::Arc::clone(&state.inner.index);
    let response = tokio::task::spawn_blocking(move || index.search(&request))
        .await
        .map_err(|error| ApiError::Internal(format!("search task failed: {error}")))??;
    Ok(response)
}

fn limit_error() -> ApiError {
    ApiError::BadRequest(format!("limit must be an integer from 1 to {MAX_LIMIT}"))
}

/// A page size from 1 to [`MAX_LIMIT`].
fn checked_limit(limit: usize) -> Result<usize, ApiError> {
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(limit_error())
    }
}

/// A JSON `from`/`to`: a string as for [`parse_time`] or a number of epoch seconds.
fn json_time(name: &str, value: &serde_json::Value) -> Result<Timestamp, ApiError> {
    match value {
        serde_json::Value::String(text) => parse_time(name, text),
        serde_json::Value::Number(number) => parse_time(name, &number.to_string()),
        other => parse_time(name, &other.to_string()),
    }
}

/// `from`/`to`: RFC 3339 (`2024-05-01T10:00:00Z`) or epoch seconds (`1714557600`, fractions
/// allowed).
pub(crate) fn parse_time(name: &str, text: &str) -> Result<Timestamp, ApiError> {
    let trimmed = text.trim();
    if let Ok(timestamp) = trimmed.parse::<jiff::Timestamp>() {
        return Ok(Timestamp::from_jiff(timestamp));
    }
    if let Ok(seconds) = trimmed.parse::<f64>()
        && seconds.is_finite()
        && seconds.abs() < 1e11
    {
        return Ok(Timestamp((seconds * 1e9) as i64));
    }
    Err(ApiError::BadRequest(format!(
        "{name} must be an RFC 3339 time (2024-05-01T10:00:00Z) or epoch seconds, got `{trimmed}`"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_rfc3339_or_epoch_seconds() {
        let rfc = parse_time("from", "2024-05-01T10:00:00Z").expect("rfc3339");
        let epoch = parse_time("from", "1714557600").expect("epoch");
        assert_eq!(rfc, epoch);
        assert_eq!(
            parse_time("to", "1714557600.5").expect("fraction").0,
            1_714_557_600_500_000_000
        );
        assert!(parse_time("to", "yesterday").is_err());
        assert!(parse_time("to", "NaN").is_err());
    }
}
