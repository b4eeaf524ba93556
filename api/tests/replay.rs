//! `cairn replay` through the real binary: files and stdin, formats, rule selection, the
//! built-in pack, determinism across thread counts, and refusal of bad rules.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::TempDir;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/sigma/spec-correlation")
        .join(name)
}

fn cairn() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
}

fn replay(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = cairn()
        .arg("replay")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cairn replay");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(input).expect("write stdin");
    }
    child.wait_with_output().expect("cairn replay")
}

fn alerts(output: &Output) -> Vec<Value> {
    assert!(
        output.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone())
        .expect("utf-8 output")
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect()
}

/// The committed 2,000-line sample of the peers' sshd benchmark: 24 brute-force alerts
/// (`correlate/tests/correlation_sshd.rs` checks that figure against a reference model).
#[test]
fn sshd_sample_gives_the_reference_alerts_with_the_benchmark_rule() {
    let rule = fixture("sshd_bruteforce_correlation.yml");
    let log = fixture("sshd_bench_sample.log");
    let output = replay(
        &[
            "--year",
            "2026",
            "--rules",
            rule.to_str().expect("path"),
            log.to_str().expect("path"),
        ],
        None,
    );
    let alerts = alerts(&output);
    assert_eq!(alerts.len(), 24, "{alerts:?}");
    for alert in &alerts {
        for key in ["rule", "title", "level", "ts", "group", "event_count"] {
            assert!(alert.get(key).is_some(), "{key} missing in {alert}");
        }
        assert_eq!(alert["rule"], "9a1c2b3d-0000-4000-8000-000000000002");
        assert_eq!(alert["level"], "high");
        assert!(alert["group"]["src_ip"].is_string(), "{alert}");
        assert!(alert["event_count"].as_u64() >= Some(5), "{alert}");
        assert!(
            alert["ts"]
                .as_str()
                .is_some_and(|ts| ts.starts_with("2026-")),
            "{alert}"
        );
        // Evidence is line numbers of the input: each is a sshd failure from that source.
        let evidence = alert["evidence"].as_array().expect("evidence");
        assert_eq!(
            evidence.len() as u64,
            alert["event_count"].as_u64().unwrap_or(0)
        );
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("2000 lines"), "{stderr}");
    assert!(stderr.contains("24 alerts"), "{stderr}");

    // The evidence line numbers point at the failures that made the alert.
    let text = std::fs::read_to_string(&log).expect("sample");
    let lines: Vec<&str> = text.lines().collect();
    let first = &alerts[0];
    let source = first["group"]["src_ip"].as_str().expect("src_ip");
    for seq in first["evidence"].as_array().expect("evidence") {
        let line = lines[seq.as_u64().expect("seq") as usize - 1];
        assert!(
            line.contains("sshd[") && line.contains("Failed password") && line.contains(source),
            "{line}"
        );
    }
}

#[test]
fn output_does_not_depend_on_thread_count_or_on_reading_stdin() {
    let rule = fixture("sshd_bruteforce_correlation.yml");
    let log = fixture("sshd_bench_sample.log");
    let rule = rule.to_str().expect("path");
    let one = replay(
        &[
            "--year",
            "2026",
            "--workers",
            "1",
            "--rules",
            rule,
            log.to_str().expect("path"),
        ],
        None,
    );
    let four = replay(
        &[
            "--year",
            "2026",
            "--workers",
            "4",
            "--rules",
            rule,
            log.to_str().expect("path"),
        ],
        None,
    );
    let text = std::fs::read(&log).expect("sample");
    let piped = replay(&["--year", "2026", "--rules", rule, "-"], Some(&text));
    assert_eq!(alerts(&one).len(), 24);
    assert_eq!(one.stdout, four.stdout);
    assert_eq!(one.stdout, piped.stdout);
}

