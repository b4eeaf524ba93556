//! `/api/v1/webhooks…`: targets and their delivery status.
//!
//! - `GET /api/v1/webhooks` → `{"targets":[{…}]}`: per target its settings (`endpoint` is the
//!   URL's scheme, host and port only: paths of chat webhooks are secrets), `cursor` (the last
//!   update sequence considered), `pending`, `delivered`, `dead` (rows in the outbox, within
//!   `history_retention_secs`), `last_error` (`{"at","message"}` or null), `last_success`, and
//!   `counters` since start (`delivered`, `failed_attempts`, `dead`).
//! - `GET /api/v1/webhooks/{name}/deliveries?status=pending|delivered|dead&limit=N` →
//!   `{"deliveries":[…]}`, newest change first; `limit` defaults to 100, at most 1000.
//! - `POST /api/v1/webhooks/{name}/retry` → `{"retried":N}`: dead deliveries go back to
//!   pending, due now, with a fresh attempt count.
//!
//! `GET /api/v1/incidents/{id}` lists the deliveries of the incident's changes as
//! `deliveries` ([`incident_deliveries`]). An unknown target is a 404.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use cairn_correlate::incident::{Delivery, DeliveryStatus, IncidentId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::incidents::{blocking, parse_limit};
use super::{ApiError, AppState};
use crate::webhooks::{WebhookError, WebhookTarget, Webhooks};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;
/// Deliveries listed with an incident at most.
const INCIDENT_DELIVERIES: usize = 1000;

impl From<WebhookError> for ApiError {
    fn from(error: WebhookError) -> ApiError {
        match error {
            WebhookError::UnknownTarget(_) => ApiError::NotFound(error.to_string()),
            WebhookError::Store(store) => ApiError::from(store),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeliveryParams {
    status: Option<String>,
    limit: Option<String>,
}

fn webhooks(state: &AppState) -> Result<Webhooks, ApiError> {
    state
        .inner
        .webhooks
        .get()
        .cloned()
        .ok_or_else(|| ApiError::Unavailable("webhooks are not running".to_string()))
}

fn target_name(name: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(name) = name.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    Ok(name)
}

/// `scheme://host[:port]` of the target's URL.
fn endpoint(target: &WebhookTarget) -> String {
    match reqwest::Url::parse(&target.url) {
        Ok(url) => {
            let mut out = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
            if let Some(port) = url.port() {
                out.push_str(&format!(":{port}"));
            }
            out
        }
        Err(_) => String::new(),
    }
}

fn rfc3339(ts: Option<cairn_ingest::Timestamp>) -> Value {
    ts.map_or(Value::Null, |ts| json!(ts.to_rfc3339()))
}

fn delivery_json(delivery: &Delivery) -> Value {
    json!({
        "id": delivery.id,
        "target": delivery.target,
        "update_seq": delivery.change_seq.0,
        "incident": delivery.incident.0,
        "change": delivery.change,
        "status": delivery.status.name(),
        "attempts": delivery.attempts,
        "next_attempt_at": match delivery.status {
            DeliveryStatus::Pending => json!(delivery.next_attempt_at.to_rfc3339()),
            DeliveryStatus::Delivered | DeliveryStatus::Dead => Value::Null,
        },
        "created_at": delivery.created_at.to_rfc3339(),
        "last_attempt_at": rfc3339(delivery.last_attempt_at),
        "delivered_at": rfc3339(delivery.delivered_at),
        "last_status": delivery.last_status,
        "last_error": delivery.last_error,
    })
}

/// Lists the webhook targets with their delivery figures.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    responses(
        (status = 200, description = "Every target, in configuration order", body = super::openapi::WebhookTargetsDoc),
        (status = 503, description = "Webhooks are not running, or their store is unavailable", body = super::openapi::ErrorBody),
        (status = 500, description = "Internal error", body = super::openapi::ErrorBody),
    ),
)]
pub(super) async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let webhooks = webhooks(&state)?;
    let targets = blocking(move || {
        let counts = webhooks.counts();
        webhooks
            .targets()
            .map(|target| {
                let summary = webhooks.summary(&target.name)?;
                Ok(json!({
                    "name": target.name,
                    "format": target.format.name(),
                    "endpoint": endpoint(target),
                    "signed": target.secret.is_some(),
                    "min_level": target.min_level.name(),
                    "rules": target.rules,
                    "events": target.events.iter().map(|event| event.name()).collect::<Vec<_>>(),
                    "max_attempts": target.max_attempts,
                    "cursor": summary.cursor.map(|seq| seq.0),
                    "pending": summary.pending,
                    "delivered": summary.delivered,
                    "dead": summary.dead,
                    "last_error": summary.last_error.map(|(at, message)| {
                        json!({"at": at.to_rfc3339(), "message": message})
                    }),
                    "last_success": rfc3339(summary.last_success),
                    "counters": counts.get(&target.name).copied().unwrap_or_default(),
                }))
            })
            .collect::<Result<Vec<Value>, WebhookError>>()
    })
    .await?;
    Ok(Json(json!({"targets": targets})))
}

