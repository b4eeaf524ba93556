//! The WAL itself: recovery on open, appends, the syncer thread (group commit), retention.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::error::WalError;
use super::faults::FaultInjection;
use super::format::{
    RECORD_HEADER_LEN, RECORD_PAYLOAD_LIMIT, RecordHeader, SEGMENT_HEADER_LEN,
    decode_segment_header, encode_segment_header, parse_segment_file_name, record_crc, seal_record,
    segment_path,
};
use super::payload::{FrameFormat, MIN_PAYLOAD_LEN, encode_payload, payload_len_bound};
use super::reader::{SegmentSpan, WalReader};
use super::stats::{WalStats, WalStatsSnapshot};
use super::{Appended, Position};
use crate::batch::RawBatch;

/// When appended records are fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// A record is durable when [`Wal::wait_durable`] returns: the syncer fsyncs as soon as
    /// anyone waits, and one fsync covers every record written before it started (group commit).
    Always,
    /// Fsyncs are at least this far apart, each covering everything written since the last
    /// one: a waiter after a quiet period gets one at once, under load [`Wal::wait_durable`]
    /// waits up to one interval plus the fsync. Records nobody waits for (TCP) are still
    /// fsynced within an interval. Bounds the fsync rate on slow or wear-sensitive disks.
    Interval(Duration),
    /// Never fsync for appenders: [`Wal::wait_durable`] returns at once and the OS writes the
    /// pages back when it likes. A power loss (not a process crash) loses the unsynced tail,
    /// acknowledged or not. Segments are still fsynced when they roll over, on
    /// [`Wal::sync`] and on close.
    Never,
}

impl Default for FsyncPolicy {
    fn default() -> Self {
        FsyncPolicy::Interval(Duration::from_millis(10))
    }
}

/// WAL settings. [`WalOptions::default`] is safe for production.
#[derive(Debug, Clone)]
pub struct WalOptions {
    /// When appends are fsynced (default: group commit every 10 ms).
    pub fsync: FsyncPolicy,
    /// A segment rolls over before a record would take it past this size (default 128 MiB).
    /// Retention deletes whole segments, so this is also the granularity of disk reclaim.
    pub max_segment_bytes: u64,
    /// The largest record payload accepted by [`Wal::append`] (default 32 MiB); a larger batch
    /// is refused with [`WalError::RecordTooLarge`] and must be split. At most 1 GiB, and a
    /// record must fit in a segment.
    pub max_record_bytes: usize,
    /// Test seam: a full disk, failing fsyncs. `None` in production.
    pub fault_injection: Option<Arc<dyn FaultInjection>>,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            fsync: FsyncPolicy::default(),
            max_segment_bytes: 128 << 20,
            max_record_bytes: 32 << 20,
            fault_injection: None,
        }
    }
}

impl WalOptions {
    /// Checks the options without touching the disk.
    ///
    /// # Errors
    /// [`WalError::InvalidOptions`] naming the inconsistent setting.
    pub fn validate(&self) -> Result<(), WalError> {
        if self.max_record_bytes < MIN_PAYLOAD_LEN
            || self.max_record_bytes as u64 > u64::from(RECORD_PAYLOAD_LIMIT)
        {
            return Err(WalError::InvalidOptions(format!(
                "max_record_bytes must be between {MIN_PAYLOAD_LEN} and {RECORD_PAYLOAD_LIMIT}"
            )));
        }
        let smallest_segment =
            SEGMENT_HEADER_LEN + RECORD_HEADER_LEN as u64 + self.max_record_bytes as u64;
        if self.max_segment_bytes < smallest_segment {
            return Err(WalError::InvalidOptions(format!(
                "max_segment_bytes ({}) must hold the segment header and one record of \
                 max_record_bytes ({smallest_segment} bytes)",
                self.max_segment_bytes
            )));
        }
        if self.fsync == FsyncPolicy::Interval(Duration::ZERO) {
            return Err(WalError::InvalidOptions(
                "the fsync interval must be longer than zero (use `always`)".to_string(),
            ));
        }
        Ok(())
    }
}

/// What opening the WAL found and repaired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Segment files found (after repairs).
    pub segments: usize,
    /// Position of the oldest record still held.
    pub oldest: Position,
    /// Position after the last valid record: where the next append goes.
    pub end: Position,
    /// Records cut from a torn or corrupt tail of the last segment. They were never fsynced
    /// under `always`/`interval` (a crash or power loss interrupted them), so never acknowledged.
    pub truncated_records: u64,
    /// Bytes cut from the tail.
    pub truncated_bytes: u64,
    /// Position ranges with no segment (a segment moved aside by the operator, or a skip with
    /// [`Wal::skip_to`]). Records in them are lost.
    pub gaps: Vec<(Position, Position)>,
}

/// What [`Wal::truncate_before`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Truncated {
    pub segments: usize,
    pub bytes: u64,
}

/// A closed segment: complete, fsynced, never written again.
#[derive(Debug, Clone)]
struct Segment {
    base: u64,
    path: PathBuf,
    file_len: u64,
}

impl Segment {
    fn end(&self) -> u64 {
        self.base + (self.file_len - SEGMENT_HEADER_LEN)
    }
}

