//! What crosses the pipeline queue: batches of raw frames (syslog) or of already-decoded events
//! (HTTP NDJSON), and the appliance-wide sequence allocator.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::event::{EventBatch, EventFlags, FrameMeta, Seq, Source, Timestamp};

/// Hands out appliance-wide monotonic sequence numbers, a range per batch (one atomic add per
/// batch, not per event). Cloning shares the counter.
#[derive(Debug, Clone)]
pub struct SeqAllocator {
    next: Arc<AtomicU64>,
}

impl SeqAllocator {
    /// An allocator whose first sequence number is `first` (1 on a fresh appliance, last indexed
    /// + 1 after a restart).
    pub fn starting_at(first: u64) -> SeqAllocator {
        SeqAllocator {
            next: Arc::new(AtomicU64::new(first.max(1))),
        }
    }

    /// Reserves `count` consecutive numbers and returns the first.
    pub fn allocate(&self, count: usize) -> Seq {
        Seq(self.next.fetch_add(count as u64, Ordering::Relaxed))
    }

    /// The next number that would be handed out.
    pub fn peek(&self) -> Seq {
        Seq(self.next.load(Ordering::Relaxed))
    }
}

/// One frame as the framer produced it.
#[derive(Debug, Clone)]
pub struct RawFrame {
    pub bytes: Bytes,
    pub flags: EventFlags,
}

impl From<crate::framing::Frame> for RawFrame {
    /// A framer's output, with [`EventFlags::TRUNCATED`] when it was cut.
    fn from(frame: crate::framing::Frame) -> RawFrame {
        let flags = if frame.truncated {
            EventFlags::TRUNCATED
        } else {
            EventFlags::empty()
        };
        RawFrame {
            bytes: frame.bytes,
            flags,
        }
    }
}

/// Frames read together from one sender (one read, or one burst of datagrams).
#[derive(Debug, Clone)]
pub struct RawBatch {
    pub source: Source,
    /// For TCP the connection's peer; for UDP each frame has its own peer in `peers`.
    pub peer: Option<SocketAddr>,
    /// Per-frame peers (UDP); empty when `peer` applies to all frames.
    pub peers: Vec<SocketAddr>,
    pub received_at: Timestamp,
    /// Sequence number of the first frame; frame `i` gets `first_seq + i`.
    pub first_seq: Seq,
    pub frames: Vec<RawFrame>,
}

impl RawBatch {
    /// Metadata for frame `index`.
    pub fn meta(&self, index: usize) -> FrameMeta {
        FrameMeta {
            seq: Seq(self.first_seq.0 + index as u64),
            received_at: self.received_at,
            peer: self.peers.get(index).copied().or(self.peer),
            source: self.source,
            flags: self
                .frames
                .get(index)
                .map(|frame| frame.flags)
                .unwrap_or_default(),
        }
    }

    /// Total frame bytes.
    pub fn byte_len(&self) -> usize {
        self.frames.iter().map(|frame| frame.bytes.len()).sum()
    }
}

/// A unit of work for the pipeline's parse workers.
#[derive(Debug)]
pub enum Work {
    /// Syslog frames to parse.
    Frames(RawBatch),
    /// Events already decoded (NDJSON over HTTP): normalised and matched, not parsed again.
    Events(EventBatch),
}

impl Work {
    /// How many events this work item becomes.
    pub fn len(&self) -> usize {
        match self {
            Work::Frames(batch) => batch.frames.len(),
            Work::Events(events) => events.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocator_hands_out_disjoint_ranges() {
        let allocator = SeqAllocator::starting_at(10);
        assert_eq!(allocator.allocate(3), Seq(10));
        assert_eq!(allocator.allocate(1), Seq(13));
        assert_eq!(allocator.peek(), Seq(14));
        assert_eq!(SeqAllocator::starting_at(0).allocate(1), Seq(1));
    }

    #[test]
    fn batch_meta_numbers_frames_and_picks_peers() {
        let peer_a: SocketAddr = "10.0.0.1:514".parse().expect("addr");
        let peer_b: SocketAddr = "10.0.0.2:514".parse().expect("addr");
        let batch = RawBatch {
            source: Source::SyslogUdp,
            peer: None,
            peers: vec![peer_a, peer_b],
            received_at: Timestamp(7),
            first_seq: Seq(100),
            frames: vec![
                RawFrame {
                    bytes: Bytes::from_static(b"a"),
                    flags: EventFlags::empty(),
                },
                RawFrame {
                    bytes: Bytes::from_static(b"b"),
                    flags: EventFlags::TRUNCATED,
                },
            ],
        };
        assert_eq!(batch.meta(1).seq, Seq(101));
        assert_eq!(batch.meta(1).peer, Some(peer_b));
        assert!(batch.meta(1).flags.contains(EventFlags::TRUNCATED));
        assert_eq!(batch.byte_len(), 2);
    }
}
