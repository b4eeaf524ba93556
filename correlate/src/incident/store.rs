//! The incident store: SQLite (`incidents.sqlite`), one writer, pooled readers.
//!
//! # Durability
//!
//! WAL journal mode with `synchronous=FULL`: every commit (one per alert batch, one per
//! acknowledge/resolve) is fsynced before the call returns, so an acknowledgement the API
//! answered 200 to survives a power loss, not only a crash. Incident traffic is small and
//! batched (a burst of alerts is one transaction), so the fsync per commit costs little;
//! `NORMAL` would save it at the price of losing the last commits on power loss, and API
//! transitions cannot be replayed from the event WAL.
//!
//! Write transactions are `BEGIN IMMEDIATE`: they take the write lock before reading, so when
//! the webhook outbox's connection (see `outbox.rs`) holds it they wait (busy timeout) instead
//! of failing with `SQLITE_BUSY` on a stale read snapshot.
//!
//! # Schema
//!
//! `schema_version(version)` holds the applied migration; [`MIGRATIONS`] are applied in order in
//! one transaction each. A file whose version is newer than this build knows is refused as
//! [`IncidentError::Corruption`] (never written to).
//!
//! - `incidents`: one row per incident, its current state, its evidence (a blob of
//!   little-endian `u64` seqs), `last_alert_at` (wall time, drives the quiet period) and
//!   `last_change_seq`. `id` is `AUTOINCREMENT`: ids are never reused. A partial unique index on
//!   `fingerprint WHERE status != 'resolved'` guarantees one active incident per fingerprint.
//! - `incident_groups`: the group values, in group-by order.
//! - `changes`: the change log; `seq` (`AUTOINCREMENT`) is the update sequence; each row holds
//!   the mutable part of the incident's state as of the change (the immutable part, rule, kind,
//!   created and group, is joined from `incidents`).
//!
//! # Compaction
//!
//! [`IncidentStore::compact`] deletes change-log rows older than the policy's
//! `change_log_retention` that are **superseded** (not the latest change of their incident).
//! A client whose cursor is within the retention sees every change exactly once; an older
//! cursor still sees the current state of every incident that changed after it, exactly once,
//! in order (only intermediate states are gone). Incidents themselves are kept. Changes still
//! owed to a webhook target (after its cursor, or with an undelivered outbox row) are kept too;
//! the outbox tables are created here when the store opens (see `outbox.rs`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_ingest::{Seq, Timestamp};
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};

use crate::alert::Alert;
use crate::incident::model::{
    ChangeKind, Incident, IncidentChange, IncidentDetail, IncidentId, IncidentPolicy,
    IncidentStatus, Transition, UpdateSeq, alert_kind_from_name, duration_nanos,
};
use crate::rule::Level;

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = 1;

/// Migration `i` brings the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[r"
CREATE TABLE incidents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint TEXT NOT NULL,
    rule TEXT NOT NULL,
    title TEXT NOT NULL,
    kind TEXT NOT NULL,
    level TEXT NOT NULL,
    status TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    last_alert_at INTEGER NOT NULL,
    alert_count INTEGER NOT NULL,
    event_count INTEGER NOT NULL,
    possibly_incomplete INTEGER NOT NULL,
    evidence BLOB NOT NULL,
    last_change_seq INTEGER NOT NULL
);
CREATE UNIQUE INDEX incidents_active_fingerprint ON incidents(fingerprint)
    WHERE status != 'resolved';
CREATE INDEX incidents_active_quiet ON incidents(last_alert_at) WHERE status != 'resolved';
CREATE INDEX incidents_last_change ON incidents(last_change_seq);
CREATE TABLE incident_groups (
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    position INTEGER NOT NULL,
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (incident_id, position)
) WITHOUT ROWID;
CREATE TABLE changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    change TEXT NOT NULL,
    at INTEGER NOT NULL,
    status TEXT NOT NULL,
    level TEXT NOT NULL,
    title TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    alert_count INTEGER NOT NULL,
    event_count INTEGER NOT NULL,
    possibly_incomplete INTEGER NOT NULL
);
CREATE INDEX changes_status ON changes(status, seq);
CREATE INDEX changes_at ON changes(at);
"];

