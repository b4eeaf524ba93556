//! The single writer: routes each event to its time partition, commits every partition with
//! changes and then `progress.json` (see `progress.rs` for why that is exactly once), and drops
//! partitions past retention.
//!
//! # Routing
//! An event goes to the partition whose span holds its `ts` (an existing partition of another
//! span length first, after `partition_hours` changed). Events more than one partition span in
//! the future (a sender's clock is wrong) go to the partition of the current time instead, so
//! that a stray year-2099 event does not create a partition retention never drops. Events whose
//! partition would already be past `max_age` are not indexed and are counted as expired. The
//! `legacy` partition is never written.
//!
//! # Retention
//! [`EventWriter::run_retention_if_due`] (the indexer thread calls it after its commits, every
//! [`RETENTION_CHECK_INTERVAL`]) drops, oldest first, partitions past `max_age`, then more while
//! the index is over `max_disk_bytes`. The newest partition (being written) and partitions with
//! uncommitted events are never dropped. A drop removes the partition from searches, renames its
//! directory to `<name>.dropped` and deletes it; searches running on it finish on the open files.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use cairn_ingest::{Event, Seq, Timestamp};
use serde::{Deserialize, Serialize};
use tantivy::IndexWriter;
use tantivy::indexer::{IndexWriterOptions, UserOperation};

use crate::document::EventDocument;
use crate::error::IndexError;
use crate::event_index::Shared;
use crate::partition::{Partition, PartitionKey};
use crate::progress;

/// How often [`EventWriter::run_retention_if_due`] actually checks.
pub const RETENTION_CHECK_INTERVAL: Duration = Duration::from_secs(10);

/// What a commit records besides the documents: how far ingest got. Stored as JSON in tantivy's
/// commit payload, so it is durable exactly when the documents are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitPayload {
    /// The largest `seq` handed to the writer before this commit. After a restart, numbering
    /// continues at `last_seq + 1`.
    pub last_seq: Seq,
    /// WAL position up to which every record is in this commit; replay starts after it.
    pub wal_position: Option<u64>,
}

/// The JSON form of [`CommitPayload`] (`{"last_seq":N,"wal_position":N|null}`).
#[derive(Serialize, Deserialize)]
struct CommitPayloadWire {
    last_seq: u64,
    wal_position: Option<u64>,
}

impl CommitPayload {
    pub(crate) fn to_json(self) -> String {
        let wire = CommitPayloadWire {
            last_seq: self.last_seq.0,
            wal_position: self.wal_position,
        };
        serde_json::to_string(&wire).unwrap_or_default()
    }

    pub(crate) fn from_json(text: &str) -> Result<CommitPayload, serde_json::Error> {
        let wire: CommitPayloadWire = serde_json::from_str(text)?;
        Ok(CommitPayload {
            last_seq: Seq(wire.last_seq),
            wal_position: wire.wal_position,
        })
    }
}

/// What one [`EventWriter::add_record`] did with its events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddOutcome {
    /// Added (searchable after the next commit).
    pub added: u64,
    /// Not added: their partition already holds this WAL record (replay after a crash).
    pub already_indexed: u64,
    /// Not added: their partition is past retention.
    pub expired: u64,
}

/// A partition with an open tantivy writer.
struct OpenWriter {
    partition: Arc<Partition>,
    writer: IndexWriter<EventDocument>,
    uncommitted: u64,
    /// WAL records ending at or before this are in the partition already.
    position: Option<u64>,
    /// Tick of the last batch routed here (least recently used is closed first).
    last_used: u64,
}

/// The index's only writer (see [`crate::EventIndex::writer`]). Owned by the indexer thread;
/// every method blocks (indexing, fsync on commit).
///
/// Dropping it without [`EventWriter::commit`] discards what was added since the last commit;
/// the WAL replays it on restart.
pub struct EventWriter {
    shared: Arc<Shared>,
    /// `writer.lock`, locked while this writer lives.
    _lock: std::fs::File,
    writers: BTreeMap<PartitionKey, OpenWriter>,
    uncommitted: u64,
    tick: u64,
    next_retention_check: Instant,
    /// Scratch: the partition of each event of the batch being added (`None`: expired).
    routes: Vec<Option<PartitionKey>>,
}

