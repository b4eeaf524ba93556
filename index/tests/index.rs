//! End-to-end tests of the index: real directories, real commits, real searches.

use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use cairn_index::{
    AggregationRequest, CommitPayload, EventIndex, IndexError, IndexOptions, SearchRequest,
};
use cairn_ingest::{
    Event, EventFlags, Facility, Field, FieldValue, FrameMeta, SdElement, Seq, Severity, Source,
    Span, Text, Timestamp,
};
use serde_json::json;

const SECOND: i64 = 1_000_000_000;
/// 2024-01-01T00:00:00Z.
const BASE_TS: i64 = 1_704_067_200 * SECOND;

/// An RFC 3164-looking event `"<host> <app>: <message>"` with spans into the frame.
fn event(seq: u64, ts: i64, host: &str, app: &str, severity: Severity, message: &str) -> Event {
    let raw = format!("{host} {app}: {message}");
    let meta = FrameMeta {
        seq: Seq(seq),
        received_at: Timestamp(ts + SECOND),
        peer: Some("10.9.8.7:51400".parse::<SocketAddr>().expect("peer")),
        source: Source::SyslogUdp,
        flags: EventFlags::empty(),
    };
    let mut event = Event::unparsed(Bytes::from(raw), &meta);
    let host_end = host.len();
    let app_start = host_end + 1;
    let app_end = app_start + app.len();
    let message_start = app_end + 2;
    event.host = Some(Text::Span(Span::new(0, host_end)));
    event.app = Some(Text::Span(Span::new(app_start, app_end)));
    event.message = Text::Span(Span::new(message_start, event.raw.len()));
    event.ts = Timestamp(ts);
    event.severity = Some(severity);
    event.facility = Facility::from_code(4);
    event.format = cairn_ingest::Format::Rfc3164;
    event.flags = EventFlags::empty();
    event
}

fn request(query: &str) -> SearchRequest {
    SearchRequest {
        query: query.to_owned(),
        limit: 100,
        ..SearchRequest::default()
    }
}

fn sample_events() -> Vec<Event> {
    let mut ssh_fail = event(
        1,
        BASE_TS,
        "Web1",
        "sshd",
        Severity::Warning,
        "Failed password for root from 203.0.113.5 port 22 ssh2",
    );
    ssh_fail.fields.push(Field {
        name: Text::owned("user"),
        value: FieldValue::Text(Text::owned("root")),
    });
    ssh_fail.fields.push(Field {
        name: Text::owned("port"),
        value: FieldValue::U64(22),
    });
    let mut ssh_ok = event(
        2,
        BASE_TS + SECOND,
        "web2",
        "sshd",
        Severity::Informational,
        "Accepted password for alice from 198.51.100.7 port 22 ssh2",
    );
    ssh_ok.fields.push(Field {
        name: Text::owned("user"),
        value: FieldValue::Text(Text::owned("alice")),
    });
    let mut kernel = event(
        3,
        BASE_TS + 2 * SECOND,
        "db1",
        "kernel",
        Severity::Error,
        "EXT4-fs error on /dev/sda1: failed to read password-protected /var/log/auth.log",
    );
    kernel.structured_data.push(SdElement {
        id: Text::owned("origin"),
        params: vec![(Text::owned("software"), Text::owned("linux"))],
    });
    kernel.flags = EventFlags::TRUNCATED;
    kernel.signatures = vec!["4f1c-disk".into()];
    kernel.signature_titles = vec!["Kernel Disk I/O-Error (Brute)".into()];
    vec![ssh_fail, ssh_ok, kernel]
}

fn open(dir: &Path) -> EventIndex {
    EventIndex::open_or_create(dir, IndexOptions::default()).expect("open index")
}

/// Opens a fresh index in `dir` holding [`sample_events`], committed.
fn sample_index(dir: &Path) -> EventIndex {
    let index = open(dir);
    let mut writer = index.writer().expect("writer");
    let events = sample_events();
    writer
        .add_batch_with_signatures(
            &events,
            &[&["ssh_failed_login"], &[], &["disk_error", "fs"]],
        )
        .expect("add");
    writer
        .commit(&CommitPayload {
            last_seq: Seq(3),
            wal_position: Some(4096),
        })
        .expect("commit");
    index
}

fn seqs(index: &EventIndex, query: &str) -> Vec<u64> {
    index
        .search(&request(query))
        .unwrap_or_else(|error| panic!("query `{query}`: {error}"))
        .events
        .iter()
        .map(|hit| hit.seq)
        .collect()
}

