//! The Elasticsearch-compatible search subset: `GET|POST /_search`, `GET|POST /{index}/_search`
//! and `POST /_msearch` (what Grafana's Elasticsearch data source sends), answering in
//! Elasticsearch's response shape so that the official clients and Grafana can read Cairn.
//!
//! # What is understood
//! - Queries: `match_all`, `match_none`, `query_string` / `simple_query_string` (Cairn's query
//!   syntax, `OR` between bare terms unless `default_operator` is `AND`), `match` (with
//!   `operator`), `match_phrase`, `term`, `terms`, `ids` (event `seq`s), `range` (on
//!   `@timestamp`: epoch milliseconds, RFC 3339, `now`, `now-15m`; on numeric fields), and
//!   `bool` (`must`, `filter`, `should`, `must_not`, `minimum_should_match`). They are compiled
//!   into tantivy queries directly ([`cairn_index::EventQuery`]), never into query text.
//! - `size` (default 10), `from`, `sort` on `@timestamp` (`desc` or `asc`; `_doc`/`_score`
//!   ignored), `aggs`/`aggregations` (`terms`, `date_histogram` and what tantivy implements of
//!   Elasticsearch's aggregations), `q`, `size`, `from` and `sort` as URL parameters. Keys that
//!   only shape what Elasticsearch returns (`track_total_hits`, `_source`, `highlight`…) are
//!   accepted and ignored; any other key is a 400.
//! - `from + size` is at most [`cairn_index::MAX_SEARCH_LIMIT`] (Elasticsearch's
//!   `max_result_window` is 10,000; Cairn's pages are smaller).
//!
//! # Field names
//! Elasticsearch/ECS names map onto Cairn's ([`cairn_field`]): `@timestamp` → `ts`,
//! `host.name` → `host`, `process.name`/`service.name` → `app`, `log.level` → `severity`,
//! `log.syslog.facility.name` → `facility`, `rule.id` → `signature`, `rule.name` → `rule`;
//! Cairn's own names pass through; any other name is a dynamic field (`user` → `fields.user`);
//! a `.keyword` suffix is dropped. Hits carry `_index`, `_id` (the event's `seq`), `_source`
//! (the event in ECS-like form with `@timestamp`) and `sort`.
//!
//! Every response (errors included) carries `X-Elastic-Product: Elasticsearch`, which the
//! official clients require. Errors use Elasticsearch's shape
//! (`{"error":{"root_cause":[…],"type":…,"reason":…},"status":N}`), not Cairn's.

use std::collections::HashMap;
use std::ops::Bound;
use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cairn_index::{
    AggregationRequest, EventHit, EventQuery, IndexError, MAX_SEARCH_LIMIT, QueryValue, RangeValue,
    SearchRequest, SearchResponse,
};
use cairn_ingest::Timestamp;
use serde_json::{Map, Value, json};

use super::AppState;

/// `_index` of hits when the request named none.
const DEFAULT_INDEX_NAME: &str = "cairn";
/// Elasticsearch's default `size`.
const DEFAULT_SIZE: usize = 10;
/// Most searches in one `_msearch`.
const MAX_MSEARCH: usize = 64;
/// Body keys accepted and ignored (they shape Elasticsearch's output, not the result set).
const IGNORED_KEYS: [&str; 13] = [
    "track_total_hits",
    "_source",
    "stored_fields",
    "docvalue_fields",
    "script_fields",
    "fields",
    "highlight",
    "timeout",
    "version",
    "seq_no_primary_term",
    "explain",
    "track_scores",
    "profile",
];

/// An error in Elasticsearch's shape.
#[derive(Debug)]
pub(super) struct EsError {
    status: StatusCode,
    kind: &'static str,
    reason: String,
}

impl EsError {
    fn parsing(reason: impl Into<String>) -> EsError {
        EsError {
            status: StatusCode::BAD_REQUEST,
            kind: "parsing_exception",
            reason: reason.into(),
        }
    }

    fn json(&self) -> Value {
        json!({
            "error": {
                "root_cause": [{"type": self.kind, "reason": self.reason}],
                "type": self.kind,
                "reason": self.reason,
            },
            "status": self.status.as_u16(),
        })
    }
}