/// How long a reader waits for a lock before giving up (the writer holds it only to commit).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an incident operation failed, by what the caller should do.
#[derive(Debug, thiserror::Error)]
pub enum IncidentError {
    /// The file is damaged, not a Cairn incident store, or from a newer version. Move it aside.
    #[error("incident store {path} is unusable: {message}")]
    Corruption { path: PathBuf, message: String },
    /// I/O failed, the disk is full, or the service has stopped; retry later.
    #[error("incident store unavailable: {0}")]
    Unavailable(String),
    #[error("no incident {0}")]
    NotFound(IncidentId),
}

impl IncidentError {
    pub(crate) fn from_sqlite(path: &Path, error: rusqlite::Error) -> IncidentError {
        if let rusqlite::Error::SqliteFailure(failure, _) = &error
            && matches!(
                failure.code,
                rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
            )
        {
            return IncidentError::Corruption {
                path: path.to_path_buf(),
                message: error.to_string(),
            };
        }
        IncidentError::Unavailable(format!("{}: {error}", path.display()))
    }
}

/// A page of the change log (or of current states).
#[derive(Debug, Clone, PartialEq)]
pub struct ChangePage {
    pub changes: Vec<IncidentChange>,
    /// The cursor for the next poll.
    pub next: UpdateSeq,
}

/// The writer: the only connection that changes the store. Owned by the incident service's
/// thread.
#[derive(Debug)]
pub struct IncidentStore {
    pub(super) connection: Connection,
    pub(super) path: PathBuf,
    policy: IncidentPolicy,
}

