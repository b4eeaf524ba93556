//! Replays the `query` fuzz corpus (`fixtures/fuzz/query/` and the minimised crashes in
//! `fixtures/fuzz/regressions/query/`) through the fuzz target's invariant checks.

use cairn_index::fuzzing::check_query;
use cairn_ingest::fuzzing::replay_corpus;

#[test]
fn query_corpus_keeps_the_parser_invariants() {
    replay_corpus("query", check_query);
}
