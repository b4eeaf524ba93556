//! End to end: real senders → the real `cairn` binary → search over HTTP.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::process::Command;

use common::{Cairn, TempDir, host_name, run, unique_token};
use serde_json::Value;

/// Every event of a search result, keyed by the word after the token in its message.
fn by_kind(result: &Value, token: &str) -> std::collections::BTreeMap<String, Value> {
    result["events"]
        .as_array()
        .expect("events array")
        .iter()
        .map(|event| {
            let message = event["message"].as_str().unwrap_or_default();
            let kind = message
                .split_whitespace()
                .skip_while(|word| *word != token)
                .nth(1)
                .unwrap_or_default()
                .to_string();
            (kind, event.clone())
        })
        .collect()
}

fn logger(cairn: &Cairn, transport: &[&str], format: &str, app: &str, message: &str) {
    run(Command::new("logger")
        .args(["-n", "127.0.0.1", "-P", &cairn.syslog_port.to_string()])
        .args(transport)
        .arg(format)
        .args(["-t", app, "--id=4242", "-p", "auth.warning"])
        .arg(message));
}

#[test]
fn logger_over_udp_and_tcp_in_both_formats_is_searchable_with_its_fields() {
    let data = TempDir::new("logger");
    let cairn = Cairn::start(data.path(), &[]);
    let token = unique_token("logger");
    let cases: [(&str, &[&str], &str); 6] = [
        ("udp3164", &["--udp"], "--rfc3164"),
        ("udp5424", &["--udp"], "--rfc5424"),
        ("tcplf3164", &["--tcp"], "--rfc3164"),
        ("tcplf5424", &["--tcp"], "--rfc5424"),
        ("tcpoc3164", &["--tcp", "--octet-count"], "--rfc3164"),
        ("tcpoc5424", &["--tcp", "--octet-count"], "--rfc5424"),
    ];
    for (kind, transport, format) in cases {
        let message =
            format!("{token} {kind} Failed password for root from 10.0.0.9 port 2222 ssh2");
        logger(&cairn, transport, format, &format!("app{kind}"), &message);
    }
    let result = cairn.search_until(&token, cases.len() as u64);
    assert_eq!(result["total"], cases.len() as u64, "{result}");
    let events = by_kind(&result, &token);
    let host = host_name();
    let now = jiff::Timestamp::now();
    for (kind, _, format) in cases {
        let event = events
            .get(kind)
            .unwrap_or_else(|| panic!("no event for {kind}: {result}"));
        assert_eq!(event["host"], host.as_str(), "{kind}: {event}");
        assert_eq!(event["app"], format!("app{kind}"), "{kind}: {event}");
        assert_eq!(event["procid"], "4242", "{kind}: {event}");
        assert_eq!(event["severity"], "warning", "{kind}: {event}");
        assert_eq!(event["facility"], "auth", "{kind}: {event}");
        assert_eq!(
            event["message"],
            format!("{token} {kind} Failed password for root from 10.0.0.9 port 2222 ssh2"),
            "{kind}: {event}"
        );
        let expected_format = if format == "--rfc5424" {
            "rfc5424"
        } else {
            "rfc3164"
        };
        assert_eq!(event["format"], expected_format, "{kind}: {event}");
        let ts: jiff::Timestamp = event["ts"]
            .as_str()
            .expect("ts")
            .parse()
            .expect("rfc3339 ts");
        let skew = (now.as_second() - ts.as_second()).abs();
        assert!(skew < 600, "{kind}: event time {ts} is {skew}s from now");
        assert!(event["seq"].as_u64().is_some(), "{kind}: {event}");
        assert!(
            event["flags"]
                .as_array()
                .is_some_and(|flags| !flags.iter().any(|flag| flag == "parse_error")),
            "{kind}: {event}"
        );
    }
    // Field queries work on the parsed fields.
    let by_app = cairn.search(&format!("{token} AND app:apptcpoc5424"), "");
    assert_eq!(by_app["total"], 1, "{by_app}");
    let by_severity = cairn.search(&format!("{token} AND severity:warning AND host:{host}"), "");
    assert_eq!(by_severity["total"], cases.len() as u64, "{by_severity}");
    let phrase = cairn.search(&format!("{token} AND \"Failed password for root\""), "");
    assert_eq!(phrase["total"], cases.len() as u64, "{phrase}");
}

