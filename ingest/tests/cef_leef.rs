//! Table-driven CEF and LEEF extraction over the samples in `fixtures/cef_leef/` (vendor
//! documentation examples; see its README): each line through the real syslog parser and the
//! built-in normaliser, with exactly the fields expected beside it.

use std::path::PathBuf;

use bytes::Bytes;
use cairn_ingest::normalise::Normaliser;
use cairn_ingest::parse::{ParseOptions, parse_syslog};
use cairn_ingest::{Event, EventFlags, FieldValue, FrameMeta, Seq, Source, Timestamp};
use serde_json::Value;

fn samples() -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/cef_leef/samples.jsonl");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).expect("sample is json"))
        .collect()
}

fn normalised(normaliser: &Normaliser, line: &str) -> Event {
    let meta = FrameMeta {
        seq: Seq(1),
        received_at: Timestamp::from_jiff("2026-06-15T12:00:00Z".parse().expect("valid")),
        peer: None,
        source: Source::SyslogTls,
        flags: EventFlags::empty(),
    };
    let mut event = parse_syslog(
        Bytes::copy_from_slice(line.as_bytes()),
        &meta,
        &ParseOptions::default(),
    );
    normaliser.normalise(&mut event);
    event
}

/// Fields as `name=value` (`#n` for numbers), in order.
fn rendered(event: &Event) -> Vec<String> {
    event
        .fields
        .iter()
        .map(|field| {
            let name = event.text(&field.name);
            match &field.value {
                FieldValue::Text(text) => format!("{name}={}", event.text(text)),
                FieldValue::U64(number) => format!("{name}=#{number}"),
                FieldValue::I64(number) => format!("{name}=#{number}"),
                other => format!("{name}={other:?}"),
            }
        })
        .collect()
}

#[test]
fn every_sample_gives_exactly_its_fields() {
    let normaliser = Normaliser::builtin();
    let samples = samples();
    assert!(samples.len() >= 12);
    for sample in &samples {
        let line = sample["line"].as_str().expect("line");
        let expected: Vec<String> = sample["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .map(|field| field.as_str().expect("rendered field").to_string())
            .collect();
        let event = normalised(&normaliser, line);
        assert_eq!(
            rendered(&event),
            expected,
            "{}\n  line: {line:?}",
            sample["origin"]
        );
    }
}

#[test]
fn truncated_and_odd_cef_and_leef_never_panic() {
    let normaliser = Normaliser::builtin();
    for sample in samples() {
        let line = sample["line"].as_str().expect("line");
        for cut in (0..=line.len()).filter(|cut| line.is_char_boundary(*cut)) {
            let _ = normalised(&normaliser, &line[..cut]);
        }
    }
    for odd in [
        "CEF:",
        "LEEF:",
        "CEF:0|||||||",
        "CEF:0|a|b|c|d|e|f|=",
        "CEF:0|a|b|c|d|e|f| =x ==",
        "CEF:0|a|b|c|d|e|f|k=\\",
        "LEEF:2.0|a|b|c|d|x|",
        "LEEF:2.0|a|b|c|d|xFFFFFF|k=v",
        "LEEF:2.0|a|b|c|d|\u{e9}|k=v\u{e9}k2=v2",
        "CEF:0|\\",
        "host CEF:9|x",
    ] {
        let _ = normalised(&normaliser, odd);
    }
}