impl From<IndexError> for EsError {
    fn from(error: IndexError) -> EsError {
        match error {
            IndexError::BadQuery(reason) => EsError {
                status: StatusCode::BAD_REQUEST,
                kind: "search_phase_execution_exception",
                reason,
            },
            IndexError::Corruption { .. } | IndexError::Unavailable(_) => EsError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                kind: "unavailable_shards_exception",
                reason: error.to_string(),
            },
            other => EsError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                kind: "exception",
                reason: other.to_string(),
            },
        }
    }
}

impl IntoResponse for EsError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(reason = %self.reason, "elasticsearch search failed");
        }
        elastic_json(self.status, &self.json())
    }
}

/// A JSON response with the header the Elasticsearch clients check.
fn elastic_json(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(
        "x-elastic-product",
        HeaderValue::from_static("Elasticsearch"),
    );
    response
}

/// `GET|POST /_search`.
#[utoipa::path(
    method(get, post),
    path = "/_search",
    tag = "elasticsearch",
    request_body(content = Option<Object>, content_type = "application/json", description = "Elasticsearch search body (query, size, from, sort, aggs); none: every event"),
    responses(
        (status = 200, description = "Hits and aggregations in Elasticsearch's shape", body = Object),
        super::openapi::ElasticSearchErrors,
    ),
)]
pub(super) async fn search_all(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    respond(search(&state, DEFAULT_INDEX_NAME, &params, body).await)
}

/// `GET|POST /{index}/_search`.
#[utoipa::path(
    method(get, post),
    path = "/{index}/_search",
    tag = "elasticsearch",
    params(("index" = String, Path, description = "Index name (any; Cairn has one event store)")),
    request_body(content = Option<Object>, content_type = "application/json", description = "Elasticsearch search body (query, size, from, sort, aggs); none: every event"),
    responses(
        (status = 200, description = "Hits and aggregations in Elasticsearch's shape", body = Object),
        super::openapi::ElasticSearchErrors,
    ),
)]
pub(super) async fn search_index(
    State(state): State<AppState>,
    Path(index): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let name = index.split(',').next().unwrap_or(DEFAULT_INDEX_NAME);
    respond(search(&state, name, &params, body).await)
}

/// `GET|POST /{index}/_msearch`: as [`msearch`] (each header names its index).
#[utoipa::path(
    method(get, post),
    path = "/{index}/_msearch",
    tag = "elasticsearch",
    params(("index" = String, Path, description = "Index name (any; Cairn has one event store)")),
    request_body(content = String, content_type = "application/x-ndjson", description = "Pairs of header and search body lines"),
    responses(
        (status = 200, description = "One answer per search, in order", body = Object),
        super::openapi::ElasticSearchErrors,
    ),
)]
pub(super) async fn msearch_index(
    state: State<AppState>,
    _index: Path<String>,
    params: Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    msearch(state, params, body).await
}

/// `GET|POST /_msearch`: NDJSON of (header, body) pairs; each answer in `responses`, failures
/// as error objects in place.
#[utoipa::path(
    method(get, post),
    path = "/_msearch",
    tag = "elasticsearch",
    request_body(content = String, content_type = "application/x-ndjson", description = "Pairs of header and search body lines"),
    responses(
        (status = 200, description = "One answer per search, in order", body = Object),
        super::openapi::ElasticSearchErrors,
    ),
)]
pub(super) async fn msearch(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let lines: Vec<&[u8]> = body
        .split(|byte| *byte == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .collect();
    if lines.is_empty() || !lines.len().is_multiple_of(2) || lines.len() > 2 * MAX_MSEARCH {
        return EsError::parsing(format!(
            "_msearch takes pairs of header and body lines, at most {MAX_MSEARCH} searches"
        ))
        .into_response();
    }
    let mut responses = Vec::with_capacity(lines.len() / 2);
    for pair in lines.chunks(2) {
        let header: Value = serde_json::from_slice(pair[0]).unwrap_or(Value::Null);
        let name = match &header["index"] {
            Value::String(name) => name.clone(),
            Value::Array(names) => names
                .first()
                .and_then(Value::as_str)
                .unwrap_or(DEFAULT_INDEX_NAME)
                .to_owned(),
            _ => DEFAULT_INDEX_NAME.to_owned(),
        };
        let answer = match search(&state, &name, &params, body.slice_ref(pair[1])).await {
            Ok(mut answer) => {
                answer["status"] = json!(200);
                answer
            }
            Err(error) => error.json(),
        };
        responses.push(answer);
    }
    elastic_json(
        StatusCode::OK,
        &json!({"took": started.elapsed().as_millis() as u64, "responses": responses}),
    )
}

/// `GET /_mapping` and `GET /{index}/_mapping`: the fixed part of the `_source` of hits, with
/// Elasticsearch types (Grafana lists fields and finds the time field from it). Dynamic fields
/// (`user`, `sd.*`) are not listed but can be queried and aggregated.
#[utoipa::path(
    get,
    path = "/_mapping",
    tag = "elasticsearch",
    responses(
        (status = 200, description = "The fields of events, with Elasticsearch types", body = Object),
        super::openapi::ElasticSearchErrors,
    ),
)]
pub(super) async fn mapping() -> Response {
    mapping_of(DEFAULT_INDEX_NAME.to_owned())
}

