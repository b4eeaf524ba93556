//! `Matcher` (automata + candidate selection) must agree with `NaiveMatcher` (every rule,
//! every test on the text) on random events, for a fixed rule set exercising every modifier and
//! for the SigmaHQ Linux rules.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use cairn_correlate::{
    CompileOptions, LiteralEngine, Matcher, NaiveMatcher, Rule, load_rules, parse_rules_str,
};
use cairn_ingest::{Event, FieldValue, Severity};
use common::{EventExt, event};
use proptest::prelude::*;

const RULES: &str = r#"
title: contains and exact
logsource: {product: linux}
detection:
  sel:
    CommandLine|contains: ['wget', 'curl -o']
    Image: /usr/bin/nc
  condition: sel
---
title: start end all
logsource: {product: linux}
detection:
  sel:
    CommandLine|startswith: 'sudo '
    Image|endswith: ['/sh', '/bash']
  filter:
    CommandLine|contains|all: ['-c', 'id']
  condition: sel and not filter
---
title: keywords
logsource: {service: sshd}
detection:
  keywords: ['Failed password', 'Invalid user', 'error: *maximum']
  condition: keywords
---
title: glob and question
logsource: {product: linux}
detection:
  sel:
    CommandLine: 'chmod ?77 *'
  sel2:
    User: 'r??t'
  condition: 1 of sel*
---
title: cased
logsource: {product: linux}
detection:
  sel:
    CommandLine|cased|contains: 'Wget'
  condition: sel
---
title: regex
logsource: {product: linux}
detection:
  sel:
    CommandLine|re: '\s-[oO]\s'
  sel_i:
    msg|re|i: 'fail(ed|ure) (password|login)'
  sel_nolit:
    User|re: '^.{3}$'
  condition: sel or sel_i or sel_nolit
---
title: numbers null exists cidr
logsource: {product: linux}
detection:
  big:
    bytes|gt: 100
  small:
    bytes|lte: 5
  nouser:
    User: null
  hasimg:
    Image|exists: true
  net:
    ip|cidr: ['10.0.0.0/8', 'fd00::/8']
  condition: (big or small) and nouser or hasimg and net
---
title: encodings
logsource: {product: linux}
detection:
  sel:
    CommandLine|base64offset|contains: 'wget'
  sel2:
    CommandLine|windash|contains: ' -o '
  condition: 1 of them
---
title: negation only
logsource: {product: linux}
detection:
  sel:
    - 'wget'
  condition: not sel
---
title: all of them
logsource: {product: linux}
detection:
  a: ['id']
  b:
    app: sudo
  condition: all of them
---
title: neq and empty
logsource: {product: linux}
detection:
  sel:
    User|neq: root
  empty:
    Image: ''
  condition: sel or empty
---
title: headers
logsource: {service: auth}
detection:
  sel:
    host|startswith: web
    severity|lte: 4
  condition: sel
---
title: sd
logsource: {product: linux}
detection:
  sel:
    sd.origin.ip|startswith: '10.'
  sel2:
    ip|endswith: '.1'
  condition: sel and sel2
---
title: fieldref
logsource: {product: linux}
detection:
  same:
    User|fieldref: comm
  prefix:
    CommandLine|fieldref|startswith: Image
  inside:
    CommandLine|fieldref|contains|cased: a0
  differ:
    User|fieldref|neq: a0
  lit:
    CommandLine|contains: 'sudo'
  condition: same or prefix or (inside and lit) or differ
"#;

const WORDS: &[&str] = &[
    "wget",
    "Wget",
    "WGET",
    "curl -o",
    "curl",
    "-o",
    " -O ",
    "/o",
    "sudo ",
    "sudo",
    "id",
    "-c",
    "Failed password",
    "failure login",
    "Invalid user",
    "error:",
    "maximum",
    "chmod",
    "777",
    "677",
    "root",
    "rOOt",
    "r00t",
    "/usr/bin/nc",
    "/bin/sh",
    "/bin/bash",
    "d2dldA",
    "3dnZX",
    "3Z2V0",
    "é",
    "É",
    "x",
    " ",
    "\n",
    "10.1.2.3",
    "fd00::1",
    "192.168.0.1",
    "web",
    "/",
    "\u{2013}",
    "auth",
];

fn text_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(WORDS).prop_map(str::to_owned),
            1 => "[a-zA-Z0-9 /.-]{0,4}",
        ],
        0..6,
    )
    .prop_map(|parts| parts.concat())
}

fn field_text_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => prop::sample::select(WORDS).prop_map(str::to_owned),
        2 => (prop::sample::select(WORDS), prop::sample::select(WORDS)).prop_map(|(a, b)| format!("{a}{b}")),
        1 => text_strategy(),
    ]
}

