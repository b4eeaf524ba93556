//! The incident API over a real socket: the real router with a real index, pipeline and incident
//! store, alerts pushed through the incident service's sender (the correlation engine that will
//! produce them is not wired yet). Plus the real binary serving the routes and closing the store.
//! No sleeps to wait for work: every wait polls with a deadline.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_api::config::ConfigFile;
use cairn_api::correlation::CorrelationSetup;
use cairn_api::http::{AppState, HttpLimits, router};
use cairn_api::pipeline::{IndexerWal, Pipeline, PipelineConfig};
use cairn_api::signatures::{RuleSources, Signatures};
use cairn_correlate::incident::{IncidentService, IncidentStore, ServiceOptions, SystemClock};
use cairn_correlate::{Alert, AlertKind, Level};
use cairn_index::{EventIndex, IndexOptions};
use cairn_ingest::batch::SeqAllocator;
use cairn_ingest::listeners::WalSink;
use cairn_ingest::parse::ParseOptions;
use cairn_ingest::stats::Stats;
use cairn_ingest::wal::{Wal, WalOptions};
use cairn_ingest::{Seq, Timestamp};
use common::{Cairn, DEADLINE, HttpResponse, TempDir, http_request, url_encode};
use crossbeam_channel::Sender;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const SECOND: i64 = 1_000_000_000;
/// 2024-05-01T10:00:00Z
const T0: i64 = 1_714_557_600 * SECOND;

/// The real router on an ephemeral port, with the real incident service behind it.
struct App {
    runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<()>>,
    pipeline: Option<Pipeline>,
    service: Option<IncidentService>,
    alerts: Option<Sender<Alert>>,
}

impl App {
    fn start(data_dir: &Path, options: &ServiceOptions) -> App {
        let config = ConfigFile::from_toml(&format!(
            "data_dir = {:?}\n[incidents]\nmax_evidence = 8\n",
            data_dir.display().to_string()
        ))
        .expect("toml")
        .validate()
        .expect("config");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let index = Arc::new(
            EventIndex::open_or_create(
                &data_dir.join("index"),
                IndexOptions {
                    writer_memory_bytes: 32 << 20,
                    writer_threads: 1,
                    ..IndexOptions::default()
                },
            )
            .expect("index"),
        );
        let stats = Arc::new(Stats::new());
        let store = IncidentStore::open(
            &data_dir.join(cairn_api::server::INCIDENT_STORE_FILE),
            config.incidents.clone(),
        )
        .expect("incident store");
        let service =
            IncidentService::start(store, Arc::new(SystemClock), options).expect("service");
        let signatures = Arc::new(Signatures::load(RuleSources {
            builtin: false,
            paths: Vec::new(),
            options: config.rules.options.clone(),
        }));
        let wal = Arc::new(Wal::open(data_dir.join("wal"), WalOptions::default()).expect("wal"));
        let (skips, skip_receiver) = crossbeam_channel::unbounded();
        let pipeline = Pipeline::start(
            &PipelineConfig {
                workers: 1,
                queue_batches: 8,
                index_queue_batches: 8,
                memory_budget_bytes: 64 << 20,
                commit_interval: Duration::from_millis(100),
            },
            Arc::clone(&index),
            ParseOptions::default(),
            &config.normaliser,
            &signatures,
            Arc::clone(&stats),
            CorrelationSetup {
                engine: config.correlation.clone(),
                checkpoints: config.correlation_checkpoints,
                incidents: service.handle(),
                resume_at: wal.oldest(),
                snapshot: None,
                wal: Arc::clone(&wal),
            },
            IndexerWal {
                wal: Arc::clone(&wal),
                indexed_up_to: wal.oldest(),
                skips: skip_receiver,
            },
        )
        .expect("pipeline");
        let state = AppState::new(
            index,
            stats,
            pipeline.work_queue(),
            WalSink { wal, skips },
            pipeline.depth_probe(),
            signatures,
            SeqAllocator::starting_at(1),
            ParseOptions::default(),
            HttpLimits {
                max_body_bytes: 1 << 20,
                max_decompressed_bytes: 1 << 20,
                max_line_bytes: 1 << 16,
                retry_after: Duration::from_secs(1),
            },
        );
        let shutdown = CancellationToken::new();
        state.set_incidents(service.handle(), shutdown.clone());
        state.set_ready(true);
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server_shutdown = shutdown.clone();
        let server = runtime.spawn(async move {
            axum::serve(listener, router(state))
                .with_graceful_shutdown(async move { server_shutdown.cancelled().await })
                .await
                .expect("serve");
        });
        App {
            runtime,
            addr,
            shutdown,
            server: Some(server),
            pipeline: Some(pipeline),
            alerts: Some(service.alert_sender()),
            service: Some(service),
        }
    }

