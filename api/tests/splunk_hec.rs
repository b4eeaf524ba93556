//! The Splunk HEC API against the real binary: the PyPI handlers (`splunk-handler`, batched by
//! its background thread; `splunk-hec-handler`, object events with fields; a wrong token
//! refused), and the protocol over raw HTTP (concatenated events, string and object events,
//! `time`, metadata and `fields`, per-event errors, the raw endpoint, health, authorization
//! errors, indexer acknowledgement).

mod common;

use common::peers::{python_with, run_client};
use common::{Cairn, TempDir, all_events, unique_token};
use serde_json::{Value, json};

const TOKEN: &str = "6e1d6a3c-1f40-4d8e-9a51-3c2b7f0e9d42";
const ACK_TOKEN: &str = "ack-7b2f9c10-55aa-4f0e-8c3d-0d1e2f3a4b5c";
const CHANNEL: &str = "0A1B2C3D-1111-4000-8000-00000000ABCD";

/// Starts cairn with two HEC tokens: [`TOKEN`] (default index `main`) and [`ACK_TOKEN`] (ack).
fn start(dir: &TempDir) -> Cairn {
    let config = dir.path().with_extension("toml");
    std::fs::write(
        &config,
        format!(
            "[[hec.token]]\nname = \"apps\"\ntoken = \"{TOKEN}\"\nindex = \"main\"\n\
             [[hec.token]]\nname = \"acked\"\ntoken = \"{ACK_TOKEN}\"\nack = true\n"
        ),
    )
    .expect("write config");
    let config = config.to_str().expect("utf-8 path").to_string();
    Cairn::start(
        dir.path(),
        &[
            "--config",
            &config,
            "--syslog-udp",
            "off",
            "--syslog-tcp",
            "off",
        ],
    )
}

fn post_hec(cairn: &Cairn, path: &str, token: &str, body: &str) -> (u16, Value) {
    let authorization = format!("Splunk {token}");
    let response = cairn.post(path, &[("Authorization", &authorization)], body.as_bytes());
    (response.status, response.json())
}

#[test]
fn python_handlers_deliver_every_event_and_a_wrong_token_is_refused() {
    let Some(python) = python_with(&["splunk_handler", "splunk_hec_handler"]) else {
        return;
    };
    let dir = TempDir::new("hec-python");
    let cairn = start(&dir);
    let marker = unique_token("hec");
    let count = 10;
    let port = cairn.http.port().to_string();
    let report = run_client(
        &python,
        "splunk_hec.py",
        &[&port, TOKEN, &marker, &count.to_string()],
    );
    assert_eq!(report["wrong_token"]["status"], 403, "{report}");
    assert_eq!(
        report["wrong_token"]["body"],
        json!({"text": "Invalid token", "code": 4})
    );

    // The handlers send from background threads: poll the search until all are in.
    cairn.search_until(&format!("a{marker}"), count);
    cairn.search_until(&format!("b{marker}"), count);
    let batched = all_events(&cairn, &format!("a{marker}"));
    assert_eq!(batched.len(), count as usize);
    for event in &batched {
        assert_eq!(event["source"], "http_hec", "{event}");
        assert_eq!(event["fields"]["index"], "main", "{event}");
        assert_eq!(event["fields"]["sourcetype"], "handler-type", "{event}");
        assert!(event["host"].as_str().is_some_and(|host| !host.is_empty()));
        assert!(
            event["message"]
                .as_str()
                .is_some_and(|message| message.starts_with("sshd[")),
            "{event}"
        );
        assert!(
            !event["flags"].to_string().contains("ts_from_receive"),
            "time was sent: {event}"
        );
    }
    let direct = all_events(&cairn, &format!("b{marker}"));
    assert_eq!(direct.len(), count as usize);
    for event in &direct {
        assert_eq!(event["severity"], "err", "log_level ERROR: {event}");
        assert_eq!(event["fields"]["index"], "ops", "{event}");
        assert_eq!(event["fields"]["source"], "peer-app", "{event}");
        assert_eq!(event["fields"]["sourcetype"], "_json", "{event}");
        assert_eq!(event["fields"]["region"], "eu-west", "{event}");
        assert!(event["fields"]["attempt"].is_string(), "{event}");
    }
    // The refused event is nowhere; what came after it is all in.
    assert_eq!(cairn.search(&format!("c{marker}"), "")["total"], 0);
    let stats = cairn.stats();
    assert!(stats["http_unauthorized"].as_u64() >= Some(1), "{stats}");
    assert_eq!(stats["received_by_source"]["http_hec"], 2 * count);
}

