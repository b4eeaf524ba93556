//! Payload builders: one body per (target format, change). Pure functions of their input.
//!
//! - `json`: `{"delivery":ID,"target":NAME,"event":"open|update|acknowledge|resolve",
//!   "change":"opened|…|auto_resolved","update_seq":N,"incident":{…}}`; `incident` is the same
//!   object as in `GET /api/v1/incidents`. `delivery` (also the `X-Cairn-Delivery` header) and
//!   `update_seq` let a receiver drop a resend.
//! - `pagerduty`: an Events API v2 event. `open`/`update` → `trigger` with `payload`
//!   (`summary`, `source`, `severity`, `timestamp`, `component`, `class`, `custom_details`);
//!   `acknowledge`/`resolve` → that action with the `dedup_key` only. `dedup_key` is
//!   `cairn-` + hex SHA-256 of the incident's fingerprint (rule and group values), so every
//!   change of one incident lands on one PagerDuty alert, and a later incident with the same
//!   fingerprint (after the first resolved) opens a new one there too.
//! - `slack`: an incoming-webhook message: `text` (the one-line summary, also what
//!   notifications show) and `blocks` (header, fields, group values, times), with Slack's
//!   `&`, `<`, `>` escaped.

use cairn_correlate::Level;
use cairn_correlate::incident::{Incident, IncidentChange};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::config::{EventKind, Format, WebhookTarget};
use crate::http::incidents::incident_json;

/// The body for `change` to `target`, delivery `delivery_id`.
pub fn render(target: &WebhookTarget, delivery_id: u64, change: &IncidentChange) -> Vec<u8> {
    let value = match target.format {
        Format::Json => generic(&target.name, delivery_id, change),
        Format::PagerDuty => pagerduty(target.routing_key.as_deref().unwrap_or(""), change),
        Format::Slack => slack(change),
    };
    serde_json::to_vec(&value).unwrap_or_default()
}

fn generic(target: &str, delivery_id: u64, change: &IncidentChange) -> Value {
    json!({
        "delivery": delivery_id,
        "target": target,
        "event": EventKind::of(change.kind).name(),
        "change": change.kind.name(),
        "update_seq": change.seq.0,
        "incident": Value::Object(incident_json(&change.incident)),
    })
}

/// The incident's fingerprint as the correlation engine forms it (rule + group values).
fn fingerprint(incident: &Incident) -> String {
    let mut out = incident.rule.clone();
    for (field, value) in &incident.group {
        out.push('\u{1f}');
        out.push_str(field);
        out.push('\u{1e}');
        out.push_str(value);
    }
    out
}

/// `cairn-` + hex SHA-256 of the fingerprint: stable, short (PagerDuty allows 255).
fn dedup_key(incident: &Incident) -> String {
    let digest = Sha256::digest(fingerprint(incident).as_bytes());
    let mut out = String::with_capacity(6 + 64);
    out.push_str("cairn-");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

fn pagerduty_severity(level: Level) -> &'static str {
    match level {
        Level::Critical => "critical",
        Level::High => "error",
        Level::Medium => "warning",
        Level::Low | Level::Informational => "info",
    }
}

