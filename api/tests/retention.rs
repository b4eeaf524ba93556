//! Time partitions and retention through the real binary: events of several days (NDJSON with
//! old timestamps) land in one partition per UTC day, visible in `/api/v1/stats`; a restart with
//! `[index] retention_days` drops the oldest partitions while search keeps working, events older
//! than retention are counted as expired, and a disk budget drops all but the newest partition.
//! When the disk fills anyway (the WAL's fault seam `debug_fault_disk_full_while_exists`), ingest
//! refuses with 503 and TCP pauses, and both recover by themselves once space returns, without a
//! restart and without losing or duplicating what was acknowledged. SIGKILLs while every commit
//! touches several partitions lose and duplicate nothing acknowledged (exactly once across
//! partitions).

mod common;

use std::io::Write as _;
use std::net::TcpStream;
use std::time::Instant;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{Cairn, DEADLINE, TempDir, all_events, args, config_args, http_request, unique_token};
use serde_json::{Value, json};

const DAY_SECS: i64 = 86_400;

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// Noon (UTC) of today: events "N days ago" from it fall in distinct days whatever the time of
/// the run, and none is in the future by more than a day.
fn noon_today() -> i64 {
    now_secs() / DAY_SECS * DAY_SECS + DAY_SECS / 2
}

/// Sends `per_day` events `days_ago` days before `now`, each message `<token> d<days_ago>`.
fn send_days(cairn: &Cairn, token: &str, now: i64, days_ago: &[i64], per_day: usize) {
    let body: String = days_ago
        .iter()
        .flat_map(|days| (0..per_day).map(move |n| (days, n)))
        .map(|(days, n)| {
            json!({
                "ts": now - days * DAY_SECS - n as i64,
                "host": "retention-test",
                "message": format!("{token} d{days} n{n}"),
            })
            .to_string()
                + "\n"
        })
        .collect();
    let response = cairn.post("/api/v1/ingest", &[], body.as_bytes());
    assert_eq!(response.status, 200, "{}", response.text());
}