/// `GET /{index}/_mapping`: as [`mapping`].
#[utoipa::path(
    get,
    path = "/{index}/_mapping",
    tag = "elasticsearch",
    params(("index" = String, Path, description = "Index name (any; Cairn has one event store)")),
    responses(
        (status = 200, description = "The fields of events, with Elasticsearch types", body = Object),
        super::openapi::ElasticSearchErrors,
    ),
)]
pub(super) async fn mapping_index(Path(index): Path<String>) -> Response {
    mapping_of(index)
}

fn mapping_of(name: String) -> Response {
    let keyword = json!({"type": "keyword"});
    let properties = json!({
        "@timestamp": {"type": "date"},
        "message": {"type": "text"},
        "host": {"properties": {"name": keyword}},
        "process": {"properties": {"name": keyword, "pid": keyword}},
        "log": {"properties": {
            "level": keyword,
            "syslog": {"properties": {"facility": {"properties": {"name": keyword}}, "msgid": keyword}},
        }},
        "event": {"properties": {
            "created": {"type": "date"},
            "original": {"type": "keyword", "index": false},
            "sequence": {"type": "long"},
        }},
        "rule": {"properties": {"id": keyword, "name": {"type": "text"}}},
    });
    elastic_json(
        StatusCode::OK,
        &json!({ name: {"mappings": {"properties": properties}} }),
    )
}

fn respond(result: Result<Value, EsError>) -> Response {
    match result {
        Ok(body) => elastic_json(StatusCode::OK, &body),
        Err(error) => error.into_response(),
    }
}

/// Parses, runs and renders one search, all on the blocking pool (a body can be large).
async fn search(
    state: &AppState,
    index_name: &str,
    params: &HashMap<String, String>,
    body: Bytes,
) -> Result<Value, EsError> {
    let started = Instant::now();
    let index = std::sync::Arc::clone(&state.inner.index);
    let params = params.clone();
    let index_name = index_name.to_owned();
    tokio::task::spawn_blocking(move || {
        let body: Value = if body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            serde_json::from_slice(&body)
                .map_err(|error| EsError::parsing(format!("request body is not JSON: {error}")))?
        };
        let plan = SearchPlan::parse(&body, &params)?;
        let (skip, response) = plan.run(&index)?;
        Ok(render(&index_name, skip, response, started))
    })
    .await
    .map_err(|error| EsError::from(IndexError::Internal(error.to_string())))?
}

/// A translated request.
#[derive(Debug)]
struct SearchPlan {
    query: EventQuery,
    request: SearchRequest,
    /// Hits to skip (`from`).
    from: usize,
}