#[test]
fn queries_on_words_phrases_keywords_fields_and_ips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = sample_index(dir.path());
    let cases: &[(&str, &[u64])] = &[
        ("", &[3, 2, 1]),
        ("password", &[3, 2, 1]),
        ("PASSWORD root", &[1]),
        ("\"Failed password\"", &[1]),
        ("\"password failed\"", &[]),
        ("failed password", &[3, 1]),
        ("failed OR accepted", &[3, 2, 1]),
        ("password AND NOT root", &[3, 2]),
        ("password -root", &[3, 2]),
        ("password NOT root", &[3, 2]),
        ("NOT root", &[3, 2]),
        ("-host:web1 -host:web2", &[3]),
        ("(accepted OR failed) AND NOT (host:db1 OR host:web2)", &[1]),
        ("NOT severity:err AND (NOT app:sshd OR host:web1)", &[1]),
        ("203.0.113.5", &[1]),
        ("message:203.0.113.5", &[1]),
        ("\"/var/log/auth.log\"", &[3]),
        ("host:web1", &[1]),
        ("host:WEB1", &[1]),
        ("host:web", &[]),
        ("app:sshd", &[2, 1]),
        ("app:sshd AND host:web2", &[2]),
        ("severity:err", &[3]),
        ("severity:warning OR severity:info", &[2, 1]),
        ("severity_code:[0 TO 4]", &[3, 1]),
        ("facility:auth", &[3, 2, 1]),
        ("format:rfc3164", &[3, 2, 1]),
        ("source:syslog_udp", &[3, 2, 1]),
        ("flags:truncated", &[3]),
        ("fields.user:root", &[1]),
        ("fields.user:alice", &[2]),
        ("fields.user:Root", &[]),
        ("fields.port:22", &[1]),
        ("fields.sd.origin.software:linux", &[3]),
        ("signature:ssh_failed_login", &[1]),
        ("signature:fs", &[3]),
        ("signature:4f1c-disk", &[3]),
        ("signature:4f1c", &[]),
        ("rule:disk", &[3]),
        ("rule:DISK", &[3]),
        ("rule:\"disk i o error\"", &[3]),
        ("rule:\"error disk\"", &[]),
        ("rule:fs", &[]),
        ("disk", &[]),
        ("seq:2", &[2]),
        ("seq:[2 TO 3]", &[3, 2]),
        ("peer:10.9.8.7", &[3, 2, 1]),
        ("peer:10.9.8.8", &[]),
        ("ts:[2024-01-01T00:00:01Z TO *]", &[3, 2]),
    ];
    for (query, expected) in cases {
        assert_eq!(seqs(&index, query), *expected, "query `{query}`");
    }
}

#[test]
fn hits_carry_every_field_in_api_shape() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = sample_index(dir.path());
    let response = index.search(&request("seq:1")).expect("search");
    assert_eq!(response.total, 1);
    assert_eq!(response.next_cursor, None);
    let hit = serde_json::to_value(&response.events[0]).expect("serialise");
    assert_eq!(
        hit,
        serde_json::json!({
            "seq": 1,
            "ts": "2024-01-01T00:00:00Z",
            "received_at": "2024-01-01T00:00:01Z",
            "host": "Web1",
            "app": "sshd",
            "procid": null,
            "msgid": null,
            "severity": "warning",
            "facility": "auth",
            "message": "Failed password for root from 203.0.113.5 port 22 ssh2",
            "fields": {"user": "root", "port": 22},
            "signatures": ["ssh_failed_login"],
            "rules": [],
            "peer": "10.9.8.7:51400",
            "flags": [],
            "format": "rfc3164",
            "source": "syslog_udp",
            "raw": "Web1 sshd: Failed password for root from 203.0.113.5 port 22 ssh2",
        })
    );
    let kernel = &index.search(&request("seq:3")).expect("search").events[0];
    assert_eq!(
        serde_json::Value::Object(kernel.fields.clone()),
        serde_json::json!({"sd": {"origin": {"software": "linux"}}})
    );
    assert_eq!(kernel.signatures, ["4f1c-disk", "disk_error", "fs"]);
    assert_eq!(kernel.rules, ["Kernel Disk I/O-Error (Brute)"]);
    assert_eq!(kernel.flags, ["truncated"]);
}