impl IncidentStore {
    /// Opens (or creates) the store at `path` and migrates it to [`SCHEMA_VERSION`].
    ///
    /// # Errors
    /// [`IncidentError::Corruption`] for a damaged file or one from a newer version;
    /// [`IncidentError::Unavailable`] when the file cannot be opened or written.
    pub fn open(path: &Path, policy: IncidentPolicy) -> Result<IncidentStore, IncidentError> {
        let sqlite = |error| IncidentError::from_sqlite(path, error);
        let mut connection = Connection::open(path).map_err(sqlite)?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
            )
            .map_err(sqlite)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(sqlite)?;
        migrate(&mut connection, path)?;
        crate::incident::outbox::create_schema(&connection).map_err(sqlite)?;
        super::checkpoint::create_table(&connection).map_err(sqlite)?;
        Ok(IncidentStore {
            connection,
            path: path.to_path_buf(),
            policy,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn policy(&self) -> &IncidentPolicy {
        &self.policy
    }

    /// A pool of read-only connections to the same file; clones share the pool.
    pub fn reader(&self) -> IncidentReader {
        IncidentReader {
            inner: Arc::new(ReaderInner {
                path: self.path.clone(),
                idle: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Applies a batch of alerts in one transaction and returns the changes it made, in update
    /// sequence order: at most one per incident touched (its state after the batch). Alerts
    /// below the policy's `min_level` are skipped. `now` is the wall time of the batch.
    pub fn apply_alerts(
        &mut self,
        alerts: &[Alert],
        now: Timestamp,
    ) -> Result<Vec<IncidentChange>, IncidentError> {
        self.apply_alerts_and(alerts, now, |_| Ok(()))
    }

    /// [`IncidentStore::apply_alerts`], running `also` in the same transaction before it
    /// commits (the changes and `also`'s writes are committed together or not at all).
    pub(super) fn apply_alerts_and(
        &mut self,
        alerts: &[Alert],
        now: Timestamp,
        also: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<()>,
    ) -> Result<Vec<IncidentChange>, IncidentError> {
        let path = self.path.clone();
        let sqlite = |error| IncidentError::from_sqlite(&path, error);
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite)?;
        let mut touched: Vec<(i64, ChangeKind)> = Vec::new();
        let mut touched_index: HashMap<i64, usize> = HashMap::new();
        for alert in alerts {
            if alert.level < self.policy.min_level {
                continue;
            }
            let (id, kind) =
                apply_alert(&transaction, alert, now, self.policy.max_evidence).map_err(sqlite)?;
            if let std::collections::hash_map::Entry::Vacant(slot) = touched_index.entry(id) {
                slot.insert(touched.len());
                touched.push((id, kind));
            }
        }
        let mut changes = Vec::with_capacity(touched.len());
        for (id, kind) in touched {
            let seq = record_change(&transaction, id, kind, now).map_err(sqlite)?;
            changes.push(seq);
        }
        let changes = changes
            .into_iter()
            .map(|seq| read_change(&transaction, seq))
            .collect::<Result<Vec<_>, _>>()
            .map_err(sqlite)?;
        also(&transaction).map_err(sqlite)?;
        transaction.commit().map_err(sqlite)?;
        Ok(changes)
    }

    /// Acknowledges an incident. A no-op ([`Transition::Unchanged`]) when it is already acknowledged or
    /// resolved (a resolved incident stays resolved).
    ///
    /// # Errors
    /// [`IncidentError::NotFound`] for an unknown id.
    pub fn acknowledge(
        &mut self,
        id: IncidentId,
        now: Timestamp,
    ) -> Result<Transition, IncidentError> {
        self.transition(id, now, |status| {
            (status == IncidentStatus::Open)
                .then_some((IncidentStatus::Acknowledged, ChangeKind::Acknowledged))
        })
    }

    /// Resolves an incident. A no-op ([`Transition::Unchanged`]) when it is already resolved.
    ///
    /// # Errors
    /// [`IncidentError::NotFound`] for an unknown id.
    pub fn resolve(&mut self, id: IncidentId, now: Timestamp) -> Result<Transition, IncidentError> {
        self.transition(id, now, |status| {
            (status != IncidentStatus::Resolved)
                .then_some((IncidentStatus::Resolved, ChangeKind::Resolved))
        })
    }

    fn transition(
        &mut self,
        id: IncidentId,
        now: Timestamp,
        next: impl FnOnce(IncidentStatus) -> Option<(IncidentStatus, ChangeKind)>,
    ) -> Result<Transition, IncidentError> {
        let path = self.path.clone();
        let sqlite = |error| IncidentError::from_sqlite(&path, error);
        let Ok(row_id) = i64::try_from(id.0) else {
            return Err(IncidentError::NotFound(id));
        };
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite)?;
        let found: Option<(String, i64)> = transaction
            .query_row(
                "SELECT status, last_change_seq FROM incidents WHERE id = ?1",
                [row_id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(sqlite)?;
        let Some((status_name, last_change_seq)) = found else {
            return Err(IncidentError::NotFound(id));
        };
        let status = parse_status(&status_name).map_err(sqlite)?;
        let Some((new_status, kind)) = next(status) else {
            let change = read_change(&transaction, last_change_seq).map_err(sqlite)?;
            return Ok(Transition::Unchanged(change.incident));
        };
        transaction
            .execute(
                "UPDATE incidents SET status = ?2, updated = ?3 WHERE id = ?1",
                params![row_id, new_status.name(), now.0],
            )
            .map_err(sqlite)?;
        let seq = record_change(&transaction, row_id, kind, now).map_err(sqlite)?;
        let change = read_change(&transaction, seq).map_err(sqlite)?;
        transaction.commit().map_err(sqlite)?;
        Ok(Transition::Changed(change))
    }

    /// Resolves every open or acknowledged incident whose last alert is at least its rule's
    /// quiet period before `now`, in one transaction; returns the changes.
    pub fn auto_resolve(&mut self, now: Timestamp) -> Result<Vec<IncidentChange>, IncidentError> {
        let path = self.path.clone();
        let sqlite = |error| IncidentError::from_sqlite(&path, error);
        let cutoff = now
            .0
            .saturating_sub(duration_nanos(self.policy.shortest_quiet_period()));
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite)?;
        let candidates: Vec<(i64, String, i64)> = {
            let mut statement = transaction
                .prepare_cached(
                    "SELECT id, rule, last_alert_at FROM incidents
                     WHERE status != 'resolved' AND last_alert_at <= ?1 ORDER BY id",
                )
                .map_err(sqlite)?;
            statement
                .query_map([cutoff], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                .map_err(sqlite)?
                .collect::<Result<_, _>>()
                .map_err(sqlite)?
        };
        let mut changes = Vec::new();
        for (id, rule, last_alert_at) in candidates {
            let quiet = duration_nanos(self.policy.quiet_period_for(&rule));
            if last_alert_at.saturating_add(quiet) > now.0 {
                continue;
            }
            transaction
                .execute(
                    "UPDATE incidents SET status = 'resolved', updated = ?2 WHERE id = ?1",
                    params![id, now.0],
                )
                .map_err(sqlite)?;
            let seq =
                record_change(&transaction, id, ChangeKind::AutoResolved, now).map_err(sqlite)?;
            changes.push(read_change(&transaction, seq).map_err(sqlite)?);
        }
        transaction.commit().map_err(sqlite)?;
        Ok(changes)
    }

    /// Deletes superseded change-log rows older than the retention; returns how many. Changes
    /// still owed to a webhook target are kept (see `outbox.rs`).
    pub fn compact(&mut self, now: Timestamp) -> Result<usize, IncidentError> {
        let cutoff = now
            .0
            .saturating_sub(duration_nanos(self.policy.change_log_retention));
        self.connection
            .execute(
                "DELETE FROM changes WHERE at < ?1
                 AND seq NOT IN (SELECT last_change_seq FROM incidents)
                 AND seq <= (SELECT COALESCE(MIN(seq), 9223372036854775807) FROM webhook_cursors)
                 AND seq NOT IN (SELECT change_seq FROM webhook_deliveries
                                 WHERE status != 'delivered')",
                [cutoff],
            )
            .map_err(|error| IncidentError::from_sqlite(&self.path, error))
    }

    /// Reads through the writer's connection (for the service and tests).
    pub fn get(&self, id: IncidentId) -> Result<Option<IncidentDetail>, IncidentError> {
        read_detail(&self.connection, id)
            .map_err(|error| IncidentError::from_sqlite(&self.path, error))
    }

    /// See [`IncidentReader::changes_since`].
    pub fn changes_since(
        &self,
        since: UpdateSeq,
        status: Option<IncidentStatus>,
        limit: usize,
    ) -> Result<ChangePage, IncidentError> {
        read_changes(&self.connection, since, status, limit)
            .map_err(|error| IncidentError::from_sqlite(&self.path, error))
    }

    /// Checkpoints the WAL into the main file and closes the connection.
    pub fn close(self) -> Result<(), IncidentError> {
        let path = self.path;
        self.connection
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .map_err(|error| IncidentError::from_sqlite(&path, error))?;
        self.connection
            .close()
            .map_err(|(_, error)| IncidentError::from_sqlite(&path, error))
    }
}

fn migrate(connection: &mut Connection, path: &Path) -> Result<(), IncidentError> {
    let sqlite = |error| IncidentError::from_sqlite(path, error);
    connection
        .execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);")
        .map_err(sqlite)?;
    let current: i64 = connection
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |row| row.get(0),
        )
        .map_err(sqlite)?;
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    if current > known || current < 0 {
        return Err(IncidentError::Corruption {
            path: path.to_path_buf(),
            message: format!(
                "schema version {current} is newer than this build's {SCHEMA_VERSION}; \
                 upgrade cairn or move the file aside"
            ),
        });
    }
    for (from, migration) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite)?;
        transaction.execute_batch(migration).map_err(sqlite)?;
        transaction
            .execute("DELETE FROM schema_version", [])
            .map_err(sqlite)?;
        transaction
            .execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                [from as i64 + 1],
            )
            .map_err(sqlite)?;
        transaction.commit().map_err(sqlite)?;
        tracing::info!(path = %path.display(), version = from + 1, "incident store migrated");
    }
    Ok(())
}

/// Opens or updates the active incident of the alert's fingerprint; returns its row id and
/// whether it was opened.
fn apply_alert(
    transaction: &Transaction<'_>,
    alert: &Alert,
    now: Timestamp,
    max_evidence: usize,
) -> rusqlite::Result<(i64, ChangeKind)> {
    let fingerprint = alert.fingerprint();
    let existing: Option<(i64, String, Vec<u8>)> = transaction
        .prepare_cached(
            "SELECT id, level, evidence FROM incidents
             WHERE fingerprint = ?1 AND status != 'resolved'",
        )?
        .query_row([&fingerprint], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()?;
    let event_count = i64::try_from(alert.event_count).unwrap_or(i64::MAX);
    match existing {
        None => {
            let evidence = merge_evidence(&[], &alert.evidence, max_evidence);
            transaction
                .prepare_cached(
                    "INSERT INTO incidents (fingerprint, rule, title, kind, level, status,
                     first_seen, last_seen, created, updated, last_alert_at, alert_count,
                     event_count, possibly_incomplete, evidence, last_change_seq)
                     VALUES (?1, ?2, ?3, ?4, ?5, 'open', ?6, ?7, ?8, ?8, ?8, 1, ?9, ?10, ?11, 0)",
                )?
                .execute(params![
                    fingerprint,
                    &*alert.rule,
                    &*alert.title,
                    alert.kind.name(),
                    alert.level.name(),
                    alert.first_ts.0.min(alert.ts.0),
                    alert.ts.0.max(alert.first_ts.0),
                    now.0,
                    event_count,
                    alert.possibly_incomplete,
                    encode_evidence(&evidence),
                ])?;
            let id = transaction.last_insert_rowid();
            let mut insert_group = transaction.prepare_cached(
                "INSERT INTO incident_groups (incident_id, position, field, value)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (position, (field, value)) in alert.group.iter().enumerate() {
                insert_group.execute(params![id, position as i64, &**field, value])?;
            }
            Ok((id, ChangeKind::Opened))
        }
        Some((id, level_name, evidence_blob)) => {
            let level = Level::parse(&level_name)
                .unwrap_or(alert.level)
                .max(alert.level);
            let evidence = merge_evidence(
                &decode_evidence(&evidence_blob),
                &alert.evidence,
                max_evidence,
            );
            transaction
                .prepare_cached(
                    "UPDATE incidents SET title = ?2, level = ?3,
                     first_seen = MIN(first_seen, ?4), last_seen = MAX(last_seen, ?5),
                     updated = ?6, last_alert_at = ?6, alert_count = alert_count + 1,
                     event_count = MIN(event_count + ?7, 9223372036854775807),
                     possibly_incomplete = possibly_incomplete OR ?8, evidence = ?9
                     WHERE id = ?1",
                )?
                .execute(params![
                    id,
                    &*alert.title,
                    level.name(),
                    alert.first_ts.0.min(alert.ts.0),
                    alert.ts.0,
                    now.0,
                    event_count,
                    alert.possibly_incomplete,
                    encode_evidence(&evidence),
                ])?;
            Ok((id, ChangeKind::Updated))
        }
    }
}

/// Appends a change row holding the incident's current state; returns its update sequence.
fn record_change(
    transaction: &Transaction<'_>,
    id: i64,
    kind: ChangeKind,
    now: Timestamp,
) -> rusqlite::Result<i64> {
    transaction
        .prepare_cached(
            "INSERT INTO changes (incident_id, change, at, status, level, title, first_seen,
             last_seen, updated, alert_count, event_count, possibly_incomplete)
             SELECT id, ?2, ?3, status, level, title, first_seen, last_seen, updated,
             alert_count, event_count, possibly_incomplete FROM incidents WHERE id = ?1",
        )?
        .execute(params![id, kind.name(), now.0])?;
    let seq = transaction.last_insert_rowid();
    transaction
        .prepare_cached("UPDATE incidents SET last_change_seq = ?2 WHERE id = ?1")?
        .execute(params![id, seq])?;
    Ok(seq)
}

