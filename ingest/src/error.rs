//! The ingest crate's error type.

use std::path::PathBuf;

/// Errors of the ingest crate, by what the caller should do about them.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The input is malformed or over a limit; answer the sender with this message.
    #[error("bad input: {0}")]
    BadInput(String),
    /// The input is over a size limit (frame, body, decompressed body).
    #[error("too large: {0}")]
    TooLarge(String),
    /// The pipeline cannot take more now; retry later.
    #[error("pipeline is full, retry later")]
    Full,
    /// The appliance is shutting down.
    #[error("shutting down")]
    ShuttingDown,
    /// A socket or file operation failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