/// `(key, doc_count)` of the buckets of aggregation `name`.
fn buckets(aggregations: &serde_json::Value, name: &str) -> Vec<(serde_json::Value, u64)> {
    aggregations[name]["buckets"]
        .as_array()
        .unwrap_or_else(|| panic!("no buckets for {name} in {aggregations}"))
        .iter()
        .map(|bucket| {
            (
                bucket["key"].clone(),
                bucket["doc_count"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

#[test]
fn terms_and_date_histogram_aggregate_every_match_whatever_the_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = sample_index(dir.path());
    let aggregations = AggregationRequest::parse_compact(
        "terms:host,terms:app,terms:severity,terms:signature,terms:fields.user,date_histogram:1s",
    )
    .expect("aggs");
    let response = index
        .search(&SearchRequest {
            limit: 1,
            aggregations: Some(aggregations.clone()),
            ..request("password")
        })
        .expect("search");
    assert_eq!((response.total, response.events.len()), (3, 1));
    let results = response.aggregations.expect("aggregations");

    assert_eq!(
        buckets(&results, "host"),
        [(json!("db1"), 1), (json!("web1"), 1), (json!("web2"), 1)]
    );
    assert_eq!(
        buckets(&results, "app"),
        [(json!("sshd"), 2), (json!("kernel"), 1)]
    );
    assert_eq!(buckets(&results, "signature").len(), 4);
    assert_eq!(
        buckets(&results, "fields.user"),
        [(json!("alice"), 1), (json!("root"), 1)]
    );
    let histogram = buckets(&results, "date_histogram");
    let base_ms = BASE_TS / 1_000_000;
    assert_eq!(
        histogram,
        [
            (json!(base_ms), 1),
            (json!(base_ms + 1000), 1),
            (json!(base_ms + 2000), 1)
        ]
    );
    assert_eq!(
        results["date_histogram"]["buckets"][0]["key_as_string"],
        "2024-01-01T00:00:00Z"
    );
    // The query restricts the buckets.
    let rooted = index
        .search(&SearchRequest {
            aggregations: Some(aggregations),
            ..request("root")
        })
        .expect("search")
        .aggregations
        .expect("aggregations");
    assert_eq!(buckets(&rooted, "host"), [(json!("web1"), 1)]);
    // Without aggregations asked, none are answered.
    assert!(
        index
            .search(&request(""))
            .expect("search")
            .aggregations
            .is_none()
    );
}

#[test]
fn time_range_is_from_inclusive_to_exclusive_on_event_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = sample_index(dir.path());
    let ranged = |from: Option<i64>, to: Option<i64>| {
        let response = index
            .search(&SearchRequest {
                from: from.map(Timestamp),
                to: to.map(Timestamp),
                ..request("")
            })
            .expect("search");
        let seqs: Vec<u64> = response.events.iter().map(|hit| hit.seq).collect();
        (response.total, seqs)
    };
    assert_eq!(ranged(Some(BASE_TS + SECOND), None), (2, vec![3, 2]));
    assert_eq!(ranged(None, Some(BASE_TS + SECOND)), (1, vec![1]));
    assert_eq!(
        ranged(Some(BASE_TS), Some(BASE_TS + 2 * SECOND)),
        (2, vec![2, 1])
    );
    // One nanosecond past an event excludes it from `from` and includes it in `to`.
    assert_eq!(
        ranged(Some(BASE_TS + 1), Some(BASE_TS + SECOND + 1)),
        (1, vec![2])
    );
    assert_eq!(ranged(Some(BASE_TS + 5 * SECOND), None), (0, vec![]));
}

#[test]
fn cursor_pages_through_2500_events_newest_first_without_gaps_or_repeats() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path());
    let mut writer = index.writer().expect("writer");
    // Timestamps repeat (groups of 7 share one) and are not in seq order, so both the ts order
    // and the seq tie-break matter; several batches and commits make several segments.
    let events: Vec<Event> = (1..=2500u64)
        .map(|seq| {
            let ts = BASE_TS + i64::try_from((seq * 7919) % 357).expect("small") * SECOND;
            let word = if seq.is_multiple_of(2) { "even" } else { "odd" };
            event(
                seq,
                ts,
                "h",
                "app",
                Severity::Notice,
                &format!("tick {word} {seq}"),
            )
        })
        .collect();
    for chunk in events.chunks(600) {
        writer.add_batch(chunk).expect("add");
        let last_seq = chunk.last().map_or(Seq(0), |event| event.seq);
        writer
            .commit(&CommitPayload {
                last_seq,
                wal_position: None,
            })
            .expect("commit");
    }
    let mut expected: Vec<(i64, u64)> = events
        .iter()
        .map(|event| (event.ts.as_nanos(), event.seq.0))
        .collect();
    expected.sort_unstable_by(|left, right| right.cmp(left));

    for (query, page_size) in [("", 100), ("", 333), ("tick", 1000), ("even", 77)] {
        let wanted: Vec<u64> = expected
            .iter()
            .map(|(_, seq)| *seq)
            .filter(|seq| query != "even" || seq.is_multiple_of(2))
            .collect();
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let response = index
                .search(&SearchRequest {
                    query: query.to_owned(),
                    limit: page_size,
                    cursor: cursor.take(),
                    ..SearchRequest::default()
                })
                .expect("search");
            assert_eq!(
                response.total,
                wanted.len() as u64,
                "total ignores the cursor"
            );
            assert!(response.events.len() <= page_size);
            seen.extend(response.events.iter().map(|hit| hit.seq));
            match response.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, wanted, "query `{query}` page size {page_size}");
    }
}