/// Sorted, deduplicated, capped: the first `cap / 2` seqs and the newest `cap - cap / 2`.
fn merge_evidence(old: &[Seq], new: &[Seq], cap: usize) -> Vec<Seq> {
    let mut merged: Vec<Seq> = old.iter().chain(new).copied().collect();
    merged.sort_unstable();
    merged.dedup();
    if merged.len() > cap {
        let head = cap / 2;
        let tail = cap - head;
        merged.drain(head..merged.len() - tail);
    }
    merged
}

fn encode_evidence(evidence: &[Seq]) -> Vec<u8> {
    evidence
        .iter()
        .flat_map(|seq| seq.0.to_le_bytes())
        .collect()
}

fn decode_evidence(blob: &[u8]) -> Vec<Seq> {
    blob.chunks_exact(8)
        .map(|chunk| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(chunk);
            Seq(u64::from_le_bytes(bytes))
        })
        .collect()
}

fn invalid(column: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        column,
        rusqlite::types::Type::Text,
        format!("unknown {what}").into(),
    )
}

fn parse_status(name: &str) -> rusqlite::Result<IncidentStatus> {
    IncidentStatus::parse(name).ok_or_else(|| invalid(0, "status"))
}

const CHANGE_COLUMNS: &str = "c.seq, c.change, c.incident_id, i.rule, c.title, c.level, i.kind,
    c.status, c.first_seen, c.last_seen, i.created, c.updated, c.alert_count, c.event_count,
    c.possibly_incomplete";

