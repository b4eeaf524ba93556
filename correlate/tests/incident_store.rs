//! The incident store against a real SQLite file: lifecycle tables, the change-log cursor,
//! restarts, and the service thread.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_correlate::incident::{
    ChangeKind, IncidentError, IncidentId, IncidentPolicy, IncidentService, IncidentStatus,
    IncidentStore, ManualClock, ServiceOptions, Transition, UpdateSeq,
};
use cairn_correlate::{Alert, AlertKind, Level};
use cairn_ingest::{Seq, Timestamp};

const SECOND: i64 = 1_000_000_000;
/// 2024-05-01T10:00:00Z
const T0: i64 = 1_714_557_600 * SECOND;

fn alert(rule: &str, host: &str, level: Level, seqs: &[u64], ts_secs: i64) -> Alert {
    Alert {
        rule: Arc::from(rule),
        title: Arc::from(format!("title of {rule}").as_str()),
        level,
        kind: AlertKind::Detection,
        ts: Timestamp(T0 + ts_secs * SECOND),
        first_ts: Timestamp(T0 + ts_secs * SECOND),
        group: vec![(Arc::from("host"), host.to_string())],
        event_count: seqs.len() as u64,
        evidence: seqs.iter().copied().map(Seq).collect(),
        possibly_incomplete: false,
    }
}

fn open_store(dir: &tempfile::TempDir, policy: IncidentPolicy) -> IncidentStore {
    IncidentStore::open(&dir.path().join("incidents.sqlite"), policy).expect("open store")
}

/// One step of a lifecycle table.
#[derive(Debug, Clone)]
enum Step {
    /// A batch of alerts: (rule, host, level, evidence seqs).
    Alerts(&'static [(&'static str, &'static str, Level, &'static [u64])]),
    Ack(u64),
    Resolve(u64),
    /// Move the wall clock forward by this many seconds, then run the quiet period.
    Quiet(u64),
}

/// (change kind, incident id, status after) of each change a step makes; empty = no change.
type Expected = &'static [(ChangeKind, u64, IncidentStatus)];

fn run_table(name: &str, policy: IncidentPolicy, steps: &[(Step, Expected)]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open_store(&dir, policy);
    let mut now = Timestamp(T0);
    let mut last_seq = UpdateSeq(0);
    for (index, (step, expected)) in steps.iter().enumerate() {
        now = Timestamp(now.0 + SECOND);
        let changes: Vec<(ChangeKind, u64, IncidentStatus, UpdateSeq)> = match step {
            Step::Alerts(batch) => {
                let alerts: Vec<Alert> = batch
                    .iter()
                    .map(|(rule, host, level, seqs)| alert(rule, host, *level, seqs, index as i64))
                    .collect();
                store
                    .apply_alerts(&alerts, now)
                    .expect("apply")
                    .into_iter()
                    .map(|change| {
                        (
                            change.kind,
                            change.incident.id.0,
                            change.incident.status,
                            change.seq,
                        )
                    })
                    .collect()
            }
            Step::Ack(id) | Step::Resolve(id) => {
                let transition = if matches!(step, Step::Ack(_)) {
                    store.acknowledge(IncidentId(*id), now)
                } else {
                    store.resolve(IncidentId(*id), now)
                }
                .expect("transition");
                match transition {
                    Transition::Changed(change) => vec![(
                        change.kind,
                        change.incident.id.0,
                        change.incident.status,
                        change.seq,
                    )],
                    Transition::Unchanged(_) => Vec::new(),
                }
            }
            Step::Quiet(seconds) => {
                now = Timestamp(now.0 + *seconds as i64 * SECOND);
                store
                    .auto_resolve(now)
                    .expect("auto resolve")
                    .into_iter()
                    .map(|change| {
                        (
                            change.kind,
                            change.incident.id.0,
                            change.incident.status,
                            change.seq,
                        )
                    })
                    .collect()
            }
        };
        let got: Vec<(ChangeKind, u64, IncidentStatus)> = changes
            .iter()
            .map(|(kind, id, status, _)| (*kind, *id, *status))
            .collect();
        assert_eq!(got, expected.to_vec(), "{name}: step {index} {step:?}");
        for (_, _, _, seq) in changes {
            assert!(
                seq > last_seq,
                "{name}: step {index}: sequence went backwards"
            );
            last_seq = seq;
        }
    }
}