/// The segment being appended to, and the closed ones before it.
#[derive(Debug)]
struct Active {
    file: Arc<File>,
    path: PathBuf,
    base: u64,
    /// Bytes of the file that hold the header and complete records.
    file_len: u64,
    /// Records appended since open (for group-commit counts).
    records: u64,
    /// Closed segments, oldest first.
    sealed: Vec<Segment>,
    closed: bool,
}

impl Active {
    fn end(&self) -> u64 {
        self.base + (self.file_len - SEGMENT_HEADER_LEN)
    }

    fn oldest(&self) -> u64 {
        self.sealed
            .first()
            .map_or(self.base, |segment| segment.base)
    }
}

#[derive(Debug, Default)]
struct SyncState {
    /// Every record that ends at or before this position is on disk.
    durable: u64,
    /// `Active::records` when `durable` was captured.
    durable_records: u64,
    /// Someone waits for an fsync up to here (policy `always`, or a forced [`Wal::sync`]).
    requested: u64,
    shutdown: bool,
    failure: Option<String>,
}

#[derive(Debug, Clone, Copy, Default)]
struct DurableSignal {
    position: u64,
    failed: bool,
}

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    options: WalOptions,
    active: Mutex<Active>,
    /// `Active::end()`, readable without the lock.
    written: AtomicU64,
    failed: AtomicBool,
    sync: Mutex<SyncState>,
    wake_syncer: Condvar,
    durable_changed: Condvar,
    durable_signal: watch::Sender<DurableSignal>,
    stats: WalStats,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The write-ahead log. Shared between appenders as `Arc<Wal>`; every method takes `&self`.
///
/// Appends never fsync (except when a segment rolls over), so they can be called from async
/// tasks; durability under the [`FsyncPolicy`] is awaited with [`Wal::wait_durable`] (async) or
/// [`Wal::wait_durable_blocking`].
#[derive(Debug)]
pub struct Wal {
    shared: Arc<Shared>,
    syncer: Option<JoinHandle<()>>,
    recovery: Recovery,
    _lock_file: File,
}

