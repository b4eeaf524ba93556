//! Syslog over TCP: RFC 6587 octet counting and non-transparent (LF, CRLF, NUL) framing, detected
//! per frame by [`StreamFramer`].
//!
//! Per connection: one read buffer, one framer, one batch per read. The batch is appended to the
//! WAL (no durability wait: TCP has no application acknowledgement; the WAL's policy fsyncs it
//! within an interval), then pushed with [`BatchQueue::push`], which waits while the pipeline is
//! full. The connection is not read while it waits, so the sender's TCP window closes
//! (backpressure, never a silent drop). When the disk is full (or another I/O error) the append
//! is retried with backoff ([`WAL_RETRY_FIRST`] doubling up to [`WAL_RETRY_MAX`]), reads paused
//! all the while; only a WAL that stopped for good (a failed fsync) closes the connection. A connection
//! idle for longer than `idle_timeout` is closed; at most `max_connections` are served at once,
//! at most `max_connections_per_source` from one address (further ones are accepted and closed
//! immediately, and counted as refused with the limit that refused them).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

use super::ListenerContext;
use super::limits::ConnectionLimiter;
use crate::batch::{RawBatch, RawFrame, Work, WorkInput};
use crate::error::IngestError;
use crate::event::{Source, Timestamp};
use crate::framing::{FramingEvent, StreamFramer};
use crate::stats::DropReason;
use crate::wal::{FrameFormat, WalError};

/// First pause before retrying an append the WAL refused (disk full, I/O error).
pub const WAL_RETRY_FIRST: Duration = Duration::from_millis(100);
/// Longest pause between append retries.
pub const WAL_RETRY_MAX: Duration = Duration::from_secs(1);

/// TCP listener settings.
#[derive(Debug, Clone)]
pub struct TcpConfig {
    /// Frames longer than this are truncated (and the rest of the frame skipped).
    pub max_frame_bytes: usize,
    /// Connections served at once; more are closed on accept and counted as refused.
    pub max_connections: usize,
    /// Connections served at once from one source address.
    pub max_connections_per_source: usize,
    /// A connection that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// Size of each read.
    pub read_buffer_bytes: usize,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            max_frame_bytes: 64 * 1024,
            max_connections: 1024,
            max_connections_per_source: 256,
            idle_timeout: Duration::from_secs(300),
            read_buffer_bytes: 64 * 1024,
        }
    }
}

/// Binds the listening socket.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, IngestError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| IngestError::Io {
            path: format!("tcp://{addr}").into(),
            source,
        })
}

/// Accepts and serves connections until the context's shutdown token is cancelled.
pub async fn run(listener: TcpListener, config: TcpConfig, context: ListenerContext) {
    let limiter = ConnectionLimiter::new(config.max_connections, config.max_connections_per_source);
    let config = Arc::new(config);
    loop {
        let accepted = tokio::select! {
            () = context.shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(%error, "tcp accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let permit = match limiter.try_acquire(peer.ip()) {
            Ok(permit) => permit,
            Err(refusal) => {
                context.stats.connection_refused(refusal);
                tracing::warn!(%peer, limit = %refusal, "tcp connection refused");
                drop(stream);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let connection_context = context.clone();
        let connection_config = Arc::clone(&config);
        tokio::spawn(async move {
            connection_context.stats.connection_opened();
            serve_connection(stream, peer, &connection_config, &connection_context).await;
            connection_context.stats.connection_closed();
            drop(permit);
        });
    }
}

async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    config: &TcpConfig,
    context: &ListenerContext,
) {
    let mut framer = StreamFramer::new(config.max_frame_bytes);
    let mut buffer = BytesMut::with_capacity(config.read_buffer_bytes);
    loop {
        if buffer.capacity() - buffer.len() < config.read_buffer_bytes / 4 {
            buffer.reserve(config.read_buffer_bytes);
        }
        let read = tokio::select! {
            () = context.shutdown.cancelled() => return,
            read = tokio::time::timeout(config.idle_timeout, stream.read_buf(&mut buffer)) => read,
        };
        let at_eof = match read {
            Err(_elapsed) => {
                context.stats.connection_idle_closed();
                tracing::debug!(%peer, "tcp connection idle, closing");
                true
            }
            Ok(Ok(0)) => true,
            Ok(Ok(_)) => false,
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "tcp read failed");
                true
            }
        };
        let received_at = Timestamp::now();
        let mut frames = Vec::new();
        let mut discarded = 0u64;
        while let Some(event) = framer.decode(&mut buffer) {
            collect(event, &mut frames, &mut discarded);
        }
        if at_eof {
            while let Some(event) = framer.decode_eof(&mut buffer) {
                collect(event, &mut frames, &mut discarded);
            }
        }
        if discarded > 0 {
            context
                .stats
                .record_received(Source::SyslogTcp, discarded, 0);
            context
                .stats
                .record_dropped(DropReason::FrameTooLong, discarded);
        }
        if !frames.is_empty() && !push_frames(frames, peer, received_at, context).await {
            return;
        }
        if at_eof {
            return;
        }
    }
}