#[test]
fn builtin_pack_runs_when_no_rules_are_given() {
    let data = TempDir::new("replay-builtin");
    let log = data.path().join("auth.log");
    let mut text = String::new();
    // Six failures from one source within a minute: the built-in SSH brute-force correlation.
    for second in 0..6 {
        text.push_str(&format!(
            "Mar  3 10:00:{second:02} bastion sshd[811]: Failed password for invalid user admin{second} from 192.0.2.44 port 4{second}022 ssh2\n"
        ));
    }
    // A kernel OOM kill: a built-in detection rule that alerts on its own.
    text.push_str(
        "Mar  3 10:01:00 db1 kernel: [12345.678] Out of memory: Killed process 4242 (postgres) total-vm:1234kB, anon-rss:1000kB, file-rss:0kB, shmem-rss:0kB, UID:113 pgtables:100kB oom_score_adj:0\n",
    );
    std::fs::write(&log, text).expect("write log");
    let output = replay(&["--year", "2025", log.to_str().expect("path")], None);
    let alerts = alerts(&output);
    let brute_force: Vec<&Value> = alerts
        .iter()
        .filter(|alert| alert["kind"] == "event_count" && alert["group"]["src_ip"] == "192.0.2.44")
        .collect();
    assert_eq!(brute_force.len(), 1, "{alerts:#?}");
    assert!(
        brute_force[0]["title"]
            .as_str()
            .is_some_and(|title| title.to_lowercase().contains("brute")),
        "{alerts:#?}"
    );
    let detections: Vec<&Value> = alerts
        .iter()
        .filter(|alert| alert["kind"] == "detection")
        .collect();
    assert!(
        detections
            .iter()
            .any(|alert| alert["group"]["host"] == "db1"
                && alert["title"]
                    .as_str()
                    .is_some_and(|title| title.to_lowercase().contains("oom")
                        || title.to_lowercase().contains("out of memory"))),
        "{alerts:#?}"
    );
    assert!(
        alerts.iter().all(|alert| alert["ts"]
            .as_str()
            .is_some_and(|ts| ts.starts_with("2025-03-03"))),
        "{alerts:#?}"
    );
}

#[test]
fn ndjson_input_and_a_detection_rule_given_with_rules() {
    let data = TempDir::new("replay-ndjson");
    let rule = data.path().join("rule.yml");
    std::fs::write(
        &rule,
        "title: Payment refused\nid: 0b9f6a43-5d0c-4c38-8d3a-2b0f3c6c1e01\nlevel: medium\n\
         logsource:\n    product: payments\ndetection:\n    selection:\n        status: refused\n\
         \x20       amount|gte: 1000\n    condition: selection\n",
    )
    .expect("write rule");
    let events = concat!(
        r#"{"timestamp":"2026-01-02T03:04:05Z","host":"pay1","message":"tx","status":"refused","amount":5000}"#,
        "\n",
        r#"{"timestamp":"2026-01-02T03:04:06Z","host":"pay1","message":"tx","status":"refused","amount":10}"#,
        "\n",
        r#"{"timestamp":"2026-01-02T03:04:07Z","host":"pay2","message":"tx","status":"ok","amount":5000}"#,
        "\n",
        "not json\n",
    );
    let output = replay(
        &[
            "--format",
            "ndjson",
            "--rules",
            rule.to_str().expect("path"),
            "-",
        ],
        Some(events.as_bytes()),
    );
    let alerts = alerts(&output);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["rule"], "0b9f6a43-5d0c-4c38-8d3a-2b0f3c6c1e01");
    assert_eq!(alerts[0]["group"]["host"], "pay1");
    assert_eq!(alerts[0]["ts"], "2026-01-02T03:04:05Z");
    assert_eq!(alerts[0]["evidence"], serde_json::json!([1]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("1 rejected lines"), "{stderr}");
}

#[test]
fn a_rejected_rule_stops_the_replay_with_its_reason() {
    let data = TempDir::new("replay-bad-rule");
    let rule = data.path().join("bad.yml");
    std::fs::write(
        &rule,
        "title: Broken\nlogsource:\n    product: linux\ndetection:\n    selection:\n        message|contians: x\n    condition: selection\n",
    )
    .expect("write rule");
    let output = replay(
        &["--rules", rule.to_str().expect("path"), "-"],
        Some(b"line\n"),
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("contians"), "{stderr}");

    let missing = replay(&["/nonexistent/cairn-replay-input.log"], None);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/cairn-replay-input.log")
    );
}

