//! The live tail against the real binary: a client gets exactly the events matching its query,
//! in order; a client that never reads is cut off with `event: overflow` while every event is
//! still acknowledged and indexed (ingest never waits on a tail client).

mod common;

use std::time::{Duration, Instant};

use common::sse::{Next, SseClient, SseEvent};
use common::{Cairn, DEADLINE, TempDir, unique_token};
use serde_json::Value;

/// Opens `/api/v1/tail?q=…` and checks the stream started.
fn open_tail(cairn: &Cairn, query: &str) -> SseClient {
    let path = format!("/api/v1/tail?q={}", common::url_encode(query));
    let client = SseClient::open(cairn.http, "GET", &path, &[]);
    assert_eq!(client.status, 200, "tail {query}");
    assert!(
        client
            .header("content-type")
            .is_some_and(|value| value.starts_with("text/event-stream")),
        "{:?}",
        client.headers
    );
    client
}

/// Ingests `lines` (NDJSON) and asserts they were all accepted; retries a 429 (pipeline full)
/// and returns how many 429s it met.
fn ingest(cairn: &Cairn, lines: &str) -> u64 {
    let deadline = Instant::now() + DEADLINE;
    let mut throttled = 0;
    loop {
        let response = cairn.post("/api/v1/ingest", &[], lines.as_bytes());
        if response.status == 429 && Instant::now() < deadline {
            throttled += 1;
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.json()["rejected"], 0, "{}", response.text());
        return throttled;
    }
}

/// Reads events until `count` were received (the deadline fails the test).
fn read_events(client: &mut SseClient, count: usize) -> Vec<SseEvent> {
    let deadline = Instant::now() + DEADLINE;
    let mut events = Vec::new();
    while events.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        match client.next_event(left) {
            Next::Event(event) => events.push(event),
            Next::End => panic!("stream ended after {} of {count} events", events.len()),
            Next::Timeout => panic!("only {} of {count} events in time", events.len()),
        }
    }
    events
}

fn message_of(event: &SseEvent) -> String {
    let hit: Value = serde_json::from_str(&event.data).expect("event data is JSON");
    assert_eq!(
        event.id.as_deref(),
        hit["seq"].as_u64().map(|seq| seq.to_string()).as_deref(),
        "the SSE id is the event's seq"
    );
    hit["message"].as_str().expect("message").to_string()
}

#[test]
fn tail_sends_exactly_the_matching_events_in_order() {
    let dir = TempDir::new("tail-exact");
    let cairn = Cairn::start(&dir.path().join("data"), &[]);
    let app = unique_token("tailapp");
    // The same query language as search: a field filter, a word, a negation.
    let mut client = open_tail(&cairn, &format!("app:{app} AND keep AND NOT skip"));
    let mut expected = Vec::new();
    for round in 0..5 {
        let mut lines = String::new();
        for index in 0..200 {
            let number = round * 200 + index;
            let (message, matches) = match number % 4 {
                0 => (format!("keep event {number}"), true),
                1 => (format!("keep skip event {number}"), false),
                2 => (format!("other event {number}"), false),
                _ => (format!("keep event {number}"), false), // another app
            };
            let line_app = if number % 4 == 3 { "elsewhere" } else { &app };
            lines.push_str(&format!(
                "{{\"message\":\"{message}\",\"app\":\"{line_app}\"}}\n"
            ));
            if matches {
                expected.push(message);
            }
        }
        ingest(&cairn, &lines);
    }
    let received: Vec<String> = read_events(&mut client, expected.len())
        .iter()
        .map(message_of)
        .collect();
    assert_eq!(received, expected);

    // Nothing else was sent: the next event is this sentinel, not a late extra.
    ingest(
        &cairn,
        &format!(
            "{{\"message\":\"other {app}\",\"app\":\"{app}\"}}\n{{\"message\":\"keep sentinel\",\"app\":\"{app}\"}}\n"
        ),
    );
    let next = read_events(&mut client, 1);
    assert_eq!(message_of(&next[0]), "keep sentinel");

    // A bad query is refused before the stream starts.
    let bad = SseClient::open(cairn.http, "GET", "/api/v1/tail?q=%28unclosed", &[]);
    assert_eq!(bad.status, 400);
    cairn.stop();
}

