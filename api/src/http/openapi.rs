//! `GET /api/v1/openapi.json`: the HTTP API as an OpenAPI 3.1 document, generated from the code.
//!
//! Each handler carries a `#[utoipa::path]` (path, parameters, every status it can answer with
//! its body); [`ApiDoc`] lists them. The security of each operation is not written by hand: it
//! is taken from the router's table ([`super::routes`]), the same table the auth middleware
//! enforces, so the document cannot claim a role the server does not require. Statuses that
//! the middleware adds to every protected route (401, 403, 429) are added here too, in Cairn's
//! error shape unless the handler's annotation documents them (the Elasticsearch-compatible
//! routes answer them in Elasticsearch's shape). Routes whose handler checks a scheme of its
//! own (`Access::Handler`: Splunk HEC) keep the security their annotation declares (the
//! [`SPLUNK_SECURITY_SCHEME`] apiKey), or none.
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
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Content, OpenApi as OpenApiDocument, Ref, RefOr};
use utoipa::{Modify, OpenApi, ToSchema};

use super::{
    Access, elastic, es_search, hec, incidents, ingest, routes, rules, search, status, tail,
    webhooks,
};

/// The name of the bearer-token security scheme in the document.
pub const SECURITY_SCHEME: &str = "bearer";
/// The name of the Splunk HEC token scheme (`Authorization: Splunk <token>`) in the document.
pub const SPLUNK_SECURITY_SCHEME: &str = "splunk";

/// The OpenAPI document of the whole API.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Cairn",
        description = "Log and event correlation appliance: ingest, search, live tail, incidents, rules, webhooks and status; Elasticsearch `_bulk` and Splunk HEC compatible ingest.",
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
        webhooks::list,
        webhooks::deliveries,
        webhooks::retry,
        elastic::node_info,
        elastic::bulk_post,
        elastic::bulk_put,
        elastic::bulk_into_post,
        elastic::bulk_into_put,
        hec::collector,
        hec::collector_event,
        hec::collector_event_1_0,
        hec::collector_raw,
        hec::collector_raw_1_0,
        hec::health_get,
        hec::health_post,
        hec::health_1_0_get,
        hec::health_1_0_post,
        hec::acknowledge,
    ),
    modifiers(&SecurityFromRouteTable),
    tags(
        (name = "events", description = "Ingest, search and tail events"),
        (name = "incidents", description = "Incidents opened by correlation"),
        (name = "rules", description = "Sigma rules in force"),
        (name = "status", description = "Health, readiness, counters and this document"),
        (name = "webhooks", description = "Webhook targets and their deliveries"),
        (name = "elasticsearch", description = "The Elasticsearch-compatible subset (`_search`, `_msearch`, `_mapping`, `_bulk`) for Elasticsearch clients and Grafana, with Elasticsearch's answers and error shape"),
        (name = "splunk", description = "Splunk HTTP Event Collector ingest, with Splunk's answers (`{\"text\":…,\"code\":N}`) and tokens"),
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
        components.add_security_scheme(
            SPLUNK_SECURITY_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "A Splunk HEC token from [[hec.token]]: `Authorization: Splunk <token>`. \
                 None is 401 (code 2), another form 401 (code 3), an unknown token 403 (code 4).",
            ))),
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
                Access::Open => {
                    operation.security = Some(vec![SecurityRequirement::default()]);
                }
                // The handler's own scheme, as its annotation declares, else anonymous.
                Access::Handler => {
                    operation
                        .security
                        .get_or_insert_with(|| vec![SecurityRequirement::default()]);
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

/// `GET /api/v1/webhooks`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WebhookTargets)]
pub struct WebhookTargetsDoc {
    pub targets: Vec<WebhookTargetDoc>,
}

/// A webhook target: its settings and where its deliveries stand.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WebhookTarget)]
pub struct WebhookTargetDoc {
    pub name: String,
    /// `json`, `pagerduty` or `slack`.
    pub format: String,
    /// The URL's scheme, host and port only (paths of chat webhooks are secrets); empty when
    /// the URL does not parse.
    pub endpoint: String,
    /// Whether deliveries carry `X-Cairn-Signature`.
    pub signed: bool,
    /// The lowest incident level sent (`informational` … `critical`).
    pub min_level: String,
    /// Rule ids or titles sent (empty: every rule).
    pub rules: Vec<String>,
    /// Changes sent: `open`, `update`, `acknowledge`, `resolve`.
    pub events: Vec<String>,
    pub max_attempts: u32,
    /// The last update sequence considered; null before the target first ran.
    pub cursor: Option<u64>,
    /// Deliveries in the outbox by status (within `history_retention_secs`).
    pub pending: u64,
    pub delivered: u64,
    pub dead: u64,
    /// The last failed attempt.
    pub last_error: Option<WebhookErrorDoc>,
    /// When a delivery last succeeded, RFC 3339.
    pub last_success: Option<String>,
    /// Since start.
    pub counters: WebhookCountersDoc,
}

/// A failed webhook attempt.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WebhookError)]
pub struct WebhookErrorDoc {
    /// RFC 3339.
    pub at: String,
    pub message: String,
}

/// A webhook target's counters since start.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WebhookCounters)]
pub struct WebhookCountersDoc {
    /// Deliveries the receiver answered 2xx.
    pub delivered: u64,
    /// Attempts that failed (timeouts, connection errors, non-2xx), final or not.
    pub failed_attempts: u64,
    /// Deliveries given up.
    pub dead: u64,
}

/// `GET /api/v1/webhooks/{name}/deliveries`, newest change first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub deliveries: Vec<DeliveryDoc>,
}

