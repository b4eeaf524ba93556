//! `GET /api/v1/openapi.json`: the HTTP API as an OpenAPI 3.1 document, generated from the code.
//!
//! Each handler carries a `#[utoipa::path]` (path, parameters, every status it can answer with
//! its body); [`ApiDoc`] lists them. The security of each operation is not written by hand: it
//! is taken from the router's table ([`super::routes`]), the same table the auth middleware
//! enforces, so the document cannot claim a role the server does not require. Statuses that
//! the middleware adds to every protected route (401, 403, 429) are added here too.
//!
//! The response types of the index crate (search hits) and the JSON built by hand (incidents,
//! stats) are described by the schema-only types below; `schemathesis` in `.ci/run` checks the
//! running server's answers against them.
//!
//! The document is open (no token): it is the same for every installation and holds no data.

use std::sync::OnceLock;

use axum::Json;
use axum::http::Method;
use serde::Serialize;
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as OpenApiDocument, Ref, RefOr};
use utoipa::{Modify, OpenApi, ToSchema};

use super::{Access, es_search, incidents, ingest, routes, rules, search, status, tail};

/// The name of the bearer-token security scheme in the document.
pub const SECURITY_SCHEME: &str = "bearer";

/// The OpenAPI document of the whole API.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Cairn",
        description = "Log and event correlation appliance: ingest, search, live tail, incidents, rules and status.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    paths(
        search::search,
        search::search_json,
        es_search::search_all,
        es_search::search_index,
        es_search::msearch,
        es_search::msearch_index,
        es_search::mapping,
        es_search::mapping_index,
        ingest::ingest,
        incidents::list,
        incidents::stream,
        incidents::detail,
        incidents::acknowledge,
        incidents::resolve,
        tail::tail,
        rules::list,
        rules::reload,
        status::stats,
        serve,
        status::metrics,
        status::healthz,
        status::readyz,
    ),
    modifiers(&SecurityFromRouteTable),
    tags(
        (name = "events", description = "Ingest, search and tail events"),
        (name = "incidents", description = "Incidents opened by correlation"),
        (name = "rules", description = "Sigma rules in force"),
        (name = "status", description = "Health, readiness, counters and this document"),
        (name = "elasticsearch", description = "The Elasticsearch-compatible subset (search, ingest) for Elasticsearch clients and Grafana"),
    )
)]
pub struct ApiDoc;

/// The document, generated once.
pub fn document() -> &'static OpenApiDocument {
    static DOCUMENT: OnceLock<OpenApiDocument> = OnceLock::new();
    DOCUMENT.get_or_init(ApiDoc::openapi)
}

/// The document as served: [`document`] with `allowEmptyValue: true` on every optional query
/// parameter (every handler reads `name=` as if the parameter were absent; utoipa has no
/// attribute for it).
pub fn served() -> &'static serde_json::Value {
    static SERVED: OnceLock<serde_json::Value> = OnceLock::new();
    SERVED.get_or_init(|| {
        let mut value = serde_json::to_value(document()).unwrap_or_default();
        let operations = value
            .get_mut("paths")
            .and_then(serde_json::Value::as_object_mut)
            .into_iter()
            .flat_map(|paths| paths.values_mut())
            .filter_map(serde_json::Value::as_object_mut)
            .flat_map(|item| item.values_mut());
        for operation in operations {
            let parameters = operation
                .get_mut("parameters")
                .and_then(serde_json::Value::as_array_mut)
                .into_iter()
                .flatten()
                .filter_map(serde_json::Value::as_object_mut);
            for parameter in parameters {
                let optional_query = parameter.get("in").and_then(|at| at.as_str())
                    == Some("query")
                    && parameter.get("required") != Some(&serde_json::Value::Bool(true));
                if optional_query {
                    parameter.insert("allowEmptyValue".to_string(), true.into());
                }
            }
        }
        value
    })
}

/// `GET /api/v1/openapi.json`.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "status",
    responses((status = 200, description = "This document (OpenAPI 3.1)", body = Object)),
)]
pub(super) async fn serve() -> Json<&'static serde_json::Value> {
    Json(served())
}

/// Sets each operation's security from the router's table and adds the statuses of the auth
/// middleware.
#[derive(Debug)]
struct SecurityFromRouteTable;

impl Modify for SecurityFromRouteTable {
    fn modify(&self, openapi: &mut OpenApiDocument) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            SECURITY_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token from [[auth.token]]: `Authorization: Bearer <token>`. \
                         The scope is the role the route needs (admin grants every role).",
                    ))
                    .build(),
            ),
        );
        for route in routes(0) {
            let Some(item) = openapi.paths.paths.get_mut(route.path) else {
                continue;
            };
            let Some(operation) = operation_mut(item, &route.method) else {
                continue;
            };
            match route.access {
                Access::Role(role) => {
                    operation.security = Some(vec![SecurityRequirement::new(
                        SECURITY_SCHEME,
                        [role.name()],
                    )]);
                    for (status, description) in [
                        ("401", "No API token, or not a valid one"),
                        ("403", "The token's role does not allow this route"),
                        ("429", "The token is over its rate limit (see Retry-After)"),
                    ] {
                        operation
                            .responses
                            .responses
                            .entry(status.to_string())
                            .or_insert_with(|| error_response(description));
                    }
                }
                // No bearer token: `{}` is the empty requirement (anonymous access).
                Access::Open | Access::Handler => {
                    operation.security = Some(vec![SecurityRequirement::default()]);
                }
            }
        }
    }
}