fn change_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<IncidentChange> {
    let seq: i64 = row.get(0)?;
    let change: String = row.get(1)?;
    let id: i64 = row.get(2)?;
    let level: String = row.get(5)?;
    let kind: String = row.get(6)?;
    let status: String = row.get(7)?;
    Ok(IncidentChange {
        seq: UpdateSeq(seq as u64),
        kind: ChangeKind::parse(&change).ok_or_else(|| invalid(1, "change kind"))?,
        incident: Incident {
            id: IncidentId(id as u64),
            rule: row.get(3)?,
            title: row.get(4)?,
            level: Level::parse(&level).ok_or_else(|| invalid(5, "level"))?,
            kind: alert_kind_from_name(&kind).ok_or_else(|| invalid(6, "alert kind"))?,
            status: IncidentStatus::parse(&status).ok_or_else(|| invalid(7, "status"))?,
            group: Vec::new(),
            first_seen: Timestamp(row.get(8)?),
            last_seen: Timestamp(row.get(9)?),
            created: Timestamp(row.get(10)?),
            updated: Timestamp(row.get(11)?),
            alert_count: row.get::<_, i64>(12)? as u64,
            event_count: row.get::<_, i64>(13)? as u64,
            possibly_incomplete: row.get(14)?,
        },
    })
}

