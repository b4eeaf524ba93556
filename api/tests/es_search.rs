//! The Elasticsearch `_search` subset through the real binary and the official Python client
//! (`elasticsearch` 9.x): its `search()` with a `query_string`, a range on `@timestamp` and a
//! `terms` aggregation gets the same events and counts as `/api/v1/search`; plus the raw HTTP
//! surface (URL `q`, ascending sort, `from`/`size`, `_msearch`, error shape, product header).
//!
//! The client comes from `CAIRN_PEER_PYTHON` (set by `.ci/run`) or
//! `/tmp/cairn-peers/venv/bin/python`. Without it the client test is skipped loudly, except
//! under `CI=true`, where it fails.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::{Cairn, TempDir, unique_token, url_encode};
use serde_json::{Value, json};

/// 2024-05-01T00:00:00Z.
const BASE_SECS: u64 = 1_714_521_600;

/// A Python with the `elasticsearch` package, or `None` (after saying so) outside CI.
fn peer_python() -> Option<String> {
    let python = std::env::var("CAIRN_PEER_PYTHON")
        .unwrap_or_else(|_| "/tmp/cairn-peers/venv/bin/python".to_owned());
    let usable = Command::new(&python)
        .args(["-c", "import elasticsearch"])
        .output()
        .is_ok_and(|output| output.status.success());
    if usable {
        return Some(python);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI: {python} cannot import elasticsearch (.ci/run installs it)"
    );
    eprintln!(
        "SKIPPED: {python} cannot import elasticsearch; set CAIRN_PEER_PYTHON to a python with \
         `pip install elasticsearch==9.5.1`"
    );
    None
}

/// Sends 24 events over two days: hosts `web1`/`web2`/`db1`, half of them `failed`.
fn send_events(cairn: &Cairn, token: &str) {
    let body: String = (0..24u64)
        .map(|i| {
            let host = ["web1", "web2", "db1"][(i % 3) as usize];
            let verdict = if i % 2 == 0 { "failed" } else { "accepted" };
            json!({
                "ts": BASE_SECS + i * 7200,
                "host": host,
                "app": "sshd",
                "user": format!("u{}", i % 4),
                "message": format!("{token} {verdict} login n{i}"),
            })
            .to_string()
                + "\n"
        })
        .collect();
    let response = cairn.post("/api/v1/ingest", &[], body.as_bytes());
    assert_eq!(response.status, 200, "{}", response.text());
    cairn.search_until(token, 24);
}

/// The client's search, run by the official Python client; prints the response as JSON.
const CLIENT_SEARCH: &str = r#"
import json, sys
from elasticsearch import Elasticsearch
url, token, gte, lt = sys.argv[1:5]
es = Elasticsearch(url)
response = es.search(
    index="logs-cairn",
    query={"bool": {
        "must": [{"query_string": {"query": f"{token} AND failed"}}],
        "filter": [{"range": {"@timestamp": {"gte": gte, "lt": lt}}}],
    }},
    aggs={"hosts": {"terms": {"field": "host.name", "size": 10}}},
    size=100,
    sort=[{"@timestamp": {"order": "desc"}}],
)
try:
    es.search(index="logs-cairn", query={"fuzzy": {"message": "x"}})
    error = None
except Exception as exc:
    error = {"status": getattr(exc, "status_code", None) or getattr(exc, "meta").status,
             "type": exc.error}
print(json.dumps({"response": dict(response), "error": error}))
"#;

