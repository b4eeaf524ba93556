//! The webhook outbox: which incident changes are owed to which webhook target, durably.
//!
//! The change log (`changes`, see `store.rs`) already is an ordered, durable record of every
//! incident change. The outbox adds, in the same `incidents.sqlite`:
//!
//! - `webhook_cursors(target, seq)`: per target, the last update sequence the target has
//!   *considered*: every change up to `seq` either has a row in `webhook_deliveries` or did not
//!   match the target's filters. A target seen for the first time starts at the end of the log
//!   (it is not flooded with history).
//! - `webhook_deliveries`: one row per (target, change) owed: `pending` (with `attempts`,
//!   `next_attempt_at`, `last_status`, `last_error`), `delivered` (with `delivered_at`) or
//!   `dead` (gave up after the target's `max_attempts`, or a permanent refusal; an operator may
//!   put dead rows back to pending with [`Outbox::retry_dead`]). `UNIQUE(target, change_seq)`
//!   makes enqueueing idempotent.
//!
//! # Invariants
//!
//! - [`Outbox::enqueue`] inserts the rows of a page of changes **and** moves the cursor in one
//!   transaction: a crash leaves either both or neither, so no change is skipped or owed twice.
//! - A delivery is marked `delivered` only after the receiver answered 2xx, in its own
//!   transaction. A crash between the answer and the mark resends it after the restart: delivery
//!   is at least once on the wire, exactly once when the process stops gracefully. The row id is
//!   the idempotency key receivers dedupe on.
//! - Compaction of the change log ([`crate::incident::IncidentStore::compact`]) keeps every change
//!   after the smallest cursor and every change with a row that is not `delivered`, so nothing
//!   still owed to a target is compacted away. Cursors of targets no longer configured are
//!   dropped at start ([`Outbox::retain_targets`]) so they do not hold compaction back forever.
//! - Ordering is the caller's: the dispatcher sends a target's oldest pending row
//!   ([`Outbox::next_pending`], by update sequence) before any later one.
//!
//! The outbox has its own connection (`synchronous = NORMAL`: a process crash loses nothing, a
//! power loss may forget the last marks, which only resends). Its transactions are tiny, so the
//! incident thread's writer rarely waits on them. Every call blocks: call from a blocking thread.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use cairn_ingest::Timestamp;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::incident::model::{IncidentChange, IncidentId, UpdateSeq};
use crate::incident::store::IncidentError;

/// The outbox tables; created if missing when the store (or the outbox) opens the file.
const SCHEMA: &str = r"
CREATE TABLE IF NOT EXISTS webhook_cursors (
    target TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    change_seq INTEGER NOT NULL,
    incident_id INTEGER NOT NULL,
    change TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    last_attempt_at INTEGER,
    delivered_at INTEGER,
    last_status INTEGER,
    last_error TEXT,
    UNIQUE (target, change_seq)
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_open
    ON webhook_deliveries(target, status, change_seq);
CREATE INDEX IF NOT EXISTS webhook_deliveries_incident ON webhook_deliveries(incident_id);
";

/// Creates the outbox tables if they do not exist (idempotent).
pub(crate) fn create_schema(connection: &Connection) -> rusqlite::Result<()> {
    connection.execute_batch(SCHEMA)
}

/// How long the outbox connection waits for the incident writer's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest `last_error` kept, bytes.
const MAX_ERROR_BYTES: usize = 512;

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Owed: not yet answered 2xx; retried from `next_attempt_at`.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up (attempts exhausted or refused for good); [`Outbox::retry_dead`] revives it.
    Dead,
}

impl DeliveryStatus {
    pub fn name(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Dead => "dead",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryStatus> {
        Some(match text {
            "pending" => DeliveryStatus::Pending,
            "delivered" => DeliveryStatus::Delivered,
            "dead" => DeliveryStatus::Dead,
            _ => return None,
        })
    }
}

/// One outbox row.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Stable across attempts and restarts: the idempotency key (`X-Cairn-Delivery`).
    pub id: u64,
    pub target: String,
    pub change_seq: UpdateSeq,
    pub incident: IncidentId,
    /// The change kind's name (`opened`, `updated`, …).
    pub change: String,
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// Wall time of the next attempt (pending rows).
    pub next_attempt_at: Timestamp,
    pub created_at: Timestamp,
    pub last_attempt_at: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
    /// HTTP status of the last attempt, if one was answered.
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
}