impl Wal {
    /// Opens (or creates) the WAL in `dir`: checks every segment header, cuts a torn or corrupt
    /// tail of the last segment at its last valid record (logged and counted in
    /// [`Wal::recovery`] and the stats), fsyncs it, and starts the syncer thread.
    ///
    /// # Errors
    /// - [`WalError::Corruption`] when a segment header is bad, segments overlap, or a segment
    ///   other than the last is shorter than its header; the message names the file (move it
    ///   aside to open without it);
    /// - [`WalError::Locked`] when another process has the directory open;
    /// - [`WalError::Io`] / [`WalError::DiskFull`] from the filesystem;
    /// - [`WalError::InvalidOptions`].
    pub fn open(dir: impl AsRef<Path>, options: WalOptions) -> Result<Wal, WalError> {
        options.validate()?;
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(|source| WalError::from_io(&dir, source))?;
        let lock_path = dir.join("LOCK");
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| WalError::from_io(&lock_path, source))?;
        match lock_file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(WalError::Locked { path: dir }),
            Err(fs::TryLockError::Error(source)) => {
                return Err(WalError::from_io(&lock_path, source));
            }
        }
        let stats = WalStats::default();
        let (active, recovery) = recover(&dir, &options, &stats)?;
        let end = active.end();
        let (durable_signal, _) = watch::channel(DurableSignal {
            position: end,
            failed: false,
        });
        let shared = Arc::new(Shared {
            dir,
            options,
            written: AtomicU64::new(end),
            active: Mutex::new(active),
            failed: AtomicBool::new(false),
            sync: Mutex::new(SyncState {
                durable: end,
                requested: end,
                ..SyncState::default()
            }),
            wake_syncer: Condvar::new(),
            durable_changed: Condvar::new(),
            durable_signal,
            stats,
        });
        let syncer_shared = Arc::clone(&shared);
        let syncer = std::thread::Builder::new()
            .name("cairn-wal-sync".to_string())
            .spawn(move || run_syncer(&syncer_shared))
            .map_err(|source| WalError::Io {
                path: shared.dir.clone(),
                source,
            })?;
        tracing::info!(
            dir = %shared.dir.display(),
            segments = recovery.segments,
            oldest = recovery.oldest.0,
            end = recovery.end.0,
            policy = ?shared.options.fsync,
            "wal open"
        );
        Ok(Wal {
            shared,
            syncer: Some(syncer),
            recovery,
            _lock_file: lock_file,
        })
    }

    /// What [`Wal::open`] found and repaired.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The options the WAL runs with.
    pub fn options(&self) -> &WalOptions {
        &self.shared.options
    }

    /// Appends one batch as one record (the record's `seq` is `batch.first_seq`). Returns where
    /// the record starts and ends. The record is written (visible to readers, survives a crash
    /// of the process) but not necessarily durable: wait with [`Wal::wait_durable`] for
    /// `appended.end` before acknowledging. Never fsyncs, except when the segment rolls over.
    ///
    /// # Errors
    /// - [`WalError::RecordTooLarge`]: split the batch;
    /// - [`WalError::DiskFull`] / [`WalError::Io`]: nothing of this record is in the WAL, which
    ///   stays consistent; refuse the input and retry later (the WAL recovers by itself when
    ///   space returns);
    /// - [`WalError::Failed`] after a failed fsync, [`WalError::Closed`] after close.
    pub fn append(&self, format: FrameFormat, batch: &RawBatch) -> Result<Appended, WalError> {
        let mut record = Vec::with_capacity(RECORD_HEADER_LEN + payload_len_bound(batch));
        record.resize(RECORD_HEADER_LEN, 0);
        encode_payload(format, batch, &mut record);
        let payload_len = record.len() - RECORD_HEADER_LEN;
        if payload_len > self.shared.options.max_record_bytes {
            return Err(WalError::RecordTooLarge {
                size: payload_len,
                max: self.shared.options.max_record_bytes,
            });
        }
        seal_record(&mut record, batch.first_seq.0);
        self.shared.write_record(&record)
    }

    /// [`Wal::append`], then [`Wal::wait_durable`] for the record: returns once the record is in
    /// the WAL under the policy (the point where ingest may acknowledge).
    ///
    /// # Errors
    /// As [`Wal::append`] and [`Wal::wait_durable`].
    pub async fn append_durable(
        &self,
        format: FrameFormat,
        batch: &RawBatch,
    ) -> Result<Appended, WalError> {
        let appended = self.append(format, batch)?;
        self.wait_durable(appended.end).await?;
        Ok(appended)
    }

    /// Blocking [`Wal::append_durable`] (for threads, not async tasks). Under
    /// [`FsyncPolicy::Always`] it returns after an fsync that covers the record.
    ///
    /// # Errors
    /// As [`Wal::append`] and [`Wal::wait_durable_blocking`].
    pub fn append_durable_blocking(
        &self,
        format: FrameFormat,
        batch: &RawBatch,
    ) -> Result<Appended, WalError> {
        let appended = self.append(format, batch)?;
        self.wait_durable_blocking(appended.end)?;
        Ok(appended)
    }

    /// Waits until every record ending at or before `position` is durable under the policy:
    /// fsynced under `always` (an fsync starts as soon as the previous one is done, shared by
    /// every waiter) and `interval` (likewise, but fsyncs are at least one interval apart); at
    /// once under `never`. A position past the end is treated as the end.
    ///
    /// # Errors
    /// [`WalError::Failed`] when an fsync failed (the records may not be on disk; do not
    /// acknowledge), [`WalError::Closed`].
    pub async fn wait_durable(&self, position: Position) -> Result<(), WalError> {
        let Some(target) = self.shared.durability_target(position)? else {
            return Ok(());
        };
        let mut receiver = self.shared.durable_signal.subscribe();
        self.shared.request_sync(target);
        let signal = match receiver
            .wait_for(|signal| signal.failed || signal.position >= target)
            .await
        {
            Ok(signal) => *signal,
            Err(_closed) => return Err(WalError::Closed),
        };
        if signal.failed {
            return Err(self.shared.failure_error());
        }
        Ok(())
    }

    /// Blocking [`Wal::wait_durable`].
    ///
    /// # Errors
    /// As [`Wal::wait_durable`].
    pub fn wait_durable_blocking(&self, position: Position) -> Result<(), WalError> {
        let Some(target) = self.shared.durability_target(position)? else {
            return Ok(());
        };
        self.shared.wait_synced(target, true)
    }

    /// Fsyncs everything written so far, whatever the policy (under `interval` in the next
    /// allowed slot), and returns the durable end. Blocking. For the indexer before it commits a WAL position, and for shutdown.
    ///
    /// # Errors
    /// [`WalError::Failed`], [`WalError::Closed`].
    pub fn sync(&self) -> Result<Position, WalError> {
        let target = self.shared.written.load(Ordering::Acquire);
        self.shared.wait_synced(target, true)?;
        Ok(Position(target))
    }

    /// Position after the last record written (where the next append goes).
    pub fn end(&self) -> Position {
        Position(self.shared.written.load(Ordering::Acquire))
    }

    /// Position up to which records are known to be fsynced.
    pub fn durable(&self) -> Position {
        Position(lock(&self.shared.sync).durable)
    }

    /// Position of the oldest record held (the base of the oldest segment).
    pub fn oldest(&self) -> Position {
        Position(lock(&self.shared.active).oldest())
    }

    /// Reads every record from `from` (a record boundary: an [`Appended`] or
    /// [`super::WalRecord`] end or start, [`Wal::oldest`], or a position stored in the index) to
    /// the end as it is now. Records appended later are not seen.
    ///
    /// # Errors
    /// [`WalError::PositionUnavailable`] when `from` is before [`Wal::oldest`] or after
    /// [`Wal::end`]. Iterating yields [`WalError::Corruption`] for a damaged record (and stops).
    pub fn read_from(&self, from: Position) -> Result<WalReader, WalError> {
        let active = lock(&self.shared.active);
        let oldest = active.oldest();
        let end = active.end();
        if from.0 < oldest || from.0 > end {
            return Err(WalError::PositionUnavailable {
                requested: from,
                oldest: Position(oldest),
                end: Position(end),
            });
        }
        let current = Segment {
            base: active.base,
            path: active.path.clone(),
            file_len: active.file_len,
        };
        let spans = active
            .sealed
            .iter()
            .chain(std::iter::once(&current))
            .filter(|segment| segment.end() > from.0)
            .map(|segment| SegmentSpan {
                path: segment.path.clone(),
                base: segment.base,
                file_len: segment.file_len,
                start_offset: SEGMENT_HEADER_LEN + from.0.saturating_sub(segment.base),
            })
            .collect();
        Ok(WalReader::new(spans))
    }

    /// Deletes every closed segment whose records all lie before `position`. Pass the smallest
    /// position every consumer has made durable on its side: min(index committed position,
    /// correlation snapshot position). The active segment is never deleted. Readers opened
    /// before may fail on a deleted segment.
    ///
    /// # Errors
    /// [`WalError::Io`] when a file cannot be removed (it and the later ones stay listed).
    pub fn truncate_before(&self, position: Position) -> Result<Truncated, WalError> {
        let doomed: Vec<Segment> = {
            let mut active = lock(&self.shared.active);
            let count = active
                .sealed
                .iter()
                .take_while(|segment| segment.end() <= position.0)
                .count();
            active.sealed.drain(..count).collect()
        };
        let mut truncated = Truncated::default();
        let mut failure = None;
        let mut not_removed = Vec::new();
        for segment in doomed {
            if failure.is_some() {
                not_removed.push(segment);
                continue;
            }
            match fs::remove_file(&segment.path) {
                Ok(()) => {
                    truncated.segments += 1;
                    truncated.bytes += segment.file_len;
                }
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    truncated.segments += 1;
                }
                Err(source) => {
                    failure = Some(WalError::from_io(&segment.path, source));
                    not_removed.push(segment);
                }
            }
        }
        if !not_removed.is_empty() {
            let mut active = lock(&self.shared.active);
            not_removed.append(&mut active.sealed);
            active.sealed = not_removed;
        }
        if truncated.segments > 0 {
            sync_dir(&self.shared.dir)?;
            self.shared
                .stats
                .segments_deleted(truncated.segments as u64);
            tracing::debug!(
                before = position.0,
                segments = truncated.segments,
                bytes = truncated.bytes,
                "wal segments deleted"
            );
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(truncated),
        }
    }

    /// Makes sure no future record gets a position below `position`: when the WAL ends before
    /// it, the active segment is closed and a new one starts at `position` (a logged gap).
    /// Returns whether it skipped. Use at start when the index has committed a position past the
    /// WAL's end (the WAL lost its tail or was wiped), so positions are never reused.
    ///
    /// # Errors
    /// As [`Wal::append`].
    pub fn skip_to(&self, position: Position) -> Result<bool, WalError> {
        let mut active = lock(&self.shared.active);
        let end = active.end();
        if end >= position.0 {
            return Ok(false);
        }
        tracing::warn!(
            from = end,
            to = position.0,
            "wal skips ahead: positions in between hold no records"
        );
        self.shared.roll(&mut active, position.0)?;
        self.shared.written.store(position.0, Ordering::Release);
        self.shared
            .advance_durable(position.0, active.records, None);
        Ok(true)
    }

    /// True once an fsync failed: the WAL takes no more writes until restart (`/readyz` should
    /// say so).
    pub fn is_failed(&self) -> bool {
        self.shared.failed.load(Ordering::Acquire)
    }

    /// The counters.
    pub fn stats(&self) -> WalStatsSnapshot {
        self.shared.stats.snapshot()
    }

    /// Stops the syncer after a last fsync of everything written, and closes the WAL.
    ///
    /// # Errors
    /// [`WalError::Failed`] when that fsync (or an earlier one) failed.
    pub fn close(mut self) -> Result<(), WalError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), WalError> {
        let Some(syncer) = self.syncer.take() else {
            return Ok(());
        };
        {
            let mut state = lock(&self.shared.sync);
            state.shutdown = true;
        }
        self.shared.wake_syncer.notify_all();
        if syncer.join().is_err() {
            tracing::error!("the wal syncer thread panicked");
        }
        lock(&self.shared.active).closed = true;
        if self.shared.failed.load(Ordering::Acquire) {
            return Err(self.shared.failure_error());
        }
        Ok(())
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            tracing::error!(%error, "closing the wal");
        }
    }
}

