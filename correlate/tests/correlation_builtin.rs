//! The built-in correlation pack through the real path: raw syslog lines → `parse_syslog` →
//! `Normaliser::builtin()` → `Matcher` (whole built-in pack) → `Correlations::observe` →
//! `Correlator`. For every built-in correlation: a scenario that gives exactly the expected
//! alert, and a near miss that gives none.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use cairn_correlate::builtin::{builtin_correlation_rules, builtin_pack};
use cairn_correlate::correlation::{CorrelationOptions, Correlations};
use cairn_correlate::{
    Alert, AlertKind, CompileOptions, Correlator, EngineConfig, FieldMapping, Matcher,
    ObservationBatch, Rule, RuleKind,
};
use cairn_ingest::normalise::Normaliser;
use cairn_ingest::parse::{ParseOptions, parse_syslog};
use cairn_ingest::{Event, EventFlags, FrameMeta, Seq, Source, Timestamp};

const SECOND: i64 = 1_000_000_000;
const BASE: i64 = 1_728_684_855 * SECOND; // 2024-10-11T22:14:15Z

struct Pack {
    rules: Vec<Rule>,
    matcher: Matcher,
    correlations: Arc<Correlations>,
    normaliser: Normaliser,
}

fn pack() -> Pack {
    let report = builtin_pack();
    assert!(report.rejected.is_empty(), "{:#?}", report.rejected);
    let (matcher, rejected) = Matcher::compile(&report.loaded, &CompileOptions::default());
    assert!(rejected.is_empty(), "{rejected:#?}");
    let (correlations, rejected) = Correlations::build(
        &report.loaded,
        &matcher,
        &FieldMapping::new(),
        &CorrelationOptions::default(),
    );
    assert!(rejected.is_empty(), "{rejected:#?}");
    Pack {
        rules: report.loaded,
        matcher,
        correlations: Arc::new(correlations),
        normaliser: Normaliser::builtin(),
    }
}

fn parse(line: &str, second: i64, seq: u64) -> Event {
    let meta = FrameMeta {
        seq: Seq(seq),
        received_at: Timestamp(BASE),
        peer: None,
        source: Source::SyslogUdp,
        flags: EventFlags::empty(),
    };
    let mut event = parse_syslog(
        Bytes::copy_from_slice(line.as_bytes()),
        &meta,
        &ParseOptions::default(),
    );
    // Event time of the scenario (the lines all carry the same timestamp).
    event.ts = Timestamp(BASE + second * SECOND);
    event
}

/// Correlation alerts of a scenario `(second, line)`, fed in batches of 4.
fn correlate(pack: &Pack, scenario: &[(i64, String)]) -> Vec<Alert> {
    let mut correlator = Correlator::new(Arc::clone(&pack.correlations), &EngineConfig::default());
    let mut scratch = pack.matcher.scratch();
    let mut matched = Vec::new();
    let mut alerts = Vec::new();
    for (chunk_index, chunk) in scenario.chunks(4).enumerate() {
        let mut batch = ObservationBatch::default();
        for (index, (second, line)) in chunk.iter().enumerate() {
            let mut event = parse(line, *second, (chunk_index * 4 + index + 1) as u64);
            pack.normaliser.normalise(&mut event);
            pack.matcher.match_event(&event, &mut scratch, &mut matched);
            batch.missing_group_field += pack.correlations.observe(
                &event,
                &matched,
                &mut batch.observations,
                &mut batch.alerts,
            );
            batch.saw(event.ts);
        }
        correlator.submit(batch, &mut alerts);
    }
    correlator.finish(&mut alerts);
    alerts.retain(|alert| alert.kind != AlertKind::Detection);
    alerts
}

fn names(pack: &Pack, alerts: &[Alert]) -> Vec<String> {
    let mut names: Vec<String> = alerts
        .iter()
        .map(|alert| {
            pack.rules
                .iter()
                .find(|rule| rule.id.as_deref() == Some(alert.rule.as_ref()))
                .and_then(|rule| rule.name.clone())
                .unwrap_or_else(|| alert.rule.to_string())
        })
        .collect();
    names.sort();
    names
}

