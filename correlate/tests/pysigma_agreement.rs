//! Detection semantics against pySigma: the field-based rules of
//! `fixtures/sigma/agreement/rules.yml` over `events.jsonl`, Cairn's matches compared with what
//! pySigma's DuckDB backend matches (`expected.tsv`, produced by `pysigma_matches.py`).
//!
//! The golden file is always checked. With `CAIRN_SIGMA_ORACLE_PYTHON` set to a python that has
//! pySigma and pysigma-backend-duckdb, the oracle is also run and must reproduce the golden file.
//! Every difference must be listed, with its reason, in `differences.tsv`: the test fails on an
//! unlisted difference and on a listed one that no longer occurs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use cairn_correlate::{CompileOptions, Matcher, NaiveMatcher, RuleIndex, parse_rules_str};
use cairn_ingest::decode::{NdjsonLimits, decode_ndjson};
use cairn_ingest::parse::ParseOptions;
use cairn_ingest::{EventFlags, FieldValue, FrameMeta, Seq, Source, Timestamp};

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/sigma/agreement")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// `title → matching event ids`, or `None` for rules pySigma cannot convert.
fn parse_expected(text: &str) -> BTreeMap<String, Option<BTreeSet<u64>>> {
    text.lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (title, ids) = line.split_once('\t').expect("title<TAB>ids");
            let ids = (!ids.starts_with("unsupported")).then(|| {
                ids.split(',')
                    .filter(|id| !id.is_empty())
                    .map(|id| id.parse().expect("id"))
                    .collect()
            });
            (title.to_owned(), ids)
        })
        .collect()
}

/// `(title, event id) → reason` of every known difference.
fn parse_differences(text: &str) -> BTreeMap<(String, u64), String> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .flat_map(|line| {
            let mut parts = line.splitn(3, '\t');
            let title = parts.next().expect("title").to_owned();
            let ids = parts.next().expect("ids").to_owned();
            let reason = parts.next().expect("reason").to_owned();
            ids.split(',')
                .map(|id| {
                    (
                        (title.clone(), id.trim().parse().expect("id")),
                        reason.clone(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn cairn_matches() -> BTreeMap<String, BTreeSet<u64>> {
    let dir = fixture_dir();
    let report = parse_rules_str(&read(&dir.join("rules.yml")), "rules.yml");
    assert!(report.rejected.is_empty(), "{}", report.rejected[0]);
    let options = CompileOptions::default();
    let (matcher, rejected) = Matcher::compile(&report.loaded, &options);
    assert!(rejected.is_empty(), "{}", rejected[0]);
    let (naive, _) = NaiveMatcher::compile(&report.loaded, &options);
    let meta = FrameMeta {
        seq: Seq(1),
        received_at: Timestamp(0),
        peer: None,
        source: Source::HttpNdjson,
        flags: EventFlags::empty(),
    };
    let body = Bytes::from(read(&dir.join("events.jsonl")));
    let outcome = decode_ndjson(
        body,
        &meta,
        &NdjsonLimits::default(),
        &ParseOptions::default(),
    );
    assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
    let mut matches: BTreeMap<String, BTreeSet<u64>> = matcher
        .rules()
        .map(|info| (info.title.clone(), BTreeSet::new()))
        .collect();
    let mut scratch = matcher.scratch();
    let mut out = Vec::new();
    for event in &outcome.events {
        let id = event
            .fields
            .iter()
            .find(|field| event.text(&field.name) == "id")
            .and_then(|field| match field.value {
                FieldValue::I64(id) => u64::try_from(id).ok(),
                FieldValue::U64(id) => Some(id),
                _ => None,
            })
            .expect("every event has an integer id");
        matcher.match_event(event, &mut scratch, &mut out);
        assert_eq!(out, naive.match_event(event), "matcher vs naive on {id}");
        for RuleIndex(index) in &out {
            let title = &matcher.rule(RuleIndex(*index)).title;
            matches.entry(title.clone()).or_default().insert(id);
        }
    }
    matches
}

#[test]
fn cairn_agrees_with_pysigma_except_for_listed_differences() {
    let dir = fixture_dir();
    let golden = read(&dir.join("expected.tsv"));
    if let Ok(python) = std::env::var("CAIRN_SIGMA_ORACLE_PYTHON") {
        let output = std::process::Command::new(&python)
            .arg(dir.join("pysigma_matches.py"))
            .arg(dir.join("events.jsonl"))
            .arg(dir.join("rules.yml"))
            .output()
            .unwrap_or_else(|error| panic!("run {python}: {error}"));
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            golden,
            "pySigma's output differs from the committed expected.tsv"
        );
        println!("pySigma oracle run with {python}: output equals expected.tsv");
    } else {
        println!(
            "CAIRN_SIGMA_ORACLE_PYTHON not set: pySigma oracle run skipped; checking the committed expected.tsv"
        );
    }
    let expected = parse_expected(&golden);
    let known = parse_differences(&read(&dir.join("differences.tsv")));
    let cairn = cairn_matches();
    let events = read(&dir.join("events.jsonl")).lines().count() as u64;

    let mut unexplained = Vec::new();
    let mut seen = BTreeSet::new();
    let (mut compared, mut agreeing, mut rules) = (0u64, 0u64, 0usize);
    for (title, pysigma) in &expected {
        let Some(pysigma) = pysigma else { continue };
        rules += 1;
        let ours = cairn.get(title).cloned().unwrap_or_default();
        for id in 0..events {
            compared += 1;
            if ours.contains(&id) == pysigma.contains(&id) {
                agreeing += 1;
                continue;
            }
            let key = (title.clone(), id);
            if known.contains_key(&key) {
                seen.insert(key);
            } else {
                unexplained.push(format!(
                    "{title}: event {id}: cairn {}, pySigma {}",
                    ours.contains(&id),
                    pysigma.contains(&id)
                ));
            }
        }
    }
    let stale: Vec<_> = known.keys().filter(|key| !seen.contains(*key)).collect();
    println!(
        "{rules} rules x {events} events: {agreeing}/{compared} decisions agree ({:.2}%), {} listed differences",
        100.0 * agreeing as f64 / compared as f64,
        seen.len()
    );
    assert!(
        unexplained.is_empty(),
        "{} unexplained differences:\n{}",
        unexplained.len(),
        unexplained.join("\n")
    );
    assert!(
        stale.is_empty(),
        "listed differences that no longer occur: {stale:?}"
    );
}
