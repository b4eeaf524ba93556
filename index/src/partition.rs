//! One time partition: a complete tantivy index in its own directory holding the events whose
//! time `ts` falls in `[start, start + hours)` (UTC), plus the index of a data directory written
//! before partitions existed (`legacy`, read-only, any times).
//!
//! Directory names sort by time: `20240501T00-24h` is the day of 2024-05-01 (UTC), `…T06-6h` six
//! hours from 06:00. Opening a partition checks its schema and reads its commit payload, as
//! opening the single index did; nothing is repaired.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use tantivy::directory::MmapDirectory;
use tantivy::{DateTime, Index, IndexReader, ReloadPolicy};

use crate::error::IndexError;
use crate::schema;
use crate::writer::CommitPayload;

const NANOS_PER_SECOND: i64 = 1_000_000_000;
const SECONDS_PER_HOUR: i64 = 3600;

/// Name of the partition that holds a pre-partition index.
pub(crate) const LEGACY_NAME: &str = "legacy";

/// Which events a partition holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum PartitionKey {
    /// Written before time partitions: any event time, never written again.
    Legacy,
    /// `[start, start + hours)`, start in epoch seconds (a multiple of `hours` hours).
    Span { start_secs: i64, hours: u32 },
}

impl PartitionKey {
    /// The partition of the grid of `hours`-hour spans that holds `ts_nanos`.
    pub(crate) fn of(ts_nanos: i64, hours: u32) -> PartitionKey {
        let span = i64::from(hours) * SECONDS_PER_HOUR;
        let start_secs = ts_nanos.div_euclid(NANOS_PER_SECOND).div_euclid(span) * span;
        PartitionKey::Span { start_secs, hours }
    }

    /// Directory name (see the module documentation).
    pub(crate) fn name(self) -> String {
        match self {
            PartitionKey::Legacy => LEGACY_NAME.to_owned(),
            PartitionKey::Span { start_secs, hours } => {
                let start = jiff::Timestamp::from_second(start_secs)
                    .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
                    .to_zoned(jiff::tz::TimeZone::UTC);
                format!("{}-{hours}h", start.strftime("%Y%m%dT%H"))
            }
        }
    }

    /// Reads a directory name back; `None` for anything else.
    pub(crate) fn parse(name: &str) -> Option<PartitionKey> {
        if name == LEGACY_NAME {
            return Some(PartitionKey::Legacy);
        }
        let (start, hours) = name.split_once('-')?;
        let hours: u32 = hours.strip_suffix('h')?.parse().ok().filter(|h| *h > 0)?;
        if start.len() != 11 || start.as_bytes()[8] != b'T' {
            return None;
        }
        let civil = jiff::civil::DateTime::strptime("%Y%m%dT%H", start).ok()?;
        let start_secs = civil
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()?
            .timestamp()
            .as_second();
        if start_secs.rem_euclid(i64::from(hours) * SECONDS_PER_HOUR) != 0 {
            return None;
        }
        let key = PartitionKey::Span { start_secs, hours };
        // Only canonical names: `key.name()` must give the same text back.
        (key.name() == name).then_some(key)
    }

    /// Whether `ts_nanos` belongs here by the key alone (never for the legacy partition).
    pub(crate) fn covers(self, ts_nanos: i64) -> bool {
        match self {
            PartitionKey::Legacy => false,
            PartitionKey::Span { start_secs, hours } => {
                let start = start_secs.saturating_mul(NANOS_PER_SECOND);
                let end =
                    start.saturating_add(i64::from(hours) * SECONDS_PER_HOUR * NANOS_PER_SECOND);
                (start..end).contains(&ts_nanos)
            }
        }
    }

    /// Exclusive end of the span in nanoseconds (`None` for the legacy partition).
    pub(crate) fn end_nanos(self) -> Option<i64> {
        match self {
            PartitionKey::Legacy => None,
            PartitionKey::Span { start_secs, hours } => Some(
                start_secs
                    .saturating_add(i64::from(hours) * SECONDS_PER_HOUR)
                    .saturating_mul(NANOS_PER_SECOND),
            ),
        }
    }
}

