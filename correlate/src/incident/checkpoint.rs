//! Correlation checkpoints: the correlation engine's snapshot and its WAL position, committed in
//! the same SQLite transaction as the incident changes of every alert up to that position.
//!
//! # Why in the incident store
//!
//! The incident store is the consumer of alerts. After a crash the correlation engine restarts
//! from its latest snapshot and replays the WAL from the snapshot's position: every alert that
//! the replay produces must not be in the store yet, and every alert the snapshot's state has
//! already "used up" must be. Committing *state + position + the incidents of the alerts up to
//! that position* in one transaction makes that true by construction: a crash before the commit
//! loses all three (the previous checkpoint stays, and the replay produces those alerts again),
//! a crash after keeps all three. So live correlation alerts reach the store only through
//! checkpoints ([`IncidentStore::commit_checkpoint`]), never on their own.
//!
//! SQLite's transaction (WAL journal, `synchronous=FULL`) gives the atomic, durable replace that
//! a snapshot file would need temp file + fsync + rename + directory fsync for; the snapshot
//! itself carries its format version and a checksum (see `cairn_correlate::correlation::snapshot`).
//!
//! # Table
//!
//! `correlation_checkpoint(id = 1, wal_position, snapshot, taken_at)`: one row, replaced by each
//! checkpoint. Created with `IF NOT EXISTS` when the store opens (outside the numbered
//! migrations: an older build ignores it, and starts correlation afresh).

use cairn_ingest::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

use crate::alert::Alert;
use crate::incident::model::IncidentChange;
use crate::incident::store::{IncidentError, IncidentReader, IncidentStore};

/// What the correlation stage commits with the alerts it produced since its previous checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelationCheckpoint {
    /// Every WAL record before this position has been correlated (its alerts are in this
    /// checkpoint or an earlier one); none after it has.
    pub wal_position: u64,
    /// The engine's state at `wal_position` (`None` when no engine ran yet: start empty).
    pub snapshot: Option<Vec<u8>>,
}

/// A stored checkpoint, as read at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub checkpoint: CorrelationCheckpoint,
    /// Wall time of the commit.
    pub taken_at: Timestamp,
}

pub(super) fn create_table(connection: &Connection) -> rusqlite::Result<()> {
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS correlation_checkpoint (
             id INTEGER PRIMARY KEY CHECK (id = 1),
             wal_position INTEGER NOT NULL,
             snapshot BLOB,
             taken_at INTEGER NOT NULL
         );",
    )
}

fn read(connection: &Connection) -> rusqlite::Result<Option<StoredCheckpoint>> {
    connection
        .query_row(
            "SELECT wal_position, snapshot, taken_at FROM correlation_checkpoint WHERE id = 1",
            [],
            |row| {
                Ok(StoredCheckpoint {
                    checkpoint: CorrelationCheckpoint {
                        wal_position: row.get::<_, i64>(0)? as u64,
                        snapshot: row.get(1)?,
                    },
                    taken_at: Timestamp(row.get(2)?),
                })
            },
        )
        .optional()
}

impl IncidentStore {
    /// Applies `alerts` (as [`IncidentStore::apply_alerts`]) and replaces the correlation
    /// checkpoint, in one transaction; returns the incident changes.
    ///
    /// # Errors
    /// As [`IncidentStore::apply_alerts`]; nothing is written then.
    pub fn commit_checkpoint(
        &mut self,
        alerts: &[Alert],
        checkpoint: &CorrelationCheckpoint,
        now: Timestamp,
    ) -> Result<Vec<IncidentChange>, IncidentError> {
        let position = i64::try_from(checkpoint.wal_position).unwrap_or(i64::MAX);
        self.apply_alerts_and(alerts, now, |transaction| {
            transaction
                .prepare_cached(
                    "INSERT OR REPLACE INTO correlation_checkpoint
                     (id, wal_position, snapshot, taken_at) VALUES (1, ?1, ?2, ?3)",
                )?
                .execute(params![position, checkpoint.snapshot, now.0])?;
            Ok(())
        })
    }