impl std::fmt::Debug for EventWriter {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("EventWriter")
            .field("path", &self.shared.dir)
            .field("open_partitions", &self.writers.keys().collect::<Vec<_>>())
            .field("uncommitted", &self.uncommitted)
            .finish_non_exhaustive()
    }
}

fn now_nanos() -> i64 {
    Timestamp::from_jiff(jiff::Timestamp::now()).as_nanos()
}

impl EventWriter {
    pub(crate) fn new(shared: Arc<Shared>) -> Result<EventWriter, IndexError> {
        let lock_path = shared.dir.join("writer.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|error| {
                IndexError::Unavailable(format!("cannot open {}: {error}", lock_path.display()))
            })?;
        lock.try_lock().map_err(|error| {
            IndexError::Unavailable(format!(
                "another writer holds {}: {error}",
                lock_path.display()
            ))
        })?;
        Ok(EventWriter {
            shared,
            _lock: lock,
            writers: BTreeMap::new(),
            uncommitted: 0,
            tick: 0,
            next_retention_check: Instant::now(),
            routes: Vec::new(),
        })
    }

    /// Adds a batch of events without signatures. Returns how many were added: all of them but
    /// those past retention.
    ///
    /// # Errors
    /// [`IndexError::Unavailable`] when an indexing thread died (usually an I/O error such as a
    /// full disk) or a partition cannot be created; the writer should then be dropped and
    /// reopened.
    pub fn add_batch(&mut self, events: &[Event]) -> Result<u64, IndexError> {
        self.add_batch_with_signatures(events, &[])
    }

    /// Adds a batch of events; `signatures[i]` names the signatures that matched `events[i]`
    /// (indexed as the multi-valued `signature` keyword besides the event's own). `signatures`
    /// may be shorter than `events`; missing entries mean no signature.
    ///
    /// # Errors
    /// As [`EventWriter::add_batch`].
    pub fn add_batch_with_signatures(
        &mut self,
        events: &[Event],
        signatures: &[&[&str]],
    ) -> Result<u64, IndexError> {
        Ok(self.add(None, events, signatures)?.added)
    }

    /// Adds the events of the WAL record that ends at `record_end`. After a crash, a partition
    /// may already hold the record (it committed, the round did not finish): those events are
    /// not added again ([`AddOutcome::already_indexed`]).
    ///
    /// # Errors
    /// As [`EventWriter::add_batch`].
    pub fn add_record(
        &mut self,
        record_end: u64,
        events: &[Event],
    ) -> Result<AddOutcome, IndexError> {
        self.add(Some(record_end), events, &[])
    }

    fn add(
        &mut self,
        record_end: Option<u64>,
        events: &[Event],
        signatures: &[&[&str]],
    ) -> Result<AddOutcome, IndexError> {
        self.tick += 1;
        let mut outcome = AddOutcome::default();
        let mut routes = std::mem::take(&mut self.routes);
        self.route(events, &mut routes);
        let mut remaining: Vec<PartitionKey> = Vec::new();
        for key in routes.iter().flatten() {
            if !remaining.contains(key) {
                remaining.push(*key);
            }
        }
        outcome.expired = routes.iter().filter(|route| route.is_none()).count() as u64;
        let fields = self.shared.fields;
        let result = remaining.into_iter().try_for_each(|key| {
            let count = routes.iter().filter(|route| **route == Some(key)).count() as u64;
            let open = self.open_writer(key)?;
            if record_end.is_some_and(|end| open.position.is_some_and(|position| end <= position)) {
                outcome.already_indexed += count;
                return Ok(());
            }
            let operation = |(position, event): (usize, &Event)| {
                let event_signatures = signatures.get(position).copied().unwrap_or(&[]);
                UserOperation::Add(EventDocument::new(event, event_signatures, fields))
            };
            let ran = if count == events.len() as u64 {
                // The usual case: the whole batch goes to one partition.
                open.writer.run(events.iter().enumerate().map(operation))
            } else {
                let operations: Vec<_> = events
                    .iter()
                    .enumerate()
                    .filter(|(position, _)| routes[*position] == Some(key))
                    .map(operation)
                    .collect();
                open.writer.run(operations)
            };
            ran.map_err(|error| IndexError::from_runtime(&open.partition.dir, error))?;
            open.uncommitted += count;
            self.uncommitted += count;
            outcome.added += count;
            Ok(())
        });
        self.routes = routes;
        self.shared
            .counters
            .expired_events
            .fetch_add(outcome.expired, Ordering::Relaxed);
        result.map(|()| outcome)
    }

    /// Fills `routes` with the partition of each event (see the module documentation).
    fn route(&self, events: &[Event], routes: &mut Vec<Option<PartitionKey>>) {
        let policy = self.shared.options.retention;
        let hours = policy.partition_hours;
        let now = now_nanos();
        let span_nanos = i64::from(hours) * 3_600_000_000_000;
        let horizon = policy
            .max_age
            .map(|age| now.saturating_sub(i64::try_from(age.as_nanos()).unwrap_or(i64::MAX)));
        let existing: Vec<PartitionKey> = self
            .shared
            .partitions()
            .iter()
            .map(|partition| partition.key)
            .collect();
        routes.clear();
        let mut last: Option<(PartitionKey, Option<PartitionKey>)> = None;
        for event in events {
            let ts = event.ts.as_nanos();
            let ts = if ts > now.saturating_add(span_nanos) {
                now
            } else {
                ts
            };
            let grid = PartitionKey::of(ts, hours);
            // Consecutive events mostly share a partition: decide once per run of them.
            if let Some((last_grid, last_route)) = last
                && last_grid == grid
            {
                routes.push(last_route);
                continue;
            }
            let key = if self.writers.contains_key(&grid) || existing.contains(&grid) {
                grid
            } else {
                existing
                    .iter()
                    .copied()
                    .find(|key| key.covers(ts))
                    .unwrap_or(grid)
            };
            let expired =
                horizon.is_some_and(|horizon| key.end_nanos().is_some_and(|end| end <= horizon));
            let route = (!expired).then_some(key);
            last = Some((grid, route));
            routes.push(route);
        }
    }

    /// The open writer of `key`, opening (and creating) the partition first when needed.
    fn open_writer(&mut self, key: PartitionKey) -> Result<&mut OpenWriter, IndexError> {
        let tick = self.tick;
        if !self.writers.contains_key(&key) {
            let opened = self.open_partition_writer(key)?;
            self.writers.insert(key, opened);
        }
        let open = self
            .writers
            .get_mut(&key)
            .ok_or_else(|| IndexError::Internal("partition writer vanished".to_owned()))?;
        open.last_used = tick;
        Ok(open)
    }

    fn open_partition_writer(&self, key: PartitionKey) -> Result<OpenWriter, IndexError> {
        let existing = self
            .shared
            .partitions()
            .into_iter()
            .find(|partition| partition.key == key);
        let partition = match existing {
            Some(partition) => partition,
            None => {
                let dir = self.shared.dir.join(key.name());
                let partition = Arc::new(Partition::open(key, &dir, true, false)?);
                let mut partitions = self
                    .shared
                    .partitions
                    .write()
                    .unwrap_or_else(PoisonError::into_inner);
                partitions.push(Arc::clone(&partition));
                partitions.sort_by_key(|partition| partition.key);
                tracing::info!(partition = %key.name(), "index partition created");
                partition
            }
        };
        let options = &self.shared.options;
        // The partition of the current time gets the configured memory; others (a backfill of
        // older days) the least tantivy accepts, so that several open writers stay cheap.
        let current = PartitionKey::of(now_nanos(), options.retention.partition_hours);
        let memory = if key >= current {
            options.writer_memory_bytes
        } else {
            crate::MIN_WRITER_MEMORY_PER_THREAD * options.writer_threads
        };
        let writer_options = IndexWriterOptions::builder()
            .memory_budget_per_thread(memory / options.writer_threads)
            .num_worker_threads(options.writer_threads)
            .num_merge_threads(options.merge_threads)
            .build();
        let writer = partition
            .index
            .writer_with_options(writer_options)
            .map_err(|error| IndexError::from_runtime(&partition.dir, error))?;
        let position = partition
            .payload_on_open
            .and_then(|payload| payload.wal_position)
            .max(self.shared.progress_on_open);
        Ok(OpenWriter {
            partition,
            writer,
            uncommitted: 0,
            position,
            last_used: self.tick,
        })
    }

    /// Events added since the last commit.
    pub fn uncommitted(&self) -> u64 {
        self.uncommitted
    }

    /// True when more partition writers are open than [`crate::IndexOptions::max_open_writers`]:
    /// commit soon, after which the least recently used ones are closed.
    pub fn wants_commit(&self) -> bool {
        self.writers.len() > self.shared.options.max_open_writers
    }

    /// Makes everything added so far durable together with `payload`: each partition with new
    /// events commits with it, then `progress.json` records it. The searchers reload, so that
    /// [`crate::EventIndex::search`] sees the events when this returns.
    ///
    /// # Errors
    /// [`IndexError::Unavailable`] on I/O failure; the previous payload stays the durable state
    /// (partitions that did commit say so in their own payload, see `progress.rs`). Retry later.
    pub fn commit(&mut self, payload: &CommitPayload) -> Result<(), IndexError> {
        let payload_json = payload.to_json();
        for open in self
            .writers
            .values_mut()
            .filter(|open| open.uncommitted > 0)
        {
            let dir = &open.partition.dir;
            let mut prepared = open
                .writer
                .prepare_commit()
                .map_err(|error| IndexError::from_runtime(dir, error))?;
            prepared.set_payload(&payload_json);
            prepared
                .commit()
                .map_err(|error| IndexError::from_runtime(dir, error))?;
            self.uncommitted -= open.uncommitted;
            open.uncommitted = 0;
            open.position = payload.wal_position;
            open.partition
                .reader
                .reload()
                .map_err(|error| IndexError::from_runtime(dir, error))?;
            open.partition.refresh_bytes();
        }
        progress::write(&self.shared.dir, payload)?;
        *self
            .shared
            .last_commit
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(*payload);
        self.close_idle_writers();
        Ok(())
    }

    /// Closes the least recently used writers past the cap (all committed at this point).
    fn close_idle_writers(&mut self) {
        let cap = self.shared.options.max_open_writers;
        while self.writers.len() > cap {
            let newest = self.writers.keys().next_back().copied();
            let idle = self
                .writers
                .iter()
                .filter(|(key, open)| Some(**key) != newest && open.uncommitted == 0)
                .min_by_key(|(_, open)| open.last_used)
                .map(|(key, _)| *key);
            let Some(key) = idle else { return };
            if let Some(open) = self.writers.remove(&key)
                && let Err(error) = open.writer.wait_merging_threads()
            {
                tracing::warn!(%error, partition = %key.name(), "closing a partition writer");
            }
        }
    }

    /// Discards what was added since the last commit.
    ///
    /// # Errors
    /// As [`EventWriter::commit`].
    pub fn rollback(&mut self) -> Result<(), IndexError> {
        for open in self.writers.values_mut() {
            open.writer
                .rollback()
                .map_err(|error| IndexError::from_runtime(&open.partition.dir, error))?;
            open.uncommitted = 0;
        }
        self.uncommitted = 0;
        Ok(())
    }

    /// Runs [`EventWriter::enforce_retention`] when [`RETENTION_CHECK_INTERVAL`] has passed
    /// since the last check (the first call checks at once). Errors are logged.
    pub fn run_retention_if_due(&mut self) {
        let has_policy = {
            let policy = self.shared.options.retention;
            policy.max_age.is_some() || policy.max_disk_bytes.is_some()
        };
        if !has_policy || Instant::now() < self.next_retention_check {
            return;
        }
        self.next_retention_check = Instant::now() + RETENTION_CHECK_INTERVAL;
        self.enforce_retention(now_nanos());
    }

    /// Drops partitions past retention at wall-clock time `now_nanos` (see the module
    /// documentation); returns the names of those dropped, oldest first.
    pub fn enforce_retention(&mut self, now_nanos: i64) -> Vec<String> {
        let policy = self.shared.options.retention;
        let partitions = self.shared.partitions();
        let Some(newest) = partitions.last().map(|partition| partition.key) else {
            return Vec::new();
        };
        let horizon = policy
            .max_age
            .map(|age| now_nanos.saturating_sub(i64::try_from(age.as_nanos()).unwrap_or(i64::MAX)));
        let mut total: u64 = partitions
            .iter()
            .map(|partition| partition.refresh_bytes())
            .sum();
        let mut dropped = Vec::new();
        for partition in &partitions {
            let busy = self
                .writers
                .get(&partition.key)
                .is_some_and(|open| open.uncommitted > 0);
            if partition.key == newest || busy {
                continue;
            }
            let end = partition.key.end_nanos().or_else(|| {
                partition
                    .ts_range(&partition.reader.searcher())
                    .map(|(_, newest_ts)| newest_ts.saturating_add(1))
            });
            let too_old = horizon
                .zip(end)
                .is_some_and(|(horizon, end)| end <= horizon);
            let over_budget = policy.max_disk_bytes.is_some_and(|budget| total > budget);
            if !(too_old || over_budget) {
                continue;
            }
            let reason = if too_old { "max_age" } else { "max_disk_bytes" };
            let bytes = partition.bytes.load(Ordering::Relaxed);
            self.drop_partition(partition, reason);
            total = total.saturating_sub(bytes);
            dropped.push(partition.key.name());
        }
        if policy.max_disk_bytes.is_some_and(|budget| total > budget) {
            tracing::warn!(
                bytes = total,
                budget = policy.max_disk_bytes,
                "the index is over its disk budget but only partitions being written remain"
            );
        }
        dropped
    }

    fn drop_partition(&mut self, partition: &Arc<Partition>, reason: &str) {
        let docs = partition.reader.searcher().num_docs();
        if let Some(open) = self.writers.remove(&partition.key) {
            drop(open.writer);
        }
        self.shared
            .partitions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|kept| kept.key != partition.key);
        let counters = &self.shared.counters;
        counters.dropped_partitions.fetch_add(1, Ordering::Relaxed);
        counters.dropped_events.fetch_add(docs, Ordering::Relaxed);
        tracing::info!(
            partition = %partition.key.name(),
            docs,
            bytes = partition.bytes.load(Ordering::Relaxed),
            reason,
            "index partition dropped by retention"
        );
        let doomed = partition.dir.with_extension("dropped");
        let removed = std::fs::rename(&partition.dir, &doomed)
            .and_then(|()| std::fs::remove_dir_all(&doomed));
        if let Err(error) = removed {
            tracing::warn!(%error, dir = %partition.dir.display(), "cannot delete a dropped partition (retried at the next start)");
        }
    }

    /// Waits for background merges to finish and releases the writer lock. Dropping the writer
    /// also releases the lock but does not wait for merges.
    ///
    /// # Errors
    /// As [`EventWriter::commit`].
    pub fn close(self) -> Result<(), IndexError> {
        for (_, open) in self.writers {
            open.writer
                .wait_merging_threads()
                .map_err(|error| IndexError::from_runtime(&open.partition.dir, error))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_json_round_trips() {
        for payload in [
            CommitPayload {
                last_seq: Seq(42),
                wal_position: Some(1 << 40),
            },
            CommitPayload {
                last_seq: Seq(0),
                wal_position: None,
            },
        ] {
            assert_eq!(
                CommitPayload::from_json(&payload.to_json()).ok(),
                Some(payload)
            );
        }
        assert_eq!(
            CommitPayload {
                last_seq: Seq(3),
                wal_position: None
            }
            .to_json(),
            r#"{"last_seq":3,"wal_position":null}"#
        );
    }
}
