//! Invariant checks shared by the `rules` cargo-fuzz target (`ingest/fuzz/`) and the corpus
//! replay test (`correlate/tests/fuzz_corpus.rs`). Not part of the stable API.
//!
//! [`check_rules`] loads arbitrary bytes as a Sigma rule file, compiles it and builds its
//! correlations the way `cairn rules check` and `cairn serve` do, and panics when:
//!
//! - loading and compiling take longer than [`MAX_COMPILE_TIME`];
//! - a rejection has no reason;
//! - an accepted rule holds a regular expression that the regex size cap would refuse (the cap
//!   must hold on every path that compiles a pattern);
//! - [`Matcher`] and [`NaiveMatcher`] disagree on an event (the prefilter may only skip rules
//!   that cannot match). The events are a few fixed syslog lines plus one per string value of
//!   the rules, so that rules do match.

use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_ingest::parse::{ParseOptions, parse_syslog};
use cairn_ingest::{Event, EventFlags, FrameMeta, Seq, Source, Timestamp};
use regex::RegexBuilder;

use crate::compile::{CompileOptions, Limits};
use crate::correlation::{CorrelationOptions, Correlations};
use crate::error::Rejection;
use crate::matcher::Matcher;
use crate::naive::NaiveMatcher;
use crate::rule::{Modifier, Rule, RuleKind, Value, parse_rules_str};

/// Loading and compiling one fuzz input must finish within this (a debug build on a busy
/// machine included); libFuzzer's own `-timeout` is the tighter bound while fuzzing.
pub const MAX_COMPILE_TIME: Duration = Duration::from_secs(20);

/// The most events built from rule values per input (keeps one input's check fast).
const MAX_VALUE_EVENTS: usize = 64;

/// Smaller than the defaults so that the fuzzer reaches the caps with small inputs.
fn fuzz_limits() -> Limits {
    Limits {
        max_regex_len: 1024,
        regex_size_limit: 64 << 10,
        regex_dfa_size_limit: 64 << 10,
        ..Limits::default()
    }
}

fn assert_reasons(rejections: &[Rejection]) {
    for rejection in rejections {
        assert!(!rejection.reason.is_empty(), "rejection without a reason");
        assert!(!rejection.source.is_empty(), "rejection without a source");
    }
}

/// Every `|re` pattern of a rule with its flags: (pattern, case-insensitive, multi-line, dot-all).
fn regexes(rule: &Rule) -> Vec<(&str, bool, bool, bool)> {
    let RuleKind::Detection(detection) = &rule.kind else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for search in &detection.searches {
        for test in search.alternatives.iter().flatten() {
            let has = |modifier: Modifier| test.modifiers.contains(&modifier);
            if !has(Modifier::Re) {
                continue;
            }
            for value in &test.values {
                if let Value::String(pattern) = value {
                    out.push((
                        pattern.as_str(),
                        has(Modifier::ReInsensitive),
                        has(Modifier::ReMultiLine),
                        has(Modifier::ReDotAll),
                    ));
                }
            }
        }
    }
    out
}

/// The string values of a rule (field tests and keywords).
fn string_values(rule: &Rule) -> impl Iterator<Item = &str> {
    let searches = match &rule.kind {
        RuleKind::Detection(detection) => detection.searches.as_slice(),
        RuleKind::Correlation { .. } => &[],
    };
    searches
        .iter()
        .flat_map(|search| search.alternatives.iter().flatten())
        .flat_map(|test| &test.values)
        .filter_map(|value| match value {
            Value::String(text) => Some(text.as_str()),
            _ => None,
        })
}

fn sample_events(rules: &[Rule]) -> Vec<Event> {
    let meta = FrameMeta {
        seq: Seq(1),
        received_at: Timestamp(1_717_200_000_000_000_000),
        peer: None,
        source: Source::SyslogTcp,
        flags: EventFlags::empty(),
    };
    let options = ParseOptions::default();
    let fixed: [&[u8]; 4] = [
        b"<38>Jun  1 00:00:00 web1 sshd[42]: Failed password for root from 10.0.0.9 port 2222 ssh2",
        b"<165>1 2024-06-01T00:00:00Z host app 1 ID [x@1 user=\"alice\" n=\"5\"] hello world",
        b"{\"message\":\"json line\",\"CommandLine\":\"cmd /c whoami\",\"Image\":\"/bin/sh\",\"n\":3}",
        b"no header at all",
    ];
    let values = rules
        .iter()
        .flat_map(string_values)
        .take(MAX_VALUE_EVENTS)
        .map(|value| format!("<13>Jun  1 00:00:00 host app: {value}").into_bytes());
    fixed
        .iter()
        .map(|line| line.to_vec())
        .chain(values)
        .map(|line| parse_syslog(Bytes::from(line), &meta, &options))
        .collect()
}

/// Loads, compiles and matches arbitrary bytes as a Sigma rule file.
///
/// # Panics
/// When one of the invariants in the module docs does not hold.
pub fn check_rules(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let options = CompileOptions {
        limits: fuzz_limits(),
        ..CompileOptions::default()
    };
    let started = Instant::now();
    let report = parse_rules_str(&text, "fuzz.yml");
    let (matcher, rejections) = Matcher::compile(&report.loaded, &options);
    let elapsed = started.elapsed();
    assert!(
        elapsed <= MAX_COMPILE_TIME,
        "loading and compiling took {elapsed:?}"
    );
    assert_reasons(&report.rejected);
    assert_reasons(&rejections);

    for info in matcher.rules() {
        let rule = &report.loaded[info.rule_position];
        for (pattern, insensitive, multi_line, dot_all) in regexes(rule) {
            assert!(pattern.len() <= options.limits.max_regex_len);
            let capped = RegexBuilder::new(pattern)
                .case_insensitive(insensitive)
                .multi_line(multi_line)
                .dot_matches_new_line(dot_all)
                .size_limit(options.limits.regex_size_limit)
                .build();
            assert!(
                capped.is_ok(),
                "rule {:?} accepted with a regex over the size cap",
                info.title
            );
        }
    }

    let (correlations, correlation_rejections) = Correlations::build(
        &report.loaded,
        &matcher,
        &options.field_mapping,
        &CorrelationOptions::default(),
    );
    assert_reasons(&correlation_rejections);
    drop(correlations);

    let (naive, _) = NaiveMatcher::compile(&report.loaded, &options);
    assert_eq!(
        naive.len(),
        matcher.len(),
        "the matchers compiled different rules"
    );
    let mut scratch = matcher.scratch();
    let mut matched = Vec::new();
    for event in sample_events(&report.loaded) {
        matcher.match_event(&event, &mut scratch, &mut matched);
        assert_eq!(
            matched,
            naive.match_event(&event),
            "matcher and naive matcher disagree on {:?}",
            event.raw_str()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_rule_passes_the_checks() {
        check_rules(
            br#"
title: ssh failure
id: 11111111-2222-3333-4444-555555555555
logsource: {product: linux, service: sshd}
detection:
  selection:
    message|contains: Failed password
    message|re: 'from \d+\.\d+'
  condition: selection
level: medium
"#,
        );
    }
}
