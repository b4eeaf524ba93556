//! What the stream listeners (TCP, TLS, RELP) share: the accept loop with its connection limits,
//! and the WAL append → queue push of one batch with its backpressure and retries.
//!
//! The accept loop owns its connections' tasks: when the shutdown token is cancelled it stops
//! accepting and returns only once every connection task has ended, so that a connection that
//! acknowledges (RELP) can finish its acknowledgements before the WAL is closed.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use super::ListenerContext;
use super::limits::ConnectionLimiter;
use crate::batch::{RawBatch, RawFrame, Work, WorkInput};
use crate::error::IngestError;
use crate::event::{Source, Timestamp};
use crate::stats::DropReason;
use crate::wal::{Appended, FrameFormat, Position, WalError};

/// First pause before retrying an append the WAL refused (disk full, I/O error).
pub const WAL_RETRY_FIRST: Duration = Duration::from_millis(100);
/// Longest pause between append retries.
pub const WAL_RETRY_MAX: Duration = Duration::from_secs(1);

/// Binds a listening TCP socket (for TCP, TLS and RELP); the error names the address.
pub async fn bind_tcp(addr: SocketAddr, scheme: &str) -> Result<TcpListener, IngestError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| IngestError::Io {
            path: format!("{scheme}://{addr}").into(),
            source,
        })
}

/// Accepts connections until the context's shutdown token is cancelled, serving each with
/// `serve` on its own task, within `limiter`'s caps (a connection over a cap is accepted, closed
/// at once and counted as refused with the limit that refused it). Returns when every
/// connection task has ended.
pub async fn accept_loop<Serve, Served>(
    listener: TcpListener,
    limiter: Arc<ConnectionLimiter>,
    kind: &'static str,
    context: ListenerContext,
    serve: Serve,
) where
    Serve: Fn(TcpStream, SocketAddr, ListenerContext) -> Served,
    Served: Future<Output = ()> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = context.shutdown.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(%error, kind, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let permit = match limiter.try_acquire(peer.ip()) {
            Ok(permit) => permit,
            Err(refusal) => {
                context.stats.connection_refused(refusal);
                tracing::warn!(%peer, kind, limit = %refusal, "connection refused");
                drop(stream);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let stats = Arc::clone(&context.stats);
        let served = serve(stream, peer, context.clone());
        connections.spawn(async move {
            stats.connection_opened();
            served.await;
            stats.connection_closed();
            drop(permit);
        });
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// Where a batch handed to [`append_and_queue`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// The end of the last record appended: every frame of the batch is durable once the WAL is
    /// durable up to here.
    pub end: Position,
    /// False when the pipeline closed before every part was queued: the parts not queued are in
    /// the WAL (the next start replays them) but not processed by this run; the connection must
    /// close.
    pub queued: bool,
}

/// Appends one batch of frames to the WAL (split to fit its record limit) and pushes each part
/// to the pipeline, waiting for room.
///
/// # Errors
/// Some frames are not in the WAL: it stopped taking writes, or the appliance is shutting down
/// while the WAL refused. The frames not appended are counted under the returned reason; the
/// connection must close without acknowledging the batch.
pub async fn append_and_queue(
    frames: Vec<RawFrame>,
    source: Source,
    peer: SocketAddr,
    received_at: Timestamp,
    context: &ListenerContext,
) -> Result<Stored, DropReason> {
    let count = frames.len();
    let batch = RawBatch {
        source,
        peer: Some(peer),
        peers: Vec::new(),
        received_at,
        first_seq: context.seqs.allocate(count),
        frames,
    };
    context
        .stats
        .record_received(source, count as u64, batch.byte_len() as u64);
    let max_record_bytes = context.wal.wal.options().max_record_bytes;
    let mut parts = batch.split_to_fit(max_record_bytes).into_iter();
    let mut end = context.wal.wal.end();
    let mut queued = true;
    while let Some(part) = parts.next() {
        let part_count = part.frames.len() as u64;
        let range = match append_with_retry(&part, peer, context).await {
            Ok(range) => range,
            Err(reason) => {
                let unsent: u64 = parts.map(|rest| rest.frames.len() as u64).sum();
                context.stats.record_dropped(reason, part_count + unsent);
                return Err(reason);
            }
        };
        end = range.end;
        if !queued {
            // In the WAL for the next start to replay (not skipped: the index must not commit
            // past it). Not indexed by this run.
            context
                .stats
                .record_dropped(DropReason::Shutdown, part_count);
            continue;
        }
        let work = Work {
            range,
            input: WorkInput::Frames(part),
        };
        if context.queue.push(work).await.is_err() {
            // In the WAL already: the next start replays it. Not indexed by this run.
            context
                .stats
                .record_dropped(DropReason::Shutdown, part_count);
            queued = false;
        }
    }
    Ok(Stored { end, queued })
}

/// Appends `batch`, retrying with backoff while the WAL refuses for a reason that goes away
/// (disk full, I/O error). Gives up (with the reason to count the batch under) on shutdown or
/// when the WAL cannot take writes any more.
async fn append_with_retry(
    batch: &RawBatch,
    peer: SocketAddr,
    context: &ListenerContext,
) -> Result<Appended, DropReason> {
    let mut pause = WAL_RETRY_FIRST;
    let mut logged = false;
    loop {
        let error = match context.wal.wal.append(FrameFormat::Syslog, batch) {
            Ok(range) => {
                if logged {
                    tracing::info!(%peer, "wal takes writes again, reads resume");
                }
                return Ok(range);
            }
            Err(error) => error,
        };
        if !error.is_retryable() {
            if !matches!(error, WalError::Closed) {
                tracing::error!(%peer, %error, "wal refused a batch, closing the connection");
            }
            return Err(DropReason::WalUnavailable);
        }
        if !logged {
            tracing::warn!(%peer, %error, "wal cannot write, reads paused until it can");
            logged = true;
        }
        tokio::select! {
            () = context.shutdown.cancelled() => return Err(DropReason::Shutdown),
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(WAL_RETRY_MAX);
    }
}
