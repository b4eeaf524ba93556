//! `/api/v1/incidents…`: listing and polling, detail, acknowledge/resolve, and the event stream.
//!
//! - `GET /api/v1/incidents?status=S&since=CURSOR&limit=N` → `{"incidents":[…],"next":CURSOR}`.
//!   With `since`: the change log after the cursor, each change once, in update-sequence order,
//!   each entry the incident's state as of that change (`update_seq`, `change`); `next` is the
//!   last returned sequence (`since` itself when nothing is new), so polling with `next` never
//!   misses or repeats a change. Without `since`: the current state of each incident (its latest
//!   change), ordered by that change; `next` is a cursor to poll from without missing anything.
//!   `status` keeps only entries in that state (`open`, `acknowledged`, `resolved`). `limit`
//!   defaults to 100, at most 1000.
//! - `GET /api/v1/incidents/{id}`: the incident with `evidence` (event `seq`s), `search` (a
//!   link to `/api/v1/search` that finds its events) and `deliveries` (webhook deliveries of
//!   its changes, see `webhooks.rs`).
//! - `POST /api/v1/incidents/{id}/ack`, `POST /api/v1/incidents/{id}/resolve` →
//!   `{"incident":{…},"changed":BOOL,"update_seq":N|null}`. Idempotent: repeating a transition is
//!   200 with `"changed":false` and no new change. Acknowledging a resolved incident is also a
//!   200 no-op (it stays resolved; resolution is final), so a retried or racing ack never fails.
//! - `GET /api/v1/incidents/stream`: server-sent events. Each change is an unnamed event
//!   (`message`), `id:` its update sequence, `data:` the same JSON as a list entry. Resume with
//!   the `Last-Event-ID` header (it wins) or `?since=`: missed changes are replayed from the log,
//!   then live ones follow, with no gap or duplicate at the seam. Without either, only new
//!   changes are sent. A subscriber that falls behind the live feed gets `event: lagged`
//!   (`{"missed":N,"resume_after":SEQ}`) and is then caught up from the log. Keep-alive comments
//!   every 15 s. A store error ends the stream with `event: error`; reconnect to resume.
//!
//! Ids, cursors and limits come from the URL and are untrusted: anything that does not parse is
//! a 400, an unknown id a 404.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use cairn_correlate::incident::{
    Incident, IncidentChange, IncidentError, IncidentHandle, IncidentId, IncidentStatus,
    Transition, UpdateSeq,
};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::{ApiError, AppState, IncidentRoutes};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;
/// Changes read from the log per step of a stream's replay.
const REPLAY_PAGE: usize = 500;
const KEEP_ALIVE: Duration = Duration::from_secs(15);

impl From<IncidentError> for ApiError {
    fn from(error: IncidentError) -> ApiError {
        match error {
            IncidentError::NotFound(id) => ApiError::NotFound(format!("no incident {id}")),
            unavailable @ (IncidentError::Unavailable(_) | IncidentError::Corruption { .. }) => {
                ApiError::Unavailable(unavailable.to_string())
            }
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListParams {
    status: Option<String>,
    since: Option<String>,
    limit: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StreamParams {
    since: Option<String>,
}

fn routes(state: &AppState) -> Result<IncidentRoutes, ApiError> {
    state
        .inner
        .incidents
        .get()
        .cloned()
        .ok_or_else(|| ApiError::Unavailable("the incident store is not running".to_string()))
}

/// Runs a blocking store call on tokio's blocking pool.
pub(super) async fn blocking<T: Send + 'static, E: Into<ApiError> + Send + 'static>(
    call: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|error| ApiError::Internal(format!("store task failed: {error}")))?
        .map_err(Into::into)
}

/// A `limit` parameter: `default` when absent, else an integer from 1 to `max`.
pub(super) fn parse_limit(
    text: Option<&str>,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match text {
        None | Some("") => Ok(default),
        Some(text) => text
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|limit| (1..=max).contains(limit))
            .ok_or_else(|| {
                ApiError::BadRequest(format!("limit must be an integer from 1 to {max}"))
            }),
    }
}

fn parse_cursor(name: &str, text: &str) -> Result<UpdateSeq, ApiError> {
    text.trim().parse::<u64>().map(UpdateSeq).map_err(|_| {
        ApiError::BadRequest(format!(
            "{name} must be an update sequence (an integer from 0), got `{}`",
            text.chars().take(64).collect::<String>()
        ))
    })
}

fn parse_id(id: Result<Path<String>, PathRejection>) -> Result<IncidentId, ApiError> {
    let Path(text) = id.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    text.parse::<u64>().map(IncidentId).map_err(|_| {
        ApiError::BadRequest(format!(
            "an incident id is a positive integer, got `{}`",
            text.chars().take(64).collect::<String>()
        ))
    })
}

fn parse_status(text: &str) -> Result<IncidentStatus, ApiError> {
    IncidentStatus::parse(text.trim()).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "status must be open, acknowledged or resolved, got `{}`",
            text.chars().take(64).collect::<String>()
        ))
    })
}

