//! "Nothing lost": the write-ahead log wired into the real binary, shown over real sockets.
//!
//! - crashes (SIGKILL at random points, several times): every HTTP event answered 2xx is
//!   searchable exactly once, TCP lines are never duplicated and those sent before a completed
//!   commit are all there, and the counters reconcile;
//! - a torn WAL tail is cut, logged and counted, and the appliance starts;
//! - a corrupt record in a segment that is not the last stops the start-up with an error naming
//!   the file and the way out, which works;
//! - SIGTERM drains: everything acknowledged is searchable after the restart, nothing is left for
//!   replay, and the stop is quick;
//! - overload: HTTP answers 429 with `Retry-After`, and what got 200 is all there;
//! - a full disk (the WAL's fault seam, through a debug-only config key): HTTP answers 503 with
//!   `Retry-After`, UDP drops are counted as `wal_unavailable`, TCP pauses without dropping.
//!
//! No sleeps to wait for work: every wait polls with a deadline. (The crash test sleeps only to
//! pick the random moment of each kill.)

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    Cairn, DEADLINE, Random, TempDir, all_events, args, config_args, http_request, unique_token,
};
use serde_json::Value;

/// How many times each event id (the word after the token) occurs among the events matching the
/// token.
fn id_counts(cairn: &Cairn, token: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for event in all_events(cairn, token) {
        let message = event["message"].as_str().unwrap_or_default();
        let id = message
            .split_whitespace()
            .skip_while(|word| *word != token)
            .nth(1)
            .unwrap_or_default()
            .to_string();
        *counts.entry(id).or_insert(0) += 1;
    }
    counts
}

fn ndjson(token: &str, ids: &[String], padding: usize) -> Vec<u8> {
    let pad = "p".repeat(padding);
    ids.iter()
        .map(|id| format!(r#"{{"message":"{token} {id} {pad}","app":"waltest"}}"#) + "\n")
        .collect::<String>()
        .into_bytes()
}

/// Polls until the counters reconcile (nothing in flight, queues empty) and returns the stats.
fn quiescent(cairn: &Cairn) -> Value {
    cairn.stats_until("quiescence: nothing in flight", |stats| {
        stats["reconcile"]["in_flight"] == 0
            && stats["queues"]["work_batches"] == 0
            && stats["queues"]["index_batches"] == 0
            && stats["reconcile"]["inputs"] == stats["reconcile"]["outputs"]
    })
}

fn segments(wal_dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(wal_dir)
        .expect("read wal dir")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "seg"))
        .collect();
    paths.sort();
    paths
}