#[test]
fn limit_is_capped_and_zero_returns_only_the_total() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path());
    let mut writer = index.writer().expect("writer");
    let events: Vec<Event> = (1..=1200u64)
        .map(|seq| {
            event(
                seq,
                BASE_TS + i64::try_from(seq).expect("small"),
                "h",
                "a",
                Severity::Debug,
                "x",
            )
        })
        .collect();
    writer.add_batch(&events).expect("add");
    writer
        .commit(&CommitPayload {
            last_seq: Seq(1200),
            wal_position: None,
        })
        .expect("commit");
    let big = index
        .search(&SearchRequest {
            limit: 5000,
            ..request("")
        })
        .expect("search");
    assert_eq!(big.events.len(), cairn_index::MAX_SEARCH_LIMIT);
    assert!(big.next_cursor.is_some());
    let counted = index
        .search(&SearchRequest {
            limit: 0,
            ..request("x")
        })
        .expect("search");
    assert_eq!((counted.total, counted.events.len()), (1200, 0));
    assert_eq!(counted.next_cursor, None);
}

#[test]
fn invalid_queries_and_cursors_are_bad_queries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = sample_index(dir.path());
    for query in [
        "nosuchfield:x",
        "\"unclosed",
        "seq:notanumber",
        "raw:anything",
        "(a OR",
    ] {
        let result = index.search(&request(query));
        assert!(
            matches!(result, Err(IndexError::BadQuery(_))),
            "query `{query}` gave {result:?}"
        );
    }
    let result = index.search(&SearchRequest {
        cursor: Some("yesterday".to_owned()),
        ..request("")
    });
    assert!(matches!(result, Err(IndexError::BadQuery(_))), "{result:?}");
}

#[test]
fn uncommitted_events_are_invisible_and_a_commit_makes_them_searchable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path());
    let mut writer = index.writer().expect("writer");
    writer
        .add_batch(&[event(1, BASE_TS, "h", "a", Severity::Notice, "hello")])
        .expect("add");
    assert_eq!(writer.uncommitted(), 1);
    assert_eq!(index.doc_count(), 0);
    assert_eq!(index.last_commit(), None);
    let payload = CommitPayload {
        last_seq: Seq(1),
        wal_position: Some(10),
    };
    writer.commit(&payload).expect("commit");
    assert_eq!(index.doc_count(), 1);
    assert_eq!(seqs(&index, "hello"), [1]);
    assert_eq!(index.last_commit(), Some(payload));
}

#[test]
fn reopen_after_drop_keeps_events_and_the_commit_payload() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let index = sample_index(dir.path());
        let mut writer = index.writer().expect("writer");
        // Added but never committed: must not survive.
        writer
            .add_batch(&[event(4, BASE_TS, "h", "a", Severity::Notice, "lost")])
            .expect("add");
    }
    let index = open(dir.path());
    assert_eq!(index.doc_count(), 3);
    assert_eq!(
        index.last_commit(),
        Some(CommitPayload {
            last_seq: Seq(3),
            wal_position: Some(4096),
        })
    );
    assert_eq!(index.max_seq().expect("max seq"), Some(Seq(3)));
    assert_eq!(seqs(&index, "\"Failed password\""), [1]);
    assert_eq!(seqs(&index, "lost"), Vec::<u64>::new());
    // And it is writable again (the lock was released on drop).
    let mut writer = index.writer().expect("writer after reopen");
    writer
        .add_batch(&[event(4, BASE_TS, "h", "a", Severity::Notice, "again")])
        .expect("add");
    writer
        .commit(&CommitPayload {
            last_seq: Seq(4),
            wal_position: Some(5000),
        })
        .expect("commit");
    assert_eq!(index.max_seq().expect("max seq"), Some(Seq(4)));
}

#[test]
fn empty_index_has_no_max_seq_and_no_payload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path());
    assert_eq!(index.max_seq().expect("max seq"), None);
    assert_eq!(index.last_commit(), None);
    let response = index.search(&request("anything")).expect("search");
    assert_eq!((response.total, response.events.len()), (0, 0));
}

#[test]
fn a_second_writer_is_unavailable_while_the_first_lives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path());
    let first = index.writer().expect("first writer");
    let second = index.writer();
    assert!(
        matches!(second, Err(IndexError::Unavailable(_))),
        "{second:?}"
    );
    drop(first);
    index.writer().expect("writer after drop");
}