    /// The latest correlation checkpoint, if any.
    ///
    /// # Errors
    /// [`IncidentError::Unavailable`] when the store cannot be read.
    pub fn correlation_checkpoint(&self) -> Result<Option<StoredCheckpoint>, IncidentError> {
        read(&self.connection).map_err(|error| IncidentError::from_sqlite(&self.path, error))
    }
}

impl IncidentReader {
    /// The latest correlation checkpoint, if any (read at start-up, before correlation runs).
    ///
    /// # Errors
    /// [`IncidentError::Unavailable`] when the store cannot be read.
    pub fn correlation_checkpoint(&self) -> Result<Option<StoredCheckpoint>, IncidentError> {
        self.with_connection(read)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use cairn_ingest::Seq;

    use super::*;
    use crate::alert::AlertKind;
    use crate::incident::model::IncidentPolicy;
    use crate::rule::Level;

    fn alert(seq: u64) -> Alert {
        Alert {
            rule: Arc::from("burst"),
            title: Arc::from("burst"),
            level: Level::High,
            kind: AlertKind::EventCount,
            ts: Timestamp(seq as i64),
            first_ts: Timestamp(0),
            group: vec![(Arc::from("src_ip"), "10.0.0.1".to_owned())],
            event_count: 5,
            evidence: vec![Seq(seq)],
            possibly_incomplete: false,
        }
    }

    #[test]
    fn alerts_and_checkpoint_commit_together_and_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("incidents.sqlite");
        let mut store = IncidentStore::open(&path, IncidentPolicy::default()).expect("open");
        assert_eq!(store.correlation_checkpoint().expect("read"), None);
        let first = CorrelationCheckpoint {
            wal_position: 4096,
            snapshot: Some(vec![1, 2, 3]),
        };
        let changes = store
            .commit_checkpoint(&[alert(1)], &first, Timestamp(10))
            .expect("commit");
        assert_eq!(changes.len(), 1);
        let second = CorrelationCheckpoint {
            wal_position: 8192,
            snapshot: None,
        };
        store
            .commit_checkpoint(&[alert(2)], &second, Timestamp(20))
            .expect("commit");
        let reader = store.reader();
        store.close().expect("close");
        let stored = reader
            .correlation_checkpoint()
            .expect("read")
            .expect("stored");
        assert_eq!(stored.checkpoint, second);
        assert_eq!(stored.taken_at, Timestamp(20));
        let store = IncidentStore::open(&path, IncidentPolicy::default()).expect("reopen");
        assert_eq!(
            store
                .correlation_checkpoint()
                .expect("read")
                .map(|s| s.checkpoint),
            Some(second)
        );
        let page = store
            .changes_since(crate::incident::UpdateSeq(0), None, 10)
            .expect("changes");
        let last = page.changes.last().expect("a change");
        assert_eq!(last.incident.alert_count, 2);
        assert_eq!(last.incident.event_count, 10);
    }

    #[test]
    fn a_failed_commit_writes_neither_the_alerts_nor_the_checkpoint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("incidents.sqlite");
        let mut store = IncidentStore::open(&path, IncidentPolicy::default()).expect("open");
        // Make the checkpoint insert fail inside the transaction (a trigger refuses it).
        store
            .connection
            .execute_batch(
                "CREATE TRIGGER refuse BEFORE INSERT ON correlation_checkpoint
                 BEGIN SELECT RAISE(ABORT, 'refused'); END;",
            )
            .expect("trigger");
        let checkpoint = CorrelationCheckpoint {
            wal_position: 1,
            snapshot: None,
        };
        assert!(
            store
                .commit_checkpoint(&[alert(1)], &checkpoint, Timestamp(1))
                .is_err()
        );
        assert_eq!(store.correlation_checkpoint().expect("read"), None);
        let page = store
            .changes_since(crate::incident::UpdateSeq(0), None, 10)
            .expect("changes");
        assert!(page.changes.is_empty(), "{page:?}");
    }
}
