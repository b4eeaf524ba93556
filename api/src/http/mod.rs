//! The axum HTTP API: routes, shared state, and the error → status mapping ([`error`]).
//!
//! Every handler that does more than a few microseconds of work (searching, decoding a large
//! body) runs it on tokio's blocking pool so the async runtime never stalls.

pub mod error;
mod es_search;
mod incidents;
mod ingest;
mod rules;
mod search;
mod status;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
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
pub use error::ApiError;

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

    /// Ready once started, until stopping, and while the WAL takes writes.
    fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::SeqCst) && !self.inner.wal.wal.is_failed()
    }
}

/// The API router.
pub fn router(state: AppState) -> Router {
    let body_limit = state.inner.limits.max_body_bytes;
    Router::new()
        .route(
            "/api/v1/search",
            get(search::search).post(search::search_json),
        )
        .route(
            "/api/v1/ingest",
            post(ingest::ingest).layer(DefaultBodyLimit::max(body_limit)),
        )
        .route("/api/v1/incidents", get(incidents::list))
        .route("/api/v1/incidents/stream", get(incidents::stream))
        .route("/api/v1/incidents/{id}", get(incidents::detail))
        .route("/api/v1/incidents/{id}/ack", post(incidents::acknowledge))
        .route("/api/v1/incidents/{id}/resolve", post(incidents::resolve))
        .route("/api/v1/rules", get(rules::list))
        .route("/api/v1/rules/reload", post(rules::reload))
        .route("/api/v1/stats", get(status::stats))
        .route(
            "/_search",
            get(es_search::search_all).post(es_search::search_all),
        )
        .route(
            "/{index}/_search",
            get(es_search::search_index).post(es_search::search_index),
        )
        .route(
            "/_msearch",
            get(es_search::msearch).post(es_search::msearch),
        )
        .route(
            "/{index}/_msearch",
            get(es_search::msearch).post(es_search::msearch),
        )
        .route("/_mapping", get(es_search::mapping))
        .route("/{index}/_mapping", get(es_search::mapping))
        .route("/metrics", get(status::metrics))
        .route("/healthz", get(status::healthz))
        .route("/readyz", get(status::readyz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {}", uri.path()))
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}
