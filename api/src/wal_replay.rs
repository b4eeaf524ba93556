//! Start-up and stop of the write-ahead log: open it, pick where replay starts, replay it into
//! the pipeline, close it.
//!
//! Where replay starts: the index's committed `wal_position` says "every record before this is
//! indexed"; correlation's checkpoint position says "every record before this is in the
//! correlation snapshot and its alerts are in the incident store". Replay starts at the smallest
//! position some consumer still needs ([`replay_start`]), or at the WAL's oldest record when
//! neither has one. Records are pushed into the work queue with their ranges, gaps (segments
//! moved aside) are sent to the indexer as skips (which it forwards to correlation), and each
//! consumer's [`cairn_ingest::wal::Sequencer`] drops what lies before its own position: the
//! index gets exactly the records from the index position on, correlation exactly those from
//! its checkpoint position on.
//!
//! Sequence numbers: a record's events were numbered before it was appended, so after a crash
//! the WAL may hold numbers the index never saw; numbering continues after the highest of both.

use std::path::Path;
use std::sync::Arc;

use cairn_ingest::batch::{Work, WorkInput};
use cairn_ingest::listeners::WalSink;
use cairn_ingest::queue::BatchQueue;
use cairn_ingest::stats::Stats;
use cairn_ingest::wal::{Appended, FrameFormat, Position, Wal, WalError, WalOptions};

/// What a replay pushed into the pipeline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    pub records: u64,
    pub events: u64,
    /// Ranges with no records (segments moved aside) passed over.
    pub gaps: u64,
    /// One past the highest sequence number in a replayed record (0 when none).
    pub next_seq: u64,
}

/// Opens `<data_dir>/wal` and makes sure it never reuses a position a consumer has committed
/// (`committed`: the largest of the index's and correlation's positions): when it is past the
/// WAL's end (the WAL lost its tail or was wiped), the WAL skips ahead to it. Blocking.
///
/// # Errors
/// As [`Wal::open`] and [`Wal::skip_to`].
pub fn open_wal(
    dir: &Path,
    options: WalOptions,
    committed: Option<Position>,
) -> Result<Wal, WalError> {
    let wal = Wal::open(dir, options)?;
    let recovery = wal.recovery();
    if recovery.truncated_records > 0 || recovery.truncated_bytes > 0 {
        tracing::warn!(
            records = recovery.truncated_records,
            bytes = recovery.truncated_bytes,
            "wal: cut a torn tail left by a crash (never acknowledged)"
        );
    }
    for (from, to) in &recovery.gaps {
        tracing::warn!(
            from = from.0,
            to = to.0,
            "wal: no segment holds these positions; their events are lost"
        );
    }
    if let Some(position) = committed
        && position > wal.end()
    {
        tracing::error!(
            committed_position = position.0,
            wal_end = wal.end().0,
            "the index or correlation has committed past the end of the wal (its tail was lost \
             or the wal was wiped); the wal skips ahead so that positions are never reused"
        );
        wal.skip_to(position)?;
    }
    Ok(wal)
}

/// Where replay starts: the smallest position a consumer still needs, never below the WAL's
/// oldest record. `index_position` is the index's committed `wal_position`;
/// `other_positions` the other consumers' (correlation's checkpoint).
pub fn replay_start(
    index_position: Option<Position>,
    other_positions: &[Position],
    oldest: Position,
) -> Position {
    let wanted = index_position
        .into_iter()
        .chain(other_positions.iter().copied())
        .min();
    match wanted {
        None => oldest,
        Some(position) if position < oldest => {
            tracing::warn!(
                wanted = position.0,
                oldest = oldest.0,
                "wal records needed for replay were deleted; replaying from the oldest kept"
            );
            oldest
        }
        Some(position) => position,
    }
}

/// Reads every record from `from` to the WAL's end and pushes it into the work queue (waiting for
/// room), with gaps sent as skips. Blocking: run it on a blocking thread while the pipeline runs.
///
/// # Errors
/// [`WalError::Corruption`] for a damaged record (records before it are already queued),
/// [`WalError::Closed`] when the queue closed.
pub fn replay(
    wal: &Wal,
    from: Position,
    queue: &BatchQueue<Work>,
    sink: &WalSink,
    stats: &Stats,
) -> Result<ReplaySummary, WalError> {
    let mut summary = ReplaySummary::default();
    let mut expected = from;
    for record in wal.read_from(from)? {
        let record = record?;
        if record.start > expected {
            tracing::warn!(
                from = expected.0,
                to = record.start.0,
                "wal replay passes over a gap"
            );
            sink.skip(Appended {
                start: expected,
                end: record.start,
            });
            summary.gaps += 1;
        }
        expected = record.end;
        let events = record.batch.frames.len() as u64;
        summary.records += 1;
        summary.events += events;
        summary.next_seq = summary.next_seq.max(record.batch.first_seq.0 + events);
        stats.record_replayed(events);
        let input = match record.format {
            FrameFormat::Syslog => WorkInput::Frames(record.batch),
            FrameFormat::NdjsonLine => WorkInput::NdjsonLines(record.batch),
        };
        let work = Work {
            range: Appended {
                start: record.start,
                end: record.end,
            },
            input,
        };
        if queue.push_blocking(work).is_err() {
            return Err(WalError::Closed);
        }
    }
    Ok(summary)
}

/// Closes the WAL after the pipeline stopped: a last fsync, then the syncer stops. When other
/// handles are still alive (a connection task finishing), only the fsync runs here; the WAL
/// closes when the last handle drops.
pub fn close_wal(wal: Arc<Wal>) {
    let closed = match Arc::try_unwrap(wal) {
        Ok(wal) => wal.close(),
        Err(shared) => shared.sync().map(|_| ()),
    };
    if let Err(error) = closed {
        tracing::error!(%error, "the wal did not close cleanly");
    }
}

/// The way out of a corrupt segment, for the start-up error.
pub fn corruption_hint(error: &WalError) -> Option<String> {
    let WalError::Corruption { path, .. } = error else {
        return None;
    };
    Some(format!(
        "rename {} to {}.corrupt and start again (only the events in that segment are lost)",
        path.display(),
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_starts_at_the_smallest_needed_position_within_the_wal() {
        assert_eq!(replay_start(None, &[], Position(40)), Position(40));
        assert_eq!(
            replay_start(Some(Position(100)), &[], Position(40)),
            Position(100)
        );
        assert_eq!(
            replay_start(Some(Position(100)), &[Position(70)], Position(40)),
            Position(70)
        );
        assert_eq!(
            replay_start(Some(Position(10)), &[], Position(40)),
            Position(40)
        );
    }
}
