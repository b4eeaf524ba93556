//! Syslog over TCP: RFC 6587 octet counting and non-transparent (LF, CRLF, NUL) framing, detected
//! per frame by [`StreamFramer`].
//!
//! The connection loop ([`serve_stream`]) is generic over the byte stream, so syslog over TLS
//! ([`super::tls`]) runs the same loop over a decrypted stream. Per connection: one read buffer,
//! one framer, one batch per read. The batch is appended to the
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
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpListener;

use super::ListenerContext;
pub use super::connection::{WAL_RETRY_FIRST, WAL_RETRY_MAX};
use super::connection::{accept_loop, append_and_queue, bind_tcp};
use super::limits::ConnectionLimiter;
use crate::batch::RawFrame;
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

impl TcpConfig {
    /// The connection caps of a listener with this configuration.
    pub fn limiter(&self) -> std::sync::Arc<ConnectionLimiter> {
        ConnectionLimiter::new(self.max_connections, self.max_connections_per_source)
    }
}

/// Binds the listening socket.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, IngestError> {
    bind_tcp(addr, "tcp").await
}

/// Accepts and serves connections until the context's shutdown token is cancelled.
pub async fn run(listener: TcpListener, config: TcpConfig, context: ListenerContext) {
    let limiter = config.limiter();
    let config = std::sync::Arc::new(config);
    accept_loop(
        listener,
        limiter,
        "tcp",
        context,
        move |stream, peer, context| {
            let config = std::sync::Arc::clone(&config);
            async move { serve_stream(stream, peer, Source::SyslogTcp, &config, &context).await }
        },
    )
    .await;
}

/// Reads syslog frames from `stream` until it ends, idles out or the appliance stops; each read
/// becomes one batch, appended to the WAL and queued as `source` (see the module docs).
pub(crate) async fn serve_stream<S: AsyncRead + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    source: Source,
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
                tracing::debug!(%peer, "connection idle, closing");
                true
            }
            Ok(Ok(0)) => true,
            Ok(Ok(_)) => false,
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "read failed");
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
            context.stats.record_received(source, discarded, 0);
            context
                .stats
                .record_dropped(DropReason::FrameTooLong, discarded);
        }
        if !frames.is_empty() {
            let stored = append_and_queue(frames, source, peer, received_at, context).await;
            if !stored.is_ok_and(|stored| stored.queued) {
                return;
            }
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