#[test]
fn python_sysloghandler_over_tcp_with_nul_frames_is_searchable() {
    let data = TempDir::new("python");
    let cairn = Cairn::start(data.path(), &[]);
    let token = unique_token("py");
    let script = format!(
        r#"
import logging, logging.handlers, socket
handler = logging.handlers.SysLogHandler(address=("127.0.0.1", {port}), socktype=socket.SOCK_STREAM,
                                         facility=logging.handlers.SysLogHandler.LOG_DAEMON)
handler.setFormatter(logging.Formatter("pyapp[%(process)d]: %(message)s"))
log = logging.getLogger("cairn-test")
log.addHandler(handler)
log.setLevel(logging.DEBUG)
for n in range(20):
    log.error("{token} n%d disk failure on sda", n)
handler.close()
"#,
        port = cairn.syslog_port
    );
    run(Command::new("python3").arg("-c").arg(&script));
    let result = cairn.search_until(&token, 20);
    assert_eq!(result["total"], 20, "{result}");
    for event in result["events"].as_array().expect("events") {
        assert_eq!(event["app"], "pyapp", "{event}");
        assert_eq!(event["severity"], "err", "{event}");
        assert_eq!(event["facility"], "daemon", "{event}");
        // SysLogHandler sends no hostname: the sender's address stands in.
        assert_eq!(event["host"], "127.0.0.1", "{event}");
        let message = event["message"].as_str().expect("message");
        assert!(
            message.starts_with(&token) && message.ends_with("disk failure on sda"),
            "{event}"
        );
    }
    // Newest first: seq descending for one sender's stream with identical timestamps or rising ones.
    let seqs: Vec<u64> = result["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|event| event["seq"].as_u64().expect("seq"))
        .collect();
    let mut sorted = seqs.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(sorted.len(), 20, "duplicate seqs: {seqs:?}");
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).expect("gzip");
    encoder.finish().expect("gzip")
}