impl Shared {
    fn write_record(&self, record: &[u8]) -> Result<Appended, WalError> {
        let mut active = lock(&self.active);
        if active.closed {
            return Err(WalError::Closed);
        }
        if self.failed.load(Ordering::Acquire) {
            return Err(self.failure_error());
        }
        let record_len = record.len() as u64;
        if active.file_len > SEGMENT_HEADER_LEN
            && active.file_len + record_len > self.options.max_segment_bytes
        {
            let next_base = active.end();
            self.roll(&mut active, next_base)?;
        }
        let offset = active.file_len;
        if let Err(source) = self.write_gated(&active.file, record, offset) {
            // Cut whatever part of the record reached the file, so the WAL ends at the last
            // complete record whatever happens next.
            if let Err(truncate_error) = active.file.set_len(offset) {
                let message = format!(
                    "cannot cut a failed write back in {}: {truncate_error}",
                    active.path.display()
                );
                self.fail(message);
                return Err(self.failure_error());
            }
            return Err(self.count_error(WalError::from_io(&active.path, source)));
        }
        let start = active.end();
        active.file_len += record_len;
        active.records += 1;
        let end = active.end();
        self.written.store(end, Ordering::Release);
        self.stats.appended(record_len);
        Ok(Appended {
            start: Position(start),
            end: Position(end),
        })
    }

