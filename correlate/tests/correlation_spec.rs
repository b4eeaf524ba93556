//! The correlation examples of the Sigma specification (v2.1) load and behave as the
//! specification describes; malformed correlation graphs are rejected with the reason and
//! the place.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use cairn_correlate::correlation::{CorrelationOptions, Correlations};
use cairn_correlate::{
    Alert, AlertKind, CompileOptions, Correlator, EngineConfig, FieldMapping, Matcher,
    ObservationBatch, Rule, parse_rules_str,
};
use cairn_ingest::{Event, Seq, Timestamp};
use common::{EventExt, event};

const SECOND: i64 = 1_000_000_000;
const BASE: i64 = 1_700_000_000 * SECOND;

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/sigma/spec-correlation")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

struct Built {
    rules: Vec<Rule>,
    matcher: Matcher,
    correlations: Arc<Correlations>,
    rejected: Vec<String>,
}

fn build(texts: &[(&str, String)]) -> Built {
    let mut report = cairn_correlate::LoadReport::default();
    for (name, text) in texts {
        report.extend(parse_rules_str(text, name));
    }
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    let (matcher, rejected) = Matcher::compile(&report.loaded, &CompileOptions::default());
    assert!(rejected.is_empty(), "{rejected:?}");
    let (correlations, rejected) = Correlations::build(
        &report.loaded,
        &matcher,
        &FieldMapping::new(),
        &CorrelationOptions::default(),
    );
    Built {
        rules: report.loaded,
        matcher,
        correlations: Arc::new(correlations),
        rejected: rejected.iter().map(ToString::to_string).collect(),
    }
}

/// Runs events (already timestamped) through match → observe → correlate; returns every alert.
fn run(built: &Built, events: Vec<Event>) -> Vec<Alert> {
    let mut correlator = Correlator::new(Arc::clone(&built.correlations), &EngineConfig::default());
    let mut scratch = built.matcher.scratch();
    let mut matched = Vec::new();
    let mut alerts = Vec::new();
    for chunk in events.chunks(3) {
        let mut batch = ObservationBatch::default();
        for event in chunk {
            built.matcher.match_event(event, &mut scratch, &mut matched);
            batch.missing_group_field += built.correlations.observe(
                event,
                &matched,
                &mut batch.observations,
                &mut batch.alerts,
            );
            batch.saw(event.ts);
        }
        correlator.submit(batch, &mut alerts);
    }
    correlator.finish(&mut alerts);
    alerts
}

fn at(mut built: Event, second: i64, seq: u64) -> Event {
    built.ts = Timestamp(BASE + second * SECOND);
    built.seq = Seq(seq);
    built
}

fn login(event_id: &str, user: &str, second: i64, seq: u64) -> Event {
    at(
        event("windows security event")
            .host("dc1")
            .text("EventID", event_id)
            .text("User", user),
        second,
        seq,
    )
}

fn labels(alerts: &[Alert]) -> Vec<String> {
    alerts.iter().map(|alert| alert.rule.to_string()).collect()
}

