//! Syslog listeners (tokio), one file per listener kind.
//!
//! A listener turns sockets into [`RawBatch`](crate::batch::RawBatch)es, appends each to the WAL
//! and then pushes it, with its WAL range, into the pipeline's [`BatchQueue`]. What happens when
//! the queue is full or the WAL cannot write depends on the transport:
//! - TCP waits for room, so the connection's reads pause and the sender feels backpressure; when
//!   the disk is full it retries the append with backoff (reads stay paused), never dropping;
//! - UDP cannot push back: a batch that finds the queue full is dropped (`queue_full`) before it
//!   is appended, one the WAL refuses is dropped as `wal_unavailable`.
//!
//! Every range appended reaches the indexer, as work or as a skip ([`WalSink::skips`]), so that
//! the index can commit WAL positions in order.
//!
//! Listeners are bound by the caller ([`tcp::bind`], [`udp::bind`]) so that bind errors surface at
//! start-up and tests can bind port 0 and learn the port.

pub mod connection;
pub mod limits;
pub mod relp;
pub mod tcp;
pub mod tls;
pub mod udp;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::batch::{SeqAllocator, Work};
use crate::queue::BatchQueue;
use crate::stats::Stats;
use crate::wal::{Appended, Wal};

/// Where ingest writes before it queues: the WAL, and the indexer's channel for records that
/// were appended but will never be queued (a UDP batch whose push lost a race with a full queue,
/// an HTTP batch whose durability wait failed). A skipped record is not indexed in this run.
#[derive(Debug, Clone)]
pub struct WalSink {
    pub wal: Arc<Wal>,
    pub skips: crossbeam_channel::Sender<Appended>,
}

impl WalSink {
    /// Tells the indexer that `range` will never arrive as work.
    pub fn skip(&self, range: Appended) {
        // The indexer outlives every appender; a closed channel means it is gone already.
        let _ = self.skips.send(range);
    }
}

/// What every listener shares with the pipeline.
#[derive(Debug, Clone)]
pub struct ListenerContext {
    pub queue: BatchQueue<Work>,
    pub wal: WalSink,
    pub seqs: SeqAllocator,
    pub stats: Arc<Stats>,
    /// Cancelled when the appliance stops accepting input.
    pub shutdown: CancellationToken,
}