    fn count_error(&self, error: WalError) -> WalError {
        match &error {
            WalError::DiskFull { .. } => self.stats.disk_full(),
            WalError::Io { .. } => self.stats.io_error(),
            _ => {}
        }
        error
    }

    /// Writes `bytes` at `offset`, through the fault-injection seam.
    fn write_gated(&self, file: &File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
        write_gated(self.options.fault_injection.as_deref(), file, bytes, offset)
    }

    /// Closes the active segment (fsynced, whatever the policy: only the last segment may ever
    /// have a torn tail) and starts a new one at `next_base`.
    fn roll(&self, active: &mut Active, next_base: u64) -> Result<(), WalError> {
        let started = Instant::now();
        if let Err(source) = self.sync_file(&active.file) {
            let message = format!(
                "fsync of {} before roll-over failed: {source}",
                active.path.display()
            );
            self.fail(message);
            return Err(self.failure_error());
        }
        let closed_end = active.end();
        self.advance_durable(closed_end, active.records, Some(started.elapsed()));
        let (file, path) = create_segment(
            &self.dir,
            next_base,
            self.options.fault_injection.as_deref(),
        )
        .map_err(|error| self.count_error(error))?;
        let closed = Segment {
            base: active.base,
            path: std::mem::replace(&mut active.path, path),
            file_len: active.file_len,
        };
        active.sealed.push(closed);
        active.file = Arc::new(file);
        active.base = next_base;
        active.file_len = SEGMENT_HEADER_LEN;
        self.stats.segment_created();
        Ok(())
    }

    fn sync_file(&self, file: &File) -> std::io::Result<()> {
        if let Some(faults) = &self.options.fault_injection {
            faults.before_sync()?;
        }
        file.sync_data()
    }

    /// Records that everything up to `position` is on disk and wakes the waiters. `took` is the
    /// fsync's duration when one was done (counted), `None` for bookkeeping without an fsync.
    fn advance_durable(&self, position: u64, records: u64, took: Option<Duration>) {
        {
            let mut state = lock(&self.sync);
            if position > state.durable {
                state.durable = position;
            }
            let newly_durable = records.saturating_sub(state.durable_records);
            state.durable_records = state.durable_records.max(records);
            if let Some(took) = took {
                self.stats.synced(newly_durable, took);
            }
        }
        self.durable_changed.notify_all();
        self.durable_signal.send_modify(|signal| {
            signal.position = signal.position.max(position);
        });
    }

    fn fail(&self, message: String) {
        tracing::error!(%message, "wal stopped taking writes");
        self.failed.store(true, Ordering::Release);
        {
            let mut state = lock(&self.sync);
            if state.failure.is_none() {
                state.failure = Some(message);
            }
        }
        self.durable_changed.notify_all();
        self.wake_syncer.notify_all();
        self.durable_signal
            .send_modify(|signal| signal.failed = true);
    }

    fn failure_error(&self) -> WalError {
        let message = lock(&self.sync)
            .failure
            .clone()
            .unwrap_or_else(|| "unknown failure".to_string());
        WalError::Failed(message)
    }

    /// The position to wait for, or `None` when there is nothing to wait for.
    fn durability_target(&self, position: Position) -> Result<Option<u64>, WalError> {
        if self.failed.load(Ordering::Acquire) {
            return Err(self.failure_error());
        }
        if self.options.fsync == FsyncPolicy::Never {
            return Ok(None);
        }
        let target = position.0.min(self.written.load(Ordering::Acquire));
        if target <= lock(&self.sync).durable {
            return Ok(None);
        }
        Ok(Some(target))
    }

    fn request_sync(&self, target: u64) {
        let mut state = lock(&self.sync);
        if state.requested < target {
            state.requested = target;
            drop(state);
            self.wake_syncer.notify_one();
        }
    }