#[test]
fn failed_logins_followed_by_successful_login() {
    let built = build(&[(
        "failed_logins_followed_by_successful_login.yml",
        fixture("failed_logins_followed_by_successful_login.yml"),
    )]);
    assert!(built.rejected.is_empty(), "{:?}", built.rejected);
    assert_eq!(built.correlations.len(), 2);
    assert_eq!(built.correlations.max_depth(), 2);
    let outer = built
        .correlations
        .find("b180ead8-d58f-40b2-ae54-c8940995b9b6")
        .expect("outer correlation");
    let inner = built
        .correlations
        .find("a8418a5a-5fc4-46b5-b23b-6c73beb19d41")
        .expect("inner correlation");
    assert!(built.correlations.info(outer).expect("info").emits);
    // "Only the outermost correlation rule" alerts: the chained one only feeds it.
    assert!(!built.correlations.info(inner).expect("info").emits);

    // Ten failures of alice within 10 minutes, then her successful login: one alert.
    let mut events: Vec<Event> = (0..10)
        .map(|i| login("4625", "alice", i * 30, i as u64 + 1))
        .collect();
    events.push(login("4624", "alice", 400, 11));
    let alerts = run(&built, events);
    assert_eq!(labels(&alerts), ["b180ead8-d58f-40b2-ae54-c8940995b9b6"]);
    let alert = &alerts[0];
    assert_eq!(alert.kind, AlertKind::TemporalOrdered);
    assert_eq!(alert.group, vec![(Arc::from("User"), "alice".to_owned())]);
    assert_eq!(alert.ts, Timestamp(BASE + 400 * SECOND));
    // The inner correlation completed at the 10th failure (270 s).
    assert_eq!(alert.first_ts, Timestamp(BASE + 270 * SECOND));
    assert_eq!(alert.evidence, vec![Seq(10), Seq(11)]);
    assert_eq!(alert.level, cairn_correlate::Level::High);

    // Near misses: nine failures; ten failures then success of another user; success first;
    // success more than 10 minutes after the burst.
    let nine: Vec<Event> = (0..9)
        .map(|i| login("4625", "bob", i * 30, i as u64 + 1))
        .chain([login("4624", "bob", 300, 10)])
        .collect();
    assert!(run(&built, nine).is_empty());
    let other_user: Vec<Event> = (0..10)
        .map(|i| login("529", "carol", i * 30, i as u64 + 1))
        .chain([login("528", "dave", 300, 11)])
        .collect();
    assert!(run(&built, other_user).is_empty());
    let success_first: Vec<Event> = [login("4624", "erin", 0, 1)]
        .into_iter()
        .chain((0..10).map(|i| login("4625", "erin", 10 + i, i as u64 + 2)))
        .collect();
    assert!(run(&built, success_first).is_empty());
    let too_late: Vec<Event> = (0..10)
        .map(|i| login("4625", "frank", i, i as u64 + 1))
        .chain([login("4624", "frank", 9 + 601, 11)])
        .collect();
    assert!(run(&built, too_late).is_empty());
}

#[test]
fn field_name_aliases_group_across_fields() {
    let built = build(&[("field_name_aliases.yml", fixture("field_name_aliases.yml"))]);
    assert!(built.rejected.is_empty(), "{:?}", built.rejected);
    let error = |second: i64, seq: u64, destination: &str, source: &str| {
        at(
            event("http 500")
                .text("http.response.status_code", "500")
                .text("destination.ip", destination)
                .text("source.ip", source),
            second,
            seq,
        )
    };
    let connection = |second: i64, seq: u64, source: &str, destination: &str| {
        at(
            event("new connection")
                .text("event.category", "network")
                .text("event.type", "connection")
                .text("event.outcome", "success")
                .text("source.ip", source)
                .text("destination.ip", destination),
            second,
            seq,
        )
    };
    // The web server (10.0.0.5) answered 500 to 203.0.113.9, then opened a connection to it.
    let alerts = run(
        &built,
        vec![
            error(0, 1, "10.0.0.5", "203.0.113.9"),
            connection(4, 2, "10.0.0.5", "203.0.113.9"),
        ],
    );
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].rule.as_ref(), "—");
    assert_eq!(
        alerts[0].group,
        vec![
            (Arc::from("internal_ip"), "10.0.0.5".to_owned()),
            (Arc::from("remote_ip"), "203.0.113.9".to_owned()),
        ]
    );
    // Near misses: the connection goes the other way; or comes 11 s later.
    assert!(
        run(
            &built,
            vec![
                error(0, 1, "10.0.0.5", "203.0.113.9"),
                connection(4, 2, "203.0.113.9", "10.0.0.5"),
            ],
        )
        .is_empty()
    );
    assert!(
        run(
            &built,
            vec![
                error(0, 1, "10.0.0.5", "203.0.113.9"),
                connection(11, 2, "10.0.0.5", "203.0.113.9"),
            ],
        )
        .is_empty()
    );
}

/// Detection rules the schema examples refer to (by id or name).
const SCHEMA_TARGETS: &str = r#"
title: failed logon
id: 5638f7c0-ac70-491d-8465-2a65075e0d86
logsource: {product: windows}
detection:
  sel: {EventID: 4625}
  condition: sel
---
title: recon a
name: recon_cmd_a
logsource: {product: windows}
detection:
  sel: {Image|endswith: '\whoami.exe'}
  condition: sel
---
title: recon b
name: recon_cmd_b
logsource: {product: windows}
detection:
  sel: {Image|endswith: '\ipconfig.exe'}
  condition: sel
---
title: recon c
name: recon_cmd_c
logsource: {product: windows}
detection:
  sel: {Image|endswith: '\net.exe'}
  condition: sel
"#;