fn event_strategy() -> impl Strategy<Value = Event> {
    let field_names = prop::sample::select(vec![
        "CommandLine",
        "Image",
        "User",
        "ip",
        "bytes",
        "a0",
        "comm",
    ]);
    (
        text_strategy(),
        prop::option::of(text_strategy()),
        prop::option::of(prop::sample::select(vec!["sshd", "sudo", "cron", "kernel"])),
        prop::option::of(0u8..8),
        prop::option::of(prop::sample::select(vec!["auth", "authpriv", "daemon"])),
        prop::collection::vec(
            (
                field_names,
                prop_oneof![
                    3 => field_text_strategy().prop_map(|t| (Some(t), None)),
                    1 => (0i64..200).prop_map(|n| (None, Some(n))),
                ],
            ),
            0..7,
        ),
        prop::option::of((
            prop::sample::select(vec!["origin", "meta"]),
            prop::sample::select(vec!["10.0.0.1", "10.2.2.2", "8.8.8.1"]),
        )),
    )
        .prop_map(|(message, host, app, severity, facility, fields, sd)| {
            let mut built = event(&message);
            if let Some(host) = host {
                built = built.host(&host);
            }
            if let Some(app) = app {
                built = built.app(app);
            }
            if let Some(code) = severity {
                built = built.severity(Severity::from_code(code).unwrap_or(Severity::Debug));
            }
            if let Some(facility) = facility {
                built = built.facility(facility);
            }
            for (name, (text, number)) in fields {
                built = match (text, number) {
                    (Some(text), _) => built.text(name, &text),
                    (None, Some(number)) => built.value(name, FieldValue::I64(number)),
                    (None, None) => built,
                };
            }
            if let Some((id, ip)) = sd {
                built = built.sd(id, &[("ip", ip)]);
            }
            built
        })
}

fn fixed_rules() -> Vec<Rule> {
    let report = parse_rules_str(RULES, "oracle.yml");
    assert!(report.rejected.is_empty(), "{}", report.rejected[0]);
    report.loaded
}

fn sigmahq_rules() -> Vec<Rule> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/sigma/sigmahq-linux");
    load_rules(&[path]).loaded
}

type Pair = (Matcher, NaiveMatcher);

fn compile_pair(rules: &[Rule], literal_engine: LiteralEngine) -> Pair {
    let options = CompileOptions {
        literal_engine,
        ..CompileOptions::default()
    };
    let (matcher, rejected) = Matcher::compile(rules, &options);
    assert!(rejected.is_empty(), "{}", rejected[0]);
    let (naive, _) = NaiveMatcher::compile(rules, &options);
    (matcher, naive)
}

fn fixed_pair() -> &'static Pair {
    static PAIR: OnceLock<Pair> = OnceLock::new();
    PAIR.get_or_init(|| compile_pair(&fixed_rules(), LiteralEngine::AnchorTable))
}

fn fixed_pair_dfa() -> &'static Pair {
    static PAIR: OnceLock<Pair> = OnceLock::new();
    PAIR.get_or_init(|| compile_pair(&fixed_rules(), LiteralEngine::AhoCorasickDfa))
}

fn sigmahq_pair_dfa() -> &'static Pair {
    static PAIR: OnceLock<Pair> = OnceLock::new();
    PAIR.get_or_init(|| compile_pair(&sigmahq_rules(), LiteralEngine::AhoCorasickDfa))
}

fn sigmahq_pair() -> &'static Pair {
    static PAIR: OnceLock<Pair> = OnceLock::new();
    PAIR.get_or_init(|| compile_pair(&sigmahq_rules(), LiteralEngine::AnchorTable))
}

fn check_agreement((matcher, naive): &Pair, events: &[Event]) -> Result<(), TestCaseError> {
    let mut scratch = matcher.scratch();
    let mut out = Vec::new();
    for event in events {
        matcher.match_event(event, &mut scratch, &mut out);
        let expected = naive.match_event(event);
        prop_assert_eq!(&out, &expected, "event: {:?}", event);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn matcher_agrees_with_naive_on_fixed_rules(events in prop::collection::vec(event_strategy(), 1..8)) {
        check_agreement(fixed_pair(), &events)?;
    }

    #[test]
    fn matcher_with_aho_corasick_dfa_agrees_with_naive_on_fixed_rules(events in prop::collection::vec(event_strategy(), 1..8)) {
        check_agreement(fixed_pair_dfa(), &events)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn matcher_agrees_with_naive_on_sigmahq_rules(events in prop::collection::vec(event_strategy(), 1..8)) {
        check_agreement(sigmahq_pair(), &events)?;
    }

    #[test]
    fn matcher_with_aho_corasick_dfa_agrees_with_naive_on_sigmahq_rules(events in prop::collection::vec(event_strategy(), 1..8)) {
        check_agreement(sigmahq_pair_dfa(), &events)?;
    }
}

/// The random events above must actually make rules match, or the agreement is vacuous.
#[test]
fn random_events_do_match_some_rules() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let (matcher, _) = fixed_pair();
    let mut runner = TestRunner::deterministic();
    let mut scratch = matcher.scratch();
    let mut out = Vec::new();
    let mut matched = vec![0usize; matcher.len()];
    for _ in 0..20_000 {
        let event = event_strategy().new_tree(&mut runner).unwrap().current();
        matcher.match_event(&event, &mut scratch, &mut out);
        for index in &out {
            matched[index.0 as usize] += 1;
        }
    }
    for (index, count) in matched.iter().enumerate() {
        let title = &matcher.rule(cairn_correlate::RuleIndex(index as u32)).title;
        println!("{count:6} {title}");
        assert!(*count > 0, "rule {title:?} never matched a random event");
    }
}
