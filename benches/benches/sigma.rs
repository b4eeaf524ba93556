//! Sigma matching at scale: parse + extract + match per event, 1,000 generated rules, the
//! compiled `Matcher` (shared automata, candidate rules only) against `NaiveMatcher` (every rule
//! evaluated on its own), on the same 10,000-line corpus; with the mixed rule set (10% regex)
//! and the literal-only one (no regex). See `benches/README.md`.
//!
//! The global allocator is mimalloc, as in the `cairn` binary, so allocation costs are the
//! product's.

use bytes::Bytes;
use cairn_benches::sigma::{RegexShare, frame_meta, generate_corpus, generate_rules_with};
use cairn_correlate::{CompileOptions, LiteralEngine, Matcher, NaiveMatcher, parse_rules_str};
use cairn_ingest::normalise::Normaliser;
use cairn_ingest::parse::{ParseOptions, parse_syslog};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RULES: usize = 1000;
const EVENTS: usize = 10_000;

fn bench_sigma(c: &mut Criterion) {
    bench_mix(c, RegexShare::TenPercent, "sigma_1000_rules");
    bench_mix(c, RegexShare::None, "sigma_1000_literal_rules");
}

/// One rule mix: the 10% regex one (groups `sigma_1000_rules` and
/// `sigma_1000_rules_match_only`, with the parse-only baseline and the DFA engine) or the
/// literal-only one (`sigma_1000_literal_rules…`).
fn bench_mix(c: &mut Criterion, regex: RegexShare, name: &str) {
    let rules = generate_rules_with(RULES, 0x5EED_0001, regex);
    let report = parse_rules_str(&rules.yaml(), "generated.yml");
    assert!(report.rejected.is_empty(), "{}", report.rejected[0]);
    let options = CompileOptions::default();
    let (matcher, rejected) = Matcher::compile(&report.loaded, &options);
    assert!(rejected.is_empty(), "{}", rejected[0]);
    let (naive, _) = NaiveMatcher::compile(&report.loaded, &options);
    let dfa_options = CompileOptions {
        literal_engine: LiteralEngine::AhoCorasickDfa,
        ..CompileOptions::default()
    };
    let (dfa_matcher, _) = Matcher::compile(&report.loaded, &dfa_options);
    let lines: Vec<Bytes> = generate_corpus(EVENTS, 0x5EED_0002, &rules, 3)
        .into_iter()
        .map(Bytes::from)
        .collect();
    let parse_options = ParseOptions::default();
    let normaliser = Normaliser::new(Vec::new()).expect("built-in patterns");
    let meta = frame_meta(1);

    // Agreement and shape, printed once so a regression is visible next to the figures.
    let mut scratch = matcher.scratch();
    let mut out = Vec::new();
    let (mut fast_matches, mut naive_matches, mut matched_events) = (0usize, 0usize, 0usize);
    for line in &lines {
        let mut event = parse_syslog(line.clone(), &meta, &parse_options);
        normaliser.normalise(&mut event);
        matcher.match_event(&event, &mut scratch, &mut out);
        let expected = naive.match_event(&event);
        assert_eq!(out, expected, "matchers disagree on {line:?}");
        fast_matches += out.len();
        naive_matches += expected.len();
        matched_events += usize::from(!out.is_empty());
    }
    eprintln!(
        "{name}: {:?}; {EVENTS} events, {matched_events} matched, {fast_matches} matches (naive {naive_matches})",
        matcher.stats()
    );

    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.sample_size(10);
    if regex == RegexShare::TenPercent {
        group.bench_function("parse+extract", |b| {
            b.iter(|| {
                for line in &lines {
                    let mut event = parse_syslog(line.clone(), &meta, &parse_options);
                    normaliser.normalise(&mut event);
                    black_box(&event);
                }
            })
        });
    }
    group.bench_function("parse+extract+match/matcher", |b| {
        let mut scratch = matcher.scratch();
        let mut out = Vec::new();
        b.iter(|| {
            let mut matches = 0usize;
            for line in &lines {
                let mut event = parse_syslog(line.clone(), &meta, &parse_options);
                normaliser.normalise(&mut event);
                matcher.match_event(&event, &mut scratch, &mut out);
                matches += out.len();
            }
            black_box(matches)
        })
    });
    group.bench_function("parse+extract+match/naive", |b| {
        b.iter(|| {
            let mut matches = 0usize;
            for line in &lines {
                let mut event = parse_syslog(line.clone(), &meta, &parse_options);
                normaliser.normalise(&mut event);
                matches += naive.match_event(&event).len();
            }
            black_box(matches)
        })
    });
    group.finish();

    // The literal scanners alone: the same pre-parsed events, the 4-byte anchor table against
    // one aho-corasick DFA per field (same needles, same results).
    let events: Vec<_> = lines
        .iter()
        .map(|line| {
            let mut event = parse_syslog(line.clone(), &meta, &parse_options);
            normaliser.normalise(&mut event);
            event
        })
        .collect();
    let mut group = c.benchmark_group(format!("{name}_match_only"));
    group.throughput(Throughput::Elements(events.len() as u64));
    group.sample_size(20);
    let engines: &[(&str, &Matcher)] = if regex == RegexShare::TenPercent {
        &[
            ("anchor_table", &matcher),
            ("aho_corasick_dfa", &dfa_matcher),
        ]
    } else {
        &[("anchor_table", &matcher)]
    };
    for (engine_name, engine) in engines {
        group.bench_function(*engine_name, |b| {
            let mut scratch = engine.scratch();
            let mut out = Vec::new();
            b.iter(|| {
                let mut matches = 0usize;
                for event in &events {
                    engine.match_event(event, &mut scratch, &mut out);
                    matches += out.len();
                }
                black_box(matches)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_sigma);
criterion_main!(benches);