/// A target's figures, from the outbox.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetSummary {
    /// The last update sequence considered (`None` before the target first ran).
    pub cursor: Option<UpdateSeq>,
    pub pending: u64,
    pub delivered: u64,
    pub dead: u64,
    /// The last error of any attempt, with its wall time.
    pub last_error: Option<(Timestamp, String)>,
    /// Wall time of the last 2xx.
    pub last_success: Option<Timestamp>,
}

/// The outbox: its own connection to `incidents.sqlite`. Share it as `Arc<Outbox>`.
#[derive(Debug)]
pub struct Outbox {
    connection: Mutex<Connection>,
    path: PathBuf,
}

const DELIVERY_COLUMNS: &str = "id, target, change_seq, incident_id, change, status, attempts,
    next_attempt_at, created_at, last_attempt_at, delivered_at, last_status, last_error";

fn delivery_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Delivery> {
    let status: String = row.get(5)?;
    let last_status: Option<i64> = row.get(11)?;
    Ok(Delivery {
        id: row.get::<_, i64>(0)? as u64,
        target: row.get(1)?,
        change_seq: UpdateSeq(row.get::<_, i64>(2)? as u64),
        incident: IncidentId(row.get::<_, i64>(3)? as u64),
        change: row.get(4)?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                5,
                rusqlite::types::Type::Text,
                "unknown delivery status".into(),
            )
        })?,
        attempts: u32::try_from(row.get::<_, i64>(6)?).unwrap_or(u32::MAX),
        next_attempt_at: Timestamp(row.get(7)?),
        created_at: Timestamp(row.get(8)?),
        last_attempt_at: row.get::<_, Option<i64>>(9)?.map(Timestamp),
        delivered_at: row.get::<_, Option<i64>>(10)?.map(Timestamp),
        last_status: last_status.and_then(|code| u16::try_from(code).ok()),
        last_error: row.get(12)?,
    })
}

fn sql_seq(seq: UpdateSeq) -> i64 {
    i64::try_from(seq.0).unwrap_or(i64::MAX)
}

fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Cuts an error message to [`MAX_ERROR_BYTES`] on a character boundary.
fn clip(message: &str) -> &str {
    if message.len() <= MAX_ERROR_BYTES {
        return message;
    }
    let mut end = MAX_ERROR_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

impl Outbox {
    /// Opens the outbox in the incident store's file (creating its tables if needed).
    ///
    /// # Errors
    /// [`IncidentError::Corruption`] for a damaged file; [`IncidentError::Unavailable`] when it
    /// cannot be opened.
    pub fn open(path: &Path) -> Result<Outbox, IncidentError> {
        let sqlite = |error| IncidentError::from_sqlite(path, error);
        let connection = Connection::open(path).map_err(sqlite)?;
        connection
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
            .map_err(sqlite)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(sqlite)?;
        create_schema(&connection).map_err(sqlite)?;
        Ok(Outbox {
            connection: Mutex::new(connection),
            path: path.to_path_buf(),
        })
    }

    fn with<T>(
        &self,
        call: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, IncidentError> {
        let mut connection = self
            .connection
            .lock()
            .map_err(|_| IncidentError::Unavailable("the outbox lock is poisoned".to_string()))?;
        call(&mut connection).map_err(|error| IncidentError::from_sqlite(&self.path, error))
    }

    /// Runs `call` in a `BEGIN IMMEDIATE` transaction (the write lock first, so a concurrent
    /// writer makes it wait, never fail on a stale snapshot) and commits.
    fn write<T>(
        &self,
        call: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, IncidentError> {
        self.with(|connection| {
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let result = call(&transaction)?;
            transaction.commit()?;
            Ok(result)
        })
    }

    /// The target's cursor; a target seen for the first time starts at `start` (store it).
    pub fn cursor_or_start(
        &self,
        target: &str,
        start: UpdateSeq,
    ) -> Result<UpdateSeq, IncidentError> {
        self.write(|transaction| {
            transaction
                .prepare_cached(
                    "INSERT OR IGNORE INTO webhook_cursors (target, seq) VALUES (?1, ?2)",
                )?
                .execute(params![target, sql_seq(start)])?;
            let seq: i64 = transaction
                .prepare_cached("SELECT seq FROM webhook_cursors WHERE target = ?1")?
                .query_row([target], |row| row.get(0))?;
            Ok(UpdateSeq(seq as u64))
        })
    }

    /// Drops the cursors of targets not in `targets` (their delivery rows stay, as history);
    /// returns how many. Call at start with the configured targets.
    pub fn retain_targets(&self, targets: &[&str]) -> Result<usize, IncidentError> {
        self.write(|transaction| {
            let known: Vec<String> = transaction
                .prepare("SELECT target FROM webhook_cursors")?
                .query_map([], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            let mut removed = 0;
            for target in known {
                if !targets.contains(&target.as_str()) {
                    removed += transaction
                        .execute("DELETE FROM webhook_cursors WHERE target = ?1", [&target])?;
                }
            }
            Ok(removed)
        })
    }

    /// Records that `target` owes `owed` (changes that matched its filters, in update sequence
    /// order) and has considered everything up to `cursor`, in one transaction. Returns the rows
    /// inserted (a change already owed is not inserted again).
    pub fn enqueue(
        &self,
        target: &str,
        owed: &[&IncidentChange],
        cursor: UpdateSeq,
        now: Timestamp,
    ) -> Result<usize, IncidentError> {
        self.write(|transaction| {
            let mut inserted = 0;
            {
                let mut insert = transaction.prepare_cached(
                    "INSERT OR IGNORE INTO webhook_deliveries (target, change_seq, incident_id,
                     change, status, attempts, next_attempt_at, created_at)
                     VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5)",
                )?;
                for change in owed {
                    inserted += insert.execute(params![
                        target,
                        sql_seq(change.seq),
                        i64::try_from(change.incident.id.0).unwrap_or(i64::MAX),
                        change.kind.name(),
                        now.0,
                    ])?;
                }
            }
            transaction
                .prepare_cached(
                    "INSERT INTO webhook_cursors (target, seq) VALUES (?1, ?2)
                     ON CONFLICT(target) DO UPDATE SET seq = MAX(seq, excluded.seq)",
                )?
                .execute(params![target, sql_seq(cursor)])?;
            Ok(inserted)
        })
    }

    /// The target's oldest pending delivery (lowest update sequence), due or not.
    pub fn next_pending(&self, target: &str) -> Result<Option<Delivery>, IncidentError> {
        self.with(|connection| {
            connection
                .prepare_cached(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
                     WHERE target = ?1 AND status = 'pending' ORDER BY change_seq LIMIT 1"
                ))?
                .query_row([target], delivery_from_row)
                .optional()
        })
    }

    /// Marks a delivery delivered (the receiver answered `status`, a 2xx).
    pub fn record_success(
        &self,
        id: u64,
        status: u16,
        now: Timestamp,
    ) -> Result<(), IncidentError> {
        self.write(|transaction| {
            transaction
                .prepare_cached(
                    "UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1,
                     last_attempt_at = ?2, delivered_at = ?2, last_status = ?3, last_error = NULL
                     WHERE id = ?1",
                )?
                .execute(params![
                    i64::try_from(id).unwrap_or(i64::MAX),
                    now.0,
                    status
                ])?;
            Ok(())
        })
    }

    /// Records a failed attempt: retried at `retry_at`, or `dead` when `retry_at` is `None`.
    pub fn record_failure(
        &self,
        id: u64,
        status: Option<u16>,
        error: &str,
        retry_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(), IncidentError> {
        let (new_status, next) = match retry_at {
            Some(at) => (DeliveryStatus::Pending, at),
            None => (DeliveryStatus::Dead, now),
        };
        self.write(|transaction| {
            transaction
                .prepare_cached(
                    "UPDATE webhook_deliveries SET status = ?2, attempts = attempts + 1,
                     next_attempt_at = ?3, last_attempt_at = ?4, last_status = ?5,
                     last_error = ?6 WHERE id = ?1",
                )?
                .execute(params![
                    i64::try_from(id).unwrap_or(i64::MAX),
                    new_status.name(),
                    next.0,
                    now.0,
                    status,
                    clip(error),
                ])?;
            Ok(())
        })
    }

    /// Puts the target's dead deliveries back to pending, due now, with a fresh attempt count;
    /// returns how many.
    pub fn retry_dead(&self, target: &str, now: Timestamp) -> Result<usize, IncidentError> {
        self.write(|transaction| {
            transaction
                .prepare_cached(
                    "UPDATE webhook_deliveries SET status = 'pending', attempts = 0,
                     next_attempt_at = ?2 WHERE target = ?1 AND status = 'dead'",
                )?
                .execute(params![target, now.0])
        })
    }

    /// The target's counts, cursor, last error and last success.
    pub fn summary(&self, target: &str) -> Result<TargetSummary, IncidentError> {
        self.with(|connection| {
            let transaction = connection.transaction()?;
            let mut summary = TargetSummary {
                cursor: transaction
                    .prepare_cached("SELECT seq FROM webhook_cursors WHERE target = ?1")?
                    .query_row([target], |row| row.get::<_, i64>(0))
                    .optional()?
                    .map(|seq| UpdateSeq(seq as u64)),
                ..TargetSummary::default()
            };
            {
                let mut counts = transaction.prepare_cached(
                    "SELECT status, COUNT(*) FROM webhook_deliveries WHERE target = ?1
                     GROUP BY status",
                )?;
                let rows = counts.query_map([target], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
                })?;
                for row in rows {
                    let (status, count) = row?;
                    let count = count as u64;
                    match DeliveryStatus::parse(&status) {
                        Some(DeliveryStatus::Pending) => summary.pending = count,
                        Some(DeliveryStatus::Delivered) => summary.delivered = count,
                        Some(DeliveryStatus::Dead) => summary.dead = count,
                        None => {}
                    }
                }
            }
            summary.last_error = transaction
                .prepare_cached(
                    "SELECT last_attempt_at, last_error FROM webhook_deliveries
                     WHERE target = ?1 AND last_error IS NOT NULL
                     ORDER BY last_attempt_at DESC LIMIT 1",
                )?
                .query_row([target], |row| {
                    Ok((Timestamp(row.get(0)?), row.get::<_, String>(1)?))
                })
                .optional()?;
            summary.last_success = transaction
                .prepare_cached(
                    "SELECT MAX(delivered_at) FROM webhook_deliveries WHERE target = ?1",
                )?
                .query_row([target], |row| row.get::<_, Option<i64>>(0))?
                .map(Timestamp);
            transaction.commit()?;
            Ok(summary)
        })
    }

    /// The target's deliveries, newest change first, at most `limit`, only `status` if given.
    pub fn deliveries(
        &self,
        target: &str,
        status: Option<DeliveryStatus>,
        limit: usize,
    ) -> Result<Vec<Delivery>, IncidentError> {
        self.with(|connection| {
            connection
                .prepare_cached(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
                     WHERE target = ?1 AND (?2 IS NULL OR status = ?2)
                     ORDER BY change_seq DESC LIMIT ?3"
                ))?
                .query_map(
                    params![target, status.map(DeliveryStatus::name), sql_limit(limit)],
                    delivery_from_row,
                )?
                .collect()
        })
    }

    /// The deliveries of one incident's changes to every target, in update sequence order, at
    /// most `limit`.
    pub fn deliveries_for_incident(
        &self,
        incident: IncidentId,
        limit: usize,
    ) -> Result<Vec<Delivery>, IncidentError> {
        self.with(|connection| {
            connection
                .prepare_cached(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE incident_id = ?1
                     ORDER BY change_seq, target LIMIT ?2"
                ))?
                .query_map(
                    params![
                        i64::try_from(incident.0).unwrap_or(i64::MAX),
                        sql_limit(limit)
                    ],
                    delivery_from_row,
                )?
                .collect()
        })
    }

    /// Deletes delivered and dead rows whose last attempt is before `before`; returns how many.
    /// Pending rows are never pruned.
    pub fn prune(&self, before: Timestamp) -> Result<usize, IncidentError> {
        self.write(|transaction| {
            transaction.execute(
                "DELETE FROM webhook_deliveries WHERE status != 'pending'
                 AND COALESCE(last_attempt_at, created_at) < ?1",
                [before.0],
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::alert::{Alert, AlertKind};
    use crate::incident::model::IncidentPolicy;
    use crate::incident::store::IncidentStore;
    use crate::rule::Level;

    const SECOND: i64 = 1_000_000_000;

    fn alert(host: &str) -> Alert {
        Alert {
            rule: Arc::from("r1"),
            title: Arc::from("Rule one"),
            level: Level::High,
            kind: AlertKind::Detection,
            ts: Timestamp(2 * SECOND),
            first_ts: Timestamp(SECOND),
            group: vec![(Arc::from("host"), host.to_string())],
            event_count: 1,
            evidence: Vec::new(),
            possibly_incomplete: false,
        }
    }

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "cairn-outbox-{name}-{}-{}",
            std::process::id(),
            Timestamp::now().0
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir.join("incidents.sqlite")
    }

    #[test]
    fn owed_changes_survive_compaction_until_delivered() {
        let path = temp_path("compact");
        let policy = IncidentPolicy {
            change_log_retention: Duration::from_secs(1),
            ..IncidentPolicy::default()
        };
        let mut store = IncidentStore::open(&path, policy).expect("store");
        let outbox = Outbox::open(&path).expect("outbox");
        assert_eq!(
            outbox.cursor_or_start("ops", UpdateSeq(0)).expect("cursor"),
            UpdateSeq(0)
        );
        let first = store
            .apply_alerts(&[alert("a")], Timestamp(10 * SECOND))
            .expect("apply");
        let second = store
            .apply_alerts(&[alert("a")], Timestamp(11 * SECOND))
            .expect("apply");
        assert_eq!(first.len() + second.len(), 2);
        // The first change is superseded and old, but the target has not considered it.
        assert_eq!(store.compact(Timestamp(100 * SECOND)).expect("compact"), 0);
        outbox
            .enqueue(
                "ops",
                &[&first[0], &second[0]],
                second[0].seq,
                Timestamp(12 * SECOND),
            )
            .expect("enqueue");
        // Enqueueing the same change again owes it once.
        assert_eq!(
            outbox
                .enqueue("ops", &[&first[0]], second[0].seq, Timestamp(12 * SECOND))
                .expect("enqueue again"),
            0
        );
        // Still pending: kept.
        assert_eq!(store.compact(Timestamp(100 * SECOND)).expect("compact"), 0);
        let pending = outbox.next_pending("ops").expect("next").expect("pending");
        assert_eq!(pending.change_seq, first[0].seq);
        assert_eq!(pending.change, "opened");
        outbox
            .record_success(pending.id, 200, Timestamp(13 * SECOND))
            .expect("success");
        // Delivered and superseded: compacted.
        assert_eq!(store.compact(Timestamp(100 * SECOND)).expect("compact"), 1);
        let summary = outbox.summary("ops").expect("summary");
        assert_eq!(
            (summary.pending, summary.delivered, summary.dead),
            (1, 1, 0)
        );
        assert_eq!(summary.cursor, Some(second[0].seq));
        assert_eq!(summary.last_success, Some(Timestamp(13 * SECOND)));
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    #[test]
    fn failures_retry_then_die_and_dead_rows_revive() {
        let path = temp_path("dead");
        let mut store = IncidentStore::open(&path, IncidentPolicy::default()).expect("store");
        let outbox = Outbox::open(&path).expect("outbox");
        let changes = store
            .apply_alerts(&[alert("a"), alert("b")], Timestamp(10 * SECOND))
            .expect("apply");
        let owed: Vec<&IncidentChange> = changes.iter().collect();
        outbox
            .enqueue("ops", &owed, changes[1].seq, Timestamp(10 * SECOND))
            .expect("enqueue");
        let head = outbox.next_pending("ops").expect("next").expect("pending");
        assert_eq!(head.change_seq, changes[0].seq);
        outbox
            .record_failure(
                head.id,
                Some(500),
                &"x".repeat(4000),
                Some(Timestamp(20 * SECOND)),
                Timestamp(11 * SECOND),
            )
            .expect("failure");
        let retried = outbox.next_pending("ops").expect("next").expect("pending");
        assert_eq!(
            retried.id, head.id,
            "the head stays first: ordered per target"
        );
        assert_eq!(retried.attempts, 1);
        assert_eq!(retried.next_attempt_at, Timestamp(20 * SECOND));
        assert_eq!(retried.last_error.as_deref().map(str::len), Some(512));
        outbox
            .record_failure(head.id, None, "gave up", None, Timestamp(21 * SECOND))
            .expect("dead");
        let next = outbox.next_pending("ops").expect("next").expect("pending");
        assert_eq!(next.change_seq, changes[1].seq);
        let dead = outbox
            .deliveries("ops", Some(DeliveryStatus::Dead), 10)
            .expect("dead list");
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].attempts, 2);
        assert_eq!(
            outbox
                .retry_dead("ops", Timestamp(30 * SECOND))
                .expect("retry"),
            1
        );
        let revived = outbox.next_pending("ops").expect("next").expect("pending");
        assert_eq!((revived.id, revived.attempts), (head.id, 0));
        let for_incident = outbox
            .deliveries_for_incident(changes[0].incident.id, 10)
            .expect("incident deliveries");
        assert_eq!(for_incident.len(), 1);
        // Pending rows are never pruned; old finished ones are.
        outbox
            .record_success(revived.id, 204, Timestamp(31 * SECOND))
            .expect("success");
        assert_eq!(outbox.prune(Timestamp(40 * SECOND)).expect("prune"), 1);
        assert_eq!(outbox.summary("ops").expect("summary").pending, 1);
        // Unconfigured targets lose their cursor.
        outbox.cursor_or_start("old", UpdateSeq(0)).expect("cursor");
        assert_eq!(outbox.retain_targets(&["ops"]).expect("retain"), 1);
        assert_eq!(outbox.summary("old").expect("summary").cursor, None);
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }
}
