//! Syslog listeners (tokio), one file per listener kind.
//!
//! A listener turns sockets into [`RawBatch`](crate::batch::RawBatch)es and pushes them into the
//! pipeline's [`BatchQueue`]. What happens when the queue is full depends on the transport:
//! - TCP waits for room, so the connection's reads pause and the sender feels backpressure;
//! - UDP cannot push back: the batch is dropped and counted as `queue_full`.
//!
//! Listeners are bound by the caller ([`tcp::bind`], [`udp::bind`]) so that bind errors surface at
//! start-up and tests can bind port 0 and learn the port.

pub mod tcp;
pub mod udp;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::batch::{SeqAllocator, Work};
use crate::queue::BatchQueue;
use crate::stats::Stats;

/// What every listener shares with the pipeline.
#[derive(Debug, Clone)]
pub struct ListenerContext {
    pub queue: BatchQueue<Work>,
    pub seqs: SeqAllocator,
    pub stats: Arc<Stats>,
    /// Cancelled when the appliance stops accepting input.
    pub shutdown: CancellationToken,
}