    /// Blocks until `target` is durable; `force` asks the syncer to fsync now.
    fn wait_synced(&self, target: u64, force: bool) -> Result<(), WalError> {
        let mut state = lock(&self.sync);
        loop {
            if let Some(failure) = &state.failure {
                return Err(WalError::Failed(failure.clone()));
            }
            if state.durable >= target {
                return Ok(());
            }
            if state.shutdown {
                return Err(WalError::Closed);
            }
            if force && state.requested < target {
                state.requested = target;
                self.wake_syncer.notify_one();
            }
            state = self
                .durable_changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// One group commit: fsyncs the active segment, covering everything written so far.
    fn sync_active(&self) {
        let (file, path, end, records) = {
            let active = lock(&self.active);
            (
                Arc::clone(&active.file),
                active.path.clone(),
                active.end(),
                active.records,
            )
        };
        let started = Instant::now();
        match self.sync_file(&file) {
            Ok(()) => self.advance_durable(end, records, Some(started.elapsed())),
            Err(error) => self.fail(format!("fsync of {} failed: {error}", path.display())),
        }
    }
}

/// The syncer thread: one fsync at a time; each covers every record written before it started,
/// so concurrent appenders share it (group commit).
fn run_syncer(shared: &Shared) {
    let interval = match shared.options.fsync {
        FsyncPolicy::Interval(every) => Some(every),
        FsyncPolicy::Always | FsyncPolicy::Never => None,
    };
    let mut last_sync = Instant::now();
    loop {
        let mut last_round = false;
        {
            let mut state = lock(&shared.sync);
            loop {
                if state.failure.is_some() {
                    if state.shutdown {
                        return;
                    }
                    state = shared
                        .wake_syncer
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                    continue;
                }
                let pending = shared.written.load(Ordering::Acquire) > state.durable;
                if state.shutdown {
                    if !pending {
                        return;
                    }
                    last_round = true;
                    break;
                }
                let since = last_sync.elapsed();
                // Under `interval`, fsyncs are at least one interval apart; under the other
                // policies one may start as soon as the previous one is done.
                let due = interval.is_none_or(|every| since >= every);
                let waited_for = state.requested > state.durable;
                if pending && due && (waited_for || interval.is_some()) {
                    break;
                }
                match interval {
                    Some(every) => {
                        let timeout = if pending {
                            every.saturating_sub(since)
                        } else {
                            every
                        };
                        state = shared
                            .wake_syncer
                            .wait_timeout(state, timeout)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0;
                    }
                    None => {
                        state = shared
                            .wake_syncer
                            .wait(state)
                            .unwrap_or_else(PoisonError::into_inner);
                    }
                }
            }
        }
        // Measured from the start of an fsync: under `interval` they start one interval apart
        // (or back to back when an fsync takes longer than the interval).
        last_sync = Instant::now();
        shared.sync_active();
        if last_round {
            return;
        }
    }
}

fn write_gated(
    faults: Option<&dyn FaultInjection>,
    file: &File,
    bytes: &[u8],
    offset: u64,
) -> std::io::Result<()> {
    let allowed = faults
        .map_or(bytes.len(), |faults| faults.writable_bytes(bytes.len()))
        .min(bytes.len());
    write_all_at(file, bytes.get(..allowed).unwrap_or(bytes), offset)?;
    if allowed < bytes.len() {
        return Err(std::io::Error::from(std::io::ErrorKind::StorageFull));
    }
    Ok(())
}

#[cfg(unix)]
fn write_all_at(file: &File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

#[cfg(windows)]
fn write_all_at(file: &File, mut bytes: &[u8], mut offset: u64) -> std::io::Result<()> {
    while !bytes.is_empty() {
        let written = std::os::windows::fs::FileExt::seek_write(file, bytes, offset)?;
        if written == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::WriteZero));
        }
        bytes = bytes.get(written..).unwrap_or_default();
        offset += written as u64;
    }
    Ok(())
}

/// Fsyncs a directory so that file creations and deletions in it are durable.
fn sync_dir(dir: &Path) -> Result<(), WalError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|handle| handle.sync_all())
            .map_err(|source| WalError::from_io(dir, source))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Creates the segment file for `base` with its header, fsynced, and makes its directory entry
/// durable. On failure no file is left behind.
fn create_segment(
    dir: &Path,
    base: u64,
    faults: Option<&dyn FaultInjection>,
) -> Result<(File, PathBuf), WalError> {
    let path = segment_path(dir, base);
    // A leftover of an earlier failed attempt holds no record (at most a header).
    if fs::metadata(&path).is_ok_and(|metadata| metadata.len() <= SEGMENT_HEADER_LEN) {
        fs::remove_file(&path).map_err(|source| WalError::from_io(&path, source))?;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|source| WalError::from_io(&path, source))?;
    let written = write_gated(faults, &file, &encode_segment_header(base), 0).and_then(|()| {
        if let Some(faults) = faults {
            faults.before_sync()?;
        }
        file.sync_data()
    });
    if let Err(source) = written {
        drop(file);
        let _ = fs::remove_file(&path);
        return Err(WalError::from_io(&path, source));
    }
    sync_dir(dir)?;
    Ok((file, path))
}