#[test]
fn schema_examples_load_and_unsupported_types_are_rejected_as_such() {
    let mut texts = vec![("targets.yml", SCHEMA_TARGETS.to_owned())];
    for name in [
        "schema_event_count.yml",
        "schema_event_count_ecs.yml",
        "schema_value_count.yml",
        "schema_temporal.yml",
        "schema_temporal_ordered.yml",
        "schema_value_sum.yml",
        "schema_value_avg.yml",
        "schema_value_percentile.yml",
    ] {
        texts.push((name, fixture(name)));
    }
    let built = build(&texts);
    assert_eq!(built.correlations.len(), 5, "{:?}", built.rejected);
    assert_eq!(built.rejected.len(), 3, "{:?}", built.rejected);
    for (rejection, kind) in
        built
            .rejected
            .iter()
            .zip(["value_sum", "value_avg", "value_percentile"])
    {
        assert!(
            rejection.contains(&format!("unsupported: correlation.type: '{kind}'")),
            "{rejection}"
        );
    }
    assert!(built.rules.len() >= 12);
}

#[test]
fn schema_examples_behave_as_described() {
    let texts = vec![
        ("targets.yml", SCHEMA_TARGETS.to_owned()),
        ("schema_event_count.yml", fixture("schema_event_count.yml")),
        ("schema_value_count.yml", fixture("schema_value_count.yml")),
        ("schema_temporal.yml", fixture("schema_temporal.yml")),
        (
            "schema_temporal_ordered.yml",
            fixture("schema_temporal_ordered.yml"),
        ),
    ];
    let built = build(&texts);
    assert!(built.rejected.is_empty(), "{:?}", built.rejected);
    let logon = |computer: &str, workstation: &str, user: &str, second: i64, seq: u64| {
        at(
            event("logon failure")
                .text("EventID", "4625")
                .text("ComputerName", computer)
                .text("WorkstationName", workstation)
                .text("User", user),
            second,
            seq,
        )
    };
    // event_count: ≥ 100 failed logins to one ComputerName in 1 h.
    let events: Vec<Event> = (0..100)
        .map(|i| logon("srv1", "ws1", "alice", i * 30, i as u64 + 1))
        .collect();
    let alerts = run(&built, events);
    let count: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.rule.as_ref() == "0e95725d-7320-415d-80f7-004da920fc11")
        .collect();
    assert_eq!(count.len(), 1);
    assert_eq!(count[0].event_count, 100);
    assert_eq!(count[0].evidence.len(), cairn_correlate::MAX_EVIDENCE);
    // 100 logins spread over more than an hour: the sliding window never holds 100.
    let events: Vec<Event> = (0..100)
        .map(|i| logon("srv1", "ws1", "alice", i * 37, i as u64 + 1))
        .collect();
    assert!(
        run(&built, events)
            .iter()
            .all(|a| a.rule.as_ref() != "0e95725d-7320-415d-80f7-004da920fc11")
    );
    // value_count: ≥ 100 distinct users per (ComputerName, WorkstationName) in a day.
    let events: Vec<Event> = (0..100)
        .map(|i| logon("srv2", "ws9", &format!("user{i}"), i * 60, i as u64 + 1))
        .collect();
    let alerts = run(&built, events);
    let distinct: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.rule.as_ref() == "0e95725d-7320-415d-80f7-004da920fc12")
        .collect();
    assert_eq!(distinct.len(), 1);
    assert_eq!(
        distinct[0].group,
        vec![
            (Arc::from("ComputerName"), "srv2".to_owned()),
            (Arc::from("WorkstationName"), "ws9".to_owned()),
        ]
    );
    // 99 distinct users (the 100th repeats one): no value_count alert.
    let events: Vec<Event> = (0..100)
        .map(|i| {
            logon(
                "srv2",
                "ws9",
                &format!("user{}", i.min(98)),
                i * 60,
                i as u64 + 1,
            )
        })
        .collect();
    assert!(
        run(&built, events)
            .iter()
            .all(|a| a.rule.as_ref() != "0e95725d-7320-415d-80f7-004da920fc12")
    );
    // temporal / temporal_ordered: recon a, b, c by one user on one computer within 5 min.
    let recon = |image: &str, second: i64, seq: u64| {
        at(
            event("process")
                .text("Image", image)
                .text("ComputerName", "pc7")
                .text("User", "mallory"),
            second,
            seq,
        )
    };
    let in_order = vec![
        recon("C:\\Windows\\System32\\whoami.exe", 0, 1),
        recon("C:\\Windows\\System32\\ipconfig.exe", 60, 2),
        recon("C:\\Windows\\System32\\net.exe", 120, 3),
    ];
    let mut fired = labels(&run(&built, in_order));
    fired.sort();
    assert_eq!(fired, ["Recon", "Recon ordered"]);
    let reversed = vec![
        recon("C:\\Windows\\System32\\net.exe", 0, 1),
        recon("C:\\Windows\\System32\\ipconfig.exe", 60, 2),
        recon("C:\\Windows\\System32\\whoami.exe", 120, 3),
    ];
    assert_eq!(labels(&run(&built, reversed)), ["Recon"]);
    let too_slow = vec![
        recon("C:\\Windows\\System32\\whoami.exe", 0, 1),
        recon("C:\\Windows\\System32\\ipconfig.exe", 200, 2),
        recon("C:\\Windows\\System32\\net.exe", 301, 3),
    ];
    assert!(run(&built, too_slow).is_empty());
}