impl SearchPlan {
    fn parse(body: &Value, params: &HashMap<String, String>) -> Result<SearchPlan, EsError> {
        let Value::Object(body) = body else {
            return Err(EsError::parsing("request body must be a JSON object"));
        };
        for key in body.keys() {
            let known = matches!(
                key.as_str(),
                "query" | "size" | "from" | "sort" | "aggs" | "aggregations"
            ) || IGNORED_KEYS.contains(&key.as_str());
            if !known {
                return Err(EsError::parsing(format!(
                    "unknown key [{key}] in the search body"
                )));
            }
        }
        let mut query = match body.get("query") {
            Some(query) => translate(query)?,
            None => EventQuery::All,
        };
        if let Some(text) = params.get("q") {
            query = EventQuery::Bool {
                must: vec![
                    query,
                    EventQuery::Text {
                        query: rewrite_field_names(text),
                        any_word: true,
                    },
                ],
                should: Vec::new(),
                must_not: Vec::new(),
                minimum_should_match: None,
            };
        }
        let size = count(
            params
                .get("size")
                .map(|text| json!(text))
                .as_ref()
                .or(body.get("size")),
            "size",
        )?
        .unwrap_or(DEFAULT_SIZE);
        let from = count(
            params
                .get("from")
                .map(|text| json!(text))
                .as_ref()
                .or(body.get("from")),
            "from",
        )?
        .unwrap_or(0);
        if from + size > MAX_SEARCH_LIMIT {
            return Err(EsError {
                status: StatusCode::BAD_REQUEST,
                kind: "illegal_argument_exception",
                reason: format!(
                    "Result window is too large, from + size must be less than or equal to: \
                     [{MAX_SEARCH_LIMIT}] but was [{}]",
                    from + size
                ),
            });
        }
        let sort = params
            .get("sort")
            .map(|text| json!(text))
            .or_else(|| body.get("sort").cloned());
        let oldest_first = sort
            .as_ref()
            .map(oldest_first)
            .transpose()?
            .unwrap_or(false);
        let aggregations = match body.get("aggs").or_else(|| body.get("aggregations")) {
            Some(aggs) => Some(AggregationRequest::from_json(aggs.clone(), &|field| {
                Some(cairn_field(field))
            })?),
            None => None,
        };
        let (time_from, time_to) = time_bounds(&query);
        Ok(SearchPlan {
            query,
            request: SearchRequest {
                query: String::new(),
                from: time_from,
                to: time_to,
                limit: from + size,
                cursor: None,
                aggregations,
                oldest_first,
            },
            from,
        })
    }

    /// Runs the search (blocking).
    fn run(self, index: &cairn_index::EventIndex) -> Result<(usize, SearchResponse), EsError> {
        let compiled = index.compile_query(&self.query)?;
        let response = index.search_query(compiled.as_ref(), &self.request)?;
        Ok((self.from, response))
    }
}

/// A non-negative integer parameter (number or numeric string).
fn count(value: Option<&Value>, name: &str) -> Result<Option<usize>, EsError> {
    let Some(value) = value else { return Ok(None) };
    let number = match value {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.trim().parse::<u64>().ok(),
        _ => None,
    };
    number
        .and_then(|number| usize::try_from(number).ok())
        .map(Some)
        .ok_or_else(|| EsError::parsing(format!("[{name}] must be a non-negative integer")))
}

/// Whether `sort` asks for oldest first; only `@timestamp` (or `ts`) can be sorted on.
fn oldest_first(sort: &Value) -> Result<bool, EsError> {
    let mut items: Vec<(String, String)> = Vec::new();
    let mut push = |field: &str, order: &str| items.push((field.to_owned(), order.to_owned()));
    let entries: Vec<&Value> = match sort {
        Value::Array(entries) => entries.iter().collect(),
        other => vec![other],
    };
    for entry in entries {
        match entry {
            Value::String(text) => {
                for part in text.split(',') {
                    let (field, order) = part.split_once(':').unwrap_or((part, "desc"));
                    push(field.trim(), order.trim());
                }
            }
            Value::Object(map) => {
                for (field, spec) in map {
                    let order = match spec {
                        Value::String(order) => order.as_str(),
                        Value::Object(options) => options
                            .get("order")
                            .and_then(Value::as_str)
                            .unwrap_or("desc"),
                        _ => "desc",
                    };
                    push(field, order);
                }
            }
            _ => {
                return Err(EsError::parsing(
                    "[sort] must be a string, an object or an array",
                ));
            }
        }
    }
    for (field, order) in items {
        if field == "_doc" || field == "_score" {
            continue;
        }
        if cairn_field(&field) != "ts" {
            return Err(EsError::parsing(format!(
                "sorting is only by time (@timestamp), not [{field}]"
            )));
        }
        return match order.to_ascii_lowercase().as_str() {
            "asc" => Ok(true),
            "desc" => Ok(false),
            other => Err(EsError::parsing(format!("unknown sort order [{other}]"))),
        };
    }
    Ok(false)
}