#[test]
fn sigkill_at_random_points_loses_no_acknowledged_event_and_duplicates_none() {
    let data = TempDir::new("walcrash");
    let config = config_args(
        data.path(),
        "[index]\ncommit_interval_ms = 150\n\
         [wal]\nmax_segment_mb = 2\nmax_record_mb = 1\n\
         [http]\nmax_line_bytes = 65536\n",
    );
    let data_dir = data.path().join("data");
    let token = unique_token("crash");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64
        | 1;
    eprintln!("kill-point seed {seed}");
    let mut random = Random(seed);
    let acknowledged: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let mut http_sent: BTreeSet<String> = BTreeSet::new();
    let mut tcp_committed: BTreeSet<String> = BTreeSet::new();
    const KILLS: usize = 4;
    let test_started = Instant::now();
    for round in 0..KILLS {
        let cairn = Cairn::start(&data_dir, &args(&config));
        eprintln!("round {round}: started at {:?}", test_started.elapsed());
        // TCP, part one: lines that a completed commit covers (searchable = committed).
        let committed_ids: Vec<String> = (0..100).map(|n| format!("r{round}a{n}")).collect();
        let mut stream = TcpStream::connect(("127.0.0.1", cairn.syslog_port)).expect("connect");
        let lines: String = committed_ids
            .iter()
            .map(|id| format!("<13>Jan  5 10:00:00 h1 app: {token} {id}\n"))
            .collect();
        stream.write_all(lines.as_bytes()).expect("write");
        let deadline = Instant::now() + DEADLINE;
        loop {
            let counts = id_counts(&cairn, &token);
            if committed_ids.iter().all(|id| counts.contains_key(id)) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: tcp lines never indexed"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        tcp_committed.extend(committed_ids);
        eprintln!(
            "round {round}: tcp committed at {:?}",
            test_started.elapsed()
        );

        // Then HTTP and TCP senders run while the process is killed at a random moment.
        let stop = Arc::new(AtomicBool::new(false));
        let mut senders = Vec::new();
        for sender in 0..3 {
            let stop = Arc::clone(&stop);
            let acknowledged = Arc::clone(&acknowledged);
            let token = token.clone();
            let http = cairn.http;
            senders.push(std::thread::spawn(move || {
                let mut sent = Vec::new();
                let mut post = 0;
                while !stop.load(Ordering::SeqCst) {
                    let ids: Vec<String> = (0..25)
                        .map(|n| format!("r{round}s{sender}p{post}n{n}"))
                        .collect();
                    post += 1;
                    sent.extend(ids.iter().cloned());
                    let body = ndjson(&token, &ids, 200);
                    match http_request(http, "POST", "/api/v1/ingest", &[], &body) {
                        Ok(response) if response.status == 200 => {
                            acknowledged.lock().expect("lock").extend(ids);
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
                sent
            }));
        }
        let tcp_stop = Arc::clone(&stop);
        let tcp_token = token.clone();
        let tcp_sender = std::thread::spawn(move || {
            let mut chunk = 0;
            while !tcp_stop.load(Ordering::SeqCst) {
                let lines: String = (0..50)
                    .map(|n| {
                        format!("<13>Jan  5 10:00:00 h1 app: {tcp_token} r{round}c{chunk}n{n}\n")
                    })
                    .collect();
                chunk += 1;
                if stream.write_all(lines.as_bytes()).is_err() {
                    break;
                }
                // Pacing, not waiting: an unpaced sender would pile up far more than a debug
                // build indexes in the test's time.
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let pause = Duration::from_millis(200 + random.next() % 1300);
        std::thread::sleep(pause);
        cairn.kill();
        stop.store(true, Ordering::SeqCst);
        for sender in senders {
            http_sent.extend(sender.join().expect("http sender"));
        }
        tcp_sender.join().expect("tcp sender");
        eprintln!(
            "round {round}: killed at {:?}, {} acknowledged so far",
            test_started.elapsed(),
            acknowledged.lock().expect("lock").len()
        );
    }

    let cairn = Cairn::start(&data_dir, &args(&config));
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(
        acknowledged.len() > 1000,
        "too few acknowledged events to show anything: {}",
        acknowledged.len()
    );
    let stats = quiescent(&cairn);
    eprintln!("final: quiescent at {:?}: {stats}", test_started.elapsed());
    // The searcher reloads shortly after a commit: wait until it sees every committed document.
    let committed = stats["index_docs"].as_u64().expect("index_docs") as usize;
    let deadline = Instant::now() + DEADLINE;
    let counts = loop {
        let counts = id_counts(&cairn, &token);
        if counts.values().sum::<usize>() >= committed || Instant::now() >= deadline {
            break counts;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("final: searched at {:?}", test_started.elapsed());
    let duplicated: Vec<_> = counts.iter().filter(|(_, count)| **count > 1).collect();
    assert!(duplicated.is_empty(), "duplicated events: {duplicated:?}");
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|id| !counts.contains_key(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged http events lost (of {}), e.g. {:?}; stats {stats}",
        lost.len(),
        acknowledged.len(),
        &lost[..lost.len().min(5)]
    );
    let tcp_lost: Vec<_> = tcp_committed
        .iter()
        .filter(|id| !counts.contains_key(*id))
        .collect();
    assert!(
        tcp_lost.is_empty(),
        "committed tcp lines lost: {tcp_lost:?}"
    );
    // Nothing appears that was never sent.
    assert!(
        counts
            .keys()
            .all(|id| http_sent.contains(id) || id.contains('a') || id.contains('c')),
        "unknown ids"
    );
    // Sequence numbers are never handed out twice, across crashes and replays.
    let seqs: Vec<u64> = all_events(&cairn, &token)
        .iter()
        .map(|event| event["seq"].as_u64().expect("seq"))
        .collect();
    let unique_seqs: BTreeSet<u64> = seqs.iter().copied().collect();
    assert_eq!(unique_seqs.len(), seqs.len(), "a seq was reused");
    // One document per event in the whole index: no duplicate under another query either.
    let total: usize = counts.values().sum();
    assert_eq!(stats["index_docs"].as_u64(), Some(total as u64), "{stats}");
    assert_eq!(
        stats["reconcile"]["inputs"], stats["reconcile"]["outputs"],
        "{stats}"
    );
    // Segments the index has committed past are deleted across restarts.
    let wal_dir = data_dir.join("wal");
    assert!(
        segments(&wal_dir).len() <= 3,
        "old segments kept: {:?}",
        segments(&wal_dir)
    );
    cairn.stop();
}

#[test]
fn a_torn_wal_tail_is_cut_logged_and_counted() {
    let data = TempDir::new("waltorn");
    let token = unique_token("torn");
    let cairn = Cairn::start(data.path(), &[]);
    let ids: Vec<String> = (0..20).map(|n| format!("n{n}")).collect();
    let response = cairn.post("/api/v1/ingest", &[], &ndjson(&token, &ids, 10));
    assert_eq!(response.status, 200, "{}", response.text());
    cairn.search_until(&token, 20);
    cairn.stop();

    // A crash in the middle of the last write: the last record loses its end.
    let segments = segments(&data.path().join("wal"));
    let last = segments.last().expect("a segment");
    let length = std::fs::metadata(last).expect("metadata").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(last)
        .expect("open segment");
    file.set_len(length - 7).expect("truncate");
    drop(file);

    let cairn = Cairn::start(data.path(), &[]);
    let stats = cairn.stats();
    assert_eq!(stats["wal"]["recovery_truncated_records"], 1, "{stats}");
    assert!(
        stats["wal"]["recovery_truncated_bytes"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{stats}"
    );
    let log = cairn.log();
    assert!(log.contains("torn tail"), "{log}");
    // That record was indexed before the crash, so the index is ahead of the WAL: the WAL skips
    // ahead rather than reuse positions, and nothing is lost or duplicated.
    assert!(log.contains("skips ahead"), "{log}");
    let after = cairn.search(&token, "&limit=1000");
    assert_eq!(after["total"], 20, "{after}");
    let response = cairn.post(
        "/api/v1/ingest",
        &[],
        &ndjson(&token, &["later".into()], 10),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    cairn.search_until(&token, 21);
    let metrics = cairn.get("/metrics").text();
    assert!(
        metrics.contains("cairn_wal_recovery_truncated_records_total 1"),
        "{metrics}"
    );
    cairn.stop();
    let cairn = Cairn::start(data.path(), &[]);
    let counts = id_counts(&cairn, &token);
    assert_eq!(counts.len(), 21, "{counts:?}");
    assert!(counts.values().all(|count| *count == 1), "{counts:?}");
    cairn.stop();
}

#[test]
fn a_corrupt_record_in_an_earlier_segment_stops_the_start_with_the_way_out() {
    let data = TempDir::new("walcorrupt");
    // Long commit interval: the kill comes before any commit, so no segment is deleted.
    let config = config_args(
        data.path(),
        "[index]\ncommit_interval_ms = 600000\n\
         [wal]\nmax_segment_mb = 2\nmax_record_mb = 1\n\
         [http]\nmax_line_bytes = 65536\n",
    );
    let data_dir = data.path().join("data");
    let token = unique_token("corrupt");
    let cairn = Cairn::start(&data_dir, &args(&config));
    for post in 0..14 {
        let ids: Vec<String> = (0..500).map(|n| format!("p{post}n{n}")).collect();
        let response = cairn.post("/api/v1/ingest", &[], &ndjson(&token, &ids, 900));
        assert_eq!(response.status, 200, "{}", response.text());
    }
    cairn.kill();
    let wal_dir = data_dir.join("wal");
    let before = segments(&wal_dir);
    assert!(before.len() >= 3, "{before:?}");
    let victim = &before[1];
    let mut bytes = std::fs::read(victim).expect("read segment");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(victim, &bytes).expect("write segment");

    let (status, log) = Cairn::start_expecting_failure(&data_dir, &args(&config));
    assert!(!status.success(), "{log}");
    let name = victim.to_str().expect("utf-8");
    assert!(log.contains("corruption"), "{log}");
    assert!(log.contains(name), "names the file: {log}");
    assert!(log.contains("way out"), "{log}");
    assert!(log.contains(".corrupt"), "{log}");

    // The way out: move the segment aside; its events are lost, all others are replayed.
    std::fs::rename(victim, victim.with_extension("seg.corrupt")).expect("move aside");
    let config = config_args(
        data.path(),
        "[index]\ncommit_interval_ms = 100\n\
         [wal]\nmax_segment_mb = 2\nmax_record_mb = 1\n\
         [http]\nmax_line_bytes = 65536\n",
    );
    let cairn = Cairn::start(&data_dir, &args(&config));
    let stats = quiescent(&cairn);
    let counts = id_counts(&cairn, &token);
    assert!(counts.values().all(|count| *count == 1), "duplicates");
    assert!(
        counts.len() < 7000 && counts.len() >= 7000 - 3000,
        "{} of 7000; {stats}",
        counts.len()
    );
    let log = cairn.log();
    assert!(
        log.contains("gap") || log.contains("replaying from the oldest"),
        "the loss is logged: {log}"
    );
    cairn.stop();
}

#[test]
fn sigterm_drains_everything_acknowledged_quickly() {
    let data = TempDir::new("waldrain");
    // Nothing would be committed by the timer: only the drain at stop commits.
    let config = config_args(data.path(), "[index]\ncommit_interval_ms = 600000\n");
    let data_dir = data.path().join("data");
    let token = unique_token("drain");
    let cairn = Cairn::start(&data_dir, &args(&config));
    let mut expected = BTreeSet::new();
    for post in 0..20 {
        let ids: Vec<String> = (0..100).map(|n| format!("h{post}n{n}")).collect();
        let response = cairn.post("/api/v1/ingest", &[], &ndjson(&token, &ids, 50));
        assert_eq!(response.status, 200, "{}", response.text());
        expected.extend(ids);
    }
    let mut stream = TcpStream::connect(("127.0.0.1", cairn.syslog_port)).expect("connect");
    let tcp_ids: Vec<String> = (0..2000).map(|n| format!("t{n}")).collect();
    let lines: String = tcp_ids
        .iter()
        .map(|id| format!("<13>Jan  5 10:00:00 h1 app: {token} {id}\n"))
        .collect();
    stream.write_all(lines.as_bytes()).expect("write");
    drop(stream);
    expected.extend(tcp_ids);
    cairn.stats_until("every line received", |stats| {
        stats["received"].as_u64() == Some(4000)
    });
    let (log, took) = cairn.stop_timed();
    assert!(took < Duration::from_secs(10), "stop took {took:?}: {log}");

    let cairn = Cairn::start(&data_dir, &args(&config));
    let stats = cairn.stats();
    assert_eq!(
        stats["replayed"], 0,
        "the drain committed everything: {stats}"
    );
    let counts = id_counts(&cairn, &token);
    let found: BTreeSet<String> = counts.keys().cloned().collect();
    assert_eq!(found, expected);
    assert!(counts.values().all(|count| *count == 1));
    cairn.stop();
}

#[test]
fn overload_answers_429_with_retry_after_and_loses_nothing_that_got_200() {
    let data = TempDir::new("waloverload");
    let config = config_args(
        data.path(),
        "[pipeline]\nworkers = 1\nqueue_batches = 1\nindex_queue_batches = 1\n\
         [index]\ncommit_interval_ms = 100\n",
    );
    let data_dir = data.path().join("data");
    let token = unique_token("busy");
    let cairn = Cairn::start(&data_dir, &args(&config));
    let outcomes: Vec<(Vec<String>, u16, Option<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..12)
            .map(|client| {
                let token = &token;
                let http = cairn.http;
                scope.spawn(move || {
                    (0..8)
                        .map(|post| {
                            let ids: Vec<String> =
                                (0..400).map(|n| format!("c{client}p{post}n{n}")).collect();
                            let body = ndjson(token, &ids, 100);
                            let response = http_request(http, "POST", "/api/v1/ingest", &[], &body)
                                .expect("post");
                            let retry = response.header("retry-after").map(str::to_string);
                            (ids, response.status, retry)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().expect("client"))
            .collect()
    });
    let throttled: Vec<_> = outcomes
        .iter()
        .filter(|(_, status, _)| *status == 429)
        .collect();
    assert!(!throttled.is_empty(), "no 429 under overload");
    assert!(
        throttled
            .iter()
            .all(|(_, _, retry)| retry.as_deref() == Some("1")),
        "429 without Retry-After"
    );
    assert!(
        outcomes
            .iter()
            .all(|(_, status, _)| *status == 200 || *status == 429),
        "unexpected statuses"
    );
    let accepted: BTreeSet<String> = outcomes
        .iter()
        .filter(|(_, status, _)| *status == 200)
        .flat_map(|(ids, _, _)| ids.iter().cloned())
        .collect();
    assert!(!accepted.is_empty());
    let stats = quiescent(&cairn);
    assert_eq!(
        stats["http_throttled"].as_u64(),
        Some(throttled.len() as u64),
        "{stats}"
    );
    let counts = id_counts(&cairn, &token);
    let found: BTreeSet<String> = counts.keys().cloned().collect();
    // Everything that got 200 is there once; nothing of a refused request was taken.
    assert_eq!(found, accepted);
    assert!(counts.values().all(|count| *count == 1));
    assert_eq!(
        stats["received"].as_u64(),
        Some(accepted.len() as u64),
        "{stats}"
    );
    cairn.stop();
}

#[test]
fn a_full_disk_refuses_http_with_503_drops_udp_counted_and_pauses_tcp() {
    let data = TempDir::new("walfull");
    let full = config_args(
        data.path(),
        "[wal]\ndebug_fault_disk_budget_bytes = 60000\n[index]\ncommit_interval_ms = 100\n",
    );
    let data_dir = data.path().join("data");
    let token = unique_token("full");
    let cairn = Cairn::start(&data_dir, &args(&full));
    let mut acknowledged = BTreeSet::new();
    let mut refused = None;
    for post in 0..100 {
        let ids: Vec<String> = (0..10).map(|n| format!("p{post}n{n}")).collect();
        let response = cairn.post("/api/v1/ingest", &[], &ndjson(&token, &ids, 400));
        match response.status {
            200 => acknowledged.extend(ids),
            503 => {
                refused = Some(response);
                break;
            }
            other => panic!("unexpected {other}: {}", response.text()),
        }
    }
    let refused = refused.expect("the disk never filled up");
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(refused.json()["error"]["code"], "storage_unavailable");
    assert!(!acknowledged.is_empty());
    // Still ready: a full disk is not a failed WAL.
    assert_eq!(cairn.get("/readyz").status, 200);

    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    udp.send_to(
        format!("<13>Jan  5 10:00:00 h1 app: {token} udp1").as_bytes(),
        ("127.0.0.1", cairn.syslog_port),
    )
    .expect("send udp");
    cairn.stats_until("the udp datagram dropped as wal_unavailable", |stats| {
        stats["dropped"]["wal_unavailable"] == 1
    });

    let mut stream = TcpStream::connect(("127.0.0.1", cairn.syslog_port)).expect("connect");
    stream
        .write_all(format!("<13>Jan  5 10:00:00 h1 app: {token} tcp1\n").as_bytes())
        .expect("write");
    let stats = cairn.stats_until("the tcp line received and held", |stats| {
        stats["received_by_source"]["syslog_tcp"] == 1
            && stats["wal"]["disk_full_refusals"].as_u64().unwrap_or(0) >= 3
    });
    // Held, not dropped: the connection is paused while the WAL retries.
    assert_eq!(stats["dropped"]["wal_unavailable"], 1, "{stats}");
    assert_eq!(stats["connections_open"], 1, "{stats}");
    cairn.search_until(&token, acknowledged.len() as u64);
    drop(stream);
    cairn.stop();

    // Space is back: everything acknowledged is there exactly once.
    let cairn = Cairn::start(&data_dir, &[]);
    quiescent(&cairn);
    let counts = id_counts(&cairn, &token);
    let found: BTreeSet<String> = counts.keys().cloned().collect();
    assert_eq!(found, acknowledged);
    assert!(counts.values().all(|count| *count == 1));
    cairn.stop();
}

#[test]
fn a_failed_fsync_stops_ingest_and_readiness_and_loses_nothing_acknowledged() {
    let data = TempDir::new("walfsync");
    let failing = config_args(
        data.path(),
        "[wal]\ndebug_fault_fail_fsync_after_bytes = 40000\nfsync = \"always\"\n\
         [index]\ncommit_interval_ms = 100\n",
    );
    let data_dir = data.path().join("data");
    let token = unique_token("fsync");
    let cairn = Cairn::start(&data_dir, &args(&failing));
    let mut acknowledged = BTreeSet::new();
    let mut refused = None;
    for post in 0..100 {
        let ids: Vec<String> = (0..10).map(|n| format!("p{post}n{n}")).collect();
        let response = cairn.post("/api/v1/ingest", &[], &ndjson(&token, &ids, 400));
        match response.status {
            200 => acknowledged.extend(ids),
            503 => {
                refused = Some(response);
                break;
            }
            other => panic!("unexpected {other}: {}", response.text()),
        }
    }
    let refused = refused.expect("the fsync never failed");
    assert_eq!(
        refused.json()["error"]["code"],
        "unavailable",
        "{}",
        refused.text()
    );
    assert!(!acknowledged.is_empty());
    let ready = cairn.get("/readyz");
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert!(ready.text().contains("fsync"), "{}", ready.text());
    let metrics = cairn.get("/metrics").text();
    assert!(metrics.contains("cairn_wal_failed 1"), "{metrics}");
    // The process must be restarted; the records on disk are recovered then.
    let _ = cairn.kill();
    let cairn = Cairn::start(&data_dir, &[]);
    let stats = quiescent(&cairn);
    assert!(
        stats["replayed"].as_u64().unwrap_or(0) >= acknowledged.len() as u64,
        "{stats}"
    );
    let counts = id_counts(&cairn, &token);
    let missing: Vec<_> = acknowledged
        .iter()
        .filter(|id| !counts.contains_key(*id))
        .collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    assert!(counts.values().all(|count| *count == 1));
    cairn.stop();
}

#[test]
fn a_body_larger_than_a_wal_record_is_split_and_replays_after_a_crash() {
    let data = TempDir::new("walsplit");
    // No commit before the kill: everything comes back from the WAL.
    let config = config_args(
        data.path(),
        "[index]\ncommit_interval_ms = 600000\n\
         [wal]\nmax_segment_mb = 4\nmax_record_mb = 1\n\
         [http]\nmax_line_bytes = 65536\n",
    );
    let data_dir = data.path().join("data");
    let token = unique_token("split");
    let cairn = Cairn::start(&data_dir, &args(&config));
    let ids: Vec<String> = (0..3000).map(|n| format!("n{n}")).collect();
    let body = ndjson(&token, &ids, 1000);
    assert!(body.len() > 3 << 20);
    let response = cairn.post("/api/v1/ingest", &[], &body);
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["accepted"], 3000);
    let stats = cairn.stats();
    assert!(
        stats["wal"]["appended_records"].as_u64().unwrap_or(0) >= 4,
        "one record per MiB: {stats}"
    );
    cairn.kill();
    let config = config_args(
        data.path(),
        "[index]\ncommit_interval_ms = 100\n[http]\nmax_line_bytes = 65536\n[wal]\nmax_segment_mb = 4\nmax_record_mb = 1\n",
    );
    let cairn = Cairn::start(&data_dir, &args(&config));
    let stats = quiescent(&cairn);
    assert_eq!(stats["replayed"], 3000, "{stats}");
    let counts = id_counts(&cairn, &token);
    assert_eq!(counts.len(), 3000);
    assert!(counts.values().all(|count| *count == 1));
    // Replayed NDJSON lines decode as they did when accepted.
    let one = cairn.search(&format!("{token} AND n1234"), "");
    assert_eq!(one["events"][0]["app"], "waltest", "{one}");
    assert_eq!(one["events"][0]["source"], "http_ndjson", "{one}");
    cairn.stop();
}