use ChangeKind::{Acknowledged, AutoResolved, Opened, Resolved, Updated};
use IncidentStatus::{Acknowledged as Acked, Open, Resolved as Closed};
use Level::{Critical, High, Informational, Low, Medium};

/// (name, policy, steps with the changes each makes).
type Table = (&'static str, IncidentPolicy, Vec<(Step, Expected)>);

#[test]
fn lifecycle_tables() {
    let tables: Vec<Table> = vec![
        (
            "open then update by fingerprint; another host is another incident",
            IncidentPolicy::default(),
            vec![
                (
                    Step::Alerts(&[("r1", "web1", High, &[1])]),
                    &[(Opened, 1, Open)],
                ),
                (
                    Step::Alerts(&[("r1", "web1", High, &[2])]),
                    &[(Updated, 1, Open)],
                ),
                (
                    Step::Alerts(&[("r1", "web2", High, &[3])]),
                    &[(Opened, 2, Open)],
                ),
                (
                    Step::Alerts(&[("r2", "web1", High, &[4])]),
                    &[(Opened, 3, Open)],
                ),
            ],
        ),
        (
            "below the minimum level is ignored",
            IncidentPolicy::default(),
            vec![
                (Step::Alerts(&[("r1", "web1", Low, &[1])]), &[]),
                (Step::Alerts(&[("r1", "web1", Informational, &[2])]), &[]),
                (
                    Step::Alerts(&[("r1", "web1", Medium, &[3])]),
                    &[(Opened, 1, Open)],
                ),
            ],
        ),
        (
            "a lower minimum level lets low alerts in",
            IncidentPolicy {
                min_level: Low,
                ..IncidentPolicy::default()
            },
            vec![
                (Step::Alerts(&[("r1", "web1", Informational, &[1])]), &[]),
                (
                    Step::Alerts(&[("r1", "web1", Low, &[2])]),
                    &[(Opened, 1, Open)],
                ),
            ],
        ),
        (
            "one batch: one change per incident, in order of first touch",
            IncidentPolicy::default(),
            vec![
                (
                    Step::Alerts(&[
                        ("r1", "a", High, &[1]),
                        ("r1", "b", High, &[2]),
                        ("r1", "a", High, &[3]),
                        ("r1", "a", Low, &[4]),
                    ]),
                    &[(Opened, 1, Open), (Opened, 2, Open)],
                ),
                (
                    Step::Alerts(&[("r1", "b", High, &[5]), ("r1", "a", High, &[6])]),
                    &[(Updated, 2, Open), (Updated, 1, Open)],
                ),
            ],
        ),
        (
            "ack, ack again, update while acknowledged, resolve, resolve again, ack resolved",
            IncidentPolicy::default(),
            vec![
                (
                    Step::Alerts(&[("r1", "web1", High, &[1])]),
                    &[(Opened, 1, Open)],
                ),
                (Step::Ack(1), &[(Acknowledged, 1, Acked)]),
                (Step::Ack(1), &[]),
                (
                    Step::Alerts(&[("r1", "web1", High, &[2])]),
                    &[(Updated, 1, Acked)],
                ),
                (Step::Resolve(1), &[(Resolved, 1, Closed)]),
                (Step::Resolve(1), &[]),
                (Step::Ack(1), &[]),
            ],
        ),
        (
            "resolve an open incident directly",
            IncidentPolicy::default(),
            vec![
                (
                    Step::Alerts(&[("r1", "web1", Critical, &[1])]),
                    &[(Opened, 1, Open)],
                ),
                (Step::Resolve(1), &[(Resolved, 1, Closed)]),
            ],
        ),
        (
            "a resolved incident is never reopened",
            IncidentPolicy::default(),
            vec![
                (
                    Step::Alerts(&[("r1", "web1", High, &[1])]),
                    &[(Opened, 1, Open)],
                ),
                (Step::Resolve(1), &[(Resolved, 1, Closed)]),
                (
                    Step::Alerts(&[("r1", "web1", High, &[2])]),
                    &[(Opened, 2, Open)],
                ),
                (
                    Step::Alerts(&[("r1", "web1", High, &[3])]),
                    &[(Updated, 2, Open)],
                ),
            ],
        ),
        (
            "quiet period: resolves after an hour without alerts, open or acknowledged",
            IncidentPolicy::default(),
            vec![
                (
                    Step::Alerts(&[("r1", "web1", High, &[1])]),
                    &[(Opened, 1, Open)],
                ),
                (
                    Step::Alerts(&[("r1", "web2", High, &[2])]),
                    &[(Opened, 2, Open)],
                ),
                (Step::Ack(2), &[(Acknowledged, 2, Acked)]),
                (Step::Quiet(3000), &[]),
                // A new alert restarts incident 1's quiet period.
                (
                    Step::Alerts(&[("r1", "web1", High, &[3])]),
                    &[(Updated, 1, Open)],
                ),
                (Step::Quiet(600), &[(AutoResolved, 2, Closed)]),
                (Step::Quiet(3000), &[(AutoResolved, 1, Closed)]),
                (Step::Quiet(7200), &[]),
                (
                    Step::Alerts(&[("r1", "web1", High, &[4])]),
                    &[(Opened, 3, Open)],
                ),
            ],
        ),
        (
            "quiet period per rule",
            IncidentPolicy {
                quiet_period_by_rule: HashMap::from([(
                    "fast".to_string(),
                    Duration::from_secs(60),
                )]),
                ..IncidentPolicy::default()
            },
            vec![
                (
                    Step::Alerts(&[("fast", "h", High, &[1]), ("slow", "h", High, &[2])]),
                    &[(Opened, 1, Open), (Opened, 2, Open)],
                ),
                (Step::Quiet(30), &[]),
                (Step::Quiet(30), &[(AutoResolved, 1, Closed)]),
                (Step::Quiet(3600), &[(AutoResolved, 2, Closed)]),
            ],
        ),
    ];
    for (name, policy, steps) in tables {
        run_table(name, policy, &steps);
    }
}

#[test]
fn incident_fields_follow_their_alerts_and_evidence_is_capped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open_store(
        &dir,
        IncidentPolicy {
            max_evidence: 4,
            ..IncidentPolicy::default()
        },
    );
    let mut first = alert("r1", "web1", Medium, &[1, 2, 3], 10);
    first.first_ts = Timestamp(T0 + 5 * SECOND);
    let mut second = alert("r1", "web1", Critical, &[7, 8, 9, 10], 20);
    second.possibly_incomplete = true;
    let opened = store
        .apply_alerts(&[first], Timestamp(T0 + 100 * SECOND))
        .expect("apply");
    assert_eq!(opened.len(), 1);
    let updated = store
        .apply_alerts(&[second], Timestamp(T0 + 200 * SECOND))
        .expect("apply");
    let incident = &updated[0].incident;
    assert_eq!(incident.rule, "r1");
    assert_eq!(incident.title, "title of r1");
    assert_eq!(incident.level, Critical, "the highest level of its alerts");
    assert_eq!(incident.kind, AlertKind::Detection);
    assert_eq!(
        incident.group,
        vec![("host".to_string(), "web1".to_string())]
    );
    assert_eq!(incident.first_seen, Timestamp(T0 + 5 * SECOND));
    assert_eq!(incident.last_seen, Timestamp(T0 + 20 * SECOND));
    assert_eq!(incident.created, Timestamp(T0 + 100 * SECOND));
    assert_eq!(incident.updated, Timestamp(T0 + 200 * SECOND));
    assert_eq!(incident.alert_count, 2);
    assert_eq!(incident.event_count, 7);
    assert!(incident.possibly_incomplete);
    let detail = store.get(incident.id).expect("get").expect("exists");
    assert_eq!(detail.incident, *incident);
    assert_eq!(detail.last_change, updated[0].seq);
    assert_eq!(
        detail.evidence,
        vec![Seq(1), Seq(2), Seq(9), Seq(10)],
        "first half of the cap keeps the earliest, the rest the newest"
    );
    assert!(store.get(IncidentId(99)).expect("get").is_none());
    assert!(store.get(IncidentId(u64::MAX)).expect("get").is_none());
    assert!(matches!(
        store.acknowledge(IncidentId(u64::MAX), Timestamp(T0)),
        Err(IncidentError::NotFound(_))
    ));
    assert!(matches!(
        store.resolve(IncidentId(0), Timestamp(T0)),
        Err(IncidentError::NotFound(_))
    ));
}

