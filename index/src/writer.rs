//! The single writer: adds event batches and commits them with the WAL position.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use cairn_ingest::{Event, Seq};
use serde::{Deserialize, Serialize};
use tantivy::indexer::UserOperation;
use tantivy::{IndexReader, IndexWriter};

use crate::document::EventDocument;
use crate::error::IndexError;
use crate::schema::EventFields;

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

/// The last committed payload, shared between the writer (which sets it) and the index (which
/// reads it). Touched once per commit, never per event.
pub(crate) type SharedPayload = Arc<Mutex<Option<CommitPayload>>>;

/// The index's only writer (see [`crate::EventIndex::writer`]). Owned by the indexer thread;
/// every method blocks (indexing, fsync on commit).
///
/// Dropping it without [`EventWriter::commit`] discards what was added since the last commit;
/// the WAL replays it on restart.
pub struct EventWriter {
    writer: IndexWriter<EventDocument>,
    reader: IndexReader,
    fields: EventFields,
    last_commit: SharedPayload,
    path: PathBuf,
    uncommitted: u64,
}

impl std::fmt::Debug for EventWriter {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("EventWriter")
            .field("path", &self.path)
            .field("uncommitted", &self.uncommitted)
            .finish_non_exhaustive()
    }
}

impl EventWriter {
    pub(crate) fn new(
        writer: IndexWriter<EventDocument>,
        reader: IndexReader,
        fields: EventFields,
        last_commit: SharedPayload,
        path: PathBuf,
    ) -> EventWriter {
        EventWriter {
            writer,
            reader,
            fields,
            last_commit,
            path,
            uncommitted: 0,
        }
    }

    /// Adds a batch of events without signatures. Returns how many were added (all of them).
    ///
    /// # Errors
    /// [`IndexError::Unavailable`] when an indexing thread died (usually an I/O error such as a
    /// full disk); the writer should then be dropped and reopened.
    pub fn add_batch(&mut self, events: &[Event]) -> Result<u64, IndexError> {
        self.add_batch_with_signatures(events, &[])
    }

    /// Adds a batch of events; `signatures[i]` names the signatures that matched `events[i]`
    /// (indexed as the multi-valued `signature` keyword). `signatures` may be shorter than
    /// `events`; missing entries mean no signature.
    ///
    /// # Errors
    /// As [`EventWriter::add_batch`].
    pub fn add_batch_with_signatures(
        &mut self,
        events: &[Event],
        signatures: &[&[&str]],
    ) -> Result<u64, IndexError> {
        let fields = self.fields;
        let operations = events.iter().enumerate().map(|(position, event)| {
            let event_signatures = signatures.get(position).copied().unwrap_or(&[]);
            UserOperation::Add(EventDocument::new(event, event_signatures, fields))
        });
        self.writer
            .run(operations)
            .map_err(|error| IndexError::from_runtime(&self.path, error))?;
        let added = events.len() as u64;
        self.uncommitted += added;
        Ok(added)
    }

    /// Events added since the last commit.
    pub fn uncommitted(&self) -> u64 {
        self.uncommitted
    }

    /// Makes everything added so far durable together with `payload`, then reloads the searcher
    /// so that [`crate::EventIndex::search`] sees it when this returns.
    ///
    /// # Errors
    /// [`IndexError::Unavailable`] on I/O failure; nothing of this commit is visible then, and the
    /// previous commit (and its payload) stays the durable state.
    pub fn commit(&mut self, payload: &CommitPayload) -> Result<(), IndexError> {
        let mut prepared = self
            .writer
            .prepare_commit()
            .map_err(|error| IndexError::from_runtime(&self.path, error))?;
        prepared.set_payload(&payload.to_json());
        prepared
            .commit()
            .map_err(|error| IndexError::from_runtime(&self.path, error))?;
        self.uncommitted = 0;
        *self
            .last_commit
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(*payload);
        self.reader
            .reload()
            .map_err(|error| IndexError::from_runtime(&self.path, error))
    }

    /// Discards what was added since the last commit.
    ///
    /// # Errors
    /// As [`EventWriter::commit`].
    pub fn rollback(&mut self) -> Result<(), IndexError> {
        self.writer
            .rollback()
            .map_err(|error| IndexError::from_runtime(&self.path, error))?;
        self.uncommitted = 0;
        Ok(())
    }

    /// Waits for background merges to finish and releases the writer lock. Dropping the writer
    /// also releases the lock but does not wait for merges.
    ///
    /// # Errors
    /// As [`EventWriter::commit`].
    pub fn close(self) -> Result<(), IndexError> {
        self.writer
            .wait_merging_threads()
            .map_err(|error| IndexError::from_runtime(&self.path, error))
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
