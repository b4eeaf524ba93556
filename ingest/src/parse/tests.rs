//! Table-driven tests of [`parse_syslog`] over every detection path.

use super::*;
use crate::event::{FieldValue, Seq, Source, Timestamp};

fn meta() -> FrameMeta {
    FrameMeta {
        seq: Seq(7),
        received_at: Timestamp::from_jiff("2024-06-01T12:00:00Z".parse().expect("valid")),
        peer: None,
        source: Source::SyslogUdp,
        flags: EventFlags::empty(),
    }
}

fn parse(input: &[u8]) -> Event {
    parse_syslog(
        Bytes::copy_from_slice(input),
        &meta(),
        &ParseOptions::default(),
    )
}

fn ts(text: &str) -> Timestamp {
    Timestamp::from_jiff(text.parse().expect("valid test timestamp"))
}

struct Expect {
    format: Format,
    parse_error: bool,
    pri: Option<(u8, u8)>,
    ts: Option<&'static str>,
    host: Option<&'static str>,
    app: Option<&'static str>,
    procid: Option<&'static str>,
    msgid: Option<&'static str>,
    message: &'static str,
}

const NONE: Expect = Expect {
    format: Format::Unparsed,
    parse_error: false,
    pri: None,
    ts: None,
    host: None,
    app: None,
    procid: None,
    msgid: None,
    message: "",
};

fn check(input: &[u8], expect: &Expect) {
    let event = parse(input);
    let label = String::from_utf8_lossy(input);
    assert_eq!(event.format, expect.format, "format of {label:?}");
    assert_eq!(
        event.flags.contains(EventFlags::PARSE_ERROR),
        expect.parse_error,
        "parse_error of {label:?}"
    );
    assert_eq!(
        event
            .facility
            .zip(event.severity)
            .map(|(facility, severity)| (facility.code(), severity.code())),
        expect.pri,
        "pri of {label:?}"
    );
    match expect.ts {
        Some(text) => {
            assert_eq!(event.ts, ts(text), "ts of {label:?}");
            assert!(!event.flags.contains(EventFlags::TS_FROM_RECEIVE));
        }
        None => {
            assert_eq!(event.ts, meta().received_at, "ts of {label:?}");
            assert!(event.flags.contains(EventFlags::TS_FROM_RECEIVE));
        }
    }
    assert_eq!(event.host_str(), expect.host, "host of {label:?}");
    assert_eq!(event.app_str(), expect.app, "app of {label:?}");
    assert_eq!(event.procid_str(), expect.procid, "procid of {label:?}");
    assert_eq!(event.msgid_str(), expect.msgid, "msgid of {label:?}");
    assert_eq!(event.message_str(), expect.message, "message of {label:?}");
}

#[test]
fn rfc5424_table() {
    check(
        b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\"] \xEF\xBB\xBFAn application event",
        &Expect {
            format: Format::Rfc5424,
            pri: Some((20, 5)),
            ts: Some("2003-10-11T22:14:15.003Z"),
            host: Some("mymachine.example.com"),
            app: Some("evntslog"),
            msgid: Some("ID47"),
            message: "An application event",
            ..NONE
        },
    );
    check(
        b"<1>1 - - - - - -",
        &Expect {
            format: Format::Rfc5424,
            pri: Some((0, 1)),
            ..NONE
        },
    );
    check(
        b"<13>1 2003-10-11 host app 12 - - hello",
        &Expect {
            format: Format::Rfc5424,
            parse_error: true,
            pri: Some((1, 5)),
            host: Some("host"),
            app: Some("app"),
            procid: Some("12"),
            message: "hello",
            ..NONE
        },
    );
}

#[test]
fn invalid_rfc5424_version_falls_back_to_3164_and_is_flagged() {
    // `<1>1000 ...` starts like RFC 5424 but the version is out of range.
    check(
        b"<1>1000 - - - - - -",
        &Expect {
            format: Format::Rfc3164,
            parse_error: true,
            pri: Some((0, 1)),
            message: "1000 - - - - - -",
            ..NONE
        },
    );
}