#[test]
fn hec_protocol_over_raw_http() {
    let dir = TempDir::new("hec-protocol");
    let cairn = start(&dir);
    let marker = unique_token("hecraw");

    // Concatenated events, no separator: string and object events, time, metadata, fields.
    let body = format!(
        concat!(
            "{{\"time\":1714564800.125,\"host\":\"fw1\",\"source\":\"/var/log/fw\",\"sourcetype\":\"fw\",",
            "\"event\":\"deny tcp {m}\",\"fields\":{{\"rule\":\"r7\"}}}}",
            "{{\"time\":\"1714564801\",\"index\":\"sec\",\"event\":{{\"message\":\"login {m}\",",
            "\"user\":{{\"name\":\"bob\"}},\"level\":\"notice\"}}}}",
            "  {{\"event\":{{\"action\":\"no message {m}\"}}}}"
        ),
        m = marker
    );
    let (status, answer) = post_hec(&cairn, "/services/collector/event", TOKEN, &body);
    assert_eq!(
        (status, &answer),
        (200, &json!({"text": "Success", "code": 0}))
    );
    let found = cairn.search_until(&marker, 3);
    let events = found["events"].as_array().expect("events");
    let by_text = |needle: &str| {
        events
            .iter()
            .find(|event| {
                event["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(needle))
            })
            .unwrap_or_else(|| panic!("no event with {needle}: {found}"))
    };
    let deny = by_text("deny tcp");
    assert_eq!(deny["ts"], "2024-05-01T12:00:00.125Z");
    assert_eq!(deny["host"], "fw1");
    assert_eq!(deny["fields"]["source"], "/var/log/fw");
    assert_eq!(deny["fields"]["sourcetype"], "fw");
    assert_eq!(deny["fields"]["index"], "main", "the token's default");
    assert_eq!(deny["fields"]["rule"], "r7");
    let login = by_text("login");
    assert_eq!(login["ts"], "2024-05-01T12:00:01Z");
    assert_eq!(login["fields"]["index"], "sec");
    assert_eq!(login["fields"]["user.name"], "bob");
    assert_eq!(login["severity"], "notice");
    assert!(
        by_text("no message")["message"]
            .as_str()
            .is_some_and(|m| m.starts_with('{'))
    );

    // A bad event: the others are kept, the answer names the first bad one.
    let body = format!(
        "{{\"event\":\"kept 1 {marker}\"}}\n{{\"event\":\"\"}}\n{{\"event\":\"kept 2 {marker}\"}}{{\"time\":1}}"
    );
    let (status, answer) = post_hec(&cairn, "/services/collector", TOKEN, &body);
    assert_eq!(status, 400);
    assert_eq!(
        answer,
        json!({"text": "Event field cannot be blank", "code": 13, "invalid-event-number": 1})
    );
    cairn.search_until(&format!("kept AND {marker}"), 2);
    let (status, answer) = post_hec(
        &cairn,
        "/services/collector/event",
        TOKEN,
        "{\"event\":\"a\",\"time\":\"yesterday\"}",
    );
    assert_eq!(
        (status, answer["code"].as_u64()),
        (400, Some(6)),
        "{answer}"
    );
    let (status, answer) = post_hec(&cairn, "/services/collector/event", TOKEN, " ");
    assert_eq!(
        (status, answer),
        (400, json!({"text": "No data", "code": 5}))
    );

    // The raw endpoint: one event per line, metadata from the query string.
    let (status, answer) = post_hec(
        &cairn,
        "/services/collector/raw?host=router9&sourcetype=ios&source=udp%3A514",
        TOKEN,
        &format!("%LINK-3-UPDOWN: Interface Gi0/1 {marker} down\r\n\nsecond raw {marker}\n"),
    );
    assert_eq!((status, answer["code"].as_u64()), (200, Some(0)));
    let raw = cairn.search_until(&format!("host:router9 AND {marker}"), 2);
    for event in raw["events"].as_array().expect("events") {
        assert_eq!(event["fields"]["sourcetype"], "ios", "{event}");
        assert_eq!(event["fields"]["source"], "udp:514", "{event}");
        assert_eq!(event["fields"]["index"], "main", "{event}");
    }

    // Health, and authorization errors in Splunk's shape.
    let health = cairn.get("/services/collector/health");
    assert_eq!(health.status, 200);
    assert_eq!(health.json(), json!({"text": "HEC is healthy", "code": 17}));
    let missing = cairn.post("/services/collector/event", &[], b"{\"event\":\"x\"}");
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.json(),
        json!({"text": "Token is required", "code": 2})
    );
    let bearer = cairn.post(
        "/services/collector/event",
        &[("Authorization", TOKEN)],
        b"{\"event\":\"x\"}",
    );
    assert_eq!(bearer.status, 401);
    assert_eq!(bearer.json()["code"], 3);
    let (status, answer) = post_hec(
        &cairn,
        "/services/collector/event",
        "wrong",
        "{\"event\":\"x\"}",
    );
    assert_eq!(
        (status, answer),
        (403, json!({"text": "Invalid token", "code": 4}))
    );
    assert_eq!(cairn.stats()["http_unauthorized"], 3);

    // The per-source rejection counters.
    let stats = cairn.stats();
    let rejected = &stats["rejected_by_source"]["http_hec"];
    assert_eq!(rejected["blank_event"], 1, "{stats}");
    assert_eq!(rejected["missing_event"], 1, "{stats}");
    assert_eq!(rejected["invalid_timestamp"], 1, "{stats}");
}

