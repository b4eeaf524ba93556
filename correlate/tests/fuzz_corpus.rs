//! Replays the `rules` fuzz corpus (`fixtures/fuzz/rules/` and the minimised crashes in
//! `fixtures/fuzz/regressions/rules/`) through the fuzz target's invariant checks.

use cairn_correlate::fuzzing::check_rules;
use cairn_ingest::fuzzing::replay_corpus;

#[test]
fn rules_corpus_keeps_the_loader_and_matcher_invariants() {
    replay_corpus("rules", check_rules);
}