#[test]
fn rfc3164_table() {
    check(
        b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed",
        &Expect {
            format: Format::Rfc3164,
            pri: Some((4, 2)),
            ts: Some("2023-10-11T22:14:15Z"),
            host: Some("mymachine"),
            app: Some("su"),
            message: "'su root' failed",
            ..NONE
        },
    );
    check(
        b"<13>Jan  1 00:00:00 app[12]: msg",
        &Expect {
            format: Format::Rfc3164,
            pri: Some((1, 5)),
            ts: Some("2024-01-01T00:00:00Z"),
            app: Some("app"),
            procid: Some("12"),
            message: "msg",
            ..NONE
        },
    );
    check(
        b"Feb 18 16:01:59 serverX -- MARK --",
        &Expect {
            format: Format::Rfc3164,
            ts: Some("2024-02-18T16:01:59Z"),
            host: Some("serverX"),
            app: Some("--"),
            message: "MARK --",
            ..NONE
        },
    );
    check(
        b"<14>2010-08-30T23:00:05+02:00 X4711 sshd: hi",
        &Expect {
            format: Format::Rfc3164,
            pri: Some((1, 6)),
            ts: Some("2010-08-30T21:00:05Z"),
            host: Some("X4711"),
            app: Some("sshd"),
            message: "hi",
            ..NONE
        },
    );
}

#[test]
fn text_without_pri_or_timestamp_is_unparsed() {
    check(
        b"This is a message!",
        &Expect {
            parse_error: true,
            message: "This is a message!",
            ..NONE
        },
    );
    check(
        b"",
        &Expect {
            parse_error: true,
            ..NONE
        },
    );
}