fn partition_names(stats: &Value) -> Vec<String> {
    stats["index"]["partitions"]
        .as_array()
        .unwrap_or_else(|| panic!("no partitions in {stats}"))
        .iter()
        .map(|partition| partition["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The `d<N>` words of the events found for `token`, sorted.
fn days_found(cairn: &Cairn, token: &str) -> Vec<String> {
    let mut days: Vec<String> = all_events(cairn, token)
        .iter()
        .filter_map(|event| {
            event["message"]
                .as_str()
                .and_then(|message| message.split_whitespace().nth(1))
                .map(str::to_owned)
        })
        .collect();
    days.sort();
    days.dedup();
    days
}

#[test]
fn old_days_get_partitions_and_retention_drops_the_oldest_while_search_keeps_working() {
    let data = TempDir::new("retention-age");
    let data_dir = data.path().join("data");
    let token = unique_token("keep");
    let now = noon_today();
    let cairn = Cairn::start(&data_dir, &[]);
    send_days(&cairn, &token, now, &[10, 6, 1, 0], 5);
    cairn.search_until(&token, 20);
    let stats = cairn.stats_until("four partitions", |stats| {
        stats["index"]["partitions"].as_array().map(Vec::len) == Some(4)
    });
    let names = partition_names(&stats);
    assert!(names.iter().all(|name| name.ends_with("-24h")), "{names:?}");
    assert!(stats["index"]["bytes"].as_u64().unwrap_or(0) > 0, "{stats}");
    cairn.stop();

    // Three days of retention: the partitions of 10 and 6 days ago go, at once on start.
    let config = config_args(data.path(), "[index]\nretention_days = 3\n");
    let cairn = Cairn::start(&data_dir, &args(&config));
    let stats = cairn.stats_until("two partitions dropped", |stats| {
        stats["index"]["dropped_partitions"] == 2
    });
    assert_eq!(partition_names(&stats), names[2..], "{stats}");
    assert_eq!(stats["index"]["dropped_events"], 10, "{stats}");
    assert_eq!(days_found(&cairn, &token), ["d0", "d1"]);
    assert_eq!(cairn.search(&token, "")["total"], 10);

    // An event older than retention is not indexed, and counted as expired.
    let late = unique_token("late");
    send_days(&cairn, &late, now, &[20], 1);
    send_days(&cairn, &late, now, &[0], 1);
    cairn.search_until(&late, 1);
    let stats = cairn.stats_until("the old event counted as expired", |stats| {
        stats["dropped"]["expired"] == 1
    });
    assert_eq!(cairn.search(&late, "")["total"], 1, "{stats}");
    assert_eq!(partition_names(&stats).len(), 2, "{stats}");
    cairn.stop();
}

#[test]
fn a_disk_budget_drops_all_but_the_newest_partition() {
    let data = TempDir::new("retention-disk");
    let data_dir = data.path().join("data");
    let token = unique_token("budget");
    let now = noon_today();
    let cairn = Cairn::start(&data_dir, &[]);
    send_days(&cairn, &token, now, &[3, 2, 0], 4);
    cairn.search_until(&token, 12);
    cairn.stop();

    let config = config_args(data.path(), "[index]\nmax_disk_bytes = 1\n");
    let cairn = Cairn::start(&data_dir, &args(&config));
    let stats = cairn.stats_until("only the newest partition left", |stats| {
        stats["index"]["dropped_partitions"] == 2
    });
    assert_eq!(partition_names(&stats).len(), 1, "{stats}");
    assert_eq!(days_found(&cairn, &token), ["d0"]);
    // Still writable: the newest partition takes new events.
    let more = unique_token("more");
    send_days(&cairn, &more, now, &[0], 3);
    cairn.search_until(&more, 3);
    let metrics = cairn.get("/metrics").text();
    assert!(
        metrics.contains("cairn_index_dropped_partitions_total 2"),
        "{metrics}"
    );
    cairn.stop();
}

#[test]
fn a_full_disk_refuses_ingest_and_recovers_by_itself_when_space_returns() {
    let data = TempDir::new("retention-full");
    let data_dir = data.path().join("data");
    let flag = data.path().join("disk-is-full");
    let config = config_args(
        data.path(),
        &format!(
            "[wal]\ndebug_fault_disk_full_while_exists = \"{}\"\n[index]\ncommit_interval_ms = 100\n",
            flag.display()
        ),
    );
    let cairn = Cairn::start(&data_dir, &args(&config));
    let token = unique_token("full");
    let now = now_secs();
    send_days(&cairn, &token, now, &[0], 3);

    std::fs::write(&flag, b"").expect("fill the disk");
    let body = json!({"ts": now, "message": format!("{token} refused")}).to_string();
    let refused = cairn.post("/api/v1/ingest", &[], body.as_bytes());
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.json()["error"]["code"], "storage_unavailable");
    assert!(refused.header("retry-after").is_some());
    assert_eq!(
        cairn.get("/readyz").status,
        200,
        "a full disk is not a failed WAL"
    );
    // A TCP line waits (the connection pauses) instead of being dropped.
    let mut stream = TcpStream::connect(("127.0.0.1", cairn.syslog_port)).expect("connect");
    stream
        .write_all(format!("<13>Jan  5 10:00:00 h1 app: {token} tcpheld\n").as_bytes())
        .expect("write");
    cairn.stats_until("the tcp line held by the full disk", |stats| {
        stats["received_by_source"]["syslog_tcp"] == 1
            && stats["wal"]["disk_full_refusals"].as_u64().unwrap_or(0) >= 2
    });

    // Space returns: no restart, the next request is accepted and the held line goes through.
    std::fs::remove_file(&flag).expect("free the disk");
    let deadline = Instant::now() + DEADLINE;
    let accepted = loop {
        let body = json!({"ts": now, "message": format!("{token} accepted")}).to_string();
        let response = cairn.post("/api/v1/ingest", &[], body.as_bytes());
        if response.status == 200 || Instant::now() >= deadline {
            break response;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(accepted.status, 200, "{}", accepted.text());
    cairn.search_until(&token, 5);
    let messages: Vec<String> = all_events(&cairn, &token)
        .iter()
        .map(|event| event["message"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(messages.len(), 5, "{messages:?}");
    assert!(messages.iter().any(|message| message.ends_with("tcpheld")));
    assert!(messages.iter().any(|message| message.ends_with("accepted")));
    assert!(!messages.iter().any(|message| message.ends_with("refused")));
    let stats = cairn.stats();
    assert_eq!(stats["dropped_total"], 0, "{stats}");
    drop(stream);
    cairn.stop();
}

/// How many times each id (the word after the token) is found.
fn id_counts(cairn: &Cairn, token: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for event in all_events(cairn, token) {
        let id = event["message"]
            .as_str()
            .and_then(|message| message.split_whitespace().nth(1))
            .unwrap_or_default()
            .to_owned();
        *counts.entry(id).or_insert(0) += 1;
    }
    counts
}

#[test]
fn sigkill_while_commits_span_partitions_loses_and_duplicates_nothing_acknowledged() {
    let data = TempDir::new("retention-crash");
    let data_dir = data.path().join("data");
    let config = config_args(data.path(), "[index]\ncommit_interval_ms = 20\n");
    let token = unique_token("crash");
    let noon = noon_today();
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    for round in 0..3usize {
        let cairn = Cairn::start(&data_dir, &args(&config));
        let stop = Arc::new(AtomicBool::new(false));
        let posts = Arc::new(AtomicUsize::new(0));
        let sender = {
            let (stop, posts, acknowledged) = (
                Arc::clone(&stop),
                Arc::clone(&posts),
                Arc::clone(&acknowledged),
            );
            let (token, http) = (token.clone(), cairn.http);
            std::thread::spawn(move || {
                let mut post = 0;
                while !stop.load(Ordering::SeqCst) {
                    // Every post holds events of three days: each commit touches three partitions.
                    let ids: Vec<String> =
                        (0..30).map(|n| format!("r{round}p{post}n{n}")).collect();
                    let body: String = ids
                        .iter()
                        .enumerate()
                        .map(|(n, id)| {
                            let ts = noon - (n as i64 % 3) * DAY_SECS;
                            json!({"ts": ts, "message": format!("{token} {id}")}).to_string() + "\n"
                        })
                        .collect();
                    post += 1;
                    match http_request(http, "POST", "/api/v1/ingest", &[], body.as_bytes()) {
                        Ok(response) if response.status == 200 => {
                            acknowledged.lock().expect("lock").extend(ids);
                            posts.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            })
        };
        // Kill after a different number of acknowledged posts each round, mid-stream.
        let kill_after = 5 + 7 * round;
        let deadline = Instant::now() + DEADLINE;
        while posts.load(Ordering::SeqCst) < kill_after {
            assert!(Instant::now() < deadline, "round {round}: posts stalled");
            std::thread::yield_now();
        }
        cairn.kill();
        stop.store(true, Ordering::SeqCst);
        sender.join().expect("sender");
    }
    let cairn = Cairn::start(&data_dir, &[]);
    let acknowledged = acknowledged.lock().expect("lock").clone();
    cairn.search_until(&token, acknowledged.len() as u64);
    let counts = id_counts(&cairn, &token);
    let duplicated: Vec<_> = counts.iter().filter(|(_, count)| **count > 1).collect();
    assert!(duplicated.is_empty(), "duplicated: {duplicated:?}");
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|id| !counts.contains_key(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "lost {} of {}: {lost:?}; found {}; stats {}; log:\n{}",
        lost.len(),
        acknowledged.len(),
        counts.len(),
        cairn.stats(),
        cairn.log()
    );
    let stats = cairn.stats();
    assert_eq!(partition_names(&stats).len(), 3, "{stats}");
    cairn.stop();
}