/// The JSON of an incident's state.
pub(crate) fn incident_json(incident: &Incident) -> Map<String, Value> {
    let group: Map<String, Value> = incident
        .group
        .iter()
        .map(|(field, value)| (field.clone(), Value::String(value.clone())))
        .collect();
    let mut object = Map::new();
    object.insert("id".into(), json!(incident.id.0));
    object.insert("status".into(), json!(incident.status.name()));
    object.insert("rule".into(), json!(incident.rule));
    object.insert("title".into(), json!(incident.title));
    object.insert("level".into(), json!(incident.level.name()));
    object.insert("kind".into(), json!(incident.kind.name()));
    object.insert("group".into(), Value::Object(group));
    object.insert("first_seen".into(), json!(incident.first_seen.to_rfc3339()));
    object.insert("last_seen".into(), json!(incident.last_seen.to_rfc3339()));
    object.insert("created".into(), json!(incident.created.to_rfc3339()));
    object.insert("updated".into(), json!(incident.updated.to_rfc3339()));
    object.insert("alert_count".into(), json!(incident.alert_count));
    object.insert("event_count".into(), json!(incident.event_count));
    object.insert(
        "possibly_incomplete".into(),
        json!(incident.possibly_incomplete),
    );
    object.insert("search".into(), json!(incident.search_link()));
    object
}

/// The JSON of a change-log entry: the state plus `update_seq` and `change`.
fn change_json(change: &IncidentChange) -> Value {
    let mut object = incident_json(&change.incident);
    object.insert("update_seq".into(), json!(change.seq.0));
    object.insert("change".into(), json!(change.kind.name()));
    Value::Object(object)
}

/// `GET /api/v1/incidents`.
#[utoipa::path(
    get,
    path = "/api/v1/incidents",
    tag = "incidents",
    params(
        ("status" = inline(Option<super::openapi::IncidentStatusDoc>), Query, description = "Only incidents in this state"),
        ("since" = Option<u64>, Query, description = "Update sequence: the changes after it, each once, in order"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Entries per page (default 100)"),
    ),
    responses(
        (status = 200, description = "Incidents (or changes since the cursor)", body = super::openapi::IncidentPage),
        (status = 400, description = "Bad parameter", body = super::openapi::ErrorBody),
        (status = 503, description = "The incident store is unavailable", body = super::openapi::ErrorBody),
        (status = 500, description = "Internal error", body = super::openapi::ErrorBody),
    ),
)]
pub(super) async fn list(
    State(state): State<AppState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(params) = params.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    let routes = routes(&state)?;
    let status = params
        .status
        .as_deref()
        .filter(|text| !text.is_empty())
        .map(parse_status)
        .transpose()?;
    let since = params
        .since
        .as_deref()
        .filter(|text| !text.is_empty())
        .map(|text| parse_cursor("since", text))
        .transpose()?;
    let limit = parse_limit(params.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
    let handle = routes.handle;
    let page = blocking(move || match since {
        Some(since) => handle.changes_since(since, status, limit),
        None => handle.current(status, limit),
    })
    .await?;
    let incidents: Vec<Value> = page.changes.iter().map(change_json).collect();
    Ok(Json(json!({"incidents": incidents, "next": page.next.0})))
}

/// `GET /api/v1/incidents/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/incidents/{id}",
    tag = "incidents",
    params(("id" = u64, Path, minimum = 1, description = "Incident id")),
    responses(
        (status = 200, description = "The incident with its evidence", body = super::openapi::IncidentDoc),
        (status = 400, description = "Bad id", body = super::openapi::ErrorBody),
        (status = 404, description = "No such incident", body = super::openapi::ErrorBody),
        (status = 503, description = "The incident store is unavailable", body = super::openapi::ErrorBody),
        (status = 500, description = "Internal error", body = super::openapi::ErrorBody),
    ),
)]
pub(super) async fn detail(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(id)?;
    let handle = routes(&state)?.handle;
    let detail = blocking(move || handle.get(id))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no incident {id}")))?;
    let mut object = incident_json(&detail.incident);
    object.insert("update_seq".into(), json!(detail.last_change.0));
    let evidence: Vec<u64> = detail.evidence.iter().map(|seq| seq.0).collect();
    object.insert("evidence".into(), json!(evidence));
    let deliveries = super::webhooks::incident_deliveries(&state, id).await?;
    object.insert("deliveries".into(), deliveries);
    Ok(Json(Value::Object(object)))
}

