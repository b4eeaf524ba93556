//! `cargo fuzz run query`: see `cairn_index::fuzzing::check_query` for the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_index::fuzzing::check_query(data));
