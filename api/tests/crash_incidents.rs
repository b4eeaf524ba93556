//! Correlation state survives crashes: the incident half of the crash test, over real sockets
//! against the real binary.
//!
//! - SIGKILL at random points, several times, while sshd failures with event timestamps stream
//!   in over HTTP NDJSON (acknowledged) and TCP syslog: afterwards every acknowledged event is
//!   searchable exactly once, and the incidents (rule, group, event and alert counts, first and
//!   last seen, status) equal those of an uninterrupted instance fed the same events. The stream
//!   holds bursts (5 in 60 s, sliding windows) and near misses decided when their window closes
//!   (2 or 3 in 120 s, timers), many of them open at each kill.
//! - SIGTERM: a burst split across a graceful restart fires exactly once (the open window comes
//!   back from the snapshot).
//!
//! Windows close by event time only (the allowed lateness covers the HTTP/TCP interleaving; a
//! final event far in the future closes everything), so the outcome does not depend on timing.
//! No sleeps to wait for work: the graceful stop drains and checkpoints, and every wait polls
//! with a deadline. (The crash test sleeps only to pick the random moment of each kill.)

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Cairn, DEADLINE, Random, TempDir, all_events, http_request};

const RULES: &str = r"
title: crash test ssh failure
id: crashtest-failure
name: crashtest_failure
level: low
logsource: {product: crashtest}
detection:
  sel:
    app: sshd
    message|contains: 'Failed password'
  condition: sel
---
title: crash test burst
id: crashtest-burst
level: high
correlation:
  type: event_count
  rules: [crashtest_failure]
  group-by: [src_ip]
  timespan: 60s
  condition: {gte: 5}
---
title: crash test few tries
id: crashtest-few
level: medium
correlation:
  type: event_count
  rules: [crashtest_failure]
  group-by: [src_ip]
  timespan: 120s
  condition: {gte: 2, lte: 3}
";

const CONFIG: &str = "[rules]\nbuiltin = false\n\
    [correlation]\nallowed_lateness_secs = 300\nsnapshot_interval_secs = 1\nalert_delay_ms = 100\n\
    [index]\ncommit_interval_ms = 150\n";

/// Event time of the stream's first event: 2026-01-05T00:00:00Z.
const T0: i64 = 1_767_571_200;
/// Event seconds between two events of the stream.
const STEP: i64 = 2;
const EVENTS: usize = 3600;
const CHUNK: usize = 20;
/// Chunks sent while the kills happen; the rest is sent after the last one.
const LIVE_CHUNKS: usize = EVENTS / CHUNK - 10;

/// Writes the rules and the config into `dir`; returns the CLI args.
fn setup_args(dir: &Path) -> Vec<String> {
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).expect("rules dir");
    std::fs::write(rules.join("crashtest.yml"), RULES).expect("write rules");
    let config = dir.join("cairn.toml");
    std::fs::write(&config, CONFIG).expect("write config");
    vec![
        "--config".into(),
        config.display().to_string(),
        "--rules".into(),
        rules.display().to_string(),
    ]
}

fn args(owned: &[String]) -> Vec<&str> {
    owned.iter().map(String::as_str).collect()
}

/// `2026-01-05T..Z` for an offset of less than a day from [`T0`].
fn rfc3339(seconds: i64) -> String {
    let offset = seconds - T0;
    assert!((0..86_400).contains(&offset), "stays within the day");
    format!(
        "2026-01-05T{:02}:{:02}:{:02}Z",
        offset / 3600,
        offset / 60 % 60,
        offset % 60
    )
}

