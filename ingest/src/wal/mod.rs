//! The write-ahead log: every ingested batch is appended here before it is processed, and
//! replayed from here after a restart.
//!
//! # What it promises
//!
//! - A record [`Wal::append`] returned is readable by [`Wal::read_from`] and survives a crash
//!   of the process. It survives a power loss once [`Wal::wait_durable`] for its end returned
//!   under [`FsyncPolicy::Always`] or [`FsyncPolicy::Interval`] (never under
//!   [`FsyncPolicy::Never`]). Ingest acknowledges only after that wait.
//! - After a crash, opening the WAL cuts a torn or corrupt tail at the last valid record. The
//!   records cut were never fsynced, so never acknowledged; they are counted
//!   ([`Recovery::truncated_records`], `recovery_truncated_*` in [`WalStats`]) and logged.
//! - A full disk makes [`Wal::append`] fail with [`WalError::DiskFull`] and leaves the WAL as it
//!   was (a partly written record is cut back); the next append after space returns succeeds.
//!   Nothing acknowledged is lost.
//! - Positions are never reused: exactly-once into the index rests on it (see "Positions").
//!
//! # On-disk format (version 1)
//!
//! A directory (`<data-dir>/wal/`) of segment files and a `LOCK` file (held with an OS file lock
//! while the WAL is open, so two processes never share a WAL). Other files are ignored, so an
//! operator can move a damaged segment aside as `*.seg.corrupt`.
//!
//! Segment file `<base>.seg`, `base` being the position of its first record as 20 zero-padded
//! decimal digits (lexical order = numeric order), e.g. `00000000000134217696.seg`:
//!
//! ```text
//! segment header (32 bytes)
//!   0  magic     8 bytes  "CAIRNWAL"
//!   8  version   u32 LE   1
//!  12  reserved  u32      0
//!  16  base      u64 LE   position of the first record (same as the file name)
//!  24  crc       u32 LE   crc32c of bytes 0..24
//!  28  reserved  u32      0
//! records, back to back, until the end of the file
//!   0  len       u32 LE   payload length (20 ..= 1 GiB; the configured max_record_bytes applies
//!                         to appends only, so lowering it never makes old records unreadable)
//!   4  crc       u32 LE   crc32c (Castagnoli), not masked, over the 8 seq bytes then the payload
//!   8  seq       u64 LE   the batch's first event sequence number (frame i has seq + i); not
//!                         ordered across records (sequence numbers are allocated before the
//!                         append, so two appenders may write in the other order)
//!  16  payload   len bytes
//! ```
//!
//! Payload (one [`RawBatch`](crate::batch::RawBatch) per record, so the 16-byte record overhead is per batch, not per
//! event; all integers little-endian):
//!
//! ```text
//! version u8 (1) | format u8 (0 syslog, 1 ndjson line) | source u8 (0 udp, 1 tcp, 2 http, 3 file,
//! 4 tls, 5 relp)
//! | peer_flag u8 (0 none, 1 present) [| addr] | received_at i64 (ns since the epoch)
//! | peer_count u32 | addr × peer_count          (per-frame peers of a UDP batch)
//! | frame_count u32 | (flags u8 | len u32 | bytes) × frame_count
//! addr = 4 | ipv4 [4] | port u16   or   6 | ipv6 [16] | port u16 | flowinfo u32 | scope_id u32
//! ```
//!
//! Flags are [`crate::EventFlags`] bits; unknown bits, codes or versions, counts that cannot fit
//! in the bytes left, and trailing bytes are decode errors (never panics, never allocates more
//! than the payload's size).
//!
//! # Positions
//!
//! A [`Position`] is a logical byte offset over the records of all segments, segment headers
//! not counted: the record at file offset `o` of segment `base` is at position
//! `base + (o - 32)`. Hence:
//!
//! - records are contiguous: a record's `end` is the next record's `start`, also across a
//!   segment roll-over (`base` of segment n+1 = end of segment n);
//! - a position is a record boundary or not a position at all; the index stores the `end` of
//!   the last record it committed (`wal_position` in the commit payload = "everything before it
//!   is indexed"), and replay reads from there;
//! - positions only grow. A gap (base of n+1 > end of n) appears only when a segment is moved
//!   aside by the operator or [`Wal::skip_to`] jumps ahead; both are logged.
//!
//! # Invariants
//!
//! 1. Only the last segment is ever written; a segment is fsynced before its successor is
//!    created (whatever the policy), so only the last segment can have a torn tail.
//! 2. A new segment's header is fsynced, and the directory too, before any record goes in.
//! 3. `durable <= end`; `durable` only grows; a record ending at or before `durable` is on disk.
//! 4. After a failed write, the file is cut back to the previous record before the lock is
//!    released; if that cut fails, the WAL stops taking writes ([`WalError::Failed`]).
//! 5. A failed fsync stops the WAL for good ([`WalError::Failed`], until restart): after such a
//!    failure the kernel may have dropped the dirty pages and a retried fsync could falsely
//!    succeed (PostgreSQL's "fsyncgate"). Restarting re-reads what is really on disk.
//!
//! # Recovery on open
//!
//! Every segment header is checked (magic, crc, version, base = file name), and consecutive
//! segments must not overlap. The last segment is scanned record by record; the first record
//! that is incomplete, has an out-of-range length, or fails its crc ends the valid part: the
//! file is cut there and fsynced. A last segment shorter than its header (a crash right after
//! creating it) gets its header rewritten. Damage anywhere else cannot be a torn write and is
//! not repaired silently: a bad header fails [`Wal::open`], and a bad record in an earlier
//! segment fails the replay ([`WalReader`]), both with [`WalError::Corruption`] naming the file
//! and offset. The way out is to move that segment aside (its records are lost, the gap is
//! logged) and restart.
//!
//! # Concurrency and group commit
//!
//! Appenders encode and checksum their record outside any lock, then write it under one mutex
//! around the active segment (one `pwrite` into the page cache). No fsync runs under that mutex
//! except at roll-over (once per segment). A dedicated syncer thread does the fsyncs
//! (`fdatasync`): under `always` as soon as someone waits, under `interval` at most once per
//! interval. Each fsync covers every record written before it started, so all appenders that
//! wait meanwhile share one fsync. Waiters block on a condvar ([`Wal::wait_durable_blocking`])
//! or a `tokio::sync::watch` ([`Wal::wait_durable`]), so async tasks never block on disk.
//!
//! # Retention
//!
//! [`Wal::truncate_before`] deletes whole closed segments whose records all lie before the
//! given position. The caller passes the smallest position every consumer has made durable:
//! min(index committed `wal_position`, correlation snapshot position).
//!
//! # Ordering for exactly-once into the index
//!
//! The pipeline's workers run in parallel, so batches reach the indexer out of WAL order. The
//! index may only commit a position P when every record before P is in the commit and no record
//! at or after P is: [`Sequencer`] puts batches back into WAL order (and lets dropped records be
//! skipped), and the indexer commits the sequencer's [`Sequencer::next`] after a [`Wal::sync`]
//! covering it (so that the index never gets ahead of the WAL's durable end).
//!
//! This module does not know about parsing, the index or correlation.

mod error;
mod faults;
mod format;
mod log;
mod payload;
mod reader;
mod sequencer;
mod stats;

use std::fmt;

pub use error::WalError;
pub use faults::{DiskBudget, FaultInjection};
pub use log::{FsyncPolicy, Recovery, Truncated, Wal, WalOptions};
pub use payload::{FrameFormat, PayloadError, decode_payload, payload_len_bound};
pub use reader::{WalReader, WalRecord};
pub use sequencer::Sequencer;
pub use stats::{WalStats, WalStatsSnapshot};

/// A place in the WAL: a logical byte offset over all records (see the module docs). Stored in
/// the index commit payload as `wal_position`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position(pub u64);

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where an appended record lies: `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Appended {
    pub start: Position,
    /// The position after the record: wait for this one to be durable before acknowledging.
    pub end: Position,
}