    fn send(&self, alert: Alert) {
        self.alerts
            .as_ref()
            .expect("running")
            .send(alert)
            .expect("send alert");
    }

    fn get(&self, path: &str) -> HttpResponse {
        http_request(self.addr, "GET", path, &[], b"").expect("http get")
    }

    fn post(&self, path: &str) -> HttpResponse {
        http_request(self.addr, "POST", path, &[], b"").expect("http post")
    }

    fn get_json(&self, path: &str) -> Value {
        let response = self.get(path);
        assert_eq!(response.status, 200, "GET {path}: {}", response.text());
        response.json()
    }

    /// Polls `GET path` until `predicate` holds on its JSON.
    fn get_until(&self, path: &str, predicate: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let value = self.get_json(path);
            if predicate(&value) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "GET {path} never matched: {value}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// In order: HTTP stops (event streams end), pipeline drains, the service drains and closes.
    fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server).expect("server task");
        }
        if let Some(pipeline) = self.pipeline.take() {
            pipeline.shutdown();
        }
        self.alerts = None;
        if let Some(service) = self.service.take() {
            service.shutdown().expect("incident service shutdown");
        }
    }
}

fn alert(rule: &str, kind: AlertKind, group: &[(&str, &str)], level: Level, seqs: &[u64]) -> Alert {
    Alert {
        rule: Arc::from(rule),
        title: Arc::from(format!("title of {rule}").as_str()),
        level,
        kind,
        ts: Timestamp(T0 + 60 * SECOND),
        first_ts: Timestamp(T0),
        group: group
            .iter()
            .map(|(field, value)| (Arc::from(*field), (*value).to_string()))
            .collect(),
        event_count: seqs.len() as u64,
        evidence: seqs.iter().copied().map(Seq).collect(),
        possibly_incomplete: false,
    }
}

fn detection(rule: &str, host: &str, level: Level, seqs: &[u64]) -> Alert {
    alert(rule, AlertKind::Detection, &[("host", host)], level, seqs)
}

fn seqs_of(list: &Value) -> Vec<u64> {
    list["incidents"]
        .as_array()
        .expect("incidents array")
        .iter()
        .map(|entry| entry["update_seq"].as_u64().expect("update_seq"))
        .collect()
}