/// The source address of event `n`: a few busy ones (bursts) and many rare ones (near misses).
fn source_of(n: usize) -> String {
    let mut mixed = (n as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    mixed ^= mixed >> 29;
    let roll = mixed % 100;
    let host = match roll {
        0..30 => 1,
        30..50 => 2,
        50..60 => 3,
        _ => 10 + roll % 14,
    };
    format!("10.7.0.{host}")
}

fn message(n: usize) -> String {
    format!(
        "Failed password for root from {} port {} ssh2",
        source_of(n),
        10_000 + n
    )
}

fn ndjson_line(n: usize) -> String {
    format!(
        r#"{{"message":"{}","app":"sshd","host":"h1","ts":"{}"}}"#,
        message(n),
        rfc3339(T0 + n as i64 * STEP)
    ) + "\n"
}

fn syslog_line(n: usize) -> String {
    format!(
        "<38>1 {} h1 sshd - - - {}\n",
        rfc3339(T0 + n as i64 * STEP),
        message(n)
    )
}

/// An event a day after the stream (inside the same day's format): closes every window.
fn flush_line() -> String {
    format!(
        r#"{{"message":"end of stream","app":"other","ts":"{}"}}"#,
        rfc3339(T0 + 86_399)
    ) + "\n"
}

fn post(cairn: &Cairn, body: &str) {
    let response = cairn.post("/api/v1/ingest", &[], body.as_bytes());
    assert_eq!(response.status, 200, "{}", response.text());
}

/// How many times each event number occurs in the index.
fn event_counts(cairn: &Cairn) -> BTreeMap<usize, usize> {
    let mut counts = BTreeMap::new();
    for event in all_events(cairn, "\"Failed password\"") {
        let message = event["message"].as_str().unwrap_or_default();
        let port: usize = message
            .split_whitespace()
            .skip_while(|word| *word != "port")
            .nth(1)
            .and_then(|port| port.parse().ok())
            .expect("port in message");
        *counts.entry(port - 10_000).or_insert(0) += 1;
    }
    counts
}

/// The incidents, comparable across instances (ids and wall times left out).
fn incidents(cairn: &Cairn) -> BTreeSet<String> {
    let response = cairn.get("/api/v1/incidents?limit=1000");
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()["incidents"]
        .as_array()
        .expect("incidents")
        .iter()
        .map(|incident| {
            format!(
                "{} {} events={} alerts={} {}..{} {}",
                incident["rule"].as_str().unwrap_or_default(),
                incident["group"],
                incident["event_count"],
                incident["alert_count"],
                incident["first_seen"].as_str().unwrap_or_default(),
                incident["last_seen"].as_str().unwrap_or_default(),
                incident["status"].as_str().unwrap_or_default(),
            )
        })
        .collect()
}

/// Ends the stream, stops gracefully (drain, checkpoint, commit), starts again and reads the
/// incidents.
fn final_incidents(cairn: Cairn, data_dir: &Path, args: &[&str]) -> (Cairn, BTreeSet<String>) {
    post(&cairn, &flush_line());
    cairn.stop();
    let cairn = Cairn::start(data_dir, args);
    let incidents = incidents(&cairn);
    (cairn, incidents)
}

/// Sends events `numbers` as the live stream does: the odd ones as syslog lines over `stream`,
/// then the even ones as one NDJSON POST. Returns the acknowledged (HTTP) numbers, or `None`
/// when the appliance is gone.
fn send_chunk(
    stream: &mut TcpStream,
    http: std::net::SocketAddr,
    numbers: &[usize],
) -> Option<Vec<usize>> {
    let lines: String = numbers
        .iter()
        .filter(|n| *n % 2 == 1)
        .map(|n| syslog_line(*n))
        .collect();
    stream.write_all(lines.as_bytes()).ok()?;
    let even: Vec<usize> = numbers.iter().copied().filter(|n| n % 2 == 0).collect();
    let body: String = even.iter().map(|n| ndjson_line(*n)).collect();
    match http_request(http, "POST", "/api/v1/ingest", &[], body.as_bytes()) {
        Ok(response) if response.status == 200 => Some(even),
        _ => None,
    }
}

/// The event numbers of chunk `chunk`.
fn chunk_numbers(chunk: usize) -> Vec<usize> {
    (chunk * CHUNK..(chunk + 1) * CHUNK)
        .filter(|n| *n < EVENTS)
        .collect()
}

#[test]
fn sigkill_at_random_points_gives_the_incidents_of_an_uninterrupted_run() {
    let work = TempDir::new("crashinc");
    let owned = setup_args(work.path());
    let args = args(&owned);
    let data_dir = work.path().join("crashed");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64
        | 1;
    eprintln!("kill-point seed {seed}");
    let mut random = Random(seed);
    let next_chunk = Arc::new(AtomicUsize::new(0));
    let acknowledged: Arc<Mutex<BTreeSet<usize>>> = Arc::default();
    let started = Instant::now();
    const KILLS: usize = 4;
    for round in 0..KILLS {
        let cairn = Cairn::start(&data_dir, &args);
        let stop = Arc::new(AtomicBool::new(false));
        let sender = {
            let stop = Arc::clone(&stop);
            let next_chunk = Arc::clone(&next_chunk);
            let acknowledged = Arc::clone(&acknowledged);
            let http = cairn.http;
            let mut stream =
                TcpStream::connect(("127.0.0.1", cairn.syslog_port)).expect("connect tcp");
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let chunk = next_chunk.fetch_add(1, Ordering::SeqCst);
                    // The last chunks are kept for the uninterrupted end.
                    if chunk >= LIVE_CHUNKS {
                        return;
                    }
                    let numbers = chunk_numbers(chunk);
                    // Odd events over TCP, even ones over HTTP, interleaved in event time.
                    let Some(even) = send_chunk(&mut stream, http, &numbers) else {
                        return;
                    };
                    acknowledged.lock().expect("lock").extend(even);
                    // Pacing, not waiting: spreads the stream over the kills.
                    std::thread::sleep(Duration::from_millis(15));
                }
            })
        };
        std::thread::sleep(Duration::from_millis(300 + random.next() % 1200));
        cairn.kill();
        stop.store(true, Ordering::SeqCst);
        sender.join().expect("sender");
        eprintln!(
            "round {round}: killed at {:?} after chunk {}",
            started.elapsed(),
            next_chunk.load(Ordering::SeqCst)
        );
    }
    // The rest of the stream without a kill.
    let cairn = Cairn::start(&data_dir, &args);
    let mut stream = TcpStream::connect(("127.0.0.1", cairn.syslog_port)).expect("connect tcp");
    let mut tcp_rest = Vec::new();
    let rest_from = next_chunk.load(Ordering::SeqCst).min(LIVE_CHUNKS);
    for chunk in rest_from..EVENTS.div_ceil(CHUNK) {
        let numbers = chunk_numbers(chunk);
        tcp_rest.extend(numbers.iter().copied().filter(|n| n % 2 == 1));
        let even = send_chunk(&mut stream, cairn.http, &numbers).expect("running");
        acknowledged.lock().expect("lock").extend(even);
    }
    // Every TCP line of the last part is in before the stream ends.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let counts = event_counts(&cairn);
        if tcp_rest.iter().all(|n| counts.contains_key(n)) {
            break;
        }
        assert!(Instant::now() < deadline, "tcp lines never indexed");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Windows close by event time: the interleaving stays within the allowed lateness.
    let stats = cairn.stats_until("correlation figures", |stats| {
        stats["correlation"]["observations"].as_u64() > Some(0)
    });
    assert_eq!(stats["correlation"]["late"], 0, "{stats}");
    let (cairn, crashed) = final_incidents(cairn, &data_dir, &args);
    eprintln!("crashed run done at {:?}", started.elapsed());

    // Every acknowledged event is searchable exactly once; the counters reconcile. What a
    // restart replays is committed shortly after it: wait until the searcher sees every
    // committed document (all but the end-of-stream event are failures).
    let stats = cairn.stats_until("quiescence", |stats| {
        stats["reconcile"]["in_flight"] == 0
            && stats["queues"]["work_batches"] == 0
            && stats["queues"]["index_batches"] == 0
    });
    let committed = stats["index_docs"].as_u64().expect("index_docs") as usize;
    let deadline = Instant::now() + DEADLINE;
    let counts = loop {
        let counts = event_counts(&cairn);
        if counts.values().sum::<usize>() + 1 >= committed || Instant::now() >= deadline {
            break counts;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let duplicated: Vec<_> = counts.iter().filter(|(_, count)| **count > 1).collect();
    assert!(duplicated.is_empty(), "duplicated events: {duplicated:?}");
    let acknowledged = acknowledged.lock().expect("lock").clone();
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|n| !counts.contains_key(n))
        .collect();
    assert!(lost.is_empty(), "acknowledged events lost: {lost:?}");
    let stats = cairn.stats_until("quiescence", |stats| {
        stats["reconcile"]["in_flight"] == 0
            && stats["reconcile"]["inputs"] == stats["reconcile"]["outputs"]
    });
    assert_eq!(
        stats["reconcile"]["inputs"], stats["reconcile"]["outputs"],
        "{stats}"
    );
    let survivors: Vec<usize> = counts.keys().copied().collect();
    assert!(
        survivors.len() > EVENTS / 2,
        "too few events survived to show anything: {}",
        survivors.len()
    );
    cairn.stop();

    // The same events, in order, into an instance that is never interrupted.
    let reference_dir = work.path().join("reference");
    let reference = Cairn::start(&reference_dir, &args);
    for chunk in survivors.chunks(200) {
        post(
            &reference,
            &chunk.iter().map(|n| ndjson_line(*n)).collect::<String>(),
        );
    }
    let (reference, uninterrupted) = final_incidents(reference, &reference_dir, &args);
    reference.stop();
    eprintln!("reference run done at {:?}", started.elapsed());

    let bursts = uninterrupted
        .iter()
        .filter(|incident| incident.starts_with("crashtest-burst"))
        .count();
    let near_misses = uninterrupted
        .iter()
        .filter(|incident| incident.starts_with("crashtest-few"))
        .count();
    assert!(
        bursts >= 3 && near_misses >= 3,
        "the stream should open several incidents of both rules: {uninterrupted:#?}"
    );
    let only_crashed: Vec<_> = crashed.difference(&uninterrupted).collect();
    let only_reference: Vec<_> = uninterrupted.difference(&crashed).collect();
    assert!(
        only_crashed.is_empty() && only_reference.is_empty(),
        "incidents differ (seed {seed}):\n  only after crashes: {only_crashed:#?}\n  only uninterrupted: {only_reference:#?}"
    );
}