/// One delivery of one incident change to one target.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Delivery)]
pub struct DeliveryDoc {
    /// Stable across attempts and restarts (`X-Cairn-Delivery`).
    pub id: u64,
    pub target: String,
    /// The update sequence of the change.
    pub update_seq: u64,
    /// The incident's id.
    pub incident: u64,
    /// The change (`opened`, `updated`, …).
    pub change: String,
    /// `pending`, `delivered` or `dead`.
    pub status: DeliveryStatusDoc,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (pending deliveries), RFC 3339.
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    pub last_attempt_at: Option<String>,
    pub delivered_at: Option<String>,
    /// HTTP status of the last attempt, if one was answered.
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
}

/// A delivery's state, as a filter.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = DeliveryStatus)]
pub enum DeliveryStatusDoc {
    Pending,
    Delivered,
    Dead,
}

/// `POST /api/v1/webhooks/{name}/retry`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Retried)]
pub struct RetriedDoc {
    /// Dead deliveries put back to pending.
    pub retried: u64,
}

/// Every error of the Elasticsearch-compatible routes, in Elasticsearch's shape:
/// `{"error":{"root_cause":[…],"type":…,"reason":…},"status":N}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ElasticError)]
pub struct ElasticErrorBody {
    pub error: ElasticErrorDetail,
    /// The HTTP status, repeated.
    pub status: u16,
}

/// The errors every Elasticsearch-compatible search route can answer with, in Elasticsearch's
/// shape (one list for all of them, so the annotations do not repeat it).
#[derive(Debug, utoipa::IntoResponses)]
#[allow(dead_code)] // Only its OpenAPI description is used.
pub enum ElasticSearchErrors {
    #[response(status = 400, description = "Bad request")]
    BadRequest(ElasticErrorBody),
    #[response(
        status = 401,
        description = "No API token, or not a valid one (`security_exception`)"
    )]
    Unauthorized(ElasticErrorBody),
    #[response(
        status = 403,
        description = "The token's role does not allow this (`security_exception`)"
    )]
    Forbidden(ElasticErrorBody),
    #[response(
        status = 429,
        description = "The token is over its rate; see `Retry-After`"
    )]
    RateLimited(ElasticErrorBody),
    #[response(status = 503, description = "The index cannot be read now")]
    Unavailable(ElasticErrorBody),
    #[response(status = 500, description = "Internal error")]
    Internal(ElasticErrorBody),
}

/// What went wrong, as Elasticsearch says it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ElasticErrorDetail {
    pub root_cause: Vec<ElasticCause>,
    /// `illegal_argument_exception`, `action_request_validation_exception`,
    /// `security_exception`, `es_rejected_execution_exception`, `content_too_long_exception`…
    #[serde(rename = "type")]
    pub error_type: String,
    pub reason: String,
}

/// One cause of an Elasticsearch error (also a bulk item's error).
#[derive(Debug, Serialize, ToSchema)]
pub struct ElasticCause {
    #[serde(rename = "type")]
    pub error_type: String,
    pub reason: String,
}

/// `GET /`: who answers, as an Elasticsearch 8 node would.
#[derive(Debug, Serialize, ToSchema)]
pub struct ElasticNodeInfo {
    /// The host name.
    pub name: String,
    pub cluster_name: String,
    pub cluster_uuid: String,
    pub version: ElasticVersion,
    pub tagline: String,
}