fn error_code(response: &HttpResponse) -> String {
    response.json()["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn every_incident_route_over_a_real_socket() {
    let data = TempDir::new("incidents-api");
    let app = App::start(data.path(), &ServiceOptions::default());

    // Open, then update by fingerprint; a low alert is ignored; a correlation on its group.
    app.send(detection("ssh-fail", "web1", Level::High, &[1, 2]));
    app.get_until("/api/v1/incidents?since=0", |list| seqs_of(list).len() == 1);
    app.send(detection("ssh-fail", "web1", Level::High, &[3]));
    app.send(detection("ssh-fail", "web2", Level::Low, &[4]));
    app.send(alert(
        "brute-force",
        AlertKind::EventCount,
        &[("src_ip", "10.0.0.9")],
        Level::Critical,
        &[5, 6],
    ));
    let log = app.get_until("/api/v1/incidents?since=0", |list| {
        list["incidents"]
            .as_array()
            .is_some_and(|entries| entries.iter().any(|entry| entry["rule"] == "brute-force"))
    });
    let entries = log["incidents"].as_array().expect("array");
    assert_eq!(entries[0]["change"], "opened", "{log}");
    assert_eq!(entries[0]["id"], 1, "{log}");
    assert!(
        entries.iter().all(|entry| entry["group"]["host"] != "web2"),
        "a low alert opens nothing: {log}"
    );
    let last = *seqs_of(&log).last().expect("some");
    assert_eq!(log["next"], last);

    // The current view: one entry per incident.
    let current = app.get_json("/api/v1/incidents");
    let current_entries = current["incidents"].as_array().expect("array");
    assert_eq!(current_entries.len(), 2, "{current}");
    assert_eq!(current["next"], last, "{current}");
    let ssh = current_entries
        .iter()
        .find(|entry| entry["rule"] == "ssh-fail")
        .expect("ssh incident");
    let ssh_id = ssh["id"].as_u64().expect("id");
    assert_eq!(ssh["status"], "open");
    assert_eq!(ssh["alert_count"], 2, "{ssh}");
    assert_eq!(ssh["event_count"], 3, "{ssh}");
    assert_eq!(ssh["level"], "high");
    assert_eq!(ssh["kind"], "detection");
    assert_eq!(ssh["group"]["host"], "web1");
    assert_eq!(ssh["first_seen"], "2024-05-01T10:00:00Z");
    assert_eq!(ssh["last_seen"], "2024-05-01T10:01:00Z");
    assert_eq!(ssh["possibly_incomplete"], false);
    let brute_id = current_entries
        .iter()
        .find(|entry| entry["rule"] == "brute-force")
        .and_then(|entry| entry["id"].as_u64())
        .expect("correlation incident");

    // Detail with evidence and a search link the search API accepts.
    let detail = app.get_json(&format!("/api/v1/incidents/{ssh_id}"));
    assert_eq!(detail["evidence"], serde_json::json!([1, 2, 3]), "{detail}");
    let link = detail["search"].as_str().expect("search link");
    assert!(
        link.starts_with("/api/v1/search?q=signature%3A%22ssh-fail%22%20AND%20host%3A%22web1%22"),
        "{link}"
    );
    let search = app.get(link);
    assert_eq!(search.status, 200, "{link}: {}", search.text());
    let brute = app.get_json(&format!("/api/v1/incidents/{brute_id}"));
    let brute_link = brute["search"].as_str().expect("link");
    assert!(
        brute_link.contains(&url_encode("fields.src_ip:\"10.0.0.9\"")),
        "{brute_link}"
    );
    assert_eq!(app.get(brute_link).status, 200, "{brute_link}");

    // Paging the change log with `next` sees each change once, in order.
    let mut cursor = 0u64;
    let mut paged = Vec::new();
    loop {
        let page = app.get_json(&format!("/api/v1/incidents?since={cursor}&limit=1"));
        let seqs = seqs_of(&page);
        if seqs.is_empty() {
            assert_eq!(page["next"], cursor);
            break;
        }
        paged.extend(seqs);
        cursor = page["next"].as_u64().expect("next");
    }
    assert_eq!(paged, seqs_of(&log));

    // Acknowledge and resolve: each real transition is one change; repeats are no-ops.
    let acked = app.post(&format!("/api/v1/incidents/{ssh_id}/ack"));
    assert_eq!(acked.status, 200, "{}", acked.text());
    let acked = acked.json();
    assert_eq!(acked["changed"], true);
    assert_eq!(acked["incident"]["status"], "acknowledged");
    let ack_seq = acked["update_seq"].as_u64().expect("seq");
    assert_eq!(ack_seq, last + 1);
    let again = app.post(&format!("/api/v1/incidents/{ssh_id}/ack")).json();
    assert_eq!(again["changed"], false, "{again}");
    assert_eq!(again["update_seq"], Value::Null);
    let resolved = app
        .post(&format!("/api/v1/incidents/{ssh_id}/resolve"))
        .json();
    assert_eq!(resolved["changed"], true);
    assert_eq!(resolved["incident"]["status"], "resolved");
    let resolved_again = app.post(&format!("/api/v1/incidents/{ssh_id}/resolve"));
    assert_eq!(resolved_again.status, 200);
    assert_eq!(resolved_again.json()["changed"], false);
    let ack_resolved = app.post(&format!("/api/v1/incidents/{ssh_id}/ack"));
    assert_eq!(
        ack_resolved.status, 200,
        "acking a resolved incident is a no-op"
    );
    assert_eq!(ack_resolved.json()["incident"]["status"], "resolved");
    let since_last = app.get_json(&format!("/api/v1/incidents?since={last}"));
    let kinds: Vec<&str> = since_last["incidents"]
        .as_array()
        .expect("array")
        .iter()
        .map(|entry| entry["change"].as_str().expect("change"))
        .collect();
    assert_eq!(kinds, vec!["acknowledged", "resolved"], "{since_last}");

    // Status filters.
    let resolved_list = app.get_json("/api/v1/incidents?status=resolved");
    assert_eq!(seqs_of(&resolved_list).len(), 1);
    assert_eq!(resolved_list["incidents"][0]["id"], ssh_id);
    let open_changes = app.get_json("/api/v1/incidents?status=open&since=0");
    assert!(
        open_changes["incidents"]
            .as_array()
            .expect("array")
            .iter()
            .all(|entry| entry["status"] == "open")
    );

    // A resolved incident is never reopened: the same fingerprint opens a new one.
    app.send(detection("ssh-fail", "web1", Level::High, &[7]));
    let reopened = app.get_until("/api/v1/incidents?status=open&since=0", |list| {
        list["incidents"].as_array().is_some_and(|entries| {
            entries
                .iter()
                .any(|entry| entry["group"]["host"] == "web1" && entry["id"] != ssh_id)
        })
    });
    let new_id = reopened["incidents"]
        .as_array()
        .expect("array")
        .iter()
        .rev()
        .find(|entry| entry["group"]["host"] == "web1")
        .and_then(|entry| entry["id"].as_u64())
        .expect("new incident");
    assert!(new_id > brute_id, "{reopened}");

    // Errors: untrusted ids, cursors and parameters never panic and map to statuses.
    for (method, path, status, code) in [
        ("GET", "/api/v1/incidents/999", 404, "not_found"),
        ("GET", "/api/v1/incidents/0", 404, "not_found"),
        (
            "GET",
            "/api/v1/incidents/18446744073709551615",
            404,
            "not_found",
        ),
        (
            "GET",
            "/api/v1/incidents/99999999999999999999999",
            400,
            "bad_request",
        ),
        ("GET", "/api/v1/incidents/abc", 400, "bad_request"),
        ("GET", "/api/v1/incidents/%FF%FE", 400, "bad_request"),
        ("POST", "/api/v1/incidents/-1/ack", 400, "bad_request"),
        ("POST", "/api/v1/incidents/999/ack", 404, "not_found"),
        ("POST", "/api/v1/incidents/999/resolve", 404, "not_found"),
        ("GET", "/api/v1/incidents?status=closed", 400, "bad_request"),
        ("GET", "/api/v1/incidents?since=-5", 400, "bad_request"),
        ("GET", "/api/v1/incidents?since=abc", 400, "bad_request"),
        ("GET", "/api/v1/incidents?limit=0", 400, "bad_request"),
        ("GET", "/api/v1/incidents?limit=1001", 400, "bad_request"),
        ("GET", "/api/v1/incidents?limit=x", 400, "bad_request"),
        ("GET", "/api/v1/incidents?colour=blue", 400, "bad_request"),
        (
            "GET",
            "/api/v1/incidents/stream?since=x",
            400,
            "bad_request",
        ),
        ("GET", "/api/v1/incidents/1/ack", 405, "method_not_allowed"),
        ("POST", "/api/v1/incidents", 405, "method_not_allowed"),
    ] {
        let response = http_request(app.addr, method, path, &[], b"").expect("request");
        assert_eq!(
            response.status,
            status,
            "{method} {path}: {}",
            response.text()
        );
        assert_eq!(error_code(&response), code, "{method} {path}");
    }
    let huge_cursor = app.get_json("/api/v1/incidents?since=18446744073709551615");
    assert_eq!(seqs_of(&huge_cursor), Vec::<u64>::new());
    let bad_header = http_request(
        app.addr,
        "GET",
        "/api/v1/incidents/stream",
        &[("Last-Event-ID", "yesterday")],
        b"",
    )
    .expect("request");
    assert_eq!(bad_header.status, 400, "{}", bad_header.text());
    let limit_max = app.get_json("/api/v1/incidents?since=0&limit=1000");
    assert!(seqs_of(&limit_max).len() >= 6);

    // Restart on the same data dir: incidents, ids and the cursor continue.
    let cursor_before = app.get_json("/api/v1/incidents?since=0&limit=1000")["next"]
        .as_u64()
        .expect("next");
    app.stop();
    let app = App::start(data.path(), &ServiceOptions::default());
    let kept = app.get_json(&format!("/api/v1/incidents/{ssh_id}"));
    assert_eq!(kept["status"], "resolved");
    assert_eq!(kept["evidence"], serde_json::json!([1, 2, 3]));
    app.send(detection("disk-full", "db1", Level::Medium, &[9]));
    let after = app.get_until(
        &format!("/api/v1/incidents?since={cursor_before}"),
        |list| !seqs_of(list).is_empty(),
    );
    assert_eq!(seqs_of(&after), vec![cursor_before + 1], "{after}");
    assert!(
        after["incidents"][0]["id"].as_u64().expect("id") > new_id,
        "ids are not reused"
    );
    app.stop();
}

/// One server-sent event.
#[derive(Debug, Clone, Default)]
struct SseEvent {
    event: Option<String>,
    id: Option<u64>,
    data: String,
}

/// A streaming HTTP client for `text/event-stream` (chunked) over a real socket.
struct SseClient {
    stream: TcpStream,
    raw: Vec<u8>,
    body: Vec<u8>,
}

impl SseClient {
    fn open(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> SseClient {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let mut request =
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).expect("write");
        let mut client = SseClient {
            stream,
            raw: Vec::new(),
            body: Vec::new(),
        };
        let deadline = Instant::now() + DEADLINE;
        let head_end = loop {
            if let Some(end) = client
                .raw
                .windows(4)
                .position(|window| window == b"\r\n\r\n")
            {
                break end;
            }
            assert!(Instant::now() < deadline, "no response head");
            client.read_some();
        };
        let head = String::from_utf8_lossy(&client.raw[..head_end]).to_string();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/event-stream"),
            "{head}"
        );
        assert!(
            head.to_ascii_lowercase()
                .contains("transfer-encoding: chunked"),
            "{head}"
        );
        client.raw.drain(..head_end + 4);
        client
    }

    fn read_some(&mut self) {
        let mut buffer = [0u8; 8192];
        match self.stream.read(&mut buffer) {
            Ok(0) => panic!("the server closed the event stream"),
            Ok(read) => self.raw.extend_from_slice(&buffer[..read]),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(error) => panic!("read: {error}"),
        }
    }

    /// Moves complete chunks from `raw` into `body`.
    fn dechunk(&mut self) {
        while let Some(line_end) = self.raw.windows(2).position(|window| window == b"\r\n") {
            let size_text = String::from_utf8_lossy(&self.raw[..line_end]).to_string();
            let size = usize::from_str_radix(size_text.trim(), 16).expect("chunk size");
            if self.raw.len() < line_end + 2 + size + 2 {
                break;
            }
            self.body
                .extend_from_slice(&self.raw[line_end + 2..line_end + 2 + size]);
            self.raw.drain(..line_end + 2 + size + 2);
        }
    }

    /// The next event that is not only a comment.
    fn next_event(&mut self) -> SseEvent {
        let deadline = Instant::now() + DEADLINE;
        loop {
            while let Some(end) = self.body.windows(2).position(|window| window == b"\n\n") {
                let block = String::from_utf8_lossy(&self.body[..end]).to_string();
                self.body.drain(..end + 2);
                let mut event = SseEvent::default();
                let mut has_field = false;
                for line in block.lines() {
                    if line.starts_with(':') {
                        continue;
                    }
                    has_field = true;
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match field {
                        "event" => event.event = Some(value.to_string()),
                        "id" => event.id = Some(value.parse().expect("numeric id")),
                        "data" => event.data.push_str(value),
                        _ => {}
                    }
                }
                if has_field {
                    return event;
                }
            }
            assert!(Instant::now() < deadline, "no event in time");
            self.read_some();
            self.dechunk();
        }
    }

    /// Incident events until `count` ids were seen; asserts ids strictly increase by one.
    fn incident_ids(&mut self, after: u64, count: usize) -> (Vec<u64>, usize) {
        let mut ids = Vec::new();
        let mut lagged = 0;
        let mut expected = after + 1;
        while ids.len() < count {
            let event = self.next_event();
            match event.event.as_deref() {
                None | Some("message") => {
                    let id = event.id.expect("an incident event has an id");
                    assert_eq!(id, expected, "no gap and no duplicate: {event:?}");
                    let data: Value = serde_json::from_str(&event.data).expect("json data");
                    assert_eq!(data["update_seq"], id);
                    ids.push(id);
                    expected += 1;
                }
                Some("lagged") => lagged += 1,
                other => panic!("unexpected event {other:?}: {event:?}"),
            }
        }
        (ids, lagged)
    }
}

