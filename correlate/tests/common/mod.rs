//! Shared helpers: building events and one-rule matchers.
#![allow(dead_code)]

use bytes::Bytes;
use cairn_correlate::{CompileOptions, Matcher, NaiveMatcher, Rule, RuleIndex, parse_rules_str};
use cairn_ingest::{
    Event, EventFlags, Facility, Field, FieldValue, FrameMeta, SdElement, Seq, Severity, Source,
    Text, Timestamp,
};

/// An event whose message is its whole raw frame.
pub fn event(message: &str) -> Event {
    let meta = FrameMeta {
        seq: Seq(1),
        received_at: Timestamp(0),
        peer: None,
        source: Source::File,
        flags: EventFlags::empty(),
    };
    Event::unparsed(Bytes::copy_from_slice(message.as_bytes()), &meta)
}

pub trait EventExt {
    fn host(self, host: &str) -> Self;
    fn app(self, app: &str) -> Self;
    fn procid(self, procid: &str) -> Self;
    fn severity(self, severity: Severity) -> Self;
    fn facility(self, facility: &str) -> Self;
    fn text(self, name: &str, value: &str) -> Self;
    fn value(self, name: &str, value: FieldValue) -> Self;
    fn sd(self, id: &str, params: &[(&str, &str)]) -> Self;
}

impl EventExt for Event {
    fn host(mut self, host: &str) -> Self {
        self.host = Some(Text::owned(host));
        self
    }
    fn app(mut self, app: &str) -> Self {
        self.app = Some(Text::owned(app));
        self
    }
    fn procid(mut self, procid: &str) -> Self {
        self.procid = Some(Text::owned(procid));
        self
    }
    fn severity(mut self, severity: Severity) -> Self {
        self.severity = Some(severity);
        self
    }
    fn facility(mut self, facility: &str) -> Self {
        self.facility = Facility::parse(facility);
        self
    }
    fn text(self, name: &str, value: &str) -> Self {
        self.value(name, FieldValue::Text(Text::owned(value)))
    }
    fn value(mut self, name: &str, value: FieldValue) -> Self {
        self.fields.push(Field {
            name: Text::owned(name),
            value,
        });
        self
    }
    fn sd(mut self, id: &str, params: &[(&str, &str)]) -> Self {
        self.structured_data.push(SdElement {
            id: Text::owned(id),
            params: params
                .iter()
                .map(|(name, value)| (Text::owned(*name), Text::owned(*value)))
                .collect(),
        });
        self
    }
}

/// A full rule document around a `detection:` body (indented by the caller with 2 spaces).
pub fn rule_yaml(detection: &str) -> String {
    format!(
        "title: test rule\nid: 00000000-0000-0000-0000-000000000001\nlevel: high\nlogsource:\n  product: linux\ndetection:\n{detection}"
    )
}

/// Loads exactly one rule from a detection body, panicking with the rejection otherwise.
pub fn load_one(detection: &str) -> Vec<Rule> {
    let report = parse_rules_str(&rule_yaml(detection), "case.yml");
    assert!(
        report.rejected.is_empty(),
        "rejected: {}\n{}",
        report.rejected[0],
        rule_yaml(detection)
    );
    report.loaded
}

/// Both evaluators' verdict on one rule and one event; asserts they agree.
pub fn matches(rules: &[Rule], options: &CompileOptions, event: &Event) -> bool {
    let (matcher, rejected) = Matcher::compile(rules, options);
    assert!(rejected.is_empty(), "compile rejected: {}", rejected[0]);
    let (naive, _) = NaiveMatcher::compile(rules, options);
    let mut scratch = matcher.scratch();
    let mut out = Vec::new();
    matcher.match_event(event, &mut scratch, &mut out);
    let oracle = naive.match_event(event);
    assert_eq!(
        out,
        oracle,
        "matcher and naive disagree on {:?}",
        event.message_str()
    );
    out == [RuleIndex(0)]
}

pub mod correlation_rules;