fn buckets(aggregation: &Value) -> Vec<(String, u64)> {
    aggregation["buckets"]
        .as_array()
        .unwrap_or_else(|| panic!("no buckets in {aggregation}"))
        .iter()
        .map(|bucket| {
            (
                bucket["key"].as_str().unwrap_or_default().to_owned(),
                bucket["doc_count"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

#[test]
fn the_python_client_search_gets_the_same_events_as_the_cairn_api() {
    let Some(python) = peer_python() else { return };
    let data = TempDir::new("es-search");
    let cairn = Cairn::start(data.path(), &[]);
    let token = unique_token("es");
    send_events(&cairn, &token);

    // The first day only, from 04:00: events 2..12.
    let gte = "2024-05-01T04:00:00Z";
    let lt = "2024-05-02T00:00:00Z";
    let output = Command::new(&python)
        .args(["-c", CLIENT_SEARCH])
        .arg(format!("http://{}", cairn.http))
        .args([&token, gte, lt])
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "python failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_slice(&output.stdout).expect("python output is JSON");
    let response = &result["response"];

    let ours = cairn.get(&format!(
        "/api/v1/search?q={}&from={gte}&to={lt}&limit=100&aggs=terms:host",
        url_encode(&format!("{token} AND failed"))
    ));
    assert_eq!(ours.status, 200, "{}", ours.text());
    let ours = ours.json();
    let our_seqs: Vec<String> = ours["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|event| event["seq"].to_string())
        .collect();
    let their_seqs: Vec<String> = response["hits"]["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|hit| hit["_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    // Events 2, 4, …, 10 of the first day from 04:00 on: five, the same and in the same order.
    assert_eq!(their_seqs.len(), 5, "{response}");
    assert_eq!(their_seqs, our_seqs);
    assert_eq!(
        response["hits"]["total"],
        json!({"value": 5, "relation": "eq"})
    );
    assert_eq!(ours["total"], 5);
    assert_eq!(
        buckets(&response["aggregations"]["hosts"]),
        buckets(&ours["aggregations"]["host"])
    );
    let first = &response["hits"]["hits"][0];
    assert_eq!(first["_index"], "logs-cairn");
    let source = &first["_source"];
    assert_eq!(source["@timestamp"], ours["events"][0]["ts"]);
    assert_eq!(source["host"]["name"], ours["events"][0]["host"]);
    assert_eq!(source["message"], ours["events"][0]["message"]);
    assert!(source["user"].is_string(), "{source}");
    // An unsupported query is a 400 the client reports as Elasticsearch's error type.
    assert_eq!(
        result["error"],
        json!({"status": 400, "type": "parsing_exception"})
    );
    cairn.stop();
}

#[test]
fn raw_search_takes_url_queries_sorts_pages_and_msearch_in_elasticsearch_shape() {
    let data = TempDir::new("es-raw");
    let cairn = Cairn::start(data.path(), &[]);
    let token = unique_token("esraw");
    send_events(&cairn, &token);

    let response = cairn.get(&format!(
        "/_search?q={}&size=3&sort={}",
        url_encode(&format!("{token} AND host.name:web1")),
        url_encode("@timestamp:asc")
    ));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("x-elastic-product"), Some("Elasticsearch"));
    let body = response.json();
    assert_eq!(body["hits"]["total"]["value"], 8);
    let oldest: Vec<Value> = body["hits"]["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|hit| hit["_source"]["@timestamp"].clone())
        .collect();
    assert_eq!(
        oldest,
        [
            "2024-05-01T00:00:00Z",
            "2024-05-01T06:00:00Z",
            "2024-05-01T12:00:00Z"
        ]
    );
    assert_eq!(body["timed_out"], false);
    assert_eq!(body["_shards"]["failed"], 0);

    // from/size pages newest first without overlap; match, term and bool agree.
    let page = |from: usize| -> BTreeSet<String> {
        let search = json!({
            "from": from, "size": 5,
            "query": {"bool": {
                "must": [{"match": {"message": token}}],
                "must_not": [{"term": {"host.name": "DB1"}}],
            }},
        });
        let response = cairn.post(
            "/logs/_search",
            &[("Content-Type", "application/json")],
            search.to_string().as_bytes(),
        );
        assert_eq!(response.status, 200, "{}", response.text());
        let body = response.json();
        assert_eq!(body["hits"]["total"]["value"], 16, "{body}");
        body["hits"]["hits"]
            .as_array()
            .expect("hits")
            .iter()
            .map(|hit| hit["_id"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let (first, second) = (page(0), page(5));
    assert_eq!((first.len(), second.len()), (5, 5));
    assert!(first.is_disjoint(&second));

    // _msearch as Grafana sends it: one answer per search, a failure in place.
    let base_ms = BASE_SECS * 1000;
    let two_days_ms = 2 * 86_400_000 - 1;
    let msearch = format!(
        "{}\n{}\n{}\n{}\n",
        json!({"search_type": "query_then_fetch", "ignore_unavailable": true, "index": "logs"}),
        json!({
            "size": 0,
            "query": {"bool": {"filter": [
                {"range": {"@timestamp": {
                    "gte": base_ms, "lte": base_ms + two_days_ms, "format": "epoch_millis"
                }}},
                {"query_string": {"analyze_wildcard": true, "query": token}},
            ]}},
            "aggs": {"2": {
                "date_histogram": {
                    "field": "@timestamp", "fixed_interval": "1d", "min_doc_count": "0",
                    "extended_bounds": {"min": base_ms, "max": base_ms + two_days_ms},
                    "format": "epoch_millis",
                },
                "aggs": {},
            }},
        }),
        json!({"index": "logs"}),
        json!({"query": {"regexp": {"message": ".*"}}}),
    );
    let response = cairn.post(
        "/_msearch",
        &[("Content-Type", "application/x-ndjson")],
        msearch.as_bytes(),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json();
    assert_eq!(body["responses"][0]["hits"]["total"]["value"], 24, "{body}");
    let days = &body["responses"][0]["aggregations"]["2"]["buckets"];
    assert_eq!(days[0]["key"], base_ms);
    assert_eq!(days[0]["doc_count"], 12);
    assert_eq!(days[1]["doc_count"], 12);
    assert_eq!(body["responses"][1]["status"], 400);
    assert_eq!(body["responses"][1]["error"]["type"], "parsing_exception");

    // The mapping names the time field (Grafana reads it).
    let mapping = cairn.get("/logs/_mapping").json();
    assert_eq!(
        mapping["logs"]["mappings"]["properties"]["@timestamp"]["type"],
        "date"
    );

    // Errors have Elasticsearch's shape and the product header.
    let response = cairn.post("/_search", &[], b"{\"size\": 5000}");
    assert_eq!(response.status, 400);
    assert_eq!(response.header("x-elastic-product"), Some("Elasticsearch"));
    let error = response.json();
    assert_eq!(error["status"], 400);
    assert_eq!(error["error"]["type"], "illegal_argument_exception");
    assert!(error["error"]["root_cause"][0]["reason"].is_string());
    let response = cairn.post("/_search", &[], b"not json");
    assert_eq!(response.status, 400);
    assert_eq!(response.json()["error"]["type"], "parsing_exception");
    cairn.stop();
}