fn group(alert: &Alert) -> Vec<(String, String)> {
    alert
        .group
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn failed(ip: &str, user: &str) -> String {
    format!(
        "<38>Oct 11 22:14:15 web1 sshd[4721]: Failed password for {user} from {ip} port 52214 ssh2"
    )
}

fn at(seconds: &[i64], line: impl Fn(usize) -> String) -> Vec<(i64, String)> {
    seconds
        .iter()
        .enumerate()
        .map(|(index, second)| (*second, line(index)))
        .collect()
}

#[test]
fn ssh_brute_force() {
    let pack = pack();
    let alerts = correlate(
        &pack,
        &at(&[0, 10, 20, 30, 40], |_| failed("203.0.113.7", "root")),
    );
    assert_eq!(names(&pack, &alerts), ["ssh_brute_force"]);
    assert_eq!(group(&alerts[0]), pairs(&[("src_ip", "203.0.113.7")]));
    assert_eq!(alerts[0].event_count, 5);
    assert_eq!(alerts[0].ts, Timestamp(BASE + 40 * SECOND));
    assert_eq!(alerts[0].level, cairn_correlate::Level::High);
    // Near misses: the five failures span 61 s; or come from two addresses.
    assert!(
        correlate(
            &pack,
            &at(&[0, 15, 30, 45, 61], |_| failed("203.0.113.7", "root"))
        )
        .is_empty()
    );
    let two_sources = at(&[0, 1, 2, 3, 4], |index| {
        failed(
            if index == 4 {
                "203.0.113.8"
            } else {
                "203.0.113.7"
            },
            "root",
        )
    });
    assert!(correlate(&pack, &two_sources).is_empty());
}

#[test]
fn ssh_password_spraying() {
    let pack = pack();
    let invalid = |index: usize| {
        format!(
            "<38>Oct 11 22:14:15 web1 sshd[4721]: Invalid user user{index} from 198.51.100.4 port 33210"
        )
    };
    let seconds: Vec<i64> = (0..10).map(|index| index * 25).collect();
    let alerts = correlate(&pack, &at(&seconds, invalid));
    assert_eq!(names(&pack, &alerts), ["ssh_password_spraying"]);
    assert_eq!(group(&alerts[0]), pairs(&[("src_ip", "198.51.100.4")]));
    assert_eq!(alerts[0].event_count, 10);
    // Near miss: ten attempts but only nine distinct user names.
    let nine = at(&seconds, |index| invalid(index.min(8)));
    assert!(correlate(&pack, &nine).is_empty());
}

#[test]
fn ssh_brute_force_then_success() {
    let pack = pack();
    let accepted = "<38>Oct 11 22:14:15 web1 sshd[4721]: Accepted password for admin from 203.0.113.7 port 52300 ssh2".to_owned();
    let mut scenario = at(&[0, 10, 20, 30, 40], |_| failed("203.0.113.7", "admin"));
    scenario.push((300, accepted.clone()));
    let alerts = correlate(&pack, &scenario);
    assert_eq!(
        names(&pack, &alerts),
        ["ssh_brute_force", "ssh_brute_force_then_success"]
    );
    let chained = alerts
        .iter()
        .find(|alert| alert.kind == AlertKind::TemporalOrdered)
        .expect("chained alert");
    assert_eq!(group(chained), pairs(&[("src_ip", "203.0.113.7")]));
    assert_eq!(chained.ts, Timestamp(BASE + 300 * SECOND));
    assert_eq!(chained.first_ts, Timestamp(BASE + 40 * SECOND));
    assert_eq!(chained.level, cairn_correlate::Level::Critical);
    // Near misses: the login comes 10 min 1 s after the brute force; or from another address.
    let mut late = at(&[0, 10, 20, 30, 40], |_| failed("203.0.113.7", "admin"));
    late.push((40 + 601, accepted));
    assert_eq!(names(&pack, &correlate(&pack, &late)), ["ssh_brute_force"]);
    let mut other = at(&[0, 10, 20, 30, 40], |_| failed("203.0.113.7", "admin"));
    other.push((
        100,
        "<38>Oct 11 22:14:15 web1 sshd[4721]: Accepted password for admin from 203.0.113.99 port 52300 ssh2"
            .to_owned(),
    ));
    assert_eq!(names(&pack, &correlate(&pack, &other)), ["ssh_brute_force"]);
}

#[test]
fn port_scan() {
    let pack = pack();
    let denied = |port: usize| {
        format!(
            "<4>Oct 11 22:14:15 fw1 kernel: [ 8123.456789] [UFW BLOCK] IN=eth0 OUT= MAC=00:11:22:33:44:55:66:77:88:99:aa:bb:08:00 SRC=198.51.100.23 DST=192.0.2.10 LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID=5321 DF PROTO=TCP SPT=51234 DPT={port} WINDOW=64240 RES=0x00 SYN URGP=0"
        )
    };
    let seconds: Vec<i64> = (0..20).map(|index| index * 3).collect();
    let alerts = correlate(&pack, &at(&seconds, |index| denied(1000 + index)));
    assert_eq!(names(&pack, &alerts), ["port_scan"]);
    assert_eq!(group(&alerts[0]), pairs(&[("src_ip", "198.51.100.23")]));
    assert_eq!(alerts[0].event_count, 20);
    // Other vendors count towards the same source: 19 UFW ports and one Cisco ASA deny.
    let mut mixed = at(&seconds[..19], |index| denied(1000 + index));
    mixed.push((58, "<164>Oct 11 2024 22:14:15: %ASA-4-106023: Deny tcp src outside:198.51.100.23/51234 dst inside:192.0.2.10/8080 by access-group \"outside_in\" [0x0, 0x0]".to_owned()));
    assert_eq!(names(&pack, &correlate(&pack, &mixed)), ["port_scan"]);
    // Near misses: 20 denies on 19 ports; 20 ports over 61 s.
    assert!(correlate(&pack, &at(&seconds, |index| denied(1000 + index.min(18)))).is_empty());
    let slow: Vec<i64> = (0..20)
        .map(|index| if index == 19 { 61 } else { index })
        .collect();
    assert!(correlate(&pack, &at(&slow, |index| denied(1000 + index))).is_empty());
}

fn cisco(state: &str) -> String {
    format!(
        "<187>Oct 11 22:14:15 core1 %LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to {state}"
    )
}

#[test]
fn interface_flapping() {
    let pack = pack();
    let flaps = at(&[0, 30, 100, 130, 200, 230], |index| {
        cisco(if index % 2 == 0 { "down" } else { "up" })
    });
    let alerts = correlate(&pack, &flaps);
    assert_eq!(names(&pack, &alerts), ["interface_flapping"]);
    assert_eq!(
        group(&alerts[0]),
        pairs(&[("host", "core1"), ("interface", "GigabitEthernet0/1")])
    );
    assert_eq!(alerts[0].event_count, 3);
    // Junos too.
    let junos = at(&[0, 10, 20], |_| {
        "<28>Oct 11 22:14:15 mx1 mib2d[1822]: SNMP_TRAP_LINK_DOWN: ifIndex 529, ifAdminStatus up(1), ifOperStatus down(2), ifName ge-0/0/1".to_owned()
    });
    let alerts = correlate(&pack, &junos);
    assert_eq!(names(&pack, &alerts), ["interface_flapping"]);
    assert_eq!(
        group(&alerts[0]),
        pairs(&[("host", "mx1"), ("interface", "ge-0/0/1")])
    );
    // Near miss: three downs over more than 10 minutes (each restored quickly).
    let slow = at(&[0, 30, 300, 330, 601, 631], |index| {
        cisco(if index % 2 == 0 { "down" } else { "up" })
    });
    assert!(correlate(&pack, &slow).is_empty());
}

#[test]
fn interface_down_not_restored() {
    let pack = pack();
    let alerts = correlate(&pack, &[(0, cisco("down"))]);
    assert_eq!(names(&pack, &alerts), ["interface_down_not_restored"]);
    assert_eq!(alerts[0].kind, AlertKind::Absence);
    assert_eq!(alerts[0].ts, Timestamp(BASE + 300 * SECOND));
    assert_eq!(alerts[0].first_ts, Timestamp(BASE));
    assert_eq!(
        group(&alerts[0]),
        pairs(&[("host", "core1"), ("interface", "GigabitEthernet0/1")])
    );
    // It fires as soon as event time (any event) passes the window end + lateness.
    let later = [
        (0, cisco("down")),
        (
            400,
            "<38>Oct 11 22:14:15 web1 sshd[1]: Connection closed by 192.0.2.1 port 22".to_owned(),
        ),
    ];
    let mut correlator = Correlator::new(Arc::clone(&pack.correlations), &EngineConfig::default());
    let mut alerts = Vec::new();
    let mut scratch = pack.matcher.scratch();
    let mut matched = Vec::new();
    for (index, (second, line)) in later.iter().enumerate() {
        let mut batch = ObservationBatch::default();
        let mut event = parse(line, *second, index as u64 + 1);
        pack.normaliser.normalise(&mut event);
        pack.matcher.match_event(&event, &mut scratch, &mut matched);
        pack.correlations
            .observe(&event, &matched, &mut batch.observations, &mut batch.alerts);
        batch.saw(event.ts);
        correlator.submit(batch, &mut alerts);
    }
    alerts.retain(|alert| alert.kind != AlertKind::Detection);
    assert_eq!(names(&pack, &alerts), ["interface_down_not_restored"]);
    // Near misses: back up after 299 s; or a different interface comes up.
    assert!(correlate(&pack, &[(0, cisco("down")), (299, cisco("up"))]).is_empty());
    let other = "<187>Oct 11 22:14:15 core1 %LINK-3-UPDOWN: Interface GigabitEthernet0/2, changed state to up";
    assert_eq!(
        names(
            &pack,
            &correlate(&pack, &[(0, cisco("down")), (10, other.to_owned())])
        ),
        ["interface_down_not_restored"]
    );
}

#[test]
fn systemd_crash_loop() {
    let pack = pack();
    let failure = |unit: &str| {
        format!("<27>Oct 11 22:14:15 web1 systemd[1]: {unit}: Failed with result 'exit-code'.")
    };
    let alerts = correlate(&pack, &at(&[0, 120, 240], |_| failure("nginx.service")));
    assert_eq!(names(&pack, &alerts), ["systemd_crash_loop"]);
    assert_eq!(
        group(&alerts[0]),
        pairs(&[("host", "web1"), ("unit", "nginx.service")])
    );
    // Near misses: three different units; or the same unit over more than 10 minutes.
    let units = ["nginx.service", "php-fpm.service", "redis.service"];
    assert!(correlate(&pack, &at(&[0, 1, 2], |index| failure(units[index]))).is_empty());
    assert!(correlate(&pack, &at(&[0, 300, 601], |_| failure("nginx.service"))).is_empty());
}

#[test]
fn every_builtin_correlation_has_a_scenario_and_metadata() {
    let tested: HashSet<&str> = [
        "ssh_brute_force",
        "ssh_password_spraying",
        "ssh_brute_force_then_success",
        "port_scan",
        "interface_flapping",
        "interface_down_not_restored",
        "systemd_crash_loop",
    ]
    .into_iter()
    .collect();
    let report = builtin_correlation_rules();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    let mut correlations = 0;
    for rule in &report.loaded {
        let name = rule.name.as_deref().unwrap_or("");
        assert_eq!(rule.author.as_deref(), Some("Cairn"), "{name}");
        assert!(rule.level.is_some() && rule.description.is_some(), "{name}");
        if matches!(rule.kind, RuleKind::Correlation { .. }) {
            correlations += 1;
            assert!(tested.contains(name), "{name} has no scenario");
        }
    }
    assert_eq!(correlations, tested.len());
    // Ids and names unique over the whole pack, ids lowercase UUIDs.
    let pack = builtin_pack();
    let mut ids = HashSet::new();
    let mut names = HashSet::new();
    for rule in &pack.loaded {
        let id = rule.id.clone().unwrap_or_default();
        assert!(
            id.len() == 36
                && id
                    .chars()
                    .all(|c| c == '-' || c.is_ascii_digit() || c.is_ascii_lowercase()),
            "{id}"
        );
        assert!(ids.insert(id.clone()), "duplicate id {id}");
        let name = rule.name.clone().unwrap_or_default();
        assert!(names.insert(name.clone()), "duplicate name {name}");
    }
    let built = self::pack();
    assert_eq!(built.correlations.len(), tested.len());
    assert_eq!(built.correlations.max_depth(), 2);
}

/// A live appliance stops its engine without ending the input: a pending absence (the link is
/// down, the window is still open) must not fire on `stop`, while `finish` (end of a replayed
/// file) fires it.
#[test]
fn engine_stop_drops_pending_absences_finish_fires_them() {
    use cairn_correlate::Engine;
    let pack = pack();
    let batch = || {
        let mut batch = ObservationBatch::default();
        let mut scratch = pack.matcher.scratch();
        let mut matched = Vec::new();
        let mut event = parse(&cisco("down"), 0, 1);
        pack.normaliser.normalise(&mut event);
        pack.matcher.match_event(&event, &mut scratch, &mut matched);
        pack.correlations
            .observe(&event, &matched, &mut batch.observations, &mut batch.alerts);
        batch.saw(event.ts);
        batch
    };
    let absences = |receiver: &crossbeam_channel::Receiver<Alert>| {
        receiver
            .try_iter()
            .filter(|alert| alert.kind == AlertKind::Absence)
            .count()
    };
    for shards in [1, 2] {
        let config = EngineConfig {
            shards,
            ..EngineConfig::default()
        };
        let (sender, receiver) = crossbeam_channel::unbounded();
        let engine =
            Engine::start(Arc::clone(&pack.correlations), config.clone(), sender).expect("engine");
        engine.submit(batch()).expect("submit");
        let stats = engine.stop();
        assert!(stats.observations >= 1, "{stats:?}");
        assert_eq!(
            absences(&receiver),
            0,
            "stop must not fire a pending absence"
        );

        let (sender, receiver) = crossbeam_channel::unbounded();
        let engine = Engine::start(Arc::clone(&pack.correlations), config, sender).expect("engine");
        engine.submit(batch()).expect("submit");
        engine.finish();
        assert_eq!(
            absences(&receiver),
            1,
            "finish ends the input: the absence fires"
        );
    }
}