#[test]
fn change_log_cursor_sees_every_change_once_under_interleaved_writes_and_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open_store(&dir, IncidentPolicy::default());
    let reader = store.reader();
    let mut cursor = UpdateSeq(0);
    let mut seen: Vec<UpdateSeq> = Vec::new();
    let mut written: Vec<UpdateSeq> = Vec::new();
    let mut now = T0;
    for round in 0..200u64 {
        now += SECOND;
        let host = format!("h{}", round % 7);
        let host: &'static str = Box::leak(host.into_boxed_str());
        let batch = vec![
            alert("r1", host, High, &[round * 3], 0),
            alert("r2", host, High, &[round * 3 + 1], 0),
        ];
        written.extend(
            store
                .apply_alerts(&batch, Timestamp(now))
                .expect("apply")
                .iter()
                .map(|change| change.seq),
        );
        if round % 5 == 0 {
            let transition = store
                .acknowledge(IncidentId(round % 14 + 1), Timestamp(now))
                .expect("ack");
            written.extend(transition.change_seq());
        }
        if round % 11 == 0 {
            let transition = store
                .resolve(IncidentId(round % 13 + 1), Timestamp(now))
                .expect("resolve");
            written.extend(transition.change_seq());
        }
        // Read a small page every round: the reader lags and catches up.
        let page = reader.changes_since(cursor, None, 3).expect("read");
        assert!(page.changes.len() <= 3);
        for change in &page.changes {
            assert!(change.seq > cursor);
            seen.push(change.seq);
        }
        cursor = page.next;
    }
    loop {
        let page = reader.changes_since(cursor, None, 7).expect("read");
        if page.changes.is_empty() {
            assert_eq!(page.next, cursor, "an empty page keeps the cursor");
            break;
        }
        seen.extend(page.changes.iter().map(|change| change.seq));
        cursor = page.next;
    }
    assert_eq!(seen, written, "every change exactly once, in order");
    assert!(seen.windows(2).all(|pair| pair[0] < pair[1]));
    assert_eq!(
        reader.last_seq().expect("last"),
        *written.last().expect("some")
    );

    // A status filter sees exactly the changes whose state has that status.
    let resolved = reader
        .changes_since(UpdateSeq(0), Some(IncidentStatus::Resolved), 1000)
        .expect("resolved");
    assert!(!resolved.changes.is_empty());
    assert!(
        resolved
            .changes
            .iter()
            .all(|change| change.incident.status == IncidentStatus::Resolved)
    );
    assert_eq!(resolved.next, resolved.changes.last().expect("some").seq);

    // The current view: one entry per incident, by its latest change.
    let current = reader.current(None, 1000).expect("current");
    let ids: std::collections::BTreeSet<u64> = current
        .changes
        .iter()
        .map(|change| change.incident.id.0)
        .collect();
    assert_eq!(ids.len(), current.changes.len());
    assert_eq!(current.next, *written.last().expect("some"));
    let open_page = reader.current(Some(IncidentStatus::Open), 2).expect("open");
    assert_eq!(open_page.changes.len(), 2);
    assert_eq!(
        open_page.next, open_page.changes[1].seq,
        "a full page continues at its last"
    );
}

