//! `GET /api/v1/rules` and `POST /api/v1/rules/reload`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::{ApiError, AppState};
use crate::signatures::{RuleProblem, RuleSet, RuleSummary};

/// The rules in force.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct RulesResponse {
    generation: u64,
    rules: Vec<RuleSummary>,
    /// Rules of the loaded sources that could not be used, with the reason.
    rejected: Vec<RuleProblem>,
    /// Sigma correlation rules in force.
    correlations: Vec<CorrelationSummary>,
}

/// One correlation rule as listed by `GET /api/v1/rules`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct CorrelationSummary {
    rule: String,
    title: String,
    level: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    timespan_secs: f64,
    group_by: Vec<String>,
    /// False when it only feeds another correlation.
    alerts: bool,
}

fn correlation_summaries(set: &RuleSet) -> Vec<CorrelationSummary> {
    (0..set.correlations.len())
        .filter_map(|id| {
            let id = u32::try_from(id).ok()?;
            set.correlations
                .info(cairn_correlate::correlation::CorrelationId(id))
        })
        .map(|info| CorrelationSummary {
            rule: info.rule.to_string(),
            title: info.title.to_string(),
            level: info.level.name(),
            kind: info.kind.name(),
            timespan_secs: info.timespan_nanos as f64 / 1e9,
            group_by: info
                .group_by
                .iter()
                .map(|field| field.to_string())
                .collect(),
            alerts: info.emits,
        })
        .collect()
}

/// Lists the rules in force, rejected rules and correlations.
#[utoipa::path(
    get,
    path = "/api/v1/rules",
    tag = "rules",
    responses((status = 200, description = "The rules in force", body = RulesResponse)),
)]
pub(super) async fn list(State(state): State<AppState>) -> Json<RulesResponse> {
    let signatures = &state.inner.signatures;
    let set = signatures.current();
    Json(RulesResponse {
        generation: signatures.generation(),
        rules: set.summaries(),
        rejected: signatures.problems(),
        correlations: correlation_summaries(&set),
    })
}

/// Reloads every rule source. 200 when the new set is in force; 422 with every reason when a
/// rule was rejected (the running rules stay in force).
#[utoipa::path(
    post,
    path = "/api/v1/rules/reload",
    tag = "rules",
    responses(
        (status = 200, description = "The new rule set is in force", body = crate::signatures::ReloadOutcome),
        (status = 422, description = "A rule was rejected; the running rules stay in force", body = crate::signatures::ReloadOutcome),
        (status = 500, description = "Internal error", body = super::openapi::ErrorBody),
    ),
)]
pub(super) async fn reload(State(state): State<AppState>) -> Result<Response, ApiError> {
    let signatures = Arc::clone(&state.inner.signatures);
    let outcome = tokio::task::spawn_blocking(move || signatures.reload())
        .await
        .map_err(|error| ApiError::Internal(format!("reload task failed: {error}")))?;
    let status = if outcome.reloaded {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, Json(outcome)).into_response())
}
