//! Replays the fuzz corpora of the ingest targets (`fixtures/fuzz/<target>/` and the minimised
//! crashes in `fixtures/fuzz/regressions/<target>/`) through the fuzz targets' invariant checks.

use cairn_ingest::fuzzing::{check_framing, check_ndjson, check_syslog, replay_corpus};

#[test]
fn framing_corpus_keeps_the_framer_invariants() {
    replay_corpus("framing", check_framing);
}

#[test]
fn rfc5424_corpus_keeps_the_parser_invariants() {
    replay_corpus("rfc5424", check_syslog);
}

#[test]
fn rfc3164_corpus_keeps_the_parser_invariants() {
    replay_corpus("rfc3164", check_syslog);
}

#[test]
fn ndjson_corpus_keeps_the_decoder_invariants() {
    replay_corpus("ndjson", check_ndjson);
}