#[test]
fn concurrent_reader_thread_sees_every_change_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open_store(&dir, IncidentPolicy::default());
    let reader = store.reader();
    const ROUNDS: u64 = 300;
    let polling = std::thread::spawn(move || {
        let mut cursor = UpdateSeq(0);
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while seen.len() < ROUNDS as usize {
            assert!(Instant::now() < deadline, "reader did not catch up");
            let page = reader.changes_since(cursor, None, 5).expect("read");
            seen.extend(page.changes.iter().map(|change| change.seq.0));
            cursor = page.next;
        }
        seen
    });
    let mut written = Vec::new();
    for round in 0..ROUNDS {
        let host: &'static str = Box::leak(format!("h{round}").into_boxed_str());
        let changes = store
            .apply_alerts(&[alert("r", host, High, &[round], 0)], Timestamp(T0))
            .expect("apply");
        written.extend(changes.iter().map(|change| change.seq.0));
    }
    assert_eq!(polling.join().expect("reader thread"), written);
}

#[test]
fn restart_keeps_incidents_cursor_and_never_reuses_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open_store(&dir, IncidentPolicy::default());
    let opened = store
        .apply_alerts(
            &[
                alert("r1", "a", High, &[1], 0),
                alert("r1", "b", High, &[2], 0),
            ],
            Timestamp(T0),
        )
        .expect("apply");
    store
        .acknowledge(opened[0].incident.id, Timestamp(T0))
        .expect("ack");
    store
        .resolve(opened[1].incident.id, Timestamp(T0))
        .expect("resolve");
    let cursor = store
        .changes_since(UpdateSeq(0), None, 100)
        .expect("log")
        .next;
    assert_eq!(cursor, UpdateSeq(4));
    store.close().expect("close");

    let mut store = open_store(&dir, IncidentPolicy::default());
    let before = store
        .get(opened[0].incident.id)
        .expect("get")
        .expect("kept");
    assert_eq!(before.incident.status, IncidentStatus::Acknowledged);
    assert_eq!(before.evidence, vec![Seq(1)]);
    // Acknowledged survives and still takes updates; resolved `b` gets a new incident.
    let changes = store
        .apply_alerts(
            &[
                alert("r1", "a", High, &[3], 0),
                alert("r1", "b", High, &[4], 0),
            ],
            Timestamp(T0 + SECOND),
        )
        .expect("apply");
    assert_eq!(changes[0].kind, ChangeKind::Updated);
    assert_eq!(changes[0].incident.id, opened[0].incident.id);
    assert_eq!(changes[1].kind, ChangeKind::Opened);
    assert_eq!(changes[1].incident.id, IncidentId(3));
    let page = store.changes_since(cursor, None, 100).expect("log");
    assert_eq!(
        page.changes
            .iter()
            .map(|change| change.seq.0)
            .collect::<Vec<_>>(),
        vec![5, 6],
        "the cursor continues across the restart"
    );
}

