//! `cargo fuzz run ndjson`: see `cairn_ingest::fuzzing::check_ndjson` for the input layout and the
//! invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_ingest::fuzzing::check_ndjson(data));