fn transition_json(transition: &Transition) -> Json<Value> {
    Json(json!({
        "incident": Value::Object(incident_json(transition.incident())),
        "changed": transition.change_seq().is_some(),
        "update_seq": transition.change_seq().map(|seq| seq.0),
    }))
}

/// `POST /api/v1/incidents/{id}/ack`: acknowledges the incident (idempotent).
#[utoipa::path(
    post,
    path = "/api/v1/incidents/{id}/ack",
    tag = "incidents",
    params(("id" = u64, Path, minimum = 1, description = "Incident id")),
    responses(
        (status = 200, description = "The incident's state, and whether this call changed it", body = super::openapi::TransitionDoc),
        (status = 400, description = "Bad id", body = super::openapi::ErrorBody),
        (status = 404, description = "No such incident", body = super::openapi::ErrorBody),
        (status = 503, description = "The incident store is unavailable", body = super::openapi::ErrorBody),
        (status = 500, description = "Internal error", body = super::openapi::ErrorBody),
    ),
)]
pub(super) async fn acknowledge(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(id)?;
    let handle = routes(&state)?.handle;
    let transition = blocking(move || handle.acknowledge(id)).await?;
    Ok(transition_json(&transition))
}

/// `POST /api/v1/incidents/{id}/resolve`: resolves the incident (idempotent).
#[utoipa::path(
    post,
    path = "/api/v1/incidents/{id}/resolve",
    tag = "incidents",
    params(("id" = u64, Path, minimum = 1, description = "Incident id")),
    responses(
        (status = 200, description = "The incident's state, and whether this call changed it", body = super::openapi::TransitionDoc),
        (status = 400, description = "Bad id", body = super::openapi::ErrorBody),
        (status = 404, description = "No such incident", body = super::openapi::ErrorBody),
        (status = 503, description = "The incident store is unavailable", body = super::openapi::ErrorBody),
        (status = 500, description = "Internal error", body = super::openapi::ErrorBody),
    ),
)]
pub(super) async fn resolve(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(id)?;
    let handle = routes(&state)?.handle;
    let transition = blocking(move || handle.resolve(id)).await?;
    Ok(transition_json(&transition))
}