/// Maps an Elasticsearch/ECS field name onto Cairn's (see the module documentation).
pub(crate) fn cairn_field(name: &str) -> String {
    let name = name.strip_suffix(".keyword").unwrap_or(name);
    let mapped = match name {
        "@timestamp" | "timestamp" | "ts" => "ts",
        "message" | "msg" => "message",
        "host.name" | "host.hostname" | "hostname" | "host" => "host",
        "process.name" | "service.name" | "app" | "program" | "appname" => "app",
        "process.pid" | "procid" => "procid",
        "log.level" | "severity" | "log.syslog.severity.name" => "severity",
        "log.syslog.severity.code" | "severity_code" => "severity_code",
        "log.syslog.facility.name" | "facility" => "facility",
        "rule.id" | "signature" | "signatures" => "signature",
        "rule.name" | "rule" | "rules" => "rule",
        "event.sequence" | "_id" | "seq" => "seq",
        "log.syslog.msgid" | "msgid" => "msgid",
        "flags" | "format" | "source" | "peer" | "received_at" => name,
        other if other.starts_with("fields.") => other,
        other => return format!("fields.{other}"),
    };
    mapped.to_owned()
}

/// Rewrites `es.name:` field prefixes in query text to Cairn's names (`host.name:web1` →
/// `host:web1`); the rest of the text is left alone.
fn rewrite_field_names(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(colon) = rest.find(':') {
        let before = &rest[..colon];
        let start = before
            .rfind(|c: char| !(c.is_alphanumeric() || matches!(c, '.' | '_' | '@' | '-')))
            .map_or(0, |position| position + 1);
        let field = &before[start..];
        out.push_str(&before[..start]);
        let known = !field.is_empty() && (field.contains('.') || field.starts_with('@'));
        if known && !field.starts_with("fields.") {
            out.push_str(&cairn_field(field));
        } else {
            out.push_str(field);
        }
        out.push(':');
        rest = &rest[colon + 1..];
    }
    out.push_str(rest);
    out
}

/// Translates one query object.
fn translate(query: &Value) -> Result<EventQuery, EsError> {
    let Value::Object(map) = query else {
        return Err(EsError::parsing("a query must be an object"));
    };
    let mut entries = map.iter();
    let (Some((kind, body)), None) = (entries.next(), entries.next()) else {
        return Err(EsError::parsing("a query object must have exactly one key"));
    };
    match kind.as_str() {
        "match_all" => Ok(EventQuery::All),
        "match_none" => Ok(EventQuery::Nothing),
        "query_string" | "simple_query_string" => {
            let text = body["query"]
                .as_str()
                .ok_or_else(|| EsError::parsing(format!("[{kind}] needs [query]")))?;
            let any_word = !body["default_operator"]
                .as_str()
                .is_some_and(|operator| operator.eq_ignore_ascii_case("and"));
            let trimmed = text.trim();
            if trimmed.is_empty() || trimmed == "*" {
                return Ok(EventQuery::All);
            }
            Ok(EventQuery::Text {
                query: rewrite_field_names(trimmed),
                any_word,
            })
        }
        "match" | "match_phrase" => {
            let (field, spec) = single_field(kind, body)?;
            let (text, operator) = match spec {
                Value::Object(options) => (
                    options.get("query").cloned().unwrap_or(Value::Null),
                    options
                        .get("operator")
                        .and_then(Value::as_str)
                        .unwrap_or("or"),
                ),
                other => (other.clone(), "or"),
            };
            let text = match text {
                Value::String(text) => text,
                Value::Number(_) | Value::Bool(_) => text.to_string(),
                _ => return Err(EsError::parsing(format!("[{kind}] needs a query text"))),
            };
            let field = cairn_field(field);
            Ok(if kind == "match" {
                EventQuery::Match {
                    field,
                    text,
                    all_words: operator.eq_ignore_ascii_case("and"),
                }
            } else {
                EventQuery::Phrase { field, text }
            })
        }
        "term" => {
            let (field, spec) = single_field(kind, body)?;
            let value = match spec {
                Value::Object(options) => options.get("value").cloned().unwrap_or(Value::Null),
                other => other.clone(),
            };
            Ok(EventQuery::Term {
                field: cairn_field(field),
                value: query_value(&value)?,
            })
        }
        "terms" => {
            let (field, values) = single_field(kind, body)?;
            let values = values
                .as_array()
                .ok_or_else(|| EsError::parsing("[terms] takes an array of values"))?;
            let field = cairn_field(field);
            let should = values
                .iter()
                .map(|value| {
                    Ok(EventQuery::Term {
                        field: field.clone(),
                        value: query_value(value)?,
                    })
                })
                .collect::<Result<Vec<_>, EsError>>()?;
            Ok(any_of(should))
        }
        "ids" => {
            let values = body["values"]
                .as_array()
                .ok_or_else(|| EsError::parsing("[ids] needs [values]"))?;
            let should = values
                .iter()
                .map(|value| {
                    let seq = match value {
                        Value::String(text) => text.parse::<i64>().ok(),
                        Value::Number(number) => number.as_i64(),
                        _ => None,
                    };
                    Ok(match seq {
                        Some(seq) => EventQuery::Term {
                            field: "seq".to_owned(),
                            value: QueryValue::Integer(seq),
                        },
                        None => EventQuery::Nothing,
                    })
                })
                .collect::<Result<Vec<_>, EsError>>()?;
            Ok(any_of(should))
        }
        "range" => {
            let (field, spec) = single_field(kind, body)?;
            let field = cairn_field(field);
            let format = spec["format"].as_str().unwrap_or_default();
            let bound = |key: &str| -> Result<Option<RangeValue>, EsError> {
                match spec.get(key) {
                    None | Some(Value::Null) => Ok(None),
                    Some(value) if field == "ts" => time_value(value, format).map(Some),
                    Some(value) => numeric_value(value).map(Some),
                }
            };
            let lower = match (bound("gte")?, bound("gt")?) {
                (Some(value), _) => Bound::Included(value),
                (None, Some(value)) => Bound::Excluded(value),
                (None, None) => Bound::Unbounded,
            };
            let upper = match (bound("lte")?, bound("lt")?) {
                (Some(value), _) => Bound::Included(value),
                (None, Some(value)) => Bound::Excluded(value),
                (None, None) => Bound::Unbounded,
            };
            Ok(EventQuery::Range {
                field,
                lower,
                upper,
            })
        }
        "bool" => {
            let clauses = |key: &str| -> Result<Vec<EventQuery>, EsError> {
                match body.get(key) {
                    None | Some(Value::Null) => Ok(Vec::new()),
                    Some(Value::Array(items)) => items.iter().map(translate).collect(),
                    Some(single) => Ok(vec![translate(single)?]),
                }
            };
            let mut must = clauses("must")?;
            must.extend(clauses("filter")?);
            let minimum_should_match = match body.get("minimum_should_match") {
                None | Some(Value::Null) => None,
                Some(value) => Some(count(Some(value), "minimum_should_match")?.unwrap_or(0)),
            };
            Ok(EventQuery::Bool {
                must,
                should: clauses("should")?,
                must_not: clauses("must_not")?,
                minimum_should_match,
            })
        }
        other => Err(EsError::parsing(format!("unknown query [{other}]"))),
    }
}