/// Opens the segments in `dir`, repairs the tail of the last one, and returns the active segment.
fn recover(
    dir: &Path,
    options: &WalOptions,
    stats: &WalStats,
) -> Result<(Active, Recovery), WalError> {
    let mut listed = Vec::new();
    for entry in fs::read_dir(dir).map_err(|source| WalError::from_io(dir, source))? {
        let entry = entry.map_err(|source| WalError::from_io(dir, source))?;
        let name = entry.file_name();
        match name.to_str().and_then(parse_segment_file_name) {
            Some(base) => listed.push((base, entry.path())),
            None => {
                if name != "LOCK" {
                    tracing::debug!(file = ?name, "ignoring a file that is not a wal segment");
                }
            }
        }
    }
    listed.sort_unstable_by_key(|(base, _)| *base);
    let faults = options.fault_injection.as_deref();
    let Some(last_index) = listed.len().checked_sub(1) else {
        let (file, path) = create_segment(dir, 0, faults)?;
        stats.segment_created();
        let active = Active {
            file: Arc::new(file),
            path,
            base: 0,
            file_len: SEGMENT_HEADER_LEN,
            records: 0,
            sealed: Vec::new(),
            closed: false,
        };
        let recovery = Recovery {
            segments: 1,
            oldest: Position(0),
            end: Position(0),
            truncated_records: 0,
            truncated_bytes: 0,
            gaps: Vec::new(),
        };
        return Ok((active, recovery));
    };

    let mut sealed: Vec<Segment> = Vec::new();
    let mut gaps = Vec::new();
    let mut tail = None;
    for (index, (base, path)) in listed.into_iter().enumerate() {
        let is_last = index == last_index;
        let file = OpenOptions::new()
            .read(true)
            .write(is_last)
            .open(&path)
            .map_err(|source| WalError::from_io(&path, source))?;
        let file_len = file
            .metadata()
            .map_err(|source| WalError::from_io(&path, source))?
            .len();
        let file_len = if file_len < SEGMENT_HEADER_LEN && is_last {
            // Torn creation: the crash came between creating the file and syncing its header.
            tracing::warn!(
                file = %path.display(),
                bytes = file_len,
                "wal segment header was torn; rewriting it"
            );
            rewrite_header(&file, &path, base)?;
            SEGMENT_HEADER_LEN
        } else {
            check_header(&file, &path, base, file_len)?;
            file_len
        };
        if let Some(previous) = sealed.last() {
            let previous_end = previous.end();
            if base < previous_end {
                return Err(WalError::Corruption {
                    path,
                    offset: 0,
                    reason: format!(
                        "segment starts at position {base}, inside the previous segment \
                         (which ends at {previous_end})"
                    ),
                });
            }
            if base > previous_end {
                tracing::warn!(
                    from = previous_end,
                    to = base,
                    file = %path.display(),
                    "wal gap: no segment holds these positions (a segment was moved aside?)"
                );
                gaps.push((Position(previous_end), Position(base)));
            }
        }
        if is_last {
            tail = Some((file, path, base, file_len));
        } else {
            sealed.push(Segment {
                base,
                path,
                file_len,
            });
        }
    }
    let Some((file, path, base, file_len)) = tail else {
        return Err(WalError::InvalidOptions(
            "no last segment after listing".to_string(),
        ));
    };
    let scan = scan_tail(&file, &path, file_len)?;
    if scan.valid_len < file_len {
        let cut_bytes = file_len - scan.valid_len;
        tracing::warn!(
            file = %path.display(),
            offset = scan.valid_len,
            records = scan.dropped_records,
            bytes = cut_bytes,
            reason = %scan.reason,
            "wal tail was torn or corrupt; cut at the last valid record \
             (the records cut were never acknowledged)"
        );
        file.set_len(scan.valid_len)
            .map_err(|source| WalError::from_io(&path, source))?;
        stats.recovery_truncated(scan.dropped_records, cut_bytes);
    }
    // Records that survived a process crash may still be only in the page cache.
    file.sync_data()
        .map_err(|source| WalError::from_io(&path, source))?;
    let segments = sealed.len() + 1;
    let active = Active {
        file: Arc::new(file),
        path,
        base,
        file_len: scan.valid_len,
        records: 0,
        sealed,
        closed: false,
    };
    let recovery = Recovery {
        segments,
        oldest: Position(active.oldest()),
        end: Position(active.end()),
        truncated_records: scan.dropped_records,
        truncated_bytes: file_len - scan.valid_len,
        gaps,
    };
    Ok((active, recovery))
}

fn rewrite_header(file: &File, path: &Path, base: u64) -> Result<(), WalError> {
    file.set_len(0)
        .and_then(|()| write_all_at(file, &encode_segment_header(base), 0))
        .and_then(|()| file.sync_data())
        .map_err(|source| WalError::from_io(path, source))
}

fn check_header(file: &File, path: &Path, base: u64, file_len: u64) -> Result<(), WalError> {
    let corruption = |reason: String| WalError::Corruption {
        path: path.to_path_buf(),
        offset: 0,
        reason: format!("{reason}; move the file aside to open the wal without it"),
    };
    if file_len < SEGMENT_HEADER_LEN {
        return Err(corruption(format!(
            "segment is {file_len} bytes, shorter than its header"
        )));
    }
    let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
    let mut reader = file;
    reader
        .seek(SeekFrom::Start(0))
        .and_then(|_| reader.read_exact(&mut header))
        .map_err(|source| WalError::from_io(path, source))?;
    let header_base = decode_segment_header(&header).map_err(corruption)?;
    if header_base != base {
        return Err(corruption(format!(
            "header says the segment starts at {header_base}, its name says {base}"
        )));
    }
    Ok(())
}

