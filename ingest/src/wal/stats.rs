//! WAL counters: relaxed atomics updated per append / per fsync, read by the API.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Counters of one WAL. Read with [`WalStats::snapshot`].
#[derive(Debug, Default)]
pub struct WalStats {
    appended_records: AtomicU64,
    appended_bytes: AtomicU64,
    fsyncs: AtomicU64,
    fsync_nanos: AtomicU64,
    synced_records: AtomicU64,
    max_group_commit_records: AtomicU64,
    disk_full_refusals: AtomicU64,
    io_errors: AtomicU64,
    segments_created: AtomicU64,
    segments_deleted: AtomicU64,
    recovery_truncated_records: AtomicU64,
    recovery_truncated_bytes: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    if n != 0 {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl WalStats {
    pub(crate) fn appended(&self, bytes: u64) {
        add(&self.appended_records, 1);
        add(&self.appended_bytes, bytes);
    }

    /// One fsync that made `records` more records durable.
    pub(crate) fn synced(&self, records: u64, took: std::time::Duration) {
        add(&self.fsyncs, 1);
        add(
            &self.fsync_nanos,
            u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
        );
        add(&self.synced_records, records);
        self.max_group_commit_records
            .fetch_max(records, Ordering::Relaxed);
    }

    pub(crate) fn disk_full(&self) {
        add(&self.disk_full_refusals, 1);
    }

    pub(crate) fn io_error(&self) {
        add(&self.io_errors, 1);
    }

    pub(crate) fn segment_created(&self) {
        add(&self.segments_created, 1);
    }

    pub(crate) fn segments_deleted(&self, count: u64) {
        add(&self.segments_deleted, count);
    }

    pub(crate) fn recovery_truncated(&self, records: u64, bytes: u64) {
        add(&self.recovery_truncated_records, records);
        add(&self.recovery_truncated_bytes, bytes);
    }

    pub fn snapshot(&self) -> WalStatsSnapshot {
        let fsyncs = get(&self.fsyncs);
        let synced_records = get(&self.synced_records);
        WalStatsSnapshot {
            appended_records: get(&self.appended_records),
            appended_bytes: get(&self.appended_bytes),
            fsyncs,
            fsync_seconds_total: get(&self.fsync_nanos) as f64 / 1e9,
            synced_records,
            mean_group_commit_records: if fsyncs == 0 {
                0.0
            } else {
                synced_records as f64 / fsyncs as f64
            },
            max_group_commit_records: get(&self.max_group_commit_records),
            disk_full_refusals: get(&self.disk_full_refusals),
            io_errors: get(&self.io_errors),
            segments_created: get(&self.segments_created),
            segments_deleted: get(&self.segments_deleted),
            recovery_truncated_records: get(&self.recovery_truncated_records),
            recovery_truncated_bytes: get(&self.recovery_truncated_bytes),
        }
    }
}

/// A point-in-time copy of [`WalStats`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WalStatsSnapshot {
    /// Records (batches) appended since open.
    pub appended_records: u64,
    /// Bytes appended (record headers included).
    pub appended_bytes: u64,
    /// fsyncs done (group commits, segment roll-overs, forced syncs).
    pub fsyncs: u64,
    /// Time spent in fsync.
    pub fsync_seconds_total: f64,
    /// Records made durable by those fsyncs (a record is counted once).
    pub synced_records: u64,
    /// `synced_records / fsyncs`: how many appends one fsync covered on average.
    pub mean_group_commit_records: f64,
    /// The most records one fsync covered.
    pub max_group_commit_records: u64,
    /// Appends refused because the disk was full.
    pub disk_full_refusals: u64,
    /// Appends that failed with another I/O error.
    pub io_errors: u64,
    pub segments_created: u64,
    /// Segments removed by `truncate_before`.
    pub segments_deleted: u64,
    /// Records cut from a torn or corrupt tail when the WAL was opened (never acknowledged).
    pub recovery_truncated_records: u64,
    /// Bytes cut from a torn or corrupt tail when the WAL was opened.
    pub recovery_truncated_bytes: u64,
}