#[test]
fn bad_options_are_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = IndexOptions {
        writer_memory_bytes: 1_000_000,
        ..IndexOptions::default()
    };
    let result = EventIndex::open_or_create(dir.path(), options);
    assert!(
        matches!(result, Err(IndexError::BadOptions(_))),
        "{result:?}"
    );
}

fn assert_corruption(dir: &Path, options: IndexOptions) {
    match EventIndex::open_or_create(dir, options) {
        Err(IndexError::Corruption { path, message }) => {
            assert!(path.starts_with(dir), "{path:?}");
            assert!(!message.is_empty());
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

/// The partition directory of the sample events (all on 2024-01-01, UTC).
fn sample_partition(dir: &Path) -> std::path::PathBuf {
    dir.join("20240101T00-24h")
}

fn segment_files(dir: &Path, extension: &str) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(sample_partition(dir))
        .expect("list")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|found| found == extension))
        .collect()
}

#[test]
fn garbled_meta_json_is_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(sample_index(dir.path()));
    std::fs::write(
        sample_partition(dir.path()).join("meta.json"),
        b"{ this is not json",
    )
    .expect("garble");
    assert_corruption(dir.path(), IndexOptions::default());
}

#[test]
fn truncated_segment_file_is_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(sample_index(dir.path()));
    let store = segment_files(dir.path(), "store");
    assert!(!store.is_empty());
    std::fs::write(&store[0], b"xx").expect("truncate");
    assert_corruption(dir.path(), IndexOptions::default());
}

#[test]
fn deleted_segment_file_is_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(sample_index(dir.path()));
    for path in segment_files(dir.path(), "fast") {
        std::fs::remove_file(path).expect("remove");
    }
    assert_corruption(dir.path(), IndexOptions::default());
}

#[test]
fn flipped_byte_is_found_by_checksum_verification() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(sample_index(dir.path()));
    let term = segment_files(dir.path(), "term");
    let mut bytes = std::fs::read(&term[0]).expect("read");
    bytes[0] ^= 0xff;
    std::fs::write(&term[0], bytes).expect("write");
    let options = IndexOptions {
        verify_checksums_on_open: true,
        ..IndexOptions::default()
    };
    assert_corruption(dir.path(), options);
}

#[test]
fn missing_meta_json_next_to_segments_is_corruption_not_a_fresh_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(sample_index(dir.path()));
    std::fs::remove_file(sample_partition(dir.path()).join("meta.json")).expect("remove");
    assert_corruption(dir.path(), IndexOptions::default());
}

#[test]
fn unreadable_commit_payload_is_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(sample_index(dir.path()));
    let meta_path = sample_partition(dir.path()).join("meta.json");
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&meta_path).expect("read")).expect("json");
    meta["payload"] = serde_json::Value::from("not a payload");
    std::fs::write(&meta_path, meta.to_string()).expect("write");
    assert_corruption(dir.path(), IndexOptions::default());
}

#[test]
fn index_is_shareable_and_the_writer_movable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}
    assert_send_sync::<EventIndex>();
    assert_send::<cairn_index::EventWriter>();
}

#[test]
fn searches_run_concurrently_with_indexing_and_see_each_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path());
    let writer_index = index.clone();
    let indexer = std::thread::spawn(move || {
        let mut writer = writer_index.writer().expect("writer");
        for round in 0..5u64 {
            let events: Vec<Event> = (1..=100u64)
                .map(|offset| {
                    let seq = round * 100 + offset;
                    event(seq, BASE_TS, "h", "a", Severity::Informational, "burst")
                })
                .collect();
            writer.add_batch(&events).expect("add");
            writer
                .commit(&CommitPayload {
                    last_seq: Seq((round + 1) * 100),
                    wal_position: None,
                })
                .expect("commit");
        }
    });
    let mut last_total = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while last_total < 500 && std::time::Instant::now() < deadline {
        let total = index.search(&request("burst")).expect("search").total;
        assert!(
            total >= last_total && total.is_multiple_of(100),
            "{total} after {last_total}"
        );
        last_total = total;
    }
    indexer.join().expect("indexer thread");
    assert_eq!(index.search(&request("burst")).expect("search").total, 500);
}

#[test]
fn structured_data_ids_with_at_signs_are_queryable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path());
    let mut with_sd = event(1, BASE_TS, "h", "a", Severity::Notice, "sd");
    with_sd.structured_data.push(SdElement {
        id: Text::owned("exampleSDID@32473"),
        params: vec![(Text::owned("iut"), Text::owned("3"))],
    });
    let mut writer = index.writer().expect("writer");
    writer.add_batch(&[with_sd]).expect("add");
    writer
        .commit(&CommitPayload {
            last_seq: Seq(1),
            wal_position: None,
        })
        .expect("commit");
    assert_eq!(seqs(&index, "fields.sd.exampleSDID@32473.iut:3"), [1]);
}

