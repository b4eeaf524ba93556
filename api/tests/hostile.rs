//! Hostile input against the real binary: JSON beyond the depth and field limits, invalid UTF-8,
//! CR/LF and terminal escape sequences inside messages, and rules whose regexes are over the size
//! cap. Each case checks the clear error or flag, the counter, and that nothing else is lost.
//! (Gzip bombs, 413s and oversized TCP frames are in `end_to_end.rs`.)

mod common;

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::process::Command;

use common::{Cairn, TempDir, unique_token};
use serde_json::Value;

fn flags(event: &Value) -> Vec<&str> {
    event["flags"]
        .as_array()
        .expect("flags")
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

fn post_ndjson(cairn: &Cairn, body: &[u8]) -> Value {
    let response = cairn.post(
        "/api/v1/ingest",
        &[("Content-Type", "application/x-ndjson")],
        body,
    );
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

fn metrics(cairn: &Cairn) -> String {
    let response = cairn.get("/metrics");
    assert_eq!(response.status, 200);
    response.text()
}

#[test]
fn json_nested_beyond_max_json_depth_is_rejected_counted_and_the_other_lines_kept() {
    let data = TempDir::new("deep-json");
    let cairn = Cairn::start(data.path(), &["--syslog-udp", "off"]);
    let token = unique_token("deep");
    // 40 levels, over the default parse.max_json_depth of 16.
    let deep = format!(
        r#"{{"message":"{token} deep","a":{}1{}}}"#,
        r#"{"b":"#.repeat(40),
        "}".repeat(40)
    );
    let body =
        format!("{{\"message\":\"{token} before\"}}\n{deep}\n{{\"message\":\"{token} after\"}}\n");
    let answer = post_ndjson(&cairn, body.as_bytes());
    assert_eq!(answer["accepted"], 2, "{answer}");
    assert_eq!(answer["rejected"], 1, "{answer}");
    let error = &answer["errors"][0];
    assert_eq!(error["line"], 2, "{answer}");
    assert_eq!(error["reason"], "too_deep", "{answer}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|message| message.contains("nesting deeper than 16")),
        "{answer}"
    );

    let found = cairn.search_until(&token, 2);
    assert_eq!(found["total"], 2, "{found}");
    let stats = cairn.stats_until("the rejection counted", |stats| {
        stats["rejected"]["too_deep"] == 1
    });
    assert_eq!(stats["rejected_total"], 1, "{stats}");
    assert!(
        metrics(&cairn).contains("cairn_rejected_events_total{reason=\"too_deep\"} 1"),
        "too_deep in /metrics"
    );
}

#[test]
fn json_with_more_fields_than_max_json_fields_is_kept_truncated_and_flagged() {
    let data = TempDir::new("wide-json");
    let cairn = Cairn::start(data.path(), &["--syslog-udp", "off"]);
    let token = unique_token("wide");
    // 300 fields, over the default parse.max_json_fields of 256.
    let fields: String = (0..300).map(|n| format!(r#","k{n}":{n}"#)).collect();
    let body = format!(
        "{{\"message\":\"{token} wide\"{fields}}}\n{{\"message\":\"{token} narrow\",\"k0\":0}}\n"
    );
    let answer = post_ndjson(&cairn, body.as_bytes());
    assert_eq!(answer["accepted"], 2, "{answer}");
    assert_eq!(answer["rejected"], 0, "{answer}");

    cairn.search_until(&token, 2);
    let wide = cairn.search(&format!("{token} AND flags:fields_truncated"), "");
    assert_eq!(wide["total"], 1, "only the wide line is flagged: {wide}");
    let event = &wide["events"][0];
    assert!(event["message"].as_str().unwrap_or("").ends_with("wide"));
    let extracted = event["fields"].as_object().expect("fields");
    assert!(
        extracted.len() <= 256,
        "{} fields extracted",
        extracted.len()
    );
    assert_eq!(extracted["k0"], 0, "{event}");
    assert!(
        !extracted.contains_key("k299"),
        "the excess is not extracted"
    );
    assert!(flags(event).contains(&"fields_truncated"), "{event}");
    let stats = cairn.stats_until("the truncation counted", |stats| {
        stats["fields_truncated"] == 1 && stats["indexed"] == 2
    });
    assert_eq!(stats["rejected_total"], 0, "{stats}");
    assert!(
        metrics(&cairn).contains("cairn_fields_truncated_events_total 1"),
        "fields_truncated in /metrics"
    );
}

#[test]
fn invalid_utf8_over_tcp_is_indexed_lossily_and_flagged() {
    let data = TempDir::new("utf8");
    let cairn = Cairn::start(data.path(), &["--syslog-udp", "off"]);
    let token = unique_token("utf");
    let mut line = format!("<13>Jan  5 10:00:00 h1 app: {token} bad ").into_bytes();
    line.extend_from_slice(b"\xff\xfe\xc3 bytes\n");
    line.extend_from_slice(format!("<13>Jan  5 10:00:01 h1 app: {token} good\n").as_bytes());
    let mut stream = TcpStream::connect(("127.0.0.1", cairn.syslog_port)).expect("connect");
    stream.write_all(&line).expect("write");
    drop(stream);

    let found = cairn.search_until(&token, 2);
    assert_eq!(found["total"], 2, "{found}");
    let bad = cairn.search(&format!("{token} AND flags:invalid_utf8"), "");
    assert_eq!(bad["total"], 1, "{bad}");
    let event = &bad["events"][0];
    assert_eq!(event["app"], "app", "still parsed: {event}");
    assert_eq!(
        event["message"],
        format!("{token} bad \u{fffd}\u{fffd}\u{fffd} bytes"),
        "{event}"
    );
    assert!(!flags(event).contains(&"parse_error"), "{event}");
    let stats = cairn.stats_until("the invalid line counted", |stats| {
        stats["invalid_utf8"] == 1 && stats["indexed"] == 2
    });
    assert_eq!(stats["dropped_total"], 0, "{stats}");
    assert!(
        metrics(&cairn).contains("cairn_invalid_utf8_events_total 1"),
        "invalid_utf8 in /metrics"
    );
}

#[test]
fn newlines_inside_a_frame_never_forge_extra_events() {
    let data = TempDir::new("forge");
    let cairn = Cairn::start(data.path(), &[]);
    let token = unique_token("forge");
    // Octet counting: the count covers the embedded LF, CRLF and NUL, so the "forged" header
    // after them is message text of the same event.
    let forged = format!(
        "<13>Jan  5 10:00:00 h1 app: {token} tcp one\n<13>Jan  1 00:00:00 evil forged: {token} forged\r\n<13>Jan  1 00:00:00 evil forged2: x\0tail"
    );
    let mut stream = TcpStream::connect(("127.0.0.1", cairn.syslog_port)).expect("connect");
    let marker = format!("<13>Jan  5 10:00:01 h1 app: {token} tcp marker");
    let payload = format!("{} {forged}{} {marker}", forged.len(), marker.len());
    stream.write_all(payload.as_bytes()).expect("write");
    drop(stream);
    // UDP: one datagram is one event, whatever it holds.
    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    let datagram = format!(
        "<13>Jan  5 10:00:02 h1 app: {token} udp one\n<13>Jan  1 00:00:00 evil forged: {token}"
    );
    udp.send_to(datagram.as_bytes(), ("127.0.0.1", cairn.syslog_port))
        .expect("send udp");

    let found = cairn.search_until(&token, 3);
    assert_eq!(found["total"], 3, "exactly three events: {found}");
    let evil = cairn.search(&format!("{token} AND host:evil"), "");
    assert_eq!(evil["total"], 0, "no event was forged: {evil}");
    let tcp = cairn.search(&format!("{token} AND one AND tcp"), "");
    let message = tcp["events"][0]["message"].as_str().expect("message");
    assert!(
        message.contains("\n<13>Jan  1 00:00:00 evil forged:") && message.contains("x\0tail"),
        "the embedded lines are data of the one event: {message:?}"
    );
    let udp_event = cairn.search(&format!("{token} AND udp"), "");
    assert_eq!(udp_event["total"], 1, "{udp_event}");
    assert_eq!(udp_event["events"][0]["host"], "h1", "{udp_event}");
}

#[test]
fn terminal_escape_sequences_are_kept_as_data_and_escaped_in_json() {
    let data = TempDir::new("escapes");
    let cairn = Cairn::start(data.path(), &["--syslog-udp", "off"]);
    let token = unique_token("esc");
    // Colour, cursor movement, clear screen, an OSC window title ended by BEL, a bare CR.
    let hostile = "\x1b[31mred\x1b[0m \x1b[2J\x1b[H \x1b]0;owned\x07 over\rwrite";
    let line = format!("<13>Jan  5 10:00:00 h1 app: {token} {hostile}\n");
    let mut stream = TcpStream::connect(("127.0.0.1", cairn.syslog_port)).expect("connect");
    stream.write_all(line.as_bytes()).expect("write");
    drop(stream);

    let found = cairn.search_until(&token, 1);
    assert_eq!(found["total"], 1, "one event: {found}");
    let event = &found["events"][0];
    assert_eq!(event["message"], format!("{token} {hostile}"), "{event}");
    // On the wire the control characters are JSON escapes, never raw bytes a terminal would run.
    let path = format!("/api/v1/search?q={}", common::url_encode(&token));
    let body = cairn.get(&path).body;
    assert!(
        !body.iter().any(|byte| matches!(byte, 0x1b | 0x07 | b'\r')),
        "raw control bytes in the response"
    );
    let text = String::from_utf8(body).expect("utf-8 response");
    assert!(text.contains(r"\u001b[31mred\u001b[0m"), "{text}");
    assert!(text.contains(r"\u001b]0;owned\u0007"), "{text}");
    assert!(text.contains(r"over\rwrite"), "{text}");
}

fn rules_check(rule_file: &std::path::Path) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["rules", "check"])
        .arg(rule_file)
        .output()
        .expect("run cairn rules check");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

#[test]
fn regex_rules_over_the_size_caps_are_refused_by_rules_check() {
    let data = TempDir::new("regex-cap");
    let rules = data.path().join("rules.yml");
    // A 12-byte pattern that compiles to far more than the 1 MiB cap (Unicode \w, 2000 times),
    // a pattern longer than the 4096 bytes allowed, and a sane rule in the same file.
    let long_pattern = "a".repeat(5000);
    std::fs::write(
        &rules,
        format!(
            r#"title: huge program
logsource: {{product: linux}}
detection:
  selection:
    message|re: '\w{{2000}}'
  condition: selection
---
title: long pattern
logsource: {{product: linux}}
detection:
  selection:
    message|re: '{long_pattern}'
  condition: selection
---
title: sane
logsource: {{product: linux}}
detection:
  selection:
    message|re: 'Failed password for \w+'
  condition: selection
"#
        ),
    )
    .expect("write rules");
    let (success, output) = rules_check(&rules);
    assert!(!success, "rejections make rules check fail: {output}");
    let line_of = |title: &str| {
        output
            .lines()
            .find(|line| line.contains(title))
            .unwrap_or_else(|| panic!("no line for {title}: {output}"))
            .to_owned()
    };
    let huge = line_of("huge program");
    assert!(huge.starts_with("rejected"), "{output}");
    assert!(
        huge.contains("regular expression compiles to more than"),
        "{output}"
    );
    let long = line_of("long pattern");
    assert!(long.starts_with("rejected"), "{output}");
    assert!(
        long.contains("regular expression of 5000 bytes, longer than the 4096 allowed"),
        "{output}"
    );
    assert!(line_of("sane").starts_with("ok"), "{output}");
    assert!(output.contains("1 rules usable, 2 rejected"), "{output}");
}

#[test]
fn a_nul_in_a_search_query_is_a_bad_query_not_a_panic() {
    let data = TempDir::new("nul-query");
    let cairn = Cairn::start(data.path(), &["--syslog-udp", "off"]);
    // `fields.a<NUL>b:3` tripped an assertion inside tantivy (found by the `query` fuzz target).
    let response = cairn.get("/api/v1/search?q=fields.a%00b%3A3");
    assert_eq!(response.status, 400, "{}", response.text());
    assert_eq!(response.json()["error"]["code"], "bad_query");
    assert!(
        response.json()["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("nul character")),
        "{}",
        response.text()
    );
    assert_eq!(cairn.get("/healthz").status, 200);
}
