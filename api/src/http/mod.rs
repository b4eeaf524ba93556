//! The axum HTTP API: routes, shared state, and the error → status mapping ([`error`]).
//!
//! Every handler that does more than a few microseconds of work (searching, decoding a large
//! body) runs it on tokio's blocking pool so the async runtime never stalls.
//!
//! The router is built from one table, [`routes`]: each line is a method, a path, who may call
//! it ([`Access`]) and the handler. The [`auth`] middleware wraps the whole router and looks
//! every request's route up in the same table (a route left out of it is `admin` only), and the
//! OpenAPI document ([`openapi`]) takes each operation's security from it.

pub mod auth;
mod elastic;
pub mod error;
mod es_search;
mod hec;
pub(crate) mod incidents;
mod ingest;
pub mod openapi;
mod rules;
mod search;
pub mod serve;
mod status;
pub mod tail;
mod webhooks;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::MethodRouter;
use cairn_correlate::incident::IncidentHandle;
use cairn_index::EventIndex;
use cairn_ingest::batch::{SeqAllocator, Work};
use cairn_ingest::listeners::WalSink;
use cairn_ingest::parse::ParseOptions;
use cairn_ingest::queue::BatchQueue;
use cairn_ingest::stats::Stats;

use tokio_util::sync::CancellationToken;

use crate::pipeline::DepthProbe;
use crate::signatures::Signatures;
pub use auth::{Access, AuthConfig, Role};
pub use error::ApiError;
pub use hec::{AckLimits, HecSettings, HecToken};

/// Limits of HTTP ingest.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    pub max_body_bytes: usize,
    pub max_decompressed_bytes: usize,
    pub max_line_bytes: usize,
    pub retry_after: Duration,
}

/// State shared by all handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<StateInner>,
}

#[derive(Debug)]
struct StateInner {
    index: Arc<EventIndex>,
    stats: Arc<Stats>,
    work_queue: BatchQueue<Work>,
    wal: WalSink,
    depths: DepthProbe,
    signatures: Arc<Signatures>,
    seqs: SeqAllocator,
    parse_options: ParseOptions,
    limits: HttpLimits,
    ready: AtomicBool,
    started: Instant,
    /// Set once by [`AppState::set_incidents`]; the incident routes answer 503 until then.
    incidents: OnceLock<IncidentRoutes>,
    /// Set once by [`AppState::set_correlation`]; stats report no engine until then.
    correlation: OnceLock<crate::correlation::CorrelationProbe>,
    /// Set once by [`AppState::set_hec`]; HEC refuses every token until then.
    hec: OnceLock<hec::Hec>,
    /// Set once by [`AppState::set_webhooks`]; the webhook routes answer 503 until then.
    webhooks: OnceLock<crate::webhooks::Webhooks>,
    /// Set once by [`AppState::set_auth`]; without it requests need no token.
    auth: OnceLock<Arc<auth::Guard>>,
    /// Set once by [`AppState::set_tail`]; `/api/v1/tail` answers 503 until then.
    tail: OnceLock<tail::TailHub>,
}

/// What the incident routes need: reads and commands, and a token that ends open event streams
/// when the server stops.
#[derive(Debug, Clone)]
pub(crate) struct IncidentRoutes {
    handle: IncidentHandle,
    shutdown: CancellationToken,
}