const DAY: i64 = 86_400 * SECOND;

fn payload(last_seq: u64, wal_position: u64) -> CommitPayload {
    CommitPayload {
        last_seq: Seq(last_seq),
        wal_position: Some(wal_position),
    }
}

/// Indexes `per_day` events on each of `days` consecutive days from [`BASE_TS`] (seq numbered
/// from 1, one per hour), committed.
fn days_index(dir: &Path, options: IndexOptions, days: i64, per_day: i64) -> EventIndex {
    let index = EventIndex::open_or_create(dir, options).expect("open");
    let mut writer = index.writer().expect("writer");
    let mut seq = 0;
    let events: Vec<Event> = (0..days)
        .flat_map(|day| (0..per_day).map(move |hour| (day, hour)))
        .map(|(day, hour)| {
            seq += 1;
            let message = format!("day{day} tick");
            event(
                seq,
                BASE_TS + day * DAY + hour * 3600 * SECOND,
                "h",
                "a",
                Severity::Notice,
                &message,
            )
        })
        .collect();
    // One batch spanning every day: the writer splits it by partition.
    let outcome = writer.add_record(100, &events).expect("add");
    assert_eq!(outcome.added, events.len() as u64);
    writer.commit(&payload(seq, 100)).expect("commit");
    index
}

fn partition_names(index: &EventIndex) -> Vec<String> {
    index
        .status()
        .partitions
        .into_iter()
        .map(|partition| partition.name)
        .collect()
}

#[test]
fn events_go_to_one_partition_per_utc_day_and_search_pages_across_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = days_index(dir.path(), IndexOptions::default(), 3, 10);
    assert_eq!(
        partition_names(&index),
        ["20240101T00-24h", "20240102T00-24h", "20240103T00-24h"]
    );
    assert!(dir.path().join("20240102T00-24h/meta.json").is_file());
    assert_eq!(index.doc_count(), 30);
    assert_eq!(index.max_seq().expect("max seq"), Some(Seq(30)));
    // Pages of 7 across three partitions: newest first, no gap, no repeat.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = index
            .search(&SearchRequest {
                limit: 7,
                cursor: cursor.clone(),
                ..request("tick")
            })
            .expect("search");
        assert_eq!(page.total, 30);
        seen.extend(page.events.iter().map(|hit| hit.seq));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, (1..=30).rev().collect::<Vec<u64>>());
    // A range inside one day, and aggregations merged over the partitions searched.
    let ranged = index
        .search(&SearchRequest {
            from: Some(Timestamp(BASE_TS + DAY + 5 * 3600 * SECOND)),
            to: Some(Timestamp(BASE_TS + 2 * DAY)),
            ..request("")
        })
        .expect("search");
    assert_eq!(ranged.total, 5);
    let all = index
        .search(&SearchRequest {
            aggregations: Some(
                AggregationRequest::parse_compact("terms:host,date_histogram:1d").expect("aggs"),
            ),
            ..request("")
        })
        .expect("search")
        .aggregations
        .expect("aggregations");
    assert_eq!(buckets(&all, "host"), [(json!("h"), 30)]);
    let base_ms = BASE_TS / 1_000_000;
    let day_ms = DAY / 1_000_000;
    assert_eq!(
        buckets(&all, "date_histogram"),
        [
            (json!(base_ms), 10),
            (json!(base_ms + day_ms), 10),
            (json!(base_ms + 2 * day_ms), 10)
        ]
    );
}

#[test]
fn retention_by_age_drops_old_partitions_and_expires_old_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(days_index(dir.path(), IndexOptions::default(), 4, 2));
    let options = IndexOptions {
        retention: cairn_index::RetentionPolicy {
            max_age: Some(std::time::Duration::from_secs(2 * 86_400)),
            ..cairn_index::RetentionPolicy::default()
        },
        ..IndexOptions::default()
    };
    let index = EventIndex::open_or_create(dir.path(), options).expect("reopen");
    let mut writer = index.writer().expect("writer");
    // "Now" is the end of the fourth day: days one and two ended two days ago or earlier.
    let now = BASE_TS + 4 * DAY;
    let dropped = writer.enforce_retention(now);
    assert_eq!(dropped, ["20240101T00-24h", "20240102T00-24h"]);
    assert_eq!(
        partition_names(&index),
        ["20240103T00-24h", "20240104T00-24h"]
    );
    assert!(!dir.path().join("20240101T00-24h").exists());
    let status = index.status();
    assert_eq!((status.dropped_partitions, status.dropped_events), (2, 4));
    assert_eq!(seqs(&index, "tick"), [8, 7, 6, 5]);
    // The wall clock is far past 2024: every event of that time is expired now, and counted.
    let outcome = writer
        .add_record(
            200,
            &[event(99, BASE_TS, "h", "a", Severity::Notice, "late")],
        )
        .expect("add");
    assert_eq!((outcome.added, outcome.expired), (0, 1));
    assert_eq!(index.status().expired_events, 1);
}