/// Result of scanning the last segment.
struct TailScan {
    /// Header plus every valid record.
    valid_len: u64,
    /// Records (or record starts) after the last valid one.
    dropped_records: u64,
    /// Why the scan stopped before the end of the file.
    reason: String,
}

/// Reads the records of the last segment; the first that is incomplete or fails its checks ends
/// the valid part.
fn scan_tail(file: &File, path: &Path, file_len: u64) -> Result<TailScan, WalError> {
    let mut reader = BufReader::with_capacity(1 << 20, file);
    reader
        .seek(SeekFrom::Start(SEGMENT_HEADER_LEN))
        .map_err(|source| WalError::from_io(path, source))?;
    let mut offset = SEGMENT_HEADER_LEN;
    let mut payload = Vec::new();
    let reason = loop {
        match next_record(&mut reader, offset, file_len, &mut payload)
            .map_err(|source| WalError::from_io(path, source))?
        {
            RecordCheck::Valid(header) => offset += header.record_len(),
            RecordCheck::End => {
                return Ok(TailScan {
                    valid_len: offset,
                    dropped_records: 0,
                    reason: String::new(),
                });
            }
            RecordCheck::Invalid(reason) => break reason,
        }
    };
    let dropped_records = count_dropped(file, path, offset, file_len)?;
    Ok(TailScan {
        valid_len: offset,
        dropped_records,
        reason,
    })
}

/// Estimates how many records the bytes from `offset` held: the damaged one (unless the bytes
/// are all zero: a preallocated or never-written tail) plus every valid record that follows it
/// when its length field is still readable.
fn count_dropped(file: &File, path: &Path, offset: u64, file_len: u64) -> Result<u64, WalError> {
    let mut reader = BufReader::with_capacity(1 << 20, file);
    reader
        .seek(SeekFrom::Start(offset))
        .map_err(|source| WalError::from_io(path, source))?;
    let mut rest = Vec::new();
    reader
        .take(file_len - offset)
        .read_to_end(&mut rest)
        .map_err(|source| WalError::from_io(path, source))?;
    if rest.iter().all(|byte| *byte == 0) {
        return Ok(0);
    }
    let mut dropped = 1;
    let mut cursor = rest.as_slice();
    let Some(first_len) = damaged_record_len(cursor) else {
        return Ok(dropped);
    };
    cursor = cursor.get(first_len..).unwrap_or_default();
    let mut payload = Vec::new();
    while !cursor.is_empty() {
        let mut slice_reader = cursor;
        let remaining = cursor.len() as u64;
        match next_record(&mut slice_reader, 0, remaining, &mut payload) {
            Ok(RecordCheck::Valid(header)) => {
                dropped += 1;
                let len = usize::try_from(header.record_len()).unwrap_or(usize::MAX);
                cursor = cursor.get(len..).unwrap_or_default();
            }
            _ => break,
        }
    }
    Ok(dropped)
}

/// The length a damaged record claims, when that length lies within `bytes`.
fn damaged_record_len(bytes: &[u8]) -> Option<usize> {
    let header: &[u8; RECORD_HEADER_LEN] = bytes.get(..RECORD_HEADER_LEN)?.try_into().ok()?;
    let len = usize::try_from(RecordHeader::decode(header).record_len()).ok()?;
    (len <= bytes.len()).then_some(len)
}

/// What [`next_record`] found.
pub(crate) enum RecordCheck {
    Valid(RecordHeader),
    /// Exactly at the end of the readable bytes.
    End,
    Invalid(String),
}

/// Reads and checks the record at `offset` (`limit` = readable end), leaving its payload in
/// `payload`. I/O errors are returned; damage is [`RecordCheck::Invalid`].
pub(crate) fn next_record(
    reader: &mut impl Read,
    offset: u64,
    limit: u64,
    payload: &mut Vec<u8>,
) -> std::io::Result<RecordCheck> {
    let remaining = limit.saturating_sub(offset);
    if remaining == 0 {
        return Ok(RecordCheck::End);
    }
    if remaining < RECORD_HEADER_LEN as u64 {
        return Ok(RecordCheck::Invalid(format!(
            "{remaining} bytes left, fewer than a record header"
        )));
    }
    let mut header_bytes = [0u8; RECORD_HEADER_LEN];
    reader.read_exact(&mut header_bytes)?;
    let header = RecordHeader::decode(&header_bytes);
    if (header.payload_len as usize) < MIN_PAYLOAD_LEN || header.payload_len > RECORD_PAYLOAD_LIMIT
    {
        return Ok(RecordCheck::Invalid(format!(
            "record length {} is out of range",
            header.payload_len
        )));
    }
    if header.record_len() > remaining {
        return Ok(RecordCheck::Invalid(format!(
            "record of {} bytes runs past the end ({remaining} bytes left)",
            header.record_len()
        )));
    }
    payload.clear();
    payload.resize(header.payload_len as usize, 0);
    reader.read_exact(payload)?;
    if record_crc(header.seq, payload) != header.crc {
        return Ok(RecordCheck::Invalid("record checksum mismatch".to_string()));
    }
    Ok(RecordCheck::Valid(header))
}