fn collect(event: FramingEvent, frames: &mut Vec<RawFrame>, discarded: &mut u64) {
    match event {
        FramingEvent::Frame(frame) => frames.push(RawFrame::from(frame)),
        FramingEvent::Discarded { .. } => *discarded += 1,
    }
}

/// Appends one batch to the WAL and pushes it, waiting for room. Returns false when the
/// connection must close (the pipeline or the WAL is closed, or the WAL stopped for good).
async fn push_frames(
    frames: Vec<RawFrame>,
    peer: SocketAddr,
    received_at: Timestamp,
    context: &ListenerContext,
) -> bool {
    let count = frames.len();
    let batch = RawBatch {
        source: Source::SyslogTcp,
        peer: Some(peer),
        peers: Vec::new(),
        received_at,
        first_seq: context.seqs.allocate(count),
        frames,
    };
    context
        .stats
        .record_received(Source::SyslogTcp, count as u64, batch.byte_len() as u64);
    let max_record_bytes = context.wal.wal.options().max_record_bytes;
    let mut parts = batch.split_to_fit(max_record_bytes).into_iter();
    while let Some(part) = parts.next() {
        let part_count = part.frames.len() as u64;
        let range = match append_with_retry(&part, peer, context).await {
            Ok(range) => range,
            Err(reason) => {
                let unsent: u64 = parts.map(|rest| rest.frames.len() as u64).sum();
                context.stats.record_dropped(reason, part_count + unsent);
                return false;
            }
        };
        let work = Work {
            range,
            input: WorkInput::Frames(part),
        };
        if context.queue.push(work).await.is_err() {
            // In the WAL already: the next start replays it. Not indexed by this run.
            let unsent: u64 = parts.map(|rest| rest.frames.len() as u64).sum();
            context
                .stats
                .record_dropped(DropReason::Shutdown, part_count + unsent);
            return false;
        }
    }
    true
}

/// Appends `batch`, retrying with backoff while the WAL refuses for a reason that goes away
/// (disk full, I/O error). Gives up (with the reason to count the batch under) on shutdown or
/// when the WAL cannot take writes any more.
async fn append_with_retry(
    batch: &RawBatch,
    peer: SocketAddr,
    context: &ListenerContext,
) -> Result<crate::wal::Appended, DropReason> {
    let mut pause = WAL_RETRY_FIRST;
    let mut logged = false;
    loop {
        let error = match context.wal.wal.append(FrameFormat::Syslog, batch) {
            Ok(range) => {
                if logged {
                    tracing::info!(%peer, "wal takes writes again, tcp reads resume");
                }
                return Ok(range);
            }
            Err(error) => error,
        };
        if !error.is_retryable() {
            if !matches!(error, WalError::Closed) {
                tracing::error!(%peer, %error, "wal refused a tcp batch, closing the connection");
            }
            return Err(DropReason::WalUnavailable);
        }
        if !logged {
            tracing::warn!(%peer, %error, "wal cannot write, tcp reads paused until it can");
            logged = true;
        }
        tokio::select! {
            () = context.shutdown.cancelled() => return Err(DropReason::Shutdown),
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(WAL_RETRY_MAX);
    }
}
