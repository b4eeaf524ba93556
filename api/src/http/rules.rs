//! `GET /api/v1/rules` and `POST /api/v1/rules/reload`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::{ApiError, AppState};
use crate::signatures::{RuleProblem, RuleSummary};

#[derive(Debug, Serialize)]
pub(super) struct RulesResponse {
    generation: u64,
    rules: Vec<RuleSummary>,
    /// Rules of the loaded sources that could not be used, with the reason.
    rejected: Vec<RuleProblem>,
    /// Correlation rules loaded beside the detection rules (not run yet).
    correlations: usize,
}

pub(super) async fn list(State(state): State<AppState>) -> Json<RulesResponse> {
    let signatures = &state.inner.signatures;
    let set = signatures.current();
    Json(RulesResponse {
        generation: signatures.generation(),
        rules: set.summaries(),
        rejected: signatures.problems(),
        correlations: set.correlations,
    })
}

/// Reloads every rule source. 200 when the new set is in force; 422 with every reason when a
/// rule was rejected (the running rules stay in force).
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
