//! Aggregations beside the hits, through the real binary: `GET /api/v1/search?aggs=…` (compact
//! form) and `POST /api/v1/search` with Elasticsearch's aggregation JSON. The buckets are
//! checked against counts computed from the events that were sent.

mod common;

use std::collections::BTreeMap;

use common::{Cairn, TempDir, unique_token, url_encode};
use serde_json::{Value, json};

/// 2024-03-01T00:00:00Z.
const BASE_SECS: u64 = 1_709_251_200;

/// Sends `count` NDJSON events: host `h<i%3>`, app `a<i%2>`, user `u<i%4>`, one per 20 minutes.
fn send_events(cairn: &Cairn, token: &str, count: u64) {
    let body: String = (0..count)
        .map(|i| {
            json!({
                "ts": BASE_SECS + i * 1200,
                "host": format!("H{}", i % 3),
                "app": format!("a{}", i % 2),
                "severity": if i % 5 == 0 { "err" } else { "info" },
                "user": format!("u{}", i % 4),
                "message": format!("{token} event {i}"),
            })
            .to_string()
                + "\n"
        })
        .collect();
    let response = cairn.post("/api/v1/ingest", &[], body.as_bytes());
    assert_eq!(response.status, 200, "{}", response.text());
    cairn.search_until(token, count);
}

/// `key → doc_count` of the buckets of aggregation `name`.
fn buckets(aggregations: &Value, name: &str) -> BTreeMap<String, u64> {
    aggregations[name]["buckets"]
        .as_array()
        .unwrap_or_else(|| panic!("no buckets `{name}` in {aggregations}"))
        .iter()
        .map(|bucket| {
            let key = match &bucket["key"] {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            (key, bucket["doc_count"].as_u64().expect("doc_count"))
        })
        .collect()
}

/// What `count` events of [`send_events`] hold per key of `key_of(i)`.
fn expected(count: u64, key_of: impl Fn(u64) -> String) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for i in 0..count {
        *counts.entry(key_of(i)).or_insert(0) += 1;
    }
    counts
}

#[test]
fn get_search_with_compact_aggs_returns_terms_and_a_date_histogram_beside_the_hits() {
    let data = TempDir::new("aggs-get");
    let cairn = Cairn::start(data.path(), &[]);
    let token = unique_token("aggs");
    let count = 30;
    send_events(&cairn, &token, count);

    let aggs = "terms:host,terms:app,terms:severity,terms:fields.user:2,date_histogram:1h";
    let path = format!(
        "/api/v1/search?q={}&limit=5&aggs={}",
        url_encode(&token),
        url_encode(aggs)
    );
    let response = cairn.get(&path);
    assert_eq!(response.status, 200, "{}", response.text());
    let result = response.json();
    assert_eq!(result["total"], count);
    assert_eq!(result["events"].as_array().map(Vec::len), Some(5));
    let aggregations = &result["aggregations"];
    // Hostnames aggregate in lower case, as they are searched.
    assert_eq!(
        buckets(aggregations, "host"),
        expected(count, |i| format!("h{}", i % 3))
    );
    assert_eq!(
        buckets(aggregations, "app"),
        expected(count, |i| format!("a{}", i % 2))
    );
    assert_eq!(
        buckets(aggregations, "severity"),
        expected(count, |i| if i % 5 == 0 { "err" } else { "info" }
            .to_owned())
    );
    // size 2: the two largest of four users (u0 and u1, 8 each; u2 and u3 hold 14).
    assert_eq!(buckets(aggregations, "fields.user").len(), 2);
    assert_eq!(
        aggregations["fields.user"]["sum_other_doc_count"].as_u64(),
        Some(14)
    );
    // One event every 20 minutes: three per hour, keys in epoch milliseconds.
    let hours = expected(count, |i| {
        ((BASE_SECS + i * 1200) / 3600 * 3_600_000).to_string()
    });
    assert_eq!(buckets(aggregations, "date_histogram"), hours);
    assert_eq!(
        aggregations["date_histogram"]["buckets"][0]["key_as_string"],
        "2024-03-01T00:00:00Z"
    );

    // The time range restricts the buckets as it restricts the hits.
    let ranged = cairn.get(&format!(
        "{path}&from={}&to={}",
        BASE_SECS,
        BASE_SECS + 3600
    ));
    let ranged = ranged.json();
    assert_eq!(ranged["total"], 3);
    assert_eq!(
        buckets(&ranged["aggregations"], "date_histogram")
            .values()
            .sum::<u64>(),
        3
    );

    // Without aggs, no aggregations key.
    let plain = cairn.search(&token, "");
    assert!(plain.get("aggregations").is_none(), "{plain}");
    cairn.stop();
}

#[test]
fn post_search_takes_elasticsearch_aggregation_json_and_bad_aggs_are_400() {
    let data = TempDir::new("aggs-post");
    let cairn = Cairn::start(data.path(), &[]);
    let token = unique_token("aggspost");
    let count = 12;
    send_events(&cairn, &token, count);

    let body = json!({
        "q": token,
        "limit": 1,
        "aggs": {
            "by_host": {
                "terms": {"field": "host", "size": 10},
                "aggs": {"per_app": {"terms": {"field": "app"}}}
            },
            "daily": {"date_histogram": {"field": "ts", "calendar_interval": "day"}}
        }
    });
    let response = cairn.post(
        "/api/v1/search",
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let result = response.json();
    assert_eq!(result["total"], count);
    let aggregations = &result["aggregations"];
    assert_eq!(
        buckets(aggregations, "by_host"),
        expected(count, |i| format!("h{}", i % 3))
    );
    let first_host = &aggregations["by_host"]["buckets"][0];
    assert_eq!(
        buckets(first_host, "per_app").values().sum::<u64>(),
        first_host["doc_count"].as_u64().expect("doc_count")
    );
    assert_eq!(
        buckets(aggregations, "daily"),
        BTreeMap::from([((BASE_SECS * 1000).to_string(), count)])
    );

    for bad in [
        "terms:message",
        "terms:host:0",
        "date_histogram:1M",
        "median:host",
    ] {
        let response = cairn.get(&format!("/api/v1/search?q=x&aggs={}", url_encode(bad)));
        assert_eq!(response.status, 400, "{bad}: {}", response.text());
        assert_eq!(response.json()["error"]["code"], "bad_query", "{bad}");
    }
    let unknown_field = json!({"aggs": {"x": {"terms": {"field": "nope"}}}});
    let response = cairn.post(
        "/api/v1/search",
        &[("Content-Type", "application/json")],
        unknown_field.to_string().as_bytes(),
    );
    assert_eq!(response.status, 400, "{}", response.text());
    assert!(
        response.json()["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("nope")),
        "{}",
        response.text()
    );
    cairn.stop();
}