impl AppState {
    /// Builds the state; the appliance reports ready once [`AppState::set_ready`] is called.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        index: Arc<EventIndex>,
        stats: Arc<Stats>,
        work_queue: BatchQueue<Work>,
        wal: WalSink,
        depths: DepthProbe,
        signatures: Arc<Signatures>,
        seqs: SeqAllocator,
        parse_options: ParseOptions,
        limits: HttpLimits,
    ) -> AppState {
        AppState {
            inner: Arc::new(StateInner {
                index,
                stats,
                work_queue,
                wal,
                depths,
                signatures,
                seqs,
                parse_options,
                limits,
                ready: AtomicBool::new(false),
                started: Instant::now(),
                incidents: OnceLock::new(),
                correlation: OnceLock::new(),
                hec: OnceLock::new(),
                webhooks: OnceLock::new(),
                auth: OnceLock::new(),
                tail: OnceLock::new(),
            }),
        }
    }

    /// `/readyz` answers 200 while this is true.
    pub fn set_ready(&self, ready: bool) {
        self.inner.ready.store(ready, Ordering::SeqCst);
    }

    /// Serves the incident API from `handle`; `shutdown` ends the open event streams (cancel it
    /// before waiting for the HTTP server to stop). Only the first call has an effect.
    pub fn set_incidents(&self, handle: IncidentHandle, shutdown: CancellationToken) {
        let _ = self
            .inner
            .incidents
            .set(IncidentRoutes { handle, shutdown });
    }

    /// Reports the correlation engine's figures in stats and metrics. Only the first call has
    /// an effect.
    pub fn set_correlation(&self, probe: crate::correlation::CorrelationProbe) {
        let _ = self.inner.correlation.set(probe);
    }

    /// Serves the Splunk HEC routes with these tokens. Only the first call has an effect.
    pub fn set_hec(&self, settings: HecSettings) {
        let _ = self.inner.hec.set(hec::Hec::new(settings));
    }

    /// Serves the webhook API and reports webhook counters. Only the first call has an effect.
    pub fn set_webhooks(&self, webhooks: crate::webhooks::Webhooks) {
        let _ = self.inner.webhooks.set(webhooks);
    }

    /// Requires API tokens as `config` says (call before [`router`]). Only the first call has
    /// an effect.
    pub fn set_auth(&self, config: &AuthConfig) {
        let table = routes(0);
        let guard = auth::Guard::new(
            config,
            table
                .iter()
                .map(|route| (&route.method, route.path, route.access)),
        );
        let _ = self.inner.auth.set(Arc::new(guard));
    }

    /// Serves `/api/v1/tail` from `hub`. Only the first call has an effect.
    pub fn set_tail(&self, hub: tail::TailHub) {
        let _ = self.inner.tail.set(hub);
    }

    /// Ready once started, until stopping, and while the WAL takes writes.
    fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::SeqCst) && !self.inner.wal.wal.is_failed()
    }
}

/// `error` in the shape of the API that serves `path`: Splunk HEC's, Elasticsearch's, or
/// Cairn's own. For answers given before a request reaches its handler (memory budget).
pub(crate) fn error_for_path(path: &str, error: ApiError) -> axum::response::Response {
    use axum::response::IntoResponse;
    if path.starts_with("/services/collector") {
        hec::HecError::from(error).into_response()
    } else if path == "/" || path.starts_with("/_") || path.contains("/_") {
        let challenge = error.challenge();
        let mut response = elastic::EsError::from(error).into_response();
        if let Some(challenge) = challenge {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static(challenge),
            );
        }
        response
    } else {
        error.into_response()
    }
}

/// One line of the route table.
#[derive(Debug)]
pub struct ApiRoute {
    pub method: Method,
    /// axum's pattern (`/api/v1/incidents/{id}`), as in the OpenAPI document.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    handler: MethodRouter<AppState>,
}

impl ApiRoute {
    fn new(
        method: Method,
        path: &'static str,
        access: Access,
        handler: MethodRouter<AppState>,
    ) -> ApiRoute {
        ApiRoute {
            method,
            path,
            access,
            handler,
        }
    }

    fn get<H: Handler<T, AppState>, T: 'static>(
        path: &'static str,
        access: Access,
        handler: H,
    ) -> ApiRoute {
        ApiRoute::new(Method::GET, path, access, axum::routing::get(handler))
    }

    fn post<H: Handler<T, AppState>, T: 'static>(
        path: &'static str,
        access: Access,
        handler: H,
    ) -> ApiRoute {
        ApiRoute::new(Method::POST, path, access, axum::routing::post(handler))
    }

    fn put<H: Handler<T, AppState>, T: 'static>(
        path: &'static str,
        access: Access,
        handler: H,
    ) -> ApiRoute {
        ApiRoute::new(Method::PUT, path, access, axum::routing::put(handler))
    }

    /// Every answer carries `X-Elastic-Product` (Elasticsearch's clients require it).
    fn elastic(mut self) -> ApiRoute {
        self.handler = self
            .handler
            .layer(axum::middleware::map_response(elastic::add_product_header));
        self
    }

    /// Bodies over `bytes` are refused (413) by the extractor.
    fn body_limit(mut self, bytes: usize) -> ApiRoute {
        self.handler = self.handler.layer(DefaultBodyLimit::max(bytes));
        self
    }
}

const OPEN: Access = Access::Open;
const INGEST: Access = Access::Role(Role::Ingest);
const READ: Access = Access::Role(Role::Read);
const ADMIN: Access = Access::Role(Role::Admin);
/// Splunk HEC checks its own `Authorization: Splunk <token>`.
const HEC: Access = Access::Handler;

