//! The WAL's error type, by what the caller should do about it.

use std::path::PathBuf;

use super::Position;

/// Errors of the write-ahead log.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// The disk (or quota) is full. Nothing of the failed append is in the WAL and the WAL is
    /// consistent: refuse the input (HTTP 503 with `Retry-After`, TCP pauses) and retry later.
    #[error("wal disk is full writing {path}: {source}")]
    DiskFull {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Another I/O error. Nothing of the failed append is in the WAL; retry later.
    #[error("wal i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A segment is damaged where damage cannot be a torn write (a bad header, a bad record in a
    /// segment that is not the last one). The message names the file and byte offset; moving the
    /// file aside (e.g. renaming it to `*.seg.corrupt`) lets the WAL open without it, losing the
    /// records it held.
    #[error("wal corruption in {path} at byte {offset}: {reason}")]
    Corruption {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// The batch encodes to more than `max_record_bytes`; split it.
    #[error("wal record of {size} bytes is larger than max_record_bytes ({max})")]
    RecordTooLarge { size: usize, max: usize },
    /// A read asked for a position the WAL does not hold (truncated away, or past the end).
    #[error("wal position {requested} is not available (oldest {oldest}, end {end})")]
    PositionUnavailable {
        requested: Position,
        oldest: Position,
        end: Position,
    },
    /// An fsync failed. Whether the unsynced tail reached the disk is unknown (the kernel may
    /// have dropped the dirty pages), so the WAL takes no more writes: restart to recover the
    /// valid prefix.
    #[error("wal stopped after a failed fsync (restart to recover): {0}")]
    Failed(String),
    /// The directory is in use by another WAL (another process).
    #[error("wal directory {path} is locked by another process")]
    Locked { path: PathBuf },
    /// The options are inconsistent.
    #[error("invalid wal options: {0}")]
    InvalidOptions(String),
    /// The WAL was closed.
    #[error("wal is closed")]
    Closed,
}

impl WalError {
    /// Classifies an I/O error: a full disk or quota becomes [`WalError::DiskFull`].
    pub(crate) fn from_io(path: impl Into<PathBuf>, source: std::io::Error) -> WalError {
        let path = path.into();
        if is_disk_full(&source) {
            WalError::DiskFull { path, source }
        } else {
            WalError::Io { path, source }
        }
    }

    /// True for errors that go away by themselves (disk full, I/O): the caller answers "retry
    /// later" rather than "bad request".
    pub fn is_retryable(&self) -> bool {
        matches!(self, WalError::DiskFull { .. } | WalError::Io { .. })
    }
}

pub(crate) fn is_disk_full(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}