#[test]
fn a_slow_tail_client_is_cut_off_and_does_not_slow_ingest() {
    let dir = TempDir::new("tail-slow");
    let config = dir.path().join("cairn.toml");
    std::fs::write(&config, "[tail]\nbuffer_events = 1000\n").expect("write config");
    let cairn = Cairn::start(
        &dir.path().join("data"),
        &["--config", config.to_str().expect("path")],
    );
    let app = unique_token("slowtail");
    // Never read until the end: the kernel's socket buffers fill, then its 1000-event buffer
    // (more than one round of 500 events, so only not reading can fill it).
    let mut stalled = open_tail(&cairn, "");
    // A reader on its own thread with a narrow query gets every match meanwhile, up to the
    // closing marker.
    let mut reader = open_tail(&cairn, &format!("app:{app} AND marker"));
    let reading = std::thread::spawn(move || {
        let mut messages = Vec::new();
        loop {
            let Next::Event(event) = reader.next_event(DEADLINE) else {
                panic!("the reading client lost its stream after {messages:?}");
            };
            assert_eq!(
                event.event, "",
                "the reading client was cut off: {}",
                event.data
            );
            let message = message_of(&event);
            if message == "marker end" {
                return messages;
            }
            messages.push(message);
        }
    });

    const ROUND: usize = 500;
    const MAX_ROUNDS: usize = 400;
    let padding = "x".repeat(200);
    let mut sent = 0usize;
    let mut markers = Vec::new();
    let mut throttled = 0;
    let mut cut_off = false;
    for round in 0..MAX_ROUNDS {
        let mut lines = String::with_capacity(ROUND * 300);
        for index in 0..ROUND {
            let number = round * ROUND + index;
            if index == 0 {
                let marker = format!("marker {number}");
                lines.push_str(&format!("{{\"message\":\"{marker}\",\"app\":\"{app}\"}}\n"));
                markers.push(marker);
            } else {
                lines.push_str(&format!(
                    "{{\"message\":\"filler {number} {padding}\",\"app\":\"{app}\"}}\n"
                ));
            }
        }
        throttled += ingest(&cairn, &lines);
        sent += ROUND;
        let stats = cairn.stats();
        if stats["tail"]["cut_off"]["slow_client"].as_u64() == Some(1) {
            cut_off = true;
            break;
        }
    }
    assert!(
        cut_off,
        "the stalled client was never cut off after {sent} events"
    );

    // The reading client got every marker, in order, and was not cut off.
    ingest(
        &cairn,
        &format!("{{\"message\":\"marker end\",\"app\":\"{app}\"}}\n"),
    );
    sent += 1;
    let received = reading.join().expect("reading client");
    assert_eq!(received, markers);

    // Ingest did not wait: every event was acknowledged above and is indexed, none dropped.
    let stats = cairn.stats_until("every event indexed", |stats| {
        stats["indexed"].as_u64() == Some(sent as u64)
    });
    assert_eq!(stats["dropped_total"], 0, "{stats}");
    assert_eq!(stats["tail"]["cut_off"]["fell_behind"], 0, "{stats}");
    eprintln!(
        "{sent} events ingested while a tail client stalled ({throttled} requests met 429 and were retried)"
    );

    // The stalled client, read at last: a gapless prefix of the events, then `overflow`, then
    // the end of the stream.
    let mut previous_seq = 0u64;
    let mut delivered = 0u64;
    let overflow = loop {
        match stalled.next_event(DEADLINE) {
            Next::Event(event) if event.event == "overflow" => break event,
            Next::Event(event) => {
                let hit: Value = serde_json::from_str(&event.data).expect("json");
                let seq = hit["seq"].as_u64().expect("seq");
                assert!(
                    previous_seq == 0 || seq == previous_seq + 1,
                    "gap before the cut-off: {previous_seq} then {seq}"
                );
                previous_seq = seq;
                delivered += 1;
            }
            Next::End => panic!("the stream ended without an overflow event"),
            Next::Timeout => panic!("no overflow event in time after {delivered} events"),
        }
    };
    let reason: Value = serde_json::from_str(&overflow.data).expect("json");
    assert_eq!(reason["reason"], "slow_client", "{reason}");
    assert!(delivered < sent as u64, "{delivered} of {sent}");
    assert!(matches!(stalled.next_event(DEADLINE), Next::End));
    cairn.stop();
}
