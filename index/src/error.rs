//! The crate's one error type, with variants chosen by what the caller should do.

use std::path::{Path, PathBuf};

use tantivy::TantivyError;
use tantivy::directory::error::OpenReadError;

/// Errors of the index.
///
/// | variant | what the caller does |
/// |---|---|
/// | [`IndexError::BadQuery`] | reports the message to the user (HTTP 400) |
/// | [`IndexError::BadOptions`] | fixes its configuration |
/// | [`IndexError::Corruption`] | stops and tells the operator which file is damaged |
/// | [`IndexError::Unavailable`] | retries later or reports a temporary failure (HTTP 503) |
/// | [`IndexError::Internal`] | reports a bug (HTTP 500) |
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The search request is invalid: query syntax, unknown field, bad cursor.
    #[error("invalid query: {0}")]
    BadQuery(String),
    /// [`crate::IndexOptions`] out of range.
    #[error("invalid index options: {0}")]
    BadOptions(String),
    /// The index on disk cannot be read: garbled or missing files, an unreadable commit payload,
    /// or a schema from another version.
    #[error("index corrupted at {}: {message}", path.display())]
    Corruption { path: PathBuf, message: String },
    /// A resource is missing or busy: an I/O error, the writer lock held by another writer, an
    /// indexing thread that died.
    #[error("index unavailable: {0}")]
    Unavailable(String),
    /// A bug in this crate or in tantivy.
    #[error("internal index error: {0}")]
    Internal(String),
}

impl IndexError {
    /// Classifies an error met while opening an existing index at `dir`: anything that is not
    /// plainly an I/O or locking problem means the files are not what they should be.
    pub(crate) fn from_open(dir: &Path, error: TantivyError) -> IndexError {
        match error {
            TantivyError::LockFailure(..) | TantivyError::Poisoned => {
                IndexError::Unavailable(error.to_string())
            }
            TantivyError::IoError(ref io_error)
                if io_error.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                IndexError::Unavailable(error.to_string())
            }
            TantivyError::OpenReadError(OpenReadError::FileDoesNotExist(ref path)) => {
                IndexError::Corruption {
                    path: dir.join(path),
                    message: format!("a file of the index is missing: {error}"),
                }
            }
            TantivyError::OpenReadError(OpenReadError::IoError {
                ref io_error,
                ref filepath,
            }) => {
                if io_error.kind() == std::io::ErrorKind::PermissionDenied {
                    IndexError::Unavailable(error.to_string())
                } else {
                    IndexError::Corruption {
                        path: dir.join(filepath),
                        message: error.to_string(),
                    }
                }
            }
            other => IndexError::Corruption {
                path: dir.to_path_buf(),
                message: other.to_string(),
            },
        }
    }

    /// Classifies an error of the writer or the searcher on the index at `dir` (which opened
    /// fine).
    pub(crate) fn from_runtime(dir: &Path, error: TantivyError) -> IndexError {
        match error {
            TantivyError::DataCorruption(_) | TantivyError::IncompatibleIndex(_) => {
                IndexError::Corruption {
                    path: dir.to_path_buf(),
                    message: format!("{error:?}"),
                }
            }
            TantivyError::OpenReadError(OpenReadError::FileDoesNotExist(ref path)) => {
                IndexError::Corruption {
                    path: dir.join(path),
                    message: error.to_string(),
                }
            }
            TantivyError::IoError(_)
            | TantivyError::OpenReadError(_)
            | TantivyError::OpenWriteError(_)
            | TantivyError::OpenDirectoryError(_)
            | TantivyError::LockFailure(..)
            | TantivyError::ErrorInThread(_)
            | TantivyError::Poisoned
            | TantivyError::SystemError(_) => IndexError::Unavailable(error.to_string()),
            TantivyError::FieldNotFound(_)
            | TantivyError::AggregationError(_)
            | TantivyError::InvalidArgument(_)
            | TantivyError::SchemaError(_) => IndexError::BadQuery(error.to_string()),
            other => IndexError::Internal(other.to_string()),
        }
    }
}