#[test]
fn disk_budget_drops_oldest_first_but_never_the_newest_partition() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(days_index(dir.path(), IndexOptions::default(), 3, 5));
    let options = IndexOptions {
        retention: cairn_index::RetentionPolicy {
            max_disk_bytes: Some(1),
            ..cairn_index::RetentionPolicy::default()
        },
        ..IndexOptions::default()
    };
    let index = EventIndex::open_or_create(dir.path(), options).expect("reopen");
    let before = index.status();
    assert_eq!(before.partitions.len(), 3);
    assert!(
        before.bytes > 0
            && before
                .partitions
                .iter()
                .all(|partition| partition.bytes > 0)
    );
    let mut writer = index.writer().expect("writer");
    assert_eq!(
        writer.enforce_retention(BASE_TS),
        ["20240101T00-24h", "20240102T00-24h"]
    );
    assert_eq!(partition_names(&index), ["20240103T00-24h"]);
    assert_eq!(index.search(&request("tick")).expect("search").total, 5);
}

#[test]
fn a_partition_that_committed_past_progress_skips_the_replayed_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let index = open(dir.path());
        let mut writer = index.writer().expect("writer");
        writer
            .add_record(
                100,
                &[event(1, BASE_TS, "h", "a", Severity::Notice, "first")],
            )
            .expect("add");
        writer.commit(&payload(1, 100)).expect("commit");
        writer
            .add_record(
                200,
                &[event(
                    2,
                    BASE_TS + DAY,
                    "h",
                    "a",
                    Severity::Notice,
                    "second",
                )],
            )
            .expect("add");
        writer.commit(&payload(2, 200)).expect("commit");
    }
    // As after a crash between the partition's commit and progress.json.
    std::fs::write(
        dir.path().join("progress.json"),
        r#"{"last_seq":1,"wal_position":100}"#,
    )
    .expect("rewind progress");
    let index = open(dir.path());
    assert_eq!(index.last_commit(), Some(payload(2, 100)));
    let mut writer = index.writer().expect("writer");
    // Replay from 100: the record ending at 200 is in its partition already.
    let replayed = writer
        .add_record(
            200,
            &[event(
                2,
                BASE_TS + DAY,
                "h",
                "a",
                Severity::Notice,
                "second",
            )],
        )
        .expect("replay");
    assert_eq!((replayed.added, replayed.already_indexed), (0, 1));
    let next = writer
        .add_record(
            300,
            &[event(3, BASE_TS + DAY, "h", "a", Severity::Notice, "third")],
        )
        .expect("add");
    assert_eq!(next.added, 1);
    writer.commit(&payload(3, 300)).expect("commit");
    assert_eq!(seqs(&index, ""), [3, 2, 1]);
}

#[test]
fn a_single_index_of_an_older_version_becomes_the_legacy_partition() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old = dir.path().join("index");
    // A single tantivy index directly in the directory, as the previous version wrote it.
    drop(sample_index(&dir.path().join("made")));
    std::fs::rename(sample_partition(&dir.path().join("made")), &old).expect("move");
    std::fs::remove_file(old.join("progress.json")).ok();
    let index = open(&old);
    assert_eq!(partition_names(&index), ["legacy"]);
    assert!(old.join("legacy/meta.json").is_file());
    assert_eq!(index.last_commit(), Some(payload(3, 4096)));
    assert_eq!(seqs(&index, "password"), [3, 2, 1]);
    // New events go to new partitions; the legacy one is only read.
    let mut writer = index.writer().expect("writer");
    writer
        .add_record(
            5000,
            &[event(
                4,
                BASE_TS,
                "h",
                "a",
                Severity::Notice,
                "password again",
            )],
        )
        .expect("add");
    writer.commit(&payload(4, 5000)).expect("commit");
    assert_eq!(partition_names(&index), ["legacy", "20240101T00-24h"]);
    // Newest first by (ts, seq): seq 4 shares the time of seq 1.
    assert_eq!(seqs(&index, "password"), [3, 2, 4, 1]);
}