#[test]
fn indexer_acknowledgement_follows_splunk() {
    let dir = TempDir::new("hec-ack");
    let cairn = start(&dir);
    let marker = unique_token("hecack");
    let authorization = format!("Splunk {ACK_TOKEN}");
    let send = |channel: Option<&str>, text: &str| {
        let mut headers = vec![("Authorization", authorization.as_str())];
        if let Some(channel) = channel {
            headers.push(("X-Splunk-Request-Channel", channel));
        }
        let body = format!("{{\"event\":\"{text} {marker}\"}}");
        let response = cairn.post("/services/collector/event", &headers, body.as_bytes());
        (response.status, response.json())
    };
    assert_eq!(
        send(None, "no channel"),
        (400, json!({"text": "Data channel is missing", "code": 10}))
    );
    assert_eq!(
        send(Some("not-a-guid"), "bad channel"),
        (400, json!({"text": "Invalid data channel", "code": 11}))
    );
    for expected in 0..3 {
        let (status, answer) = send(Some(CHANNEL), "acked");
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["ackId"], expected, "{answer}");
    }
    let ack = |ids: &str| {
        let path = format!("/services/collector/ack?channel={CHANNEL}");
        let response = cairn.post(
            &path,
            &[("Authorization", authorization.as_str())],
            ids.as_bytes(),
        );
        (response.status, response.json())
    };
    // Answered once durable (they all are by the time the request is answered), then forgotten.
    assert_eq!(
        ack("{\"acks\":[0,2,7]}"),
        (200, json!({"acks": {"0": true, "2": true, "7": false}}))
    );
    assert_eq!(
        ack("{\"acks\":[0,1]}"),
        (200, json!({"acks": {"0": false, "1": true}}))
    );
    assert_eq!(ack("[1]").1["code"], 6);
    cairn.search_until(&format!("acked AND {marker}"), 3);
    assert_eq!(
        cairn.search(&format!("channel AND {marker}"), "")["total"],
        0
    );

    // A token without acknowledgement: channels are not needed, and /ack is refused.
    let response = cairn.post(
        &format!("/services/collector/ack?channel={CHANNEL}"),
        &[("Authorization", &format!("Splunk {TOKEN}"))],
        b"{\"acks\":[0]}",
    );
    assert_eq!(response.status, 400);
    assert_eq!(
        response.json(),
        json!({"text": "ACK is disabled", "code": 14})
    );
}