/// Skipping lines that contain none of the rules' literals must not change any alert: the same
/// rules over the same lines, with and without the skip.
#[test]
fn skipping_unmatchable_lines_gives_the_same_alerts() {
    use cairn_api::replay::{Input, InputFormat, ReplayOptions, run};
    use cairn_api::signatures::{RuleSet, RuleSources};

    let data = TempDir::new("replay-skip");
    let rules = data.path().join("rules.yml");
    std::fs::write(
        &rules,
        concat!(
            "title: keyword\nid: 11111111-1111-4111-8111-111111111111\nlevel: medium\n",
            "logsource: {product: linux}\ndetection:\n    keywords: ['session opened', 'UFW BLOCK']\n",
            "    condition: keywords\n---\n",
            "title: app and message\nid: 22222222-2222-4222-8222-222222222222\nlevel: medium\n",
            "logsource: {product: linux}\ndetection:\n    selection:\n        program: sudo\n",
            "        message|contains: 'Failed password'\n    condition: selection\n---\n",
            "title: host\nid: 33333333-3333-4333-8333-333333333333\nlevel: medium\n",
            "logsource: {product: linux}\ndetection:\n    selection:\n        hostname|startswith: SRV1\n",
            "    condition: selection\n",
        ),
    )
    .expect("write rules");
    let bruteforce = fixture("sshd_bruteforce_correlation.yml");
    let (set, problems) = RuleSet::load(&RuleSources {
        builtin: false,
        paths: vec![rules, bruteforce],
        options: cairn_correlate::CompileOptions::default(),
    });
    assert!(problems.is_empty(), "{problems:?}");
    assert!(
        set.matcher.header_literals().is_some(),
        "these rules only need header literals, so the skip is exercised"
    );
    // The sshd sample, plus the 182 curated lines of real syslog variants (with lines that hit
    // each rule's literals in mixed case, and JSON bodies).
    let curated = data.path().join("curated.log");
    let mut text = String::new();
    let jsonl = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/syslog/curated_syslog_lines.jsonl"),
    )
    .expect("curated lines");
    for line in jsonl.lines() {
        let record: Value = serde_json::from_str(line).expect("jsonl");
        if let Some(line) = record["line"].as_str() {
            text.push_str(&line.replace(['\n', '\r'], " "));
            text.push('\n');
        }
    }
    text.push_str("<38>Mar  3 10:00:00 srv1 sudo: FAILED PASSWORD for x\n");
    text.push_str(
        "<38>Mar  3 10:00:01 web sudo: pam_unix(sudo:session): Session Opened for root\n",
    );
    text.push_str("<38>Mar  3 10:00:02 web kernel: [1.0] [ufw block] IN=eth0\n");
    text.push_str("<38>Mar  3 10:00:03 web app: {\"message\":\"session\\u0020opened\"}\n");
    std::fs::write(&curated, text).expect("write curated");
    let inputs = vec![
        Input::File(fixture("sshd_bench_sample.log")),
        Input::File(curated),
    ];
    let matcher = std::sync::Arc::new(set.matcher);
    let replay_with = |skip: bool| {
        let options = ReplayOptions {
            matcher: std::sync::Arc::clone(&matcher),
            correlations: std::sync::Arc::clone(&set.correlations),
            engine: cairn_correlate::EngineConfig::default(),
            normaliser: std::sync::Arc::new(cairn_ingest::normalise::Normaliser::builtin()),
            parse: cairn_ingest::parse::ParseOptions {
                year: Some(2026),
                ..cairn_ingest::parse::ParseOptions::default()
            },
            format: InputFormat::Auto,
            workers: 2,
            skip_unmatchable: skip,
        };
        let mut out = Vec::new();
        let summary = run(&inputs, &options, &mut out).expect("replay");
        (out, summary)
    };
    let (with_skip, summary) = replay_with(true);
    let (without, reference) = replay_with(false);
    assert_eq!(
        String::from_utf8_lossy(&with_skip),
        String::from_utf8_lossy(&without)
    );
    assert_eq!(summary.lines, reference.lines);
    assert_eq!(summary.events, reference.events);
    assert_eq!(summary.matched_events, reference.matched_events);
    assert!(
        summary.alerts > 24,
        "detections and correlations: {summary:?}"
    );
}
