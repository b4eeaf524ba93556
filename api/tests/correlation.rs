//! Correlation on the live stream: real syslog senders, the built-in correlation pack, incidents
//! through the API, and incidents surviving a restart.

mod common;

use std::process::Command;
use std::time::Instant;

use common::{Cairn, DEADLINE, TempDir, run, url_encode};
use serde_json::Value;

/// A config that closes event-time windows one second behind the newest event, so an idle
/// stream releases its alerts quickly.
const FAST_WATERMARK: &str = "[correlation]\nallowed_lateness_secs = 1\n";

fn start(data: &TempDir) -> Cairn {
    let config = data.path().join("cairn.toml");
    std::fs::write(&config, FAST_WATERMARK).expect("write config");
    Cairn::start(
        &data.path().join("data"),
        &["--config", config.to_str().expect("utf-8 path")],
    )
}

fn sshd_failure(cairn: &Cairn, user: &str, source: &str) {
    run(Command::new("logger")
        .args(["-n", "127.0.0.1", "-P", &cairn.syslog_port.to_string()])
        .args([
            "--tcp",
            "--octet-count",
            "--rfc5424",
            "-t",
            "sshd",
            "-p",
            "auth.info",
        ])
        .arg(format!(
            "Failed password for {user} from {source} port 52311 ssh2"
        )));
}

fn incidents(cairn: &Cairn, query: &str) -> Value {
    let response = cairn.get(&format!("/api/v1/incidents{query}"));
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

/// Polls until an incident satisfies `predicate`; returns it.
fn incident_until(cairn: &Cairn, predicate: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let list = incidents(cairn, "?limit=1000");
        if let Some(found) = list["incidents"]
            .as_array()
            .and_then(|all| all.iter().find(|incident| predicate(incident)))
        {
            return found.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no such incident in time: {list}\nlog:\n{}",
            cairn.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn group_value<'a>(incident: &'a Value, field: &str) -> Option<&'a str> {
    incident["group"][field].as_str()
}

#[test]
fn ssh_brute_force_over_syslog_opens_one_incident_that_survives_a_restart() {
    let data = TempDir::new("bruteforce");
    let cairn = start(&data);
    let attacker = "203.0.113.77";
    for attempt in 0..6 {
        sshd_failure(&cairn, &format!("user{attempt}"), attacker);
    }
    // A different source with fewer failures must not open an incident.
    for attempt in 0..2 {
        sshd_failure(&cairn, &format!("other{attempt}"), "198.51.100.5");
    }
    let incident = incident_until(&cairn, |incident| {
        group_value(incident, "src_ip") == Some(attacker)
    });
    assert_eq!(incident["status"], "open", "{incident}");
    assert_eq!(incident["level"], "high", "{incident}");
    assert!(
        incident["event_count"]
            .as_u64()
            .is_some_and(|count| count >= 5),
        "{incident}"
    );
    let id = incident["id"].to_string().trim_matches('"').to_string();

    // The evidence is searchable through the link the incident carries.
    let detail = cairn.get(&format!("/api/v1/incidents/{id}"));
    assert_eq!(detail.status, 200, "{}", detail.text());
    let detail = detail.json();
    let evidence: Vec<u64> = detail["evidence"]
        .as_array()
        .expect("evidence")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert!(evidence.len() >= 5, "{detail}");
    let link = detail["search"].as_str().expect("search link");
    let found = cairn.get(link);
    assert_eq!(found.status, 200, "{link}: {}", found.text());
    let found = found.json();
    let found_seqs: Vec<u64> = found["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|event| event["seq"].as_u64())
        .collect();
    for seq in &evidence {
        assert!(
            found_seqs.contains(seq),
            "evidence {seq} not found by {link}: {found}"
        );
    }

    // No incident for the source below the threshold.
    let all = incidents(&cairn, "?limit=1000");
    assert!(
        all["incidents"]
            .as_array()
            .expect("incidents")
            .iter()
            .all(|incident| group_value(incident, "src_ip") != Some("198.51.100.5")),
        "{all}"
    );

    // Acknowledge; a poller with the cursor sees that change exactly once.
    let cursor = all["next"].clone();
    let cursor = cursor
        .as_str()
        .map_or_else(|| cursor.to_string(), str::to_string);
    let ack = cairn.post(&format!("/api/v1/incidents/{id}/ack"), &[], b"");
    assert_eq!(ack.status, 200, "{}", ack.text());
    let again = cairn.post(&format!("/api/v1/incidents/{id}/ack"), &[], b"");
    assert_eq!(again.status, 200, "ack is idempotent: {}", again.text());
    let changes = incidents(&cairn, &format!("?since={}", url_encode(&cursor)));
    let changed: Vec<&Value> = changes["incidents"]
        .as_array()
        .expect("incidents")
        .iter()
        .collect();
    assert_eq!(changed.len(), 1, "{changes}");
    assert_eq!(changed[0]["status"], "acknowledged", "{changes}");

    // The incident store survives a restart.
    let data_dir = cairn.data_dir.clone();
    let http = cairn.http;
    let syslog = cairn.syslog_port;
    cairn.stop();
    let config = data.path().join("cairn.toml");
    let cairn = Cairn::start_with_ports(
        &data_dir,
        http.port(),
        syslog,
        &["--config", config.to_str().expect("utf-8 path")],
    );
    let after = cairn.get(&format!("/api/v1/incidents/{id}"));
    assert_eq!(after.status, 200, "{}", after.text());
    assert_eq!(after.json()["status"], "acknowledged");
    cairn.stop();
}
