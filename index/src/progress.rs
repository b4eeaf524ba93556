//! `progress.json`: how far the whole partitioned index got, written after every partition with
//! changes has committed.
//!
//! # Why both a file and per-partition payloads
//! A commit touches several tantivy indexes, and no two of them commit atomically together. Each
//! partition's commit carries the payload `{last_seq, wal_position}` of the round, and once all
//! changed partitions have committed, the same payload is written here (write to a temporary
//! file, fsync, rename over, fsync the directory: the file is always the old or the new payload).
//! So after a crash:
//! - every partition holds exactly the WAL records before `max(its payload, progress)`: records
//!   before `progress` went to every partition they belong to in committed rounds, and a
//!   partition that committed a round the file never recorded says so in its own payload;
//! - replay starts at `progress` and each partition skips the records it already holds
//!   (`record end <= its position`). Exactly once, without any partition being ahead or behind
//!   unnoticed.
//! - before the first `progress.json` (a crash in the first commit round), a partition without a
//!   payload may miss events of any record, so replay starts at the WAL's oldest record.

use std::io::Write as _;
use std::path::Path;

use crate::error::IndexError;
use crate::writer::CommitPayload;

/// The file name in the index directory.
pub(crate) const PROGRESS_FILE: &str = "progress.json";

/// Reads `progress.json` in `dir`; `None` when there is none.
///
/// # Errors
/// [`IndexError::Corruption`] when it exists but cannot be read as a payload.
pub(crate) fn read(dir: &Path) -> Result<Option<CommitPayload>, IndexError> {
    let path = dir.join(PROGRESS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(IndexError::Unavailable(format!(
                "cannot read {}: {error}",
                path.display()
            )));
        }
    };
    CommitPayload::from_json(&text)
        .map(Some)
        .map_err(|error| IndexError::Corruption {
            path,
            message: format!("unreadable progress `{text}`: {error}"),
        })
}

/// Replaces `progress.json` in `dir` atomically and durably.
///
/// # Errors
/// [`IndexError::Unavailable`] on any I/O error; the previous file is then intact.
pub(crate) fn write(dir: &Path, payload: &CommitPayload) -> Result<(), IndexError> {
    let path = dir.join(PROGRESS_FILE);
    let temporary = dir.join(format!("{PROGRESS_FILE}.tmp"));
    let io_error = |error: std::io::Error| {
        IndexError::Unavailable(format!("cannot write {}: {error}", path.display()))
    };
    let mut file = std::fs::File::create(&temporary).map_err(io_error)?;
    file.write_all(payload.to_json().as_bytes())
        .map_err(io_error)?;
    file.sync_all().map_err(io_error)?;
    drop(file);
    std::fs::rename(&temporary, &path).map_err(io_error)?;
    std::fs::File::open(dir)
        .and_then(|directory| directory.sync_all())
        .map_err(io_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_ingest::Seq;

    #[test]
    fn written_progress_reads_back_and_garbage_is_corruption() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(read(dir.path()).ok().flatten(), None);
        let payload = CommitPayload {
            last_seq: Seq(9),
            wal_position: Some(123),
        };
        write(dir.path(), &payload).expect("write");
        assert_eq!(read(dir.path()).ok().flatten(), Some(payload));
        std::fs::write(dir.path().join(PROGRESS_FILE), "{").expect("garble");
        assert!(matches!(
            read(dir.path()),
            Err(IndexError::Corruption { .. })
        ));
    }
}
