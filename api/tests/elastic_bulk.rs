//! The Elasticsearch-compatible API against the real binary: the official Python client's
//! `helpers.bulk` (a bad item is reported for that item only, the others are indexed with their
//! fields), the `_bulk` protocol over raw HTTP (per-item errors, Elasticsearch's error shape and
//! product header everywhere, gzip), and durability (an acknowledged bulk survives SIGKILL).

mod common;

use std::io::Write;

use common::peers::{python_with, run_client};
use common::{Cairn, TempDir, all_events, unique_token};
use serde_json::Value;

fn bulk(cairn: &Cairn, path: &str, body: &[u8]) -> common::HttpResponse {
    cairn.post(
        path,
        &[(
            "Content-Type",
            "application/vnd.elasticsearch+x-ndjson; compatible-with=9",
        )],
        body,
    )
}

fn item(response: &Value, index: usize) -> (&str, &Value) {
    let entry = response["items"][index]
        .as_object()
        .unwrap_or_else(|| panic!("item {index} of {response}"));
    let (action, body) = entry.iter().next().expect("one action per item");
    (action.as_str(), body)
}

#[test]
fn python_client_bulk_indexes_good_items_and_reports_the_bad_ones() {
    let Some(python) = python_with(&["elasticsearch"]) else {
        return;
    };
    let dir = TempDir::new("es-python");
    let cairn = Cairn::start(dir.path(), &["--syslog-udp", "off", "--syslog-tcp", "off"]);
    let marker = unique_token("es");
    let good = 20;
    let url = format!("http://{}", cairn.http);
    let report = run_client(&python, "es_bulk.py", &[&url, &marker, &good.to_string()]);

    assert_eq!(
        report["info"]["tagline"], "You Know, for Search",
        "{report}"
    );
    assert_eq!(report["ok"], good, "{report}");
    let errors = report["errors"].as_array().expect("errors list");
    assert_eq!(errors.len(), 2, "exactly the two bad items: {report}");
    for error in errors {
        let (action, body) = error
            .as_object()
            .and_then(|entry| entry.iter().next())
            .expect("one action");
        assert_eq!(action, "index");
        assert_eq!(body["status"], 400, "{error}");
        assert_eq!(body["_index"], "logs-test");
        assert_eq!(body["error"]["type"], "mapper_parsing_exception", "{error}");
    }
    assert!(
        errors[0]["index"]["error"]["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("@timestamp")),
        "{report}"
    );
    assert_eq!(report["path_ok"], good, "{report}");
    assert_eq!(report["path_errors"], serde_json::json!([]));

    // Every good document is found, with its fields mapped onto the event.
    cairn.search_until(&format!("a{marker}"), good);
    cairn.search_until(&format!("b{marker}"), good);
    let events = all_events(&cairn, &format!("a{marker}"));
    assert_eq!(events.len(), good as usize);
    let mut hosts: Vec<String> = Vec::new();
    for event in &events {
        assert_eq!(event["source"], "http_elastic", "{event}");
        assert_eq!(event["app"], "shop", "{event}");
        assert_eq!(event["severity"], "err", "{event}");
        assert_eq!(event["fields"]["index"], "logs-test", "{event}");
        assert_eq!(event["fields"]["user.name"], "alice", "{event}");
        assert!(
            event["ts"]
                .as_str()
                .is_some_and(|ts| ts.starts_with("2024-05-01T12:00:")),
            "{event}"
        );
        hosts.push(event["host"].as_str().expect("host").to_string());
    }
    hosts.sort();
    hosts.dedup();
    assert_eq!(hosts.len(), good as usize, "host.name of each document");
    let by_field = cairn.search(
        &format!("fields.index:logs-path AND b{marker}"),
        "&limit=1000",
    );
    assert_eq!(by_field["total"], good, "{by_field}");
    assert_eq!(cairn.search(&format!("bad{marker}"), "")["total"], 0);

    let stats = cairn.stats();
    assert_eq!(stats["received_by_source"]["http_elastic"], 2 * good + 2);
    assert_eq!(
        stats["rejected_by_source"]["http_elastic"]["invalid_timestamp"],
        1
    );
    assert_eq!(
        stats["rejected_by_source"]["http_elastic"]["invalid_json"],
        1
    );
}

#[test]
fn bulk_protocol_errors_are_per_item_and_elasticsearch_shaped() {
    let dir = TempDir::new("es-protocol");
    let cairn = Cairn::start(dir.path(), &["--syslog-udp", "off", "--syslog-tcp", "off"]);
    let marker = unique_token("esraw");

    let root = cairn.get("/");
    assert_eq!(root.status, 200);
    assert_eq!(root.header("x-elastic-product"), Some("Elasticsearch"));
    assert!(root.json()["version"]["number"].as_str().is_some());

    let body = format!(
        concat!(
            "{{\"create\":{{\"_id\":\"given-id\"}}}}\n",
            "{{\"message\":\"one {m}\",\"@timestamp\":1714564800123}}\n",
            "{{\"delete\":{{\"_id\":\"x\"}}}}\n",
            "{{\"update\":{{\"_id\":\"x\"}}}}\n",
            "{{\"doc\":{{\"message\":\"never {m}\"}}}}\n",
            "{{\"index\":{{\"_index\":\"other\"}}}}\n",
            "{{\"message\":\"two {m}\"\n",
            "{{\"index\":{{}}}}\n",
            "{{\"user\":\"no message {m}\",\"log.level\":\"warning\"}}\n",
            "{{\"index\":{{}}}}\n",
        ),
        m = marker
    );
    let response = bulk(&cairn, "/web-logs/_bulk", body.as_bytes());
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("x-elastic-product"), Some("Elasticsearch"));
    let json = response.json();
    assert_eq!(json["errors"], true);
    assert_eq!(json["items"].as_array().map(Vec::len), Some(6), "{json}");
    let (action, first) = item(&json, 0);
    assert_eq!((action, first["status"].as_u64()), ("create", Some(201)));
    assert_eq!(first["_id"], "given-id");
    assert_eq!(first["result"], "created");
    let expected = [
        (1, "delete", "illegal_argument_exception"),
        (2, "update", "illegal_argument_exception"),
        (3, "index", "mapper_parsing_exception"),
        (5, "index", "action_request_validation_exception"),
    ];
    for (index, want_action, want_type) in expected {
        let (action, body) = item(&json, index);
        assert_eq!(action, want_action, "{json}");
        assert_eq!(body["status"], 400, "{json}");
        assert_eq!(body["error"]["type"], want_type, "{json}");
    }
    let (_, fourth) = item(&json, 4);
    assert_eq!(fourth["status"], 201, "{json}");
    let generated_id: u64 = fourth["_id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("id");

    let found = cairn.search_until(&marker, 2);
    assert_eq!(found["total"], 2, "{found}");
    let events = found["events"].as_array().expect("events");
    let one = events
        .iter()
        .find(|event| event["fields"]["_id"] == "given-id")
        .expect("the created document");
    assert_eq!(one["ts"], "2024-05-01T12:00:00.123Z");
    assert_eq!(one["fields"]["index"], "web-logs");
    let other = events
        .iter()
        .find(|event| event["seq"].as_u64() == Some(generated_id))
        .expect("the _id is the seq");
    assert_eq!(other["severity"], "warning");
    assert!(
        other["message"]
            .as_str()
            .is_some_and(|m| m.contains("no message"))
    );

    // Errors of the whole request: Elasticsearch's shape, with the product header.
    let empty = bulk(&cairn, "/_bulk", b"\n");
    assert_eq!(empty.status, 400);
    assert_eq!(empty.header("x-elastic-product"), Some("Elasticsearch"));
    let error = empty.json();
    assert_eq!(error["status"], 400);
    assert_eq!(
        error["error"]["type"],
        "action_request_validation_exception"
    );
    assert!(error["error"]["root_cause"].is_array());
    let bad_gzip = cairn.post("/_bulk", &[("Content-Encoding", "gzip")], b"not gzip");
    assert_eq!(bad_gzip.status, 400);
    assert_eq!(bad_gzip.header("x-elastic-product"), Some("Elasticsearch"));

    // Gzip bodies are inflated as for the NDJSON API.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let zipped =
        format!("{{\"index\":{{\"_index\":\"z\"}}}}\n{{\"message\":\"zipped {marker}\"}}\n");
    encoder.write_all(zipped.as_bytes()).expect("gzip");
    let response = cairn.post(
        "/_bulk",
        &[("Content-Encoding", "gzip")],
        &encoder.finish().expect("gzip"),
    );
    assert_eq!(response.json()["errors"], false, "{}", response.text());
    cairn.search_until(&format!("zipped AND {marker}"), 1);

    let metrics = cairn.get("/metrics").text();
    assert!(
        metrics.contains(
            "cairn_http_rejected_events_total{source=\"http_elastic\",reason=\"unsupported_action\"} 2"
        ),
        "{metrics}"
    );
}

#[test]
fn an_acknowledged_bulk_survives_a_crash() {
    let dir = TempDir::new("es-crash");
    let args = ["--syslog-udp", "off", "--syslog-tcp", "off"];
    let cairn = Cairn::start(dir.path(), &args);
    let marker = unique_token("escrash");
    let mut body = String::new();
    for i in 0..50 {
        body.push_str(&format!(
            "{{\"index\":{{\"_index\":\"crash\"}}}}\n{{\"message\":\"{marker} {i}\",\"host\":{{\"name\":\"h{i}\"}}}}\n"
        ));
    }
    let response = bulk(&cairn, "/_bulk", body.as_bytes());
    assert_eq!(response.json()["errors"], false, "{}", response.text());
    // SIGKILL right after the answer: the WAL has the documents, the index may not.
    cairn.kill();
    let cairn = Cairn::start(dir.path(), &args);
    cairn.search_until(&marker, 50);
    let events = all_events(&cairn, &marker);
    assert_eq!(events.len(), 50, "each document exactly once");
    for event in &events {
        assert_eq!(event["source"], "http_elastic", "{event}");
        assert_eq!(event["fields"]["index"], "crash", "{event}");
        assert!(
            event["host"]
                .as_str()
                .is_some_and(|host| host.starts_with('h'))
        );
    }
}
