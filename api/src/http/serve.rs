//! The HTTP listener's accept loop: hyper's HTTP/1.1 connection driver under Cairn's limits.
//!
//! `axum::serve` has no knobs for hostile clients, so connections are accepted here:
//! - **Connection caps**: at most `max_connections` at once, `max_connections_per_source` from
//!   one address ([`ConnectionLimiter`]); a refused connection is closed on accept and counted
//!   with the limit that refused it.
//! - **Slow heads (slowloris)**: a request head must arrive within `header_timeout`, and the same
//!   timer runs while a kept-alive connection waits for its next request, so a client that opens
//!   a socket and trickles header bytes (or never sends any) is closed and counted as timed out.
//! - **Slow bodies**: a request body must arrive whole within `body_timeout` (a hard deadline,
//!   not an inactivity timer: one byte every few seconds does not keep it alive); the handler
//!   then answers 408.
//! - **Memory**: a request with a body reserves an estimate of what it will hold (the body, and
//!   for gzip its inflated size, up to `max_decompressed_bytes`) from the pipeline's
//!   [`MemoryBudget`] before it is read; when the budget is spent it gets 429 with
//!   `Retry-After` without being read, so concurrent large bodies cannot exhaust memory.
//! - **TLS** (optional, rustls): the same loop over a TLS stream; the handshake must finish
//!   within `header_timeout` and a failed one is counted (`tls_handshake_failed{reason}`). With
//!   a client CA, clients must present a certificate it signed (mutual TLS).
//! - **Graceful stop**: when the shutdown token is cancelled, the listener closes, idle
//!   connections are closed and requests in flight finish (bounded by the caller's grace period).
//!
//! Handlers see the peer's address as axum's `ConnectInfo<SocketAddr>`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;

use super::ApiError;
use cairn_ingest::listeners::limits::ConnectionLimiter;
use cairn_ingest::queue::MemoryBudget;
use cairn_ingest::stats::Stats;
use cairn_ingest::tls::HandshakeFailure;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tower_http::timeout::RequestBodyDeadlineLayer;

/// Limits of the HTTP listener (`[http]` config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Connections served at once from one source address.
    pub max_connections_per_source: usize,
    /// Time allowed for a request head, and for idling between requests.
    pub header_timeout: Duration,
    /// Time allowed for a whole request body.
    pub body_timeout: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            max_connections: 1024,
            max_connections_per_source: 64,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
        }
    }
}

/// What request bodies may hold: the pipeline's memory budget and the body limits.
#[derive(Debug, Clone)]
pub struct BodyBudget {
    pub memory: Arc<MemoryBudget>,
    pub max_body_bytes: usize,
    pub max_decompressed_bytes: usize,
    pub retry_after: Duration,
}

/// Inflation assumed for a gzip body when reserving memory (typical log compression is 5–15×);
/// capped by `max_decompressed_bytes`, past which inflation stops anyway.
const GZIP_RATIO_ESTIMATE: usize = 10;

impl BodyBudget {
    /// Bytes a request will hold while handled: its body, plus the decoded body.
    fn estimate(&self, headers: &axum::http::HeaderMap) -> usize {
        let length = headers
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<usize>().ok());
        let chunked = headers.contains_key(axum::http::header::TRANSFER_ENCODING);
        let body = match (length, chunked) {
            (Some(length), false) => length.min(self.max_body_bytes),
            (_, true) => self.max_body_bytes,
            (None, false) => 0,
        };
        let gzip = headers
            .get(axum::http::header::CONTENT_ENCODING)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| {
                value.trim().eq_ignore_ascii_case("gzip")
                    || value.trim().eq_ignore_ascii_case("x-gzip")
            });
        let decoded = if gzip {
            body.saturating_mul(GZIP_RATIO_ESTIMATE)
                .min(self.max_decompressed_bytes)
        } else {
            body
        };
        body + decoded
    }
}

/// How long a stop waits for requests in flight before dropping their connections.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` until `shutdown` is cancelled, then lets requests in flight finish
/// (up to a few seconds).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    bodies: BodyBudget,
    tls: Option<Arc<rustls::ServerConfig>>,
    stats: Arc<Stats>,
    shutdown: CancellationToken,
) {
    let tls = tls.map(TlsAcceptor::from);
    let app = app.layer(RequestBodyDeadlineLayer::new(limits.body_timeout));
    let limiter = ConnectionLimiter::new(limits.max_connections, limits.max_connections_per_source);
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(%error, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let permit = match limiter.try_acquire(peer.ip()) {
            Ok(permit) => permit,
            Err(refusal) => {
                stats.http_connections.refused(refusal);
                tracing::warn!(%peer, limit = %refusal, "http connection refused");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = hyper::service::service_fn({
            let app = app.clone();
            let bodies = bodies.clone();
            let stats = Arc::clone(&stats);
            move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                let estimate = bodies.estimate(request.headers());
                let reservation = match estimate {
                    0 => Ok(None),
                    bytes => bodies.memory.try_reserve(bytes).map(Some).ok_or(()),
                };
                let app = app.clone();
                let stats = Arc::clone(&stats);
                let retry_after = bodies.retry_after;
                async move {
                    let Ok(reservation) = reservation else {
                        stats.http_throttled();
                        let path = request.uri().path();
                        return Ok(super::error_for_path(
                            path,
                            ApiError::Throttled { retry_after },
                        ));
                    };
                    let response = app.oneshot(request).await;
                    drop(reservation);
                    response
                }
            }
        });
        let watcher = graceful.watcher();
        let http = http.clone();
        let tls = tls.clone();
        let stats = Arc::clone(&stats);
        let handshake_timeout = limits.header_timeout;
        tokio::spawn(async move {
            stats.http_connections.opened();
            let served = match tls {
                None => {
                    watcher
                        .watch(http.serve_connection(TokioIo::new(stream), service))
                        .await
                }
                // The handshake is part of the head: it gets the same deadline.
                Some(acceptor) => {
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            watcher
                                .watch(http.serve_connection(TokioIo::new(stream), service))
                                .await
                        }
                        Ok(Err(error)) => {
                            let reason = HandshakeFailure::classify(&error);
                            stats.tls_handshake_failed(reason);
                            tracing::debug!(%peer, %error, "https handshake failed");
                            Ok(())
                        }
                        Err(_elapsed) => {
                            stats.http_connections.timed_out();
                            tracing::debug!(%peer, "https handshake too slow");
                            Ok(())
                        }
                    }
                }
            };
            if let Err(error) = served {
                if error.is_timeout() {
                    stats.http_connections.timed_out();
                    tracing::debug!(%peer, "http connection closed: request head too slow");
                } else {
                    tracing::debug!(%peer, %error, "http connection ended with an error");
                }
            }
            stats.http_connections.closed();
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(grace = ?DRAIN_GRACE, "http connections still open after the grace period");
    }
}

/// Whether a body that failed to arrive failed because its deadline passed.
pub fn is_body_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = error.source();
    }
    false
}
