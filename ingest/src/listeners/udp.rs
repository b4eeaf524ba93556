//! Syslog over UDP: one datagram is one frame (trailing LF/NUL stripped, cut at
//! `max_frame_bytes`).
//!
//! The listener drains every datagram the socket has ready (up to `max_batch` at a time) into one
//! batch, appends it to the WAL and offers it to the pipeline with [`BatchQueue::try_push`]. UDP
//! cannot push back: a batch that finds the queue full is dropped before it is appended and its
//! datagrams are counted as `queue_full`; one the WAL refuses (disk full, I/O error, a stopped
//! WAL) is counted as `wal_unavailable`. If the push loses a race with a full queue after the
//! append, the record is sent to the indexer as a skip (and counted `queue_full`). Datagrams are read
//! into large shared buffers so that frames are zero-copy slices and allocation happens per
//! megabyte, not per datagram.

use std::net::SocketAddr;

use bytes::BytesMut;
use tokio::net::UdpSocket;

use super::ListenerContext;
use crate::batch::{RawBatch, RawFrame, Work, WorkInput};
use crate::error::IngestError;
use crate::event::{Source, Timestamp};
use crate::framing::datagram_frame;
use crate::stats::DropReason;
use crate::wal::FrameFormat;

/// The largest UDP payload (IPv4: 65,507; IPv6 jumbograms aside).
const MAX_DATAGRAM: usize = 65_536;
const CHUNK: usize = 1 << 20;

/// UDP listener settings.
#[derive(Debug, Clone)]
pub struct UdpConfig {
    /// Datagrams longer than this are truncated (flagged).
    pub max_frame_bytes: usize,
    /// At most this many datagrams per batch.
    pub max_batch: usize,
    /// Requested kernel receive buffer (`SO_RCVBUF`); the kernel may cap it (`net.core.rmem_max`).
    pub receive_buffer_bytes: usize,
}

impl Default for UdpConfig {
    fn default() -> Self {
        UdpConfig {
            max_frame_bytes: 64 * 1024,
            max_batch: 512,
            receive_buffer_bytes: 8 * 1024 * 1024,
        }
    }
}

/// Binds the socket, asking for a large receive buffer.
pub fn bind(addr: SocketAddr, config: &UdpConfig) -> Result<UdpSocket, IngestError> {
    let io_error = |source| IngestError::Io {
        path: format!("udp://{addr}").into(),
        source,
    };
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))
        .map_err(io_error)?;
    if let Err(error) = socket.set_recv_buffer_size(config.receive_buffer_bytes) {
        tracing::warn!(%error, "could not set the UDP receive buffer size");
    }
    socket.set_nonblocking(true).map_err(io_error)?;
    socket.bind(&addr.into()).map_err(io_error)?;
    UdpSocket::from_std(socket.into()).map_err(io_error)
}

/// Receives datagrams until the context's shutdown token is cancelled.
pub async fn run(socket: UdpSocket, config: UdpConfig, context: ListenerContext) {
    let mut buffer = BytesMut::with_capacity(CHUNK);
    loop {
        tokio::select! {
            () = context.shutdown.cancelled() => return,
            ready = socket.readable() => {
                if let Err(error) = ready {
                    tracing::warn!(%error, "udp socket failed");
                    return;
                }
            }
        }
        let mut frames = Vec::new();
        let mut peers: Vec<SocketAddr> = Vec::new();
        let mut bytes = 0u64;
        while frames.len() < config.max_batch {
            if buffer.capacity() - buffer.len() < MAX_DATAGRAM {
                buffer = BytesMut::with_capacity(CHUNK);
            }
            match socket.try_recv_buf_from(&mut buffer) {
                Ok((length, peer)) => {
                    let datagram = buffer.split_to(length).freeze();
                    bytes += datagram.len() as u64;
                    frames.push(RawFrame::from(datagram_frame(
                        datagram,
                        config.max_frame_bytes,
                    )));
                    peers.push(peer);
                }
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(error) => {
                    // ICMP errors and the like surface here on some systems; keep serving.
                    tracing::debug!(%error, "udp receive failed");
                    break;
                }
            }
        }
        if frames.is_empty() {
            continue;
        }
        let count = frames.len();
        context
            .stats
            .record_received(Source::SyslogUdp, count as u64, bytes);
        let batch = RawBatch {
            source: Source::SyslogUdp,
            peer: None,
            peers,
            received_at: Timestamp::now(),
            first_seq: context.seqs.allocate(count),
            frames,
        };
        let max_record_bytes = context.wal.wal.options().max_record_bytes;
        for part in batch.split_to_fit(max_record_bytes) {
            offer(part, &context);
        }
    }
}

/// Appends one batch and offers it to the pipeline, counting it as dropped when either refuses.
fn offer(batch: RawBatch, context: &ListenerContext) {
    let count = batch.frames.len() as u64;
    if context.queue.len() >= context.queue.capacity() || context.queue.is_closed() {
        context.stats.record_dropped(DropReason::QueueFull, count);
        return;
    }
    let range = match context.wal.wal.append(FrameFormat::Syslog, &batch) {
        Ok(range) => range,
        Err(error) => {
            tracing::debug!(%error, datagrams = count, "wal refused a udp batch");
            context
                .stats
                .record_dropped(DropReason::WalUnavailable, count);
            return;
        }
    };
    let work = Work {
        range,
        input: WorkInput::Frames(batch),
    };
    if context.queue.try_push(work).is_err() {
        context.wal.skip(range);
        context.stats.record_dropped(DropReason::QueueFull, count);
    }
}