#[test]
fn compaction_drops_only_old_superseded_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open_store(
        &dir,
        IncidentPolicy {
            change_log_retention: Duration::from_secs(3600),
            ..IncidentPolicy::default()
        },
    );
    store
        .apply_alerts(&[alert("r", "a", High, &[1], 0)], Timestamp(T0))
        .expect("apply");
    store
        .apply_alerts(&[alert("r", "a", High, &[2], 0)], Timestamp(T0))
        .expect("apply");
    store
        .apply_alerts(&[alert("r", "b", High, &[3], 0)], Timestamp(T0))
        .expect("apply");
    let recent = Timestamp(T0 + 7200 * SECOND);
    store.acknowledge(IncidentId(2), recent).expect("ack");
    let removed = store
        .compact(Timestamp(T0 + 7300 * SECOND))
        .expect("compact");
    // Seq 1 (a opened) is old and superseded by 2; seq 3 (b opened) is superseded by 4, but
    // which is the latest of b: 3 is old, so it goes too.
    assert_eq!(removed, 2);
    let page = store.changes_since(UpdateSeq(0), None, 100).expect("log");
    assert_eq!(
        page.changes
            .iter()
            .map(|change| change.seq.0)
            .collect::<Vec<_>>(),
        vec![2, 4],
        "an old cursor still sees the latest state of every incident"
    );
}