#[test]
fn ndjson_over_http_plain_and_gzip_survives_a_restart() {
    let data = TempDir::new("ndjson");
    let cairn = Cairn::start(data.path(), &[]);
    let token = unique_token("nd");
    let body = format!(
        concat!(
            r#"{{"message":"{t} first plain","host":"web1","app":"nginx","severity":"err","ts":"2024-05-01T10:00:00Z","user":"alice","http":{{"status":502}}}}"#,
            "\n",
            r#"{{"message":"{t} second plain","host":"web2","app":"nginx","severity":3,"ts":1714557601}}"#,
            "\r\n",
            "\"{t} bare string line\"\n",
            "{{not json\n",
            r#"{{"host":"web3"}}"#,
            "\n",
            r#"{{"message":"{t} bad time","ts":"yesterday"}}"#,
            "\n",
        ),
        t = token
    );
    let response = cairn.post(
        "/api/v1/ingest",
        &[("Content-Type", "application/x-ndjson")],
        body.as_bytes(),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let answer = response.json();
    assert_eq!(answer["accepted"], 3, "{answer}");
    assert_eq!(answer["rejected"], 3, "{answer}");
    let reasons: Vec<(u64, String)> = answer["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|error| {
            (
                error["line"].as_u64().expect("line"),
                error["reason"].as_str().expect("reason").to_string(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [
            (4, "invalid_json".to_string()),
            (5, "missing_message".to_string()),
            (6, "invalid_timestamp".to_string())
        ]
    );

    let gz_lines: String = (0..50)
        .map(|n| format!(r#"{{"message":"{token} gz line {n}","host":"gzhost","app":"batch","severity":"info"}}"#) + "\n")
        .collect();
    let response = cairn.post(
        "/api/v1/ingest",
        &[
            ("Content-Type", "application/x-ndjson"),
            ("Content-Encoding", "gzip"),
        ],
        &gzip(gz_lines.as_bytes()),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["accepted"], 50);

    let result = cairn.search_until(&token, 53);
    assert_eq!(result["total"], 53, "{result}");
    let first = cairn.search(&format!("{token} AND first"), "");
    let event = &first["events"][0];
    assert_eq!(event["host"], "web1", "{event}");
    assert_eq!(event["app"], "nginx", "{event}");
    assert_eq!(event["severity"], "err", "{event}");
    assert_eq!(event["ts"], "2024-05-01T10:00:00Z", "{event}");
    assert_eq!(event["fields"]["user"], "alice", "{event}");
    let second = cairn.search(&format!("{token} AND second"), "");
    assert_eq!(second["events"][0]["severity"], "err", "{second}");
    assert_eq!(
        second["events"][0]["ts"], "2024-05-01T10:00:01Z",
        "{second}"
    );
    let by_field = cairn.search(&format!("{token} AND fields.user:alice"), "");
    assert_eq!(by_field["total"], 1, "{by_field}");
    let by_host = cairn.search(&format!("{token} AND host:gzhost"), "");
    assert_eq!(by_host["total"], 50, "{by_host}");
    let in_range = cairn.search(&token, "&from=2024-05-01T10:00:00Z&to=2024-05-01T10:00:01Z");
    assert_eq!(
        in_range["total"], 1,
        "from is inclusive, to exclusive: {in_range}"
    );

    let stats = cairn.stats_until("reconciled counters", |stats| {
        stats["received"].as_u64() == Some(56) && stats["indexed"].as_u64() == Some(53)
    });
    assert_eq!(stats["rejected_total"], 3, "{stats}");
    assert_eq!(stats["dropped_total"], 0, "{stats}");

    let http_port = cairn.http.port();
    let syslog_port = cairn.syslog_port;
    cairn.stop();
    let restarted = Cairn::start_with_ports(data.path(), http_port, syslog_port, &[]);
    let after = restarted.search(&token, "&limit=1000");
    assert_eq!(after["total"], 53, "events survive a restart: {after}");
    // Sequence numbers continue after a restart instead of starting over.
    let old_max = after["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|event| event["seq"].as_u64())
        .max()
        .expect("seqs");
    let response = restarted.post(
        "/api/v1/ingest",
        &[],
        format!("\"{token} after restart\"\n").as_bytes(),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let new = restarted.search_until(&format!("{token} AND after AND restart"), 1);
    assert!(
        new["events"][0]["seq"].as_u64().expect("seq") > old_max,
        "{new}"
    );
}

#[test]
fn search_pages_newest_first_with_a_cursor() {
    let data = TempDir::new("cursor");
    let cairn = Cairn::start(data.path(), &[]);
    let token = unique_token("page");
    let body: String = (0..250)
        .map(|n| {
            format!(
                r#"{{"message":"{token} event {n}","ts":{}}}"#,
                1_700_000_000 + n
            ) + "\n"
        })
        .collect();
    let response = cairn.post("/api/v1/ingest", &[], body.as_bytes());
    assert_eq!(response.json()["accepted"], 250);
    cairn.search_until(&token, 250);
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let extra = if cursor.is_empty() {
            "&limit=100".to_string()
        } else {
            format!("&limit=100&cursor={}", common::url_encode(&cursor))
        };
        let page = cairn.search(&token, &extra);
        assert_eq!(page["total"], 250, "{page}");
        for event in page["events"].as_array().expect("events") {
            let message = event["message"].as_str().expect("message");
            let n: u64 = message
                .rsplit(' ')
                .next()
                .expect("n")
                .parse()
                .expect("number");
            seen.push(n);
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    let expected: Vec<u64> = (0..250).rev().collect();
    assert_eq!(seen, expected, "newest first, every event once");
}

#[test]
fn oversized_tcp_frame_is_truncated_and_the_stream_resynchronises() {
    let data = TempDir::new("oversize");
    let cairn = Cairn::start(data.path(), &[]);
    let token = unique_token("big");
    let mut stream = TcpStream::connect(("127.0.0.1", cairn.syslog_port)).expect("connect");
    let huge = "A".repeat(200_000);
    let payload = format!(
        "<13>Jan  5 10:00:00 h1 app: {token} before\n<13>Jan  5 10:00:01 h1 app: {token} huge {huge}\n<13>Jan  5 10:00:02 h1 app: {token} after\n"
    );
    stream.write_all(payload.as_bytes()).expect("write");
    drop(stream);
    let result = cairn.search_until(&token, 3);
    assert_eq!(result["total"], 3, "{result}");
    let events = by_kind(&result, &token);
    assert!(
        events.contains_key("before") && events.contains_key("after"),
        "{result}"
    );
    let huge_event = &events["huge"];
    assert!(
        huge_event["flags"]
            .as_array()
            .expect("flags")
            .iter()
            .any(|flag| flag == "truncated"),
        "{huge_event}"
    );
    assert!(
        huge_event["raw"].as_str().expect("raw").len() <= 65536,
        "truncated to max_frame_bytes"
    );
    let stats = cairn.stats();
    assert_eq!(stats["truncated"], 1, "{stats}");
}

#[test]
fn errors_are_json_with_fitting_statuses() {
    let data = TempDir::new("errors");
    let cairn = Cairn::start(data.path(), &["--syslog-udp", "off"]);
    let bad_query = cairn.get("/api/v1/search?q=%28unclosed");
    assert_eq!(bad_query.status, 400, "{}", bad_query.text());
    assert_eq!(bad_query.json()["error"]["code"], "bad_query");
    let bad_limit = cairn.get("/api/v1/search?q=x&limit=0");
    assert_eq!(bad_limit.status, 400);
    assert_eq!(bad_limit.json()["error"]["code"], "bad_request");
    let bad_time = cairn.get("/api/v1/search?q=x&from=soon");
    assert_eq!(bad_time.status, 400);
    let bad_cursor = cairn.get("/api/v1/search?q=x&cursor=garbage");
    assert_eq!(bad_cursor.status, 400, "{}", bad_cursor.text());
    let missing = cairn.get("/api/v1/nothing");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"]["code"], "not_found");
    let wrong_method = cairn.get("/api/v1/ingest");
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.json()["error"]["code"], "method_not_allowed");
    let bad_gzip = cairn.post(
        "/api/v1/ingest",
        &[("Content-Encoding", "gzip")],
        b"not gzip at all",
    );
    assert_eq!(bad_gzip.status, 400, "{}", bad_gzip.text());
    let brotli = cairn.post("/api/v1/ingest", &[("Content-Encoding", "br")], b"x");
    assert_eq!(brotli.status, 415);
    let all_bad = cairn.post("/api/v1/ingest", &[], b"{nope\n");
    assert_eq!(all_bad.status, 400);
    assert_eq!(all_bad.json()["rejected"], 1);
    assert_eq!(cairn.get("/healthz").status, 200);
    let metrics = cairn.get("/metrics");
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    assert!(
        text.contains("# TYPE cairn_received_events_total counter"),
        "{text}"
    );
    assert!(
        text.contains("cairn_rejected_events_total{reason=\"invalid_json\"} 1"),
        "{text}"
    );
}

#[test]
fn bodies_over_the_limits_get_413() {
    let data = TempDir::new("limits");
    let config_path = data.path().join("cairn.toml");
    std::fs::write(
        &config_path,
        "[http]\nmax_body_bytes = 100000\nmax_decompressed_bytes = 1000000\n",
    )
    .expect("write config");
    let cairn = Cairn::start(
        &data.path().join("data"),
        &["--config", config_path.to_str().expect("utf-8 path")],
    );
    let too_big = cairn.post("/api/v1/ingest", &[], &vec![b'x'; 200_000]);
    assert_eq!(too_big.status, 413, "{}", too_big.text());
    assert_eq!(too_big.json()["error"]["code"], "payload_too_large");
    // 50 MB of zeros compresses to ~50 KB: under the body limit, far over the inflate limit.
    let bomb = gzip(&vec![b'0'; 50_000_000]);
    assert!(bomb.len() < 100_000);
    let response = cairn.post("/api/v1/ingest", &[("Content-Encoding", "gzip")], &bomb);
    assert_eq!(response.status, 413, "{}", response.text());
    let stats = cairn.stats();
    assert_eq!(stats["http_body_too_large"], 2, "{stats}");
}

#[test]
fn many_concurrent_tcp_connections_deliver_every_line() {
    let data = TempDir::new("concurrent");
    let cairn = Cairn::start(data.path(), &[]);
    let token = unique_token("conc");
    let senders: Vec<_> = (0..40)
        .map(|connection| {
            let port = cairn.syslog_port;
            let token = token.clone();
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                let mut payload = String::new();
                for n in 0..250 {
                    // Mix both framings on the same connection, as the framer detects per frame.
                    let line = format!(
                        "<14>Mar  3 04:05:06 conn{connection} app: {token} c{connection} n{n}"
                    );
                    if n % 2 == 0 {
                        payload.push_str(&format!("{} {line}", line.len()));
                    } else {
                        payload.push_str(&line);
                        payload.push('\n');
                    }
                }
                stream.write_all(payload.as_bytes()).expect("write");
            })
        })
        .collect();
    for sender in senders {
        sender.join().expect("sender thread");
    }
    let result = cairn.search_until(&token, 10_000);
    assert_eq!(result["total"], 10_000, "{}", result["total"]);
    let one_connection = cairn.search(&format!("{token} AND host:conn7"), "");
    assert_eq!(one_connection["total"], 250, "{one_connection}");
    let stats = cairn.stats_until("all connections closed", |stats| {
        stats["connections_open"] == 0
    });
    assert_eq!(stats["connections_accepted"], 40, "{stats}");
    assert_eq!(stats["malformed"], 0, "{stats}");
}