fn read_group(connection: &Connection, id: i64) -> rusqlite::Result<Vec<(String, String)>> {
    connection
        .prepare_cached(
            "SELECT field, value FROM incident_groups WHERE incident_id = ?1 ORDER BY position",
        )?
        .query_map([id], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect()
}

fn fill_groups(connection: &Connection, changes: &mut [IncidentChange]) -> rusqlite::Result<()> {
    let mut groups: HashMap<u64, Vec<(String, String)>> = HashMap::new();
    for change in changes {
        let id = change.incident.id.0;
        if let Some(group) = groups.get(&id) {
            change.incident.group = group.clone();
            continue;
        }
        let group = read_group(connection, id as i64)?;
        change.incident.group = group.clone();
        groups.insert(id, group);
    }
    Ok(())
}

fn read_change(connection: &Connection, seq: i64) -> rusqlite::Result<IncidentChange> {
    let mut change = connection
        .prepare_cached(&format!(
            "SELECT {CHANGE_COLUMNS} FROM changes c JOIN incidents i ON i.id = c.incident_id
             WHERE c.seq = ?1"
        ))?
        .query_row([seq], change_from_row)?;
    fill_groups(connection, std::slice::from_mut(&mut change))?;
    Ok(change)
}

fn to_sql_seq(seq: UpdateSeq) -> i64 {
    i64::try_from(seq.0).unwrap_or(i64::MAX)
}

fn read_changes(
    connection: &Connection,
    since: UpdateSeq,
    status: Option<IncidentStatus>,
    limit: usize,
) -> rusqlite::Result<ChangePage> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut changes: Vec<IncidentChange> = match status {
        None => connection
            .prepare_cached(&format!(
                "SELECT {CHANGE_COLUMNS} FROM changes c JOIN incidents i ON i.id = c.incident_id
                 WHERE c.seq > ?1 ORDER BY c.seq LIMIT ?2"
            ))?
            .query_map(params![to_sql_seq(since), limit], change_from_row)?
            .collect::<Result<_, _>>()?,
        Some(status) => connection
            .prepare_cached(&format!(
                "SELECT {CHANGE_COLUMNS} FROM changes c JOIN incidents i ON i.id = c.incident_id
                 WHERE c.status = ?3 AND c.seq > ?1 ORDER BY c.seq LIMIT ?2"
            ))?
            .query_map(
                params![to_sql_seq(since), limit, status.name()],
                change_from_row,
            )?
            .collect::<Result<_, _>>()?,
    };
    fill_groups(connection, &mut changes)?;
    let next = changes.last().map_or(since, |change| change.seq);
    Ok(ChangePage { changes, next })
}