/// `GET /api/v1/incidents/stream`.
#[utoipa::path(
    get,
    path = "/api/v1/incidents/stream",
    tag = "incidents",
    params(
        ("since" = Option<u64>, Query, description = "Update sequence to resume after"),
        ("Last-Event-ID" = Option<u64>, Header, description = "Update sequence to resume after (wins over since)"),
    ),
    responses(
        (status = 200, description = "Server-sent events: each incident change (`id:` its update sequence)", body = String, content_type = "text/event-stream"),
        (status = 400, description = "Bad cursor", body = super::openapi::ErrorBody),
        (status = 503, description = "The incident store is unavailable", body = super::openapi::ErrorBody),
        (status = 500, description = "Internal error", body = super::openapi::ErrorBody),
    ),
)]
pub(super) async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<StreamParams>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Query(params) = params.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    let routes = routes(&state)?;
    let from_header = match headers.get("last-event-id") {
        None => None,
        Some(value) => {
            let text = value.to_str().map_err(|_| {
                ApiError::BadRequest("Last-Event-ID must be an update sequence".to_string())
            })?;
            Some(parse_cursor("Last-Event-ID", text)?)
        }
    };
    let from_query = params
        .since
        .as_deref()
        .filter(|text| !text.is_empty())
        .map(|text| parse_cursor("since", text))
        .transpose()?;
    // Subscribe before reading the log: every change committed from here on is in the feed,
    // every earlier one in the log; the cursor drops what both deliver.
    let receiver = routes.handle.subscribe();
    let cursor = match from_header.or(from_query) {
        Some(cursor) => cursor,
        None => {
            let handle = routes.handle.clone();
            blocking(move || handle.last_seq()).await?
        }
    };
    let state = ChangeStream {
        handle: routes.handle,
        receiver,
        shutdown: routes.shutdown,
        cursor,
        backlog: VecDeque::new(),
        replaying: true,
        pending: None,
        finished: false,
    };
    let events = futures_util::stream::unfold(state, |mut state| async move {
        let event = state.next_event().await?;
        Some((Ok(event), state))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// One subscriber's position: replaying the log, then following the live feed.
struct ChangeStream {
    handle: IncidentHandle,
    receiver: tokio::sync::broadcast::Receiver<Arc<IncidentChange>>,
    shutdown: CancellationToken,
    /// The last update sequence sent (or the starting point).
    cursor: UpdateSeq,
    backlog: VecDeque<Arc<IncidentChange>>,
    /// Read the log after `cursor` before taking from the live feed.
    replaying: bool,
    /// A live change that arrived after a gap; sent after the replay if still new.
    pending: Option<Arc<IncidentChange>>,
    finished: bool,
}

impl ChangeStream {
    async fn next_event(&mut self) -> Option<Event> {
        if self.finished {
            return None;
        }
        loop {
            if let Some(change) = self.backlog.pop_front() {
                if change.seq <= self.cursor {
                    continue;
                }
                self.cursor = change.seq;
                return Some(change_event(&change));
            }
            if self.replaying {
                let handle = self.handle.clone();
                let cursor = self.cursor;
                let page = tokio::select! {
                    () = self.shutdown.cancelled() => return None,
                    page = blocking(move || handle.changes_since(cursor, None, REPLAY_PAGE)) => page,
                };
                match page {
                    Ok(page) if page.changes.is_empty() => {
                        self.replaying = false;
                        self.backlog.extend(self.pending.take());
                    }
                    Ok(page) => self.backlog.extend(page.changes.into_iter().map(Arc::new)),
                    Err(error) => {
                        self.finished = true;
                        return Some(
                            Event::default()
                                .event("error")
                                .data(json!({"message": error.to_string()}).to_string()),
                        );
                    }
                }
                continue;
            }
            let received = tokio::select! {
                () = self.shutdown.cancelled() => return None,
                received = self.receiver.recv() => received,
            };
            match received {
                Ok(change) if change.seq <= self.cursor => {}
                Ok(change) if change.seq.0 > self.cursor.0.saturating_add(1) => {
                    // A gap (a change published before this subscriber caught up): the log
                    // has everything up to this change.
                    self.replaying = true;
                    self.pending = Some(change);
                }
                Ok(change) => {
                    self.cursor = change.seq;
                    return Some(change_event(&change));
                }
                Err(RecvError::Lagged(missed)) => {
                    self.replaying = true;
                    return Some(Event::default().event("lagged").data(
                        json!({"missed": missed, "resume_after": self.cursor.0}).to_string(),
                    ));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

fn change_event(change: &IncidentChange) -> Event {
    Event::default()
        .id(change.seq.0.to_string())
        .data(change_json(change).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_cursors_and_statuses_are_bad_requests() {
        assert_eq!(
            parse_cursor("since", " 42 ").expect("cursor"),
            UpdateSeq(42)
        );
        for bad in ["-1", "1.5", "x", "", "99999999999999999999999"] {
            assert!(matches!(
                parse_cursor("since", bad),
                Err(ApiError::BadRequest(_))
            ));
        }
        assert!(parse_status("open").is_ok());
        assert!(matches!(
            parse_status("closed"),
            Err(ApiError::BadRequest(_))
        ));
    }
}