#[test]
fn event_stream_resumes_from_last_event_id_without_gap_or_duplicate() {
    let data = TempDir::new("incidents-sse");
    let app = App::start(data.path(), &ServiceOptions::default());
    for host in 0..5 {
        app.send(detection("r", &format!("h{host}"), Level::High, &[host]));
    }
    app.get_until("/api/v1/incidents?since=0", |list| seqs_of(list).len() == 5);

    // Resume after change 2: 3..=5 replayed from the log, then live changes.
    let mut resumed = SseClient::open(
        app.addr,
        "/api/v1/incidents/stream",
        &[("Last-Event-ID", "2")],
    );
    let (replayed, _) = resumed.incident_ids(2, 3);
    assert_eq!(replayed, vec![3, 4, 5]);
    // `?since=` works the same; the header wins over it.
    let mut by_query = SseClient::open(app.addr, "/api/v1/incidents/stream?since=4", &[]);
    let mut both = SseClient::open(
        app.addr,
        "/api/v1/incidents/stream?since=0",
        &[("Last-Event-ID", "3")],
    );
    // Without a cursor: only new changes.
    let mut live = SseClient::open(app.addr, "/api/v1/incidents/stream", &[]);

    let acked = app.post("/api/v1/incidents/1/ack").json();
    assert_eq!(acked["update_seq"], 6);
    app.send(detection("r", "h9", Level::Critical, &[9]));
    assert_eq!(resumed.incident_ids(5, 2).0, vec![6, 7]);
    assert_eq!(by_query.incident_ids(4, 3).0, vec![5, 6, 7]);
    assert_eq!(both.incident_ids(3, 4).0, vec![4, 5, 6, 7]);
    let (live_ids, _) = live.incident_ids(5, 2);
    assert_eq!(live_ids, vec![6, 7]);

    // A reconnect with the last id seen continues exactly after it.
    drop(resumed);
    app.post("/api/v1/incidents/2/resolve");
    let mut reconnected = SseClient::open(
        app.addr,
        "/api/v1/incidents/stream",
        &[("Last-Event-ID", "7")],
    );
    let event = reconnected.next_event();
    assert_eq!(event.id, Some(8), "{event:?}");
    let data: Value = serde_json::from_str(&event.data).expect("json");
    assert_eq!(data["change"], "resolved");
    assert_eq!(data["id"], 2);

    // Stopping the server ends open streams (graceful shutdown does not hang on them).
    app.stop();
}