/// Lists a target's deliveries, newest change first.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{name}/deliveries",
    tag = "webhooks",
    params(
        ("name" = String, Path, description = "The target's name"),
        ("status" = inline(Option<super::openapi::DeliveryStatusDoc>), Query, description = "Only deliveries in this state"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Deliveries listed at most (default 100)"),
    ),
    responses(
        (status = 200, description = "The target's deliveries", body = super::openapi::DeliveryPage),
        (status = 400, description = "Bad parameter", body = super::openapi::ErrorBody),
        (status = 404, description = "No such target", body = super::openapi::ErrorBody),
        (status = 503, description = "Webhooks are not running, or their store is unavailable", body = super::openapi::ErrorBody),
        (status = 500, description = "Internal error", body = super::openapi::ErrorBody),
    ),
)]
pub(super) async fn deliveries(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
    params: Result<Query<DeliveryParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let name = target_name(name)?;
    let Query(params) = params.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    let status = match params.status.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(DeliveryStatus::parse(text).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "status must be pending, delivered or dead, got `{}`",
                text.chars().take(64).collect::<String>()
            ))
        })?),
    };
    let limit = parse_limit(params.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
    let webhooks = webhooks(&state)?;
    let found = blocking(move || webhooks.deliveries(&name, status, limit)).await?;
    let deliveries: Vec<Value> = found.iter().map(delivery_json).collect();
    Ok(Json(json!({"deliveries": deliveries})))
}

/// Sends a target's dead deliveries again: they go back to pending, due now, with a fresh
/// attempt count.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{name}/retry",
    tag = "webhooks",
    params(("name" = String, Path, description = "The target's name")),
    responses(
        (status = 200, description = "How many dead deliveries went back to pending", body = super::openapi::RetriedDoc),
        (status = 400, description = "Bad target name", body = super::openapi::ErrorBody),
        (status = 404, description = "No such target", body = super::openapi::ErrorBody),
        (status = 503, description = "Webhooks are not running, or their store is unavailable", body = super::openapi::ErrorBody),
        (status = 500, description = "Internal error", body = super::openapi::ErrorBody),
    ),
)]
pub(super) async fn retry(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let name = target_name(name)?;
    let webhooks = webhooks(&state)?;
    let retried = blocking(move || webhooks.retry_dead(&name)).await?;
    Ok(Json(json!({"retried": retried})))
}

/// The `deliveries` of `GET /api/v1/incidents/{id}`: every delivery of the incident's changes,
/// in update sequence order (empty when webhooks are not running).
pub(super) async fn incident_deliveries(
    state: &AppState,
    id: IncidentId,
) -> Result<Value, ApiError> {
    let Ok(webhooks) = webhooks(state) else {
        return Ok(json!([]));
    };
    let found = blocking(move || webhooks.deliveries_for_incident(id, INCIDENT_DELIVERIES)).await?;
    Ok(Value::Array(found.iter().map(delivery_json).collect()))
}