/// Any one of `alternatives`.
fn any_of(alternatives: Vec<EventQuery>) -> EventQuery {
    EventQuery::Bool {
        must: Vec::new(),
        should: alternatives,
        must_not: Vec::new(),
        minimum_should_match: Some(1),
    }
}

/// `{"field": spec}` → (field, spec).
fn single_field<'a>(kind: &str, body: &'a Value) -> Result<(&'a str, &'a Value), EsError> {
    let fields: Vec<(&String, &Value)> = match body {
        Value::Object(map) => map.iter().collect(),
        _ => Vec::new(),
    };
    match fields.as_slice() {
        [(field, spec)] => Ok((field.as_str(), spec)),
        _ => Err(EsError::parsing(format!(
            "[{kind}] takes exactly one field"
        ))),
    }
}

fn query_value(value: &Value) -> Result<QueryValue, EsError> {
    Ok(match value {
        Value::String(text) => QueryValue::Text(text.clone()),
        Value::Bool(flag) => QueryValue::Bool(*flag),
        Value::Number(number) => match number.as_i64() {
            Some(integer) => QueryValue::Integer(integer),
            None => QueryValue::Float(number.as_f64().unwrap_or(f64::NAN)),
        },
        _ => {
            return Err(EsError::parsing(
                "a term value must be a string, number or boolean",
            ));
        }
    })
}

fn numeric_value(value: &Value) -> Result<RangeValue, EsError> {
    let number = match value {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.parse::<u64>().ok(),
        _ => None,
    };
    number.map(RangeValue::Number).ok_or_else(|| {
        EsError::parsing(format!("range bound {value} is not a non-negative integer"))
    })
}