/// An open partition: its tantivy index, a reader that reloads on each commit, and what its last
/// commit recorded.
pub(crate) struct Partition {
    pub key: PartitionKey,
    pub index: Index,
    pub reader: IndexReader,
    pub dir: PathBuf,
    /// The payload of the commit found on open.
    pub payload_on_open: Option<CommitPayload>,
    /// Bytes on disk, refreshed after each commit of this partition and each retention check.
    pub bytes: AtomicU64,
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Partition")
            .field("key", &self.key)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// File extensions of tantivy segment files: their presence without `meta.json` means the index
/// lost its metadata, not that the directory is new.
const SEGMENT_FILE_EXTENSIONS: [&str; 7] =
    ["idx", "pos", "term", "store", "fast", "fieldnorm", "del"];

/// Whether `dir` holds tantivy segment files (directly).
pub(crate) fn has_segment_files(dir: &Path) -> Result<bool, IndexError> {
    let entries = std::fs::read_dir(dir).map_err(|error| {
        IndexError::Unavailable(format!("cannot list {}: {error}", dir.display()))
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        let extension = path.extension().and_then(|extension| extension.to_str());
        if extension.is_some_and(|extension| SEGMENT_FILE_EXTENSIONS.contains(&extension)) {
            return Ok(true);
        }
    }
    Ok(false)
}

impl Partition {
    /// Opens the partition in `dir`, creating an empty index when `create` and there is none.
    ///
    /// # Errors
    /// As [`crate::EventIndex::open_or_create`].
    pub(crate) fn open(
        key: PartitionKey,
        dir: &Path,
        create: bool,
        verify_checksums: bool,
    ) -> Result<Partition, IndexError> {
        std::fs::create_dir_all(dir).map_err(|error| {
            IndexError::Unavailable(format!("cannot create {}: {error}", dir.display()))
        })?;
        let directory = MmapDirectory::open(dir).map_err(|error| {
            IndexError::Unavailable(format!("cannot open {}: {error}", dir.display()))
        })?;
        let (expected_schema, _) = schema::build_schema();
        let exists = Index::exists(&directory).map_err(|error| {
            IndexError::from_open(dir, tantivy::TantivyError::OpenReadError(error))
        })?;
        let index = if exists {
            let index =
                Index::open(directory).map_err(|error| IndexError::from_open(dir, error))?;
            if let Some(difference) = schema::schema_difference(&expected_schema, &index.schema()) {
                return Err(IndexError::Corruption {
                    path: dir.join("meta.json"),
                    message: format!("index schema is not this version's schema: {difference}"),
                });
            }
            index
        } else {
            if has_segment_files(dir)? || !create {
                return Err(IndexError::Corruption {
                    path: dir.join("meta.json"),
                    message: "meta.json is missing but segment files are present".to_owned(),
                });
            }
            Index::create(
                directory,
                expected_schema,
                tantivy::IndexSettings::default(),
            )
            .map_err(|error| IndexError::from_open(dir, error))?
        };
        schema::register_tokenizers(&index);
        let metas = index
            .load_metas()
            .map_err(|error| IndexError::from_open(dir, error))?;
        let payload_on_open =
            match metas.payload.as_deref() {
                None => None,
                Some(text) => Some(CommitPayload::from_json(text).map_err(|error| {
                    IndexError::Corruption {
                        path: dir.join("meta.json"),
                        message: format!("commit payload `{text}` is unreadable: {error}"),
                    }
                })?),
            };
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|error| IndexError::from_open(dir, error))?;
        if verify_checksums {
            let damaged = index
                .validate_checksum()
                .map_err(|error| IndexError::from_open(dir, error))?;
            if let Some(first) = damaged.iter().min() {
                return Err(IndexError::Corruption {
                    path: dir.join(first),
                    message: format!("{} file(s) fail their checksum", damaged.len()),
                });
            }
        }
        Ok(Partition {
            key,
            index,
            reader,
            dir: dir.to_path_buf(),
            payload_on_open,
            bytes: AtomicU64::new(directory_bytes(dir)),
        })
    }

    /// Smallest and largest event time (nanoseconds) in the committed documents; `None` when
    /// empty.
    pub(crate) fn ts_range(&self, searcher: &tantivy::Searcher) -> Option<(i64, i64)> {
        let mut range: Option<(i64, i64)> = None;
        for segment in searcher.segment_readers() {
            if segment.num_docs() == 0 {
                continue;
            }
            let Ok(column) = segment.fast_fields().date(schema::TS) else {
                continue;
            };
            let low = DateTime::into_timestamp_nanos(column.min_value());
            let high = DateTime::into_timestamp_nanos(column.max_value());
            range = Some(range.map_or((low, high), |(min, max)| (min.min(low), max.max(high))));
        }
        range
    }

    /// Measures the bytes of the partition's directory again and returns them.
    pub(crate) fn refresh_bytes(&self) -> u64 {
        let bytes = directory_bytes(&self.dir);
        self.bytes.store(bytes, Ordering::Relaxed);
        bytes
    }
}

/// Bytes of the regular files directly in `dir` (0 when it cannot be read).
pub(crate) fn directory_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|entry| entry.metadata().ok())
        .filter(std::fs::Metadata::is_file)
        .map(|metadata| metadata.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_NANOS: i64 = 86_400 * NANOS_PER_SECOND;

    #[test]
    fn keys_align_on_the_utc_grid_and_names_round_trip() {
        // 2024-01-01T13:00:00Z.
        let ts = (1_704_067_200 + 13 * 3600) * NANOS_PER_SECOND;
        let day = PartitionKey::of(ts, 24);
        assert_eq!(day.name(), "20240101T00-24h");
        assert_eq!(PartitionKey::parse("20240101T00-24h"), Some(day));
        assert!(day.covers(ts) && !day.covers(ts + DAY_NANOS));
        assert_eq!(PartitionKey::of(ts, 6).name(), "20240101T12-6h");
        // Before 1970 the grid still holds (floor, not truncation).
        assert_eq!(PartitionKey::of(-1, 24).name(), "19691231T00-24h");
        assert_eq!(PartitionKey::parse(LEGACY_NAME), Some(PartitionKey::Legacy));
        for bad in [
            "",
            "x",
            "20240101T00",
            "20240101T00-0h",
            "20240101T05-24h",
            "2024010100-24h",
        ] {
            assert_eq!(PartitionKey::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn keys_order_by_start() {
        let older = PartitionKey::of(0, 24);
        let newer = PartitionKey::of(DAY_NANOS, 24);
        assert!(older < newer);
        assert_eq!(older.end_nanos(), Some(DAY_NANOS));
    }
}
