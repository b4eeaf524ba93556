//! What crosses the pipeline queue: batches of raw frames (syslog) or of already-decoded events
//! (HTTP NDJSON), each with the WAL range of its record, and the appliance-wide sequence
//! allocator.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::event::{EventBatch, EventFlags, FrameMeta, Seq, Source, Timestamp};
use crate::wal::{Appended, payload_len_bound};

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

    /// Splits the batch into consecutive batches whose WAL payload ([`payload_len_bound`]) is at
    /// most `max_payload_bytes`, numbering stays continuous (`first_seq` moves along). A single
    /// frame larger than the limit gets a batch of its own (its append fails with
    /// `RecordTooLarge`). Returns the batch itself, unsplit, when it fits.
    pub fn split_to_fit(self, max_payload_bytes: usize) -> Vec<RawBatch> {
        if payload_len_bound(&self) <= max_payload_bytes {
            return vec![self];
        }
        let header = self.clone_header();
        let fixed = payload_len_bound(&header);
        // Per frame: 5 bytes of flags and length, its bytes, and its own peer when it has one.
        let with_one_peer = RawBatch {
            peers: vec![SocketAddr::from(([0, 0, 0, 0], 0))],
            ..header.clone()
        };
        let per_peer = payload_len_bound(&with_one_peer) - fixed;
        let has_peers = !self.peers.is_empty();
        let mut parts = Vec::new();
        let mut current = header.clone();
        let mut current_len = fixed;
        let mut peers = self.peers.into_iter();
        for frame in self.frames {
            let frame_len = 5 + frame.bytes.len() + if has_peers { per_peer } else { 0 };
            if !current.frames.is_empty() && current_len + frame_len > max_payload_bytes {
                let next_seq = Seq(current.first_seq.0 + current.frames.len() as u64);
                let mut next = header.clone();
                next.first_seq = next_seq;
                parts.push(std::mem::replace(&mut current, next));
                current_len = fixed;
            }
            current_len += frame_len;
            current.frames.push(frame);
            if let Some(peer) = peers.next() {
                current.peers.push(peer);
            }
        }
        parts.push(current);
        parts
    }

    /// The batch's metadata without frames or per-frame peers.
    fn clone_header(&self) -> RawBatch {
        RawBatch {
            source: self.source,
            peer: self.peer,
            peers: Vec::new(),
            received_at: self.received_at,
            first_seq: self.first_seq,
            frames: Vec::new(),
        }
    }
}

/// A unit of work for the pipeline's parse workers: what to process, and where its record lies
/// in the WAL. Every record appended reaches the indexer either as work or as a skip, so that the
/// indexer can commit WAL positions in order (see [`crate::wal::Sequencer`]).
#[derive(Debug)]
pub struct Work {
    pub range: Appended,
    pub input: WorkInput,
}

/// What a [`Work`] item holds.
#[derive(Debug)]
pub enum WorkInput {
    /// Syslog frames to parse.
    Frames(RawBatch),
    /// Accepted NDJSON lines read back from the WAL (replay): decoded again, one event per line.
    NdjsonLines(RawBatch),
    /// Events already decoded (NDJSON over HTTP): normalised and matched, not parsed again.
    Events(EventBatch),
}

impl Work {
    /// Bytes this item holds while queued, for the [`MemoryBudget`](crate::queue::MemoryBudget):
    /// the frames, or the decoded events.
    pub fn weight(&self) -> usize {
        match &self.input {
            WorkInput::Frames(batch) | WorkInput::NdjsonLines(batch) => {
                batch.byte_len() + batch.frames.len() * std::mem::size_of::<RawFrame>()
            }
            WorkInput::Events(events) => events_weight(events),
        }
    }

    /// How many events this work item becomes.
    pub fn len(&self) -> usize {
        match &self.input {
            WorkInput::Frames(batch) | WorkInput::NdjsonLines(batch) => batch.frames.len(),
            WorkInput::Events(events) => events.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Estimated bytes held by parsed events: each event's frame, its struct, and its fields and
/// structured data (owned names and values are estimated at the frame's size, an upper bound
/// for span-backed text and close for extracted text).
pub fn events_weight(events: &[crate::event::Event]) -> usize {
    events
        .iter()
        .map(|event| {
            std::mem::size_of::<crate::event::Event>()
                + event.raw.len()
                + event.fields.len() * std::mem::size_of::<crate::event::Field>()
                + event.structured_data.len() * 64
        })
        .sum()
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

    fn frames(count: usize, len: usize) -> Vec<RawFrame> {
        (0..count)
            .map(|_| RawFrame {
                bytes: Bytes::from(vec![b'x'; len]),
                flags: EventFlags::empty(),
            })
            .collect()
    }

    #[test]
    fn split_to_fit_keeps_order_numbering_and_peers() {
        let peers: Vec<SocketAddr> = (0..10)
            .map(|n| format!("10.0.0.{n}:514").parse().expect("addr"))
            .collect();
        let batch = RawBatch {
            source: Source::SyslogUdp,
            peer: None,
            peers: peers.clone(),
            received_at: Timestamp(7),
            first_seq: Seq(100),
            frames: frames(10, 100),
        };
        let whole = payload_len_bound(&batch);
        assert_eq!(batch.clone().split_to_fit(whole).len(), 1);
        let limit = whole / 3;
        let parts = batch.split_to_fit(limit);
        assert!(parts.len() >= 3, "{}", parts.len());
        let mut next_seq = 100;
        let mut all_peers = Vec::new();
        for part in &parts {
            assert!(payload_len_bound(part) <= limit);
            assert_eq!(part.first_seq, Seq(next_seq));
            assert_eq!(part.peers.len(), part.frames.len());
            next_seq += part.frames.len() as u64;
            all_peers.extend(part.peers.iter().copied());
        }
        assert_eq!(next_seq, 110);
        assert_eq!(all_peers, peers);
    }

    #[test]
    fn split_to_fit_gives_an_oversized_frame_its_own_batch() {
        let mut all = frames(1, 10);
        all.extend(frames(1, 5000));
        all.extend(frames(1, 10));
        let batch = RawBatch {
            source: Source::SyslogTcp,
            peer: Some("10.0.0.1:514".parse().expect("addr")),
            peers: Vec::new(),
            received_at: Timestamp(7),
            first_seq: Seq(1),
            frames: all,
        };
        let parts = batch.split_to_fit(1000);
        let sizes: Vec<usize> = parts.iter().map(|part| part.frames.len()).collect();
        assert_eq!(sizes, [1, 1, 1]);
        assert_eq!(parts[2].first_seq, Seq(3));
    }
}
