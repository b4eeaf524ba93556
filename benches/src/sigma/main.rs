//! `cairn-sigma-bench`: the 1,000-rule Sigma workload as files, and Cairn timed on them, so an
//! external engine (rsigma) can run the very same rules and events.
//!
//! ```sh
//! cairn-sigma-bench write DIR        # DIR/rules/*.yml, DIR/events.ndjson, DIR/events.log
//! cairn-sigma-bench run DIR          # NDJSON decode + match with Cairn's Matcher; events/s
//! cairn-sigma-bench run DIR --naive  # the same with NaiveMatcher (one rule at a time)
//! ```
//!
//! `run` writes `DIR/cairn-counts.tsv` (rule id, matches) for comparing match counts.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use bytes::Bytes;
use cairn_benches::sigma::{event_to_json, frame_meta, generate_corpus, generate_rules};
use cairn_correlate::{CompileOptions, Matcher, NaiveMatcher, RuleIndex, load_rules};
use cairn_ingest::decode::{NdjsonLimits, decode_ndjson};
use cairn_ingest::normalise::Normaliser;
use cairn_ingest::parse::{ParseOptions, parse_syslog};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "cairn-sigma-bench",
    about = "1,000-rule Sigma workload: write it, time Cairn on it"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write the rules (one file each), the syslog corpus and its parsed + extracted NDJSON.
    Write {
        dir: PathBuf,
        #[arg(long, default_value_t = 1000)]
        rules: usize,
        #[arg(long, default_value_t = 10_000)]
        events: usize,
    },
    /// Decode DIR/events.ndjson and match it against DIR/rules; prints events/s.
    Run {
        dir: PathBuf,
        /// Evaluate every rule on its own (`NaiveMatcher`) instead of the compiled matcher.
        #[arg(long)]
        naive: bool,
        /// Passes over the events; the fastest is reported.
        #[arg(long, default_value_t = 5)]
        repeat: usize,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Write { dir, rules, events } => write(&dir, rules, events),
        Command::Run { dir, naive, repeat } => run(&dir, naive, repeat.max(1)),
    }
}

fn write(dir: &Path, rule_count: usize, event_count: usize) -> anyhow::Result<()> {
    let rules = generate_rules(rule_count, 0x5EED_0001);
    let rules_dir = dir.join("rules");
    std::fs::create_dir_all(&rules_dir)
        .with_context(|| format!("create {}", rules_dir.display()))?;
    for (index, document) in rules.documents.iter().enumerate() {
        std::fs::write(rules_dir.join(format!("rule_{index:04}.yml")), document)?;
    }
    let lines = generate_corpus(event_count, 0x5EED_0002, &rules, 3);
    let normaliser = Normaliser::new(Vec::new())?;
    let options = ParseOptions::default();
    let mut log = std::io::BufWriter::new(std::fs::File::create(dir.join("events.log"))?);
    let mut ndjson = std::io::BufWriter::new(std::fs::File::create(dir.join("events.ndjson"))?);
    for (index, line) in lines.iter().enumerate() {
        writeln!(log, "{line}")?;
        let mut event = parse_syslog(
            Bytes::from(line.clone()),
            &frame_meta(index as u64),
            &options,
        );
        normaliser.normalise(&mut event);
        serde_json::to_writer(&mut ndjson, &event_to_json(&event))?;
        ndjson.write_all(b"\n")?;
    }
    log.flush()?;
    ndjson.flush()?;
    println!(
        "wrote {rule_count} rules to {}, {event_count} events to events.log and events.ndjson",
        rules_dir.display()
    );
    Ok(())
}

fn run(dir: &Path, naive: bool, repeat: usize) -> anyhow::Result<()> {
    let report = load_rules(&[dir.join("rules")]);
    anyhow::ensure!(
        report.rejected.is_empty(),
        "rejected: {}",
        report.rejected[0]
    );
    let options = CompileOptions::default();
    let body = Bytes::from(std::fs::read(dir.join("events.ndjson"))?);
    let limits = NdjsonLimits::default();
    let parse_options = ParseOptions::default();
    let meta = frame_meta(1);
    let mut counts = vec![0u64; report.loaded.len()];
    let mut best = f64::INFINITY;
    let mut events_seen = 0usize;
    let mut matched_events = 0usize;
    let ids: Vec<String>;
    if naive {
        let (matcher, _) = NaiveMatcher::compile(&report.loaded, &options);
        ids = (0..matcher.len())
            .map(|i| {
                matcher
                    .rule(RuleIndex(i as u32))
                    .id
                    .clone()
                    .unwrap_or_default()
            })
            .collect();
        for pass in 0..repeat {
            let started = Instant::now();
            let outcome = decode_ndjson(body.clone(), &meta, &limits, &parse_options);
            let mut pass_matched = 0;
            for event in &outcome.events {
                let matched = matcher.match_event(event);
                pass_matched += usize::from(!matched.is_empty());
                if pass == 0 {
                    for rule in &matched {
                        counts[rule.0 as usize] += 1;
                    }
                }
            }
            best = best.min(started.elapsed().as_secs_f64());
            events_seen = outcome.events.len();
            matched_events = pass_matched;
        }
    } else {
        let (matcher, _) = Matcher::compile(&report.loaded, &options);
        eprintln!("{:?}", matcher.stats());
        ids = matcher
            .rules()
            .map(|info| info.id.clone().unwrap_or_default())
            .collect();
        let mut scratch = matcher.scratch();
        let mut out = Vec::new();
        for pass in 0..repeat {
            let started = Instant::now();
            let outcome = decode_ndjson(body.clone(), &meta, &limits, &parse_options);
            let mut pass_matched = 0;
            for event in &outcome.events {
                matcher.match_event(event, &mut scratch, &mut out);
                pass_matched += usize::from(!out.is_empty());
                if pass == 0 {
                    for rule in &out {
                        counts[rule.0 as usize] += 1;
                    }
                }
            }
            best = best.min(started.elapsed().as_secs_f64());
            events_seen = outcome.events.len();
            matched_events = pass_matched;
        }
    }
    let mut tsv = std::io::BufWriter::new(std::fs::File::create(dir.join("cairn-counts.tsv"))?);
    for (id, count) in ids.iter().zip(&counts) {
        writeln!(tsv, "{id}\t{count}")?;
    }
    tsv.flush()?;
    let total: u64 = counts.iter().sum();
    println!(
        "{}: {events_seen} events in {:.1} ms (best of {repeat}) = {:.0} events/s; {matched_events} events matched, {total} matches, {} rules matched something",
        if naive { "naive" } else { "matcher" },
        best * 1000.0,
        events_seen as f64 / best,
        counts.iter().filter(|c| **c > 0).count()
    );
    Ok(())
}