/// The Elasticsearch version Cairn answers as.
#[derive(Debug, Serialize, ToSchema)]
pub struct ElasticVersion {
    /// `8.17.0`: clients of 8.x and 9.x accept it.
    pub number: String,
    pub build_flavor: String,
    pub build_type: String,
    /// Cairn's version.
    pub build_hash: String,
    pub build_snapshot: bool,
    pub lucene_version: String,
    pub minimum_wire_compatibility_version: String,
    pub minimum_index_compatibility_version: String,
}

/// The answer to `_bulk`: one item per action, in body order.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = BulkResponse)]
pub struct BulkResponseDoc {
    /// Milliseconds.
    pub took: u64,
    /// True when an item failed.
    pub errors: bool,
    /// Each `{"<action>": {…}}`, the action as the sender named it (`index`, `create`, …).
    #[schema(value_type = Vec<std::collections::BTreeMap<String, BulkItemDoc>>)]
    pub items: Vec<serde_json::Value>,
}

/// One action's result: `201` with `result: created`, or `400` with an `error`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = BulkItem)]
pub struct BulkItemDoc {
    /// The action's `_index`, else the path's; null when neither gave one.
    #[serde(rename = "_index")]
    pub index: Option<String>,
    /// The action's `_id`, else the event's `seq` (created items).
    #[serde(rename = "_id")]
    pub id: Option<String>,
    #[serde(rename = "_version", skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// `created`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    #[serde(rename = "_shards", skip_serializing_if = "Option::is_none")]
    pub shards: Option<BulkShardsDoc>,
    /// The event's `seq`.
    #[serde(rename = "_seq_no", skip_serializing_if = "Option::is_none")]
    pub seq_no: Option<u64>,
    #[serde(rename = "_primary_term", skip_serializing_if = "Option::is_none")]
    pub primary_term: Option<u64>,
    /// `201` or `400`.
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ElasticCause>,
}

/// `_shards` of a created item.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkShardsDoc {
    pub total: u64,
    pub successful: u64,
    pub failed: u64,
}

/// Every answer of the Splunk HEC routes, successes and errors: `{"text":…,"code":N}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = HecAnswer)]
pub struct HecAnswerDoc {
    pub text: String,
    /// Splunk's code: 0 success, 2 token required, 3 invalid authorization, 4 invalid token,
    /// 5 no data, 6 invalid data format, 8 internal error, 9 server busy, 10 data channel
    /// missing, 11 invalid data channel, 12 event field required, 13 event field blank,
    /// 14 ACK disabled, 15 error in indexed fields, 17 healthy, 18 unhealthy.
    pub code: u8,
    /// The first refused event of the body, numbered from 0.
    #[serde(
        rename = "invalid-event-number",
        skip_serializing_if = "Option::is_none"
    )]
    pub invalid_event_number: Option<u64>,
    /// The acknowledgement id (tokens with `ack = true`).
    #[serde(rename = "ackId", skip_serializing_if = "Option::is_none")]
    pub ack_id: Option<u64>,
}

/// One HEC event (a body holds one or more, concatenated).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = HecEvent)]
pub struct HecEventDoc {
    /// The event: a string (the message) or an object (its members become fields; the
    /// well-known names map as for an Elasticsearch document). Required, not null nor "".
    pub event: serde_json::Value,
    /// Epoch seconds, a number or a numeric string.
    pub time: Option<serde_json::Value>,
    /// The sender (a string; another JSON value is kept as given, as Splunk does).
    pub host: Option<serde_json::Value>,
    /// A field of that name (default: the query's, else the token's); a string, as for `host`.
    pub source: Option<serde_json::Value>,
    /// A field of that name (default: the query's, else the token's); a string, as for `host`.
    pub sourcetype: Option<serde_json::Value>,
    /// A field of that name (default: the query's, else the token's); a string, as for `host`.
    pub index: Option<serde_json::Value>,
    /// Indexed fields.
    #[schema(value_type = Option<Object>)]
    pub fields: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `POST /services/collector/ack`: the ack ids to ask about.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = HecAckQuery)]
pub struct HecAckQueryDoc {
    /// At most 10000.
    pub acks: Vec<u64>,
}

/// The answer to an ack query: for each id asked, whether its events are durable.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = HecAckAnswer)]
pub struct HecAckAnswerDoc {
    /// Keyed by ack id.
    pub acks: std::collections::BTreeMap<String, bool>,
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
            let mut item = item.clone();
            let operation = operation_mut(&mut item, &route.method).unwrap_or_else(|| {
                panic!("{} {} is not in the document", route.method, route.path)
            });
            assert!(
                operation.security.is_some(),
                "{} {} declares no security",
                route.method,
                route.path
            );
        }
    }
}