#[test]
fn a_store_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("incidents.sqlite");
    open_store(&dir, IncidentPolicy::default())
        .close()
        .expect("close");
    let connection = rusqlite::Connection::open(&path).expect("open raw");
    connection
        .execute("UPDATE schema_version SET version = 99", [])
        .expect("bump version");
    drop(connection);
    let error = IncidentStore::open(&path, IncidentPolicy::default()).expect_err("newer");
    assert!(matches!(error, IncidentError::Corruption { .. }), "{error}");
    assert!(error.to_string().contains("schema version 99"), "{error}");

    let garbage = dir.path().join("garbage.sqlite");
    std::fs::write(&garbage, vec![0x5a; 8192]).expect("write garbage");
    let error = IncidentStore::open(&garbage, IncidentPolicy::default()).expect_err("garbage");
    assert!(matches!(error, IncidentError::Corruption { .. }), "{error}");
}

/// Polls until `check` holds or the deadline passes.
fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The next published change; the feed is sent right after the commit, so poll for it.
fn next_change(
    changes: &mut tokio::sync::broadcast::Receiver<Arc<cairn_correlate::incident::IncidentChange>>,
) -> Arc<cairn_correlate::incident::IncidentChange> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match changes.try_recv() {
            Ok(change) => return change,
            Err(tokio::sync::broadcast::error::TryRecvError::Empty) => {
                assert!(Instant::now() < deadline, "no change published in time");
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(error) => panic!("change feed: {error}"),
        }
    }
}

#[test]
fn service_applies_alerts_publishes_changes_and_drains_on_shutdown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("incidents.sqlite");
    let clock = ManualClock::new(Timestamp(T0));
    let service = IncidentService::start(
        IncidentStore::open(&path, IncidentPolicy::default()).expect("open"),
        Arc::new(clock.clone()),
        &ServiceOptions {
            tick: Duration::from_millis(10),
            ..ServiceOptions::default()
        },
    )
    .expect("start");
    let handle = service.handle();
    let mut changes = handle.subscribe();
    let alerts = service.alert_sender();
    alerts.send(alert("r1", "a", High, &[1], 0)).expect("send");
    alerts.send(alert("r1", "a", Low, &[2], 0)).expect("send");
    wait_for("the incident", || {
        handle.last_seq().expect("seq") >= UpdateSeq(1)
    });
    let opened = next_change(&mut changes);
    assert_eq!(opened.kind, ChangeKind::Opened);
    assert_eq!(opened.incident.alert_count, 1, "the low alert is ignored");

    let acked = handle.acknowledge(opened.incident.id).expect("ack");
    assert_eq!(acked.incident().status, IncidentStatus::Acknowledged);
    assert_eq!(next_change(&mut changes).kind, ChangeKind::Acknowledged);
    let again = handle.acknowledge(opened.incident.id).expect("ack again");
    assert_eq!(again.change_seq(), None);
    assert!(matches!(
        handle.resolve(IncidentId(42)),
        Err(IncidentError::NotFound(IncidentId(42)))
    ));

    // The quiet period runs on the service's tick with the injected clock.
    clock.advance(Duration::from_secs(3601));
    wait_for("auto-resolution", || {
        handle
            .get(opened.incident.id)
            .expect("get")
            .is_some_and(|detail| detail.incident.status == IncidentStatus::Resolved)
    });
    assert_eq!(next_change(&mut changes).kind, ChangeKind::AutoResolved);

    // Alerts queued right before shutdown are applied in the final transaction.
    for round in 0..500u64 {
        let host: &'static str = Box::leak(format!("burst{round}").into_boxed_str());
        alerts
            .send(alert("r2", host, High, &[round], 0))
            .expect("send");
    }
    drop(alerts);
    service.shutdown().expect("shutdown");
    assert!(matches!(
        handle.acknowledge(IncidentId(1)),
        Err(IncidentError::Unavailable(_))
    ));
    let store = IncidentStore::open(&path, IncidentPolicy::default()).expect("reopen");
    let open = store
        .changes_since(UpdateSeq(3), Some(IncidentStatus::Open), 1000)
        .expect("log");
    assert_eq!(open.changes.len(), 500, "every queued alert was applied");
}