/// `field=value, …` of the group.
fn group_text(incident: &Incident) -> String {
    incident
        .group
        .iter()
        .map(|(field, value)| format!("{field}={value}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line: `[HIGH] SSH brute force (src_ip=…) — incident 7 opened`.
fn summary(change: &IncidentChange) -> String {
    let incident = &change.incident;
    let group = group_text(incident);
    let mut text = format!(
        "[{}] {}",
        incident.level.name().to_ascii_uppercase(),
        incident.title
    );
    if !group.is_empty() {
        text.push_str(&format!(" ({group})"));
    }
    text.push_str(&format!(
        " — incident {} {}",
        incident.id,
        change.kind.name().replace('_', " ")
    ));
    text
}

/// Cuts `text` to at most `max` characters (PagerDuty's summary: 1024; Slack's header: 150).
fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn pagerduty(routing_key: &str, change: &IncidentChange) -> Value {
    let incident = &change.incident;
    let action = match EventKind::of(change.kind) {
        EventKind::Open | EventKind::Update => "trigger",
        EventKind::Acknowledge => "acknowledge",
        EventKind::Resolve => "resolve",
    };
    let mut event = json!({
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup_key(incident),
    });
    if action == "trigger" {
        let source = incident
            .group
            .iter()
            .find(|(field, _)| field == "host")
            .or_else(|| incident.group.first())
            .map_or_else(|| "cairn".to_string(), |(_, value)| value.clone());
        let mut details = incident_json(incident);
        details.insert("update_seq".into(), json!(change.seq.0));
        details.insert("change".into(), json!(change.kind.name()));
        event["payload"] = json!({
            "summary": truncate_chars(&summary(change), 1024),
            "source": source,
            "severity": pagerduty_severity(incident.level),
            "timestamp": incident.last_seen.to_rfc3339(),
            "component": incident.rule,
            "class": incident.kind.name(),
            "custom_details": Value::Object(details),
        });
        event["client"] = json!("Cairn");
    }
    event
}

/// Escapes the three characters Slack's mrkdwn treats as control characters.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn slack(change: &IncidentChange) -> Value {
    let incident = &change.incident;
    let emoji = match EventKind::of(change.kind) {
        EventKind::Open => ":rotating_light:",
        EventKind::Update => ":arrows_counterclockwise:",
        EventKind::Acknowledge => ":eyes:",
        EventKind::Resolve => ":white_check_mark:",
    };
    let field = |name: &str, value: &str| json!({"type": "mrkdwn", "text": format!("*{name}*\n{}", slack_escape(value))});
    let group = group_text(incident);
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "emoji": true,
            "text": truncate_chars(&format!("Incident {} {}: {}", incident.id,
                change.kind.name().replace('_', " "), incident.title), 150)}}),
        json!({"type": "section", "fields": [
            field("Status", incident.status.name()),
            field("Level", incident.level.name()),
            field("Rule", &incident.rule),
            field("Events", &incident.event_count.to_string()),
        ]}),
    ];
    if !group.is_empty() {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn",
            "text": truncate_chars(&format!("*Group*: {}", slack_escape(&group)), 3000)}}));
    }
    blocks.push(
        json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!(
            "first seen {} · last seen {} · update {}",
            incident.first_seen.to_rfc3339(),
            incident.last_seen.to_rfc3339(),
            change.seq.0
        )}]}),
    );
    json!({
        "text": truncate_chars(&format!("{emoji} {}", slack_escape(&summary(change))), 3000),
        "blocks": blocks,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use cairn_correlate::AlertKind;
    use cairn_correlate::incident::{ChangeKind, IncidentId, IncidentStatus, UpdateSeq};
    use cairn_ingest::Timestamp;

    use super::*;

    fn change(kind: ChangeKind, status: IncidentStatus) -> IncidentChange {
        IncidentChange {
            seq: UpdateSeq(42),
            kind,
            incident: Incident {
                id: IncidentId(7),
                rule: "ssh-brute".to_string(),
                title: "SSH <brute> force & co".to_string(),
                level: Level::High,
                kind: AlertKind::EventCount,
                status,
                group: vec![("src_ip".to_string(), "203.0.113.7".to_string())],
                first_seen: Timestamp(1_714_557_600_000_000_000),
                last_seen: Timestamp(1_714_557_660_000_000_000),
                created: Timestamp(1_714_557_700_000_000_000),
                updated: Timestamp(1_714_557_700_000_000_000),
                alert_count: 2,
                event_count: 12,
                possibly_incomplete: false,
            },
        }
    }

    fn target(format: Format) -> WebhookTarget {
        WebhookTarget {
            name: "ops".to_string(),
            url: "http://127.0.0.1:9/".to_string(),
            format,
            secret: None,
            routing_key: Some("R0UT1NG".to_string()),
            min_level: Level::Informational,
            rules: Vec::new(),
            events: EventKind::ALL.to_vec(),
            timeout: Duration::from_secs(1),
            max_attempts: 3,
            backoff_base: Duration::from_millis(10),
            backoff_max: Duration::from_millis(100),
        }
    }

    fn body(format: Format, change: &IncidentChange) -> Value {
        serde_json::from_slice(&render(&target(format), 5, change)).expect("json")
    }

    #[test]
    fn generic_json_carries_ids_for_dedupe_and_the_incident() {
        let json = body(
            Format::Json,
            &change(ChangeKind::AutoResolved, IncidentStatus::Resolved),
        );
        assert_eq!(json["delivery"], 5);
        assert_eq!(json["target"], "ops");
        assert_eq!(json["event"], "resolve");
        assert_eq!(json["change"], "auto_resolved");
        assert_eq!(json["update_seq"], 42);
        assert_eq!(json["incident"]["id"], 7);
        assert_eq!(json["incident"]["status"], "resolved");
        assert_eq!(json["incident"]["group"]["src_ip"], "203.0.113.7");
        assert_eq!(json["incident"]["first_seen"], "2024-05-01T10:00:00Z");
    }

    #[test]
    fn pagerduty_maps_actions_severity_and_one_dedup_key_per_fingerprint() {
        let opened = body(
            Format::PagerDuty,
            &change(ChangeKind::Opened, IncidentStatus::Open),
        );
        assert_eq!(opened["routing_key"], "R0UT1NG");
        assert_eq!(opened["event_action"], "trigger");
        assert_eq!(opened["payload"]["severity"], "error");
        assert_eq!(opened["payload"]["source"], "203.0.113.7");
        assert_eq!(opened["payload"]["timestamp"], "2024-05-01T10:01:00Z");
        assert_eq!(opened["payload"]["component"], "ssh-brute");
        assert_eq!(opened["payload"]["custom_details"]["update_seq"], 42);
        assert!(
            opened["payload"]["summary"]
                .as_str()
                .expect("summary")
                .starts_with("[HIGH] SSH <brute> force & co (src_ip=203.0.113.7)"),
            "{opened}"
        );
        let dedup = opened["dedup_key"].as_str().expect("dedup key");
        assert!(dedup.starts_with("cairn-") && dedup.len() == 70, "{dedup}");
        for (kind, status, action) in [
            (ChangeKind::Updated, IncidentStatus::Open, "trigger"),
            (
                ChangeKind::Acknowledged,
                IncidentStatus::Acknowledged,
                "acknowledge",
            ),
            (ChangeKind::Resolved, IncidentStatus::Resolved, "resolve"),
        ] {
            let event = body(Format::PagerDuty, &change(kind, status));
            assert_eq!(event["event_action"], action);
            assert_eq!(event["dedup_key"], dedup, "one alert per incident");
            assert_eq!(event.get("payload").is_some(), action == "trigger");
        }
        let mut other = change(ChangeKind::Opened, IncidentStatus::Open);
        other.incident.group[0].1 = "203.0.113.8".to_string();
        assert_ne!(body(Format::PagerDuty, &other)["dedup_key"], dedup);
    }

    #[test]
    fn slack_has_text_and_blocks_with_escaping() {
        let message = body(
            Format::Slack,
            &change(ChangeKind::Opened, IncidentStatus::Open),
        );
        let text = message["text"].as_str().expect("text");
        assert!(text.starts_with(":rotating_light: [HIGH] SSH &lt;brute&gt; force &amp; co"));
        assert!(text.ends_with("incident 7 opened"), "{text}");
        let blocks = message["blocks"].as_array().expect("blocks");
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(
            blocks[0]["text"]["text"],
            "Incident 7 opened: SSH <brute> force & co"
        );
        assert_eq!(blocks[1]["fields"][1]["text"], "*Level*\nhigh");
        assert_eq!(blocks[2]["text"]["text"], "*Group*: src_ip=203.0.113.7");
        assert_eq!(blocks.last().expect("context")["type"], "context");
        let mut long = change(ChangeKind::Opened, IncidentStatus::Open);
        long.incident.title = "x".repeat(500);
        let header = body(Format::Slack, &long)["blocks"][0]["text"]["text"]
            .as_str()
            .expect("header")
            .chars()
            .count();
        assert_eq!(header, 150);
    }
}
