//! Syslog over TCP: RFC 6587 octet counting and non-transparent (LF, CRLF, NUL) framing, detected
//! per frame by [`StreamFramer`].
//!
//! Per connection: one read buffer, one framer, one batch per read. The batch is pushed with
//! [`BatchQueue::push`], which waits while the pipeline is full: the connection is not read while
//! it waits, so the sender's TCP window closes (backpressure, never a silent drop). A connection
//! idle for longer than `idle_timeout` is closed; at most `max_connections` are served at once
//! (further ones are accepted and closed immediately, and counted as refused).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::ListenerContext;
use crate::batch::{RawBatch, RawFrame, Work};
use crate::error::IngestError;
use crate::event::{Source, Timestamp};
use crate::framing::{FramingEvent, StreamFramer};
use crate::stats::DropReason;

/// TCP listener settings.
#[derive(Debug, Clone)]
pub struct TcpConfig {
    /// Frames longer than this are truncated (and the rest of the frame skipped).
    pub max_frame_bytes: usize,
    /// Connections served at once; more are closed on accept and counted as refused.
    pub max_connections: usize,
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
    let permits = Arc::new(Semaphore::new(config.max_connections.max(1)));
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
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            context.stats.connection_refused();
            tracing::warn!(%peer, "tcp connection refused: max_connections reached");
            drop(stream);
            continue;
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

/// Pushes one batch, waiting for room. Returns false when the pipeline is closed.
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
    match context.queue.push(Work::Frames(batch)).await {
        Ok(()) => true,
        Err(_closed) => {
            context
                .stats
                .record_dropped(DropReason::Shutdown, count as u64);
            false
        }
    }
}