#[test]
fn a_burst_split_across_a_graceful_restart_fires_exactly_once() {
    let work = TempDir::new("termburst");
    let owned = setup_args(work.path());
    let args = args(&owned);
    let data_dir = work.path().join("data");
    let line = |n: i64| {
        format!(
            r#"{{"message":"Failed password for admin from 10.9.9.9 port {n} ssh2","app":"sshd","ts":"{}"}}"#,
            rfc3339(T0 + n)
        ) + "\n"
    };
    let cairn = Cairn::start(&data_dir, &args);
    post(&cairn, &(0..3).map(line).collect::<String>());
    let (log, took) = cairn.stop_timed();
    assert!(took < Duration::from_secs(10), "stop took {took:?}");
    assert!(
        !log.contains("cannot commit a correlation checkpoint"),
        "{log}"
    );
    let cairn = Cairn::start(&data_dir, &args);
    post(&cairn, &(3..5).map(line).collect::<String>());
    post(&cairn, &flush_line());
    let log = cairn.stop();
    assert!(
        log.contains("correlation resumes from its checkpoint")
            && log.contains("correlation state restored from its snapshot"),
        "{log}"
    );
    let cairn = Cairn::start(&data_dir, &args);
    let incidents = incidents(&cairn);
    let bursts: Vec<&String> = incidents
        .iter()
        .filter(|incident| incident.starts_with("crashtest-burst"))
        .collect();
    assert_eq!(
        bursts.len(),
        1,
        "one burst incident: {incidents:#?}\nlog of the second run:\n{log}"
    );
    assert!(
        bursts[0].contains("events=5 alerts=1"),
        "the window holds the events from before the restart: {bursts:?}"
    );
    cairn.stop();
}
