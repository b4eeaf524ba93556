//! Rules that must be rejected, each with a precise reason; hostile input must not panic.

mod common;

use cairn_correlate::{CompileOptions, Limits, Matcher, parse_rules_str};
use common::rule_yaml;

/// Loads and compiles; returns the one rejection reason (from either stage).
fn rejection(yaml: &str, options: &CompileOptions) -> (String, &'static str) {
    let report = parse_rules_str(yaml, "bad.yml");
    if let Some(rejection) = report.rejected.first() {
        return (rejection.reason.clone(), rejection.error.kind());
    }
    let (_, rejected) = Matcher::compile(&report.loaded, options);
    let rejection = rejected
        .first()
        .unwrap_or_else(|| panic!("accepted:\n{yaml}"));
    (rejection.reason.clone(), rejection.error.kind())
}

#[test]
fn reasons_name_the_place_and_the_problem() {
    let options = CompileOptions::default();
    let cases: &[(&str, &str, &str)] = &[
        (
            "  selection:\n    CommandLine|contians: x\n  condition: selection\n",
            "detection.selection.CommandLine|contians: unknown modifier 'contians'",
            "invalid",
        ),
        (
            "  sel:\n    a|re: '(unclosed'\n  condition: sel\n",
            "detection.sel.a|re: invalid regular expression",
            "invalid",
        ),
        (
            "  sel:\n    a|cidr: 10.0.0.0/99\n  condition: sel\n",
            "detection.sel.a|cidr: \"10.0.0.0/99\" is not a CIDR network",
            "invalid",
        ),
        (
            "  sel:\n    a|fieldref: 3\n  condition: sel\n",
            "detection.sel.a|fieldref: 'fieldref' needs field names, not 3",
            "invalid",
        ),
        (
            "  sel:\n    a|fieldref|base64: b\n  condition: sel\n",
            "detection.sel.a|fieldref|base64: modifier 'base64' cannot be combined with 'fieldref'",
            "invalid",
        ),
        (
            "  sel:\n    a|fieldref|re: b\n  condition: sel\n",
            "modifiers 'fieldref' and 're' cannot be combined",
            "invalid",
        ),
        (
            "  sel:\n    '|fieldref': b\n  condition: sel\n",
            "'fieldref' needs a field",
            "invalid",
        ),
        (
            "  sel:\n    a|expand: '%servers%'\n  condition: sel\n",
            "modifier 'expand' (placeholders need a processing pipeline) is not supported",
            "unsupported",
        ),
        (
            "  sel:\n    a|hour: 3\n  condition: sel\n",
            "modifier 'hour' (time part modifiers) is not supported",
            "unsupported",
        ),
        (
            "  sel:\n    a|wide: cmd\n  condition: sel\n",
            "detection.sel.a|wide: utf16 modifiers are only supported before",
            "unsupported",
        ),
        (
            "  sel:\n    a|base64: 'x*'\n  condition: sel\n",
            "'base64' cannot encode a value with wildcards",
            "invalid",
        ),
        (
            "  sel:\n    a: x\n  condition: sel | count() > 5\n",
            "detection.condition: aggregation expressions",
            "unsupported",
        ),
        (
            "  sel:\n    a: x\n  timeframe: 5m\n  condition: sel\n",
            "detection.timeframe",
            "unsupported",
        ),
        (
            "  sel:\n    a: x\n  condition: 1 of filter_*\n",
            "'filter_*' matches no search identifier",
            "invalid",
        ),
        (
            "  sel:\n    a: x\n",
            "detection.condition: missing",
            "invalid",
        ),
        (
            "  sel: {}\n  condition: sel\n",
            "detection.sel: empty mapping",
            "invalid",
        ),
        (
            "  sel:\n    a: []\n  condition: sel\n",
            "detection.sel.a: empty value list",
            "invalid",
        ),
        (
            "  sel:\n    a:\n      b: c\n  condition: sel\n",
            "detection.sel.a: a value cannot be a mapping",
            "invalid",
        ),
    ];
    let mut failures = Vec::new();
    for (detection, expected, kind) in cases {
        let (reason, got_kind) = rejection(&rule_yaml(detection), &options);
        if !reason.contains(expected) || got_kind != *kind {
            failures.push(format!(
                "expected {kind} {expected:?}\n     got {got_kind} {reason:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn rule_level_attributes_are_checked() {
    let options = CompileOptions::default();
    let detection = "detection:\n  k: [x]\n  condition: k\n";
    for (yaml, expected) in [
        (
            format!("logsource: {{product: linux}}\n{detection}"),
            "title: missing",
        ),
        (format!("title: t\n{detection}"), "logsource: missing"),
        (
            format!("title: t\nlevel: urgent\nlogsource: {{product: linux}}\n{detection}"),
            "level: unknown level 'urgent'",
        ),
        (
            format!("title: t\ntags: {{a: b}}\nlogsource: {{product: linux}}\n{detection}"),
            "tags: expected a list of strings",
        ),
        (
            "title: t\nlogsource: {product: linux}\n".to_owned(),
            "detection: missing",
        ),
        (
            format!("title: t\naction: global\n{detection}"),
            "rule collections",
        ),
    ] {
        let (reason, _) = rejection(&yaml, &options);
        assert!(
            reason.contains(expected),
            "expected {expected:?}, got {reason:?}"
        );
    }
}

#[test]
fn limits_are_enforced_with_clear_reasons() {
    let limits = Limits {
        max_searches: 2,
        max_values: 10,
        max_condition_depth: 3,
        max_regex_len: 20,
        regex_size_limit: 10_000,
        ..Limits::default()
    };
    let options = CompileOptions {
        limits,
        ..CompileOptions::default()
    };
    let cases = [
        (
            "  a: [x]\n  b: [y]\n  c: [z]\n  condition: 1 of them\n",
            "3 search identifiers, more than the 2 allowed",
        ),
        (
            "  a: [x]\n  condition: not (not (not a))\n",
            "nested 4 deep, more than the 3 allowed",
        ),
        (
            "  a:\n    f: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]\n  condition: a\n",
            "more than 10 values",
        ),
        (
            "  a:\n    f|windash: '-a -b'\n  condition: a\n",
            "'windash' expands \"-a -b\" to more than 10 values",
        ),
        (
            "  a:\n    f|re: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'\n  condition: a\n",
            "regular expression of 32 bytes, longer than the 20 allowed",
        ),
        (
            "  a:\n    f|re: '\\w{50}'\n  condition: a\n",
            "compiles to more than 10000 bytes",
        ),
    ];
    for (detection, expected) in cases {
        let (reason, kind) = rejection(&rule_yaml(detection), &options);
        assert!(
            reason.contains(expected),
            "expected {expected:?}, got {reason:?}"
        );
        assert_eq!(kind, "limit", "{reason}");
    }
}

#[test]
fn hostile_input_never_panics() {
    let options = CompileOptions::default();
    let mut inputs: Vec<String> = vec![
        String::new(),
        "---\n---\n".into(),
        "\u{0}\u{1}".into(),
        "title: [".into(),
        "title: x\nlogsource: 5\ndetection: 5\n".into(),
        format!("{}x", "- ".repeat(100_000)),
        format!("{}1{}", "{a: ".repeat(5000), "}".repeat(5000)),
        "a: &x 1\nb: *x\n".into(),
        "? [a, b]\n: c\n".into(),
        "title: 1\nlogsource: {}\ndetection:\n  1: 2\n  condition: 1\n".into(),
        "title: t\nlogsource: {}\ndetection:\n  sel:\n    ? [a]\n    : b\n  condition: sel\n".into(),
        "title: t\nlogsource: {}\ndetection:\n  sel:\n    '|||': b\n  condition: sel\n".into(),
        "title: t\nlogsource: {}\ndetection:\n  sel:\n    'a|re': '((((((((((a))))))))))*{1000}{1000}'\n  condition: sel\n".into(),
        "title: t\nlogsource: {}\ndetection:\n  sel:\n    'a|re': '(?i)[[:^alpha:]]{1000}'\n  condition: sel\n".into(),
        format!("title: t\nlogsource: {{}}\ndetection:\n  sel: [x]\n  condition: {}sel{}\n", "(".repeat(10_000), ")".repeat(10_000)),
        format!("title: t\nlogsource: {{}}\ndetection:\n  sel:\n    a|re: '{}a{}'\n  condition: sel\n", "(".repeat(1000), ")".repeat(1000)),
        format!("title: t\nlogsource: {{}}\ndetection:\n  sel:\n    a|windash|base64offset|contains: '{}'\n  condition: sel\n", "-a ".repeat(200)),
        "title: t\nlogsource: {}\ndetection:\n  sel:\n    a|contains: ''\n  condition: sel\n".into(),
        "title: t\nlogsource: {}\ndetection:\n  sel:\n    a|gt: .nan\n  condition: sel\n".into(),
        "title: t\nlogsource: {}\ndetection:\n  sel:\n    a: '\\'\n  condition: sel\n".into(),
    ];
    inputs.push("x".repeat(cairn_correlate::MAX_RULE_FILE_BYTES + 1));
    for input in &inputs {
        let report = parse_rules_str(input, "hostile.yml");
        let (matcher, _) = Matcher::compile(&report.loaded, &options);
        let mut scratch = matcher.scratch();
        let mut out = Vec::new();
        matcher.match_event(&common::event("a -a x"), &mut scratch, &mut out);
    }
}