fn operation_mut<'a>(
    item: &'a mut utoipa::openapi::PathItem,
    method: &Method,
) -> Option<&'a mut Operation> {
    let slot = match *method {
        Method::GET => &mut item.get,
        Method::POST => &mut item.post,
        Method::PUT => &mut item.put,
        Method::DELETE => &mut item.delete,
        Method::PATCH => &mut item.patch,
        Method::HEAD => &mut item.head,
        _ => return None,
    };
    slot.as_mut()
}

/// The [`HttpMethod`] of `method`, for looking operations up.
pub fn http_method(method: &Method) -> Option<HttpMethod> {
    Some(match *method {
        Method::GET => HttpMethod::Get,
        Method::POST => HttpMethod::Post,
        Method::PUT => HttpMethod::Put,
        Method::DELETE => HttpMethod::Delete,
        Method::PATCH => HttpMethod::Patch,
        Method::HEAD => HttpMethod::Head,
        _ => return None,
    })
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                Content::new(Some(RefOr::Ref(Ref::from_schema_name("Error")))),
            )
            .build(),
    )
}

/// Every error: `{"error":{"code":"…","message":"…"}}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `bad_request`, `bad_query`, `unauthorized`, `forbidden`,
    /// `rate_limited`, `not_found`, `payload_too_large`, `throttled`, `unavailable`…
    pub code: String,
    /// For people.
    pub message: String,
}

/// One page of search results, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchPage {
    /// Events matching the query and time range, whatever the page.
    pub total: u64,
    pub events: Vec<EventDoc>,
    /// Pass back as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// An event as search and tail show it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Event)]
pub struct EventDoc {
    /// Unique, increasing with arrival.
    pub seq: u64,
    /// Event time, RFC 3339.
    pub ts: String,
    /// Receive time, RFC 3339.
    pub received_at: String,
    pub host: Option<String>,
    pub app: Option<String>,
    pub procid: Option<String>,
    pub msgid: Option<String>,
    pub severity: Option<String>,
    pub facility: Option<String>,
    pub message: String,
    /// Extracted and JSON fields; RFC 5424 structured data under `sd.<SD-ID>.<PARAM>`.
    #[schema(value_type = Object)]
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// Ids of the rules that matched.
    pub signatures: Vec<String>,
    /// Titles of those rules, same order.
    pub rules: Vec<String>,
    /// Sender, `ip:port`.
    pub peer: Option<String>,
    /// Quality flags (`parse_error`, `truncated`…).
    pub flags: Vec<String>,
    pub format: String,
    pub source: String,
    /// The frame as received.
    pub raw: String,
}

/// An incident's state.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Incident)]
pub struct IncidentDoc {
    pub id: u64,
    /// `open`, `acknowledged` or `resolved`.
    pub status: String,
    pub rule: String,
    pub title: String,
    pub level: String,
    pub kind: String,
    /// Group-by field values.
    #[schema(value_type = Object)]
    pub group: serde_json::Map<String, serde_json::Value>,
    pub first_seen: String,
    pub last_seen: String,
    pub created: String,
    pub updated: String,
    pub alert_count: u64,
    pub event_count: u64,
    pub possibly_incomplete: bool,
    /// A `/api/v1/search` link that finds its events.
    pub search: String,
    /// The update sequence of this state (list entries and detail).
    pub update_seq: Option<u64>,
    /// What changed (list entries with `since`).
    pub change: Option<String>,
    /// Event `seq`s kept as evidence (detail only).
    pub evidence: Option<Vec<u64>>,
}

/// `GET /api/v1/incidents`.
#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentPage {
    pub incidents: Vec<IncidentDoc>,
    /// The cursor to poll from (`since`).
    pub next: u64,
}

/// The answer to ack and resolve.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransitionDoc {
    pub incident: IncidentDoc,
    /// False when the incident was already in that state.
    pub changed: bool,
    pub update_seq: Option<u64>,
}

/// `GET /api/v1/stats`: counters of every stage (see README); more keys may appear.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsDoc {
    pub received: u64,
    pub indexed: u64,
    pub index_docs: u64,
    pub uptime_secs: u64,
    #[schema(value_type = Object)]
    pub dropped: serde_json::Value,
    #[schema(value_type = Object)]
    pub rejected: serde_json::Value,
    #[schema(value_type = Object)]
    pub queues: serde_json::Value,
    #[schema(value_type = Object)]
    pub wal: serde_json::Value,
    #[schema(value_type = Object)]
    pub correlation: serde_json::Value,
    #[schema(value_type = Object)]
    pub auth: serde_json::Value,
    #[schema(value_type = Object)]
    pub tail: serde_json::Value,
}

/// An incident's state, as a filter.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IncidentStatusDoc {
    Open,
    Acknowledged,
    Resolved,
}

/// `/healthz` and `/readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusDoc {
    /// `ok` or `ready`.
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_with_its_security() {
        let document = document();
        for route in routes(0) {
            let item = document
                .paths
                .paths
                .get(route.path)
                .unwrap_or_else(|| panic!("{} is not in the document", route.path));
            let method = http_method(&route.method).expect("method");
            let operation = match method {
                HttpMethod::Get => item.get.as_ref(),
                HttpMethod::Post => item.post.as_ref(),
                _ => None,
            }
            .unwrap_or_else(|| panic!("{} {} is not in the document", route.method, route.path));
            assert!(
                operation.security.is_some(),
                "{} {} declares no security",
                route.method,
                route.path
            );
        }
    }
}