/// Every route of the API, with who may call it. Adding a route is one line here (plus its
/// `#[utoipa::path]` and an entry in [`openapi::ApiDoc`]); `tests/openapi.rs` fails when the
/// table and the OpenAPI document disagree. `body_limit` is `[http] max_body_bytes`.
pub fn routes(body_limit: usize) -> Vec<ApiRoute> {
    vec![
        ApiRoute::get("/api/v1/search", READ, search::search),
        ApiRoute::post("/api/v1/search", READ, search::search_json),
        ApiRoute::post("/api/v1/ingest", INGEST, ingest::ingest).body_limit(body_limit),
        ApiRoute::get("/api/v1/incidents", READ, incidents::list),
        ApiRoute::get("/api/v1/incidents/stream", READ, incidents::stream),
        ApiRoute::get("/api/v1/incidents/{id}", READ, incidents::detail),
        ApiRoute::post("/api/v1/incidents/{id}/ack", ADMIN, incidents::acknowledge),
        ApiRoute::post("/api/v1/incidents/{id}/resolve", ADMIN, incidents::resolve),
        ApiRoute::get("/api/v1/tail", READ, tail::tail),
        ApiRoute::get("/api/v1/rules", READ, rules::list),
        ApiRoute::post("/api/v1/rules/reload", ADMIN, rules::reload),
        ApiRoute::get("/api/v1/stats", READ, status::stats),
        ApiRoute::get("/api/v1/openapi.json", OPEN, openapi::serve),
        ApiRoute::get("/metrics", READ, status::metrics),
        ApiRoute::get("/healthz", OPEN, status::healthz),
        ApiRoute::get("/readyz", OPEN, status::readyz),
        ApiRoute::get("/api/v1/webhooks", READ, webhooks::list),
        ApiRoute::get(
            "/api/v1/webhooks/{name}/deliveries",
            READ,
            webhooks::deliveries,
        ),
        ApiRoute::post("/api/v1/webhooks/{name}/retry", ADMIN, webhooks::retry),
        // Elasticsearch-compatible ingest.
        ApiRoute::get("/", READ, elastic::node_info).elastic(),
        ApiRoute::post("/_bulk", INGEST, elastic::bulk)
            .body_limit(body_limit)
            .elastic(),
        ApiRoute::put("/_bulk", INGEST, elastic::bulk)
            .body_limit(body_limit)
            .elastic(),
        ApiRoute::post("/{index}/_bulk", INGEST, elastic::bulk_into)
            .body_limit(body_limit)
            .elastic(),
        ApiRoute::put("/{index}/_bulk", INGEST, elastic::bulk_into)
            .body_limit(body_limit)
            .elastic(),
        // Elasticsearch-compatible search (Grafana, the official clients).
        ApiRoute::get("/_search", READ, es_search::search_all).elastic(),
        ApiRoute::post("/_search", READ, es_search::search_all).elastic(),
        ApiRoute::get("/{index}/_search", READ, es_search::search_index).elastic(),
        ApiRoute::post("/{index}/_search", READ, es_search::search_index).elastic(),
        ApiRoute::get("/_msearch", READ, es_search::msearch).elastic(),
        ApiRoute::post("/_msearch", READ, es_search::msearch).elastic(),
        ApiRoute::get("/{index}/_msearch", READ, es_search::msearch_index).elastic(),
        ApiRoute::post("/{index}/_msearch", READ, es_search::msearch_index).elastic(),
        ApiRoute::get("/_mapping", READ, es_search::mapping).elastic(),
        ApiRoute::get("/{index}/_mapping", READ, es_search::mapping_index).elastic(),
        // Splunk HEC.
        ApiRoute::post("/services/collector", HEC, hec::event).body_limit(body_limit),
        ApiRoute::post("/services/collector/event", HEC, hec::event).body_limit(body_limit),
        ApiRoute::post("/services/collector/event/1.0", HEC, hec::event).body_limit(body_limit),
        ApiRoute::post("/services/collector/raw", HEC, hec::raw).body_limit(body_limit),
        ApiRoute::post("/services/collector/raw/1.0", HEC, hec::raw).body_limit(body_limit),
        ApiRoute::get("/services/collector/health", HEC, hec::health),
        ApiRoute::post("/services/collector/health", HEC, hec::health),
        ApiRoute::get("/services/collector/health/1.0", HEC, hec::health),
        ApiRoute::post("/services/collector/health/1.0", HEC, hec::health),
        ApiRoute::post("/services/collector/ack", HEC, hec::acknowledge).body_limit(body_limit),
    ]
}

/// The API router: the route table behind the auth middleware.
pub fn router(state: AppState) -> Router {
    let guard = Arc::clone(
        state
            .inner
            .auth
            .get_or_init(|| Arc::new(auth::Guard::new(&AuthConfig::default(), []))),
    );
    let mut router = Router::new();
    for route in routes(state.inner.limits.max_body_bytes) {
        router = router.route(route.path, route.handler);
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(guard, auth::authorize))
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {}", uri.path()))
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}