#[test]
fn more_partitions_than_open_writers_ask_for_a_commit_and_close_the_idle_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = IndexOptions {
        max_open_writers: 2,
        ..IndexOptions::default()
    };
    let index = EventIndex::open_or_create(dir.path(), options).expect("open");
    let mut writer = index.writer().expect("writer");
    for day in 0..3 {
        writer
            .add_batch(&[event(
                day as u64 + 1,
                BASE_TS + day * DAY,
                "h",
                "a",
                Severity::Notice,
                "x",
            )])
            .expect("add");
    }
    assert!(writer.wants_commit());
    writer.commit(&payload(3, 10)).expect("commit");
    assert!(!writer.wants_commit());
    assert_eq!(index.doc_count(), 3);
}

#[test]
fn structured_queries_compile_to_the_same_matches_as_query_text() {
    use cairn_index::{EventQuery, QueryValue, RangeValue};
    use std::ops::Bound;
    let dir = tempfile::tempdir().expect("tempdir");
    let index = sample_index(dir.path());
    let run = |query: EventQuery| -> Vec<u64> {
        let compiled = index.compile_query(&query).expect("compile");
        index
            .search_query(compiled.as_ref(), &request(""))
            .expect("search")
            .events
            .iter()
            .map(|hit| hit.seq)
            .collect()
    };
    let text = |value: &str| QueryValue::Text(value.to_owned());
    let term = |field: &str, value: QueryValue| EventQuery::Term {
        field: field.to_owned(),
        value,
    };
    // Hostnames are case-insensitive, as in query text.
    assert_eq!(run(term("host", text("WEB1"))), [1]);
    assert_eq!(run(term("severity", text("err"))), [3]);
    assert_eq!(run(term("fields.user", text("alice"))), [2]);
    assert_eq!(run(term("fields.port", QueryValue::Integer(22))), [1]);
    assert_eq!(run(term("seq", QueryValue::Integer(2))), [2]);
    let matching = |words: &str, all_words| EventQuery::Match {
        field: "message".to_owned(),
        text: words.to_owned(),
        all_words,
    };
    assert_eq!(run(matching("root alice", false)), [2, 1]);
    assert_eq!(run(matching("failed password", true)), [3, 1]);
    let phrase = EventQuery::Phrase {
        field: "message".to_owned(),
        text: "Failed password".to_owned(),
    };
    assert_eq!(run(phrase), [1]);
    let range = EventQuery::Range {
        field: "ts".to_owned(),
        lower: Bound::Included(RangeValue::Time(Timestamp(BASE_TS + SECOND))),
        upper: Bound::Unbounded,
    };
    assert_eq!(run(range.clone()), [3, 2]);
    let everything_but_db1 = EventQuery::Bool {
        must: vec![range],
        should: Vec::new(),
        must_not: vec![term("host", text("db1"))],
        minimum_should_match: None,
    };
    assert_eq!(run(everything_but_db1), [2]);
    let any_word = EventQuery::Text {
        query: "root alice".to_owned(),
        any_word: true,
    };
    assert_eq!(run(any_word), [2, 1]);
    for bad in [
        term("nope", text("x")),
        term("seq", text("x")),
        EventQuery::Range {
            field: "host".to_owned(),
            lower: Bound::Unbounded,
            upper: Bound::Unbounded,
        },
    ] {
        assert!(
            matches!(index.compile_query(&bad), Err(IndexError::BadQuery(_))),
            "{bad:?}"
        );
    }
}

/// Regression: a crash during the very first commit round left one partition committed and
/// another never committed, and no progress.json; replay must start at the WAL's oldest record
/// (the uncommitted partition lost events of every record), not at the committed one's position.
#[test]
fn without_progress_a_partition_never_committed_means_replay_from_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let index = open(dir.path());
        let mut writer = index.writer().expect("writer");
        let events = [
            event(1, BASE_TS, "h", "a", Severity::Notice, "one"),
            event(2, BASE_TS + DAY, "h", "a", Severity::Notice, "two"),
        ];
        writer.add_record(100, &events).expect("add");
        writer.commit(&payload(2, 100)).expect("commit");
    }
    std::fs::remove_file(dir.path().join("progress.json")).expect("no progress");
    let meta_path = dir.path().join("20240102T00-24h/meta.json");
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&meta_path).expect("read")).expect("json");
    meta["payload"] = serde_json::Value::Null;
    std::fs::write(&meta_path, meta.to_string()).expect("write");
    let index = open(dir.path());
    assert_eq!(
        index.last_commit(),
        Some(CommitPayload {
            last_seq: Seq(2),
            wal_position: None,
        })
    );
    // Replayed from the start: the committed partition skips the record, the other takes it.
    let mut writer = index.writer().expect("writer");
    let outcome = writer
        .add_record(
            100,
            &[
                event(1, BASE_TS, "h", "a", Severity::Notice, "one"),
                event(2, BASE_TS + DAY, "h", "a", Severity::Notice, "two"),
            ],
        )
        .expect("replay");
    assert_eq!((outcome.added, outcome.already_indexed), (1, 1));
}