/// The current state of incidents (their latest change each), ordered by that change.
fn read_current(
    connection: &Connection,
    status: Option<IncidentStatus>,
    limit: usize,
) -> rusqlite::Result<ChangePage> {
    let transaction = connection.unchecked_transaction()?;
    let sql_limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let status_name = status.map(IncidentStatus::name);
    let mut changes: Vec<IncidentChange> = transaction
        .prepare_cached(&format!(
            "SELECT {CHANGE_COLUMNS} FROM incidents i JOIN changes c ON c.seq = i.last_change_seq
             WHERE (?1 IS NULL OR i.status = ?1) ORDER BY i.last_change_seq LIMIT ?2"
        ))?
        .query_map(params![status_name, sql_limit], change_from_row)?
        .collect::<Result<_, _>>()?;
    fill_groups(&transaction, &mut changes)?;
    let next = if changes.len() >= limit {
        changes.last().map_or(UpdateSeq(0), |change| change.seq)
    } else {
        let last: Option<i64> =
            transaction.query_row("SELECT MAX(seq) FROM changes", [], |row| row.get(0))?;
        UpdateSeq(last.unwrap_or(0) as u64)
    };
    transaction.finish()?;
    Ok(ChangePage { changes, next })
}

fn read_detail(
    connection: &Connection,
    id: IncidentId,
) -> rusqlite::Result<Option<IncidentDetail>> {
    let Ok(row_id) = i64::try_from(id.0) else {
        return Ok(None);
    };
    let transaction = connection.unchecked_transaction()?;
    let found: Option<(i64, Vec<u8>)> = transaction
        .prepare_cached("SELECT last_change_seq, evidence FROM incidents WHERE id = ?1")?
        .query_row([row_id], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let Some((last_change_seq, evidence)) = found else {
        return Ok(None);
    };
    let change = read_change(&transaction, last_change_seq)?;
    transaction.finish()?;
    Ok(Some(IncidentDetail {
        incident: change.incident,
        last_change: change.seq,
        evidence: decode_evidence(&evidence),
    }))
}

/// Read-only access for the API: a small pool of read-only connections (WAL lets them read
/// while the writer writes). Cheap to clone. Every call blocks on SQLite: call it from a
/// blocking thread, not an async task.
#[derive(Debug, Clone)]
pub struct IncidentReader {
    inner: Arc<ReaderInner>,
}

#[derive(Debug)]
struct ReaderInner {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

/// Idle read connections kept at most.
const MAX_IDLE_READERS: usize = 4;

impl IncidentReader {
    pub(super) fn with_connection<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, IncidentError> {
        let path = &self.inner.path;
        let sqlite = |error| IncidentError::from_sqlite(path, error);
        let pooled = self
            .inner
            .idle
            .lock()
            .map(|mut idle| idle.pop())
            .unwrap_or(None);
        let connection = match pooled {
            Some(connection) => connection,
            None => {
                let connection = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(sqlite)?;
                connection.busy_timeout(BUSY_TIMEOUT).map_err(sqlite)?;
                connection
            }
        };
        let result = read(&connection).map_err(sqlite);
        if let Ok(mut idle) = self.inner.idle.lock()
            && idle.len() < MAX_IDLE_READERS
        {
            idle.push(connection);
        }
        result
    }

    /// One incident with its evidence; `None` if the id is unknown.
    pub fn get(&self, id: IncidentId) -> Result<Option<IncidentDetail>, IncidentError> {
        self.with_connection(|connection| read_detail(connection, id))
    }

    /// Changes after `since`, in update sequence order, at most `limit`, only those whose state
    /// has `status` when given. `next` is the last returned sequence (`since` when none).
    pub fn changes_since(
        &self,
        since: UpdateSeq,
        status: Option<IncidentStatus>,
        limit: usize,
    ) -> Result<ChangePage, IncidentError> {
        self.with_connection(|connection| read_changes(connection, since, status, limit))
    }

    /// The current state of incidents (one entry each: its latest change), ordered by that
    /// change's sequence, at most `limit`. `next` is a cursor for [`Self::changes_since`] that
    /// misses nothing: the last returned sequence when the page is full, else the newest
    /// sequence of the log at the time of the read.
    pub fn current(
        &self,
        status: Option<IncidentStatus>,
        limit: usize,
    ) -> Result<ChangePage, IncidentError> {
        self.with_connection(|connection| read_current(connection, status, limit))
    }

    /// The newest update sequence (0 when the log is empty).
    pub fn last_seq(&self) -> Result<UpdateSeq, IncidentError> {
        self.with_connection(|connection| {
            let last: Option<i64> =
                connection.query_row("SELECT MAX(seq) FROM changes", [], |row| row.get(0))?;
            Ok(UpdateSeq(last.unwrap_or(0) as u64))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_keeps_the_first_half_and_the_newest() {
        let seqs: Vec<Seq> = (1..=10).map(Seq).collect();
        let kept = merge_evidence(&seqs[..6], &seqs[4..], 4);
        assert_eq!(kept, vec![Seq(1), Seq(2), Seq(9), Seq(10)]);
        let odd = merge_evidence(&[], &seqs, 5);
        assert_eq!(odd, vec![Seq(1), Seq(2), Seq(8), Seq(9), Seq(10)]);
        assert_eq!(
            merge_evidence(&[Seq(3)], &[Seq(3), Seq(1)], 4),
            vec![Seq(1), Seq(3)]
        );
    }

    #[test]
    fn evidence_blob_round_trips_and_ignores_a_torn_tail() {
        let seqs = vec![Seq(1), Seq(u64::MAX), Seq(42)];
        let mut blob = encode_evidence(&seqs);
        assert_eq!(decode_evidence(&blob), seqs);
        blob.push(7);
        assert_eq!(decode_evidence(&blob), seqs);
    }
}