/// A time bound: a number (epoch milliseconds, or seconds with `format: epoch_second`), an
/// RFC 3339 string, a numeric string, `now` or `now±N(s|m|h|d|w)`.
fn time_value(value: &Value, format: &str) -> Result<RangeValue, EsError> {
    let bad = || EsError::parsing(format!("cannot parse time bound {value}"));
    let from_number = |number: f64| -> Result<RangeValue, EsError> {
        let nanos = if format.contains("epoch_second") {
            number * 1e9
        } else {
            number * 1e6
        };
        if !nanos.is_finite() || nanos.abs() > 9.0e18 {
            return Err(bad());
        }
        Ok(RangeValue::Time(Timestamp(nanos as i64)))
    };
    match value {
        Value::Number(number) => from_number(number.as_f64().ok_or_else(bad)?),
        Value::String(text) => {
            let text = text.trim();
            if let Some(math) = text.strip_prefix("now") {
                let now = Timestamp::from_jiff(jiff::Timestamp::now()).as_nanos();
                return Ok(RangeValue::Time(Timestamp(
                    now.saturating_add(date_math_nanos(math).ok_or_else(bad)?),
                )));
            }
            if let Ok(number) = text.parse::<f64>() {
                return from_number(number);
            }
            text.parse::<jiff::Timestamp>()
                .map(|timestamp| RangeValue::Time(Timestamp::from_jiff(timestamp)))
                .map_err(|_| bad())
        }
        _ => Err(bad()),
    }
}