#[test]
fn json_frame_takes_known_keys_and_flattens_the_rest() {
    let event = parse(br#"{"ts":"2024-05-31T10:00:00Z","host":"h1","app":"api","level":"warn","msg":"slow","http":{"status":503},"tags":["a"]}"#);
    assert_eq!(event.format, Format::Json);
    assert!(!event.flags.contains(EventFlags::PARSE_ERROR));
    assert_eq!(event.ts, ts("2024-05-31T10:00:00Z"));
    assert_eq!(event.host_str(), Some("h1"));
    assert_eq!(event.app_str(), Some("api"));
    assert_eq!(event.severity, Some(Severity::Warning));
    assert_eq!(event.message_str(), "slow");
    assert_eq!(event.field("http.status"), Some(&FieldValue::I64(503)));
    assert_eq!(
        event.field("tags"),
        Some(&FieldValue::Text(Text::owned(r#"["a"]"#)))
    );
}

#[test]
fn json_body_after_header_becomes_fields() {
    let event = parse(br#"<13>Jan  1 00:00:00 host app: {"user":"bob","n":{"x":1.5}}"#);
    assert_eq!(event.format, Format::Rfc3164);
    assert_eq!(event.message_str(), r#"{"user":"bob","n":{"x":1.5}}"#);
    assert_eq!(
        event.field("user").map(|value| match value {
            FieldValue::Text(text) => event.text(text).to_string(),
            _ => String::new(),
        }),
        Some("bob".to_string())
    );
    assert_eq!(event.field("n.x"), Some(&FieldValue::F64(1.5)));
}

#[test]
fn json_body_over_field_limit_is_flagged() {
    let options = ParseOptions {
        max_json_fields: 1,
        ..ParseOptions::default()
    };
    let event = parse_syslog(
        Bytes::from_static(br#"<13>1 - - - - - - {"a":1,"b":2}"#),
        &meta(),
        &options,
    );
    assert_eq!(event.fields.len(), 1);
    assert!(event.flags.contains(EventFlags::FIELDS_TRUNCATED));
}

#[test]
fn invalid_json_frame_falls_back_to_text() {
    let event = parse(b"{not json");
    assert!(event.flags.contains(EventFlags::PARSE_ERROR));
    assert_eq!(event.message_str(), "{not json");
}

#[test]
fn invalid_utf8_is_converted_before_parsing() {
    // A Latin-1 byte in the message must not break span boundaries.
    let event = parse(b"<13>Jan  1 00:00:00 host app: caf\xe9 \xff");
    assert!(event.flags.contains(EventFlags::INVALID_UTF8));
    assert_eq!(event.app_str(), Some("app"));
    assert_eq!(event.message_str(), "caf\u{fffd} \u{fffd}");
}

#[test]
fn sd_value_with_escape_is_owned_and_without_is_span() {
    let event = parse(br#"<13>1 - - - - - [x@1 a="q\"q" b="plain"]"#);
    let params = &event.structured_data[0].params;
    assert_eq!(params[0].1, Text::owned("q\"q"));
    assert!(matches!(params[1].1, Text::Span(_)));
    assert_eq!(event.text(&params[1].1), "plain");
}

#[test]
fn sd_param_with_space_after_equals_is_read_but_flagged() {
    // rsyslog's testbench sends `eventSource= "Application"`; rsyslog reads it as a parameter.
    let event = parse(
        br#"<165>1 2003-10-11T22:14:15.003Z host evntslog - ID47 [ex@32473 iut="3" eventSource= "App"] hi"#,
    );
    assert!(event.flags.contains(EventFlags::PARSE_ERROR));
    assert_eq!(event.message_str(), "hi");
    let params = &event.structured_data[0].params;
    assert_eq!(event.text(&params[1].0), "eventSource");
    assert_eq!(event.text(&params[1].1), "App");
    assert!(parse_rfc5424_strict(b"<1>1 - - - - - [x@1 a= \"b\"]").is_err());
}

#[test]
fn repeat_notice_has_no_tag_and_is_not_an_error() {
    check(
        b"<13>last message repeated 5 times",
        &Expect {
            format: Format::Rfc3164,
            pri: Some((1, 5)),
            message: "last message repeated 5 times",
            ..NONE
        },
    );
}

#[test]
fn timestamp_in_default_zone() {
    let options = ParseOptions {
        default_tz: jiff::tz::TimeZone::fixed(jiff::tz::offset(2)),
        ..ParseOptions::default()
    };
    let event = parse_syslog(
        Bytes::from_static(b"<13>May 31 12:00:00 h a: m"),
        &meta(),
        &options,
    );
    assert_eq!(event.ts, ts("2024-05-31T10:00:00Z"));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn check_invariants(event: &Event) {
        let raw = std::str::from_utf8(&event.raw).expect("raw is utf-8");
        let mut texts: Vec<&Text> = vec![&event.message];
        texts.extend(event.host.iter());
        texts.extend(event.app.iter());
        texts.extend(event.procid.iter());
        texts.extend(event.msgid.iter());
        for element in &event.structured_data {
            texts.push(&element.id);
            for (name, value) in &element.params {
                texts.push(name);
                texts.push(value);
            }
        }
        for field in &event.fields {
            texts.push(&field.name);
            if let FieldValue::Text(text) = &field.value {
                texts.push(text);
            }
        }
        for text in texts {
            if let Text::Span(span) = text {
                assert!(
                    raw.get(span.range()).is_some(),
                    "span {span:?} not in raw {raw:?}"
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
        #[test]
        fn never_panics_and_spans_are_valid(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            check_invariants(&parse(&bytes));
        }

        #[test]
        fn syslog_like_input_never_panics(
            pri in "<[0-9]{1,4}>",
            body in "[0-9 A-Za-z:\\[\\]{}\"=.@\\\\-]{0,80}",
        ) {
            check_invariants(&parse(format!("{pri}1 {body}").as_bytes()));
            check_invariants(&parse(format!("{pri}Jan  1 00:00:00 {body}").as_bytes()));
            check_invariants(&parse(format!("{{{body}}}").as_bytes()));
        }
    }
}

#[test]
fn fixed_year_overrides_inference() {
    // Received in June 2024: a December timestamp would be inferred as 2023.
    let line = b"<13>Dec 31 23:59:59 h a: m";
    let inferred = parse_syslog(Bytes::from_static(line), &meta(), &ParseOptions::default());
    assert_eq!(inferred.ts.to_rfc3339(), "2023-12-31T23:59:59Z");
    let options = ParseOptions {
        year: Some(2026),
        ..ParseOptions::default()
    };
    let fixed = parse_syslog(Bytes::from_static(line), &meta(), &options);
    assert_eq!(fixed.ts.to_rfc3339(), "2026-12-31T23:59:59Z");
    // A timestamp with its own year keeps it.
    let own = parse_syslog(
        Bytes::from_static(b"<13>1 2020-01-02T03:04:05Z h a - - - m"),
        &meta(),
        &options,
    );
    assert_eq!(own.ts.to_rfc3339(), "2020-01-02T03:04:05Z");
}

/// `syslog_timestamp` is a shortcut: whenever it answers, it answers what `parse_syslog` gives.
fn assert_timestamp_shortcut_agrees(line: &[u8], options: &ParseOptions) -> bool {
    let Some(quick) = syslog_timestamp(line, &meta(), options) else {
        return false;
    };
    let event = parse_syslog(Bytes::copy_from_slice(line), &meta(), options);
    assert_eq!(quick, event.ts, "{:?}", String::from_utf8_lossy(line));
    true
}

#[test]
fn timestamp_shortcut_agrees_with_the_parser_on_every_fixture_line() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/syslog");
    let mut lines: Vec<Vec<u8>> = Vec::new();
    for name in ["curated_syslog_lines.jsonl", "rsyslog_parser_vectors.jsonl"] {
        let text = std::fs::read_to_string(dir.join(name)).expect("fixture");
        for record in text.lines() {
            let value: serde_json::Value = serde_json::from_str(record).expect("jsonl");
            if let Some(line) = value["line"].as_str() {
                lines.push(line.as_bytes().to_vec());
            }
            for input in value["inputs"].as_array().into_iter().flatten() {
                if let Some(line) = input.as_str() {
                    lines.push(line.as_bytes().to_vec());
                }
            }
        }
    }
    lines.push(b"Nov  1 00:00:02 srv32 sudo[51293]: Failed password for bob".to_vec());
    lines.push(b"<13>Feb 30 10:00:00 h a: impossible date".to_vec());
    lines.push(b"<13>last message repeated 3 times".to_vec());
    let fixed = ParseOptions {
        year: Some(2026),
        ..ParseOptions::default()
    };
    let mut answered = 0;
    for line in &lines {
        for options in [&ParseOptions::default(), &fixed] {
            answered += usize::from(assert_timestamp_shortcut_agrees(line, options));
        }
    }
    assert!(answered > 50, "the shortcut answered only {answered} times");
}

proptest::proptest! {
    #[test]
    fn timestamp_shortcut_agrees_with_the_parser_on_random_lines(
        pri in proptest::option::of(0u8..200),
        month in proptest::sample::select(vec!["Jan", "Feb", "Nov", "Dec", "Foo"]),
        day in 0u8..33,
        pad in proptest::bool::ANY,
        hour in 0u8..26,
        rest in "[ -~]{0,40}",
        junk in proptest::collection::vec(proptest::num::u8::ANY, 0..6),
        junk_at in 0usize..48,
        spaces in 0usize..3,
    ) {
        let mut line = String::new();
        if let Some(pri) = pri {
            line.push_str(&format!("<{pri}>"));
        }
        line.push_str(&" ".repeat(spaces));
        let day = if pad { format!("{day:>2}") } else { day.to_string() };
        line.push_str(&format!("{month} {day} {hour:02}:10:59{rest}"));
        // Arbitrary bytes (often invalid UTF-8) spliced in anywhere.
        let mut bytes = line.into_bytes();
        let at = junk_at.min(bytes.len());
        bytes.splice(at..at, junk);
        let fixed = ParseOptions { year: Some(2024), ..ParseOptions::default() };
        assert_timestamp_shortcut_agrees(&bytes, &ParseOptions::default());
        assert_timestamp_shortcut_agrees(&bytes, &fixed);
    }
}