const HEAD: &str = "title: base\nname: base\nlogsource: {product: test}\ndetection:\n  sel: {kind: x}\n  condition: sel\n";

fn rejections(correlations: &str) -> Vec<String> {
    let built = build(&[("graph.yml", format!("{HEAD}---\n{correlations}"))]);
    built.rejected
}

#[test]
fn graph_rejections_name_the_reason() {
    let reasons = rejections(
        "title: unknown ref\ncorrelation:\n  type: event_count\n  rules: [nope]\n  timespan: 1m\n  condition: {gte: 2}\n",
    );
    assert_eq!(reasons.len(), 1);
    assert!(
        reasons[0].contains("correlation.rules[0]: no loaded rule has the name or id 'nope'"),
        "{reasons:?}"
    );

    let reasons = rejections(
        "title: a\nname: a\ncorrelation:\n  type: event_count\n  rules: [b]\n  timespan: 1m\n  condition: {gte: 2}\n---\n\
         title: b\nname: b\ncorrelation:\n  type: event_count\n  rules: [a]\n  timespan: 1m\n  condition: {gte: 2}\n",
    );
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .all(|reason| reason.contains("reference cycle")),
        "{reasons:?}"
    );

    let reasons = rejections(
        "title: self\nname: self\ncorrelation:\n  type: event_count\n  rules: [self]\n  timespan: 1m\n  condition: {gte: 2}\n",
    );
    assert!(reasons[0].contains("reference cycle"), "{reasons:?}");

    // A chain of 5 correlations over `base`: depths 1..=5, the default limit is 4.
    let mut chain = String::new();
    let mut previous = "base".to_owned();
    for level in 1..=5 {
        chain.push_str(&format!(
            "title: level {level}\nname: level{level}\ncorrelation:\n  type: event_count\n  rules: [{previous}]\n  timespan: 1m\n  condition: {{gte: 1}}\n---\n"
        ));
        previous = format!("level{level}");
    }
    let built = build(&[("graph.yml", format!("{HEAD}---\n{chain}"))]);
    assert_eq!(built.correlations.len(), 4);
    assert_eq!(built.rejected.len(), 1);
    assert!(
        built.rejected[0].contains("chain of correlations deeper than 4"),
        "{:?}",
        built.rejected
    );

    // Ambiguous name.
    let reasons = rejections(
        "title: dup\nname: base\nlogsource: {product: test}\ndetection:\n  sel: {kind: y}\n  condition: sel\n---\n\
         title: amb\ncorrelation:\n  type: event_count\n  rules: [base]\n  timespan: 1m\n  condition: {gte: 2}\n",
    );
    assert!(
        reasons[0].contains("'base' is ambiguous (2 rules"),
        "{reasons:?}"
    );

    // Grouping by a field the upstream correlation's alerts do not carry.
    let reasons = rejections(
        "title: up\nname: up\ncorrelation:\n  type: event_count\n  rules: [base]\n  group-by: [src_ip]\n  timespan: 1m\n  condition: {gte: 2}\n---\n\
         title: down\ncorrelation:\n  type: temporal\n  rules: [up, base]\n  group-by: [user]\n  timespan: 1m\n",
    );
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0]
            .contains("correlation.group-by: 'user' is not a group-by field of correlation 'up'"),
        "{reasons:?}"
    );

    // A correlation over a rejected one is rejected, and says so.
    let reasons = rejections(
        "title: broken\nname: broken\ncorrelation:\n  type: event_count\n  rules: [base]\n  timespan: 1x\n  condition: {gte: 2}\n---\n\
         title: over broken\ncorrelation:\n  type: temporal\n  rules: [broken, base]\n  timespan: 1m\n",
    );
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons[0].contains("correlation.timespan: '1x'"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains("correlation 'broken' was rejected"),
        "{reasons:?}"
    );
}

