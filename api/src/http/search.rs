//! `GET /api/v1/search`.

use axum::Json;
use axum::extract::{Query, State};
use cairn_index::{SearchRequest, SearchResponse};
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
    ),
    responses(
        (status = 200, description = "One page of events", body = super::openapi::SearchPage),
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
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|limit| (1..=MAX_LIMIT).contains(limit))
            .ok_or_else(|| {
                ApiError::BadRequest(format!("limit must be an integer from 1 to {MAX_LIMIT}"))
            })?,
    };
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
        limit,
        cursor: params.cursor.filter(|cursor| !cursor.is_empty()),
    };
    let index = std::sync::Arc::clone(&state.inner.index);
    let response = tokio::task::spawn_blocking(move || index.search(&request))
        .await
        .map_err(|error| ApiError::Internal(format!("search task failed: {error}")))??;
    Ok(Json(response))
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