/// `""` → 0, `-15m` → −15 minutes in nanoseconds; `None` for anything else (rounding with `/`
/// is not supported).
fn date_math_nanos(math: &str) -> Option<i64> {
    if math.is_empty() {
        return Some(0);
    }
    let (sign, rest) = match math.as_bytes().first()? {
        b'+' => (1, &math[1..]),
        b'-' => (-1, &math[1..]),
        _ => return None,
    };
    let digits_end = rest.find(|c: char| !c.is_ascii_digit())?;
    let amount: i64 = rest[..digits_end].parse().ok()?;
    let unit_seconds = match &rest[digits_end..] {
        "s" => 1,
        "m" => 60,
        "h" | "H" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    amount
        .checked_mul(unit_seconds)?
        .checked_mul(1_000_000_000)
        .map(|nanos| sign * nanos)
}

/// A time range every hit must fall in (from `@timestamp` ranges that are required at the top
/// level), so that partitions outside it are not searched at all.
fn time_bounds(query: &EventQuery) -> (Option<Timestamp>, Option<Timestamp>) {
    let required: Vec<&EventQuery> = match query {
        EventQuery::Bool { must, .. } => must.iter().collect(),
        other => vec![other],
    };
    let mut from: Option<Timestamp> = None;
    let mut to: Option<Timestamp> = None;
    for clause in required {
        let EventQuery::Range {
            field,
            lower,
            upper,
        } = clause
        else {
            continue;
        };
        if field != "ts" {
            continue;
        }
        let lower = match lower {
            Bound::Included(RangeValue::Time(time)) => Some(*time),
            Bound::Excluded(RangeValue::Time(time)) => Some(Timestamp(time.0.saturating_add(1))),
            _ => None,
        };
        let upper = match upper {
            Bound::Included(RangeValue::Time(time)) => Some(Timestamp(time.0.saturating_add(1))),
            Bound::Excluded(RangeValue::Time(time)) => Some(*time),
            _ => None,
        };
        from = from.max(lower);
        to = match (to, upper) {
            (Some(current), Some(new)) => Some(current.min(new)),
            (current, new) => current.or(new),
        };
    }
    (from, to)
}

/// The Elasticsearch response body.
fn render(index_name: &str, skip: usize, response: SearchResponse, started: Instant) -> Value {
    let hits: Vec<Value> = response
        .events
        .iter()
        .skip(skip)
        .map(|hit| {
            let millis = hit
                .ts
                .parse::<jiff::Timestamp>()
                .map_or(0, |timestamp| timestamp.as_millisecond());
            json!({
                "_index": index_name,
                "_id": hit.seq.to_string(),
                "_score": null,
                "_source": source(hit),
                "sort": [millis, hit.seq],
            })
        })
        .collect();
    let mut body = json!({
        "took": started.elapsed().as_millis() as u64,
        "timed_out": false,
        "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
        "hits": {
            "total": {"value": response.total, "relation": "eq"},
            "max_score": null,
            "hits": hits,
        },
    });
    if let Some(aggregations) = response.aggregations {
        body["aggregations"] = aggregations;
    }
    body
}

/// An event as an Elasticsearch `_source`, with ECS-like names and the dynamic fields at the
/// top level (they never override the ECS keys).
fn source(hit: &EventHit) -> Value {
    let mut source = Map::new();
    for (key, value) in &hit.fields {
        source.insert(key.clone(), value.clone());
    }
    let mut put = |key: &str, value: Value| {
        source.insert(key.to_owned(), value);
    };
    put("@timestamp", json!(hit.ts));
    put("message", json!(hit.message));
    put("host", json!({"name": hit.host}));
    put("process", json!({"name": hit.app, "pid": hit.procid}));
    put(
        "log",
        json!({
            "level": hit.severity,
            "syslog": {"facility": {"name": hit.facility}, "msgid": hit.msgid},
        }),
    );
    put(
        "event",
        json!({"created": hit.received_at, "original": hit.raw, "sequence": hit.seq}),
    );
    put("rule", json!({"id": hit.signatures, "name": hit.rules}));
    put(
        "cairn",
        json!({
            "seq": hit.seq,
            "format": hit.format,
            "source": hit.source,
            "flags": hit.flags,
            "peer": hit.peer,
        }),
    );
    Value::Object(source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_map_from_ecs_to_cairn() {
        for (es, cairn) in [
            ("@timestamp", "ts"),
            ("host.name", "host"),
            ("host.name.keyword", "host"),
            ("log.level", "severity"),
            ("process.name", "app"),
            ("rule.id", "signature"),
            ("user", "fields.user"),
            ("fields.sd.origin.ip", "fields.sd.origin.ip"),
        ] {
            assert_eq!(cairn_field(es), cairn, "{es}");
        }
        assert_eq!(
            rewrite_field_names("host.name:web1 AND (log.level:err OR user:root) \"a:b\""),
            "host:web1 AND (severity:err OR user:root) \"a:b\""
        );
    }

    #[test]
    fn sort_is_by_time_either_way_and_nothing_else() {
        assert_eq!(
            oldest_first(&json!([{"@timestamp": {"order": "asc"}}])).ok(),
            Some(true)
        );
        assert_eq!(oldest_first(&json!("@timestamp:desc")).ok(), Some(false));
        assert_eq!(
            oldest_first(&json!([{"_doc": "asc"}, "@timestamp"])).ok(),
            Some(false)
        );
        assert!(oldest_first(&json!({"host.name": "asc"})).is_err());
        assert!(oldest_first(&json!({"@timestamp": "sideways"})).is_err());
    }

    #[test]
    fn time_bounds_read_epoch_millis_rfc3339_and_date_math() {
        let millis = time_value(&json!(1_704_067_200_000_i64), "epoch_millis").ok();
        let text = time_value(&json!("2024-01-01T00:00:00Z"), "").ok();
        assert_eq!(millis, text);
        assert!(matches!(
            time_value(&json!(1_704_067_200), "epoch_second"),
            Ok(RangeValue::Time(Timestamp(1_704_067_200_000_000_000)))
        ));
        assert_eq!(date_math_nanos("-15m"), Some(-900_000_000_000));
        assert_eq!(date_math_nanos("/d"), None);
        assert!(time_value(&json!("yesterday"), "").is_err());
    }

    #[test]
    fn unknown_queries_and_keys_are_parsing_errors() {
        let params = HashMap::new();
        for body in [
            json!({"query": {"fuzzy": {"message": "x"}}}),
            json!({"query": {"match": {}}}),
            json!({"frobnicate": true}),
            json!({"size": -1}),
            json!({"from": 990, "size": 20}),
            json!({"query": {"range": {"@timestamp": {"gte": "soon"}}}}),
        ] {
            assert!(SearchPlan::parse(&body, &params).is_err(), "{body}");
        }
        let plan = SearchPlan::parse(
            &json!({"query": {"bool": {"filter": [{"range": {"@timestamp": {"gte": 1000, "lte": 2000, "format": "epoch_millis"}}}]}}}),
            &params,
        )
        .expect("plan");
        assert_eq!(plan.request.from, Some(Timestamp(1_000_000_000)));
        assert_eq!(plan.request.to, Some(Timestamp(2_000_000_001)));
    }
}