#[test]
fn a_lagging_subscriber_is_told_and_caught_up_from_the_log() {
    let data = TempDir::new("incidents-lag");
    // A feed that keeps only 2 changes: a burst of 200 in one transaction overruns it.
    let app = App::start(
        data.path(),
        &ServiceOptions {
            broadcast_capacity: 2,
            ..ServiceOptions::default()
        },
    );
    let mut client = SseClient::open(app.addr, "/api/v1/incidents/stream?since=0", &[]);
    let burst: Vec<Alert> = (0..200)
        .map(|host| detection("burst", &format!("h{host}"), Level::High, &[host]))
        .collect();
    for alert in burst {
        app.send(alert);
    }
    let (ids, _lagged) = client.incident_ids(0, 200);
    assert_eq!(ids, (1..=200).collect::<Vec<u64>>());
    app.stop();
}

#[test]
fn the_binary_serves_incidents_and_closes_the_store_on_sigterm() {
    let data = TempDir::new("incidents-binary");
    let cairn = Cairn::start(data.path(), &[]);
    let list = cairn.get("/api/v1/incidents?status=open");
    assert_eq!(list.status, 200, "{}", list.text());
    assert_eq!(list.json(), serde_json::json!({"incidents": [], "next": 0}));
    assert_eq!(cairn.get("/api/v1/incidents/1").status, 404);
    let log = cairn.stop();
    assert!(log.contains("incident store closing"), "{log}");
    assert!(data.path().join("incidents.sqlite").exists());
}