#[test]
fn generate_keeps_referenced_rules_alerting() {
    let built = build(&[(
        "generate.yml",
        format!(
            "{HEAD}generate: true\n---\ntitle: plain\nname: plain\nlogsource: {{product: test}}\ndetection:\n  sel: {{kind: y}}\n  condition: sel\n---\n\
             title: over both\ncorrelation:\n  type: temporal\n  rules: [base, plain]\n  timespan: 1m\n"
        ),
    )]);
    assert!(built.rejected.is_empty(), "{:?}", built.rejected);
    let events = vec![
        at(event("a").host("h").text("kind", "x"), 0, 1),
        at(event("b").host("h").text("kind", "y"), 1, 2),
    ];
    let mut fired = labels(&run(&built, events));
    fired.sort();
    // `base` has generate: true (alerts and feeds); `plain` only feeds.
    assert_eq!(fired, ["base", "over both"]);
}

mod untrusted {
    use super::*;
    use proptest::prelude::*;

    fn pick<'a>(options: &'a [&'a str]) -> impl Strategy<Value = &'a str> + 'a {
        (0..options.len()).prop_map(move |index| options[index])
    }

    fn correlation_document() -> impl Strategy<Value = String> {
        (
            pick(&["event_count", "value_count", "temporal", "temporal_ordered", "value_sum", "bogus", "[a]", "{x: 1}", "''"]),
            pick(&["[base]", "[c0]", "[c1, base]", "[c2]", "[base, c0, c1]", "base", "[]", "[base, base]", "{a: b}", "[[x]]", "~"]),
            pick(&["[src]", "[src, dst]", "[]", "src", "[1]", "[{a: b}]", "~", "[a, b, c, d, e, f, g, h, i, j]"]),
            pick(&["1s", "60s", "5m", "1h", "1d", "0s", "99999d", "x", "1.5h", "-1m", "''", "[1]", "9223372036854775807s"]),
            pick(&[
                "{gte: 2}", "{gt: 1, lte: 5}", "{eq: 0}", "{lt: 1}", "{neq: 3}", "{field: v, gte: 2}",
                "{field: [v, w], lt: 4}", "base and not c0", "c0 and not base", "a or b", "{gte: -1}",
                "{gte: 1.5}", "{}", "[1]", "~", "{gte: 99999999999}",
            ]),
            pick(&["", "  aliases: {src: {base: s, c0: t}}\n", "  aliases: {src: {zzz: s}}\n", "  aliases: [1]\n", "  aliases: {src: {base: [1]}}\n"]),
            pick(&["", "generate: true\n", "generate: maybe\n", "level: high\n", "level: extreme\n"]),
        )
            .prop_map(|(kind, rules, group, timespan, condition, aliases, extra)| {
                format!(
                    "correlation:\n  type: {kind}\n  rules: {rules}\n  group-by: {group}\n  timespan: {timespan}\n  condition: {condition}\n{aliases}{extra}"
                )
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

        /// Hostile or broken correlation documents never panic, and each one is either built
        /// or rejected with a reason.
        #[test]
        fn any_correlation_document_builds_or_is_rejected(
            documents in prop::collection::vec(correlation_document(), 1..4),
        ) {
            let mut text = HEAD.to_owned();
            for (index, document) in documents.iter().enumerate() {
                text.push_str(&format!("---\ntitle: c{index}\nname: c{index}\n{document}"));
            }
            let report = parse_rules_str(&text, "fuzz.yml");
            let loaded_correlations = report
                .loaded
                .iter()
                .filter(|rule| matches!(rule.kind, cairn_correlate::RuleKind::Correlation { .. }))
                .count();
            let (matcher, _) = Matcher::compile(&report.loaded, &CompileOptions::default());
            let (correlations, rejected) = Correlations::build(
                &report.loaded,
                &matcher,
                &FieldMapping::new(),
                &CorrelationOptions::default(),
            );
            prop_assert_eq!(correlations.len() + rejected.len(), loaded_correlations);
            for rejection in &rejected {
                prop_assert!(!rejection.reason.is_empty());
            }
            // Whatever was built runs.
            let built = Built { rules: report.loaded, matcher, correlations: Arc::new(correlations), rejected: Vec::new() };
            let events: Vec<Event> = (0..6)
                .map(|i| at(event("x").host("h").text("kind", "x").text("src", "1.2.3.4").text("v", &i.to_string()), i, i as u64 + 1))
                .collect();
            let _ = run(&built, events);
        }
    }
}
