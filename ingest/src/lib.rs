//! Cairn's ingest crate: the event model, framing, parsers, listeners and the queues that carry
//! batches into the pipeline.
//!
//! Invariants:
//! - an [`event::Event`] keeps its frame as `Bytes` and points into it with spans; its raw frame is
//!   always valid UTF-8 (lossily converted and flagged when it was not);
//! - parsers never fail and never panic: a frame that does not parse is still an event, flagged
//!   `parse_error`, whose message is the raw text;
//! - every frame that is not turned into an event is counted in [`stats::Stats`] with its reason.
//!
//! The write-ahead log ([`wal`]) keeps batches on disk before they are acknowledged or processed
//! and replays them after a restart; its format and invariants are in its module docs.
//!
//! This crate does not index, match or correlate; `cairn-index` and `cairn-correlate` build on it.

pub mod batch;
pub mod decode;
pub mod error;
pub mod event;
pub mod framing;
#[doc(hidden)]
pub mod fuzzing;
pub mod hash;

pub mod listeners;
pub mod normalise;
pub mod parse;
pub mod queue;
pub mod stats;
pub mod tls;
pub mod wal;

pub use error::IngestError;
pub use event::{
    Event, EventBatch, EventFlags, Facility, Field, FieldValue, Format, FrameMeta, SdElement, Seq,
    Severity, Source, Span, Text, Timestamp,
};
